//! What `adze lite` and `adze server` share: the engine flags, the listeners, and the
//! serve-until-signal loop with its shutdown order.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use adze_engine::{Engine, EngineConfig};
use adze_server::Listeners;
use adze_server::auth::Authenticator;
use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long open calls may take to finish once a shutdown has begun.
const SERVER_DRAIN: Duration = Duration::from_secs(10);

#[derive(Args)]
pub struct EngineArgs {
    /// Address of the gRPC server the SDKs connect to.
    #[arg(long, env = "ADZE_GRPC_ADDR", default_value = "127.0.0.1:7070")]
    pub grpc_addr: SocketAddr,
    /// Address of the HTTP server (health checks, REST).
    #[arg(long, env = "ADZE_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Seconds without a heartbeat after which a worker is lost.
    #[arg(long, env = "ADZE_HEARTBEAT_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_timeout: u64,
    /// Seconds a worker's closed listen stream may stay closed before the worker is lost.
    #[arg(long, env = "ADZE_LISTEN_GRACE", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub listen_grace: u64,
}

impl EngineArgs {
    pub fn config(&self) -> EngineConfig {
        EngineConfig {
            heartbeat_timeout: Duration::from_secs(self.heartbeat_timeout),
            listen_grace: Duration::from_secs(self.listen_grace),
        }
    }

    /// Binds both listeners, so a taken port fails before anything starts.
    pub async fn bind(&self) -> anyhow::Result<Listeners> {
        let grpc = TcpListener::bind(self.grpc_addr)
            .await
            .with_context(|| format!("cannot listen on {} (--grpc-addr)", self.grpc_addr))?;
        let http = TcpListener::bind(self.http_addr)
            .await
            .with_context(|| format!("cannot listen on {} (--http-addr)", self.http_addr))?;
        Ok(Listeners { grpc, http })
    }
}

/// Serves until SIGINT or SIGTERM, then stops in order: the engine first (which ends the
/// workers' listen streams, that the servers' graceful shutdown would otherwise wait on
/// forever; pending commits complete), then `after_engine`, then the servers' drain.
pub async fn serve_until_signal<F: Future<Output = ()>>(
    engine: Engine,
    auth: Authenticator,
    listeners: Listeners,
    after_engine: F,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(adze_server::serve(
        engine.clone(),
        auth,
        listeners,
        shutdown.clone(),
    ));
    stop_on_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    engine.shutdown().await;
    after_engine.await;
    match tokio::time::timeout(SERVER_DRAIN, serving).await {
        Ok(served) => served??,
        Err(_) => tracing::warn!(
            "open calls did not finish within {} s; exiting anyway",
            SERVER_DRAIN.as_secs()
        ),
    }
    Ok(())
}

async fn stop_on_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
