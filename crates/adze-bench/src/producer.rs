//! The producer: starts runs by trigger or by event, at a fixed rate or as fast as the
//! engine accepts them, and times every acknowledgement.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adze_proto::v0::{BulkPushEventRequest, BulkTriggerWorkflowRequest, PushEventRequest};
use adze_proto::v1::TriggerWorkflowRequest;
use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::connection::{Clients, Target};
use crate::workload::Shape;

/// How runs are started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// `WorkflowService/TriggerWorkflow` (`BulkTriggerWorkflow` for batches).
    Trigger,
    /// `EventsService/Push` (`BulkPush` for batches) of the workflow's event key.
    Event,
}

/// How fast and in what units.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub count: u64,
    /// Runs per second; `None` is as fast as possible.
    pub rate: Option<f64>,
    /// Runs per call.
    pub batch: usize,
    /// Connections the producer spreads its calls over.
    pub connections: usize,
    /// Calls in flight at most (as fast as possible: also the number of call loops).
    pub in_flight: usize,
    pub via: Via,
}

/// What producing took.
pub struct Produced {
    pub accepted: u64,
    pub elapsed: Duration,
    /// Acknowledgement latency of each call, in µs.
    pub ack_micros: Vec<u32>,
}

struct Shared {
    shape: Shape,
    via: Via,
    acks: Mutex<Vec<u32>>,
}

pub async fn produce(target: &Target, shape: &Shape, plan: &Plan) -> anyhow::Result<Produced> {
    let mut connections = Vec::new();
    for _ in 0..plan.connections.max(1) {
        connections.push(target.connect().await?);
    }
    let shared = Arc::new(Shared {
        shape: shape.clone(),
        via: plan.via,
        acks: Mutex::new(Vec::new()),
    });
    let batch = plan.batch.max(1) as u64;
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(plan.in_flight.max(1)));
    let mut calls = JoinSet::new();
    let mut next = 0u64;
    let mut call = 0usize;
    while next < plan.count {
        // At a rate, a run is due at start + id / rate; send what is due, in batches.
        let due = match plan.rate {
            Some(rate) => {
                let due = ((started.elapsed().as_secs_f64() * rate) as u64 + 1).min(plan.count);
                if due <= next {
                    let wait = Duration::from_secs_f64((next as f64) / rate)
                        .saturating_sub(started.elapsed());
                    tokio::time::sleep(wait.max(Duration::from_micros(200))).await;
                    continue;
                }
                due
            }
            None => plan.count,
        };
        while next < due {
            let end = (next + batch).min(due);
            let permit = permits.clone().acquire_owned().await?;
            let clients = connections[call % connections.len()].clone();
            call += 1;
            let shared = shared.clone();
            let ids = next..end;
            calls.spawn(async move {
                let result = send(clients, &shared, ids).await;
                drop(permit);
                result
            });
            next = end;
            while let Some(done) = calls.try_join_next() {
                done.context("a producer call panicked")??;
            }
        }
    }
    while let Some(done) = calls.join_next().await {
        done.context("a producer call panicked")??;
    }
    let elapsed = started.elapsed();
    let ack_micros = std::mem::take(&mut *shared.acks.lock().expect("producer lock"));
    Ok(Produced {
        accepted: plan.count,
        elapsed,
        ack_micros,
    })
}

/// Starts the runs `ids` in one call, stamped just before it is sent.
async fn send(
    mut clients: Clients,
    shared: &Shared,
    ids: std::ops::Range<u64>,
) -> anyhow::Result<()> {
    let shape = &shared.shape;
    let single = ids.end - ids.start == 1;
    let sent = Instant::now();
    match shared.via {
        Via::Trigger => {
            let requests: Vec<TriggerWorkflowRequest> = ids
                .map(|id| TriggerWorkflowRequest {
                    name: shape.workflow.clone(),
                    input: shape.input(id),
                    additional_metadata: Some("{}".into()),
                    child_index: Some(0),
                    ..Default::default()
                })
                .collect();
            if single {
                let request = requests.into_iter().next().expect("one request");
                clients.workflows.trigger_workflow(request).await?;
            } else {
                clients
                    .workflows
                    .bulk_trigger_workflow(BulkTriggerWorkflowRequest {
                        workflows: requests,
                    })
                    .await?;
            }
        }
        Via::Event => {
            let events: Vec<PushEventRequest> = ids
                .map(|id| PushEventRequest {
                    key: shape.event_key.clone(),
                    payload: shape.input(id),
                    additional_metadata: Some("{}".into()),
                    ..Default::default()
                })
                .collect();
            if single {
                let event = events.into_iter().next().expect("one event");
                clients.events.push(event).await?;
            } else {
                clients
                    .events
                    .bulk_push(BulkPushEventRequest { events })
                    .await?;
            }
        }
    }
    let micros = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
    shared.acks.lock().expect("producer lock").push(micros);
    Ok(())
}
