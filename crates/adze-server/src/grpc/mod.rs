//! Hatchet's gRPC services over the engine. One [`Api`] value implements every service;
//! each file holds one service.
//!
//! - [`dispatcher`]: `/Dispatcher/*`: workers, their streams and reports, run results
//! - [`events`]: `/EventsService/*`: events and task logs
//! - [`workflows`]: `/WorkflowService/*`: 0.x registration and triggers
//! - [`admin`]: `/v1.AdminService/*`: 1.x registration and run details

mod admin;
mod dispatcher;
mod events;
mod workflows;

use adze_core::{Result, TenantId};
use adze_engine::Engine;

use crate::auth::Authenticator;

/// The most runs or events one bulk call may carry.
pub const MAX_BULK: usize = 1_000;

#[derive(Clone)]
pub struct Api {
    pub engine: Engine,
    pub auth: Authenticator,
    /// Ends the streams that only the client would otherwise close.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl Api {
    /// The tenant the request's token belongs to.
    async fn tenant<T>(&self, request: &tonic::Request<T>) -> Result<TenantId, tonic::Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok());
        self.auth
            .tenant(header)
            .await
            .map_err(crate::status::to_status)
    }
}

/// Turns a core result into a gRPC one.
fn grpc<T>(result: Result<T>) -> Result<tonic::Response<T>, tonic::Status> {
    result
        .map(tonic::Response::new)
        .map_err(crate::status::to_status)
}

fn check_bulk(field: &str, count: usize) -> Result<()> {
    if count > MAX_BULK {
        return Err(adze_core::Error::invalid(format!(
            "{field}: at most {MAX_BULK} per call, got {count}"
        )));
    }
    Ok(())
}
