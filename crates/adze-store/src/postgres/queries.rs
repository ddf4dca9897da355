//! The reads of the PostgreSQL store and the mapping from rows to records.

use adze_core::{RunId, TaskId, TenantId};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::FromSqlOwned;
use tokio_postgres::{IsolationLevel, Row};
use uuid::Uuid;

use super::errors::from_postgres;
use crate::records::{from_json, parse_run_status};
use crate::{
    HistoryRecord, Result, RunRecord, StoreError, TaskRecord, TenantSnapshot, TokenRecord,
    WorkerRecord, WorkflowVersionRecord,
};

const RUN_COLUMNS: &str = "id, tenant_id, workflow_version_id, input, additional_metadata, \
     event_id, created_at, status, finished_at";
const TASK_COLUMNS: &str = "id, run_id, tenant_id, position, name, status, attempt, worker_id, \
     released, queued_seq, output, error, created_at, started_at, finished_at, queued_at, \
     retries_from";
pub(super) const VERSION_COLUMNS: &str =
    "id, workflow_id, tenant_id, number, spec::text, created_at";

pub(super) async fn workflow_versions(
    client: &impl GenericClient,
    tenant: TenantId,
) -> Result<Vec<WorkflowVersionRecord>> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM workflow_versions WHERE tenant_id = $1 ORDER BY name, number"
    );
    query(client, &sql, &[&tenant])
        .await?
        .iter()
        .map(workflow_version)
        .collect()
}

/// The key tokens are signed with; whichever replica asks first makes it.
pub(super) async fn signing_key(client: &impl GenericClient) -> Result<Vec<u8>> {
    let key: Vec<u8> = (0..4).flat_map(|_| *Uuid::new_v4().as_bytes()).collect();
    client
        .execute(
            "INSERT INTO meta (key, value) VALUES ('signing_key', $1) ON CONFLICT DO NOTHING",
            &[&key],
        )
        .await
        .map_err(from_postgres)?;
    let rows = query(
        client,
        "SELECT value FROM meta WHERE key = 'signing_key'",
        &[],
    )
    .await?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt("the signing key vanished".into()))?;
    get(row, 0)
}

pub(super) async fn find_token(
    client: &impl GenericClient,
    token_id: Uuid,
) -> Result<Option<TokenRecord>> {
    let rows = query(
        client,
        "SELECT id, tenant_id, created_at, expires_at, revoked_at FROM tokens WHERE id = $1",
        &[&token_id],
    )
    .await?;
    rows.first()
        .map(|row| {
            Ok(TokenRecord {
                id: get(row, 0)?,
                tenant_id: get(row, 1)?,
                created_at: get(row, 2)?,
                expires_at: get(row, 3)?,
                revoked_at: get(row, 4)?,
            })
        })
        .transpose()
}

pub(super) async fn tenants_to_recover(client: &impl GenericClient) -> Result<Vec<TenantId>> {
    query(
        client,
        "SELECT tenant_id FROM runs WHERE finished_at IS NULL
         UNION SELECT tenant_id FROM workers",
        &[],
    )
    .await?
    .iter()
    .map(|row| get(row, 0))
    .collect()
}

/// What recovery needs of a tenant, read in one snapshot so the tasks belong to exactly
/// the runs read.
pub(super) async fn tenant_snapshot(
    client: &mut deadpool_postgres::Client,
    tenant: TenantId,
) -> Result<TenantSnapshot> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(from_postgres)?;
    let (runs, tasks) = unfinished_runs(&transaction, tenant).await?;
    let workers = workers(&transaction, tenant).await?;
    let workflows = workflow_versions(&transaction, tenant).await?;
    transaction.commit().await.map_err(from_postgres)?;
    Ok(TenantSnapshot {
        runs,
        tasks,
        workers,
        workflows,
    })
}

/// The tenant's unfinished runs, oldest first, with their tasks in queue order.
async fn unfinished_runs(
    client: &impl GenericClient,
    tenant: TenantId,
) -> Result<(Vec<RunRecord>, Vec<TaskRecord>)> {
    let runs = query(
        client,
        &format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND finished_at IS NULL
             ORDER BY created_at, id"
        ),
        &[&tenant],
    )
    .await?
    .iter()
    .map(run_record)
    .collect::<Result<Vec<_>>>()?;
    let tasks = query(
        client,
        &format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE run_id IN
                 (SELECT id FROM runs WHERE tenant_id = $1 AND finished_at IS NULL)
             ORDER BY queued_seq, id"
        ),
        &[&tenant],
    )
    .await?
    .iter()
    .map(task_record)
    .collect::<Result<Vec<_>>>()?;
    Ok((runs, tasks))
}

