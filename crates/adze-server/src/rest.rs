//! HTTP: health checks, and the REST calls Hatchet's SDKs make that Adze implements.
//! Everything else under `/api` answers 404 with a JSON error, never a hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use adze_core::Error;
use adze_core::TenantId;
use adze_engine::WorkerView;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::grpc::Api;
use crate::status::codes;

#[derive(Clone)]
pub struct RestState {
    pub api: Api,
    /// Set once the engine accepts work.
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: RestState) -> Router {
    Router::new()
        .route("/api/live", get(|| async { "ok" }))
        .route("/api/ready", get(ready))
        .route(
            "/api/v1/workers/{worker}",
            patch(update_worker).get(get_worker),
        )
        .route("/api/v1/tenants/{tenant}/worker", get(list_workers))
        .route(
            "/api/v1/stable/tenants/{tenant}/tasks/cancel",
            post(cancel_tasks),
        )
        .route(
            "/api/v1/stable/tenants/{tenant}/tasks/replay",
            post(replay_tasks),
        )
        .route("/api/v1/stable/tasks/{task}/task-events", get(task_events))
        .route("/api/v1/stable/tasks/{task}/attempts", get(task_attempts))
        .fallback(|| async { error_response(Error::not_found("no such endpoint")) })
        .with_state(state)
}

async fn ready(State(state): State<RestState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response()
    }
}

fn error_response(error: Error) -> Response {
    let (_, status) = codes(error.kind);
    (
        status,
        Json(json!({ "errors": [{ "description": error.message }] })),
    )
        .into_response()
}

/// The tenant of the request's `Authorization: Bearer` token.
async fn authorize(state: &RestState, headers: &HeaderMap) -> Result<TenantId, Error> {
    let header = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok());
    state.api.auth.tenant(header).await
}

/// The token's tenant, which must be the one the path names: another tenant's id reads
/// as unknown, since a token sees only its own tenant.
async fn own_tenant(
    state: &RestState,
    headers: &HeaderMap,
    tenant: &str,
) -> Result<TenantId, Error> {
    let own = authorize(state, headers).await?;
    if crate::convert::uuid("tenant", tenant)? != own {
        return Err(Error::not_found(format!("tenant {tenant} not found")));
    }
    Ok(own)
}

fn respond(result: Result<serde_json::Value, Error>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => error_response(error),
    }
}

/// A list in Hatchet's paginated shape, all of it on one page.
fn one_page(rows: Vec<serde_json::Value>) -> serde_json::Value {
    json!({
        "pagination": { "current_page": 1, "next_page": 1, "num_pages": 1 },
        "rows": rows,
    })
}

fn time(millis: adze_core::Millis) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A worker in the shape of Hatchet's `Worker` model, with its slot usage per type in
/// `slotConfig` and, as Adze's own field, the tasks still running after a release.
fn worker_json(view: &WorkerView) -> serde_json::Value {
    let record = &view.record;
    let slot_config: serde_json::Map<String, serde_json::Value> = record
        .capacity
        .iter()
        .map(|(slot_type, &limit)| {
            let used = view.used.get(slot_type).copied().unwrap_or(0);
            (
                slot_type.clone(),
                json!({ "available": limit.saturating_sub(used), "limit": limit }),
            )
        })
        .collect();
    let status = match (record.paused, view.listening) {
        (true, _) => "PAUSED",
        (false, true) => "ACTIVE",
        (false, false) => "INACTIVE",
    };
    json!({
        "metadata": {
            "id": record.id.to_string(),
            "createdAt": time(record.registered_at),
            "updatedAt": time(view.last_heartbeat_at),
        },
        "name": record.name,
        "type": "SELFHOSTED",
        "lastHeartbeatAt": time(view.last_heartbeat_at),
        "lastListenerEstablished": view.last_listen_at.map(time),
        "actions": record.actions,
        "status": status,
        "slotConfig": slot_config,
        "releasedRunning": view.released_running,
    })
}

