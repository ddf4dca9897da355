//! Worker sessions: registration, the listen stream, heartbeats, loss, and slot release.
//!
//! A worker is lost when its heartbeats stop for `heartbeat_timeout`, or when its listen
//! stream closes and does not come back within `listen_grace`. Every task bound to it —
//! assigned, running, released or not — then fails with "worker lost" and is retried if
//! its policy allows. Nothing stays RUNNING on a worker that is gone.

use std::collections::HashSet;

use adze_core::slots::SlotPool;
use adze_core::state::TaskStatus;
use adze_core::workflow::check_name;
use adze_core::{Error, Result, TaskId, WorkerId};
use adze_store::{Mutation, WorkerRecord};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::timers::Timer;
use super::{Outcome, State, WorkerState};
use crate::clock::now_millis;
use crate::{Assignment, WorkerRegistration};

/// The most actions one worker may register.
const MAX_ACTIONS: usize = 10_000;

impl State {
    pub(crate) fn register_worker(&mut self, registration: WorkerRegistration) -> Result<WorkerId> {
        check_name("worker_name", &registration.name)?;
        if registration.actions.len() > MAX_ACTIONS {
            return Err(Error::invalid(format!(
                "actions: at most {MAX_ACTIONS} actions per worker"
            )));
        }
        for (index, action) in registration.actions.iter().enumerate() {
            check_name(&format!("actions[{index}]"), action)?;
        }
        let record = WorkerRecord {
            id: Uuid::new_v4(),
            tenant_id: self.tenant,
            name: registration.name,
            actions: registration.actions,
            capacity: registration.capacity.clone(),
            paused: false,
            registered_at: now_millis(),
        };
        self.batch.mutate(Mutation::SaveWorker(record.clone()));
        let id = record.id;
        let now = Instant::now();
        // It has not listened yet; give it the heartbeat timeout to do so.
        let deadline = now + self.config.heartbeat_timeout;
        self.workers.insert(
            id,
            WorkerState {
                record,
                pool: SlotPool::new(registration.capacity),
                stream: None,
                heartbeat_deadline: deadline,
                listen_deadline: Some(deadline),
                tasks: HashSet::new(),
                last_heartbeat_at: now_millis(),
                last_listen_at: None,
            },
        );
        self.arm(Timer::Worker(id), deadline);
        Ok(id)
    }

    fn worker_mut(&mut self, worker: WorkerId) -> Result<&mut WorkerState> {
        self.workers.get_mut(&worker).ok_or_else(|| {
            Error::not_found(format!(
                "worker {worker} is not registered (or was lost): register again"
            ))
        })
    }

    pub(crate) fn listen(
        &mut self,
        worker_id: WorkerId,
        stream: mpsc::UnboundedSender<Assignment>,
    ) -> Result<u64> {
        self.next_generation += 1;
        let generation = self.next_generation;
        self.adopt_stream(worker_id, generation, stream)?;
        Ok(generation)
    }

    /// Makes `stream` the worker's listen stream and sends it the assignments it may have
    /// missed while it had none.
    pub(crate) fn adopt_stream(
        &mut self,
        worker_id: WorkerId,
        generation: u64,
        stream: mpsc::UnboundedSender<Assignment>,
    ) -> Result<()> {
        let worker = self.worker_mut(worker_id)?;
        worker.stream = Some((generation, stream));
        worker.listen_deadline = None;
        worker.last_listen_at = Some(now_millis());
        let actions = worker.record.actions.clone();
        let bound: Vec<TaskId> = worker.tasks.iter().copied().collect();
        let unstarted = bound.into_iter().filter(|task| {
            self.tasks
                .get(task)
                .is_some_and(|task| task.record.status == TaskStatus::Assigned)
        });
        let unstarted: Vec<TaskId> = unstarted.collect();
        for task in unstarted {
            self.dispatch(task);
        }
        self.dirty.extend(actions);
        Ok(())
    }

    pub(crate) fn listen_closed(&mut self, worker_id: WorkerId, generation: u64) {
        let grace = self.config.listen_grace;
        let Some(worker) = self.workers.get_mut(&worker_id) else {
            return;
        };
        if worker
            .stream
            .as_ref()
            .is_some_and(|(current, _)| *current == generation)
        {
            worker.stream = None;
            let deadline = Instant::now() + grace;
            worker.listen_deadline = Some(deadline);
            self.arm(Timer::Worker(worker_id), deadline);
        }
    }

    pub(crate) fn unsubscribe(&mut self, worker_id: WorkerId) -> Result<()> {
        let generation = self
            .worker_mut(worker_id)?
            .stream
            .as_ref()
            .map(|(generation, _)| *generation);
        if let Some(generation) = generation {
            self.listen_closed(worker_id, generation);
        }
        Ok(())
    }

    pub(crate) fn heartbeat(&mut self, worker_id: WorkerId) -> Result<()> {
        let timeout = self.config.heartbeat_timeout;
        let worker = self.worker_mut(worker_id)?;
        worker.heartbeat_deadline = Instant::now() + timeout;
        worker.last_heartbeat_at = now_millis();
        Ok(())
    }

