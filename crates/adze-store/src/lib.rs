//! # adze-store
//!
//! Where Adze's truth lives. The engine keeps working state in memory, but nothing is
//! visible before the [`Store`] has committed it, and on start the engine rebuilds itself
//! from the store alone.
//!
//! ## Layout
//! - [`records`]: the rows the engine reads and writes, backend-neutral
//! - [`Store`]: the contract every backend implements, tested by one suite
//! - [`sqlite`]: the embedded backend (`adze lite`): WAL, one writer thread with group
//!   commit, a few reader connections
//! - [`postgres`]: the production backend (`adze server`): a connection pool, group
//!   commit with one batched statement per kind of row, versioned migrations
//!
//! Writes go through [`Store::commit`], which takes a batch of [`Mutation`]s: a backend
//! merges concurrent batches into one transaction, which is where throughput comes from.

#![forbid(unsafe_code)]

pub mod postgres;
pub mod records;
pub mod sqlite;

use adze_core::{RunId, TaskId, TenantId};
use async_trait::async_trait;

pub use records::*;

/// Storage failures. The engine reports them as `UNAVAILABLE`/`INTERNAL`; they never carry
/// client input back.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A statement failed: a constraint, a bad value, a query the schema does not fit.
    #[error("postgres: {}", postgres_message(.0))]
    Postgres(tokio_postgres::Error),
    /// The database cannot be reached, or the connection to it was lost.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Every pooled connection stayed busy for the pool's wait timeout.
    #[error("no database connection free: {0}")]
    Exhausted(String),
    #[error("invalid store configuration: {0}")]
    Config(String),
    #[error("commit failed: {0}")]
    Commit(String),
    /// A commit's [`Mutation::Fence`] found its replica no longer owns the tenant.
    #[error("{0}")]
    Fenced(String),
    #[error("the store is closed")]
    Closed,
    #[error(
        "the store's schema is version {found}, newer than this binary's {supported}: upgrade adze"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A PostgreSQL error with its causes: the driver's own `Display` names only the kind
/// ("db error", "error connecting to server").
pub(crate) fn postgres_message(error: &tokio_postgres::Error) -> String {
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    message
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The contract of a storage backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies the mutations atomically, in order, durably, before returning.
    async fn commit(&self, mutations: Vec<Mutation>) -> Result<()>;

    /// Registers a workflow version: the same spec as the latest version is a no-op that
    /// returns it; a changed one becomes the next version.
    async fn put_workflow(
        &self,
        tenant: TenantId,
        spec: adze_core::workflow::WorkflowSpec,
    ) -> Result<PutWorkflowOutcome>;

    /// Every version of every workflow of the tenant, oldest first.
    async fn workflow_versions(&self, tenant: TenantId) -> Result<Vec<WorkflowVersionRecord>>;

    /// The key tokens are signed with, created on first use.
    async fn signing_key(&self) -> Result<Vec<u8>>;

    async fn find_token(&self, token_id: uuid::Uuid) -> Result<Option<TokenRecord>>;

    /// Tenants that have unfinished runs or registered workers: the ones to recover.
    async fn tenants_to_recover(&self) -> Result<Vec<TenantId>>;

    /// The tenant's unfinished runs with all their tasks, and its workers.
    async fn load_tenant(&self, tenant: TenantId) -> Result<TenantSnapshot>;

    /// One run and its tasks.
    async fn run(
        &self,
        tenant: TenantId,
        run: RunId,
    ) -> Result<Option<(RunRecord, Vec<TaskRecord>)>>;

    /// One task.
    async fn task(&self, tenant: TenantId, task: TaskId) -> Result<Option<TaskRecord>>;

    /// A task's history, oldest first.
    async fn task_history(&self, tenant: TenantId, task: TaskId) -> Result<Vec<HistoryRecord>>;
}
