//! The production backend: PostgreSQL through a pool of connections, shared by every
//! replica of the engine.
//!
//! Commits go through one committer task per store that merges concurrent callers into
//! one transaction ([`committer`]), written as one statement per kind of row
//! ([`batch`]). Reads take a pooled connection each. When the database goes away, calls
//! fail at once with [`StoreError::Unavailable`] and the pool replaces its broken
//! connections by itself once the database is back.
//!
//! - [`migrations`]: the versioned schema, applied at connect time
//! - [`queries`]: the reads
//! - [`workflows`]: registering workflow versions, safe across replicas
//! - [`errors`]: which failures are the database's, the pool's, or the statement's

mod batch;
mod committer;
mod errors;
mod migrations;
mod queries;
mod workflows;

use std::sync::Arc;
use std::time::Duration;

use adze_core::workflow::WorkflowSpec;
use adze_core::{RunId, TaskId, TenantId};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::Config as ConnectionConfig;
use uuid::Uuid;

use self::committer::Committer;
use self::errors::from_pool;
use crate::{
    HistoryRecord, Mutation, PutWorkflowOutcome, Result, RunRecord, Store, StoreError, TaskRecord,
    TenantSnapshot, TokenRecord, WorkflowVersionRecord, postgres_message,
};

/// How long a silent connection is trusted.
const DEAD_CONNECTION: Duration = Duration::from_secs(30);
/// tokio-postgres's default, two hours: seeing it means the URL did not choose one.
const DRIVER_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// How to reach the database and how many connections to keep.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// A `postgres://user@host:port/database` URL or a `host=… user=…` string.
    pub url: String,
    /// The most connections open at once, shared by commits and reads.
    pub pool_size: usize,
    /// How long opening a connection may take before the database counts as down.
    pub connect_timeout: Duration,
    /// How long a call waits for a pooled connection before giving up as exhausted.
    pub pool_wait_timeout: Duration,
}

impl PgConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            pool_wait_timeout: Duration::from_secs(2),
        }
    }
}

/// The PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    committer: Committer,
}

impl PgStore {
    /// Connects and migrates the schema to this binary's version (refusing a newer one).
    pub async fn connect(config: PgConfig) -> Result<Self> {
        let pool = pool(&config)?;
        let mut client = pool.get().await.map_err(from_pool)?;
        migrations::run(&mut client).await?;
        drop(client);
        Ok(Self {
            inner: Arc::new(Inner {
                committer: Committer::spawn(pool.clone()),
                pool,
            }),
        })
    }

    /// The store's connection pool, for tables of the engine's own beside the store's.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.inner.pool.get().await.map_err(from_pool)
    }

    /// Passes a call's outcome on, forgetting the idle connections when it lost its own:
    /// see [`errors::forget_idle_after_loss`]. Callers drop their connection first, so
    /// it is not handed out again before its closing has been seen.
    fn noticed<T>(&self, outcome: Result<T>) -> Result<T> {
        if let Err(error) = &outcome {
            errors::forget_idle_after_loss(&self.inner.pool, error);
        }
        outcome
    }
}

/// Migrates the database at `url` to this binary's schema, returning the versions it
/// applied (empty when the schema was current).
pub async fn migrate(url: &str) -> Result<Vec<i64>> {
    let pool = pool(&PgConfig {
        pool_size: 1,
        ..PgConfig::new(url)
    })?;
    let mut client = pool.get().await.map_err(from_pool)?;
    migrations::run(&mut client).await
}

fn pool(config: &PgConfig) -> Result<Pool> {
    let mut connection: ConnectionConfig = config.url.parse().map_err(|error| {
        StoreError::Config(format!("database url: {}", postgres_message(&error)))
    })?;
    if connection.get_application_name().is_none() {
        connection.application_name("adze");
    }
    // A database host that vanishes without closing its sockets would otherwise leave a
    // call waiting for minutes: give up on unacknowledged data, and probe idle
    // connections, after [`DEAD_CONNECTION`], unless the URL says otherwise.
    if connection.get_tcp_user_timeout().is_none() {
        connection.tcp_user_timeout(DEAD_CONNECTION);
    }
    if connection.get_keepalives_idle() == DRIVER_KEEPALIVES_IDLE {
        connection.keepalives_idle(DEAD_CONNECTION);
    }
    let manager = Manager::from_config(
        connection,
        NoTls,
        ManagerConfig {
            // A connection whose socket closed is replaced; checking each one with a
            // query first would cost a round trip on every call.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.pool_size)
        .wait_timeout(Some(config.pool_wait_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.connect_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|error| StoreError::Config(format!("connection pool: {error}")))
}

#[async_trait]
impl Store for PgStore {
    async fn commit(&self, mutations: Vec<Mutation>) -> Result<()> {
        if mutations.is_empty() {
            return Ok(());
        }
        self.inner.committer.commit(mutations).await
    }

    async fn put_workflow(
        &self,
        tenant: TenantId,
        spec: WorkflowSpec,
    ) -> Result<PutWorkflowOutcome> {
        let outcome = workflows::put(&mut self.client().await?, tenant, spec).await;
        self.noticed(outcome)
    }

    async fn workflow_versions(&self, tenant: TenantId) -> Result<Vec<WorkflowVersionRecord>> {
        let outcome = queries::workflow_versions(&self.client().await?, tenant).await;
        self.noticed(outcome)
    }

    async fn signing_key(&self) -> Result<Vec<u8>> {
        let outcome = queries::signing_key(&self.client().await?).await;
        self.noticed(outcome)
    }

    async fn find_token(&self, token_id: Uuid) -> Result<Option<TokenRecord>> {
        let outcome = queries::find_token(&self.client().await?, token_id).await;
        self.noticed(outcome)
    }

    async fn tenants_to_recover(&self) -> Result<Vec<TenantId>> {
        let outcome = queries::tenants_to_recover(&self.client().await?).await;
        self.noticed(outcome)
    }

    async fn load_tenant(&self, tenant: TenantId) -> Result<TenantSnapshot> {
        let outcome = queries::tenant_snapshot(&mut self.client().await?, tenant).await;
        self.noticed(outcome)
    }

    async fn run(
        &self,
        tenant: TenantId,
        run: RunId,
    ) -> Result<Option<(RunRecord, Vec<TaskRecord>)>> {
        let outcome = queries::run(&self.client().await?, tenant, run).await;
        self.noticed(outcome)
    }

    async fn task(&self, tenant: TenantId, task: TaskId) -> Result<Option<TaskRecord>> {
        let outcome = queries::task(&self.client().await?, tenant, task).await;
        self.noticed(outcome)
    }

    async fn task_history(&self, tenant: TenantId, task: TaskId) -> Result<Vec<HistoryRecord>> {
        let outcome = queries::task_history(&self.client().await?, tenant, task).await;
        self.noticed(outcome)
    }
}
