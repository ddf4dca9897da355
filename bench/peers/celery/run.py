"""Drives the Celery peer: enqueues the no-op job (before the worker starts for `drain`,
while it runs for `steady`), waits until every job has run, checks each ran exactly once
and prints one JSON summary line (the fields of adze-bench's `Summary`)."""

import argparse
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import bench_tasks


def now_us() -> int:
    return time.time_ns() // 1000


def percentiles(samples):
    if not samples:
        return {"samples": 0, "p50": 0, "p90": 0, "p99": 0, "max": 0}
    samples = sorted(samples)

    def at(q):
        rank = min(len(samples), max(1, math.ceil(q * len(samples))))
        return samples[rank - 1] / 1000

    return {"samples": len(samples), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": samples[-1] / 1000}


def read_lines(out_dir):
    lines = []
    for path in glob.glob(os.path.join(out_dir, "*.log")):
        with open(path) as handle:
            lines.extend(line.split() for line in handle if line.endswith("\n"))
    return lines


def count_lines(out_dir):
    total = 0
    for path in glob.glob(os.path.join(out_dir, "*.log")):
        with open(path, "rb") as handle:
            total += handle.read().count(b"\n")
    return total


def start_worker(queue, concurrency, out_dir):
    env = dict(os.environ, BENCH_OUT_DIR=out_dir)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench_tasks", "worker", "-Q", queue,
         "--concurrency", str(concurrency), "--pool", "prefork", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=os.path.dirname(os.path.abspath(__file__)), env=env, stdout=sys.stderr, stderr=sys.stderr)


def wait_for(out_dir, count, timeout):
    deadline = time.time() + timeout
    while count_lines(out_dir) < count:
        if time.time() > deadline:
            raise SystemExit(f"celery: only {count_lines(out_dir)} of {count} jobs ran within {timeout} s")
        time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["drain", "steady"], default="drain")
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    queue = f"adze-bench-{os.getpid()}"
    out_dir = tempfile.mkdtemp(prefix="adze-bench-celery-")
    noop = bench_tasks.noop
    worker = None
    try:
        if args.mode == "drain":
            started = now_us()
            for run_id in range(args.count):
                noop.apply_async((run_id, now_us()), queue=queue)
            accepted_per_s = args.count / ((now_us() - started) / 1e6)
            worker = start_worker(queue, args.concurrency, out_dir)
            wait_for(out_dir, args.count, args.timeout)
            window_start = None  # the first start, read from the records below
        else:
            worker = start_worker(queue, args.concurrency, out_dir)
            # Warm up: the worker is ready once a first job has run.
            noop.apply_async((-1, now_us()), queue=queue)
            wait_for(out_dir, 1, 120)
            window_start = now_us()
            for run_id in range(args.count):
                if args.rate:
                    wait = (window_start + run_id / args.rate * 1e6 - now_us()) / 1e6
                    if wait > 0.0005:
                        time.sleep(wait)
                noop.apply_async((run_id, now_us()), queue=queue)
            accepted_per_s = args.count / ((now_us() - window_start) / 1e6)
            wait_for(out_dir, args.count + 1, args.timeout)
        time.sleep(0.3)  # a moment more, so a doubled execution would still be counted
        records = [(int(r), int(latency), int(done)) for r, latency, done in read_lines(out_dir)]
        records = [record for record in records if record[0] >= 0]
        executions = [0] * args.count
        for run_id, _, _ in records:
            executions[run_id] += 1
        if window_start is None:
            window_start = min(done - latency for _, latency, done in records)
        last = max(done for _, _, done in records)
        missing = sum(1 for count in executions if count == 0)
        duplicated = sum(1 for count in executions if count > 1)
        summary = {
            "system": "Celery + Redis",
            "count": args.count,
            "accepted_per_s": accepted_per_s,
            "completed_per_s": len(records) / ((last - window_start) / 1e6),
            "event_to_start": percentiles([latency for _, latency, _ in records]),
            "ok": missing == 0 and duplicated == 0,
            "missing": missing,
            "duplicated": duplicated,
            "notes": f"celery 5.7.0, prefork pool of {args.concurrency}, redis broker, ignore_result",
        }
        print(json.dumps(summary), flush=True)
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        bench_tasks.app.connection_for_write().default_channel.client.delete(queue)
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
