"""Workflows of the failure scenarios (retries, backoff, timeouts, cancel, replay,
on-failure), defined against a given `Hatchet` client like defs.py's.

Each task body writes a `task` record with its retry count, so a test sees every
attempt and when it started.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from hatchet_sdk import Context, Hatchet
from hatchet_sdk.exceptions import NonRetryableException

from harness.records import record


class Tag(BaseModel):
    """Lets a test find the records of one run among concurrent ones."""

    tag: str = ""
    seconds: float = 0.0


def _mark(ctx: Context, task: str, phase: str, input: Tag, **fields: Any) -> None:
    record(
        "task",
        task=task,
        phase=phase,
        tag=input.tag,
        retry_count=ctx.retry_count,
        workflow_run_id=ctx.workflow_run_id,
        task_run_id=ctx.task_run_id,
        **fields,
    )


@dataclass
class FailureDefs:
    flaky: Any
    never_retry: Any
    backoff: Any
    refreshes: Any
    slow: Any
    released_slow: Any
    sleeper: Any
    self_cancel: Any
    fails_first_time: Any
    chain: Any
    chain_first: Any
    chain_second: Any
    with_cleanup: Any
    quick: Any
    held_chain: Any
    blocker: Any
    waits_in_line: Any
    queued_behind: Any

    def failures(self) -> list[Any]:
        return [
            self.flaky,
            self.never_retry,
            self.backoff,
            self.refreshes,
            self.slow,
            self.released_slow,
            self.sleeper,
            self.self_cancel,
            self.fails_first_time,
            self.chain,
            self.with_cleanup,
            self.quick,
            self.held_chain,
        ]

    def one_slot(self) -> list[Any]:
        return [self.blocker, self.waits_in_line, self.queued_behind]


def define(hatchet: Hatchet) -> FailureDefs:
    @hatchet.task(name="flaky", retries=2, input_validator=Tag)
    async def flaky(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "flaky", "start", input)
        if ctx.retry_count < 2:
            raise RuntimeError(f"flaky attempt {ctx.retry_count} fails")
        return {"retry_count": ctx.retry_count}

    @hatchet.task(name="never_retry", retries=3, input_validator=Tag)
    async def never_retry(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "never_retry", "start", input)
        raise NonRetryableException("this failure is final")

    @hatchet.task(name="backoff", retries=2, backoff_factor=2.0, backoff_max_seconds=60, input_validator=Tag)
    async def backoff(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "backoff", "start", input)
        if ctx.retry_count < 2:
            raise RuntimeError(f"backoff attempt {ctx.retry_count} fails")
        return {"retry_count": ctx.retry_count}

    # Past its 2 s timeout by the end, but each refresh moves the deadline on.
    @hatchet.task(name="refreshes", execution_timeout=timedelta(seconds=2), retries=0, input_validator=Tag)
    async def refreshes(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "refreshes", "start", input)
        for _ in range(3):
            await asyncio.sleep(1.0)
            await ctx.aio_refresh_timeout("2s")
        _mark(ctx, "refreshes", "end", input)
        return {"refreshed": 3}

    @hatchet.task(name="slow", execution_timeout=timedelta(seconds=2), retries=0, input_validator=Tag)
    async def slow(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "slow", "start", input)
        await asyncio.sleep(60)
        return {"unreachable": True}

    @hatchet.task(name="released_slow", execution_timeout=timedelta(seconds=2), retries=0, input_validator=Tag)
    async def released_slow(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "released_slow", "start", input)
        await ctx.aio_release_slot()
        _mark(ctx, "released_slow", "released", input)
        await asyncio.sleep(60)
        return {"unreachable": True}

    @hatchet.task(name="sleeper", execution_timeout=timedelta(minutes=5), input_validator=Tag)
    async def sleeper(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "sleeper", "start", input)
        if input.seconds < 0:
            await ctx.aio_release_slot()
            _mark(ctx, "sleeper", "released", input)
        await asyncio.sleep(abs(input.seconds) or 120)
        _mark(ctx, "sleeper", "end", input)
        return {"slept": input.seconds}

    @hatchet.task(name="self_cancel", input_validator=Tag)
    async def self_cancel(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "self_cancel", "start", input)
        await ctx.aio_cancel()
        await asyncio.sleep(30)
        _mark(ctx, "self_cancel", "end", input)
        return {"unreachable": True}

    # Fails on its first attempt only: a replay (a new attempt) succeeds.
    @hatchet.task(name="fails_first_time", retries=0, input_validator=Tag)
    async def fails_first_time(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "fails_first_time", "start", input)
        if ctx.retry_count == 0:
            raise RuntimeError("first attempt fails")
        return {"tag": input.tag, "retry_count": ctx.retry_count}

    chain = hatchet.workflow(name="chain", input_validator=Tag)

    @chain.task()
    async def first(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "first", "start", input)
        return {"attempt": ctx.retry_count}

    @chain.task(parents=[first])
    async def second(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "second", "start", input, parent=ctx.task_output(first))
        return {"parent_attempt": ctx.task_output(first)["attempt"]}

    with_cleanup = hatchet.workflow(name="with_cleanup", input_validator=Tag)

    @with_cleanup.task()
    async def explode(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "explode", "start", input)
        raise RuntimeError("explode went off")

    @with_cleanup.task(parents=[explode])
    async def after_explode(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "after_explode", "start", input)
        return {"unreachable": True}

    @with_cleanup.on_failure_task()
    async def cleanup(input: Tag, ctx: Context) -> dict[str, Any]:
        errors = ctx.task_run_errors
        _mark(ctx, "cleanup", "start", input, errors=errors)
        return {"saw": sorted(errors)}

    @hatchet.task(name="quick", input_validator=Tag)
    async def quick(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "quick", "start", input)
        return {"tag": input.tag}

    held_chain = hatchet.workflow(name="held_chain", input_validator=Tag)

    @held_chain.task(execution_timeout=timedelta(minutes=5))
    async def hold(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "hold", "start", input)
        await asyncio.sleep(120)
        return {"unreachable": True}

    @held_chain.task(parents=[hold])
    async def after_hold(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "after_hold", "start", input)
        return {"unreachable": True}

    # On a one-slot worker: `blocker` holds the slot, the others queue behind it.
    @hatchet.task(name="blocker", execution_timeout=timedelta(minutes=5), input_validator=Tag)
    async def blocker(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "blocker", "start", input)
        await asyncio.sleep(input.seconds or 120)
        return {"blocked": input.seconds}

    @hatchet.task(name="waits_in_line", schedule_timeout=timedelta(seconds=2), retries=0, input_validator=Tag)
    async def waits_in_line(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "waits_in_line", "start", input)
        return {"tag": input.tag}

    @hatchet.task(name="queued_behind", input_validator=Tag)
    async def queued_behind(input: Tag, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "queued_behind", "start", input)
        return {"tag": input.tag}

    return FailureDefs(
        flaky=flaky,
        never_retry=never_retry,
        backoff=backoff,
        refreshes=refreshes,
        slow=slow,
        released_slow=released_slow,
        sleeper=sleeper,
        self_cancel=self_cancel,
        fails_first_time=fails_first_time,
        chain=chain,
        chain_first=first,
        chain_second=second,
        with_cleanup=with_cleanup,
        quick=quick,
        held_chain=held_chain,
        blocker=blocker,
        waits_in_line=waits_in_line,
        queued_behind=queued_behind,
    )
