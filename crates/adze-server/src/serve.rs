//! Wiring: the gRPC server (Hatchet's contract) and the HTTP server on their listeners,
//! until the shutdown token fires.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use adze_engine::Engine;
use adze_proto::v0::dispatcher_server::DispatcherServer;
use adze_proto::v0::events_service_server::EventsServiceServer;
use adze_proto::v0::workflow_service_server::WorkflowServiceServer;
use adze_proto::v1::admin_service_server::AdminServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;

use crate::auth::Authenticator;
use crate::grpc::Api;
use crate::rest::{RestState, router};

/// Hatchet's SDKs allow 4 MB messages; so does Adze, and it says so when one is larger.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The sockets to serve on, bound by the caller (so tests can bind port 0).
pub struct Listeners {
    pub grpc: TcpListener,
    pub http: TcpListener,
}

macro_rules! service {
    ($server:ident, $api:expr) => {
        $server::new($api.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    };
}

/// Serves until `shutdown` fires, then stops accepting calls and returns.
pub async fn serve(
    engine: Engine,
    auth: Authenticator,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let api = Api {
        engine,
        auth,
        shutdown: shutdown.clone(),
    };
    let ready = Arc::new(AtomicBool::new(false));
    let grpc = tonic::transport::Server::builder()
        // Keep idle SDK connections alive from our side too; the SDKs ping every 10 s,
        // which this server never answers with GOAWAY.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .add_service(service!(DispatcherServer, api))
        .add_service(service!(EventsServiceServer, api))
        .add_service(service!(WorkflowServiceServer, api))
        .add_service(service!(AdminServiceServer, api))
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY, a small reply (an assignment, an ack) can wait for the
            // peer's delayed ACK: ~40 ms on every round trip under light load.
            TcpIncoming::from(listeners.grpc).with_nodelay(Some(true)),
            shutdown.clone().cancelled_owned(),
        );
    let http = axum::serve(
        listeners.http,
        router(RestState {
            api,
            ready: ready.clone(),
        }),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    ready.store(true, Ordering::Release);
    let (grpc, http) = tokio::join!(grpc, http);
    grpc.map_err(std::io::Error::other)?;
    http
}
