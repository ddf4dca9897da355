//! Listen streams across replicas, through `replica_deliveries`.
//!
//! A worker's listen stream stays on the replica it connected to. When another replica
//! owns the tenant, this replica asks the owner to listen on its behalf; the owner's actor
//! gets a local stream whose pump writes each assignment as a row addressed to this
//! replica (and a row with no assignment when the owner closes it). This replica reads its
//! rows in order and passes them to the worker. If the owner changes — it died and
//! another replica took the tenant — the stream is ended here, and the worker's SDK
//! reconnects and listens again, now reaching the new owner.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use adze_core::{Result, TenantId, WorkerId};
use adze_engine::Assignment;
use adze_engine::placement::{Call, ReplicaId, Reply};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Cluster, replica_channel};

/// The most assignments written in one insert.
const PUMP_BATCH: usize = 256;

/// How long deliveries for a stream not known yet are kept: they may arrive before the
/// owner's answer to the listen call that opened it.
const EARLY_DELIVERY_KEPT: Duration = Duration::from_secs(60);

/// Listen streams held here for tenants owned elsewhere.
#[derive(Default)]
pub struct Deliveries {
    state: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    streams: HashMap<Uuid, Remote>,
    /// Deliveries that came before their stream was known.
    early: HashMap<Uuid, (Instant, Vec<Option<Assignment>>)>,
}

struct Remote {
    tenant: TenantId,
    owner: ReplicaId,
    sender: mpsc::UnboundedSender<Assignment>,
    /// Ends the stream here.
    end: CancellationToken,
}

impl Held {
    /// Passes one delivery to its stream; `None` ends it.
    fn deliver(&mut self, stream: Uuid, assignment: Option<Assignment>) {
        match self.streams.get(&stream) {
            Some(remote) => match assignment {
                Some(assignment) => {
                    let _ = remote.sender.send(assignment);
                }
                None => remote.end.cancel(),
            },
            None => {
                let (_, early) = self
                    .early
                    .entry(stream)
                    .or_insert_with(|| (Instant::now(), Vec::new()));
                early.push(assignment);
            }
        }
    }
}

/// The owner's end: a stream whose assignments are written for `replica` to deliver.
pub fn stream_to(
    cluster: &Cluster,
    replica: ReplicaId,
    tenant: TenantId,
    worker: WorkerId,
) -> (mpsc::UnboundedSender<Assignment>, Uuid) {
    let (sender, mut receiver) = mpsc::unbounded_channel::<Assignment>();
    let stream = Uuid::now_v7();
    let cluster = cluster.arc();
    tokio::spawn(async move {
        let channel = replica_channel(replica);
        loop {
            let Some(first) = receiver.recv().await else {
                break;
            };
            let mut rows = vec![Some(first)];
            while rows.len() < PUMP_BATCH {
                match receiver.try_recv() {
                    Ok(assignment) => rows.push(Some(assignment)),
                    Err(_) => break,
                }
            }
            write(&cluster, replica, stream, &channel, rows).await;
        }
        write(&cluster, replica, stream, &channel, vec![None]).await;
        tracing::debug!(%tenant, %worker, %stream, "remote listen stream closed by its owner");
    });
    (sender, stream)
}

/// Writes deliveries, retrying while the database is away. Giving up loses nothing
/// durable: an assignment not started is sent again when the worker listens again.
async fn write(
    cluster: &Cluster,
    replica: ReplicaId,
    stream: Uuid,
    channel: &str,
    rows: Vec<Option<Assignment>>,
) {
    let texts: Vec<Option<String>> = rows
        .iter()
        .map(|row| {
            row.as_ref()
                .map(|assignment| serde_json::to_string(assignment).expect("assignments encode"))
        })
        .collect();
    let written = cluster
        .write_patiently(
            "cannot write deliveries",
            "WITH rows AS ( \
               INSERT INTO replica_deliveries (replica, stream, assignment) \
               SELECT $1, $2, assignment FROM unnest($3::text[]) \
                 WITH ORDINALITY AS t(assignment, n) ORDER BY n) \
             SELECT pg_notify($4, 'delivery')",
            &[&replica, &stream, &texts, &channel],
        )
        .await;
    if !written {
        tracing::error!(%stream, "gave up writing deliveries; they are sent again on the next listen");
    }
}

