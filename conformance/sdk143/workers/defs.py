"""Workflows of the 1.43.1 suite, defined against a given `Hatchet` client.

Worker scripts and tests both call `define(hatchet)`: the worker to register and run
them, the test to trigger them by the same (namespaced) names. Task bodies write
`task` records to ADZE_RECORDS (a no-op in the test process, where it is unset).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from hatchet_sdk import Context, Hatchet

from harness.records import record


class EchoInput(BaseModel):
    message: str = ""
    n: int = 0


class DagInput(BaseModel):
    n: int


class OrderInput(BaseModel):
    order_id: int
    item: str = ""


class ChainInput(BaseModel):
    seq: int
    heavy: float = 0.3
    post: float = 3.0


def _mark(ctx: Context, task: str, phase: str, **fields: Any) -> None:
    record(
        "task",
        task=task,
        phase=phase,
        workflow_run_id=ctx.workflow_run_id,
        task_run_id=ctx.task_run_id,
        **fields,
    )


@dataclass
class Defs:
    echo: Any
    aecho: Any
    noop: Any
    fails: Any
    dag: Any
    dag_parent: Any
    dag_child: Any
    on_order: Any
    release_chain: Any
    hold_chain: Any
    release_twice: Any
    spawner: Any
    logs: Any
    times_out: Any
    timeout_after_release: Any
    lost_released: Any
    lost_holding: Any
    lost_then_retried: Any
    steady: Any

    def general(self) -> list[Any]:
        """What general_worker.py serves."""
        return [self.echo, self.aecho, self.noop, self.fails, self.dag, self.on_order, self.spawner, self.logs, self.times_out, self.timeout_after_release]

    def one_slot(self) -> list[Any]:
        """What release_worker.py serves on a single slot."""
        return [self.release_chain, self.hold_chain, self.release_twice]

    def replicas(self) -> list[Any]:
        """What the replica crash tests' worker serves."""
        return [self.steady]

    def lost(self) -> list[Any]:
        """What lost_worker.py serves before it is killed."""
        return [self.lost_released, self.lost_holding, self.lost_then_retried]


