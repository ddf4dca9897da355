//! The engine on a real SQLite store, through its public handle.

mod failures;
mod recovery;
mod reload;
mod slots;

use std::sync::Arc;
use std::time::Duration;

use adze_core::TenantId;
use adze_core::slots::SlotUnits;
use adze_core::workflow::{TaskSpec, WorkflowSpec};
use adze_engine::{Assignment, Engine, EngineConfig, TriggerRequest, WorkerRegistration};
use adze_store::sqlite::SqliteStore;
use tokio::sync::mpsc::UnboundedReceiver;

pub async fn engine_in(dir: &std::path::Path) -> Engine {
    let store = SqliteStore::open(dir).unwrap();
    Engine::start(Arc::new(store), EngineConfig::default())
        .await
        .unwrap()
}

pub fn workflow(name: &str) -> WorkflowSpec {
    WorkflowSpec {
        name: name.into(),
        description: String::new(),
        version: String::new(),
        event_triggers: vec![],
        tasks: vec![TaskSpec::new("only", format!("{name}:only"))],
        on_failure: None,
    }
}

pub fn trigger(name: &str) -> TriggerRequest {
    TriggerRequest {
        workflow_name: name.into(),
        input: "{}".into(),
        additional_metadata: String::new(),
    }
}

pub async fn connect_worker(
    engine: &Engine,
    tenant: TenantId,
    slots: u32,
    action: &str,
) -> (uuid::Uuid, UnboundedReceiver<Assignment>) {
    let registration = WorkerRegistration {
        name: "test-worker".into(),
        actions: vec![action.into()],
        capacity: SlotUnits::from([("default".into(), slots)]),
    };
    let worker = engine.register_worker(tenant, registration).await.unwrap();
    let stream = engine.listen(tenant, worker).await.unwrap();
    (worker, stream)
}

/// The next assignment, failing the test rather than hanging if none comes.
pub async fn next(stream: &mut UnboundedReceiver<Assignment>) -> Assignment {
    tokio::time::timeout(Duration::from_secs(10), stream.recv())
        .await
        .expect("no assignment within 10 s")
        .expect("stream closed")
}

/// Whether an assignment arrives within a short wait (used to show that none does).
pub async fn arrives_soon(stream: &mut UnboundedReceiver<Assignment>) -> bool {
    tokio::time::timeout(Duration::from_millis(300), stream.recv())
        .await
        .is_ok()
}
