//! Tenant leases: which replica runs each tenant's actor.
//!
//! A lease is a row renewed on every tick while its holder lives. A tenant without a
//! live lease is taken by the first replica that needs it: one that receives a call for
//! it, or any replica's tick once the old lease has expired. Losing a lease (a renewal
//! that finds it gone, or no successful renewal for a whole lease time) stops the
//! tenant's actor here at once, before another replica can have taken it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use adze_core::{Result, TenantId};
use tokio::time::Instant;

use crate::Cluster;

/// What this replica knows of leases.
#[derive(Default)]
pub struct Leases {
    state: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    /// Tenants whose actor runs here.
    owned: HashSet<TenantId>,
    /// Tenants owned elsewhere, until when that is known to hold.
    elsewhere: HashMap<TenantId, Instant>,
    /// The last time every owned lease was renewed.
    renewed_at: Option<Instant>,
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

impl Leases {
    pub fn owned(&self) -> Vec<TenantId> {
        let known = self.state.lock().expect("lease state poisoned");
        known.owned.iter().copied().collect()
    }

    /// Whether `tenant` runs here, taking its lease if nobody holds a live one.
    pub async fn is_local(&self, cluster: &Cluster, tenant: TenantId) -> Result<bool> {
        {
            let known = self.state.lock().expect("lease state poisoned");
            if known.owned.contains(&tenant) {
                return Ok(true);
            }
            if known
                .elsewhere
                .get(&tenant)
                .is_some_and(|until| *until > Instant::now())
            {
                return Ok(false);
            }
        }
        let taken = cluster
            .query(
                "cannot take the tenant's lease",
                "INSERT INTO tenant_leases (tenant_id, owner, epoch, expires_at) \
                 VALUES ($1, $2, 1, now() + make_interval(secs => $3)) \
                 ON CONFLICT (tenant_id) DO UPDATE \
                   SET owner = EXCLUDED.owner, epoch = tenant_leases.epoch + 1, \
                       expires_at = EXCLUDED.expires_at \
                   WHERE tenant_leases.expires_at < now() OR tenant_leases.owner = EXCLUDED.owner \
                 RETURNING epoch",
                &[&tenant, &cluster.id, &seconds(cluster.config.lease_ttl)],
            )
            .await?;
        if !taken.is_empty() {
            self.took(cluster, tenant);
            return Ok(true);
        }
        let row = cluster
            .query(
                "cannot look up the tenant's lease",
                "SELECT extract(epoch FROM expires_at - now())::float8 FROM tenant_leases \
                 WHERE tenant_id = $1",
                &[&tenant],
            )
            .await?
            .pop();
        let remaining = row.map_or(0.0, |row| row.get::<_, f64>(0)).max(0.0);
        let mut known = self.state.lock().expect("lease state poisoned");
        known
            .elsewhere
            .insert(tenant, Instant::now() + Duration::from_secs_f64(remaining));
        Ok(false)
    }

    fn took(&self, cluster: &Cluster, tenant: TenantId) {
        let newly = {
            let mut known = self.state.lock().expect("lease state poisoned");
            known.elsewhere.remove(&tenant);
            known.owned.insert(tenant)
        };
        if newly {
            tracing::info!(%tenant, replica = %cluster.id, "took the tenant's lease");
            cluster.engine().open_tenant(tenant);
            cluster.calls_waiting.notify_one();
        }
    }

    fn lost(&self, cluster: &Cluster, tenant: TenantId) {
        let was = {
            let mut known = self.state.lock().expect("lease state poisoned");
            known.owned.remove(&tenant)
        };
        if was {
            tracing::warn!(%tenant, replica = %cluster.id, "lost the tenant's lease; stopping its actor here");
            cluster.engine().close_tenant(tenant);
        }
    }

    /// Records that this replica is alive.
    pub async fn heartbeat(&self, cluster: &Cluster) -> Result<()> {
        cluster
            .query(
                "cannot record the replica",
                "INSERT INTO replicas (id) VALUES ($1) \
                 ON CONFLICT (id) DO UPDATE SET seen_at = now()",
                &[&cluster.id],
            )
            .await?;
        Ok(())
    }

    /// Renews the leases held here, takes over expired ones, and drops what a replica
    /// dead for a minute left behind.
    pub async fn tick(&self, cluster: &Cluster) {
        match self.renew_and_take_over(cluster).await {
            Ok(()) => {
                let mut known = self.state.lock().expect("lease state poisoned");
                known.renewed_at = Some(Instant::now());
            }
            // Already logged where it failed.
            Err(_) => {
                let stale = {
                    let known = self.state.lock().expect("lease state poisoned");
                    known
                        .renewed_at
                        .is_none_or(|at| at.elapsed() >= cluster.config.lease_ttl.mul_f32(0.8))
                };
                // Another replica may take them soon: stop acting on them first.
                if stale {
                    for tenant in self.owned() {
                        self.lost(cluster, tenant);
                    }
                }
            }
        }
    }

    async fn renew_and_take_over(&self, cluster: &Cluster) -> Result<()> {
        self.heartbeat(cluster).await?;
        let owned = self.owned();
        let ttl = seconds(cluster.config.lease_ttl);
        let kept = cluster
            .query(
                "cannot renew leases",
                "UPDATE tenant_leases SET expires_at = now() + make_interval(secs => $3) \
                 WHERE owner = $1 AND tenant_id = ANY($2) RETURNING tenant_id",
                &[&cluster.id, &owned, &ttl],
            )
            .await?;
        let kept: Vec<TenantId> = kept.iter().map(|row| row.get(0)).collect();
        for tenant in owned.into_iter().filter(|tenant| !kept.contains(tenant)) {
            self.lost(cluster, tenant);
        }
        let taken = cluster
            .query(
                "cannot take over expired leases",
                "UPDATE tenant_leases SET owner = $1, epoch = epoch + 1, \
                        expires_at = now() + make_interval(secs => $2) \
                 WHERE expires_at < now() RETURNING tenant_id",
                &[&cluster.id, &ttl],
            )
            .await?;
        for row in taken {
            self.took(cluster, row.get(0));
        }
        cluster
            .query(
                "cannot clear what dead replicas left",
                "WITH gone AS ( \
                   DELETE FROM replicas WHERE seen_at < now() - interval '1 minute' RETURNING id), \
                 replies AS (DELETE FROM replica_replies WHERE sender IN (SELECT id FROM gone)) \
                 DELETE FROM replica_deliveries WHERE replica IN (SELECT id FROM gone)",
                &[],
            )
            .await?;
        Ok(())
    }

    /// Gives up every lease held here (on a clean shutdown), so others take them now.
    pub async fn give_up_all(&self, cluster: &Cluster) -> Result<()> {
        cluster
            .query(
                "cannot give up leases",
                "UPDATE tenant_leases SET expires_at = now() - interval '1 second' \
                 WHERE owner = $1",
                &[&cluster.id],
            )
            .await?;
        cluster
            .query(
                "cannot leave the cluster",
                "DELETE FROM replicas WHERE id = $1",
                &[&cluster.id],
            )
            .await?;
        Ok(())
    }

    /// Whether the tenant is owned here (no database access).
    pub fn is_owned(&self, tenant: TenantId) -> bool {
        let known = self.state.lock().expect("lease state poisoned");
        known.owned.contains(&tenant)
    }
}
