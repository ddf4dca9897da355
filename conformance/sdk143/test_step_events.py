"""Dispatcher/SendStepActionEvent from a raw worker: duplicates must be harmless.

1.43.1 sends STARTED twice, from two processes, so the second STARTED can arrive after
COMPLETED. The SDK retries every gRPC error except UNIMPLEMENTED, INVALID_ARGUMENT,
ALREADY_EXISTS, UNAUTHENTICATED, PERMISSION_DENIED and NOT_FOUND up to 20 times with
backoff up to 10 s: an engine that answers a harmless duplicate with any other error gets
a retry storm for every such task. The recorded outcome must never change.
"""

from __future__ import annotations

import json
import uuid

import grpc
import pytest

from rpc import Rpc, describe, dispatcher, explain, trigger, v1

from conftest import new_client

pytestmark = pytest.mark.timeout(60)

SDK_DOES_NOT_RETRY = {
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
}
BROKEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE}


class RawWorker:
    """Register + ListenV2 by hand for one action; send step events for what it gets."""

    def __init__(self, rpc: Rpc, action: str) -> None:
        self.rpc = rpc
        self.worker_id = rpc.call(
            rpc.dispatcher.Register,
            dispatcher.WorkerRegisterRequest(worker_name="raw-worker", actions=[action], slot_config={"default": 1}),
        ).worker_id
        self.stream = rpc.dispatcher.ListenV2(
            dispatcher.WorkerListenRequest(worker_id=self.worker_id), metadata=rpc.metadata(), timeout=50
        )
        self.actions = iter(self.stream)

    def next_action(self):
        return next(self.actions)

    def send(self, action, event_type, payload: str = "") -> grpc.RpcError | None:
        req = dispatcher.StepActionEvent(
            worker_id=self.worker_id,
            job_id=action.job_id,
            job_run_id=action.job_run_id,
            task_id=action.task_id,
            task_run_external_id=action.task_run_external_id,
            action_id=action.action_id,
            event_type=event_type,
            event_payload=payload,
            retry_count=action.retry_count,
        )
        return self.rpc.error(self.rpc.dispatcher.SendStepActionEvent, req)

    def close(self) -> None:
        self.stream.cancel()


@pytest.fixture
def raw(engine):
    ns = f"s{uuid.uuid4().hex[:10]}"
    hatchet, d = new_client(engine.env(namespace=ns))
    proto = d.echo.to_proto()
    hatchet._client.admin.put_workflow(proto)
    rpc = Rpc(engine.grpc_addr, engine.token)
    worker = RawWorker(rpc, proto.tasks[0].action)
    yield rpc, worker, d.echo.name
    worker.close()
    rpc.close()


def test_duplicate_and_late_events_are_harmless(raw):
    rpc, worker, workflow = raw
    run_id = rpc.call(
        rpc.workflows.TriggerWorkflow, trigger.TriggerWorkflowRequest(name=workflow, input='{"message": "dup"}')
    ).workflow_run_id
    action = worker.next_action()
    assert action.action_type == dispatcher.START_STEP_RUN and action.task_run_external_id, action

    started, completed, failed = (
        dispatcher.STEP_EVENT_TYPE_STARTED,
        dispatcher.STEP_EVENT_TYPE_COMPLETED,
        dispatcher.STEP_EVENT_TYPE_FAILED,
    )
    for what, event_type, payload in [
        ("STARTED", started, ""),
        ("STARTED again (the SDK always sends two)", started, ""),
        ("COMPLETED", completed, json.dumps({"recorded": 1})),
    ]:
        err = worker.send(action, event_type, payload)
        assert err is None, f"{what} for a running task should be accepted, got {explain(err)}"

    wrong = {}
    for what, event_type, payload in [
        ("STARTED after COMPLETED (1.43.1's second STARTED racing its COMPLETED)", started, ""),
        ("COMPLETED again, same attempt", completed, json.dumps({"recorded": 2})),
    ]:
        err = worker.send(action, event_type, payload)
        if err is not None and err.code() not in SDK_DOES_NOT_RETRY:
            wrong[what] = explain(err)
    err = worker.send(action, failed, "late failure")
    if err is not None and err.code() in BROKEN:
        wrong["FAILED after COMPLETED"] = explain(err)

    resp = rpc.run_details(run_id)
    assert resp.status == v1.COMPLETED and json.loads(resp.task_runs["echo"].output) == {"recorded": 1}, (
        f"late events must not change the recorded outcome: {describe(resp)}"
    )
    assert not wrong, (
        "duplicate events must be harmless: these answers make hatchet-sdk 1.43.1 retry the "
        f"event up to 20 times with backoff: {wrong}"
    )
