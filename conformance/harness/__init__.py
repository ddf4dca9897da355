"""Drive an `adze lite` engine and SDK worker processes from pytest.

Layout:
- `engine`   — start, kill -9, restart `adze lite` on free ports; mint tokens; SDK env
- `workers`  — worker scripts as killable subprocesses (own process group)
- `records`  — the JSON-lines file a worker script writes its step timestamps and log lines to
- `measurements` — `MEASURE:` lines, printed and appended to conformance/measurements.txt
- `sdk_env`  — the HATCHET_CLIENT_* environment for clients built in the test process
- `jwt`      — decode and forge tokens for the auth tests
- `pytest_plugin` — fixtures shared by both SDK suites; failure reports carry the engine's
  stderr tail and each worker's output

The package imports nothing from hatchet_sdk, so it works unchanged in both SDK venvs.
"""

from .engine import Engine, EngineError, adze_bin
from .workers import WorkerProcess, WorkerError
from .records import Records
from .measurements import measure

__all__ = [
    "Engine",
    "EngineError",
    "adze_bin",
    "WorkerProcess",
    "WorkerError",
    "Records",
    "measure",
]
