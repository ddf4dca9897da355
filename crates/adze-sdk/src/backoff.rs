//! How long to wait before trying a broken stream again: 100 ms, 200 ms, 400 ms … at
//! most 10 s. Shared by the worker's listen stream and the client's result streams.

use std::time::Duration;

const FIRST_DELAY: Duration = Duration::from_millis(100);
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(10);

/// The delay after `failures` consecutive failures (1 for the first).
pub(crate) fn delay(failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    FIRST_DELAY.saturating_mul(factor).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_a_cap() {
        assert_eq!(delay(1), Duration::from_millis(100));
        assert_eq!(delay(3), Duration::from_millis(400));
        assert_eq!(delay(40), MAX_DELAY);
    }
}
