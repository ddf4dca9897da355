"""Protocol-level checks with raw stubs: codes for bad input, unknown RPCs, version gate,
GetRunDetails shape, gzip, keepalive, HTTP health endpoints and clean shutdown.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid

import grpc
import pytest

from harness import measure
from harness.engine import store_kind
from rpc import SDK_CHANNEL_OPTIONS, STATUS_NAMES, Rpc, describe, dispatcher, events, explain, trigger, v1, workflows

from conftest import new_client
from workers.defs import EchoInput

pytestmark = pytest.mark.timeout(90)

# Codes that mean "the engine broke", never an acceptable answer to bad input.
BROKEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@pytest.fixture
def rpc(engine):
    r = Rpc(engine.grpc_addr, engine.token)
    yield r
    r.close()


def version_tuple(version: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?", version)
    assert m, f"GetVersion returned {version!r}, not a semantic version"
    return tuple(int(x) for x in m.groups())  # type: ignore[return-value]


# -- version gate ----------------------------------------------------------------------


def test_get_version_is_modern_but_below_the_durable_task_switch(rpc):
    version = rpc.call(rpc.dispatcher.GetVersion, dispatcher.GetVersionRequest()).version
    assert version_tuple(version) >= (0, 78, 23), (
        f"GetVersion {version!r} is below v0.78.23: 1.43.1 falls back to legacy mode"
    )
    durable = grpc.StatusCode.UNIMPLEMENTED
    try:
        stream = rpc.channel.stream_stream("/v1.V1Dispatcher/DurableTask")(
            iter(()), metadata=rpc.metadata(), timeout=3
        )
        next(iter(stream), None)
        durable = grpc.StatusCode.OK
    except grpc.RpcError as e:
        durable = e.code()
    if durable == grpc.StatusCode.UNIMPLEMENTED:
        assert version_tuple(version) < (0, 80, 0), (
            f"GetVersion {version!r} is >= v0.80.0 but V1Dispatcher/DurableTask is UNIMPLEMENTED: "
            "1.43.1 would route durable tasks to a stream that does not exist"
        )


# -- unknown RPCs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/Dispatcher/NoSuchMethod", "/v1.AdminService/NoSuchMethod", "/NoSuchService/Method", "/v2.Dispatcher/Register"],
)
def test_unknown_rpc_is_unimplemented(rpc, path):
    call = rpc.channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as info:
        call(b"", metadata=rpc.metadata(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED, explain(info.value)


# -- bad input -------------------------------------------------------------------------


def task_opts(readable_id: str, workflow: str, parents=()) -> v1.CreateTaskOpts:
    return v1.CreateTaskOpts(
        readable_id=readable_id,
        action=f"{workflow}:{readable_id}",
        timeout="60s",
        schedule_timeout="5m",
        inputs="{}",
        parents=list(parents),
        slot_requests={"default": 1},
    )


def bad_workflow(shape: str) -> v1.CreateWorkflowVersionRequest:
    name = f"bad-{shape}-{uuid.uuid4().hex[:6]}"
    tasks = {
        "cycle": [task_opts("a", name, ["b"]), task_opts("b", name, ["a"])],
        "self-parent": [task_opts("a", name, ["a"])],
        "unknown-parent": [task_opts("a", name), task_opts("b", name, ["ghost"])],
        "duplicate-task": [task_opts("a", name), task_opts("a", name)],
        "no-tasks": [],
        "empty-name": [task_opts("a", name)],
    }[shape]
    return v1.CreateWorkflowVersionRequest(name="" if shape == "empty-name" else name, tasks=tasks)


@pytest.mark.parametrize("shape", ["cycle", "self-parent", "unknown-parent", "duplicate-task", "no-tasks", "empty-name"])
def test_put_workflow_rejects_invalid_dag(rpc, shape):
    err = rpc.error(rpc.admin.PutWorkflow, bad_workflow(shape))
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, (
        f"v1.AdminService/PutWorkflow with a {shape} workflow should be INVALID_ARGUMENT, got {explain(err)}"
    )
    assert err.details(), "INVALID_ARGUMENT should say what is wrong"


def test_v0_put_workflow_rejects_a_cycle(rpc):
    name = f"bad-v0-{uuid.uuid4().hex[:6]}"
    steps = [
        workflows.CreateWorkflowStepOpts(readable_id="a", action=f"{name}:a", timeout="60s", inputs="{}", parents=["b"]),
        workflows.CreateWorkflowStepOpts(readable_id="b", action=f"{name}:b", timeout="60s", inputs="{}", parents=["a"]),
    ]
    req = workflows.PutWorkflowRequest(
        opts=workflows.CreateWorkflowVersionOpts(
            name=name, jobs=[workflows.CreateWorkflowJobOpts(name=name, steps=steps)]
        )
    )
    err = rpc.error(rpc.workflows.PutWorkflow, req)
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, (
        f"WorkflowService/PutWorkflow with a cycle should be INVALID_ARGUMENT, got {explain(err)}"
    )


@pytest.fixture(scope="module")
def echo_name(engine):
    """A registered workflow (`echo`, namespaced) to trigger with bad input."""
    ns = f"p{uuid.uuid4().hex[:8]}"
    hatchet, d = new_client(engine.env(namespace=ns))
    hatchet._client.admin.put_workflow(d.echo.to_proto())
    return d.echo.name


@pytest.mark.parametrize("bad_input", ["[1, 2]", '"a string"', "42", "null", "not json", "{\"unterminated\": "])
def test_trigger_with_non_object_input_is_invalid_argument(rpc, echo_name, bad_input):
    err = rpc.error(rpc.workflows.TriggerWorkflow, trigger.TriggerWorkflowRequest(name=echo_name, input=bad_input))
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, (
        f"TriggerWorkflow(input={bad_input!r}) should be INVALID_ARGUMENT, got {explain(err)}"
    )


def test_trigger_with_bad_additional_metadata_is_invalid_argument(rpc, echo_name):
    req = trigger.TriggerWorkflowRequest(name=echo_name, input="{}", additional_metadata="[not an object")
    err = rpc.error(rpc.workflows.TriggerWorkflow, req)
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, explain(err)


def test_sdk_refuses_or_engine_rejects_non_object_input(engine, echo_name):
    """The SDK validates input client-side; if a list slips through, the engine must refuse it."""
    namespace = echo_name.rsplit("_echo", 1)[0]
    _, d = new_client(engine.env(namespace=namespace))
    try:
        ref = d.echo.run([1, 2], wait_for_result=False)  # type: ignore[arg-type]
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, explain(e)
    except Exception:
        pass  # refused by the SDK before anything was sent
    else:
        pytest.fail(f"a list input was accepted as run {ref.workflow_run_id}")


def test_trigger_unknown_workflow_is_not_found(rpc):
    req = trigger.TriggerWorkflowRequest(name=f"no-such-workflow-{uuid.uuid4().hex[:6]}", input="{}")
    err = rpc.error(rpc.workflows.TriggerWorkflow, req)
    assert err is not None and err.code() == grpc.StatusCode.NOT_FOUND, explain(err)


def test_bulk_trigger_with_one_bad_input_is_rejected(rpc, echo_name):
    req = workflows.BulkTriggerWorkflowRequest(
        workflows=[
            trigger.TriggerWorkflowRequest(name=echo_name, input="{}"),
            trigger.TriggerWorkflowRequest(name=echo_name, input="[]"),
        ]
    )
    err = rpc.error(rpc.workflows.BulkTriggerWorkflow, req)
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, explain(err)


def test_get_run_details_of_unknown_run_is_not_found(rpc):
    err = rpc.error(rpc.admin.GetRunDetails, v1.GetRunDetailsRequest(external_id=str(uuid.uuid4())))
    assert err is not None and err.code() == grpc.StatusCode.NOT_FOUND, explain(err)


def test_get_run_details_with_malformed_id_is_a_clean_error(rpc):
    err = rpc.error(rpc.admin.GetRunDetails, v1.GetRunDetailsRequest(external_id="not-a-uuid"))
    assert err is not None and err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), explain(err)


def test_release_slot_of_unknown_task_is_not_found(rpc):
    err = rpc.error(rpc.dispatcher.ReleaseSlot, dispatcher.ReleaseSlotRequest(task_run_external_id=str(uuid.uuid4())))
    assert err is not None and err.code() == grpc.StatusCode.NOT_FOUND, explain(err)


def test_register_with_both_slot_config_and_legacy_slots_is_invalid_argument(rpc):
    req = dispatcher.WorkerRegisterRequest(
        worker_name="both-slot-kinds", actions=["x:y"], services=["default"], slots=2, slot_config={"default": 2}
    )
    err = rpc.error(rpc.dispatcher.Register, req)
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, explain(err)


def test_oversized_payload_is_refused_cleanly(rpc):
    payload = json.dumps({"blob": "x" * (5 * 1024 * 1024)})
    err = rpc.error(rpc.events.Push, events.PushEventRequest(key="big:event", payload=payload), timeout=30)
    assert err is not None and err.code() not in BROKEN, (
        f"a 5 MB event should be refused (limit 4 MB) with a clean code, got {explain(err)}"
    )
    # and the engine is still fine afterwards
    assert rpc.error(rpc.events.Push, events.PushEventRequest(key="small:event", payload="{}")) is None


# -- GetRunDetails, gzip ---------------------------------------------------------------


def test_get_run_details_of_a_completed_run(general, rpc):
    _, d = general.client()
    ref = d.echo.run(EchoInput(message="details", n=9), wait_for_result=False)
    resp = rpc.wait_done(ref.workflow_run_id, timeout=30)
    assert resp.status == v1.COMPLETED and resp.done, describe(resp)
    assert json.loads(resp.input) == {"message": "details", "n": 9}, describe(resp)
    assert set(resp.task_runs) == {"echo"}, describe(resp)
    task = resp.task_runs["echo"]
    assert STATUS_NAMES[task.status] == "COMPLETED" and task.external_id and task.readable_id == "echo", describe(resp)
    assert json.loads(task.output) == {"echo": "details", "n": 9}, describe(resp)
    assert not task.error, describe(resp)


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.NoCompression])
def test_push_accepted_with_and_without_gzip(rpc, compression):
    request = events.PushEventRequest(key="gzip:probe", payload=json.dumps({"pad": "y" * 2048}))
    resp = rpc.call(rpc.events.Push, request, compression=compression)
    assert resp.event_id, f"Push ({compression.name}) answered without event_id: {resp}"


# -- keepalive -------------------------------------------------------------------------


IDLE_SECS = 35


@pytest.mark.timeout(IDLE_SECS + 40)
def test_idle_channel_with_sdk_keepalive_stays_connected(engine):
    """The SDK pings every 10 s without calls; a strict server sends GOAWAY too_many_pings
    (Go's default after ~20 s, grpc-core's with its third ping, ~30 s): idle past both.

    A dropped connection shows as a connectivity change away from READY while idle
    (grpc would reconnect for the next call, so the call alone proves little).
    """
    rpc = Rpc(engine.grpc_addr, engine.token, options=SDK_CHANNEL_OPTIONS)
    states: list[tuple[float, grpc.ChannelConnectivity]] = []
    lock = threading.Lock()

    def on_change(state: grpc.ChannelConnectivity) -> None:
        with lock:
            states.append((time.monotonic(), state))

    try:
        rpc.call(rpc.dispatcher.GetVersion, dispatcher.GetVersionRequest())
        rpc.channel.subscribe(on_change, try_to_connect=False)
        time.sleep(0.5)
        idle_from = time.monotonic()
        time.sleep(IDLE_SECS)
        with lock:
            changes = [s.name for t, s in states if t >= idle_from]
        err = rpc.error(rpc.dispatcher.GetVersion, dispatcher.GetVersionRequest())
        assert not changes, (
            f"the idle channel's connection was dropped within {IDLE_SECS}s while only "
            f"keepalive pings flowed (connectivity changes: {changes}); the engine must "
            "allow pings every 10 s without calls"
        )
        assert err is None, f"GetVersion after {IDLE_SECS}s idle failed: {explain(err)}"
    finally:
        rpc.channel.unsubscribe(on_change)
        rpc.close()


# -- HTTP and lifecycle ----------------------------------------------------------------


def test_live_and_ready_endpoints(engine):
    for path in ("/api/live", "/api/ready"):
        status, body = engine.http_get(path)
        assert status == 200, f"GET {path} -> {status}: {body[:200]!r}"


@pytest.mark.skipif(store_kind() != "sqlite", reason="only `adze lite` prints a token and the SDK environment")
def test_lite_prints_working_sdk_env_lines(engine):
    log = engine.log_path.read_text(errors="replace")
    found = {}
    for var in ("HATCHET_CLIENT_TOKEN", "HATCHET_CLIENT_HOST_PORT", "HATCHET_CLIENT_TLS_STRATEGY"):
        m = re.search(rf"{var}=[\"']?([^\s\"']+)", log)
        assert m, f"adze lite should print {var}=... on stderr for SDK users\n{engine.stderr_tail(30)}"
        found[var] = m.group(1)
    assert found["HATCHET_CLIENT_HOST_PORT"].endswith(f":{engine.grpc_port}"), found
    assert found["HATCHET_CLIENT_TLS_STRATEGY"] == "none", found
    rpc = Rpc(engine.grpc_addr, found["HATCHET_CLIENT_TOKEN"])
    try:
        err = rpc.error(rpc.events.Push, events.PushEventRequest(key="printed:token", payload="{}"))
        assert err is None, f"the token adze lite printed does not work: {explain(err)}"
    finally:
        rpc.close()


def open_stream(rpc: Rpc, kind: str):
    """Open a long-lived server stream of the given kind; return a closer."""
    if kind == "none":
        return lambda: None
    stop = threading.Event()

    def requests():
        stop.wait()
        return
        yield  # noqa: unreachable — makes this a generator

    if kind == "ListenV2":
        worker_id = rpc.call(
            rpc.dispatcher.Register,
            dispatcher.WorkerRegisterRequest(worker_name="shutdown-probe", actions=["probe:a"], slot_config={"default": 1}),
        ).worker_id
        stream = rpc.dispatcher.ListenV2(dispatcher.WorkerListenRequest(worker_id=worker_id), metadata=rpc.metadata())
    else:
        stream = rpc.dispatcher.SubscribeToWorkflowRuns(requests(), metadata=rpc.metadata())

    def drain():
        try:
            for _ in stream:
                pass
        except grpc.RpcError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    time.sleep(0.5)

    def close():
        stop.set()
        stream.cancel()

    return close


@pytest.mark.parametrize("stream", ["none", "ListenV2", "SubscribeToWorkflowRuns"])
def test_sigterm_shuts_down_cleanly_even_with_open_streams(make_engine, stream):
    """A connected worker (ListenV2) or a client awaiting results (SubscribeToWorkflowRuns)
    must not keep the engine from exiting: it ends the streams and exits 0."""
    eng = make_engine(name="shutdown-engine")
    rpc = Rpc(eng.grpc_addr, eng.token)
    close = open_stream(rpc, stream)
    try:
        started = time.monotonic()
        code = eng.stop(timeout=15)
        measure("sigterm_to_exit", time.monotonic() - started, "s", open_stream=stream)
        assert code == 0, f"adze lite exited {code} on SIGTERM\n{eng.stderr_tail()}"
    finally:
        close()
        rpc.close()
