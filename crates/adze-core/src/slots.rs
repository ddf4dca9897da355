//! Slots: a worker offers capacity per slot type, a task asks for units per slot type, and
//! all of a task's units come from one worker. A task holds its units from assignment
//! until it finishes or releases its slot.

use std::collections::BTreeMap;

use crate::{Error, Result};

/// The slot type of plain tasks.
pub const DEFAULT_SLOT_TYPE: &str = "default";
/// The slot type of durable tasks.
pub const DURABLE_SLOT_TYPE: &str = "durable";

/// Units per slot type, as a worker offers them or a task asks for them.
pub type SlotUnits = BTreeMap<String, u32>;

/// What a task asks for when it names nothing: one unit of its kind's slot type.
pub fn default_requests(is_durable: bool) -> SlotUnits {
    let slot_type = if is_durable {
        DURABLE_SLOT_TYPE
    } else {
        DEFAULT_SLOT_TYPE
    };
    SlotUnits::from([(slot_type.to_string(), 1)])
}

/// Reads a worker's capacity from `Register`: either the legacy `slots` count (units of
/// the default type) or a `slot_config` map, never both.
pub fn capacity_from_register(
    slots: Option<i32>,
    slot_config: &BTreeMap<String, i32>,
) -> Result<SlotUnits> {
    match (slots, slot_config.is_empty()) {
        (Some(_), false) => Err(Error::invalid(
            "slots and slot_config are exclusive: send one of them",
        )),
        (Some(count), true) => {
            let units = non_negative("slots", count)?;
            Ok(SlotUnits::from([(DEFAULT_SLOT_TYPE.to_string(), units)]))
        }
        (None, _) => slot_config
            .iter()
            .map(|(slot_type, &count)| {
                validate_slot_type("slot_config", slot_type)?;
                let units = non_negative(&format!("slot_config[{slot_type}]"), count)?;
                Ok((slot_type.clone(), units))
            })
            .collect(),
    }
}

/// Reads a task's `slot_requests`, falling back to [`default_requests`] when empty.
pub fn requests_from_spec(
    task: &str,
    requests: &BTreeMap<String, i32>,
    is_durable: bool,
) -> Result<SlotUnits> {
    if requests.is_empty() {
        return Ok(default_requests(is_durable));
    }
    requests
        .iter()
        .map(|(slot_type, &count)| {
            validate_slot_type(&format!("task {task:?} slot_requests"), slot_type)?;
            let field = format!("task {task:?} slot_requests[{slot_type}]");
            match non_negative(&field, count)? {
                0 => Err(Error::invalid(format!("{field} must be at least 1"))),
                units => Ok((slot_type.clone(), units)),
            }
        })
        .collect()
}

fn validate_slot_type(field: &str, slot_type: &str) -> Result<()> {
    if slot_type.is_empty() || slot_type.len() > 64 {
        return Err(Error::invalid(format!(
            "{field}: a slot type name must have 1 to 64 characters"
        )));
    }
    Ok(())
}

fn non_negative(field: &str, count: i32) -> Result<u32> {
    u32::try_from(count)
        .map_err(|_| Error::invalid(format!("{field} must not be negative, got {count}")))
}

/// A worker's capacity and what its running tasks hold of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotPool {
    capacity: SlotUnits,
    used: SlotUnits,
}

impl SlotPool {
    pub fn new(capacity: SlotUnits) -> Self {
        Self {
            capacity,
            used: SlotUnits::new(),
        }
    }

    pub fn capacity(&self) -> &SlotUnits {
        &self.capacity
    }

    pub fn used_units(&self, slot_type: &str) -> u32 {
        self.used.get(slot_type).copied().unwrap_or(0)
    }

    pub fn free_units(&self, slot_type: &str) -> u32 {
        let capacity = self.capacity.get(slot_type).copied().unwrap_or(0);
        capacity.saturating_sub(self.used_units(slot_type))
    }

