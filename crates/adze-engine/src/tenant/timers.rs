//! Deadlines. One heap of timers per tenant; the actor sleeps until the earliest and then
//! handles every timer that is due. A timer only says "look again at this time": what is
//! due is decided from the state (heartbeats and refreshes move deadlines without
//! touching the heap), so stale timers are harmless.
//!
//! - a worker's liveness: see `workers.rs`
//! - a task's execution timeout: counted from its assignment to a worker, released or
//!   not. On expiry the worker is sent CANCEL_STEP_RUN and the attempt fails with a
//!   timeout error, retried if its policy allows.

use std::cmp::Reverse;
use std::time::Duration;

use adze_core::{TaskId, WorkerId};
use tokio::time::Instant;

use super::State;
use crate::AssignmentKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    Worker(WorkerId),
    Task(TaskId),
}

impl State {
    pub(crate) fn arm(&mut self, timer: Timer, at: Instant) {
        self.timers.push(Reverse((at, timer)));
    }

    /// Arms `timer` unless it is armed already (for any time).
    pub(crate) fn arm_once(&mut self, timer: Timer, at: Instant) {
        if !self
            .timers
            .iter()
            .any(|Reverse((_, armed))| *armed == timer)
        {
            self.arm(timer, at);
        }
    }

    /// Handles every timer due by `now`.
    pub(crate) fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Worker(worker) => self.check_worker(worker, now),
                Timer::Task(task) => self.check_deadline(task, now),
            }
        }
    }

    /// Starts the execution timeout of a task's current attempt, `elapsed` of it spent.
    pub(crate) fn start_deadline(&mut self, task_id: TaskId, elapsed: Duration) {
        let timeout = Duration::from_millis(self.spec_of(task_id).timeout_ms);
        let deadline = Instant::now() + timeout.saturating_sub(elapsed);
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.deadline = Some(deadline);
            self.arm(Timer::Task(task_id), deadline);
        }
    }

    fn check_deadline(&mut self, task_id: TaskId, now: Instant) {
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        let Some(deadline) = task.deadline.filter(|_| task.record.status.is_on_worker()) else {
            return;
        };
        if deadline > now {
            // Refreshed since this timer was armed.
            self.arm_once(Timer::Task(task_id), deadline);
            return;
        }
        let timeout = Duration::from_millis(self.spec_of(task_id).timeout_ms);
        // The worker must stop it, released or not: the cancel goes down its stream.
        let mut cancel = self.assignment(task_id);
        cancel.kind = AssignmentKind::Cancel;
        self.send_to_worker(task_id, cancel);
        let error = format!(
            "task exceeded its execution timeout of {}",
            adze_core::duration::format(timeout)
        );
        self.history(task_id, "timed out", Some(error.clone()));
        self.fail(task_id, error, true);
    }
}
