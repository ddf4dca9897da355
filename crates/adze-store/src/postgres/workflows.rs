//! Registering workflow versions. Replicas may register the same workflow at once, so
//! the read of the latest version and the insert of the next one hold a lock on the
//! workflow's name for the length of their transaction.

use adze_core::TenantId;
use adze_core::workflow::WorkflowSpec;

use super::errors::from_postgres;
use super::queries::{VERSION_COLUMNS, workflow_version};
use crate::records::to_json;
use crate::{PutWorkflowOutcome, Result};

pub(super) async fn put(
    client: &mut deadpool_postgres::Client,
    tenant: TenantId,
    spec: WorkflowSpec,
) -> Result<PutWorkflowOutcome> {
    let transaction = client.transaction().await.map_err(from_postgres)?;
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&format!("workflow {tenant} {}", spec.name)],
        )
        .await
        .map_err(from_postgres)?;
    let latest = transaction
        .query_opt(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM workflow_versions
                 WHERE tenant_id = $1 AND name = $2 ORDER BY number DESC LIMIT 1"
            ),
            &[&tenant, &spec.name],
        )
        .await
        .map_err(from_postgres)?
        .as_ref()
        .map(workflow_version)
        .transpose()?;
    let outcome = PutWorkflowOutcome::after(latest, tenant, spec);
    if !outcome.created {
        return Ok(outcome);
    }
    let version = &outcome.version;
    transaction
        .execute(
            "INSERT INTO workflow_versions (id, workflow_id, tenant_id, name, number, spec, created_at)
             VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7)",
            &[
                &version.id,
                &version.workflow_id,
                &tenant,
                &version.spec.name,
                &version.number,
                &to_json(&version.spec),
                &version.created_at,
            ],
        )
        .await
        .map_err(from_postgres)?;
    transaction.commit().await.map_err(from_postgres)?;
    Ok(outcome)
}