    /// Whether every unit asked for is free right now.
    pub fn fits(&self, requests: &SlotUnits) -> bool {
        requests
            .iter()
            .all(|(slot_type, &units)| self.free_units(slot_type) >= units)
    }

    /// Takes the units of a task; `false` (and nothing taken) if they do not fit.
    pub fn take(&mut self, requests: &SlotUnits) -> bool {
        if !self.fits(requests) {
            return false;
        }
        for (slot_type, &units) in requests {
            *self.used.entry(slot_type.clone()).or_default() += units;
        }
        true
    }

    /// Takes units whether or not they fit. Recovery uses it: tasks already bound to a
    /// worker keep their units even if the worker came back with less capacity.
    pub fn take_unchecked(&mut self, requests: &SlotUnits) {
        for (slot_type, &units) in requests {
            *self.used.entry(slot_type.clone()).or_default() += units;
        }
    }

    /// Gives a task's units back.
    pub fn give_back(&mut self, requests: &SlotUnits) {
        for (slot_type, &units) in requests {
            if let Some(used) = self.used.get_mut(slot_type) {
                *used = used.saturating_sub(units);
            }
        }
    }

    /// The total free units over all types: how the policy breaks ties between workers.
    pub fn total_free(&self) -> u64 {
        self.capacity
            .keys()
            .map(|slot_type| u64::from(self.free_units(slot_type)))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(pairs: &[(&str, u32)]) -> SlotUnits {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn take_and_give_back() {
        let mut pool = SlotPool::new(units(&[("default", 2), ("gpu", 1)]));
        assert!(pool.take(&units(&[("default", 1)])));
        assert!(pool.take(&units(&[("default", 1), ("gpu", 1)])));
        assert_eq!(pool.free_units("default"), 0);
        assert!(!pool.take(&units(&[("default", 1)])));
        pool.give_back(&units(&[("default", 1), ("gpu", 1)]));
        assert_eq!(pool.free_units("default"), 1);
        assert_eq!(pool.free_units("gpu"), 1);
    }

    #[test]
    fn all_units_or_none() {
        let mut pool = SlotPool::new(units(&[("default", 1), ("gpu", 1)]));
        assert!(!pool.take(&units(&[("default", 1), ("gpu", 2)])));
        assert_eq!(
            pool.free_units("default"),
            1,
            "a failed take must take nothing"
        );
        assert!(!pool.fits(&units(&[("unknown", 1)])));
    }

    #[test]
    fn giving_back_more_than_used_saturates() {
        let mut pool = SlotPool::new(units(&[("default", 1)]));
        pool.give_back(&units(&[("default", 5)]));
        assert_eq!(pool.free_units("default"), 1);
    }

    #[test]
    fn register_capacity() {
        let none = BTreeMap::new();
        assert_eq!(
            capacity_from_register(Some(3), &none).unwrap(),
            units(&[("default", 3)])
        );
        let config = BTreeMap::from([("durable".to_string(), 1000), ("default".to_string(), 5)]);
        assert_eq!(
            capacity_from_register(None, &config).unwrap(),
            units(&[("default", 5), ("durable", 1000)])
        );
        let both = capacity_from_register(Some(3), &config).unwrap_err();
        assert!(both.message.contains("exclusive"));
        assert!(capacity_from_register(Some(-1), &none).is_err());
    }

    #[test]
    fn task_requests() {
        let none = BTreeMap::new();
        assert_eq!(
            requests_from_spec("t", &none, false).unwrap(),
            units(&[("default", 1)])
        );
        assert_eq!(
            requests_from_spec("t", &none, true).unwrap(),
            units(&[("durable", 1)])
        );
        let zero = BTreeMap::from([("default".to_string(), 0)]);
        assert!(
            requests_from_spec("t", &zero, false)
                .unwrap_err()
                .message
                .contains("\"t\"")
        );
    }
}
