"""Runs per second through the Python SDK (measured, not asserted).

Only correctness is asserted: every run completes with its own output.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from harness import measure

RUNS = 200
SEQUENTIAL = 20


@pytest.mark.timeout(180)
def test_bulk_noop_runs_per_second(general):
    _, d = general.client()

    async def go():
        items = [d.noop.create_bulk_run_item() for _ in range(RUNS)]
        t0 = time.perf_counter()
        refs = await d.noop.aio_run_many(items, wait_for_result=False)
        triggered = time.perf_counter()
        outs = await asyncio.gather(*(ref.aio_result() for ref in refs))
        done = time.perf_counter()
        return refs, outs, t0, triggered, done

    refs, outs, t0, triggered, done = asyncio.run(go())
    assert len({r.workflow_run_id for r in refs}) == RUNS, "BulkTriggerWorkflow returned duplicate or missing ids"
    assert outs == [{"ok": True}] * RUNS, [o for o in outs if o != {"ok": True}][:5]
    measure("bulk_trigger_rate", RUNS / (triggered - t0), "runs/s", runs=RUNS)
    measure("sdk_end_to_end_rate", RUNS / (done - t0), "runs/s", runs=RUNS, path="aio_run_many+aio_result", worker_slots=100)


@pytest.mark.timeout(120)
def test_sequential_aio_run_round_trip(general):
    _, d = general.client()

    async def go():
        latencies = []
        for _ in range(SEQUENTIAL):
            t0 = time.perf_counter()
            out = await d.noop.aio_run()
            latencies.append(time.perf_counter() - t0)
            assert out == {"ok": True}
        return latencies

    latencies = asyncio.run(go())
    measure(
        "aio_run_round_trip_median",
        statistics.median(latencies),
        "s",
        worst=f"{max(latencies):.4f}s",
        n=len(latencies),
    )
