//! The worker's own concurrency limit: one semaphore per slot type, sized like the
//! capacity it registers. The engine never assigns beyond that capacity; the local limit
//! keeps a task that has not released its slot counted, and lets one that has released
//! it stop counting at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub(crate) struct LocalSlots {
    pools: Arc<BTreeMap<String, (Arc<Semaphore>, u32)>>,
}

/// The units one running task holds; dropping it gives them back.
pub(crate) struct SlotPermit {
    _held: Vec<OwnedSemaphorePermit>,
}

impl LocalSlots {
    pub(crate) fn new(capacity: &BTreeMap<String, u32>) -> Self {
        let pools = capacity
            .iter()
            .map(|(slot_type, units)| {
                let pool = Arc::new(Semaphore::new(*units as usize));
                (slot_type.clone(), (pool, *units))
            })
            .collect();
        LocalSlots {
            pools: Arc::new(pools),
        }
    }

    /// Waits for the units; a request for a type this worker lacks, or for more than its
    /// capacity, takes what exists (the engine only assigns what fits).
    pub(crate) async fn acquire(&self, request: &BTreeMap<String, u32>) -> SlotPermit {
        let mut held = Vec::new();
        for (slot_type, units) in request {
            let Some((pool, capacity)) = self.pools.get(slot_type) else {
                continue;
            };
            if let Ok(permit) = pool
                .clone()
                .acquire_many_owned((*units).min(*capacity))
                .await
            {
                held.push(permit);
            }
        }
        SlotPermit { _held: held }
    }

    /// Free units of a type, for tests and logs.
    #[cfg(test)]
    pub(crate) fn available(&self, slot_type: &str) -> usize {
        self.pools
            .get(slot_type)
            .map_or(0, |(pool, _)| pool.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn permits_hold_units_until_dropped() {
        let slots = LocalSlots::new(&BTreeMap::from([("default".to_string(), 2)]));
        let one = slots
            .acquire(&BTreeMap::from([("default".to_string(), 1)]))
            .await;
        assert_eq!(slots.available("default"), 1);
        drop(one);
        assert_eq!(slots.available("default"), 2);
        let unknown = slots
            .acquire(&BTreeMap::from([("gpu".to_string(), 1)]))
            .await;
        assert_eq!(slots.available("default"), 2);
        drop(unknown);
    }
}
