//! SQL of the embedded store: one function per mutation or query, and the mapping
//! between rows and records.

use adze_core::slots::SlotUnits;
use adze_core::workflow::WorkflowSpec;
use adze_core::{RunId, TaskId, TenantId};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use uuid::Uuid;

use crate::records::{from_json, parse_run_status, run_status_name, to_json};
use crate::{
    HistoryRecord, Mutation, PutWorkflowOutcome, Result, RunRecord, StoreError, TaskRecord,
    TenantSnapshot, TokenRecord, WorkerRecord, WorkflowVersionRecord,
};

pub(super) fn apply(tx: &Transaction<'_>, mutation: &Mutation) -> Result<()> {
    match mutation {
        Mutation::InsertToken(token) => {
            tx.prepare_cached(
                "INSERT INTO tokens (id, tenant_id, created_at, expires_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                token.id.to_string(),
                token.tenant_id.to_string(),
                token.created_at,
                token.expires_at,
                token.revoked_at
            ])?;
        }
        Mutation::RevokeToken { token_id, at } => {
            tx.prepare_cached(
                "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![token_id.to_string(), at])?;
        }
        Mutation::InsertEvent(event) => {
            tx.prepare_cached(
                "INSERT INTO events (id, tenant_id, key, payload, additional_metadata, scope, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                event.id.to_string(),
                event.tenant_id.to_string(),
                event.key,
                event.payload,
                event.additional_metadata,
                event.scope,
                event.created_at
            ])?;
        }
        Mutation::InsertRun(run) => {
            tx.prepare_cached(
                "INSERT INTO runs (id, tenant_id, workflow_version_id, input, additional_metadata,
                                   event_id, created_at, status, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                run.id.to_string(),
                run.tenant_id.to_string(),
                run.workflow_version_id.to_string(),
                run.input,
                run.additional_metadata,
                run.event_id.map(|id| id.to_string()),
                run.created_at,
                run_status_name(run.status),
                run.finished_at
            ])?;
        }
        Mutation::SaveTask(task) => {
            // An upsert, not INSERT OR REPLACE: a replace deletes the row and inserts it
            // again, rewriting every index; this updates the changing columns in place
            // (a task's id, run, tenant, position, name and creation never change).
            tx.prepare_cached(
                "INSERT INTO tasks (id, run_id, tenant_id, position, name, status, attempt,
                     worker_id, released, queued_seq, output, error, created_at, started_at, finished_at,
                     queued_at, retries_from)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                 ON CONFLICT (id) DO UPDATE SET
                     status = excluded.status, attempt = excluded.attempt,
                     worker_id = excluded.worker_id, released = excluded.released,
                     queued_seq = excluded.queued_seq, output = excluded.output,
                     error = excluded.error, started_at = excluded.started_at,
                     finished_at = excluded.finished_at, queued_at = excluded.queued_at,
                     retries_from = excluded.retries_from",
            )?
            .execute(params![
                task.id.to_string(),
                task.run_id.to_string(),
                task.tenant_id.to_string(),
                task.position,
                task.name,
                task.status.as_str(),
                task.attempt,
                task.worker_id.map(|id| id.to_string()),
                task.released,
                task.queued_seq,
                task.output,
                task.error,
                task.created_at,
                task.started_at,
                task.finished_at,
                task.queued_at,
                task.retries_from
            ])?;
        }
        Mutation::FinishRun {
            run_id,
            status,
            finished_at,
        } => {
            tx.prepare_cached("UPDATE runs SET status = ?2, finished_at = ?3 WHERE id = ?1")?
                .execute(params![
                    run_id.to_string(),
                    run_status_name(*status),
                    finished_at
                ])?;
        }
        Mutation::ReopenRun { run_id } => {
            tx.prepare_cached(
                "UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?1",
            )?
            .execute(params![run_id.to_string()])?;
        }
        Mutation::History(entry) => {
            tx.prepare_cached(
                "INSERT INTO task_history (task_id, attempt, at, kind, worker_id, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                entry.task_id.to_string(),
                entry.attempt,
                entry.at,
                entry.kind,
                entry.worker_id.map(|id| id.to_string()),
                entry.detail
            ])?;
        }
        Mutation::SaveWorker(worker) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO workers (id, tenant_id, name, actions, capacity, paused, registered_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                worker.id.to_string(),
                worker.tenant_id.to_string(),
                worker.name,
                to_json(&worker.actions),
                to_json(&worker.capacity),
                worker.paused,
                worker.registered_at
            ])?;
        }
        Mutation::DeleteWorker(id) => {
            tx.prepare_cached("DELETE FROM workers WHERE id = ?1")?
                .execute(params![id.to_string()])?;
        }
        Mutation::Fence { .. } => {}
        Mutation::Log(log) => {
            tx.prepare_cached(
                "INSERT INTO logs (task_id, tenant_id, at, level, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                log.task_id.to_string(),
                log.tenant_id.to_string(),
                log.at,
                log.level,
                log.message
            ])?;
        }
    }
    Ok(())
}

