//! `adze lite`: the engine, its gRPC and HTTP servers, and the embedded store, in one
//! process, until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use adze_engine::Engine;
use adze_server::auth::{Authenticator, TokenRequest, create_token};
use adze_store::sqlite::SqliteStore;
use anyhow::Context;
use clap::Args;

use crate::serving::{EngineArgs, serve_until_signal};
use crate::token::DEFAULT_TENANT;

#[derive(Args)]
pub struct LiteArgs {
    /// Where the embedded database lives (created if missing).
    #[arg(long, env = "ADZE_DATA_DIR", default_value = "./.adze")]
    data_dir: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
}

pub async fn run(args: LiteArgs) -> anyhow::Result<()> {
    let sqlite = SqliteStore::open(&args.data_dir)
        .with_context(|| format!("cannot open the data directory {}", args.data_dir.display()))?;
    let store: Arc<dyn adze_store::Store> = Arc::new(sqlite.clone());
    let listeners = args.engine.bind().await?;
    let (grpc_addr, http_addr) = (listeners.grpc.local_addr()?, listeners.http.local_addr()?);
    let engine = Engine::start(store.clone(), args.engine.config())
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
    serve_until_signal(engine, auth, listeners, async {}).await?;
    sqlite.close();
    Ok(())
}
