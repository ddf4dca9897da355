"""A worker killed with SIGKILL mid-task: its tasks fail with "worker lost".

Hatchet leaves a task that released its slot RUNNING forever when its worker dies;
Adze keeps it bound to its worker, so it must fail like the one that kept its slot.
The engine runs with a short heartbeat timeout and listen grace so detection is quick.
"""

from __future__ import annotations

import time

import pytest

from hatchet_sdk.exceptions import FailedTaskRunExceptionGroup

from harness import measure
from rpc import STATUS_NAMES, Rpc, describe, v1

from conftest import new_client, start_worker

HEARTBEAT_TIMEOUT = 8
LISTEN_GRACE = 2
DETECTION_BUDGET = 60  # seconds from the kill until both runs must be FAILED


@pytest.mark.timeout(150)
def test_killed_worker_fails_released_and_holding_tasks_with_worker_lost(make_engine, make_worker, namespace):
    eng = make_engine(heartbeat_timeout=HEARTBEAT_TIMEOUT, listen_grace=LISTEN_GRACE)
    env = eng.env(namespace=namespace)
    worker = start_worker(make_worker, env, "lost").wait_registered()

    _, d = new_client(env)
    released_ref = d.lost_released.run(wait_for_result=False)
    holding_ref = d.lost_holding.run(wait_for_result=False)

    worker.records.wait_for(
        "lost_released to release its slot and lost_holding to start",
        lambda recs: worker.records.of("task", task="lost_released", phase="released")
        and worker.records.of("task", task="lost_holding", phase="start"),
        timeout=30,
        alive=worker.check_alive,
    )

    rpc = Rpc(eng.grpc_addr, eng.token)
    for ref in (released_ref, holding_ref):
        before = rpc.run_details(ref.workflow_run_id)
        assert before.status == v1.RUNNING, (
            f"a task that is executing on a live worker should be RUNNING: {describe(before)}"
        )

    worker.kill()
    killed_at = time.monotonic()

    failed_after: dict[str, float] = {}
    final: dict[str, v1.GetRunDetailsResponse] = {}
    while time.monotonic() - killed_at < DETECTION_BUDGET and len(final) < 2:
        for label, ref in (("released", released_ref), ("holding", holding_ref)):
            if label in final:
                continue
            resp = rpc.run_details(ref.workflow_run_id)
            if resp.done or resp.status in (v1.FAILED, v1.COMPLETED, v1.CANCELLED):
                final[label] = resp
                failed_after[label] = time.monotonic() - killed_at
        time.sleep(0.2)

    for label, ref in (("released", released_ref), ("holding", holding_ref)):
        resp = final.get(label) or rpc.run_details(ref.workflow_run_id)
        task = f"lost_{label}"
        assert resp.status == v1.FAILED and resp.done, (
            f"{task}: {DETECTION_BUDGET}s after its worker was SIGKILLed GetRunDetails should say "
            f"FAILED/done, got {describe(resp)}"
        )
        detail = resp.task_runs.get(task)
        assert detail is not None, f"{task} missing from task_runs: {describe(resp)}"
        assert STATUS_NAMES.get(detail.status) == "FAILED", describe(resp)
        assert "worker lost" in detail.error.lower(), (
            f"{task}: the task error should say 'worker lost', got {detail.error!r}"
        )

    # The SDK's own path (GetRunDetails polling in ref.result()) reports the same.
    with pytest.raises(FailedTaskRunExceptionGroup) as info:
        released_ref.result()
    assert "worker lost" in str(info.value).lower(), str(info.value)

    for label, secs in failed_after.items():
        measure(
            f"worker_lost_detection_{label}",
            secs,
            "s",
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            listen_grace=LISTEN_GRACE,
        )
    rpc.close()


@pytest.mark.timeout(150)
def test_task_lost_with_its_worker_is_retried_by_its_policy_on_another_worker(make_engine, make_worker, namespace):
    eng = make_engine(heartbeat_timeout=HEARTBEAT_TIMEOUT, listen_grace=LISTEN_GRACE)
    env = eng.env(namespace=namespace)
    first = start_worker(make_worker, env, "lost", name="first-worker").wait_registered()

    _, d = new_client(env)
    ref = d.lost_then_retried.run(wait_for_result=False)
    first.records.wait_for(
        "the first attempt to release its slot",
        lambda recs: first.records.of("task", task="lost_then_retried", phase="released"),
        timeout=30,
        alive=first.check_alive,
    )
    first.kill()

    second = start_worker(make_worker, env, "lost", name="second-worker").wait_registered()
    out = ref.result()
    assert out == {"retry_count": 1}, (
        f"after 'worker lost' the task (retries=1) should run again as retry 1, got {out}"
    )
    attempts = second.records.of("task", task="lost_then_retried", phase="start")
    assert [a["retry_count"] for a in attempts] == [1], attempts
