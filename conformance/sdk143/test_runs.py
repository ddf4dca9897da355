"""Triggering tasks and DAGs with hatchet-sdk 1.43.1 and reading their results.

`run()` / `ref.result()` poll v1.AdminService/GetRunDetails; `aio_run()` waits on the
Dispatcher/SubscribeToWorkflowRuns stream. Both paths are exercised for each shape.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from hatchet_sdk.exceptions import FailedTaskRunExceptionGroup

from workers.defs import DagInput, EchoInput

pytestmark = pytest.mark.timeout(90)


def test_run_returns_the_task_output(general):
    _, d = general.client()
    out = d.echo.run(EchoInput(message="hello", n=3))
    assert out == {"echo": "hello", "n": 3}


def test_aio_run_returns_the_task_output(general):
    _, d = general.client()
    out = asyncio.run(d.aecho.aio_run(EchoInput(message="async hello", n=4)))
    assert out == {"echo": "async hello", "n": 4, "async": True}


def test_run_without_waiting_then_result(general):
    _, d = general.client()
    ref = d.echo.run(EchoInput(message="later", n=5), wait_for_result=False)
    assert ref.workflow_run_id, "TriggerWorkflow answered without a workflow_run_id"
    assert ref.result() == {"echo": "later", "n": 5}


def test_several_concurrent_aio_runs_each_get_their_own_result(general):
    _, d = general.client()

    async def many():
        return await asyncio.gather(*(d.aecho.aio_run(EchoInput(message=f"m{i}", n=i)) for i in range(10)))

    outs = asyncio.run(many())
    assert [o["n"] for o in outs] == list(range(10))
    assert [o["echo"] for o in outs] == [f"m{i}" for i in range(10)]


def test_dag_child_reads_its_parent_output(general):
    _, d = general.client()
    out = d.dag.run(DagInput(n=21))
    assert out == {"parent": {"doubled": 42}, "child": {"from_parent": 42, "plus_one": 43}}


def test_dag_via_aio_run(general):
    _, d = general.client()
    out = asyncio.run(d.dag.aio_run(DagInput(n=5)))
    assert out == {"parent": {"doubled": 10}, "child": {"from_parent": 10, "plus_one": 11}}


def test_dag_child_runs_after_parent(general):
    _, d = general.client()
    ref = d.dag.run(DagInput(n=1), wait_for_result=False)
    ref.result()
    recs = {
        r["task"]: r
        for r in general.worker.records.of("task", workflow_run_id=ref.workflow_run_id)
    }
    assert set(recs) == {"parent", "child"}, f"task records for the run: {recs}"
    assert recs["child"]["parent_output"] == {"doubled": 2}
    assert recs["parent"]["t"] <= recs["child"]["t"]


def test_failing_task_is_reported_failed_by_run(general):
    _, d = general.client()
    with pytest.raises(FailedTaskRunExceptionGroup) as info:
        d.fails.run()
    assert "deliberate failure" in str(info.value), str(info.value)


def test_failing_task_is_reported_failed_by_aio_run(general):
    _, d = general.client()
    with pytest.raises(Exception) as info:
        asyncio.run(d.fails.aio_run())
    assert "deliberate failure" in str(info.value), repr(info.value)


def test_task_spawns_child_runs_and_gets_their_results(general):
    _, d = general.client()
    out = d.spawner.run(EchoInput(message="kid", n=3))
    assert out == {
        "children": [{"echo": f"kid-child{i}", "n": i, "async": True} for i in range(3)]
    }, out


def test_ctx_log_lines_are_accepted(general):
    _, d = general.client()
    assert d.logs.run() == {"logged": 2}
    time.sleep(1.0)  # the SDK sends log lines from a background thread
    failures = general.worker.records.logs("failed to send log to Hatchet")
    assert not failures, f"EventsService/PutLog failed for ctx.log: {failures[:2]}"


def test_bulk_trigger_runs_them_all(general):
    _, d = general.client()
    items = [d.echo.create_bulk_run_item(EchoInput(message=f"b{i}", n=i)) for i in range(5)]
    outs = d.echo.run_many(items)
    assert sorted(o["n"] for o in outs) == list(range(5))


def test_task_past_its_execution_timeout_fails_and_its_worker_gets_the_cancel(general):
    from rpc import Rpc, describe, v1

    _, d = general.client()
    ref = d.times_out.run(wait_for_result=False)
    rpc = Rpc(general.engine.grpc_addr, general.engine.token)
    try:
        resp = rpc.wait_done(ref.workflow_run_id, timeout=30)
        assert resp.status == v1.FAILED, f"a task past its 3 s execution timeout should be FAILED: {describe(resp)}"
        task = resp.task_runs.get("times_out")
        assert task is not None and "time" in task.error.lower(), (
            f"the error should say the task timed out: {describe(resp)}"
        )
        general.wait_for_cancel(task.external_id, "the timed-out task")
    finally:
        rpc.close()
