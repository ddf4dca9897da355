"""Manual slot release with hatchet-sdk 1.43.1 on a one-slot worker (async tasks: the
SDK runs sync tasks on a thread pool sized by its slots).

Six release_chain runs queue at once. Each holds the slot for HEAVY seconds, releases it,
then works POST more seconds; the next run must take the freed slot during that time,
and never before the release. The release-to-next-start delays are measured.
"""

from __future__ import annotations

import grpc
import pytest

from harness import measure
from harness.measurements import summary
from rpc import Rpc, describe, dispatcher, explain, v1

from conftest import Deployment, deployment
from workers.defs import ChainInput

HEAVY = 0.3
POST = 3.0
CHAIN = 6  # five release-to-next-start delays

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def one_slot(engine, tmp_path_factory):
    with deployment(engine, tmp_path_factory, "one_slot", "r") as dep:
        yield dep


def executions(records, task: str, run_ids: set[str]) -> list[dict]:
    by_run: dict[str, dict] = {}
    for r in records.of("task", task=task):
        if r["workflow_run_id"] in run_ids:
            by_run.setdefault(r["workflow_run_id"], {"run": r["workflow_run_id"], "seq": r.get("seq")})[r["phase"]] = r["t"]
    return sorted(by_run.values(), key=lambda e: e.get("start", float("inf")))


def timeline(execs: list[dict]) -> str:
    t0 = min(e["start"] for e in execs if "start" in e)
    return "\n".join(
        f"  seq={e['seq']} " + " ".join(f"{k}=+{e[k] - t0:.3f}s" for k in ("start", "releasing", "released", "end") if k in e)
        for e in execs
    )


def run_chain(dep: Deployment, task_attr: str, n: int) -> list[dict]:
    _, d = dep.client()
    task = getattr(d, task_attr)
    refs = task.run_many(
        [task.create_bulk_run_item(ChainInput(seq=i, heavy=HEAVY, post=POST)) for i in range(n)],
        wait_for_result=False,
    )
    outs = [ref.result() for ref in refs]
    assert sorted(o["seq"] for o in outs) == list(range(n)), outs
    return executions(dep.worker.records, task_attr, {r.workflow_run_id for r in refs})


def test_each_release_lets_the_next_queued_run_start_on_a_one_slot_worker(one_slot):
    execs = run_chain(one_slot, "release_chain", CHAIN)
    assert len(execs) == CHAIN and all("end" in e for e in execs), timeline(execs)
    delays = []
    for prev, nxt in zip(execs, execs[1:]):
        assert nxt["start"] >= prev["releasing"], (
            "one slot: a run started before the previous one released it\n" + timeline(execs)
        )
        assert nxt["start"] < prev["end"], (
            "the next run should start while the releasing run is still in its post-release part\n"
            + timeline(execs)
        )
        delays.append(nxt["start"] - prev["releasing"])
    s = summary(delays)
    measure("release_to_next_start_median", s["median"], "s", worst=f"{s['worst']:.4f}s", best=f"{s['best']:.4f}s", n=s["n"])


def test_without_release_runs_on_one_slot_never_overlap(one_slot):
    execs = run_chain(one_slot, "hold_chain", 2)
    first, second = execs
    assert second["start"] >= first["end"], (
        "a one-slot worker ran a second task while the first still held the slot\n" + timeline(execs)
    )


def test_releasing_twice_is_a_no_op_and_releasing_a_finished_task_is_an_error(one_slot):
    _, d = one_slot.client()
    ref = d.release_twice.run(wait_for_result=False)
    assert ref.result() == {"released": 2}

    rpc = Rpc(one_slot.engine.grpc_addr, one_slot.engine.token)
    try:
        details = rpc.run_details(ref.workflow_run_id)
        task = details.task_runs.get("release_twice")
        assert task is not None and task.external_id, describe(details)
        err = rpc.error(rpc.dispatcher.ReleaseSlot, dispatcher.ReleaseSlotRequest(task_run_external_id=task.external_id))
        assert err is not None, "ReleaseSlot of a completed task should be an error, it succeeded"
        assert err.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE), (
            f"ReleaseSlot of a completed task should be a clean error, got {explain(err)}"
        )
        assert rpc.run_details(ref.workflow_run_id).status == v1.COMPLETED
    finally:
        rpc.close()


def test_a_released_task_still_times_out_and_its_worker_gets_the_cancel(general):
    """Hatchet addresses a released task's timeout cancel to no worker; Adze keeps the
    task bound to its worker, so the task fails on timeout and the cancel is delivered."""
    _, d = general.client()
    ref = d.timeout_after_release.run(wait_for_result=False)
    rpc = Rpc(general.engine.grpc_addr, general.engine.token)
    try:
        resp = rpc.wait_done(ref.workflow_run_id, timeout=30)
        assert resp.status == v1.FAILED, f"a task past its 3 s execution timeout should be FAILED: {describe(resp)}"
        task = resp.task_runs.get("timeout_after_release")
        assert task is not None and task.error, describe(resp)
        assert "time" in task.error.lower(), f"the error should say the task timed out, got {task.error!r}"
        assert general.worker.records.of("task", task="timeout_after_release", phase="released", workflow_run_id=ref.workflow_run_id), (
            "the task never got to release its slot"
        )
        general.wait_for_cancel(task.external_id, "the timed-out released task")
    finally:
        rpc.close()


def test_rest_worker_slot_usage_follows_hold_and_release(one_slot):
    """`hatchet.workers.list/get` (REST) must parse, and the default slot pool's
    available units must drop while a task holds the slot and return once it releases."""
    hatchet, d = one_slot.client()
    name = f"{one_slot.namespace}_adze-conformance-one_slot"
    rows = hatchet.workers.list().rows or []
    mine = [w for w in rows if w.name == name]
    assert len(mine) == 1, f"worker {name!r} not in GET /api/v1/tenants/{{tenant}}/worker: {[w.name for w in rows]}"
    worker_id = mine[0].metadata.id

    def default_pool():
        worker = hatchet.workers.get(worker_id)
        pool = (worker.slot_config or {}).get("default")
        assert pool is not None, f"worker has no default slot pool in slot_config: {worker.slot_config}"
        return pool

    assert default_pool().limit == 1 and default_pool().available == 1, default_pool()

    ref = d.release_chain.run(ChainInput(seq=99, heavy=2.0, post=2.0), wait_for_result=False)
    records = one_slot.worker.records

    def phase(p):
        return records.of("task", task="release_chain", phase=p, workflow_run_id=ref.workflow_run_id)

    records.wait_for("release_chain to start", lambda _: phase("start"), timeout=30, alive=one_slot.worker.check_alive)
    holding = default_pool()
    assert not phase("releasing"), "the task released before the slot could be read: rerun"
    assert holding.available == 0, f"while the task holds the only slot, available should be 0: {holding}"

    records.wait_for("release_chain to release", lambda _: phase("released"), timeout=30, alive=one_slot.worker.check_alive)
    released = default_pool()
    assert not phase("end"), "the task ended before the slot could be read: rerun"
    assert released.available == 1, f"after release_slot the unit should be available again: {released}"
    assert ref.result() == {"seq": 99}
