// The bench's no-op job on Graphile Worker. Each job's payload carries its id and a
// creation stamp in µs; the task reads the stamp when it starts, as the Adze bench does.
// Prints one JSON summary line (the fields of adze-bench's `Summary`) on stdout.
"use strict";
const { Logger, run, makeWorkerUtils } = require("graphile-worker");
const { performance } = require("node:perf_hooks");

function parseArgs(argv) {
  const args = { mode: "drain", count: 20000, rate: null, concurrency: 32, localQueue: 500, batched: true };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => argv[++i];
    if (flag === "--mode") args.mode = value();
    else if (flag === "--count") args.count = Number(value());
    else if (flag === "--rate") args.rate = Number(value());
    else if (flag === "--concurrency") args.concurrency = Number(value());
    else if (flag === "--local-queue") args.localQueue = Number(value());
    else if (flag === "--database") args.database = value();
    else if (flag === "--unbatched") args.batched = false;
    else throw new Error(`unknown argument ${flag}`);
  }
  if (!["drain", "steady"].includes(args.mode)) throw new Error("--mode is drain or steady");
  if (!(args.count > 0)) throw new Error("--count must be a positive number");
  return args;
}

// Per-job INFO lines would cost the peer more than the job itself: warnings and errors only.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`graphile ${level}: ${message}`);
});

const nowMicros = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

function percentiles(samples) {
  if (samples.length === 0) return { samples: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(samples).sort();
  const at = (q) => sorted[Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length))) - 1] / 1000;
  return { samples: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1] / 1000 };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const executions = new Uint32Array(args.count);
  const latencies = [];
  let completed = 0;
  let firstStart = null;
  let lastCompletion = null;
  let allDone;
  const done = new Promise((resolve) => (allDone = resolve));

  const worker = {
    connectionString: args.database,
    concurrentJobs: args.concurrency,
    maxPoolSize: args.concurrency + 2,
    pollInterval: 1000,
    // The batching options: a local queue and batched completions.
    ...(args.batched
      ? { localQueue: { size: args.localQueue }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
      : {}),
  };
  const utils = await makeWorkerUtils({ connectionString: args.database, logger });
  await utils.migrate();

  const taskList = {
    noop: async (payload) => {
      const started = nowMicros();
      firstStart ??= started;
      executions[payload.id] += 1;
      latencies.push(started - payload.created_us);
      completed += 1;
      lastCompletion = nowMicros();
      if (completed >= args.count) allDone();
    },
  };
  const addChunk = async (from, to) => {
    const created_us = nowMicros();
    const jobs = [];
    for (let id = from; id < to; id++) jobs.push({ identifier: "noop", payload: { id, created_us } });
    await utils.addJobs(jobs);
  };

  let accepted_per_s;
  let windowStart;
  let runner;
  if (args.mode === "drain") {
    const enqueueStart = nowMicros();
    for (let from = 0; from < args.count; from += 1000) await addChunk(from, Math.min(args.count, from + 1000));
    accepted_per_s = args.count / ((nowMicros() - enqueueStart) / 1e6);
    runner = await run({ preset: { worker }, logger, noHandleSignals: true, taskList });
    await done;
    windowStart = firstStart;
  } else {
    runner = await run({ preset: { worker }, logger, noHandleSignals: true, taskList });
    const rate = args.rate ?? Infinity;
    windowStart = nowMicros();
    const inFlight = new Set();
    for (let id = 0; id < args.count; id++) {
      if (Number.isFinite(rate)) {
        const due = windowStart + (id / rate) * 1e6;
        const wait = (due - nowMicros()) / 1000;
        if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      // One job per call, as the Adze steady scenario triggers one run per call.
      const call = utils.addJob("noop", { id, created_us: nowMicros() }).finally(() => inFlight.delete(call));
      inFlight.add(call);
      if (inFlight.size >= 256) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    accepted_per_s = args.count / ((nowMicros() - windowStart) / 1e6);
    await done;
  }
  // A moment more, so a doubled execution would still be counted.
  await new Promise((resolve) => setTimeout(resolve, 300));
  await runner.stop();
  await utils.release();

  let missing = 0;
  let duplicated = 0;
  for (const count of executions) {
    if (count === 0) missing += 1;
    else if (count > 1) duplicated += 1;
  }
  const summary = {
    system: args.batched ? "Graphile Worker (batched)" : "Graphile Worker",
    count: args.count,
    accepted_per_s,
    completed_per_s: completed / ((lastCompletion - windowStart) / 1e6),
    event_to_start: percentiles(latencies),
    ok: missing === 0 && duplicated === 0,
    missing,
    duplicated,
    notes: `graphile-worker 0.17.3, ${args.concurrency} concurrent jobs${args.batched ? `, local queue ${args.localQueue}, batched completions` : ""}, one node process`,
  };
  process.stdout.write(JSON.stringify(summary) + "\n");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
