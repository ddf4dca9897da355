//! `adze lite`: the engine, its gRPC and HTTP servers, and the embedded store, in one
//! process, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use adze_engine::{Engine, EngineConfig};
use adze_server::Listeners;
use adze_server::auth::{Authenticator, TokenRequest, create_token};
use adze_store::sqlite::SqliteStore;
use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::token::DEFAULT_TENANT;

#[derive(Args)]
pub struct LiteArgs {
    /// Where the embedded database lives (created if missing).
    #[arg(long, env = "ADZE_DATA_DIR", default_value = "./.adze")]
    data_dir: PathBuf,
    /// Address of the gRPC server the SDKs connect to.
    #[arg(long, env = "ADZE_GRPC_ADDR", default_value = "127.0.0.1:7070")]
    grpc_addr: SocketAddr,
    /// Address of the HTTP server (health checks, REST).
    #[arg(long, env = "ADZE_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// Seconds without a heartbeat after which a worker is lost.
    #[arg(long, env = "ADZE_HEARTBEAT_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    heartbeat_timeout: u64,
    /// Seconds a worker's closed listen stream may stay closed before the worker is lost.
    #[arg(long, env = "ADZE_LISTEN_GRACE", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    listen_grace: u64,
}

pub async fn run(args: LiteArgs) -> anyhow::Result<()> {
    let sqlite = SqliteStore::open(&args.data_dir)
        .with_context(|| format!("cannot open the data directory {}", args.data_dir.display()))?;
    let store: Arc<dyn adze_store::Store> = Arc::new(sqlite.clone());
    let grpc = TcpListener::bind(args.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on {} (--grpc-addr)", args.grpc_addr))?;
    let http = TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("cannot listen on {} (--http-addr)", args.http_addr))?;
    let (grpc_addr, http_addr) = (grpc.local_addr()?, http.local_addr()?);
    let config = EngineConfig {
        heartbeat_timeout: Duration::from_secs(args.heartbeat_timeout),
        listen_grace: Duration::from_secs(args.listen_grace),
    };
    let engine = Engine::start(store.clone(), config)
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    let auth = Authenticator::new(store.clone())
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    let token = create_token(
        store.as_ref(),
        TokenRequest {
            tenant: DEFAULT_TENANT,
            server_url: format!("http://{http_addr}"),
            grpc_broadcast_address: grpc_addr.to_string(),
            expires_in: Duration::from_secs(30 * 24 * 3600),
        },
    )
    .await
    .map_err(|error| anyhow::anyhow!(error))?;
    eprintln!(
        "adze lite is running (data in {}). Connect an SDK with:\n\n\
         export HATCHET_CLIENT_TOKEN={token}\n\
         export HATCHET_CLIENT_HOST_PORT={grpc_addr}\n\
         export HATCHET_CLIENT_SERVER_URL=http://{http_addr}\n\
         export HATCHET_CLIENT_TLS_STRATEGY=none\n",
        args.data_dir.display()
    );
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(adze_server::serve(
        engine.clone(),
        auth,
        Listeners { grpc, http },
        shutdown.clone(),
    ));
    stop_on_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    // Stopping the engine first ends the workers' listen streams, which the servers'
    // graceful shutdown would otherwise wait on forever; pending commits complete.
    engine.shutdown().await;
    match tokio::time::timeout(SERVER_DRAIN, serving).await {
        Ok(served) => served??,
        Err(_) => tracing::warn!(
            "open calls did not finish within {} s; exiting anyway",
            SERVER_DRAIN.as_secs()
        ),
    }
    sqlite.close();
    Ok(())
}

/// How long open calls may take to finish once a shutdown has begun.
const SERVER_DRAIN: Duration = Duration::from_secs(10);

async fn stop_on_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
