//! The committer: makes a tenant actor's decisions durable, then visible.
//!
//! The actor decides in memory and hands each batch — the mutations plus the effects
//! that reveal them (answers to callers, assignments to workers) — to its committer. The
//! committer merges the batches waiting for it into one store commit and runs their
//! effects only once that commit has succeeded, in order. So the actor never waits on
//! the disk, yet no one sees a state the store does not have.
//!
//! When a commit fails, the actor's memory is ahead of the store. The committer fails that
//! batch's effects, fails every later batch of the same epoch without writing it (they were
//! decided on the same wrong state), and asks the actor to reload itself from the store.

use std::sync::Arc;

use adze_core::{Error, Result};
use adze_store::{Mutation, Store};
use tokio::sync::mpsc;

use crate::store_error;
use crate::tenant::Command;

/// Something to do once a batch is committed; it learns whether the commit succeeded.
pub type Effect = Box<dyn FnOnce(Result<()>) + Send>;

/// Mutations and the effects that must wait for them.
#[derive(Default)]
pub struct Batch {
    pub mutations: Vec<Mutation>,
    pub effects: Vec<Effect>,
    /// The actor state's epoch when it was decided.
    pub epoch: u64,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.mutations.is_empty() && self.effects.is_empty()
    }

    pub fn mutate(&mut self, mutation: Mutation) {
        self.mutations.push(mutation);
    }

    pub fn then(&mut self, effect: impl FnOnce(Result<()>) + Send + 'static) {
        self.effects.push(Box::new(effect));
    }

    /// Runs every effect with `error` instead of committing.
    pub fn fail(self, error: Error) {
        for effect in self.effects {
            effect(Err(error.clone()));
        }
    }

    /// Answers a caller with `value` once committed, or with the commit's error.
    pub fn reply<T: Send + 'static>(
        &mut self,
        reply: tokio::sync::oneshot::Sender<Result<T>>,
        value: Result<T>,
    ) {
        self.then(move |committed| {
            let _ = reply.send(committed.and(value));
        });
    }
}

/// What callers hear when their batch is dropped because the tenant is being reloaded.
pub fn reloading() -> Error {
    Error::unavailable("the engine is reloading this tenant after a storage failure; retry")
}

/// Runs the committer until the actor drops its sender; then drains what is left.
/// `fence`, on replicas, goes first in every commit that writes (see [`Mutation::Fence`]).
pub async fn run(
    store: Arc<dyn Store>,
    mut batches: mpsc::UnboundedReceiver<Batch>,
    actor: mpsc::UnboundedSender<Command>,
    fence: Option<Mutation>,
) {
    let mut failed_epoch = None;
    let mut next = None;
    loop {
        let first = match next.take() {
            Some(batch) => batch,
            None => match batches.recv().await {
                Some(batch) => batch,
                None => break,
            },
        };
        if failed_epoch == Some(first.epoch) {
            first.fail(reloading());
            continue;
        }
        let epoch = first.epoch;
        let mut mutations = first.mutations;
        if !mutations.is_empty()
            && let Some(fence) = &fence
        {
            mutations.insert(0, fence.clone());
        }
        let mut effects = first.effects;
        while let Ok(batch) = batches.try_recv() {
            if batch.epoch != epoch {
                next = Some(batch);
                break;
            }
            mutations.extend(batch.mutations);
            effects.extend(batch.effects);
        }
        let committed: Result<()> = store.commit(mutations).await.map_err(store_error);
        if let Err(error) = &committed {
            tracing::error!(%error, "a batch of transitions could not be committed; reloading the tenant");
            failed_epoch = Some(epoch);
            let _ = actor.send(Command::Reload { epoch });
        }
        for effect in effects {
            effect(committed.clone());
        }
    }
}
