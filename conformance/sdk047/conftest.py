import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("ADZE_CONFORMANCE_SDK", "0.47.1")

pytest_plugins = ["harness.pytest_plugin"]

WORKERS = Path(__file__).resolve().parent / "workers"


@pytest.fixture
def hatchet_client(monkeypatch):
    """A 0.47.1 `Hatchet` in the test process, configured from an engine's SDK env."""

    def make(env: dict[str, str]):
        from hatchet_sdk import Hatchet

        for key, value in env.items():
            if key.startswith("HATCHET_CLIENT_"):
                monkeypatch.setenv(key, value)
        return Hatchet()

    return make
