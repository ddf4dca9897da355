//! Cancellation. A queued task leaves its queue; a task on a worker is sent
//! CANCEL_STEP_RUN (released or not) and gives its units back; either way it ends
//! CANCELLED and its DAG descendants never start. A finished task is left as it is:
//! cancelling it is a no-op, not an error.

use std::collections::HashSet;

use adze_core::TaskId;
use adze_core::state::TaskStatus;

use super::State;
use crate::clock::now_millis;
use crate::{AssignmentKind, TaskFilter};

/// The error a cancelled task carries.
const CANCELLED: &str = "task cancelled";

impl State {
    /// Cancels the live, unfinished tasks that `ids` name (a task, or a run: all its
    /// tasks) or that `filter` matches. Returns those it cancelled.
    pub(crate) fn cancel(
        &mut self,
        ids: &[uuid::Uuid],
        filter: Option<&TaskFilter>,
    ) -> Vec<TaskId> {
        let mut targets = Vec::new();
        for id in ids {
            if let Some(run) = self.runs.get(id) {
                targets.extend(run.tasks.iter().copied());
            } else if self.tasks.contains_key(id) {
                targets.push(*id);
            }
        }
        if let Some(filter) = filter {
            for run in self.runs.values() {
                if filter.matches_run(&run.record, run.version.record.workflow_id) {
                    let matching = run
                        .tasks
                        .iter()
                        .filter(|id| filter.matches_task(self.tasks[*id].record.status));
                    targets.extend(matching);
                }
            }
        }
        let mut cancelled = Vec::new();
        let mut runs = HashSet::new();
        let mut seen = HashSet::new();
        for task in targets {
            if seen.insert(task) && self.cancel_task(task) {
                cancelled.push(task);
                runs.insert(self.tasks[&task].record.run_id);
            }
        }
        for run in runs {
            self.finish_if_done(run);
        }
        cancelled
    }

    /// Cancels one task unless it has finished; says whether it did. The caller
    /// finishes the run.
    fn cancel_task(&mut self, task_id: TaskId) -> bool {
        let status = self.tasks[&task_id].record.status;
        match status {
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled => return false,
            TaskStatus::Pending => {}
            TaskStatus::Queued => self.leave_queue(task_id),
            TaskStatus::Assigned | TaskStatus::Running => {
                let mut cancel = self.assignment(task_id);
                cancel.kind = AssignmentKind::Cancel;
                self.send_to_worker(task_id, cancel);
            }
        }
        self.history(task_id, "cancelled", None);
        self.detach_from_worker(task_id);
        let task = self.tasks.get_mut(&task_id).expect("a live task");
        task.record.status = TaskStatus::Cancelled;
        task.record.error = Some(CANCELLED.to_string());
        task.record.finished_at = Some(now_millis());
        task.ready_at = None;
        let name = task.record.name.clone();
        self.save_task(task_id);
        self.skip_descendants(task_id, &format!("an ancestor task was cancelled ({name})"));
        true
    }
}
