//! A task's attempts, worked out from its history: the history already records every
//! transition with its attempt number, worker and time, so attempts need no table of
//! their own.

use adze_core::{Millis, WorkerId};
use adze_store::HistoryRecord;

/// One attempt of a task: where it ran, how it ended, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 0 for the first: the `retry_count` its worker saw.
    pub number: u32,
    pub worker_id: Option<WorkerId>,
    pub assigned_at: Option<Millis>,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    /// `completed`, `failed` or `cancelled`; none while it runs.
    pub outcome: Option<&'static str>,
    pub error: Option<String>,
}

/// Groups history lines (oldest first) by attempt.
pub fn from_history(history: &[HistoryRecord]) -> Vec<Attempt> {
    let mut attempts: Vec<Attempt> = Vec::new();
    for line in history {
        let index = match attempts.iter().position(|a| a.number == line.attempt) {
            Some(index) => index,
            None => {
                attempts.push(Attempt {
                    number: line.attempt,
                    worker_id: None,
                    assigned_at: None,
                    started_at: None,
                    finished_at: None,
                    outcome: None,
                    error: None,
                });
                attempts.len() - 1
            }
        };
        let attempt = &mut attempts[index];
        attempt.worker_id = attempt.worker_id.or(line.worker_id);
        let outcome = match line.kind.as_str() {
            "assigned" => {
                attempt.assigned_at = Some(line.at);
                None
            }
            "started" => {
                attempt.started_at = Some(line.at);
                None
            }
            "completed" => Some("completed"),
            "failed" => Some("failed"),
            "cancelled" => Some("cancelled"),
            _ => None,
        };
        if let Some(outcome) = outcome.filter(|_| attempt.outcome.is_none()) {
            attempt.outcome = Some(outcome);
            attempt.finished_at = Some(line.at);
            attempt.error = line.detail.clone();
        }
    }
    attempts.sort_by_key(|attempt| attempt.number);
    attempts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(attempt: u32, at: Millis, kind: &str, detail: Option<&str>) -> HistoryRecord {
        HistoryRecord {
            task_id: uuid::Uuid::nil(),
            attempt,
            at,
            kind: kind.into(),
            worker_id: (kind != "retrying").then(uuid::Uuid::nil),
            detail: detail.map(str::to_string),
        }
    }

    #[test]
    fn each_attempt_keeps_its_worker_outcome_and_timings() {
        let attempts = from_history(&[
            line(0, 1, "assigned", None),
            line(0, 2, "started", None),
            line(0, 5, "failed", Some("boom")),
            line(1, 6, "retrying", None),
            line(1, 9, "assigned", None),
            line(1, 10, "started", None),
            line(1, 12, "completed", None),
        ]);
        assert_eq!(attempts.len(), 2);
        assert_eq!(
            (attempts[0].started_at, attempts[0].finished_at),
            (Some(2), Some(5))
        );
        assert_eq!(attempts[0].outcome, Some("failed"));
        assert_eq!(attempts[0].error.as_deref(), Some("boom"));
        assert_eq!(attempts[1].assigned_at, Some(9));
        assert_eq!(attempts[1].outcome, Some("completed"));
        assert_eq!(attempts[1].error, None);
    }
}
