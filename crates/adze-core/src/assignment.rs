//! The assignment policy, as a pure function: given the queued tasks of one queue (in
//! arrival order) and the workers that serve it, decide which task goes where.
//!
//! Rules: a queue is served first in, first out; a task's units all come from one worker;
//! among the workers that fit, the one with the most free units wins (spreading load),
//! ties going to the worker listed first. When the head of a queue fits nowhere, the queue
//! waits: later tasks of the same queue ask for the same units, so skipping ahead would
//! only starve the head.

use crate::slots::{SlotPool, SlotUnits};

/// A worker as the policy sees it.
pub trait Candidate {
    fn pool(&self) -> &SlotPool;
    fn pool_mut(&mut self) -> &mut SlotPool;
    /// Paused or disconnected workers take no new work.
    fn accepts_work(&self) -> bool;
}

/// Assigns the queued tasks, front first, while some worker fits the next one, taking
/// units from the chosen worker's pool. Returns the index of the worker chosen for each
/// assigned task: the assigned tasks are the first `len` of the queue.
pub fn assign_queue<'r, W: Candidate>(
    requests: impl IntoIterator<Item = &'r SlotUnits>,
    workers: &mut [W],
) -> Vec<usize> {
    let mut chosen = Vec::new();
    for request in requests {
        let best = workers
            .iter()
            .enumerate()
            .filter(|(_, worker)| worker.accepts_work() && worker.pool().fits(request))
            .max_by_key(|(index, worker)| (worker.pool().total_free(), std::cmp::Reverse(*index)));
        let Some((index, _)) = best else { break };
        let taken = workers[index].pool_mut().take(request);
        debug_assert!(taken, "the chosen worker was checked to fit");
        chosen.push(index);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Worker {
        pool: SlotPool,
        accepts: bool,
    }

    impl Candidate for Worker {
        fn pool(&self) -> &SlotPool {
            &self.pool
        }
        fn pool_mut(&mut self) -> &mut SlotPool {
            &mut self.pool
        }
        fn accepts_work(&self) -> bool {
            self.accepts
        }
    }

    fn worker(default_units: u32) -> Worker {
        Worker {
            pool: SlotPool::new(SlotUnits::from([("default".into(), default_units)])),
            accepts: true,
        }
    }

    fn one() -> SlotUnits {
        SlotUnits::from([("default".into(), 1)])
    }

    #[test]
    fn fills_capacity_and_stops() {
        let mut workers = vec![worker(1), worker(2)];
        let queue = vec![one(); 5];
        let chosen = assign_queue(&queue, &mut workers);
        assert_eq!(
            chosen,
            vec![1, 0, 1],
            "most free units first, ties to the first listed"
        );
        assert_eq!(workers[0].pool.free_units("default"), 0);
        assert_eq!(workers[1].pool.free_units("default"), 0);
    }

    #[test]
    fn head_of_line_waits() {
        let mut workers = vec![worker(1)];
        let big = SlotUnits::from([("default".into(), 2)]);
        let queue = vec![big, one()];
        assert!(
            assign_queue(&queue, &mut workers).is_empty(),
            "FIFO: nothing jumps the head"
        );
    }

    #[test]
    fn skips_workers_that_take_no_work() {
        let mut paused = worker(5);
        paused.accepts = false;
        let mut workers = vec![paused, worker(1)];
        assert_eq!(assign_queue(&vec![one(); 2], &mut workers), vec![1]);
    }

    #[test]
    fn all_units_from_one_worker() {
        let mut workers = vec![worker(1), worker(1)];
        let two = SlotUnits::from([("default".into(), 2)]);
        assert!(assign_queue(&[two], &mut workers).is_empty());
    }

    #[test]
    fn freed_units_are_reused() {
        let mut workers = vec![worker(1)];
        assert_eq!(assign_queue(&[one()], &mut workers), vec![0]);
        assert!(assign_queue(&[one()], &mut workers).is_empty());
        workers[0].pool.give_back(&one());
        assert_eq!(assign_queue(&[one()], &mut workers), vec![0]);
    }
}
