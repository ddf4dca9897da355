//! The committer: makes a tenant actor's decisions durable, then visible.
//!
//! The actor decides in memory and hands each batch — the mutations plus the effects
//! that reveal them (answers to callers, assignments to workers) — to its committer. The
//! committer merges the batches waiting for it into one store commit and runs their
//! effects only once that commit has succeeded, in order. So the actor never waits on
//! the disk, yet no one sees a state the store does not have.

use std::sync::Arc;

use adze_core::Result;
use adze_store::{Mutation, Store};
use tokio::sync::mpsc;

use crate::store_error;

/// Something to do once a batch is committed; it learns whether the commit succeeded.
pub type Effect = Box<dyn FnOnce(Result<()>) + Send>;

/// Mutations and the effects that must wait for them.
#[derive(Default)]
pub struct Batch {
    pub mutations: Vec<Mutation>,
    pub effects: Vec<Effect>,
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

/// Runs the committer until the actor drops its sender; then drains what is left.
pub async fn run(store: Arc<dyn Store>, mut batches: mpsc::UnboundedReceiver<Batch>) {
    while let Some(first) = batches.recv().await {
        let mut mutations = first.mutations;
        let mut effects = first.effects;
        while let Ok(next) = batches.try_recv() {
            mutations.extend(next.mutations);
            effects.extend(next.effects);
        }
        let committed: Result<()> = store.commit(mutations).await.map_err(store_error);
        if let Err(error) = &committed {
            tracing::error!(%error, "a batch of transitions could not be committed");
        }
        for effect in effects {
            effect(committed.clone());
        }
    }
}
