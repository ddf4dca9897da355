"""The bench's no-op job as a Celery task. Each execution appends `id latency_us done_us`
to a file of its own worker process, so the driver can count executions by id."""

import os
import time

from celery import Celery

app = Celery("adze_bench", broker=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_out = None


def _record(line: str) -> None:
    global _out
    if _out is None:
        path = os.path.join(os.environ["BENCH_OUT_DIR"], f"{os.getpid()}.log")
        _out = open(path, "a", buffering=1)  # line-buffered: nothing is lost at exit
    _out.write(line)


@app.task(name="noop")
def noop(run_id: int, created_us: int) -> None:
    started = time.time_ns() // 1000
    _record(f"{run_id} {started - created_us} {time.time_ns() // 1000}\n")
