"""Tokens: the SDK never checks a signature, so the engine must refuse forgeries.

Each bad token is tried on one RPC of every service a client or worker uses; each must
answer UNAUTHENTICATED. A valid token must work with either `bearer` or `Bearer`.
"""

from __future__ import annotations

import time
import uuid

import grpc
import pytest

from harness import jwt
from rpc import Rpc, dispatcher, events, explain, trigger, v1

from conftest import start_worker

pytestmark = pytest.mark.timeout(90)


def authenticated_calls(rpc: Rpc):
    """(name, stub method, request) for one RPC per service path family."""
    return [
        (
            "Dispatcher/Register",
            rpc.dispatcher.Register,
            dispatcher.WorkerRegisterRequest(worker_name="forger", actions=["x:y"], services=["default"], slot_config={"default": 1}),
        ),
        ("EventsService/Push", rpc.events.Push, events.PushEventRequest(key="auth:probe", payload="{}")),
        (
            "WorkflowService/TriggerWorkflow",
            rpc.workflows.TriggerWorkflow,
            trigger.TriggerWorkflowRequest(name="auth-probe", input="{}"),
        ),
        (
            "v1.AdminService/PutWorkflow",
            rpc.admin.PutWorkflow,
            v1.CreateWorkflowVersionRequest(
                name="auth-probe",
                tasks=[v1.CreateTaskOpts(readable_id="t", action="auth-probe:t", timeout="60s", inputs="{}")],
            ),
        ),
        ("v1.AdminService/GetRunDetails", rpc.admin.GetRunDetails, v1.GetRunDetailsRequest(external_id=str(uuid.uuid4()))),
    ]


@pytest.fixture(scope="module")
def other_engine(tmp_path_factory):
    """A second engine: its data dir holds a different signing key."""
    from harness import Engine

    eng = Engine(tmp_path_factory.mktemp("other-engine"), name="other-engine")
    try:
        eng.start()
        yield eng
    finally:
        eng.close()


def forged_tokens(engine, other_engine) -> dict[str, str]:
    good = engine.token
    claims = jwt.claims(good)
    foreign = other_engine.mint_token(
        grpc_broadcast_address=engine.grpc_addr, server_url=engine.http_url, tenant=claims["sub"]
    )
    return {
        "signature changed": jwt.with_flipped_signature(good),
        "signed by another engine's data dir": foreign,
        "claims changed (other tenant), signature kept": jwt.with_claims(good, sub=str(uuid.uuid4())),
        "alg none, no signature": jwt.unsigned(good),
        "not a JWT": "eyJub3QiOiJhIGp3dCJ9",
    }


def test_minted_token_carries_the_claims_the_sdk_needs(engine):
    claims = jwt.claims(engine.token)
    for key in ("sub", "server_url", "grpc_broadcast_address", "token_id"):
        assert claims.get(key), f"token is missing claim {key!r}: {claims}"
    uuid.UUID(claims["sub"])
    assert claims["grpc_broadcast_address"] == engine.grpc_addr
    assert claims["server_url"] == engine.http_url


@pytest.mark.parametrize(
    "kind",
    [
        "signature changed",
        "signed by another engine's data dir",
        "claims changed (other tenant), signature kept",
        "alg none, no signature",
        "not a JWT",
    ],
)
def test_forged_token_is_unauthenticated_on_every_service(engine, other_engine, kind):
    token = forged_tokens(engine, other_engine)[kind]
    rpc = Rpc(engine.grpc_addr, token)
    try:
        wrong = {}
        for name, method, request in authenticated_calls(rpc):
            err = rpc.error(method, request)
            if err is None or err.code() != grpc.StatusCode.UNAUTHENTICATED:
                wrong[name] = explain(err)
        assert not wrong, f"token ({kind}) should be UNAUTHENTICATED everywhere; instead: {wrong}"
    finally:
        rpc.close()


def test_missing_authorization_is_unauthenticated(engine):
    rpc = Rpc(engine.grpc_addr, None)
    try:
        wrong = {}
        for name, method, request in authenticated_calls(rpc):
            err = rpc.error(method, request)
            if err is None or err.code() != grpc.StatusCode.UNAUTHENTICATED:
                wrong[name] = explain(err)
        assert not wrong, f"calls without an authorization header should be UNAUTHENTICATED: {wrong}"
    finally:
        rpc.close()


@pytest.mark.parametrize("scheme", ["bearer", "Bearer", "BEARER"])
def test_valid_token_accepted_whatever_the_scheme_case(engine, scheme):
    rpc = Rpc(engine.grpc_addr, engine.token)
    try:
        err = rpc.error(rpc.events.Push, events.PushEventRequest(key="auth:probe", payload="{}"), scheme=scheme)
        assert err is None, f"Push with '{scheme} <valid token>' failed: {explain(err)}"
    finally:
        rpc.close()


def test_sdk_push_with_forged_token_raises_unauthenticated(engine, other_engine):
    from conftest import new_client

    hatchet, _ = new_client(engine.env(token=jwt.with_flipped_signature(engine.token)))
    with pytest.raises(grpc.RpcError) as info:
        hatchet.event.push("auth:probe", {"x": 1})
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, explain(info.value)


def test_sdk_worker_with_forged_token_cannot_register(engine, other_engine, make_worker, namespace):
    token = forged_tokens(engine, other_engine)["signed by another engine's data dir"]
    worker = start_worker(make_worker, engine.env(namespace=namespace, token=token), "general", name="forged-worker")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.running and "UNAUTHENTICATED" not in worker.log_path.read_text():
        time.sleep(0.2)
    assert "UNAUTHENTICATED" in worker.log_path.read_text(), (
        "a worker with a forged token should fail on PutWorkflow with UNAUTHENTICATED:\n"
        + worker.output_tail()
    )
    assert not worker.records.logs("acquired action listener"), "a forged token registered a worker"
