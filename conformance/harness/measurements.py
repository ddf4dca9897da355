"""Numbers the suite reports but never asserts on.

Each is printed as a `MEASURE:` line and appended to conformance/measurements.txt
(git-ignored), so runs can be compared over time.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

MEASUREMENTS_FILE = Path(__file__).resolve().parents[1] / "measurements.txt"

_this_run: list[str] = []


def measure(name: str, value: float, unit: str, **details: object) -> str:
    extra = " ".join(f"{k}={v}" for k, v in details.items())
    sdk = os.environ.get("ADZE_CONFORMANCE_SDK", "?")
    line = f"MEASURE: sdk={sdk} {name}={value:.4g} {unit}" + (f" {extra}" if extra else "")
    print(line, flush=True)
    _this_run.append(line)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with open(MEASUREMENTS_FILE, "a") as f:
        f.write(f"{stamp} {line}\n")
    return line


def this_run() -> list[str]:
    return list(_this_run)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "worst": max(values),
        "best": min(values),
        "n": len(values),
    }
