//! The scheduling pass: after every batch of commands, each queue that something may
//! have unblocked (a new task, a completion, a release, a worker joining) is offered to
//! the workers that serve it, by the pure policy in `adze_core::assignment`.

use adze_core::TaskId;
use adze_core::assignment::{Candidate, assign_queue};
use adze_core::slots::SlotPool;
use adze_core::state::TaskStatus;

use super::{State, WorkerState};
use crate::payload::action_payload;
use crate::{Assignment, AssignmentKind};

impl Candidate for &mut WorkerState {
    fn pool(&self) -> &SlotPool {
        &self.pool
    }

    fn pool_mut(&mut self) -> &mut SlotPool {
        &mut self.pool
    }

    fn accepts_work(&self) -> bool {
        self.stream.is_some() && !self.record.paused
    }
}

impl State {
    pub(crate) fn schedule(&mut self) {
        let dirty: Vec<String> = self.dirty.drain().collect();
        for action in dirty {
            self.schedule_queue(&action);
        }
    }

    fn schedule_queue(&mut self, action: &str) {
        let Some(queue) = self.queues.get_mut(action) else {
            return;
        };
        if queue.is_empty() {
            self.queues.remove(action);
            return;
        }
        let mut candidates: Vec<&mut WorkerState> = self
            .workers
            .values_mut()
            .filter(|worker| worker.record.actions.iter().any(|served| served == action))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let tasks = &self.tasks;
        let chosen = assign_queue(
            queue.iter().map(|id| tasks[id].requests.as_ref()),
            &mut candidates,
        );
        let workers: Vec<_> = chosen
            .iter()
            .map(|&index| candidates[index].record.id)
            .collect();
        drop(candidates);
        let assigned: Vec<TaskId> = queue.drain(..workers.len()).collect();
        for (task_id, worker_id) in assigned.into_iter().zip(workers) {
            let task = self.tasks.get_mut(&task_id).expect("queued tasks are live");
            task.record.status = TaskStatus::Assigned;
            task.record.worker_id = Some(worker_id);
            task.record.released = false;
            self.workers
                .get_mut(&worker_id)
                .expect("chosen from the live workers")
                .tasks
                .insert(task_id);
            self.save_task(task_id);
            self.history(task_id, "assigned", None);
            self.start_deadline(task_id, std::time::Duration::ZERO);
            self.dispatch(task_id);
        }
    }

    /// The start message of a task, with its input and its parents' outputs (for the
    /// on-failure task: the errors of the tasks that failed).
    pub(crate) fn assignment(&self, task_id: TaskId) -> Assignment {
        let task = &self.tasks[&task_id];
        let run = &self.runs[&task.record.run_id];
        let position = task.record.position as usize;
        let spec = &run.version.record.spec;
        let task_spec = spec
            .task_at(position)
            .expect("a task's position is in its spec");
        let record_at = |index: usize| &self.tasks[&run.tasks[index]].record;
        let parents = run.version.dag.parents.get(position).into_iter().flatten();
        let parents = parents.map(|&parent| {
            (
                spec.tasks[parent].name.as_str(),
                record_at(parent).output.as_deref(),
            )
        });
        let errors = spec.is_on_failure(position).then(|| {
            (0..spec.tasks.len())
                .map(record_at)
                .filter(|record| record.status == TaskStatus::Failed)
                .map(|record| (record.name.as_str(), record.error.as_deref().unwrap_or("")))
        });
        Assignment {
            kind: AssignmentKind::Start,
            tenant_id: self.tenant,
            run_id: run.record.id,
            workflow_id: run.version.record.workflow_id,
            workflow_version_id: run.version.record.id,
            workflow_name: spec.name.clone(),
            task_id,
            task_name: task_spec.name.clone(),
            action: task_spec.action.clone(),
            attempt: task.record.attempt,
            payload: action_payload(
                &run.record.input,
                parents,
                errors.into_iter().flatten(),
                run.record.event_id.is_some(),
            ),
            additional_metadata: run.record.additional_metadata.clone(),
            created_at: run.record.created_at,
        }
    }
}
