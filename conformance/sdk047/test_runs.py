"""Triggering 0.47.1 class workflows with admin.run_workflow and awaiting their results
(WorkflowService/TriggerWorkflow, then Dispatcher/SubscribeToWorkflowRuns).

0.47.1's PooledWorkflowRunListener keeps its request queue and lock on the class, bound
to the first event loop that uses them, and each new listener installs a new event loop:
one client serves the whole module, and sync_result() always finds the same loop.
"""

from __future__ import annotations

import uuid

import pytest

from harness import WorkerProcess

from conftest import WORKERS, client_from_env

pytestmark = pytest.mark.timeout(90)


class Dag:
    def __init__(self, hatchet) -> None:
        self.hatchet = hatchet

    def run(self, name: str, input: dict):
        ref = self.hatchet.admin.run_workflow(name, input)
        assert ref.workflow_run_id, "TriggerWorkflow answered without a workflow_run_id"
        return ref.sync_result()


@pytest.fixture(scope="module")
def dag(engine, tmp_path_factory):
    env = engine.env(namespace=f"m{uuid.uuid4().hex[:10]}")
    worker = WorkerProcess(WORKERS / "dag_worker.py", env, tmp_path_factory.mktemp("dag-worker"), name="dag-worker")
    try:
        worker.start().wait_registered()
        yield Dag(client_from_env(env))
    finally:
        worker.close()


def test_dag_second_step_reads_first_step_output(dag):
    assert dag.run("DagFlow", {"n": 4}) == {"first": {"doubled": 8}, "second": {"from_first": 8, "plus_one": 9}}


def test_runs_of_the_same_workflow_get_their_own_results(dag):
    assert dag.run("DagFlow", {"n": 1}) == {"first": {"doubled": 2}, "second": {"from_first": 2, "plus_one": 3}}
    assert dag.run("DagFlow", {"n": 2}) == {"first": {"doubled": 4}, "second": {"from_first": 4, "plus_one": 5}}


def test_failing_step_surfaces_its_error(dag):
    with pytest.raises(Exception) as info:
        dag.run("Failing", {})
    assert "deliberate failure" in str(info.value), repr(info.value)
