"""adze-sdk and hatchet-sdk 1.43.1 on one engine: each serves the other's triggers, and
both workers' no-op throughput is measured with the same Rust driver (never asserted).
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from harness import measure
from harness.rust import RustProcess, run_example

from conftest import deployment, new_client
from workers.defs import DagInput

pytestmark = pytest.mark.timeout(180)

BENCH_RUNS = 500


@pytest.fixture
def rust_worker(engine, tmp_path):
    started: list[RustProcess] = []

    def start(name: str, args: list[str], namespace: str, ready: str) -> RustProcess:
        proc = RustProcess(name, args, engine.env(namespace=namespace), tmp_path)
        started.append(proc)
        proc.wait_for(ready)
        return proc

    yield start
    # SIGINT is the examples' Ctrl-C: the worker drains and exits cleanly.
    codes = {proc.name: proc.stop() for proc in started}
    assert all(code == 0 for code in codes.values()), codes


def test_a_python_client_runs_a_dag_served_by_a_rust_worker(engine, rust_worker):
    ns = f"rdag{uuid.uuid4().hex[:8]}"
    rust_worker("dag", ["worker"], ns, "serving dag")
    _, d = new_client(engine.env(namespace=ns))
    expected = {"parent": {"doubled": 10}, "child": {"from_parent": 10, "plus_one": 11}}
    assert d.dag.run(DagInput(n=5)) == expected  # GetRunDetails polling
    assert asyncio.run(d.dag.aio_run(DagInput(n=5))) == expected  # SubscribeToWorkflowRuns


def test_python_events_start_runs_on_the_rust_release_worker(engine, rust_worker):
    ns = f"rrel{uuid.uuid4().hex[:8]}"
    worker = rust_worker(
        "release_slot", ["worker", "--heavy-secs", "0.2", "--light-secs", "0.5"], ns, "serving user-workflow"
    )
    hatchet, _ = new_client(engine.env(namespace=ns))
    for user in ("ada", "grace"):
        hatchet.event.push("user:create", {"user": user})
    worker.wait_for(": done", count=2)
    assert worker.output().count("NON RESOURCE INTENSIVE PROCESS") == 2


def test_a_rust_client_runs_a_dag_served_by_a_python_worker(engine, tmp_path_factory):
    with deployment(engine, tmp_path_factory, "general", "pdag") as dep:
        out = run_example("dag", ["run", "--n", "4"], dep.env)
    assert json.loads(out.strip().splitlines()[-1]) == {
        "parent": {"doubled": 8},
        "child": {"from_parent": 8, "plus_one": 9},
    }


def _runs_per_second(out: str) -> float:
    fields = dict(part.split("=", 1) for part in out.strip().splitlines()[-1].split())
    assert int(fields["runs"]) == BENCH_RUNS, out
    return float(fields["runs_per_s"])


def test_noop_runs_per_second_rust_worker_next_to_python_worker(engine, tmp_path_factory, rust_worker):
    drive = ["drive", "--runs", str(BENCH_RUNS)]
    with deployment(engine, tmp_path_factory, "general", "pnoop") as dep:
        python_rate = _runs_per_second(run_example("noop_bench", drive, dep.env))
    ns = f"rnoop{uuid.uuid4().hex[:8]}"
    rust_worker("noop_bench", ["serve", "--slots", "100"], ns, "serving noop")
    rust_rate = _runs_per_second(run_example("noop_bench", drive, engine.env(namespace=ns)))
    measure("noop_worker_rate_python", python_rate, "runs/s", runs=BENCH_RUNS, slots=100, driver="rust noop_bench")
    measure("noop_worker_rate_rust", rust_rate, "runs/s", runs=BENCH_RUNS, slots=100, driver="rust noop_bench")
