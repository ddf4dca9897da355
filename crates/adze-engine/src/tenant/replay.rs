//! Replay: a finished task runs again as a new attempt with the same input, and so do
//! its DAG descendants (a replayed task's children wait for it again). A task whose
//! parents did not all complete cannot run alone, so those parents are replayed too.
//! Each replayed task starts a fresh retry count. A finished run is reopened: back in
//! memory, unfinished in the store, so recovery finds it again.

use std::collections::BTreeSet;
use std::sync::Arc;

use adze_core::state::{RunStatus, TaskStatus};
use adze_core::{RunId, TaskId};
use adze_store::Mutation;

use super::{ReplayTarget, Replayed, RunSnapshot, RunState, State, TaskState};

impl State {
    pub(crate) fn replay(
        &mut self,
        targets: &[ReplayTarget],
        stored: Vec<RunSnapshot>,
    ) -> Replayed {
        let mut missing: Vec<RunId> = targets
            .iter()
            .map(|target| target.run)
            .filter(|run| {
                !self.runs.contains_key(run) && !stored.iter().any(|given| given.run.id == *run)
            })
            .collect();
        missing.dedup();
        if !missing.is_empty() {
            return Replayed {
                tasks: Vec::new(),
                missing,
            };
        }
        let mut revived = Vec::new();
        for snapshot in stored {
            let id = snapshot.run.id;
            if !self.runs.contains_key(&id) && self.revive(snapshot) {
                revived.push(id);
            }
        }
        let mut tasks = Vec::new();
        for target in targets {
            if self.runs.contains_key(&target.run) {
                tasks.extend(self.replay_target(*target));
            }
        }
        for run_id in revived {
            let run = self.runs.get_mut(&run_id).expect("revived above");
            if run.record.finished_at.is_some() {
                // Nothing of it was replayed after all: it stays finished.
                let run = self.runs.remove(&run_id).expect("checked above");
                for task in run.tasks {
                    self.tasks.remove(&task);
                }
            }
        }
        Replayed {
            tasks,
            missing: Vec::new(),
        }
    }

    /// Puts a finished run, as the store has it, back in memory (not yet reopened).
    fn revive(&mut self, snapshot: RunSnapshot) -> bool {
        let Some(version) = self
            .versions
            .get(&snapshot.run.workflow_version_id)
            .cloned()
        else {
            tracing::error!(run = %snapshot.run.id, "replay: the run's workflow version is not loaded");
            return false;
        };
        let mut records = snapshot.tasks;
        records.sort_by_key(|task| task.position);
        let mut ids = Vec::with_capacity(records.len());
        for record in records {
            let Some(requests) = version.requests.get(record.position as usize).cloned() else {
                tracing::error!(task = %record.id, "replay: task outside its workflow version");
                continue;
            };
            ids.push(record.id);
            let task = TaskState::stored(record, requests);
            self.tasks.insert(task.record.id, task);
        }
        self.runs.insert(
            snapshot.run.id,
            RunState {
                record: snapshot.run,
                version: Arc::clone(&version),
                tasks: ids,
            },
        );
        true
    }

    /// Replays what the target names; returns the tasks queued or made to wait again.
    fn replay_target(&mut self, target: ReplayTarget) -> Vec<TaskId> {
        let run = &self.runs[&target.run];
        let spec = &run.version.record.spec;
        let dag = &run.version.dag;
        let status_at = |index: usize| self.tasks[&run.tasks[index]].record.status;
        let chosen: BTreeSet<usize> = match target.task {
            None => (0..spec.tasks.len()).collect(),
            Some(task) => match run.tasks.iter().position(|id| *id == task) {
                Some(position) if spec.is_on_failure(position) => BTreeSet::from([position]),
                Some(position) => {
                    let mut chosen = BTreeSet::new();
                    let mut next = vec![position];
                    while let Some(index) = next.pop() {
                        if chosen.insert(index) {
                            next.extend(&dag.children[index]);
                            let unfinished_parents = dag.parents[index]
                                .iter()
                                .filter(|&&parent| status_at(parent) != TaskStatus::Completed);
                            next.extend(unfinished_parents);
                        }
                    }
                    chosen
                }
                None => BTreeSet::new(),
            },
        };
        // Tasks still queued or running are left as they are.
        let reset: Vec<usize> = chosen
            .into_iter()
            .filter(|&index| status_at(index).is_terminal())
            .collect();
        if reset.is_empty() {
            return Vec::new();
        }
        let on_failure_position = spec.tasks.len();
        let is_on_failure_target = spec.is_on_failure(reset[0]);
        let ids: Vec<TaskId> = reset.iter().map(|&index| run.tasks[index]).collect();
        // An on-failure task that ran before must run again if the replay fails again.
        let old_on_failure = (!is_on_failure_target)
            .then(|| run.tasks.get(on_failure_position).copied())
            .flatten()
            .filter(|id| self.tasks[id].record.status.is_terminal());
        for &id in ids.iter().chain(&old_on_failure) {
            self.reset_for_replay(id);
        }
        for (&index, &id) in reset.iter().zip(&ids) {
            let run = &self.runs[&target.run];
            let ready = is_on_failure_target
                || run.version.dag.parents[index].iter().all(|&parent| {
                    self.tasks[&run.tasks[parent]].record.status == TaskStatus::Completed
                });
            if ready {
                self.enqueue(id);
            }
        }
        let run = self
            .runs
            .get_mut(&target.run)
            .expect("checked by the caller");
        if run.record.finished_at.take().is_some() {
            run.record.status = RunStatus::Running;
            self.batch
                .mutate(Mutation::ReopenRun { run_id: target.run });
        }
        ids
    }

    /// A new attempt, waiting (pending) with nothing of the old one but its input.
    fn reset_for_replay(&mut self, task_id: TaskId) {
        let task = self.tasks.get_mut(&task_id).expect("a live task");
        let record = &mut task.record;
        record.attempt += 1;
        record.retries_from = record.attempt;
        record.status = TaskStatus::Pending;
        record.output = None;
        record.error = None;
        record.started_at = None;
        record.finished_at = None;
        record.queued_at = None;
        record.worker_id = None;
        record.released = false;
        task.deadline = None;
        task.ready_at = None;
        self.save_task(task_id);
        self.history(task_id, "replayed", None);
    }
}
