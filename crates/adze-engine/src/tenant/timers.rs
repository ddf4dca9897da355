//! Deadlines. One heap of timers per tenant; the actor sleeps until the earliest and then
//! handles every timer that is due. A timer only says "look again at this time": what is
//! due is decided from the state (heartbeats and refreshes move deadlines without
//! touching the heap), so stale timers are harmless.
//!
//! - a worker's liveness: see `workers.rs`
//! - a retry's backoff: the task joins its queue when it ends
//! - a task's schedule timeout: counted from when it joined its queue; a task still not
//!   assigned then fails with a timeout error, retried if its policy allows. A queue is
//!   first in, first out, so its tasks' deadlines come roughly in queue order: one timer
//!   per queue, at its earliest deadline, is enough (a timer per task would leave one
//!   stale entry in the heap for every task assigned before its deadline)
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

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    Worker(WorkerId),
    /// The execution timeout of a task on a worker.
    Task(TaskId),
    /// The end of a retry's backoff.
    Backoff(TaskId),
    /// The schedule timeouts of an action's queue.
    Schedule(String),
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
        while self
            .timers
            .peek()
            .is_some_and(|Reverse((at, _))| *at <= now)
        {
            let Some(Reverse((_, timer))) = self.timers.pop() else {
                break;
            };
            match timer {
                Timer::Worker(worker) => self.check_worker(worker, now),
                Timer::Task(task) => self.check_deadline(task, now),
                Timer::Backoff(task) => self.check_backoff(task, now),
                Timer::Schedule(action) => self.check_schedule(&action, now),
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

    /// Starts the schedule timeout of a task in its queue, `waited` of it spent.
    pub(crate) fn start_schedule_deadline(&mut self, task_id: TaskId, waited: Duration) {
        let timeout = Duration::from_millis(self.spec_of(task_id).schedule_timeout_ms);
        let deadline = Instant::now() + timeout.saturating_sub(waited);
        let action = self.action_of(task_id);
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.deadline = Some(deadline);
            self.watch_queue(action, deadline);
        }
    }

    /// Makes sure the queue's schedule timeouts are checked by `at`.
    fn watch_queue(&mut self, action: String, at: Instant) {
        if self
            .schedule_checks
            .get(&action)
            .is_some_and(|armed| *armed <= at)
        {
            return;
        }
        self.schedule_checks.insert(action.clone(), at);
        self.arm(Timer::Schedule(action), at);
    }

    /// Keeps a queued retry out of its queue for `delay`.
    pub(crate) fn wait_backoff(&mut self, task_id: TaskId, delay: Duration) {
        let ready_at = Instant::now() + delay;
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.ready_at = Some(ready_at);
            self.arm(Timer::Backoff(task_id), ready_at);
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

impl State {
    /// A retry's backoff timer fired: it joins its queue (unless it was cancelled, or a
    /// later retry is waiting, whose own timer is armed).
    fn check_backoff(&mut self, task_id: TaskId, now: Instant) {
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        if task.record.status != TaskStatus::Queued || task.ready_at.is_none_or(|at| at > now) {
            return;
        }
        task.ready_at = None;
        self.join_queue(task_id, Duration::ZERO);
    }

    /// The queue's schedule timer fired: every task past its schedule timeout fails,
    /// retried by its policy; the timer is armed again for the earliest one left.
    fn check_schedule(&mut self, action: &str, now: Instant) {
        if self
            .schedule_checks
            .get(action)
            .is_some_and(|armed| *armed > now)
        {
            // An earlier check was armed since; its own timer will come.
            return;
        }
        self.schedule_checks.remove(action);
        let Some(queue) = self.queues.get_mut(action) else {
            return;
        };
        let tasks = &self.tasks;
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        queue.retain(|id| match tasks[id].deadline {
            Some(deadline) if deadline <= now => {
                due.push(*id);
                false
            }
            deadline => {
                if let Some(deadline) = deadline {
                    next = Some(next.map_or(deadline, |next| next.min(deadline)));
                }
                true
            }
        });
        if let Some(next) = next {
            self.watch_queue(action.to_string(), next);
        }
        for task_id in due {
            let timeout = Duration::from_millis(self.spec_of(task_id).schedule_timeout_ms);
            let error = format!(
                "task was not assigned to a worker within its schedule timeout of {}",
                adze_core::duration::format(timeout)
            );
            self.history(task_id, "schedule timed out", Some(error.clone()));
            self.fail(task_id, error, true);
        }
    }
}
