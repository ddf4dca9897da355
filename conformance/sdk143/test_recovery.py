"""Durable before visible: runs a trigger acknowledged survive `kill -9` of the engine."""

from __future__ import annotations

import json

import pytest

from rpc import Rpc, describe, v1

from conftest import new_client, start_worker
from workers.defs import ChainInput, EchoInput

N = 10


@pytest.mark.timeout(150)
def test_queued_runs_survive_engine_sigkill_and_complete_after_restart(make_engine, make_worker, namespace):
    eng = make_engine()
    env = eng.env(namespace=namespace)
    hatchet, d = new_client(env)
    rpc = Rpc(eng.grpc_addr, eng.token)

    # Register the workflow without any worker, so the runs can only queue.
    hatchet._client.admin.put_workflow(d.echo.to_proto())
    refs = [d.echo.run(EchoInput(message=f"q{i}", n=i), wait_for_result=False) for i in range(N)]
    ids = [r.workflow_run_id for r in refs]
    assert len(set(ids)) == N, f"TriggerWorkflow returned duplicate run ids: {ids}"
    for run_id in ids:
        resp = rpc.run_details(run_id)
        assert resp.status == v1.QUEUED and not resp.done, (
            f"with no worker a run should be QUEUED, got {describe(resp)}"
        )

    eng.kill()
    eng.restart()

    for run_id in ids:
        resp = rpc.run_details(run_id)
        assert resp.status == v1.QUEUED and not resp.done, (
            f"after kill -9 and restart run {run_id} should still be QUEUED, got {describe(resp)}"
        )

    start_worker(make_worker, env, "general").wait_registered()
    outs = [ref.result() for ref in refs]
    assert [o["n"] for o in outs] == list(range(N)), outs
    assert [o["echo"] for o in outs] == [f"q{i}" for i in range(N)], outs
    rpc.close()


@pytest.mark.timeout(150)
def test_completed_runs_and_workflows_survive_restart(make_engine, make_worker, namespace):
    eng = make_engine()
    env = eng.env(namespace=namespace)
    worker = start_worker(make_worker, env, "general").wait_registered()
    _, d = new_client(env)
    ref = d.echo.run(EchoInput(message="before", n=1), wait_for_result=False)
    assert ref.result() == {"echo": "before", "n": 1}
    worker.kill()

    eng.kill()
    eng.restart()

    rpc = Rpc(eng.grpc_addr, eng.token)
    resp = rpc.run_details(ref.workflow_run_id)
    assert resp.status == v1.COMPLETED and resp.done, (
        f"a run completed before the crash should stay COMPLETED, got {describe(resp)}"
    )
    rpc.close()

    # The token minted before the crash still works and the workflow is still known.
    start_worker(make_worker, env, "general", name="general-worker-2").wait_registered()
    assert d.echo.run(EchoInput(message="after", n=2)) == {"echo": "after", "n": 2}


@pytest.mark.timeout(150)
def test_connected_worker_carries_on_after_engine_sigkill_and_restart(make_engine, make_worker, namespace):
    """1.43.1 reconnects ListenV2 with the worker id it has; the restarted engine must
    accept it (the worker is in the store) and keep assigning work to it."""
    eng = make_engine()
    env = eng.env(namespace=namespace)
    worker = start_worker(make_worker, env, "general").wait_registered()
    _, d = new_client(env)
    assert d.echo.run(EchoInput(message="before", n=1)) == {"echo": "before", "n": 1}

    eng.kill()
    eng.restart()

    ref = d.echo.run(EchoInput(message="after", n=2), wait_for_result=False)
    assert ref.result() == {"echo": "after", "n": 2}
    worker.check_alive()
    ran = worker.records.of("task", task="echo", workflow_run_id=ref.workflow_run_id)
    assert len(ran) == 1, f"the run after the restart should have run once on the reconnected worker: {ran}"


@pytest.mark.timeout(150)
def test_task_running_during_engine_sigkill_completes_after_restart(make_engine, make_worker, namespace):
    """The worker keeps executing while the engine is down and reports the outcome once
    the restarted engine is back; the run must end COMPLETED with that output."""
    eng = make_engine()
    env = eng.env(namespace=namespace)
    worker = start_worker(make_worker, env, "one_slot").wait_registered()
    _, d = new_client(env)
    ref = d.hold_chain.run(ChainInput(seq=7, heavy=1.0, post=2.0), wait_for_result=False)
    worker.records.wait_for(
        "hold_chain to start",
        lambda recs: worker.records.of("task", task="hold_chain", phase="start", workflow_run_id=ref.workflow_run_id),
        timeout=30,
        alive=worker.check_alive,
    )

    eng.kill()
    eng.restart()

    rpc = Rpc(eng.grpc_addr, eng.token)
    try:
        resp = rpc.wait_done(ref.workflow_run_id, timeout=60)
        assert resp.status == v1.COMPLETED, (
            f"the task that was running when the engine died should complete: {describe(resp)}"
        )
        assert json.loads(resp.task_runs["hold_chain"].output) == {"seq": 7}, describe(resp)
    finally:
        rpc.close()
