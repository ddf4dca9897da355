"""What a failing test prints: every engine and worker alive while it ran.

Engines and workers register themselves here when created and leave when closed; the
pytest plugin asks the live ones for their report sections when a test fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

_live: list["Reporting"] = []


class Reporting(Protocol):
    def report_sections(self) -> list[tuple[str, str]]: ...


def register(obj: Reporting) -> None:
    if obj not in _live:
        _live.append(obj)


def unregister(obj: Reporting) -> None:
    if obj in _live:
        _live.remove(obj)


def live() -> list[Reporting]:
    return list(_live)


def tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else f"({path} is empty)"
