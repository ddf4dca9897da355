//! A list of mutations written as one statement per kind: rows travel as arrays and
//! `unnest` turns them back into rows, so a thousand task updates are one statement, and
//! all of a batch's statements go out in one round trip.
//!
//! Applying kind by kind instead of in list order gives the same result as applying the
//! list in order, because of how the kinds relate:
//! - fences are checked before anything is written;
//! - kinds run in dependency order: tokens before their revocation, runs before their
//!   tasks (a foreign key) and before they finish;
//! - a row written twice keeps its last write (a task or worker is always written whole,
//!   a run's finish and a replay's reopening are folded into its last), the first revocation of a token wins as `revoked_at IS NULL`
//!   makes it win in order, and a worker's save and delete are folded into its last;
//! - history and log lines keep their list order in the order their ids are drawn.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use adze_core::Millis;
use adze_core::state::RunStatus;
use deadpool_postgres::GenericClient;
use futures_util::future::try_join_all;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::errors::from_postgres;
use crate::records::{run_status_name, to_json};
use crate::{
    EventRecord, HistoryRecord, LogRecord, Mutation, Result, RunRecord, StoreError, TaskRecord,
    TokenRecord, WorkerRecord,
};

/// Boxes each column for [`write`].
macro_rules! columns {
    ($($column:expr),* $(,)?) => {
        vec![$(Box::new($column) as Box<dyn ToSql + Sync + Send + '_>),*]
    };
}

/// The mutations of a list, sorted by kind, duplicates folded.
#[derive(Default)]
pub(super) struct Batch<'a> {
    /// (tenant, owner) leases that must be held for the batch to apply.
    fences: Latest<(Uuid, Uuid)>,
    tokens: Vec<&'a TokenRecord>,
    revocations: Latest<(Uuid, Millis)>,
    events: Vec<&'a EventRecord>,
    runs: Vec<&'a RunRecord>,
    tasks: Latest<&'a TaskRecord>,
    /// A run's last status change: finished (with its time), or reopened by a replay.
    finished_runs: Latest<(Uuid, &'static str, Option<Millis>)>,
    history: Vec<&'a HistoryRecord>,
    /// `None` for a deletion.
    workers: Latest<Option<&'a WorkerRecord>>,
    logs: Vec<&'a LogRecord>,
}

/// One value per key in first-seen order; a later value replaces an earlier one.
struct Latest<T> {
    values: Vec<T>,
    index: HashMap<Uuid, usize>,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T> Latest<T> {
    fn put(&mut self, key: Uuid, value: T) {
        match self.index.entry(key) {
            Entry::Occupied(slot) => self.values[*slot.get()] = value,
            Entry::Vacant(slot) => {
                slot.insert(self.values.len());
                self.values.push(value);
            }
        }
    }

    fn put_first(&mut self, key: Uuid, value: T) {
        if !self.index.contains_key(&key) {
            self.put(key, value);
        }
    }
}

impl<'a> Batch<'a> {
    pub(super) fn new(mutations: impl IntoIterator<Item = &'a Mutation>) -> Self {
        let mut batch = Self::default();
        for mutation in mutations {
            match mutation {
                Mutation::InsertToken(token) => batch.tokens.push(token),
                Mutation::RevokeToken { token_id, at } => {
                    batch.revocations.put_first(*token_id, (*token_id, *at))
                }
                Mutation::InsertEvent(event) => batch.events.push(event),
                Mutation::InsertRun(run) => batch.runs.push(run),
                Mutation::SaveTask(task) => batch.tasks.put(task.id, task),
                Mutation::FinishRun {
                    run_id,
                    status,
                    finished_at,
                } => batch.finished_runs.put(
                    *run_id,
                    (*run_id, run_status_name(*status), Some(*finished_at)),
                ),
                Mutation::ReopenRun { run_id } => batch.finished_runs.put(
                    *run_id,
                    (*run_id, run_status_name(RunStatus::Running), None),
                ),
                Mutation::History(entry) => batch.history.push(entry),
                Mutation::SaveWorker(worker) => batch.workers.put(worker.id, Some(worker)),
                Mutation::DeleteWorker(id) => batch.workers.put(*id, None),
                Mutation::Log(log) => batch.logs.push(log),
                Mutation::Fence { tenant_id, owner } => {
                    batch.fences.put(*tenant_id, (*tenant_id, *owner))
                }
            }
        }
        batch
    }

    /// Writes the batch on `client`, which is inside a transaction.
    pub(super) async fn apply(&self, client: &impl GenericClient) -> Result<()> {
        self.check_fences(client).await?;
        let writes: Vec<Write<'_>> = [
            self.insert_tokens(),
            self.revoke_tokens(),
            self.insert_events(),
            self.insert_runs(),
            self.save_tasks(),
            self.finish_runs(),
            self.insert_history(),
            self.save_workers(),
            self.delete_workers(),
            self.insert_logs(),
        ]
        .into_iter()
        .flatten()
        .collect();
        // Every statement is parsed before any is sent (after the first group they are
        // all cached), so the executes go out back to back in one round trip and the
        // server runs them in the order sent, which is the order above.
        let mut statements = Vec::with_capacity(writes.len());
        for write in &writes {
            statements.push(
                client
                    .prepare_cached(write.sql)
                    .await
                    .map_err(from_postgres)?,
            );
        }
        let executes = writes.iter().zip(&statements).map(|(write, statement)| {
            let params = write
                .params
                .iter()
                .map(|column| column.as_ref() as &(dyn ToSql + Sync));
            client.execute_raw(statement, params)
        });
        try_join_all(executes).await.map_err(from_postgres)?;
        Ok(())
    }

    /// Fails unless every fence's owner holds a live lease on its tenant. The lease rows
    /// stay share-locked until commit, so a takeover waits for this batch to land.
    async fn check_fences(&self, client: &impl GenericClient) -> Result<()> {
        let rows = &self.fences.values;
        if rows.is_empty() {
            return Ok(());
        }
        let tenants: Vec<Uuid> = rows.iter().map(|(tenant, _)| *tenant).collect();
        let owners: Vec<Uuid> = rows.iter().map(|(_, owner)| *owner).collect();
        let statement = client
            .prepare_cached(
                "SELECT l.tenant_id FROM tenant_leases l
                 JOIN unnest($1::uuid[], $2::uuid[]) AS f (tenant_id, owner)
                   ON l.tenant_id = f.tenant_id AND l.owner = f.owner
                 WHERE l.expires_at > now()
                 FOR SHARE OF l",
            )
            .await
            .map_err(from_postgres)?;
        let held = client
            .query(&statement, &[&tenants, &owners])
            .await
            .map_err(from_postgres)?;
        if held.len() != rows.len() {
            return Err(StoreError::Fenced(
                "this replica no longer holds the tenant's lease; another replica owns it now"
                    .into(),
            ));
        }
        Ok(())
    }

    fn insert_tokens(&self) -> Option<Write<'_>> {
        let rows = &self.tokens;
        let ids: Vec<Uuid> = rows.iter().map(|token| token.id).collect();
        let tenants: Vec<Uuid> = rows.iter().map(|token| token.tenant_id).collect();
        let created: Vec<i64> = rows.iter().map(|token| token.created_at).collect();
        let expires: Vec<i64> = rows.iter().map(|token| token.expires_at).collect();
        let revoked: Vec<Option<i64>> = rows.iter().map(|token| token.revoked_at).collect();
        write(
                        rows.len(),
            "INSERT INTO tokens (id, tenant_id, created_at, expires_at, revoked_at)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[])",
            columns![ids, tenants, created, expires, revoked],
        )
    }

    fn revoke_tokens(&self) -> Option<Write<'_>> {
        let rows = &self.revocations.values;
        let ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
        let times: Vec<i64> = rows.iter().map(|(_, at)| *at).collect();
        write(
            rows.len(),
            "UPDATE tokens SET revoked_at = r.at
             FROM unnest($1::uuid[], $2::bigint[]) AS r (id, at)
             WHERE tokens.id = r.id AND tokens.revoked_at IS NULL",
            columns![ids, times],
        )
    }

    fn insert_events(&self) -> Option<Write<'_>> {
        let rows = &self.events;
        let ids: Vec<Uuid> = rows.iter().map(|event| event.id).collect();
        let tenants: Vec<Uuid> = rows.iter().map(|event| event.tenant_id).collect();
        let keys: Vec<&str> = rows.iter().map(|event| event.key.as_str()).collect();
        let payloads: Vec<&str> = rows.iter().map(|event| event.payload.as_str()).collect();
        let metadata: Vec<&str> = rows
            .iter()
            .map(|event| event.additional_metadata.as_str())
            .collect();
        let scopes: Vec<Option<&str>> = rows.iter().map(|event| event.scope.as_deref()).collect();
        let created: Vec<i64> = rows.iter().map(|event| event.created_at).collect();
        write(
                        rows.len(),
            "INSERT INTO events (id, tenant_id, key, payload, additional_metadata, scope, created_at)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::bigint[])",
            columns![ids, tenants, keys, payloads, metadata, scopes, created],
        )
    }

    fn insert_runs(&self) -> Option<Write<'_>> {
        let rows = &self.runs;
        let ids: Vec<Uuid> = rows.iter().map(|run| run.id).collect();
        let tenants: Vec<Uuid> = rows.iter().map(|run| run.tenant_id).collect();
        let versions: Vec<Uuid> = rows.iter().map(|run| run.workflow_version_id).collect();
        let inputs: Vec<&str> = rows.iter().map(|run| run.input.as_str()).collect();
        let metadata: Vec<&str> = rows
            .iter()
            .map(|run| run.additional_metadata.as_str())
            .collect();
        let events: Vec<Option<Uuid>> = rows.iter().map(|run| run.event_id).collect();
        let created: Vec<i64> = rows.iter().map(|run| run.created_at).collect();
        let statuses: Vec<&str> = rows.iter().map(|run| run_status_name(run.status)).collect();
        let finished: Vec<Option<i64>> = rows.iter().map(|run| run.finished_at).collect();
        write(
            rows.len(),
            "INSERT INTO runs (id, tenant_id, workflow_version_id, input, additional_metadata,
                               event_id, created_at, status, finished_at)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                                  $6::uuid[], $7::bigint[], $8::text[], $9::bigint[])",
            columns![
                ids, tenants, versions, inputs, metadata, events, created, statuses, finished,
            ],
        )
    }

    fn save_tasks(&self) -> Option<Write<'_>> {
        let rows = &self.tasks.values;
        let ids: Vec<Uuid> = rows.iter().map(|task| task.id).collect();
        let runs: Vec<Uuid> = rows.iter().map(|task| task.run_id).collect();
        let tenants: Vec<Uuid> = rows.iter().map(|task| task.tenant_id).collect();
        let positions: Vec<i64> = rows.iter().map(|task| i64::from(task.position)).collect();
        let names: Vec<&str> = rows.iter().map(|task| task.name.as_str()).collect();
        let statuses: Vec<&str> = rows.iter().map(|task| task.status.as_str()).collect();
        let attempts: Vec<i64> = rows.iter().map(|task| i64::from(task.attempt)).collect();
        let workers: Vec<Option<Uuid>> = rows.iter().map(|task| task.worker_id).collect();
        let released: Vec<bool> = rows.iter().map(|task| task.released).collect();
        let queued: Vec<i64> = rows.iter().map(|task| task.queued_seq).collect();
        let outputs: Vec<Option<&str>> = rows.iter().map(|task| task.output.as_deref()).collect();
        let errors: Vec<Option<&str>> = rows.iter().map(|task| task.error.as_deref()).collect();
        let created: Vec<i64> = rows.iter().map(|task| task.created_at).collect();
        let started: Vec<Option<i64>> = rows.iter().map(|task| task.started_at).collect();
        let finished: Vec<Option<i64>> = rows.iter().map(|task| task.finished_at).collect();
        let queued_at: Vec<Option<i64>> = rows.iter().map(|task| task.queued_at).collect();
        let retries_from: Vec<i64> = rows
            .iter()
            .map(|task| i64::from(task.retries_from))
            .collect();
        write(
            rows.len(),
            "INSERT INTO tasks (id, run_id, tenant_id, position, name, status, attempt, worker_id,
                                released, queued_seq, output, error, created_at, started_at,
                                finished_at, queued_at, retries_from)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[],
                                  $6::text[], $7::bigint[], $8::uuid[], $9::boolean[],
                                  $10::bigint[], $11::text[], $12::text[], $13::bigint[],
                                  $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[])
             ON CONFLICT (id) DO UPDATE SET
                 run_id = EXCLUDED.run_id, tenant_id = EXCLUDED.tenant_id,
                 position = EXCLUDED.position, name = EXCLUDED.name, status = EXCLUDED.status,
                 attempt = EXCLUDED.attempt, worker_id = EXCLUDED.worker_id,
                 released = EXCLUDED.released, queued_seq = EXCLUDED.queued_seq,
                 output = EXCLUDED.output, error = EXCLUDED.error,
                 created_at = EXCLUDED.created_at, started_at = EXCLUDED.started_at,
                 finished_at = EXCLUDED.finished_at, queued_at = EXCLUDED.queued_at,
                 retries_from = EXCLUDED.retries_from",
            columns![
                ids,
                runs,
                tenants,
                positions,
                names,
                statuses,
                attempts,
                workers,
                released,
                queued,
                outputs,
                errors,
                created,
                started,
                finished,
                queued_at,
                retries_from,
            ],
        )
    }

    fn finish_runs(&self) -> Option<Write<'_>> {
        let rows = &self.finished_runs.values;
        let ids: Vec<Uuid> = rows.iter().map(|(id, _, _)| *id).collect();
        let statuses: Vec<&str> = rows.iter().map(|(_, status, _)| *status).collect();
        let finished: Vec<Option<i64>> = rows.iter().map(|(_, _, at)| *at).collect();
        write(
            rows.len(),
            "UPDATE runs SET status = f.status, finished_at = f.finished_at
             FROM unnest($1::uuid[], $2::text[], $3::bigint[]) AS f (id, status, finished_at)
             WHERE runs.id = f.id",
            columns![ids, statuses, finished],
        )
    }

    fn insert_history(&self) -> Option<Write<'_>> {
        let rows = &self.history;
        let tasks: Vec<Uuid> = rows.iter().map(|entry| entry.task_id).collect();
        let attempts: Vec<i64> = rows.iter().map(|entry| i64::from(entry.attempt)).collect();
        let times: Vec<i64> = rows.iter().map(|entry| entry.at).collect();
        let kinds: Vec<&str> = rows.iter().map(|entry| entry.kind.as_str()).collect();
        let workers: Vec<Option<Uuid>> = rows.iter().map(|entry| entry.worker_id).collect();
        let details: Vec<Option<&str>> = rows.iter().map(|entry| entry.detail.as_deref()).collect();
        // ORDER BY ordinality draws the identity values in list order.
        write(
            rows.len(),
            "INSERT INTO task_history (task_id, attempt, at, kind, worker_id, detail)
             SELECT task_id, attempt, at, kind, worker_id, detail
             FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::uuid[],
                         $6::text[]) WITH ORDINALITY
                  AS h (task_id, attempt, at, kind, worker_id, detail, n)
             ORDER BY n",
            columns![tasks, attempts, times, kinds, workers, details],
        )
    }

    fn save_workers(&self) -> Option<Write<'_>> {
        let rows: Vec<&WorkerRecord> = self.workers.values.iter().flatten().copied().collect();
        let ids: Vec<Uuid> = rows.iter().map(|worker| worker.id).collect();
        let tenants: Vec<Uuid> = rows.iter().map(|worker| worker.tenant_id).collect();
        let names: Vec<&str> = rows.iter().map(|worker| worker.name.as_str()).collect();
        let actions: Vec<String> = rows.iter().map(|worker| to_json(&worker.actions)).collect();
        let capacities: Vec<String> = rows
            .iter()
            .map(|worker| to_json(&worker.capacity))
            .collect();
        let paused: Vec<bool> = rows.iter().map(|worker| worker.paused).collect();
        let registered: Vec<i64> = rows.iter().map(|worker| worker.registered_at).collect();
        write(
            rows.len(),
            "INSERT INTO workers (id, tenant_id, name, actions, capacity, paused, registered_at)
             SELECT id, tenant_id, name, actions::jsonb, capacity::jsonb, paused, registered_at
             FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                         $6::boolean[], $7::bigint[])
                  AS w (id, tenant_id, name, actions, capacity, paused, registered_at)
             ON CONFLICT (id) DO UPDATE SET
                 tenant_id = EXCLUDED.tenant_id, name = EXCLUDED.name,
                 actions = EXCLUDED.actions, capacity = EXCLUDED.capacity,
                 paused = EXCLUDED.paused, registered_at = EXCLUDED.registered_at",
            columns![ids, tenants, names, actions, capacities, paused, registered,],
        )
    }

    fn delete_workers(&self) -> Option<Write<'_>> {
        let ids: Vec<Uuid> = self
            .workers
            .index
            .iter()
            .filter(|(_, slot)| self.workers.values[**slot].is_none())
            .map(|(id, _)| *id)
            .collect();
        write(
            ids.len(),
            "DELETE FROM workers WHERE id = ANY ($1::uuid[])",
            columns![ids],
        )
    }

    fn insert_logs(&self) -> Option<Write<'_>> {
        let rows = &self.logs;
        let tasks: Vec<Uuid> = rows.iter().map(|log| log.task_id).collect();
        let tenants: Vec<Uuid> = rows.iter().map(|log| log.tenant_id).collect();
        let times: Vec<i64> = rows.iter().map(|log| log.at).collect();
        let levels: Vec<Option<&str>> = rows.iter().map(|log| log.level.as_deref()).collect();
        let messages: Vec<&str> = rows.iter().map(|log| log.message.as_str()).collect();
        write(
            rows.len(),
            "INSERT INTO logs (task_id, tenant_id, at, level, message)
             SELECT task_id, tenant_id, at, level, message
             FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[])
                  WITH ORDINALITY AS l (task_id, tenant_id, at, level, message, n)
             ORDER BY n",
            columns![tasks, tenants, times, levels, messages],
        )
    }
}

/// One batched statement and its columns, each an array with a value per row.
struct Write<'a> {
    sql: &'static str,
    params: Vec<Box<dyn ToSql + Sync + Send + 'a>>,
}

/// The statement, or none when the batch has no rows of its kind.
fn write<'a>(
    rows: usize,
    sql: &'static str,
    params: Vec<Box<dyn ToSql + Sync + Send + 'a>>,
) -> Option<Write<'a>> {
    (rows > 0).then_some(Write { sql, params })
}