pub(super) fn put_workflow(
    tx: &Transaction<'_>,
    tenant: TenantId,
    spec: WorkflowSpec,
) -> Result<PutWorkflowOutcome> {
    let latest = tx
        .prepare_cached(
            "SELECT id, workflow_id, tenant_id, number, spec, created_at FROM workflow_versions
             WHERE tenant_id = ?1 AND name = ?2 ORDER BY number DESC LIMIT 1",
        )?
        .query_row(params![tenant.to_string(), spec.name], workflow_version)
        .optional()?
        .transpose()?;
    let outcome = PutWorkflowOutcome::after(latest, tenant, spec);
    if !outcome.created {
        return Ok(outcome);
    }
    let version = &outcome.version;
    tx.prepare_cached(
        "INSERT INTO workflow_versions (id, workflow_id, tenant_id, name, number, spec, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        version.id.to_string(),
        version.workflow_id.to_string(),
        tenant.to_string(),
        version.spec.name,
        version.number,
        to_json(&version.spec),
        version.created_at
    ])?;
    Ok(outcome)
}

pub(super) fn workflow_versions(
    connection: &Connection,
    tenant: TenantId,
) -> Result<Vec<WorkflowVersionRecord>> {
    let mut statement = connection.prepare_cached(
        "SELECT id, workflow_id, tenant_id, number, spec, created_at FROM workflow_versions
         WHERE tenant_id = ?1 ORDER BY name, number",
    )?;
    let rows = statement.query_map(params![tenant.to_string()], workflow_version)?;
    rows.map(|row| row?).collect()
}

pub(super) fn find_token(connection: &Connection, token_id: Uuid) -> Result<Option<TokenRecord>> {
    let row = connection
        .prepare_cached(
            "SELECT id, tenant_id, created_at, expires_at, revoked_at FROM tokens WHERE id = ?1",
        )?
        .query_row(params![token_id.to_string()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .optional()?;
    row.map(|(id, tenant, created_at, expires_at, revoked_at)| {
        Ok(TokenRecord {
            id: parse_uuid(&id)?,
            tenant_id: parse_uuid(&tenant)?,
            created_at,
            expires_at,
            revoked_at,
        })
    })
    .transpose()
}

pub(super) fn tenants_to_recover(connection: &Connection) -> Result<Vec<TenantId>> {
    let mut statement = connection.prepare(
        "SELECT tenant_id FROM runs WHERE finished_at IS NULL
         UNION SELECT tenant_id FROM workers",
    )?;
    let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
    rows.map(|row| parse_uuid(&row?)).collect()
}

pub(super) fn load_tenant(connection: &Connection, tenant: TenantId) -> Result<TenantSnapshot> {
    let tenant_text = tenant.to_string();
    let mut statement = connection.prepare(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = ?1 AND finished_at IS NULL ORDER BY created_at"
    ))?;
    let runs = statement
        .query_map(params![tenant_text], run_row)?
        .map(|row| row?)
        .collect::<Result<Vec<_>>>()?;
    // Unordered: recovery sorts the queued tasks itself, and sorting every unfinished
    // task here (on an unindexed column) took longer than reading them.
    let mut statement = connection.prepare(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE run_id IN
             (SELECT id FROM runs WHERE tenant_id = ?1 AND finished_at IS NULL)"
    ))?;
    let tasks = statement
        .query_map(params![tenant_text], task_row)?
        .map(|row| row?)
        .collect::<Result<Vec<_>>>()?;
    let mut statement = connection.prepare(
        "SELECT id, tenant_id, name, actions, capacity, paused, registered_at FROM workers WHERE tenant_id = ?1",
    )?;
    let workers = statement
        .query_map(params![tenant_text], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, bool>(5)?,
                row.get::<_, i64>(6)?,
            ))
        })?
        .map(|row| {
            let (id, name, actions, capacity, paused, registered_at) = row?;
            Ok(WorkerRecord {
                id: parse_uuid(&id)?,
                tenant_id: tenant,
                name,
                actions: from_json(&actions)?,
                capacity: from_json::<SlotUnits>(&capacity)?,
                paused,
                registered_at,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TenantSnapshot {
        runs,
        tasks,
        workers,
        workflows: workflow_versions(connection, tenant)?,
    })
}

pub(super) fn run(
    connection: &Connection,
    tenant: TenantId,
    run: RunId,
) -> Result<Option<(RunRecord, Vec<TaskRecord>)>> {
    let record = connection
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1 AND tenant_id = ?2"
        ))?
        .query_row(params![run.to_string(), tenant.to_string()], run_row)
        .optional()?
        .transpose()?;
    let Some(record) = record else {
        return Ok(None);
    };
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE run_id = ?1 ORDER BY position"
    ))?;
    let tasks = statement
        .query_map(params![run.to_string()], task_row)?
        .map(|row| row?)
        .collect::<Result<Vec<_>>>()?;
    Ok(Some((record, tasks)))
}

