import contextlib
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("ADZE_CONFORMANCE_SDK", "1.43.1")

from harness.sdk_env import sdk_environment

pytest_plugins = ["harness.pytest_plugin"]

WORKER_SCRIPT = HERE / "workers" / "worker.py"


def new_client(env: dict[str, str]):
    """A fresh `Hatchet` and the suite's workflows defined on it."""
    from hatchet_sdk import Hatchet

    from workers.defs import define

    with sdk_environment(env):
        hatchet = Hatchet()
    return hatchet, define(hatchet)


@dataclass
class Deployment:
    """An engine, a namespace, and optionally a worker serving defs.py in it."""

    engine: Any
    namespace: str
    env: dict[str, str]
    worker: Any = None

    def client(self):
        return new_client(self.env)

    def wait_for_cancel(self, task_external_id: str, what: str) -> None:
        """Wait until this deployment's worker logs CANCEL_STEP_RUN for the task."""
        self.worker.records.wait_for(
            f"the worker to receive CANCEL_STEP_RUN for {what}",
            lambda recs: self.worker.records.logs(f"rx: cancel step run: {task_external_id}"),
            timeout=10,
            alive=self.worker.check_alive,
        )


@contextlib.contextmanager
def deployment(
    engine, tmp_path_factory, group: str, prefix: str, script: Path = WORKER_SCRIPT
) -> Iterator[Deployment]:
    """A fresh namespace on `engine` with a registered worker serving `script`'s `group`
    (defs.py's by default)."""
    from harness import WorkerProcess

    ns = f"{prefix}{uuid.uuid4().hex[:10]}"
    env = engine.env(namespace=ns)
    name = f"{group.replace('_', '-')}-worker"
    worker = WorkerProcess(script, env, tmp_path_factory.mktemp(name), name=name, args=(group,))
    try:
        worker.start().wait_registered()
        yield Deployment(engine, ns, env, worker)
    finally:
        worker.close()


@pytest.fixture(scope="module")
def general(engine, tmp_path_factory) -> Iterator[Deployment]:
    """The module engine with one 100-slot worker serving the general workflows."""
    with deployment(engine, tmp_path_factory, "general", "m") as dep:
        yield dep


def start_worker(make_worker, env: dict[str, str], group: str, name: str | None = None, **extra: str):
    return make_worker(WORKER_SCRIPT, {**env, **extra}, name=name or f"{group}-worker", args=(group,))
