"""Manual slot release (reference/manual-slot-release.txt) with hatchet-sdk 0.47.1.

A one-slot worker (`max_runs=1`) runs `UserCreate.step1` for two `user:create` events.
The step records when it starts, when it asks to release its slot, and when it ends;
the SDK's listener process logs the moment each action arrives from the engine.

With release_slot the engine must hand the second run to the worker after the first
releases and before it ends; without it, never while the first one runs.
"""

from __future__ import annotations

import pytest

from harness import measure

from conftest import WORKERS

HEAVY = 2.0
POST = 3.0
SCRIPT = WORKERS / "user_create_worker.py"


def run_two_user_creates(engine, make_worker, hatchet_client, namespace, variant):
    env = engine.env(
        namespace=namespace,
        ADZE_VARIANT=variant,
        ADZE_HEAVY_SECS=str(HEAVY),
        ADZE_POST_SECS=str(POST),
        ADZE_SLOTS="1",
    )
    worker = make_worker(SCRIPT, env, name=f"worker-{variant}").wait_registered()

    hatchet = hatchet_client(env)
    for user in (1, 2):
        hatchet.event.push("user:create", {"user": user})

    def both_ended(recs):
        ends = [r for r in recs if r["kind"] == "step" and r["phase"] == "end"]
        return ends if len(ends) >= 2 else None

    worker.records.wait_for(
        "both user:create runs to finish their step",
        both_ended,
        timeout=2 * (HEAVY + POST) + 40,
        alive=worker.check_alive,
    )
    return worker, Runs(worker.records)


class Runs:
    """The two step executions, first-started first, with the engine's delivery times."""

    def __init__(self, records) -> None:
        steps = records.of("step")
        by_run: dict[str, dict] = {}
        for r in steps:
            run = by_run.setdefault(r["step_run_id"], {"step_run_id": r["step_run_id"], "input": r["input"]})
            run.setdefault(r["phase"], r["t"])
        for run in by_run.values():
            delivered = [
                r["t"] for r in records.logs(f"rx: start step run: {run['step_run_id']}")
            ]
            run["delivered"] = min(delivered) if delivered else None
        self.runs = sorted(by_run.values(), key=lambda r: r["start"])
        self.records = records

    def __len__(self) -> int:
        return len(self.runs)

    def describe(self) -> str:
        t0 = min(r["start"] for r in self.runs)
        lines = []
        for r in self.runs:
            parts = [f"{k}=+{r[k] - t0:.3f}s" for k in ("delivered", "start", "releasing", "released", "end") if r.get(k)]
            lines.append(f"  step_run {r['step_run_id']} input={r['input']} " + " ".join(parts))
        return "\n".join(lines)


def assert_two_distinct_runs(runs: Runs) -> None:
    assert len(runs) == 2, f"expected exactly 2 step runs, got {len(runs)}:\n{runs.describe()}"
    inputs = sorted(r["input"]["user"] for r in runs.runs)
    assert inputs == [1, 2], (
        f"each event's payload should be its run's input, got {inputs}:\n{runs.describe()}"
    )


@pytest.mark.timeout(120)
def test_reference_example_sync_step_second_run_delivered_after_release(
    engine, make_worker, hatchet_client, namespace
):
    """The page's code as written (sync step, time.sleep).

    0.47.1 runs sync steps on a thread pool of max_runs threads, so the second step's
    body waits for the first thread; what the engine controls is when it sends the second
    action, and that must be between the first run's release and its end.
    """
    _, runs = run_two_user_creates(engine, make_worker, hatchet_client, namespace, "sync_release")
    assert_two_distinct_runs(runs)
    first, second = runs.runs
    assert second["delivered"] is not None, (
        "the worker never logged receiving the second action\n" + runs.describe()
    )
    assert first["releasing"] <= second["delivered"] < first["end"], (
        "with release_slot the engine should send the second run to the one-slot worker "
        "after the first run released its slot and while it was still running:\n"
        + runs.describe()
    )
    measure(
        "release_to_next_delivery_sync047",
        second["delivered"] - first["releasing"],
        "s",
        note="release_slot call to rx of the next action; one sample",
    )


@pytest.mark.timeout(120)
def test_async_step_second_run_starts_during_first_post_release(
    engine, make_worker, hatchet_client, namespace
):
    _, runs = run_two_user_creates(engine, make_worker, hatchet_client, namespace, "async_release")
    assert_two_distinct_runs(runs)
    first, second = runs.runs
    assert second["start"] < first["end"], (
        "after release_slot the second run should start while the first is in its "
        "post-release part:\n" + runs.describe()
    )
    arrived = second["delivered"] or second["start"]
    assert arrived >= first["releasing"], (
        "the one slot was taken: the second run must not arrive before the first one "
        "released it:\n" + runs.describe()
    )
    measure(
        "release_to_next_start_async047",
        second["start"] - first["releasing"],
        "s",
        note="release_slot call to the next step's start; one sample",
    )


@pytest.mark.timeout(120)
def test_without_release_the_two_runs_never_overlap(engine, make_worker, hatchet_client, namespace):
    _, runs = run_two_user_creates(engine, make_worker, hatchet_client, namespace, "async_hold")
    assert_two_distinct_runs(runs)
    first, second = runs.runs
    assert second["start"] >= first["end"], (
        "a one-slot worker got a second run while the first still held the slot:\n"
        + runs.describe()
    )
    if second["delivered"] is not None:
        assert second["delivered"] >= first["end"], (
            "the engine sent the second action before the first run completed:\n"
            + runs.describe()
        )
