"""`adze server` replicas on one PostgreSQL, and what they survive (issue 3's crash suite).

These tests always run on PostgreSQL (found or started by `adze-testdb`), whatever
ADZE_CONFORMANCE_STORE says; with ADZE_CONFORMANCE_STORE=postgres they are skipped,
having run already in the suite's SQLite pass.

Measured, not asserted: the takeover time after a SIGKILL of the lease owner, and how
many executions were repeated (allowed only for tasks in flight at the crash).
"""

from __future__ import annotations

import re
import statistics
import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from harness import measure
from harness.engine import drop_database, fresh_database_url, store_kind
from harness.postgres import PrivateCluster, lease_owner, psql
from rpc import Rpc, events

from conftest import new_client, start_worker
from workers.defs import EchoInput

pytestmark = pytest.mark.skipif(
    store_kind() == "postgres", reason="the replica tests ran in the SQLite pass already"
)

LEASE_TTL = 3
REPLICA_FLAGS = ("--lease-ttl", str(LEASE_TTL), "--heartbeat-timeout", "10", "--listen-grace", "5")
WORKER_SLOTS = 20


@pytest.fixture
def database():
    """A fresh database the test's replicas share; requested before `make_engine`, so it is
    dropped only after the replicas have stopped."""
    url = fresh_database_url()
    yield url
    drop_database(url)


