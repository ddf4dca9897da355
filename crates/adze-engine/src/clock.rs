//! Wall-clock time as records store it. Deadlines use `tokio::time::Instant` instead, so
//! tests can pause and advance them.

use adze_core::Millis;

pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as Millis)
}