/// `GET /api/v1/tenants/{tenant}/worker`: the tenant's workers (`workers.list()`).
async fn list_workers(
    State(state): State<RestState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let own = own_tenant(&state, &headers, &tenant).await?;
            let workers = state.api.engine.workers(own).await?;
            Ok(one_page(workers.iter().map(worker_json).collect()))
        }
        .await,
    )
}

/// `GET /api/v1/workers/{id}` (`workers.get()`).
async fn get_worker(
    State(state): State<RestState>,
    Path(worker): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let tenant = authorize(&state, &headers).await?;
            let worker = crate::convert::uuid("worker id", &worker)?;
            Ok(worker_json(&state.api.engine.worker(tenant, worker).await?))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkerUpdate {
    is_paused: Option<bool>,
}

/// `PATCH /api/v1/workers/{id}` `{"isPaused": true}`: what the Python SDK sends when a
/// worker shuts down, so it gets no new work while it drains.
async fn update_worker(
    State(state): State<RestState>,
    Path(worker): Path<String>,
    headers: HeaderMap,
    body: Result<Json<WorkerUpdate>, axum::extract::rejection::JsonRejection>,
) -> Response {
    respond(
        async {
            let tenant = authorize(&state, &headers).await?;
            let worker = crate::convert::uuid("worker id", &worker)?;
            let Json(update) =
                body.map_err(|rejection| Error::invalid(format!("body: {rejection}")))?;
            if let Some(paused) = update.is_paused {
                state
                    .api
                    .engine
                    .set_worker_paused(tenant, worker, paused)
                    .await?;
            }
            Ok(worker_json(&state.api.engine.worker(tenant, worker).await?))
        }
        .await,
    )
}

/// The body of the task cancel and replay calls (`V1CancelTaskRequest`,
/// `V1ReplayTaskRequest`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TasksRequest {
    #[serde(default)]
    external_ids: Vec<String>,
    filter: Option<TasksFilterBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TasksFilterBody {
    since: String,
    until: Option<String>,
    #[serde(default)]
    statuses: Vec<String>,
    #[serde(default)]
    workflow_ids: Vec<String>,
    #[serde(default)]
    additional_metadata: Vec<String>,
}

/// An RFC 3339 time; one without an offset (Python's naive `datetime.isoformat()`) is
/// taken as UTC.
fn rest_time(field: &str, text: &str) -> Result<adze_core::Millis, Error> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|time| time.and_utc().timestamp_millis())
        .map_err(|_| Error::invalid(format!("{field} must be an RFC 3339 time, got {text:?}")))
}

