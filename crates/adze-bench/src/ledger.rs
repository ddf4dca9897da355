//! What the workers saw: every execution counted by (run id, task), so that the end of a
//! run can say whether each produced run ran each of its tasks exactly once, and the
//! latency samples taken at task start.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

/// Shared by every worker of one scenario.
pub struct Ledger {
    tasks_per_run: usize,
    /// Executions per (run id × task position).
    executions: Vec<AtomicU32>,
    /// Starts naming a run id the producer never made.
    unknown: AtomicU64,
    completed: AtomicU64,
    started_at: Instant,
    /// (milliseconds since the scenario began, event→start latency in µs), root tasks only.
    latencies: Mutex<Vec<(u32, u32)>>,
    /// Release → next start on the same worker, in µs.
    release_latencies: Mutex<Vec<u32>>,
    first_start: Mutex<Option<Instant>>,
    last_completion: Mutex<Option<Instant>>,
}

/// The correctness check's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Correctness {
    pub expected_executions: u64,
    pub executions: u64,
    /// (run, task) pairs that never ran.
    pub missing: u64,
    /// (run, task) pairs that ran more than once.
    pub duplicated: u64,
    pub unknown: u64,
    pub ok: bool,
}

impl Ledger {
    pub fn new(runs: u64, tasks_per_run: usize, started_at: Instant) -> Ledger {
        let slots = runs as usize * tasks_per_run;
        Ledger {
            tasks_per_run,
            executions: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            unknown: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            started_at,
            latencies: Mutex::new(Vec::with_capacity(runs as usize)),
            release_latencies: Mutex::new(Vec::new()),
            first_start: Mutex::new(None),
            last_completion: Mutex::new(None),
        }
    }

    pub fn expected(&self) -> u64 {
        self.executions.len() as u64
    }

    /// A task started: counts it and, for a root task, records its latency.
    pub fn started(&self, run: u64, position: usize, latency_us: u64) {
        {
            let mut first = self.first_start.lock().expect("ledger lock");
            first.get_or_insert_with(Instant::now);
        }
        let index = run as usize * self.tasks_per_run + position;
        match self.executions.get(index) {
            Some(count) if position < self.tasks_per_run => {
                count.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.unknown.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if position == 0 {
            let at = self.started_at.elapsed().as_millis() as u32;
            let latency = latency_us.min(u32::MAX as u64) as u32;
            self.latencies
                .lock()
                .expect("ledger lock")
                .push((at, latency));
        }
    }

    pub fn completed(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        *self.last_completion.lock().expect("ledger lock") = Some(Instant::now());
    }

    pub fn release_to_start(&self, micros: u64) {
        self.release_latencies
            .lock()
            .expect("ledger lock")
            .push(micros.min(u32::MAX as u64) as u32);
    }

    pub fn completed_count(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    pub fn first_start(&self) -> Option<Instant> {
        *self.first_start.lock().expect("ledger lock")
    }

    pub fn last_completion(&self) -> Option<Instant> {
        *self.last_completion.lock().expect("ledger lock")
    }

    pub fn latencies(&self) -> Vec<(u32, u32)> {
        self.latencies.lock().expect("ledger lock").clone()
    }

    pub fn release_latencies(&self) -> Vec<u32> {
        self.release_latencies.lock().expect("ledger lock").clone()
    }

    pub fn correctness(&self) -> Correctness {
        let (mut executions, mut missing, mut duplicated) = (0, 0, 0);
        for count in &self.executions {
            let count = count.load(Ordering::Relaxed) as u64;
            executions += count;
            match count {
                0 => missing += 1,
                1 => {}
                _ => duplicated += 1,
            }
        }
        let unknown = self.unknown.load(Ordering::Relaxed);
        Correctness {
            expected_executions: self.expected(),
            executions,
            missing,
            duplicated,
            unknown,
            ok: missing == 0 && duplicated == 0 && unknown == 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_missing_doubled_and_unknown_executions() {
        let ledger = Ledger::new(3, 2, Instant::now());
        for position in 0..2 {
            ledger.started(0, position, 10);
            ledger.started(1, position, 10);
        }
        assert!(!ledger.correctness().ok, "run 2 never ran");
        ledger.started(2, 0, 10);
        ledger.started(2, 1, 10);
        assert!(ledger.correctness().ok);
        ledger.started(2, 1, 10);
        ledger.started(7, 0, 10);
        let verdict = ledger.correctness();
        assert_eq!((verdict.duplicated, verdict.unknown), (1, 1));
        assert!(!verdict.ok);
        assert_eq!(ledger.latencies().len(), 3, "one sample per root start");
    }
}
