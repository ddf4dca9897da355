//! HTTP: health checks, and the REST calls Hatchet's SDKs make that Adze implements.
//! Everything else under `/api` answers 404 with a JSON error, never a hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use adze_core::Error;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
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
        .route("/api/v1/workers/{worker}", patch(update_worker))
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
    let result = async {
        let header = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok());
        let tenant = state.api.auth.tenant(header).await?;
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
        Ok::<_, Error>(Json(json!({
            "metadata": { "id": worker.to_string() },
            "isPaused": update.is_paused.unwrap_or(false),
        })))
    }
    .await;
    match result {
        Ok(body) => body.into_response(),
        Err(error) => error_response(error),
    }
}