async fn workers(client: &impl GenericClient, tenant: TenantId) -> Result<Vec<WorkerRecord>> {
    query(
        client,
        "SELECT id, tenant_id, name, actions::text, capacity::text, paused, registered_at
         FROM workers WHERE tenant_id = $1 ORDER BY registered_at, id",
        &[&tenant],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(WorkerRecord {
            id: get(row, 0)?,
            tenant_id: get(row, 1)?,
            name: get(row, 2)?,
            actions: from_json(&get::<String>(row, 3)?)?,
            capacity: from_json(&get::<String>(row, 4)?)?,
            paused: get(row, 5)?,
            registered_at: get(row, 6)?,
        })
    })
    .collect()
}

pub(super) async fn run(
    client: &impl GenericClient,
    tenant: TenantId,
    run: RunId,
) -> Result<Option<(RunRecord, Vec<TaskRecord>)>> {
    let rows = query(
        client,
        &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1 AND tenant_id = $2"),
        &[&run, &tenant],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let tasks = query(
        client,
        &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE run_id = $1 ORDER BY position"),
        &[&run],
    )
    .await?
    .iter()
    .map(task_record)
    .collect::<Result<Vec<_>>>()?;
    Ok(Some((run_record(row)?, tasks)))
}

pub(super) async fn task(
    client: &impl GenericClient,
    tenant: TenantId,
    task: TaskId,
) -> Result<Option<TaskRecord>> {
    query(
        client,
        &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND tenant_id = $2"),
        &[&task, &tenant],
    )
    .await?
    .first()
    .map(task_record)
    .transpose()
}

pub(super) async fn task_history(
    client: &impl GenericClient,
    tenant: TenantId,
    task: TaskId,
) -> Result<Vec<HistoryRecord>> {
    query(
        client,
        "SELECT h.attempt, h.at, h.kind, h.worker_id, h.detail FROM task_history h
         JOIN tasks t ON t.id = h.task_id
         WHERE h.task_id = $1 AND t.tenant_id = $2 ORDER BY h.seq",
        &[&task, &tenant],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(HistoryRecord {
            task_id: task,
            attempt: get_u32(row, 0)?,
            at: get(row, 1)?,
            kind: get(row, 2)?,
            worker_id: get(row, 3)?,
            detail: get(row, 4)?,
        })
    })
    .collect()
}

async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>> {
    let statement = client.prepare_cached(sql).await.map_err(from_postgres)?;
    client
        .query(&statement, params)
        .await
        .map_err(from_postgres)
}

fn run_record(row: &Row) -> Result<RunRecord> {
    let status: String = get(row, 7)?;
    Ok(RunRecord {
        id: get(row, 0)?,
        tenant_id: get(row, 1)?,
        workflow_version_id: get(row, 2)?,
        input: get(row, 3)?,
        additional_metadata: get(row, 4)?,
        event_id: get(row, 5)?,
        created_at: get(row, 6)?,
        status: parse_run_status(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run status {status:?}")))?,
        finished_at: get(row, 8)?,
    })
}

fn task_record(row: &Row) -> Result<TaskRecord> {
    Ok(TaskRecord {
        id: get(row, 0)?,
        run_id: get(row, 1)?,
        tenant_id: get(row, 2)?,
        position: get_u32(row, 3)?,
        name: get(row, 4)?,
        status: get::<String>(row, 5)?
            .parse()
            .map_err(StoreError::Corrupt)?,
        attempt: get_u32(row, 6)?,
        worker_id: get(row, 7)?,
        released: get(row, 8)?,
        queued_seq: get(row, 9)?,
        output: get(row, 10)?,
        error: get(row, 11)?,
        created_at: get(row, 12)?,
        started_at: get(row, 13)?,
        finished_at: get(row, 14)?,
        queued_at: get(row, 15)?,
        retries_from: get_u32(row, 16)?,
    })
}

pub(super) fn workflow_version(row: &Row) -> Result<WorkflowVersionRecord> {
    Ok(WorkflowVersionRecord {
        id: get(row, 0)?,
        workflow_id: get(row, 1)?,
        tenant_id: get(row, 2)?,
        number: get(row, 3)?,
        spec: from_json(&get::<String>(row, 4)?)?,
        created_at: get(row, 5)?,
    })
}

fn get<T: FromSqlOwned>(row: &Row, column: usize) -> Result<T> {
    row.try_get(column)
        .map_err(|error| StoreError::Corrupt(format!("column {column}: {error}")))
}

/// Counts the engine keeps as `u32` are stored as bigint, which holds them all.
fn get_u32(row: &Row, column: usize) -> Result<u32> {
    let value: i64 = get(row, column)?;
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("column {column}: {value}")))
}
