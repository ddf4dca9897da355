//! Deadlines. One heap of timers per tenant; the actor sleeps until the earliest and then
//! handles every timer that is due. A timer only says "look again at this time": what is
//! due is decided from the state (heartbeats and refreshes move deadlines without
//! touching the heap), so stale timers are harmless.
//!
//! - a worker's liveness: see `workers.rs`
//! - a retry's backoff: the task joins its queue when it ends
//! - a task's schedule timeout: counted from when it joined its queue; a task still not
//!   assigned then fails with a timeout error, retried if its policy allows
//! - a task's execution timeout: counted from its assignment to a worker, released or
//!   not. On expiry the worker is sent CANCEL_STEP_RUN and the attempt fails with a
//!   timeout error, retried if its policy allows.

use std::cmp::Reverse;
use std::time::Duration;

use adze_core::{TaskId, WorkerId};
use tokio::time::Instant;

use adze_core::state::TaskStatus;

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

    /// Starts the schedule timeout of a queued task, `waited` of it spent.
    pub(crate) fn start_schedule_deadline(&mut self, task_id: TaskId, waited: Duration) {
        let timeout = Duration::from_millis(self.spec_of(task_id).schedule_timeout_ms);
        let deadline = Instant::now() + timeout.saturating_sub(waited);
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.deadline = Some(deadline);
            self.arm(Timer::Task(task_id), deadline);
        }
    }

    /// Keeps a queued retry out of its queue for `delay`.
    pub(crate) fn wait_backoff(&mut self, task_id: TaskId, delay: Duration) {
        let ready_at = Instant::now() + delay;
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.ready_at = Some(ready_at);
            self.arm(Timer::Task(task_id), ready_at);
        }
    }

    fn check_deadline(&mut self, task_id: TaskId, now: Instant) {
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        if task.record.status == TaskStatus::Queued {
            self.check_queued(task_id, now);
            return;
        }
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

impl State {
    /// A queued task's timer fired: its backoff ended, or its schedule timeout did.
    fn check_queued(&mut self, task_id: TaskId, now: Instant) {
        let task = &self.tasks[&task_id];
        if let Some(ready_at) = task.ready_at {
            if ready_at > now {
                self.arm_once(Timer::Task(task_id), ready_at);
            } else {
                self.tasks
                    .get_mut(&task_id)
                    .expect("checked above")
                    .ready_at = None;
                self.join_queue(task_id, Duration::ZERO);
            }
            return;
        }
        let Some(deadline) = task.deadline else {
            return;
        };
        if deadline > now {
            self.arm_once(Timer::Task(task_id), deadline);
            return;
        }
        let timeout = Duration::from_millis(self.spec_of(task_id).schedule_timeout_ms);
        self.leave_queue(task_id);
        let error = format!(
            "task was not assigned to a worker within its schedule timeout of {}",
            adze_core::duration::format(timeout)
        );
        self.history(task_id, "schedule timed out", Some(error.clone()));
        self.fail(task_id, error, true);
    }
}