def define(hatchet: Hatchet) -> Defs:
    @hatchet.task(name="echo", input_validator=EchoInput)
    def echo(input: EchoInput, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "echo", "run", input=input.model_dump())
        return {"echo": input.message, "n": input.n}

    @hatchet.task(name="aecho", input_validator=EchoInput)
    async def aecho(input: EchoInput, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "aecho", "run", input=input.model_dump())
        return {"echo": input.message, "n": input.n, "async": True}

    @hatchet.task(name="noop")
    async def noop(input: Any, ctx: Context) -> dict[str, Any]:
        return {"ok": True}

    @hatchet.task(name="fails", retries=0)
    def fails(input: Any, ctx: Context) -> dict[str, Any]:
        raise RuntimeError("deliberate failure from the fails task")

    dag = hatchet.workflow(name="dag", input_validator=DagInput)

    @dag.task()
    def parent(input: DagInput, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "parent", "run", input=input.model_dump())
        return {"doubled": input.n * 2}

    @dag.task(parents=[parent])
    def child(input: DagInput, ctx: Context) -> dict[str, Any]:
        seen = ctx.task_output(parent)
        _mark(ctx, "child", "run", parent_output=seen)
        return {"from_parent": seen["doubled"], "plus_one": seen["doubled"] + 1}

    @hatchet.task(name="on_order", on_events=["order:placed"], input_validator=OrderInput)
    def on_order(input: OrderInput, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "on_order", "run", input=input.model_dump())
        return {"handled": input.order_id}

    @hatchet.task(name="release_chain", input_validator=ChainInput)
    async def release_chain(input: ChainInput, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "release_chain", "start", seq=input.seq)
        await asyncio.sleep(input.heavy)
        _mark(ctx, "release_chain", "releasing", seq=input.seq)
        await ctx.aio_release_slot()
        _mark(ctx, "release_chain", "released", seq=input.seq)
        await asyncio.sleep(input.post)
        _mark(ctx, "release_chain", "end", seq=input.seq)
        return {"seq": input.seq}

    @hatchet.task(name="hold_chain", input_validator=ChainInput)
    async def hold_chain(input: ChainInput, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "hold_chain", "start", seq=input.seq)
        await asyncio.sleep(input.heavy + input.post)
        _mark(ctx, "hold_chain", "end", seq=input.seq)
        return {"seq": input.seq}

    @hatchet.task(name="release_twice")
    async def release_twice(input: Any, ctx: Context) -> dict[str, Any]:
        await ctx.aio_release_slot()
        await ctx.aio_release_slot()  # the contract: a second release is a no-op
        _mark(ctx, "release_twice", "end")
        return {"released": 2}

    # A child run triggered from inside a task (parent_id, child_index, child_key).
    @hatchet.task(name="spawner", input_validator=EchoInput)
    async def spawner(input: EchoInput, ctx: Context) -> dict[str, Any]:
        children = await asyncio.gather(
            *(aecho.aio_run(EchoInput(message=f"{input.message}-child{i}", n=i)) for i in range(input.n))
        )
        _mark(ctx, "spawner", "run", children=len(children))
        return {"children": children}

    @hatchet.task(name="logs")
    def logs(input: Any, ctx: Context) -> dict[str, Any]:
        ctx.log("first line from the logs task")
        ctx.log({"structured": True})
        return {"logged": 2}

    @hatchet.task(name="times_out", execution_timeout=timedelta(seconds=3), retries=0)
    async def times_out(input: Any, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "times_out", "start")
        await asyncio.sleep(60)
        return {"unreachable": True}

    # A released task stays owned by its worker: its execution timeout still applies.
    @hatchet.task(name="timeout_after_release", execution_timeout=timedelta(seconds=3), retries=0)
    async def timeout_after_release(input: Any, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "timeout_after_release", "start")
        await ctx.aio_release_slot()
        _mark(ctx, "timeout_after_release", "released")
        await asyncio.sleep(60)
        _mark(ctx, "timeout_after_release", "end")
        return {"unreachable": True}

    # Long execution timeouts, no retries: killing the worker must be what ends these.
    @hatchet.task(name="lost_released", execution_timeout=timedelta(minutes=10), retries=0)
    async def lost_released(input: Any, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "lost_released", "start")
        await ctx.aio_release_slot()
        _mark(ctx, "lost_released", "released")
        await asyncio.sleep(600)
        return {"unreachable": True}

    @hatchet.task(name="lost_holding", execution_timeout=timedelta(minutes=10), retries=0)
    async def lost_holding(input: Any, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "lost_holding", "start")
        await asyncio.sleep(600)
        return {"unreachable": True}

    @hatchet.task(name="lost_then_retried", execution_timeout=timedelta(minutes=10), retries=1)
    async def lost_then_retried(input: Any, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "lost_then_retried", "start", retry_count=ctx.retry_count)
        if ctx.retry_count == 0:
            await ctx.aio_release_slot()
            _mark(ctx, "lost_then_retried", "released", retry_count=ctx.retry_count)
            await asyncio.sleep(600)
        return {"retry_count": ctx.retry_count}

    # Replica crash tests: long enough that some runs are in flight when a replica dies.
    @hatchet.task(name="steady", input_validator=EchoInput, execution_timeout=timedelta(seconds=30), retries=2)
    async def steady(input: EchoInput, ctx: Context) -> dict[str, Any]:
        _mark(ctx, "steady", "run", n=input.n, retry_count=ctx.retry_count)
        await asyncio.sleep(0.05)
        return {"n": input.n}

    return Defs(
        echo=echo,
        aecho=aecho,
        noop=noop,
        fails=fails,
        dag=dag,
        dag_parent=parent,
        dag_child=child,
        on_order=on_order,
        release_chain=release_chain,
        hold_chain=hold_chain,
        release_twice=release_twice,
        spawner=spawner,
        logs=logs,
        times_out=times_out,
        timeout_after_release=timeout_after_release,
        lost_released=lost_released,
        lost_holding=lost_holding,
        lost_then_retried=lost_then_retried,
        steady=steady,
    )