pub(super) fn task(
    connection: &Connection,
    tenant: TenantId,
    task: TaskId,
) -> Result<Option<TaskRecord>> {
    connection
        .prepare_cached(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1 AND tenant_id = ?2"
        ))?
        .query_row(params![task.to_string(), tenant.to_string()], task_row)
        .optional()?
        .transpose()
}

pub(super) fn task_history(
    connection: &Connection,
    tenant: TenantId,
    task: TaskId,
) -> Result<Vec<HistoryRecord>> {
    let mut statement = connection.prepare_cached(
        "SELECT h.attempt, h.at, h.kind, h.worker_id, h.detail FROM task_history h
         JOIN tasks t ON t.id = h.task_id
         WHERE h.task_id = ?1 AND t.tenant_id = ?2 ORDER BY h.rowid",
    )?;
    let rows = statement.query_map(params![task.to_string(), tenant.to_string()], |row| {
        Ok((
            row.get::<_, u32>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, Option<String>>(3)?,
            row.get::<_, Option<String>>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (attempt, at, kind, worker_id, detail) = row?;
        Ok(HistoryRecord {
            task_id: task,
            attempt,
            at,
            kind,
            worker_id: worker_id.as_deref().map(parse_uuid).transpose()?,
            detail,
        })
    })
    .collect()
}

const RUN_COLUMNS: &str = "id, tenant_id, workflow_version_id, input, additional_metadata, event_id, created_at, status, finished_at";
const TASK_COLUMNS: &str = "id, run_id, tenant_id, position, name, status, attempt, worker_id, released, \
     queued_seq, output, error, created_at, started_at, finished_at, queued_at, retries_from";

/// Row mappers return `Result<Result<_>>`: the outer one is SQLite's, the inner one ours
/// (a value SQLite returned that is not what Adze wrote).
fn run_row(row: &Row<'_>) -> rusqlite::Result<Result<RunRecord>> {
    let (id, tenant, version, event, status): (String, String, String, Option<String>, String) = (
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(5)?,
        row.get(7)?,
    );
    let (input, additional_metadata, created_at, finished_at) =
        (row.get(3)?, row.get(4)?, row.get(6)?, row.get(8)?);
    Ok((|| {
        Ok(RunRecord {
            id: parse_uuid(&id)?,
            tenant_id: parse_uuid(&tenant)?,
            workflow_version_id: parse_uuid(&version)?,
            input,
            additional_metadata,
            event_id: event.as_deref().map(parse_uuid).transpose()?,
            created_at,
            status: parse_run_status(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("run status {status:?}")))?,
            finished_at,
        })
    })())
}

fn task_row(row: &Row<'_>) -> rusqlite::Result<Result<TaskRecord>> {
    let (id, run, tenant, status, worker): (String, String, String, String, Option<String>) = (
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(5)?,
        row.get(7)?,
    );
    let (position, name, attempt, released, queued_seq) = (
        row.get(3)?,
        row.get(4)?,
        row.get(6)?,
        row.get(8)?,
        row.get(9)?,
    );
    let (output, error, created_at, started_at, finished_at) = (
        row.get(10)?,
        row.get(11)?,
        row.get(12)?,
        row.get(13)?,
        row.get(14)?,
    );
    let (queued_at, retries_from) = (row.get(15)?, row.get(16)?);
    Ok((|| {
        Ok(TaskRecord {
            id: parse_uuid(&id)?,
            run_id: parse_uuid(&run)?,
            tenant_id: parse_uuid(&tenant)?,
            position,
            name,
            status: status.parse().map_err(StoreError::Corrupt)?,
            attempt,
            worker_id: worker.as_deref().map(parse_uuid).transpose()?,
            released,
            queued_seq,
            output,
            error,
            created_at,
            started_at,
            finished_at,
            queued_at,
            retries_from,
        })
    })())
}

fn workflow_version(row: &Row<'_>) -> rusqlite::Result<Result<WorkflowVersionRecord>> {
    let (id, workflow, tenant, number, spec, created_at): (
        String,
        String,
        String,
        i64,
        String,
        i64,
    ) = (
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    );
    Ok((|| {
        Ok(WorkflowVersionRecord {
            id: parse_uuid(&id)?,
            workflow_id: parse_uuid(&workflow)?,
            tenant_id: parse_uuid(&tenant)?,
            number,
            spec: from_json(&spec)?,
            created_at,
        })
    })())
}

fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("uuid {text:?}")))
}
