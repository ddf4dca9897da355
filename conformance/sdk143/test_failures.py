"""When things go wrong, with hatchet-sdk 1.43.1: retries and their backoff,
NonRetryable errors, execution and schedule timeouts (with and without RefreshTimeout,
released or not), cancellation (queued, running, released, finished, by the task itself,
by filter), replay, and on-failure tasks; and the statuses and errors the SDK reports.

Timing is printed as MEASURE lines, never asserted; the only time checks are lower
bounds the engine guarantees (a backoff is never shorter than its delay).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from hatchet_sdk.exceptions import FailedTaskRunExceptionGroup

from conftest import Deployment, deployment
from harness.measurements import measure, summary
from harness.sdk_env import sdk_environment
from rpc import Rpc, describe, v1
from workers.failure_defs import Tag

pytestmark = pytest.mark.timeout(120)

FAILURE_WORKER = Path(__file__).resolve().parent / "workers" / "failure_worker.py"


@pytest.fixture(scope="module")
def failures(engine, tmp_path_factory) -> Iterator[Deployment]:
    """A 100-slot worker serving failure_defs.py's general workflows."""
    with deployment(engine, tmp_path_factory, "failures", "f", script=FAILURE_WORKER) as dep:
        yield dep


@pytest.fixture(scope="module")
def one_slot(engine, tmp_path_factory) -> Iterator[Deployment]:
    """A one-slot worker: a blocker holds the slot, other tasks queue behind it."""
    with deployment(engine, tmp_path_factory, "one_slot", "q", script=FAILURE_WORKER) as dep:
        yield dep


@pytest.fixture(scope="module")
def rpc(engine) -> Iterator[Rpc]:
    client = Rpc(engine.grpc_addr, engine.token)
    yield client
    client.close()


def client(dep: Deployment):
    from hatchet_sdk import Hatchet

    from workers.failure_defs import define

    with sdk_environment(dep.env):
        hatchet = Hatchet()
    return hatchet, define(hatchet)


def new_tag() -> str:
    return uuid.uuid4().hex[:10]


def starts(dep: Deployment, task: str, tag: str) -> list[dict[str, Any]]:
    found = dep.worker.records.of("task", task=task, phase="start", tag=tag)
    return sorted(found, key=lambda r: r["t"])


def wait_started(dep: Deployment, task: str, tag: str, phase: str = "start") -> dict[str, Any]:
    return dep.worker.records.wait_for(
        f"{task} ({tag}) to reach {phase}",
        lambda _: dep.worker.records.of("task", task=task, phase=phase, tag=tag),
        timeout=30,
        alive=dep.worker.check_alive,
    )[0]


def log_time(dep: Deployment, text: str, what: str) -> float:
    """When the worker's SDK logged `text` (waiting for it)."""
    found = dep.worker.records.wait_for(
        what,
        lambda _: dep.worker.records.logs(text),
        timeout=15,
        alive=dep.worker.check_alive,
    )
    return found[0]["t"]


