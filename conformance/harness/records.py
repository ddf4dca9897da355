"""A JSON-lines file shared by a worker script and the test that started it.

The worker side (`record`, `capture_sdk_logs`) runs inside worker processes, including
the SDK's spawned listener process: each line is one `os.write` on an O_APPEND file, so
processes and threads can write concurrently. Times are `time.time()` on this machine.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

ENV_VAR = "ADZE_RECORDS"


# -- worker side -----------------------------------------------------------------------


def record(kind: str, **fields: Any) -> None:
    path = os.environ.get(ENV_VAR)
    if not path:
        return
    line = json.dumps({"t": time.time(), "pid": os.getpid(), "kind": kind, **fields})
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class _RecordHandler(logging.Handler):
    def emit(self, rec: logging.LogRecord) -> None:
        try:
            record("log", level=rec.levelname, msg=rec.getMessage())
        except Exception:  # a log line must never break the worker
            pass


def capture_sdk_logs(logger_name: str = "hatchet") -> None:
    """Copy the SDK's log records (debug included) into the records file."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(h, _RecordHandler) for h in logger.handlers):
        handler = _RecordHandler(level=logging.DEBUG)
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


# -- test side -------------------------------------------------------------------------


class Records:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def all(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line being written right now
        return out

    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [
            r
            for r in self.all()
            if r.get("kind") == kind and all(r.get(k) == v for k, v in match.items())
        ]

    def logs(self, contains: str) -> list[dict[str, Any]]:
        return [r for r in self.of("log") if contains in r.get("msg", "")]

    def wait_for(
        self,
        what: str,
        predicate: Callable[[list[dict[str, Any]]], Any],
        timeout: float,
        alive: Callable[[], None] | None = None,
    ) -> Any:
        """Poll until predicate(all records) is truthy; return its value.

        `alive` is called each round and may raise (e.g. the worker died).
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self.all())
            if value:
                return value
            if alive is not None:
                alive()
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.05)

    def report(self, lines: int = 60) -> str:
        recs = [r for r in self.all() if r.get("kind") != "log" or "heartbeat" not in r.get("msg", "")]
        return "\n".join(json.dumps(r) for r in recs[-lines:]) or "(no records)"
