//! Task and run states. A task moves forward only:
//!
//! ```text
//! Pending ─▶ Queued ─▶ Assigned ─▶ Running ─▶ Completed | Failed | Cancelled
//!    │          ▲          │           │
//!    │          └──────────┴───────────┘   (a retry puts a new attempt back in the queue)
//!    └─▶ Cancelled                         (a parent failed: the child never starts)
//! ```
//!
//! A replay moves a finished task back to Queued (or Pending, below a replayed parent)
//! as a new attempt.
//!
//! A run's state is derived from its tasks, never stored on its own.

use std::fmt;
use std::str::FromStr;

/// Where one task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TaskStatus {
    /// Waiting for its parents to complete.
    Pending,
    /// Ready, waiting for a worker with free slots.
    Queued,
    /// Sent to a worker, which has not said it started.
    Assigned,
    /// The worker started it.
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 7] = [
        TaskStatus::Pending,
        TaskStatus::Queued,
        TaskStatus::Assigned,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Queued => "queued",
            TaskStatus::Assigned => "assigned",
            TaskStatus::Running => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    /// Bound to a worker: it holds units (unless released) and dies with the worker.
    pub fn is_on_worker(self) -> bool {
        matches!(self, TaskStatus::Assigned | TaskStatus::Running)
    }

    /// The state callers see: waiting tasks are queued, tasks on a worker are running.
    pub fn visible(self) -> RunStatus {
        match self {
            TaskStatus::Pending | TaskStatus::Queued => RunStatus::Queued,
            TaskStatus::Assigned | TaskStatus::Running => RunStatus::Running,
            TaskStatus::Completed => RunStatus::Completed,
            TaskStatus::Failed => RunStatus::Failed,
            TaskStatus::Cancelled => RunStatus::Cancelled,
        }
    }

    /// Whether a task may move from `self` to `next`.
    pub fn can_move_to(self, next: TaskStatus) -> bool {
        use TaskStatus::*;
        matches!(
            (self, next),
            (Pending, Queued | Cancelled)
                | (Queued, Assigned | Failed | Cancelled)
                | (Assigned, Running | Queued | Completed | Failed | Cancelled)
                | (Running, Queued | Completed | Failed | Cancelled)
                // a replay runs a finished task again
                | (Completed | Failed | Cancelled, Queued | Pending)
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| format!("unknown task status {text:?}"))
    }
}

/// Where a run is, derived from its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RunStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// The run's state from its tasks': done when every task is; then failed if any
    /// failed, cancelled if any was cancelled, else completed. Until then it is running
    /// once any task has reached a worker.
    pub fn of_tasks(tasks: impl IntoIterator<Item = TaskStatus>) -> RunStatus {
        let (mut all_terminal, mut failed, mut cancelled, mut started) =
            (true, false, false, false);
        for status in tasks {
            all_terminal &= status.is_terminal();
            failed |= status == TaskStatus::Failed;
            cancelled |= status == TaskStatus::Cancelled;
            started |= !matches!(status, TaskStatus::Pending | TaskStatus::Queued);
        }
        match (all_terminal, failed, cancelled, started) {
            (true, true, _, _) => RunStatus::Failed,
            (true, false, true, _) => RunStatus::Cancelled,
            (true, false, false, _) => RunStatus::Completed,
            (false, _, _, true) => RunStatus::Running,
            (false, _, _, false) => RunStatus::Queued,
        }
    }

    /// The run's state when it has an on-failure task: its DAG tasks decide the state
    /// (the run stays failed whatever the on-failure task does), but the run is not done
    /// while the on-failure task is queued or running.
    pub fn of_run(
        dag_tasks: impl IntoIterator<Item = TaskStatus>,
        on_failure: Option<TaskStatus>,
    ) -> RunStatus {
        let status = RunStatus::of_tasks(dag_tasks);
        match on_failure {
            Some(task)
                if status.is_done() && !task.is_terminal() && task != TaskStatus::Pending =>
            {
                RunStatus::Running
            }
            _ => status,
        }
    }

    pub fn is_done(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::TaskStatus::*;
    use super::*;

    #[test]
    fn forward_only() {
        assert!(Pending.can_move_to(Queued));
        assert!(Queued.can_move_to(Assigned));
        assert!(Assigned.can_move_to(Running));
        assert!(Running.can_move_to(Completed));
        assert!(Running.can_move_to(Queued), "a retry requeues");
        for done in [Completed, Failed, Cancelled] {
            for next in TaskStatus::ALL {
                assert_eq!(
                    done.can_move_to(next),
                    matches!(next, Queued | Pending),
                    "{done} moves on only by a replay, but moved to {next}"
                );
            }
        }
        assert!(!Pending.can_move_to(Running));
        assert!(
            !Queued.can_move_to(Running),
            "a task starts only once assigned"
        );
    }

    #[test]
    fn names_round_trip() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>(), Ok(status));
        }
        assert!("nope".parse::<TaskStatus>().is_err());
    }

    #[test]
    fn run_status_from_tasks() {
        assert_eq!(RunStatus::of_tasks([Queued, Pending]), RunStatus::Queued);
        assert_eq!(
            RunStatus::of_tasks([Completed, Pending]),
            RunStatus::Running
        );
        assert_eq!(
            RunStatus::of_tasks([Completed, Completed]),
            RunStatus::Completed
        );
        assert_eq!(RunStatus::of_tasks([Failed, Cancelled]), RunStatus::Failed);
        assert_eq!(
            RunStatus::of_tasks([Completed, Cancelled]),
            RunStatus::Cancelled
        );
        assert_eq!(RunStatus::of_tasks([Running, Failed]), RunStatus::Running);
    }

    #[test]
    fn an_on_failure_task_keeps_the_run_open_but_not_its_status() {
        assert_eq!(
            RunStatus::of_run([Failed], Some(Queued)),
            RunStatus::Running
        );
        assert_eq!(
            RunStatus::of_run([Failed], Some(Completed)),
            RunStatus::Failed
        );
        assert_eq!(RunStatus::of_run([Failed], Some(Failed)), RunStatus::Failed);
        assert_eq!(RunStatus::of_run([Completed], None), RunStatus::Completed);
        assert_eq!(
            RunStatus::of_run([Completed], Some(Completed)),
            RunStatus::Completed,
            "an old on-failure attempt from before a replay does not count"
        );
    }
}