def replica_id(engine) -> str:
    """The replica id `adze server` logs when it starts."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = re.findall(r"replica ([0-9a-f-]{36})", engine.log_path.read_text(errors="replace"))
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"{engine.name} logged no replica id\n{engine.stderr_tail()}")


def replica(make_engine, name: str, database_url: str, *extra: str):
    return make_engine(name, store="postgres", database_url=database_url, extra_args=REPLICA_FLAGS + extra)


def doubled_outcomes(database_url: str) -> int:
    """Task attempts with more than one recorded outcome: must be none, ever."""
    rows = psql(
        database_url,
        "SELECT count(*) FROM (SELECT task_id, attempt FROM task_history "
        "WHERE kind IN ('completed', 'failed') GROUP BY 1, 2 HAVING count(*) > 1) doubled",
    )
    return int(rows[0][0])


@pytest.mark.timeout(170)
def test_sigkill_of_the_lease_owner_loses_and_doubles_nothing(database, make_engine, make_worker, namespace):
    runs = 90
    a = replica(make_engine, "replica-a", database)
    a_id = replica_id(a)
    hatchet_a, d_a = new_client(a.env(namespace=namespace))
    # The first call for the tenant reaches A, so A takes the tenant's lease.
    hatchet_a._client.admin.put_workflow(d_a.steady.to_proto())
    assert lease_owner(database) == a_id

    b = replica(make_engine, "replica-b", database)
    b_id = replica_id(b)
    env_b = b.env(namespace=namespace)
    worker = start_worker(make_worker, env_b, "replicas", ADZE_SLOTS=str(WORKER_SLOTS)).wait_registered()
    _, d_b = new_client(env_b)

    takeover: dict[str, float] = {}

    def watch_takeover(killed_at: float) -> None:
        while time.monotonic() - killed_at < 60:
            if lease_owner(database) == b_id:
                takeover["s"] = time.monotonic() - killed_at
                return
            time.sleep(0.05)

    refs = []
    watcher = None
    for i in range(runs):
        refs.append(d_b.steady.run(EchoInput(n=i), wait_for_result=False))
        if i == runs // 3:
            a.kill()
            watcher = threading.Thread(target=watch_takeover, args=(time.monotonic(),))
            watcher.start()
    outputs = [ref.result() for ref in refs]
    watcher.join()

    assert [out["n"] for out in outputs] == list(range(runs)), "every accepted run completes with its own output"
    assert "s" in takeover, "replica B never took the tenant's lease after A was killed"
    executions = Counter(rec["workflow_run_id"] for rec in worker.records.of("task", task="steady"))
    assert set(executions) == {ref.workflow_run_id for ref in refs}
    repeated = sum(count - 1 for count in executions.values())
    assert repeated <= WORKER_SLOTS, (
        f"{repeated} executions repeated: only tasks in flight at the crash may run again"
    )
    assert doubled_outcomes(database) == 0, "a task attempt's outcome was recorded twice"
    measure("replica_takeover_after_sigkill", takeover["s"], "s", lease_ttl=LEASE_TTL)
    measure("replica_repeated_executions", repeated, "executions", runs=runs, slots=WORKER_SLOTS)


@pytest.mark.timeout(120)
def test_workers_and_clients_on_different_replicas(database, make_engine, make_worker, namespace):
    """The worker listens on A, the client calls B: assignments and results cross over."""
    a = replica(make_engine, "replica-a", database)
    b = replica(make_engine, "replica-b", database)
    start_worker(make_worker, a.env(namespace=namespace), "replicas").wait_registered()
    _, d_b = new_client(b.env(namespace=namespace))
    refs = [d_b.steady.run(EchoInput(n=i), wait_for_result=False) for i in range(20)]
    assert [ref.result()["n"] for ref in refs] == list(range(20))


@pytest.mark.timeout(170)
def test_postgres_restart_mid_load(make_engine, make_worker, namespace):
    cluster = PrivateCluster().init()
    try:
        eng = replica(make_engine, "server", cluster.url)
        env = eng.env(namespace=namespace)
        start_worker(make_worker, env, "replicas").wait_registered()
        _, d = new_client(env)
        before = [d.steady.run(EchoInput(n=i), wait_for_result=False) for i in range(20)]

        cluster.stop()
        rpc = Rpc(eng.grpc_addr, eng.token)
        started = time.monotonic()
        error = rpc.error(
            rpc.events.Push,
            events.PushEventRequest(key=f"{namespace}probe", payload="{}"),
            timeout=30,
        )
        answered = time.monotonic() - started
        rpc.close()
        assert error is not None, "a trigger while the database is down cannot succeed"
        assert error.code() == grpc.StatusCode.UNAVAILABLE, f"expected UNAVAILABLE, got {error.code()}: {error.details()}"
        assert answered < 25, f"the call hung for {answered:.1f}s instead of failing"
        measure("call_while_database_down", answered, "s")

        time.sleep(1)
        cluster.start()
        after = [d.steady.run(EchoInput(n=100 + i), wait_for_result=False) for i in range(20)]
        outputs = [ref.result()["n"] for ref in before + after]
        assert outputs == list(range(20)) + [100 + i for i in range(20)]
        assert eng.running, "the engine must stay up through a database restart"
    finally:
        cluster.close()


@pytest.mark.timeout(120)
def test_exhausted_pool_fails_fast_and_the_engine_stays_up(database, make_engine, make_worker, namespace):
    """Both pooled connections are held by reads stuck behind a table lock taken from
    outside; every other call must be refused at once, and the engine serve on after."""
    eng = replica(
        make_engine, "server", database, "--database-pool-size", "2", "--database-pool-timeout-ms", "50"
    )
    env = eng.env(namespace=namespace)
    start_worker(make_worker, env, "replicas").wait_registered()
    _, d = new_client(env)
    assert d.steady.run(EchoInput(n=1))["n"] == 1

    locker = subprocess.Popen(
        ["psql", database, "-X", "-q", "-c",
         "BEGIN; LOCK TABLE runs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2); COMMIT;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not psql(database, "SELECT 1 FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'runs'::regclass"):
        assert time.monotonic() < deadline, "the lock was never taken"
        time.sleep(0.02)

    rpc = Rpc(eng.grpc_addr, eng.token)

    def read(_: int) -> tuple[str, float]:
        # An unknown run is looked up in the store, which the lock holds up.
        started = time.monotonic()
        try:
            rpc.run_details(str(uuid.uuid4()), timeout=20)
            return "OK", time.monotonic() - started
        except grpc.RpcError as error:
            return error.code().name, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(read, range(64)))
    locker.wait(timeout=30)
    rpc.close()
    codes = Counter(code for code, _ in results)
    refused = [elapsed for code, elapsed in results if code in ("RESOURCE_EXHAUSTED", "UNAVAILABLE")]
    assert set(codes) <= {"NOT_FOUND", "RESOURCE_EXHAUSTED", "UNAVAILABLE"}, codes
    assert refused, f"64 reads on a pool of 2 held by a lock never ran out of connections: {codes}"
    assert max(refused) < 1.5, f"a refusal took {max(refused):.2f}s: exhaustion must fail fast"
    measure("pool_exhausted_refusal", statistics.median(refused), "s", refused=len(refused), of=64, worst=f"{max(refused):.3f}s")
    # Still up and serving once the connections are free again.
    assert eng.running
    assert d.steady.run(EchoInput(n=7))["n"] == 7
