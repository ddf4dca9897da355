//! The `adze` binary: a durable task engine that speaks Hatchet's protocol.
//!
//! - `adze lite`: the whole engine on embedded SQLite ([`lite`])
//! - `adze server`: one replica of the engine on PostgreSQL ([`server`])
//! - `adze migrate`: bring a PostgreSQL database to this binary's schema ([`migrate`])
//! - `adze token`: create and revoke API tokens ([`token`])
//!
//! Data goes to stdout, progress and logs to stderr.

#![forbid(unsafe_code)]

mod lite;
mod migrate;
mod server;
mod serving;
mod token;

use clap::{Parser, Subcommand};

/// Adze: a durable task engine that Hatchet's SDKs connect to unchanged.
#[derive(Parser)]
#[command(name = "adze", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole engine on embedded SQLite: no set-up, one data directory.
    Lite(lite::LiteArgs),
    /// Run one replica of the engine on PostgreSQL; run several on one database.
    Server(server::ServerArgs),
    /// Create or upgrade the PostgreSQL schema, then exit.
    Migrate(migrate::MigrateArgs),
    /// Create or revoke API tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ADZE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Lite(args) => lite::run(args).await,
            Command::Server(args) => server::run(args).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Token(command) => token::run(command).await,
        }
    })
}
