//! The engine on real stores, through its public handle: every test runs on SQLite and
//! on PostgreSQL (skipping loudly when no PostgreSQL can be had).

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
use adze_store::Store;
use adze_store::postgres::{PgConfig, PgStore};
use adze_store::sqlite::SqliteStore;
use adze_testdb::TestDatabase;
use tokio::sync::mpsc::UnboundedReceiver;

/// Where a test keeps its data: a store opened again on the same place sees it all, as
/// an engine restarted after a crash would.
pub enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

impl Place {
    pub async fn store(&self) -> Arc<dyn Store> {
        match self {
            Place::Sqlite(dir) => Arc::new(SqliteStore::open(dir.path()).unwrap()),
            Place::Postgres(database) => Arc::new(
                PgStore::connect(PgConfig::new(&database.url))
                    .await
                    .unwrap(),
            ),
        }
    }
}

pub async fn engine_on(place: &Place) -> Engine {
    Engine::start(place.store().await, EngineConfig::default())
        .await
        .unwrap()
}

/// Makes each named `async fn(Place)` a test on SQLite and one on PostgreSQL.
#[macro_export]
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$test($crate::Place::Sqlite(dir)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(database) = adze_testdb::fresh_database().await else {
                        return;
                    };
                    super::$test($crate::Place::Postgres(database)).await;
                }
            )*
        }
    };
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