fn tasks_request(
    body: Result<Json<TasksRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(Vec<uuid::Uuid>, Option<adze_engine::TaskFilter>), Error> {
    let Json(request) = body.map_err(|rejection| Error::invalid(format!("body: {rejection}")))?;
    let ids = crate::convert::external_ids(&request.external_ids)?;
    let filter = request
        .filter
        .map(|filter| {
            crate::convert::task_filter(crate::convert::FilterFields {
                field: "filter",
                statuses: &filter.statuses,
                since: Some(rest_time("filter.since", &filter.since)?),
                until: filter
                    .until
                    .as_deref()
                    .map(|until| rest_time("filter.until", until))
                    .transpose()?,
                workflow_ids: &filter.workflow_ids,
                additional_metadata: &filter.additional_metadata,
            })
        })
        .transpose()?;
    if ids.is_empty() && filter.is_none() {
        return Err(Error::invalid("externalIds or filter must be set"));
    }
    Ok((ids, filter))
}

fn id_list(ids: &[uuid::Uuid]) -> serde_json::Value {
    json!({ "ids": ids.iter().map(ToString::to_string).collect::<Vec<_>>() })
}

/// `POST /api/v1/stable/tenants/{tenant}/tasks/cancel`: `runs.cancel()`, `ctx.cancel()`.
async fn cancel_tasks(
    State(state): State<RestState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Json<TasksRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    respond(
        async {
            let tenant = own_tenant(&state, &headers, &tenant).await?;
            let (ids, filter) = tasks_request(body)?;
            let cancelled = state.api.engine.cancel_tasks(tenant, ids, filter).await?;
            Ok(id_list(&cancelled))
        }
        .await,
    )
}

/// `POST /api/v1/stable/tenants/{tenant}/tasks/replay`: `runs.replay()`.
async fn replay_tasks(
    State(state): State<RestState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Json<TasksRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    respond(
        async {
            let tenant = own_tenant(&state, &headers, &tenant).await?;
            let (ids, filter) = tasks_request(body)?;
            if filter.is_some() {
                return Err(crate::convert::replay_filter_unsupported());
            }
            let replayed = state.api.engine.replay_tasks(tenant, ids).await?;
            Ok(id_list(&replayed))
        }
        .await,
    )
}

/// Hatchet's `V1TaskEventType` for a line of Adze's task history.
fn event_type(kind: &str) -> &'static str {
    match kind {
        "assigned" => "ASSIGNED",
        "started" => "STARTED",
        "completed" => "FINISHED",
        "failed" => "FAILED",
        "retrying" => "RETRYING",
        "cancelled" => "CANCELLED",
        "timed out" => "TIMED_OUT",
        "schedule timed out" => "SCHEDULING_TIMED_OUT",
        "slot released" => "SLOT_RELEASED",
        "timeout refreshed" => "TIMEOUT_REFRESHED",
        "replayed" => "RETRIED_BY_USER",
        "worker lost" => "REASSIGNED",
        _ => "QUEUED",
    }
}

/// `GET /api/v1/stable/tasks/{task}/task-events`: the task's history in Hatchet's
/// `V1TaskEventList` shape, one row per transition, each with its attempt and worker.
async fn task_events(
    State(state): State<RestState>,
    Path(task): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let tenant = authorize(&state, &headers).await?;
            let task = crate::convert::uuid("task", &task)?;
            let history = state.api.engine.task_events(tenant, task).await?;
            let rows: Vec<_> = history
                .iter()
                .enumerate()
                .map(|(index, line)| {
                    let failed = matches!(
                        line.kind.as_str(),
                        "failed" | "timed out" | "schedule timed out"
                    );
                    json!({
                        "id": index,
                        "taskId": line.task_id.to_string(),
                        "timestamp": time(line.at),
                        "eventType": event_type(&line.kind),
                        "message": match &line.detail {
                            Some(detail) => format!("{}: {detail}", line.kind),
                            None => line.kind.clone(),
                        },
                        "errorMessage": if failed { line.detail.clone() } else { None },
                        "workerId": line.worker_id.map(|id| id.to_string()),
                        "retryCount": line.attempt,
                        "attempt": line.attempt + 1,
                    })
                })
                .collect();
            Ok(one_page(rows))
        }
        .await,
    )
}

/// `GET /api/v1/stable/tasks/{task}/attempts` (Adze's own): one row per attempt with
/// its worker, outcome, error and timings.
async fn task_attempts(
    State(state): State<RestState>,
    Path(task): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let tenant = authorize(&state, &headers).await?;
            let task = crate::convert::uuid("task", &task)?;
            let attempts = state.api.engine.task_attempts(tenant, task).await?;
            let rows: Vec<_> = attempts
                .iter()
                .map(|attempt| {
                    json!({
                        "retryCount": attempt.number,
                        "workerId": attempt.worker_id.map(|id| id.to_string()),
                        "assignedAt": attempt.assigned_at.map(time),
                        "startedAt": attempt.started_at.map(time),
                        "finishedAt": attempt.finished_at.map(time),
                        "outcome": attempt.outcome,
                        "error": attempt.error,
                    })
                })
                .collect();
            Ok(json!({ "rows": rows }))
        }
        .await,
    )
}
