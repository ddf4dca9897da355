import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("ADZE_CONFORMANCE_SDK", "0.47.1")

pytest_plugins = ["harness.pytest_plugin"]

WORKERS = Path(__file__).resolve().parent / "workers"


@contextlib.contextmanager
def sdk_environment(env: dict[str, str]) -> Iterator[None]:
    """0.47.1 reads its settings from the environment when a client is built."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("HATCHET_CLIENT_")}
    for k in saved:
        del os.environ[k]
    os.environ.update({k: v for k, v in env.items() if k.startswith("HATCHET_CLIENT_")})
    try:
        yield
    finally:
        for k in [k for k in os.environ if k.startswith("HATCHET_CLIENT_")]:
            del os.environ[k]
        os.environ.update(saved)


def client_from_env(env: dict[str, str]):
    """A 0.47.1 `Hatchet` in the test process, configured from an engine's SDK env."""
    from hatchet_sdk import Hatchet

    with sdk_environment(env):
        return Hatchet()


@pytest.fixture
def hatchet_client():
    return client_from_env
