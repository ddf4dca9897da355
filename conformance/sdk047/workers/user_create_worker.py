"""The manual-slot-release reference example, in hatchet-sdk 0.47.1's class syntax.

Environment:
- ADZE_VARIANT: `sync_release` (the reference page's code: time.sleep, release_slot,
  time.sleep), `async_release` (the same with asyncio.sleep: 0.47.1 runs sync steps on a
  thread pool of `max_runs` threads, so with one slot a second sync step cannot begin
  before the first returns, whatever the engine does), or `async_hold` (never releases)
- ADZE_HEAVY_SECS / ADZE_POST_SECS: the two sleeps (the page uses 10 s and none)
- ADZE_SLOTS: max_runs (default 1)

Each step writes `step` records (phase start / releasing / released / end) to ADZE_RECORDS.
Module-level code also runs in the SDK's spawned listener process; that is where the
`rx: start step run` log lines (the moment the engine's action arrives) come from.
"""

import asyncio
import os
import time

from hatchet_sdk import Context, Hatchet

from harness.records import capture_sdk_logs, record

VARIANT = os.environ["ADZE_VARIANT"]
HEAVY = float(os.environ.get("ADZE_HEAVY_SECS", "2"))
POST = float(os.environ.get("ADZE_POST_SECS", "3"))
SLOTS = int(os.environ.get("ADZE_SLOTS", "1"))

hatchet = Hatchet(debug=True)
capture_sdk_logs()


def mark(context: Context, phase: str) -> None:
    record(
        "step",
        phase=phase,
        variant=VARIANT,
        workflow_run_id=context.workflow_run_id(),
        step_run_id=context.step_run_id,
        input=context.workflow_input(),
    )


if VARIANT == "sync_release":

    @hatchet.workflow(on_events=["user:create"])
    class UserCreate:
        @hatchet.step()
        def step1(self, context: Context):
            mark(context, "start")
            print("RESOURCE INTENSIVE PROCESS")
            time.sleep(HEAVY)
            # Release the slot after the resource-intensive process, so that other steps can run
            mark(context, "releasing")
            context.release_slot()
            mark(context, "released")
            print("NON RESOURCE INTENSIVE PROCESS")
            time.sleep(POST)
            mark(context, "end")
            return {"status": "success"}

elif VARIANT == "async_release":

    @hatchet.workflow(on_events=["user:create"])
    class UserCreate:
        @hatchet.step()
        async def step1(self, context: Context):
            mark(context, "start")
            await asyncio.sleep(HEAVY)
            mark(context, "releasing")
            context.release_slot()
            mark(context, "released")
            await asyncio.sleep(POST)
            mark(context, "end")
            return {"status": "success"}

elif VARIANT == "async_hold":

    @hatchet.workflow(on_events=["user:create"])
    class UserCreate:
        @hatchet.step()
        async def step1(self, context: Context):
            mark(context, "start")
            await asyncio.sleep(HEAVY + POST)
            mark(context, "end")
            return {"status": "success"}

else:
    raise SystemExit(f"unknown ADZE_VARIANT {VARIANT!r}")


if __name__ == "__main__":
    worker = hatchet.worker(f"user-create-{VARIANT}", max_runs=SLOTS)
    worker.register_workflow(UserCreate())
    worker.start()
