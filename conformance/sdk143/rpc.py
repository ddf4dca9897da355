"""Raw gRPC access to the engine with hatchet-sdk 1.43.1's generated stubs.

For the protocol-level checks the SDK would hide (status codes, malformed requests)
and for reading run state without the SDK's retry loops. Channels use the same
options as the SDK's own (gzip, 10 s keepalive pings without calls).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import grpc

from hatchet_sdk.contracts import dispatcher_pb2 as dispatcher
from hatchet_sdk.contracts import dispatcher_pb2_grpc as dispatcher_grpc
from hatchet_sdk.contracts import events_pb2 as events
from hatchet_sdk.contracts import events_pb2_grpc as events_grpc
from hatchet_sdk.contracts import workflows_pb2 as workflows
from hatchet_sdk.contracts import workflows_pb2_grpc as workflows_grpc
from hatchet_sdk.contracts.v1 import workflows_pb2 as v1
from hatchet_sdk.contracts.v1 import workflows_pb2_grpc as v1_grpc
from hatchet_sdk.contracts.v1.shared import trigger_pb2 as trigger

SDK_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10 * 1000),
    ("grpc.keepalive_timeout_ms", 60 * 1000),
    ("grpc.client_idle_timeout_ms", 60 * 1000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.default_compression_algorithm", grpc.Compression.Gzip),
]

_DEFAULT = object()

STATUS_NAMES = {v: k for k, v in v1.RunStatus.items()}

__all__ = [
    "Rpc",
    "dispatcher",
    "events",
    "workflows",
    "v1",
    "trigger",
    "STATUS_NAMES",
]


class Rpc:
    def __init__(self, addr: str, token: str | None, options: list[tuple[str, Any]] | None = None) -> None:
        self.addr = addr
        self.token = token
        self.channel = grpc.insecure_channel(addr, options=options or SDK_CHANNEL_OPTIONS)
        self.dispatcher = dispatcher_grpc.DispatcherStub(self.channel)
        self.events = events_grpc.EventsServiceStub(self.channel)
        self.workflows = workflows_grpc.WorkflowServiceStub(self.channel)
        self.admin = v1_grpc.AdminServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def metadata(self, token: Any = _DEFAULT, scheme: str = "bearer") -> list[tuple[str, str]]:
        token = self.token if token is _DEFAULT else token
        return [] if token is None else [("authorization", f"{scheme} {token}")]

    def call(
        self,
        method: Callable[..., Any],
        request: Any,
        *,
        token: Any = _DEFAULT,
        scheme: str = "bearer",
        timeout: float = 10.0,
        **grpc_kwargs: Any,
    ) -> Any:
        return method(request, metadata=self.metadata(token, scheme), timeout=timeout, **grpc_kwargs)

    def error(self, method: Callable[..., Any], request: Any, **kw: Any) -> grpc.RpcError | None:
        """The call's error, or None when it succeeded."""
        try:
            self.call(method, request, **kw)
        except grpc.RpcError as e:
            return e
        return None

    # -- run state ---------------------------------------------------------------------

    def run_details(self, run_id: str, **kw: Any) -> v1.GetRunDetailsResponse:
        return self.call(self.admin.GetRunDetails, v1.GetRunDetailsRequest(external_id=run_id), **kw)

    def wait_done(self, run_id: str, timeout: float, poll: float = 0.1) -> v1.GetRunDetailsResponse:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.run_details(run_id)
                if last.done:
                    return last
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                last = e
            time.sleep(poll)
        raise AssertionError(
            f"run {run_id} not done after {timeout:.0f}s; last GetRunDetails: {describe(last)}"
        )


def describe(resp: Any) -> str:
    """GetRunDetailsResponse (or an RpcError) as one readable line."""
    if isinstance(resp, grpc.RpcError):
        return f"error {resp.code().name}: {resp.details()}"
    if not isinstance(resp, v1.GetRunDetailsResponse):
        return repr(resp)
    tasks = {
        k: {
            "status": STATUS_NAMES.get(t.status, t.status),
            "error": t.error or None,
            "output": t.output.decode(errors="replace") if t.output else None,
        }
        for k, t in resp.task_runs.items()
    }
    return json.dumps(
        {
            "status": STATUS_NAMES.get(resp.status, resp.status),
            "done": resp.done,
            "input": resp.input.decode(errors="replace") if resp.input else None,
            "task_runs": tasks,
        }
    )


def code(err: grpc.RpcError | None) -> str:
    return "OK" if err is None else err.code().name


def explain(err: grpc.RpcError | None) -> str:
    return "the call succeeded" if err is None else f"{err.code().name}: {err.details()!r}"