/// The worker's side, here: asks the owner to listen for it and keeps the stream.
pub async fn listen_remote(
    cluster: &Cluster,
    tenant: TenantId,
    worker: WorkerId,
    sender: mpsc::UnboundedSender<Assignment>,
) -> Result<()> {
    let call = Call::Listen {
        worker,
        replica: cluster.id,
    };
    let listening = match cluster.calls.forward(cluster, tenant, call).await? {
        Reply::Listening(listening) => listening,
        other => {
            return Err(adze_core::Error::internal(format!(
                "unexpected answer to a listen: {other:?}"
            )));
        }
    };
    let end = CancellationToken::new();
    {
        let mut held = cluster
            .deliveries
            .state
            .lock()
            .expect("deliveries poisoned");
        held.streams.insert(
            listening.stream,
            Remote {
                tenant,
                owner: listening.owner,
                sender: sender.clone(),
                end: end.clone(),
            },
        );
        if let Some((_, early)) = held.early.remove(&listening.stream) {
            for assignment in early {
                held.deliver(listening.stream, assignment);
            }
        }
    }
    let cluster = cluster.arc();
    tokio::spawn(async move {
        tokio::select! {
            () = sender.closed() => {
                // The worker hung up: the owner starts its grace timer.
                let call = Call::ListenClosed { worker, generation: listening.generation };
                if let Err(error) = cluster.calls.forward(&cluster, tenant, call).await {
                    tracing::warn!(%error, %worker, "cannot tell the owner a listen stream closed");
                }
            }
            () = end.cancelled() => {}
        }
        let mut held = cluster
            .deliveries
            .state
            .lock()
            .expect("deliveries poisoned");
        held.streams.remove(&listening.stream);
    });
    Ok(())
}

impl Deliveries {
    /// Reads the deliveries addressed here, in order, and passes them on.
    pub async fn take(&self, cluster: &Cluster) {
        let Ok(mut rows) = cluster
            .query(
                "cannot read deliveries",
                "DELETE FROM replica_deliveries WHERE replica = $1 RETURNING id, stream, assignment",
                &[&cluster.id],
            )
            .await
        else {
            return;
        };
        rows.sort_by_key(|row| row.get::<_, i64>(0));
        let mut held = self.state.lock().expect("deliveries poisoned");
        for row in rows {
            let stream: Uuid = row.get(1);
            let text: Option<String> = row.get(2);
            let assignment = match text.map(|text| serde_json::from_str::<Assignment>(&text)) {
                None => None,
                Some(Ok(assignment)) => Some(assignment),
                Some(Err(error)) => {
                    tracing::error!(%error, %stream, "cannot decode a delivery");
                    continue;
                }
            };
            held.deliver(stream, assignment);
        }
        held.early
            .retain(|_, (since, _)| since.elapsed() < EARLY_DELIVERY_KEPT);
    }

    /// Ends the streams whose tenant has changed owner since they were opened.
    pub async fn check_owners(&self, cluster: &Cluster) {
        let tenants: Vec<TenantId> = {
            let held = self.state.lock().expect("deliveries poisoned");
            let mut tenants: Vec<_> = held.streams.values().map(|remote| remote.tenant).collect();
            tenants.sort();
            tenants.dedup();
            tenants
        };
        if tenants.is_empty() {
            return;
        }
        let Ok(rows) = cluster
            .query(
                "cannot read leases",
                "SELECT tenant_id, owner, expires_at > now() FROM tenant_leases \
                 WHERE tenant_id = ANY($1)",
                &[&tenants],
            )
            .await
        else {
            return;
        };
        let owners: HashMap<TenantId, (ReplicaId, bool)> = rows
            .iter()
            .map(|row| (row.get(0), (row.get(1), row.get(2))))
            .collect();
        let held = self.state.lock().expect("deliveries poisoned");
        for remote in held.streams.values() {
            let current = owners.get(&remote.tenant);
            if current.is_none_or(|(owner, live)| *owner != remote.owner || !live) {
                remote.end.cancel();
            }
        }
    }
}
