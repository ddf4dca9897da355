//! `adze token`: API tokens, made and revoked straight in the store, so they work while
//! the engine runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use adze_server::auth::{TokenRequest, create_token};
use adze_store::postgres::{PgConfig, PgStore};
use adze_store::sqlite::SqliteStore;
use adze_store::{Mutation, Store};
use anyhow::Context;
use clap::{Args, Subcommand};
use uuid::Uuid;

/// The tenant of a single-tenant set-up, used when `--tenant` is not given.
pub const DEFAULT_TENANT: Uuid = Uuid::from_u128(0x707d0855_80ab_4e1f_a156_f1c4546cbf52);

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (and nothing else) on stdout.
    Create(CreateArgs),
    /// Revoke a token by its token id (the `token_id` claim).
    Revoke(RevokeArgs),
}

#[derive(Args)]
pub struct StoreArgs {
    /// The data directory of an `adze lite` engine.
    #[arg(long, env = "ADZE_DATA_DIR", required_unless_present = "database_url")]
    data_dir: Option<PathBuf>,
    /// The PostgreSQL database of `adze server` engines.
    #[arg(long, env = "ADZE_DATABASE_URL", conflicts_with = "data_dir")]
    database_url: Option<String>,
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The tenant the token acts for.
    #[arg(long, default_value_t = DEFAULT_TENANT)]
    tenant: Uuid,
    /// The gRPC address SDKs should dial, written into the token.
    #[arg(long, default_value = "127.0.0.1:7070")]
    grpc_broadcast_address: String,
    /// The HTTP address SDKs should call, written into the token.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server_url: String,
    /// Days until the token expires.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u64).range(1..=36_500))]
    expires_in_days: u64,
}

#[derive(Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The `token_id` claim of the token to revoke.
    token_id: Uuid,
}

async fn open(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    match (&args.data_dir, &args.database_url) {
        (Some(dir), _) => {
            let store = SqliteStore::open(dir)
                .with_context(|| format!("cannot open the data directory {}", dir.display()))?;
            Ok(Arc::new(store))
        }
        (None, Some(url)) => {
            let store = PgStore::connect(PgConfig::new(url.clone()))
                .await
                .context("cannot open the PostgreSQL store (--database-url)")?;
            Ok(Arc::new(store))
        }
        (None, None) => anyhow::bail!("give --data-dir DIR"),
    }
}

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => {
            let store = open(&args.store).await?;
            let request = TokenRequest {
                tenant: args.tenant,
                server_url: args.server_url,
                grpc_broadcast_address: args.grpc_broadcast_address,
                expires_in: Duration::from_secs(args.expires_in_days * 24 * 3600),
            };
            let token = create_token(store.as_ref(), request)
                .await
                .map_err(|error| anyhow::anyhow!(error))?;
            println!("{token}");
        }
        TokenCommand::Revoke(args) => {
            let store = open(&args.store).await?;
            let at = adze_engine::clock::now_millis();
            store
                .commit(vec![Mutation::RevokeToken {
                    token_id: args.token_id,
                    at,
                }])
                .await
                .context("cannot revoke the token")?;
            eprintln!(
                "revoked token {} (takes effect within seconds)",
                args.token_id
            );
        }
    }
    Ok(())
}
