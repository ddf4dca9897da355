//! Two replicas in one process on one real PostgreSQL database: a worker on one, a
//! client on the other, and a clean hand-over of the tenant.

use std::sync::Arc;
use std::time::Duration;

use adze_cluster::{Cluster, ClusterConfig};
use adze_core::TenantId;
use adze_core::slots::SlotUnits;
use adze_core::state::TaskStatus;
use adze_core::workflow::{TaskSpec, WorkflowSpec};
use adze_engine::placement::Placement;
use adze_engine::{
    Assignment, AssignmentKind, Engine, EngineConfig, TaskEvent, TaskEventKind, TriggerRequest,
    WorkerRegistration,
};
use adze_store::postgres::{PgConfig, PgStore};
use tokio::sync::mpsc::UnboundedReceiver;

const LEASE: Duration = Duration::from_secs(2);

struct Replica {
    engine: Engine,
    cluster: Arc<Cluster>,
}

async fn replica(url: &str) -> Replica {
    let store = PgStore::connect(PgConfig::new(url)).await.unwrap();
    let cluster = Cluster::new(
        store.pool().clone(),
        ClusterConfig {
            database_url: url.into(),
            lease_ttl: LEASE,
        },
    );
    let engine = Engine::replica(Arc::new(store), EngineConfig::default(), cluster.clone());
    cluster.start(engine.clone()).await.unwrap();
    Replica { engine, cluster }
}

fn workflow() -> WorkflowSpec {
    WorkflowSpec {
        name: "crossing".into(),
        description: String::new(),
        version: String::new(),
        event_triggers: vec![],
        tasks: vec![TaskSpec::new("only", "crossing:only")],
        on_failure: None,
    }
}

fn trigger(n: u32) -> TriggerRequest {
    TriggerRequest {
        workflow_name: "crossing".into(),
        input: format!("{{\"n\": {n}}}"),
        additional_metadata: String::new(),
    }
}

async fn worker_on(
    replica: &Replica,
    tenant: TenantId,
) -> (uuid::Uuid, UnboundedReceiver<Assignment>) {
    let registration = WorkerRegistration {
        name: "w".into(),
        actions: vec!["crossing:only".into()],
        capacity: SlotUnits::from([("default".into(), 4)]),
    };
    let worker = replica
        .engine
        .register_worker(tenant, registration)
        .await
        .unwrap();
    let stream = replica.engine.listen(tenant, worker).await.unwrap();
    (worker, stream)
}

async fn next(stream: &mut UnboundedReceiver<Assignment>) -> Option<Assignment> {
    tokio::time::timeout(Duration::from_secs(20), stream.recv())
        .await
        .expect("no assignment within 20 s")
}

async fn complete(
    replica: &Replica,
    tenant: TenantId,
    worker: uuid::Uuid,
    assignment: &Assignment,
) {
    for kind in [
        TaskEventKind::Started,
        TaskEventKind::Completed("{\"ok\": true}".into()),
    ] {
        let event = TaskEvent {
            worker_id: worker,
            task_id: assignment.task_id,
            attempt: Some(assignment.attempt),
            kind,
        };
        replica.engine.task_event(tenant, event).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_one_replica_serves_a_client_on_another_and_survives_a_hand_over() {
    let Some(database) = adze_testdb::fresh_database().await else {
        return;
    };
    let tenant = uuid::Uuid::new_v4();
    let a = replica(&database.url).await;
    let b = replica(&database.url).await;

    // The first call for the tenant reaches A: A owns it from now on.
    a.engine.put_workflow(tenant, workflow()).await.unwrap();
    assert!(a.cluster.is_local(tenant).await.unwrap());
    assert!(!b.cluster.is_local(tenant).await.unwrap());

    // The worker is on B, the client on B too: every call crosses to A and back.
    let (worker, mut stream) = worker_on(&b, tenant).await;
    let run = b.engine.trigger(tenant, vec![trigger(1)]).await.unwrap()[0];
    let assignment = next(&mut stream).await.expect("the stream stays open");
    assert_eq!(assignment.kind, AssignmentKind::Start);
    assert_eq!(assignment.run_id, run);
    complete(&b, tenant, worker, &assignment).await;
    let done = b.engine.wait_run(tenant, run).await.unwrap();
    assert_eq!(done.tasks[0].status, TaskStatus::Completed);

    // A stops cleanly and gives up its lease: B takes the tenant within a tick, ends the
    // stream it held for A, and the worker, listening again, is served by B itself.
    a.engine.shutdown().await;
    a.cluster.stop().await;
    let second = b.engine.trigger(tenant, vec![trigger(2)]).await.unwrap()[0];
    assert!(b.cluster.is_local(tenant).await.unwrap());
    while stream.recv().await.is_some() {}
    let mut stream = b.engine.listen(tenant, worker).await.unwrap();
    let assignment = next(&mut stream).await.expect("the new stream stays open");
    assert_eq!(assignment.run_id, second);
    complete(&b, tenant, worker, &assignment).await;
    let done = b.engine.wait_run(tenant, second).await.unwrap();
    assert_eq!(done.tasks[0].status, TaskStatus::Completed);
    b.engine.shutdown().await;
    b.cluster.stop().await;
}
