import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("ADZE_CONFORMANCE_SDK", "0.47.1")

from harness.sdk_env import sdk_environment

pytest_plugins = ["harness.pytest_plugin"]

WORKERS = Path(__file__).resolve().parent / "workers"


def client_from_env(env: dict[str, str]):
    """A 0.47.1 `Hatchet` in the test process, configured from an engine's SDK env."""
    from hatchet_sdk import Hatchet

    with sdk_environment(env):
        return Hatchet()


@pytest.fixture
def hatchet_client():
    return client_from_env
