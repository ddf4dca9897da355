//! # adze-cluster
//!
//! Several `adze server` processes on one PostgreSQL database. Each tenant's actor runs
//! on exactly one replica, the holder of the tenant's lease row; any replica serves any
//! client or worker, and sends what belongs to another replica's actor through the
//! database. There is no consensus of our own: PostgreSQL's row locks decide who holds a
//! lease, and a lease that is not renewed expires and is taken over.
//!
//! ## Layout
//! - [`leases`]: taking, renewing and taking over tenant leases
//! - [`calls`]: calls to another replica's actor and their answers (`replica_calls`,
//!   `replica_replies`)
//! - [`deliveries`]: assignments for a worker whose listen stream is on another replica
//!   (`replica_deliveries`)
//! - [`notices`]: the LISTEN connection whose notifications wake the readers
//!
//! Every table is also read on each tick ([`ClusterConfig::tick`]), so a notification
//! that never arrives (a dropped connection, a restarted database) only delays.

#![forbid(unsafe_code)]

pub mod calls;
pub mod deliveries;
pub mod leases;
pub mod notices;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use adze_core::{Error, Result, TenantId, WorkerId};
use adze_engine::placement::{Call, Placement, ReplicaId, Reply};
use adze_engine::{Assignment, Engine};
use deadpool_postgres::Pool;
use tokio::sync::{Notify, mpsc};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// Replica settings.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The database URL, for the LISTEN connection (the pool is shared with the store).
    pub database_url: String,
    /// How long a lease lasts without renewal: the longest a tenant waits for a new owner
    /// after its replica died.
    pub lease_ttl: Duration,
}

impl ClusterConfig {
    /// How often leases are renewed and the tables swept: a third of the lease, so two
    /// renewals may fail before it expires.
    pub fn tick(&self) -> Duration {
        self.lease_ttl / 3
    }

    /// How long a call to another replica waits for its answer: long enough for a dead
    /// owner's lease to expire and a new owner to take the call.
    pub fn call_timeout(&self) -> Duration {
        self.lease_ttl * 2 + Duration::from_secs(5)
    }
}

/// One replica's part in the cluster; the engine's [`Placement`].
pub struct Cluster {
    id: ReplicaId,
    /// Itself, for the tasks it spawns from `&self` methods.
    this: Weak<Cluster>,
    pool: Pool,
    config: ClusterConfig,
    engine: OnceLock<Engine>,
    leases: leases::Leases,
    calls: calls::Calls,
    deliveries: deliveries::Deliveries,
    /// Wakes the reader of calls for tenants owned here.
    calls_waiting: Notify,
    /// Wakes the reader of answers and deliveries addressed to this replica.
    mine_waiting: Notify,
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// A database failure as callers see it: the cluster cannot route right now.
pub(crate) fn unavailable(what: &str, error: impl std::fmt::Display) -> Error {
    tracing::warn!(%error, "{what}");
    Error::unavailable(format!("{what}: the database cannot be reached ({error})"))
}

impl Cluster {
    /// A new replica on `pool`; call [`Cluster::start`] with the engine built on it.
    pub fn new(pool: Pool, config: ClusterConfig) -> Arc<Cluster> {
        Arc::new_cyclic(|this| Cluster {
            id: Uuid::now_v7(),
            this: this.clone(),
            pool,
            leases: leases::Leases::default(),
            calls: calls::Calls::default(),
            deliveries: deliveries::Deliveries::default(),
            calls_waiting: Notify::new(),
            mine_waiting: Notify::new(),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            engine: OnceLock::new(),
            config,
        })
    }

    pub fn id(&self) -> ReplicaId {
        self.id
    }

    /// Joins the cluster: records this replica, takes the free leases of tenants with
    /// unfinished work (recovering them), and starts the notice and tick loops.
    pub async fn start(self: &Arc<Self>, engine: Engine) -> Result<()> {
        let _ = self.engine.set(engine.clone());
        self.leases.heartbeat(self).await?;
        let tenants = engine
            .store()
            .tenants_to_recover()
            .await
            .map_err(adze_engine::store_error)?;
        for tenant in tenants {
            self.is_local(tenant).await?;
        }
        self.tasks.spawn(notices::run(self.clone()));
        self.tasks.spawn(self.clone().tick_loop());
        self.tasks.spawn(self.clone().calls_loop());
        self.tasks.spawn(self.clone().mine_loop());
        Ok(())
    }

    /// Leaves the cluster: stops the loops and gives up this replica's leases at once, so
    /// another replica takes its tenants without waiting for them to expire. Call it after
    /// the engine has shut down.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        if let Err(error) = self.leases.give_up_all(self).await {
            tracing::warn!(%error, "could not give up the leases; they will expire");
        }
    }

    /// Runs one statement on a pooled connection. Not getting a connection, or the
    /// statement failing, is UNAVAILABLE saying `what` (and logged): here it means the
    /// database is away.
    pub(crate) async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| unavailable(what, error))?;
        client
            .query(sql, params)
            .await
            .map_err(|error| unavailable(what, error))
    }

    /// [`Cluster::query`] for a write another replica waits on (an answer, a delivery),
    /// tried again with backoff while the database is away. False if every try failed.
    pub(crate) async fn write_patiently(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> bool {
        let mut delay = Duration::from_millis(50);
        for _ in 0..8 {
            if self.query(what, sql, params).await.is_ok() {
                return true;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        false
    }

    fn arc(&self) -> Arc<Cluster> {
        self.this
            .upgrade()
            .expect("a cluster method runs while the cluster lives")
    }

    fn engine(&self) -> &Engine {
        self.engine
            .get()
            .expect("the cluster is started before it is used")
    }

    async fn tick_loop(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.config.tick());
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            self.leases.tick(&self).await;
            self.deliveries.check_owners(&self).await;
            self.calls.expire(&self).await;
            self.calls_waiting.notify_one();
            self.mine_waiting.notify_one();
        }
    }

    async fn calls_loop(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = self.calls_waiting.notified() => {}
            }
            self.calls.take_for_owned(&self).await;
        }
    }

    async fn mine_loop(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = self.mine_waiting.notified() => {}
            }
            self.calls.take_replies(&self).await;
            self.deliveries.take(&self).await;
        }
    }

    /// The channel notifications for this replica's answers and deliveries go to.
    pub(crate) fn channel(&self) -> String {
        replica_channel(self.id)
    }
}

pub(crate) fn replica_channel(replica: ReplicaId) -> String {
    format!("adze_r_{}", replica.simple())
}

#[async_trait::async_trait]
impl Placement for Cluster {
    async fn is_local(&self, tenant: TenantId) -> Result<bool> {
        self.leases.is_local(self, tenant).await
    }

    async fn forward(&self, tenant: TenantId, call: Call) -> Result<Reply> {
        self.calls.forward(self, tenant, call).await
    }

    fn stream_to(
        &self,
        replica: ReplicaId,
        tenant: TenantId,
        worker: WorkerId,
    ) -> (mpsc::UnboundedSender<Assignment>, Uuid) {
        deliveries::stream_to(self, replica, tenant, worker)
    }

    async fn listen_remote(
        &self,
        tenant: TenantId,
        worker: WorkerId,
        stream: mpsc::UnboundedSender<Assignment>,
    ) -> Result<()> {
        deliveries::listen_remote(self, tenant, worker, stream).await
    }

    fn replica(&self) -> ReplicaId {
        self.id
    }
}
