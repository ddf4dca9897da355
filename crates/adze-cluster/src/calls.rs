//! Calls to another replica's tenant actor, through `replica_calls` and
//! `replica_replies`.
//!
//! The caller inserts the call, addressed to the tenant rather than to a replica, and
//! notifies; whichever replica owns the tenant takes it (now, or after a takeover if the
//! owner died), runs it on its actor, and inserts the answer for the caller. A call not
//! answered within [`crate::ClusterConfig::call_timeout`] fails with UNAVAILABLE; if it
//! was never taken it is withdrawn first, so it cannot run later.

use std::collections::HashMap;
use std::sync::Mutex;

use adze_core::{Error, Result, TenantId};
use adze_engine::placement::{Call, ReplicaId, Reply};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::{Cluster, replica_channel};

/// The most calls taken from the table at once.
const TAKE_LIMIT: i64 = 512;

/// Calls this replica made and is waiting on.
#[derive(Default)]
pub struct Calls {
    waiting: Mutex<HashMap<i64, Waiting>>,
}

struct Waiting {
    answer: oneshot::Sender<Result<Reply>>,
    deadline: Instant,
}

impl Calls {
    /// Sends `call` to the tenant's owner and waits for the answer.
    pub async fn forward(&self, cluster: &Cluster, tenant: TenantId, call: Call) -> Result<Reply> {
        let text = serde_json::to_string(&call)
            .map_err(|error| Error::internal(format!("cannot encode a call: {error}")))?;
        let rows = cluster
            .query(
                "cannot send the call to the tenant's replica",
                "WITH call AS ( \
                   INSERT INTO replica_calls (tenant_id, sender, call) VALUES ($1, $2, $3) \
                   RETURNING id) \
                 SELECT id, pg_notify('adze_calls', $1::text) FROM call",
                &[&tenant, &cluster.id, &text],
            )
            .await?;
        let id: i64 = rows
            .first()
            .map(|row| row.get(0))
            .ok_or_else(|| Error::internal("the call was not stored"))?;
        let (answer, answered) = oneshot::channel();
        self.waiting.lock().expect("calls poisoned").insert(
            id,
            Waiting {
                answer,
                deadline: Instant::now() + cluster.config.call_timeout(),
            },
        );
        // The answer may have come before the waiter was there.
        cluster.mine_waiting.notify_one();
        match answered.await {
            Ok(answer) => answer,
            Err(_) => Err(Error::unavailable("the replica is shutting down")),
        }
    }

    /// Fails the calls whose owner did not answer in time, withdrawing those not taken.
    pub async fn expire(&self, cluster: &Cluster) {
        let now = Instant::now();
        let late: Vec<(i64, Waiting)> = {
            let mut waiting = self.waiting.lock().expect("calls poisoned");
            let ids: Vec<i64> = waiting
                .iter()
                .filter(|(_, waiting)| waiting.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| waiting.remove(&id).map(|waiting| (id, waiting)))
                .collect()
        };
        if late.is_empty() {
            return;
        }
        let ids: Vec<i64> = late.iter().map(|(id, _)| *id).collect();
        let withdrawn: Vec<i64> = cluster
            .query(
                "cannot withdraw calls",
                "DELETE FROM replica_calls WHERE id = ANY($1) RETURNING id",
                &[&ids],
            )
            .await
            .map(|rows| rows.iter().map(|row| row.get(0)).collect())
            .unwrap_or_default();
        for (id, waiting) in late {
            let message = if withdrawn.contains(&id) {
                "no replica took the call in time (the tenant's owner may be down); it was withdrawn: retry"
            } else {
                "the tenant's replica took the call but did not answer in time; its outcome is unknown"
            };
            let _ = waiting.answer.send(Err(Error::unavailable(message)));
        }
    }

    /// Takes the waiting calls for tenants owned here and runs each on its actor.
    pub async fn take_for_owned(&self, cluster: &Cluster) {
        let owned = cluster.leases.owned();
        if owned.is_empty() {
            return;
        }
        let Ok(mut rows) = cluster
            .query(
                "cannot take calls",
                "DELETE FROM replica_calls WHERE id IN ( \
                   SELECT id FROM replica_calls WHERE tenant_id = ANY($1) \
                   ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, tenant_id, sender, call",
                &[&owned, &TAKE_LIMIT],
            )
            .await
        else {
            return;
        };
        if rows.len() as i64 == TAKE_LIMIT {
            cluster.calls_waiting.notify_one();
        }
        rows.sort_by_key(|row| row.get::<_, i64>(0));
        for row in rows {
            let (id, tenant, sender, text): (i64, TenantId, ReplicaId, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let cluster = cluster.arc();
            cluster.clone().tasks.spawn(async move {
                let answer = match serde_json::from_str::<Call>(&text) {
                    Ok(call) => cluster.engine().call(tenant, call).await,
                    Err(error) => Err(Error::internal(format!("cannot decode a call: {error}"))),
                };
                answer_call(&cluster, id, sender, answer).await;
            });
        }
    }

    /// Takes the answers addressed to this replica's waiting calls.
    pub async fn take_replies(&self, cluster: &Cluster) {
        let ids: Vec<i64> = {
            let waiting = self.waiting.lock().expect("calls poisoned");
            waiting.keys().copied().collect()
        };
        if ids.is_empty() {
            return;
        }
        let Ok(rows) = cluster
            .query(
                "cannot read answers",
                "DELETE FROM replica_replies WHERE call_id = ANY($1) RETURNING call_id, reply",
                &[&ids],
            )
            .await
        else {
            return;
        };
        for row in rows {
            let (id, text): (i64, String) = (row.get(0), row.get(1));
            let answer = serde_json::from_str::<Result<Reply>>(&text).unwrap_or_else(|error| {
                Err(Error::internal(format!("cannot decode an answer: {error}")))
            });
            let waiting = self.waiting.lock().expect("calls poisoned").remove(&id);
            if let Some(waiting) = waiting {
                let _ = waiting.answer.send(answer);
            }
        }
    }
}

/// Stores the answer to a call for its sender and wakes it.
async fn answer_call(cluster: &Cluster, id: i64, sender: ReplicaId, answer: Result<Reply>) {
    let text = serde_json::to_string(&answer).unwrap_or_else(|error| {
        serde_json::to_string(&Result::<Reply>::Err(Error::internal(format!(
            "cannot encode an answer: {error}"
        ))))
        .expect("an error encodes")
    });
    cluster
        .write_patiently(
            "cannot store an answer",
            "WITH reply AS ( \
               INSERT INTO replica_replies (call_id, sender, reply) VALUES ($1, $2, $3) \
               ON CONFLICT (call_id) DO NOTHING) \
             SELECT pg_notify($4, 'reply')",
            &[&id, &sender, &text, &replica_channel(sender)],
        )
        .await;
}
