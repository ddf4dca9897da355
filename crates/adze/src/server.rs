//! `adze server`: one replica of the engine on PostgreSQL. Start as many as the load
//! needs on one database; each tenant's scheduling runs on the replica holding its lease,
//! and any replica serves any SDK.

use std::sync::Arc;
use std::time::Duration;

use adze_cluster::{Cluster, ClusterConfig};
use adze_engine::Engine;
use adze_server::auth::Authenticator;
use adze_store::postgres::{PgConfig, PgStore};
use anyhow::Context;
use clap::Args;

use crate::serving::{EngineArgs, serve_until_signal};

/// Where the PostgreSQL store is, and how many connections it may use.
#[derive(Args)]
pub struct DatabaseArgs {
    /// The PostgreSQL database, e.g. postgres://user@host:5432/adze.
    #[arg(long, env = "ADZE_DATABASE_URL")]
    pub database_url: String,
    /// Connections in this process's pool.
    #[arg(long, env = "ADZE_DATABASE_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u64).range(2..=1000))]
    pub database_pool_size: u64,
    /// Milliseconds a call may wait for a pooled connection before it fails with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "ADZE_DATABASE_POOL_TIMEOUT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub database_pool_timeout_ms: u64,
}

impl DatabaseArgs {
    pub fn pg_config(&self) -> PgConfig {
        let mut config = PgConfig::new(self.database_url.clone());
        config.pool_size = self.database_pool_size as usize;
        config.pool_wait_timeout = Duration::from_millis(self.database_pool_timeout_ms);
        config
    }

    /// Opens the store, running its migrations first.
    pub async fn open(&self) -> anyhow::Result<PgStore> {
        PgStore::connect(self.pg_config())
            .await
            .with_context(|| "cannot open the PostgreSQL store (--database-url)".to_string())
    }
}

#[derive(Args)]
pub struct ServerArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// Seconds a tenant's lease lasts unrenewed: how long its tenants wait for another
    /// replica after this one dies.
    #[arg(long, env = "ADZE_LEASE_TTL", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_ttl: u64,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let postgres = args.database.open().await?;
    let store: Arc<dyn adze_store::Store> = Arc::new(postgres.clone());
    let listeners = args.engine.bind().await?;
    let (grpc_addr, http_addr) = (listeners.grpc.local_addr()?, listeners.http.local_addr()?);
    let cluster = Cluster::new(
        postgres.pool().clone(),
        ClusterConfig {
            database_url: args.database.database_url.clone(),
            lease_ttl: Duration::from_secs(args.lease_ttl),
        },
    );
    let engine = Engine::replica(store.clone(), args.engine.config(), cluster.clone());
    cluster
        .start(engine.clone())
        .await
        .map_err(|error| anyhow::anyhow!(error))
        .context("cannot join the cluster")?;
    let auth = Authenticator::new(store.clone())
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    eprintln!(
        "adze server is running (replica {}): gRPC on {grpc_addr}, HTTP on http://{http_addr}. \
         Make a token with `adze token create --database-url ... --grpc-broadcast-address {grpc_addr} \
         --server-url http://{http_addr}`.",
        cluster.id()
    );
    serve_until_signal(engine, auth, listeners, async { cluster.stop().await }).await
}
