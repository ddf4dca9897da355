//! Versioned schema migrations. The pending versions run in one transaction with the
//! rows that record them, so a crash mid-migration leaves the schema as it was.

use super::errors::from_postgres;
use crate::{Result, StoreError};

/// Every migration this binary knows, in order. Append; never edit a released one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/001_init.sql")),
    (2, include_str!("../../migrations/postgres/002_cluster.sql")),
    (
        3,
        include_str!("../../migrations/postgres/003_retry_timing.sql"),
    ),
];

/// Any constant would do: replicas starting at once must agree on it, and nothing else
/// in the database may use it.
const MIGRATION_LOCK: i64 = 0x6164_7a65_6d69_6772; // "adzemigr"

/// Brings the schema up to this binary's version and returns the versions it applied
/// (none when it was already current). Refuses a schema newer than the binary.
pub(super) async fn run(client: &mut deadpool_postgres::Client) -> Result<Vec<i64>> {
    let transaction = client.transaction().await.map_err(from_postgres)?;
    // Held until commit: a replica that starts while another migrates waits here and
    // then finds the work done.
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(from_postgres)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS adze_schema_migrations (
                 version    bigint PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(from_postgres)?;
    let found: i64 = transaction
        .query_one(
            "SELECT coalesce(max(version), 0) FROM adze_schema_migrations",
            &[],
        )
        .await
        .map_err(from_postgres)?
        .get(0);
    let supported = MIGRATIONS.last().map_or(0, |(version, _)| *version);
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > found) {
        transaction
            .batch_execute(sql)
            .await
            .map_err(from_postgres)?;
        transaction
            .execute(
                "INSERT INTO adze_schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(from_postgres)?;
        applied.push(*version);
    }
    transaction.commit().await.map_err(from_postgres)?;
    if !applied.is_empty() {
        tracing::info!(?applied, "postgres schema migrated");
    }
    Ok(applied)
}
