//! The retry policy: whether a failed attempt gets another, and how long the next one
//! waits. Hatchet's rule: the delay before retry `n` (the `retry_count` the worker sees)
//! is `min(backoff_max_seconds, backoff_factor^n)` seconds; without a factor a retry is
//! queued at once. A replay starts the count over: `n` counts from it.

use std::time::Duration;

use crate::workflow::TaskSpec;

/// The cap on a backoff delay when the spec names none (Hatchet's default, a day).
pub const DEFAULT_BACKOFF_MAX_SECONDS: u32 = 86_400;

/// Whether the attempt that just failed may be retried. `retries_from` is the attempt
/// the policy counts from: a replay starts a fresh count.
pub fn may_retry(spec: &TaskSpec, attempt: u32, retries_from: u32) -> bool {
    attempt.saturating_sub(retries_from) < spec.retries
}

/// How long retry number `next_attempt` waits before it may be assigned.
pub fn delay(spec: &TaskSpec, next_attempt: u32) -> Duration {
    let Some(factor) = spec.backoff_factor else {
        return Duration::ZERO;
    };
    let max = f64::from(
        spec.backoff_max_seconds
            .unwrap_or(DEFAULT_BACKOFF_MAX_SECONDS),
    );
    // powi saturates to infinity for large attempts; min brings it back to the cap.
    let seconds = factor
        .powi(next_attempt.min(i32::MAX as u32) as i32)
        .min(max);
    Duration::from_secs_f64(seconds.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(retries: u32, factor: Option<f64>, max: Option<u32>) -> TaskSpec {
        TaskSpec {
            retries,
            backoff_factor: factor,
            backoff_max_seconds: max,
            ..TaskSpec::new("t", "wf:t")
        }
    }

    #[test]
    fn no_factor_means_no_delay() {
        assert_eq!(delay(&spec(3, None, Some(60)), 2), Duration::ZERO);
    }

    #[test]
    fn delays_grow_by_the_factor_up_to_the_cap() {
        let policy = spec(10, Some(2.0), Some(60));
        let seconds: Vec<u64> = (1..=7).map(|n| delay(&policy, n).as_secs()).collect();
        assert_eq!(seconds, vec![2, 4, 8, 16, 32, 60, 60]);
        let uncapped = spec(100, Some(2.0), None);
        assert_eq!(
            delay(&uncapped, 1_000),
            Duration::from_secs(u64::from(DEFAULT_BACKOFF_MAX_SECONDS))
        );
        assert_eq!(
            delay(&spec(3, Some(1.5), None), 2),
            Duration::from_secs_f64(2.25)
        );
    }

    #[test]
    fn retries_are_counted_from_the_last_replay() {
        let policy = spec(2, None, None);
        assert!(may_retry(&policy, 0, 0));
        assert!(may_retry(&policy, 1, 0));
        assert!(!may_retry(&policy, 2, 0), "two retries used");
        assert!(
            may_retry(&policy, 3, 3),
            "a replay at attempt 3 starts again"
        );
        assert!(!may_retry(&spec(0, None, None), 0, 0));
    }
}