def rest_get(dep: Deployment, path: str) -> Any:
    request = urllib.request.Request(
        dep.engine.http_url + path, headers={"Authorization": f"Bearer {dep.engine.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def wait_status(rpc: Rpc, run_id: str, status: int, timeout: float = 30) -> v1.GetRunDetailsResponse:
    resp = rpc.wait_done(run_id, timeout=timeout)
    assert resp.status == status, f"run {run_id} should be {v1.RunStatus.Name(status)}: {describe(resp)}"
    return resp


# -- retries ---------------------------------------------------------------------------


def test_a_failing_task_is_retried_until_it_succeeds(failures):
    hatchet, d = client(failures)
    tag = new_tag()
    assert d.flaky.run(Tag(tag=tag)) == {"retry_count": 2}
    runs = starts(failures, "flaky", tag)
    assert [r["retry_count"] for r in runs] == [0, 1, 2], (
        "each retry is a new attempt and the worker sees its retry count"
    )
    attempts = rest_get(failures, f"/api/v1/stable/tasks/{runs[0]['task_run_id']}/attempts")["rows"]
    assert [(a["retryCount"], a["outcome"]) for a in attempts] == [(0, "failed"), (1, "failed"), (2, "completed")]
    assert "flaky attempt 0 fails" in attempts[0]["error"] and attempts[2]["error"] is None
    # (startedAt may be missing: the SDK's STARTED report often arrives after the outcome.)
    assert all(a["workerId"] and a["assignedAt"] and a["finishedAt"] for a in attempts), attempts
    retried = [e for e in task_events(hatchet, runs[0]["task_run_id"]) if e.event_type.value == "RETRYING"]
    assert [e.retry_count for e in retried] == [1, 2]


def test_a_non_retryable_error_is_final_at_once(failures, rpc):
    _, d = client(failures)
    tag = new_tag()
    ref = d.never_retry.run(Tag(tag=tag), wait_for_result=False)
    with pytest.raises(FailedTaskRunExceptionGroup) as info:
        ref.result()
    assert "this failure is final" in str(info.value), str(info.value)
    resp = wait_status(rpc, ref.workflow_run_id, v1.FAILED)
    assert "this failure is final" in resp.task_runs["never_retry"].error
    assert [r["retry_count"] for r in starts(failures, "never_retry", tag)] == [0], (
        "retries=3, but a NonRetryableException is not retried"
    )


def test_retries_wait_out_their_backoff(failures):
    _, d = client(failures)
    tag = new_tag()
    assert d.backoff.run(Tag(tag=tag)) == {"retry_count": 2}
    times = [r["t"] for r in starts(failures, "backoff", tag)]
    assert len(times) == 3, times
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    for retry, (gap, delay) in enumerate(zip(gaps, [2.0, 4.0]), start=1):
        measure("backoff_start_to_start", gap, "s", retry=retry, backoff=f"{delay:g}s")
        # The attempt failed after it started, and the retry waited its delay after that.
        assert gap >= delay, f"retry {retry} started {gap:.2f}s after the attempt before it; backoff is {delay}s"


# -- timeouts --------------------------------------------------------------------------


def test_refreshing_the_timeout_lets_a_task_run_past_it(failures):
    _, d = client(failures)
    tag = new_tag()
    assert d.refreshes.run(Tag(tag=tag)) == {"refreshed": 3}, (
        "a 3 s task with a 2 s timeout refreshed by 2 s each second completes"
    )


def task_events(hatchet, task_id: str) -> list[Any]:
    """The task's history through the SDK's REST client (so its models must parse it)."""
    with hatchet.runs.client() as rest:
        return hatchet.runs._ta(rest).v1_task_event_list(task=task_id).rows


def test_tasks_past_their_timeout_fail_and_their_worker_gets_the_cancel(failures, rpc):
    hatchet, d = client(failures)
    tag = new_tag()
    refs = [d.slow.run(Tag(tag=f"{tag}-{i}"), wait_for_result=False) for i in range(5)]
    late = []
    for ref in refs:
        resp = wait_status(rpc, ref.workflow_run_id, v1.FAILED)
        task = resp.task_runs["slow"]
        assert "execution timeout of 2s" in task.error, describe(resp)
        failures.wait_for_cancel(task.external_id, "the timed-out task")
        events = {event.event_type.value: event for event in task_events(hatchet, task.external_id)}
        assert {"ASSIGNED", "TIMED_OUT", "FAILED"} <= set(events), sorted(events)
        # Both times are the engine's: when the attempt was assigned, when it timed out.
        fired = events["TIMED_OUT"].timestamp - events["ASSIGNED"].timestamp
        late.append(fired.total_seconds() - 2.0)
    stats = summary(late)
    measure("timeout_fired_past_deadline_median", stats["median"] * 1000, "ms", n=stats["n"])
    measure("timeout_fired_past_deadline_worst", stats["worst"] * 1000, "ms", n=stats["n"])


def test_a_released_task_past_its_timeout_still_gets_the_cancel(failures, rpc):
    _, d = client(failures)
    tag = new_tag()
    ref = d.released_slow.run(Tag(tag=tag), wait_for_result=False)
    resp = wait_status(rpc, ref.workflow_run_id, v1.FAILED)
    task = resp.task_runs["released_slow"]
    assert "timeout" in task.error, describe(resp)
    wait_started(failures, "released_slow", tag, phase="released")
    failures.wait_for_cancel(task.external_id, "the released task past its timeout")


def test_a_task_no_slot_frees_for_fails_at_its_schedule_timeout(one_slot, rpc):
    hatchet, d = client(one_slot)
    tag = new_tag()
    blocker = d.blocker.run(Tag(tag=tag, seconds=120), wait_for_result=False)
    try:
        wait_started(one_slot, "blocker", tag)
        ref = d.waits_in_line.run(Tag(tag=tag), wait_for_result=False)
        resp = wait_status(rpc, ref.workflow_run_id, v1.FAILED)
        error = resp.task_runs["waits_in_line"].error
        assert "schedule timeout of 2s" in error, describe(resp)
        assert not starts(one_slot, "waits_in_line", tag), "it never reached the worker"
    finally:
        hatchet.runs.cancel(blocker.workflow_run_id)
        wait_status(rpc, blocker.workflow_run_id, v1.CANCELLED)


# -- cancellation ----------------------------------------------------------------------


def test_a_cancelled_queued_run_never_starts(one_slot, rpc):
    hatchet, d = client(one_slot)
    tag = new_tag()
    blocker = d.blocker.run(Tag(tag=tag, seconds=120), wait_for_result=False)
    wait_started(one_slot, "blocker", tag)
    queued = d.queued_behind.run(Tag(tag=f"{tag}-cancelled"), wait_for_result=False)
    hatchet.runs.cancel(queued.workflow_run_id)
    resp = wait_status(rpc, queued.workflow_run_id, v1.CANCELLED)
    assert resp.task_runs["queued_behind"].error == "task cancelled", describe(resp)
    with pytest.raises(Exception, match="cancelled"):
        queued.result()

    hatchet.runs.cancel(blocker.workflow_run_id)
    wait_status(rpc, blocker.workflow_run_id, v1.CANCELLED)
    # FIFO: had the cancelled run stayed queued, it would run before this one.
    after = d.queued_behind.run(Tag(tag=f"{tag}-after"))
    assert after == {"tag": f"{tag}-after"}
    assert not starts(one_slot, "queued_behind", f"{tag}-cancelled")


def test_cancelling_a_running_task_reaches_its_worker(failures, rpc):
    hatchet, d = client(failures)
    tag = new_tag()
    delays = []
    for i in range(5):
        ref = d.sleeper.run(Tag(tag=f"{tag}-{i}", seconds=120), wait_for_result=False)
        task_id = wait_started(failures, "sleeper", f"{tag}-{i}")["task_run_id"]
        asked = time.time()
        hatchet.runs.cancel(ref.workflow_run_id)
        received = log_time(failures, f"rx: cancel step run: {task_id}", "the cancel of the running task")
        delays.append(received - asked)
        resp = wait_status(rpc, ref.workflow_run_id, v1.CANCELLED)
        assert resp.task_runs["sleeper"].error == "task cancelled", describe(resp)
        with pytest.raises(Exception, match="cancelled"):
            ref.result()
    stats = summary(delays)
    measure("cancel_to_worker_median", stats["median"] * 1000, "ms", n=stats["n"], via="REST runs.cancel")
    measure("cancel_to_worker_worst", stats["worst"] * 1000, "ms", n=stats["n"], via="REST runs.cancel")
    assert not failures.worker.records.of("task", task="sleeper", phase="end", tag=f"{tag}-0")


def test_cancelling_a_released_task_still_reaches_its_worker(failures, rpc):
    hatchet, d = client(failures)
    tag = new_tag()
    ref = d.sleeper.run(Tag(tag=tag, seconds=-120), wait_for_result=False)
    task_id = wait_started(failures, "sleeper", tag, phase="released")["task_run_id"]
    hatchet.runs.cancel(ref.workflow_run_id)
    failures.wait_for_cancel(task_id, "the released task")
    wait_status(rpc, ref.workflow_run_id, v1.CANCELLED)


def test_aio_run_of_a_cancelled_run_raises(failures):
    hatchet, d = client(failures)
    tag = new_tag()

    async def scenario() -> None:
        ref = await d.sleeper.aio_run(Tag(tag=tag, seconds=120), wait_for_result=False)
        waiting = asyncio.ensure_future(ref.aio_result())
        await asyncio.to_thread(wait_started, failures, "sleeper", tag)
        await hatchet.runs.aio_cancel(ref.workflow_run_id)
        with pytest.raises(Exception, match="cancelled"):
            await asyncio.wait_for(waiting, timeout=30)

    asyncio.run(scenario())


def test_cancelling_a_finished_run_is_a_no_op(failures, rpc):
    hatchet, d = client(failures)
    tag = new_tag()
    ref = d.quick.run(Tag(tag=tag), wait_for_result=False)
    assert ref.result() == {"tag": tag}
    hatchet.runs.cancel(ref.workflow_run_id)  # no error
    resp = rpc.call(rpc.admin.CancelTasks, v1.CancelTasksRequest(external_ids=[ref.workflow_run_id]))
    assert list(resp.cancelled_tasks) == [], "nothing was left to cancel"
    wait_status(rpc, ref.workflow_run_id, v1.COMPLETED)


def test_a_task_can_cancel_itself(failures, rpc):
    _, d = client(failures)
    tag = new_tag()
    ref = d.self_cancel.run(Tag(tag=tag), wait_for_result=False)
    wait_status(rpc, ref.workflow_run_id, v1.CANCELLED)
    assert not failures.worker.records.of("task", task="self_cancel", phase="end", tag=tag)


def test_children_of_a_cancelled_task_never_start(failures, rpc):
    hatchet, d = client(failures)
    tag = new_tag()
    ref = d.held_chain.run(Tag(tag=tag), wait_for_result=False)
    wait_started(failures, "hold", tag)
    hatchet.runs.cancel(ref.workflow_run_id)
    resp = wait_status(rpc, ref.workflow_run_id, v1.CANCELLED)
    child = resp.task_runs["after_hold"]
    assert child.status == v1.CANCELLED and "ancestor task was cancelled" in child.error, describe(resp)
    assert not starts(failures, "after_hold", tag)


def test_cancel_tasks_by_filter(failures, rpc):
    _, d = client(failures)
    tag = new_tag()
    batch = [
        d.sleeper.run(Tag(tag=f"{tag}-{i}", seconds=120), wait_for_result=False, additional_metadata={"batch": tag})
        for i in range(2)
    ]
    other = d.sleeper.run(Tag(tag=f"{tag}-other", seconds=120), wait_for_result=False, additional_metadata={"batch": "other"})
    for i in range(2):
        wait_started(failures, "sleeper", f"{tag}-{i}")
    wait_started(failures, "sleeper", f"{tag}-other")
    since = Timestamp()
    since.FromSeconds(int(time.time()) - 300)
    bad = rpc.error(
        rpc.admin.CancelTasks,
        v1.CancelTasksRequest(filter=v1.TasksFilter(since=since, statuses=["SLEEPING"])),
    )
    assert bad is not None and bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "statuses[0]" in bad.details()

    resp = rpc.call(
        rpc.admin.CancelTasks,
        v1.CancelTasksRequest(
            filter=v1.TasksFilter(since=since, statuses=["RUNNING"], additional_metadata=[f"batch:{tag}"])
        ),
    )
    assert len(resp.cancelled_tasks) == 2, resp
    for ref in batch:
        wait_status(rpc, ref.workflow_run_id, v1.CANCELLED)
    assert rpc.run_details(other.workflow_run_id).status == v1.RUNNING, "another batch is not touched"
    resp = rpc.call(rpc.admin.CancelTasks, v1.CancelTasksRequest(external_ids=[other.workflow_run_id]))
    assert len(resp.cancelled_tasks) == 1
    wait_status(rpc, other.workflow_run_id, v1.CANCELLED)


def test_cancelling_an_unknown_id_is_not_found(rpc):
    err = rpc.error(rpc.admin.CancelTasks, v1.CancelTasksRequest(external_ids=[str(uuid.uuid4())]))
    assert err is not None and err.code() == grpc.StatusCode.NOT_FOUND, err
    err = rpc.error(rpc.admin.CancelTasks, v1.CancelTasksRequest(external_ids=["not-a-uuid"]))
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT and "externalIds[0]" in err.details()


# -- replay ----------------------------------------------------------------------------


def test_replaying_a_failed_run_runs_it_again_as_a_new_attempt(failures, rpc):
    hatchet, d = client(failures)
    tag = new_tag()
    ref = d.fails_first_time.run(Tag(tag=tag), wait_for_result=False)
    wait_status(rpc, ref.workflow_run_id, v1.FAILED)
    hatchet.runs.replay(ref.workflow_run_id)
    resp = wait_status(rpc, ref.workflow_run_id, v1.COMPLETED)
    assert ref.result() == {"tag": tag, "retry_count": 1}, describe(resp)
    assert [r["retry_count"] for r in starts(failures, "fails_first_time", tag)] == [0, 1]


def test_replaying_a_dag_task_runs_its_descendants_again(failures, rpc):
    _, d = client(failures)
    tag = new_tag()
    ref = d.chain.run(Tag(tag=tag), wait_for_result=False)
    assert ref.result() == {"first": {"attempt": 0}, "second": {"parent_attempt": 0}}
    first = rpc.run_details(ref.workflow_run_id).task_runs["first"].external_id
    resp = rpc.call(rpc.admin.ReplayTasks, v1.ReplayTasksRequest(external_ids=[first]))
    assert len(resp.replayed_tasks) == 2, "the task and its child"
    wait_status(rpc, ref.workflow_run_id, v1.COMPLETED)
    assert ref.result() == {"first": {"attempt": 1}, "second": {"parent_attempt": 1}}
    assert [r["retry_count"] for r in starts(failures, "second", tag)] == [0, 1]
    # The replayed parent output reached the child.
    assert starts(failures, "second", tag)[1]["parent"] == {"attempt": 1}


def test_replaying_by_filter_is_refused_clearly(rpc):
    since = Timestamp()
    since.FromSeconds(int(time.time()) - 60)
    err = rpc.error(rpc.admin.ReplayTasks, v1.ReplayTasksRequest(filter=v1.TasksFilter(since=since)))
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT and "filter" in err.details()


# -- on-failure ------------------------------------------------------------------------


def test_the_on_failure_task_runs_once_and_sees_the_errors(failures, rpc):
    _, d = client(failures)
    tag = new_tag()
    ref = d.with_cleanup.run(Tag(tag=tag), wait_for_result=False)
    with pytest.raises(FailedTaskRunExceptionGroup) as info:
        ref.result()
    assert "explode went off" in str(info.value), str(info.value)
    cleanups = starts(failures, "cleanup", tag)
    assert len(cleanups) == 1, cleanups
    errors = cleanups[0]["errors"]
    assert list(errors) == ["explode"] and "explode went off" in errors["explode"], errors
    assert not starts(failures, "after_explode", tag), "a failed task's children never start"
    resp = wait_status(rpc, ref.workflow_run_id, v1.FAILED)
    # The SDK registers an on-failure task as `<name>-on-failure`.
    assert "cleanup-on-failure" in resp.task_runs, describe(resp)
    assert resp.task_runs["cleanup-on-failure"].status == v1.COMPLETED, describe(resp)
    assert resp.task_runs["after_explode"].status == v1.CANCELLED, describe(resp)



def test_bulk_cancel_by_filter_through_rest(failures, rpc):
    from datetime import datetime, timedelta, timezone

    from hatchet_sdk.clients.rest.models.v1_task_status import V1TaskStatus
    from hatchet_sdk.features.runs import BulkCancelReplayOpts, RunFilter

    hatchet, d = client(failures)
    tag = new_tag()
    refs = [
        d.sleeper.run(Tag(tag=f"{tag}-{i}", seconds=120), wait_for_result=False, additional_metadata={"rest": tag})
        for i in range(2)
    ]
    for i in range(2):
        wait_started(failures, "sleeper", f"{tag}-{i}")
    for since in (datetime.now(timezone.utc) - timedelta(minutes=5), datetime.utcnow() - timedelta(minutes=5)):
        # Aware and naive datetimes both reach the engine as a `since` it accepts.
        hatchet.runs.bulk_cancel(
            BulkCancelReplayOpts(
                filters=RunFilter(since=since, statuses=[V1TaskStatus.RUNNING], additional_metadata={"rest": tag})
            )
        )
    for ref in refs:
        wait_status(rpc, ref.workflow_run_id, v1.CANCELLED)