    pub(crate) fn set_paused(&mut self, worker_id: WorkerId, paused: bool) -> Result<()> {
        let worker = self.worker_mut(worker_id)?;
        worker.record.paused = paused;
        let record = worker.record.clone();
        self.dirty.extend(record.actions.iter().cloned());
        self.batch.mutate(Mutation::SaveWorker(record));
        Ok(())
    }

    pub(crate) fn release_slot(&mut self, task_id: TaskId) -> Result<Outcome> {
        let Some(task) = self.tasks.get(&task_id) else {
            return Ok(Outcome::NotLive);
        };
        if task.record.status.is_terminal() {
            return Err(crate::finished_task_error(&task.record));
        }
        if !task.record.status.is_on_worker() {
            return Err(Error::precondition(format!(
                "task {task_id} is {}: only a task on a worker holds a slot to release",
                task.record.status
            )));
        }
        if task.record.released {
            return Ok(Outcome::Done);
        }
        self.give_back_units(task_id);
        self.tasks
            .get_mut(&task_id)
            .expect("checked above")
            .record
            .released = true;
        self.save_task(task_id);
        self.history(task_id, "slot released", None);
        Ok(Outcome::Done)
    }

    /// Returns the task's units to its worker's pool (unless it released them already)
    /// and marks the worker's queues for another scheduling pass.
    fn give_back_units(&mut self, task_id: TaskId) {
        let task = &self.tasks[&task_id];
        if task.record.released {
            return;
        }
        let Some(worker) = task
            .record
            .worker_id
            .and_then(|id| self.workers.get_mut(&id))
        else {
            return;
        };
        worker.pool.give_back(&task.requests);
        self.dirty.extend(worker.record.actions.iter().cloned());
    }

    /// Unbinds a task from its worker: units back, no longer the worker's to lose.
    pub(crate) fn detach_from_worker(&mut self, task_id: TaskId) {
        self.give_back_units(task_id);
        let task = self.tasks.get_mut(&task_id).expect("a live task");
        if let Some(worker) = task
            .record
            .worker_id
            .take()
            .and_then(|id| self.workers.get_mut(&id))
        {
            worker.tasks.remove(&task_id);
        }
        task.record.released = false;
        task.deadline = None;
    }

    /// Sends the task's start to its worker once the batch deciding it is committed.
    pub(crate) fn dispatch(&mut self, task_id: TaskId) {
        let assignment = self.assignment(task_id);
        self.send_to_worker(task_id, assignment);
    }

    /// Sends a message about the task down its worker's stream, after the commit.
    pub(crate) fn send_to_worker(&mut self, task_id: TaskId, assignment: Assignment) {
        let Some(stream) = self.tasks[&task_id]
            .record
            .worker_id
            .and_then(|id| self.workers.get(&id))
            .and_then(|worker| worker.stream.as_ref())
            .map(|(_, stream)| stream.clone())
        else {
            return;
        };
        self.batch.then(move |committed| {
            if committed.is_ok() {
                // A closed stream is noticed by the listen watcher; an unsent start is
                // sent again if the worker comes back in time.
                let _ = stream.send(assignment);
            }
        });
    }

    /// A liveness timer of the worker fired: lost if past a deadline, else re-armed.
    pub(crate) fn check_worker(&mut self, worker_id: WorkerId, now: Instant) {
        let Some(worker) = self.workers.get(&worker_id) else {
            return;
        };
        let next = worker
            .listen_deadline
            .map_or(worker.heartbeat_deadline, |listen| {
                listen.min(worker.heartbeat_deadline)
            });
        if next > now {
            self.arm_once(Timer::Worker(worker_id), next);
            return;
        }
        let reason = if worker.heartbeat_deadline <= now {
            format!(
                "no heartbeat for {} s",
                self.config.heartbeat_timeout.as_secs()
            )
        } else {
            format!(
                "its listen stream closed and did not reopen within {} s",
                self.config.listen_grace.as_secs()
            )
        };
        self.lose_worker(worker_id, &reason);
    }

    /// The worker is gone: every task bound to it fails ("worker lost"), retried by policy.
    pub(crate) fn lose_worker(&mut self, worker_id: WorkerId, reason: &str) {
        let Some(worker) = self.workers.get(&worker_id) else {
            return;
        };
        tracing::warn!(worker_id = %worker_id, worker = %worker.record.name, reason, "worker lost");
        let error = format!(
            "worker lost: worker {} ({worker_id}) is gone: {reason}",
            worker.record.name
        );
        let mut tasks: Vec<TaskId> = worker.tasks.iter().copied().collect();
        tasks.sort_by_key(|task| self.tasks.get(task).map(|task| task.record.queued_seq));
        for task in tasks {
            self.history(task, "worker lost", Some(reason.to_string()));
            self.fail(task, error.clone(), true);
        }
        if let Some(worker) = self.workers.remove(&worker_id) {
            self.dirty.extend(worker.record.actions);
        }
        self.batch.mutate(Mutation::DeleteWorker(worker_id));
    }
}
