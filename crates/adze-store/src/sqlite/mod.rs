//! The embedded backend: one SQLite file in WAL mode.
//!
//! All writes go through one writer thread. It takes every job waiting in its channel
//! (up to [`MAX_GROUP`]), runs them in one transaction, each inside its own savepoint so a
//! failing job fails alone, commits once and then answers them all: one fsync for many
//! callers. Reads use a few separate connections, which WAL lets run beside the writer.

mod rows;

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use adze_core::workflow::WorkflowSpec;
use adze_core::{RunId, TaskId, TenantId};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::{
    HistoryRecord, Mutation, PutWorkflowOutcome, Result, RunRecord, Store, StoreError, TaskRecord,
    TenantSnapshot, TokenRecord, WorkflowVersionRecord,
};

/// The schema migrations, in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/001_init.sql"),
    include_str!("../../migrations/sqlite/002_retry_timing.sql"),
];
/// The most jobs merged into one transaction.
const MAX_GROUP: usize = 1024;
const READERS: usize = 4;

/// A job runs inside the group transaction and returns what answers its caller once the
/// commit has succeeded or failed: nobody hears of a write before it is durable.
type Job = Box<dyn FnOnce(&Transaction<'_>) -> Answer + Send>;
type Answer = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Option<std_mpsc::Sender<Job>>>,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`, migrating it to this binary's schema.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("adze.db");
        let mut connection = open_connection(&path)?;
        migrate(&mut connection)?;
        let (sender, receiver) = std_mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("adze-sqlite-writer".into())
            .spawn(move || write_loop(connection, receiver))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(Some(sender)),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs `job` on the writer thread inside the next group transaction.
    async fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |tx| {
            let outcome = in_savepoint(tx, job);
            Box::new(move |commit_error: Option<&StoreError>| {
                let outcome = match commit_error {
                    Some(error) => Err(StoreError::Commit(error.to_string())),
                    None => outcome,
                };
                let _ = reply.send(outcome);
            })
        });
        {
            let writer = self.inner.writer.lock().expect("writer lock poisoned");
            let sender = writer.as_ref().ok_or(StoreError::Closed)?;
            sender.send(job).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `query` on a reader connection in the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().expect("reader lock poisoned").pop();
            let connection = match pooled {
                Some(connection) => connection,
                None => open_connection(&inner.path)?,
            };
            let result = query(&connection);
            let mut readers = inner.readers.lock().expect("reader lock poisoned");
            if readers.len() < READERS {
                readers.push(connection);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// Stops the writer once the jobs already sent are done.
    pub fn close(&self) {
        self.inner
            .writer
            .lock()
            .expect("writer lock poisoned")
            .take();
    }
}

fn open_connection(path: &Path) -> Result<Connection> {
    let connection = Connection::open(path)?;
    // FULL makes every commit survive power loss, not only a process crash.
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;",
    )?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> Result<()> {
    let applied: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if applied > supported {
        return Err(StoreError::SchemaTooNew {
            found: applied,
            supported,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let tx = connection.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn in_savepoint<T>(
    tx: &Transaction<'_>,
    job: impl FnOnce(&Transaction<'_>) -> Result<T>,
) -> Result<T> {
    tx.execute_batch("SAVEPOINT job")?;
    match job(tx) {
        Ok(value) => {
            tx.execute_batch("RELEASE job")?;
            Ok(value)
        }
        Err(error) => {
            tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(error)
        }
    }
}

fn write_loop(mut connection: Connection, jobs: std_mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        run_group(&mut connection, group);
    }
}

fn run_group(connection: &mut Connection, group: Vec<Job>) {
    let tx = match connection.transaction() {
        Ok(tx) => tx,
        Err(error) => {
            let error = StoreError::from(error);
            tracing::error!(%error, "sqlite transaction could not begin");
            // Dropping the jobs drops their reply channels: callers see the store closed.
            return;
        }
    };
    let answers: Vec<Answer> = group.into_iter().map(|job| job(&tx)).collect();
    let error = tx.commit().err().map(StoreError::from);
    if let Some(error) = &error {
        tracing::error!(%error, "sqlite group commit failed");
    }
    for answer in answers {
        answer(error.as_ref());
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, mutations: Vec<Mutation>) -> Result<()> {
        if mutations.is_empty() {
            return Ok(());
        }
        self.write(move |tx| {
            for mutation in &mutations {
                rows::apply(tx, mutation)?;
            }
            Ok(())
        })
        .await
    }

    async fn put_workflow(
        &self,
        tenant: TenantId,
        spec: WorkflowSpec,
    ) -> Result<PutWorkflowOutcome> {
        self.write(move |tx| rows::put_workflow(tx, tenant, spec))
            .await
    }

    async fn workflow_versions(&self, tenant: TenantId) -> Result<Vec<WorkflowVersionRecord>> {
        self.read(move |connection| rows::workflow_versions(connection, tenant))
            .await
    }

    async fn signing_key(&self) -> Result<Vec<u8>> {
        self.write(|tx| {
            let existing: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT value FROM meta WHERE key = 'signing_key'",
                    [],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(key) = existing {
                return Ok(key);
            }
            let key: Vec<u8> = (0..4).flat_map(|_| *Uuid::new_v4().as_bytes()).collect();
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('signing_key', ?1)",
                params![key],
            )?;
            Ok(key)
        })
        .await
    }

    async fn find_token(&self, token_id: Uuid) -> Result<Option<TokenRecord>> {
        self.read(move |connection| rows::find_token(connection, token_id))
            .await
    }

    async fn tenants_to_recover(&self) -> Result<Vec<TenantId>> {
        self.read(rows::tenants_to_recover).await
    }

    async fn load_tenant(&self, tenant: TenantId) -> Result<TenantSnapshot> {
        self.read(move |connection| rows::load_tenant(connection, tenant))
            .await
    }

    async fn run(
        &self,
        tenant: TenantId,
        run: RunId,
    ) -> Result<Option<(RunRecord, Vec<TaskRecord>)>> {
        self.read(move |connection| rows::run(connection, tenant, run))
            .await
    }

    async fn task(&self, tenant: TenantId, task: TaskId) -> Result<Option<TaskRecord>> {
        self.read(move |connection| rows::task(connection, tenant, task))
            .await
    }

    async fn task_history(&self, tenant: TenantId, task: TaskId) -> Result<Vec<HistoryRecord>> {
        self.read(move |connection| rows::task_history(connection, tenant, task))
            .await
    }
}
