//! `adze migrate`: brings a PostgreSQL database to this binary's schema, without
//! starting the engine (`adze server` also does it when it starts).

use clap::Args;

#[derive(Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database to migrate.
    #[arg(long, env = "ADZE_DATABASE_URL")]
    database_url: String,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let applied = adze_store::postgres::migrate(&args.database_url)
        .await
        .map_err(|error| anyhow::anyhow!("cannot migrate the database: {error}"))?;
    if applied.is_empty() {
        eprintln!("the database schema is up to date");
    } else {
        let versions: Vec<String> = applied.iter().map(i64::to_string).collect();
        eprintln!("applied migrations {}", versions.join(", "));
    }
    Ok(())
}
