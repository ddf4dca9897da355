//! Group commit. A committer task takes every commit waiting (up to [`MAX_GROUP`]
//! callers or [`MAX_ROWS`] mutations) and writes them in one transaction: one WAL flush
//! for many callers, and one statement per kind of row for all of them.
//!
//! [`COMMITTERS`] tasks take turns, so one group is written while the one before waits
//! for its flush. Commits in flight at the same time have no order between them (their
//! callers did not wait for each other), and the engine keeps at most one commit per
//! tenant in flight, so concurrent groups write different rows; should two ever lock
//! the same rows in opposite orders, PostgreSQL aborts one and its callers are retried
//! one by one as below.
//!
//! The group is first written as a single [`Batch`]. Should that fail, the transaction is
//! rolled back and the group written again with each caller's mutations in a savepoint
//! of their own, so a bad commit fails alone and the rest land. Nobody is answered before
//! COMMIT has returned.

use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::batch::Batch;
use super::errors::{forget_idle_after_loss, from_pool, from_postgres};
use crate::{Mutation, Result, StoreError};

/// Groups written at once.
const COMMITTERS: usize = 2;
/// The most callers merged into one transaction.
const MAX_GROUP: usize = 1024;
/// The most mutations merged into one transaction, so one statement's arrays stay modest.
const MAX_ROWS: usize = 20_000;

pub(super) struct Job {
    mutations: Vec<Mutation>,
    reply: oneshot::Sender<Result<()>>,
}

/// Hands commits to the committer task, which runs until every sender is gone.
#[derive(Clone)]
pub(super) struct Committer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Committer {
    pub(super) fn spawn(pool: Pool) -> Self {
        let (jobs, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..COMMITTERS {
            tokio::spawn(commit_loop(pool.clone(), receiver.clone()));
        }
        Self { jobs }
    }

    pub(super) async fn commit(&self, mutations: Vec<Mutation>) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { mutations, reply })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn commit_loop(pool: Pool, jobs: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    while let Some(group) = next_group(&jobs).await {
        let outcomes = match commit_group(&pool, &group).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::error!(%error, callers = group.len(), "postgres group commit failed");
                forget_idle_after_loss(&pool, &error);
                group.iter().map(|_| Err(for_each_caller(&error))).collect()
            }
        };
        for (job, outcome) in group.into_iter().zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }
}

/// The jobs waiting, at least one; `None` once every sender is gone.
async fn next_group(jobs: &Mutex<mpsc::UnboundedReceiver<Job>>) -> Option<Vec<Job>> {
    let mut jobs = jobs.lock().await;
    let first = jobs.recv().await?;
    let mut rows = first.mutations.len();
    let mut group = vec![first];
    while group.len() < MAX_GROUP && rows < MAX_ROWS {
        match jobs.try_recv() {
            Ok(job) => {
                rows += job.mutations.len();
                group.push(job);
            }
            Err(_) => break,
        }
    }
    Some(group)
}

/// Writes the group and returns each caller's outcome, or the error that failed them all.
async fn commit_group(pool: &Pool, group: &[Job]) -> Result<Vec<Result<()>>> {
    let mut client = pool.get().await.map_err(from_pool)?;
    let transaction = client.transaction().await.map_err(from_postgres)?;
    let whole = Batch::new(group.iter().flat_map(|job| &job.mutations));
    match whole.apply(&transaction).await {
        Ok(()) => {
            transaction.commit().await.map_err(from_postgres)?;
            return Ok(group.iter().map(|_| Ok(())).collect());
        }
        Err(error) if !is_one_callers_fault(&error) => return Err(error),
        Err(error) if group.len() == 1 => return Ok(vec![Err(error)]),
        Err(error) => {
            tracing::debug!(%error, "group batch failed, retrying each caller in a savepoint");
            transaction.rollback().await.map_err(from_postgres)?;
        }
    }
    let mut transaction = client.transaction().await.map_err(from_postgres)?;
    let mut outcomes = Vec::with_capacity(group.len());
    for job in group {
        let savepoint = transaction.savepoint("job").await.map_err(from_postgres)?;
        match Batch::new(&job.mutations).apply(&savepoint).await {
            Ok(()) => {
                savepoint.commit().await.map_err(from_postgres)?;
                outcomes.push(Ok(()));
            }
            Err(error) if is_one_callers_fault(&error) => {
                savepoint.rollback().await.map_err(from_postgres)?;
                outcomes.push(Err(error));
            }
            Err(error) => return Err(error),
        }
    }
    transaction.commit().await.map_err(from_postgres)?;
    Ok(outcomes)
}

/// Whether the failure came from the rows written (a constraint, a bad value, a lease
/// lost by the caller's replica) rather than from the database or the connection, which
/// would fail every caller alike.
fn is_one_callers_fault(error: &StoreError) -> bool {
    matches!(error, StoreError::Postgres(_) | StoreError::Fenced(_))
}

/// The group's failure as each of its callers hears it.
fn for_each_caller(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
        StoreError::Exhausted(message) => StoreError::Exhausted(message.clone()),
        StoreError::Closed => StoreError::Closed,
        other => StoreError::Commit(other.to_string()),
    }
}
