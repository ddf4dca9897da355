use adze_core::ErrorKind;
use adze_core::state::{RunStatus, TaskStatus};
use adze_engine::{AssignmentKind, TaskEvent, TaskEventKind};
use uuid::Uuid;

use super::*;

crate::on_every_backend!(
    a_replayed_run_is_reopened_in_the_store_and_runs_again,
    cancel_reaches_the_worker_and_unknown_ids_are_not_found,
);

fn report(worker: Uuid, task: Uuid, kind: TaskEventKind) -> TaskEvent {
    TaskEvent {
        worker_id: worker,
        task_id: task,
        attempt: None,
        kind,
    }
}

/// Replay of a finished run goes through the store (a finished run leaves the actor's
/// memory), reopens the run there so a restart finds it, and runs a new attempt.
async fn a_replayed_run_is_reopened_in_the_store_and_runs_again(place: Place) {
    let tenant = Uuid::new_v4();
    let engine = engine_on(&place).await;
    engine
        .put_workflow(tenant, workflow("again"))
        .await
        .unwrap();
    let run = engine
        .trigger(tenant, vec![trigger("again")])
        .await
        .unwrap()[0];
    let (worker, mut stream) = connect_worker(&engine, tenant, 1, "again:only").await;
    let task = next(&mut stream).await.task_id;
    let failed = TaskEventKind::Failed {
        error: "boom".into(),
        retryable: true,
    };
    engine
        .task_event(tenant, report(worker, task, failed))
        .await
        .unwrap();
    assert_eq!(
        engine.wait_run(tenant, run).await.unwrap().status(),
        RunStatus::Failed
    );
    engine.shutdown().await;

    // No worker listens here: the replayed task stays queued through the restart.
    let engine = engine_on(&place).await;
    assert_eq!(
        engine.replay_tasks(tenant, vec![run]).await.unwrap(),
        vec![task]
    );
    engine.shutdown().await;

    let engine = engine_on(&place).await;
    let snapshot = engine.run(tenant, run).await.unwrap();
    assert_eq!(snapshot.run.finished_at, None, "reopened in the store");
    assert_eq!(snapshot.tasks[0].status, TaskStatus::Queued);
    let (worker, mut stream) = connect_worker(&engine, tenant, 1, "again:only").await;
    let again = next(&mut stream).await;
    assert_eq!((again.task_id, again.attempt), (task, 1), "a new attempt");
    let done = TaskEventKind::Completed("{}".into());
    engine
        .task_event(tenant, report(worker, task, done))
        .await
        .unwrap();
    assert_eq!(
        engine.wait_run(tenant, run).await.unwrap().status(),
        RunStatus::Completed
    );
    engine.shutdown().await;
}

async fn cancel_reaches_the_worker_and_unknown_ids_are_not_found(place: Place) {
    let engine = engine_on(&place).await;
    let tenant = Uuid::new_v4();
    engine.put_workflow(tenant, workflow("stop")).await.unwrap();
    let (_, mut stream) = connect_worker(&engine, tenant, 1, "stop:only").await;
    let run = engine.trigger(tenant, vec![trigger("stop")]).await.unwrap()[0];
    let task = next(&mut stream).await.task_id;

    let error = engine
        .cancel_tasks(tenant, vec![run, Uuid::new_v4()], None)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert!(
        error.message.contains("externalIds[1]"),
        "{}",
        error.message
    );

    assert_eq!(
        engine.cancel_tasks(tenant, vec![run], None).await.unwrap(),
        vec![task]
    );
    let cancel = next(&mut stream).await;
    assert_eq!(
        (cancel.kind, cancel.task_id),
        (AssignmentKind::Cancel, task)
    );
    let finished = engine.wait_run(tenant, run).await.unwrap();
    assert_eq!(finished.status(), RunStatus::Cancelled);
    assert!(
        engine
            .cancel_tasks(tenant, vec![task], None)
            .await
            .unwrap()
            .is_empty(),
        "cancelling a finished task is a no-op"
    );
    let other_tenant = engine.cancel_tasks(Uuid::new_v4(), vec![run], None).await;
    assert_eq!(other_tenant.unwrap_err().kind, ErrorKind::NotFound);
    engine.shutdown().await;
}
