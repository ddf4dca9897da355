use adze_core::state::RunStatus;
use adze_engine::{TaskEvent, TaskEventKind};
use uuid::Uuid;

use super::*;

crate::on_every_backend!(
    a_release_lets_the_next_task_start_while_the_first_runs_on,
    tenants_do_not_see_each_other,
);

async fn a_release_lets_the_next_task_start_while_the_first_runs_on(place: Place) {
    let engine = engine_on(&place).await;
    let tenant = Uuid::new_v4();
    engine
        .put_workflow(tenant, workflow("heavy"))
        .await
        .unwrap();
    let (worker, mut stream) = connect_worker(&engine, tenant, 1, "heavy:only").await;
    let runs = engine
        .trigger(tenant, vec![trigger("heavy"), trigger("heavy")])
        .await
        .unwrap();

    let first = next(&mut stream).await;
    let started = TaskEvent {
        worker_id: worker,
        task_id: first.task_id,
        attempt: Some(0),
        kind: TaskEventKind::Started,
    };
    engine.task_event(tenant, started).await.unwrap();
    assert!(
        !arrives_soon(&mut stream).await,
        "one slot: the second task waits"
    );

    engine.release_slot(tenant, first.task_id).await.unwrap();
    engine.release_slot(tenant, first.task_id).await.unwrap();
    let second = next(&mut stream).await;
    assert_ne!(second.task_id, first.task_id);

    for task in [first.task_id, second.task_id] {
        let done = TaskEvent {
            worker_id: worker,
            task_id: task,
            attempt: Some(0),
            kind: TaskEventKind::Completed("{\"ok\":1}".into()),
        };
        engine.task_event(tenant, done).await.unwrap();
    }
    for run in runs {
        let finished = engine.wait_run(tenant, run).await.unwrap();
        assert_eq!(finished.status(), RunStatus::Completed);
        assert_eq!(finished.tasks[0].output.as_deref(), Some("{\"ok\":1}"));
    }
    let history: Vec<_> = engine
        .task_history(tenant, first.task_id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.kind)
        .collect();
    assert_eq!(
        history,
        vec!["assigned", "started", "slot released", "completed"]
    );

    // A late duplicate about a finished task is harmless; an unknown task is not found.
    let late = TaskEvent {
        worker_id: worker,
        task_id: first.task_id,
        attempt: Some(0),
        kind: TaskEventKind::Started,
    };
    engine.task_event(tenant, late).await.unwrap();
    let unknown = TaskEvent {
        worker_id: worker,
        task_id: Uuid::new_v4(),
        attempt: None,
        kind: TaskEventKind::Started,
    };
    let error = engine.task_event(tenant, unknown).await.unwrap_err();
    assert_eq!(error.kind, adze_core::ErrorKind::NotFound);

    let error = engine
        .release_slot(tenant, first.task_id)
        .await
        .unwrap_err();
    assert_eq!(
        error.kind,
        adze_core::ErrorKind::FailedPrecondition,
        "{error}"
    );
    let error = engine
        .release_slot(tenant, Uuid::new_v4())
        .await
        .unwrap_err();
    assert_eq!(error.kind, adze_core::ErrorKind::NotFound, "{error}");
    engine.shutdown().await;
}

async fn tenants_do_not_see_each_other(place: Place) {
    let engine = engine_on(&place).await;
    let (owner, stranger) = (Uuid::new_v4(), Uuid::new_v4());
    engine
        .put_workflow(owner, workflow("private"))
        .await
        .unwrap();
    let run = engine
        .trigger(owner, vec![trigger("private")])
        .await
        .unwrap()[0];
    assert_eq!(
        engine.run(stranger, run).await.unwrap_err().kind,
        adze_core::ErrorKind::NotFound
    );
    let error = engine
        .trigger(stranger, vec![trigger("private")])
        .await
        .unwrap_err();
    assert_eq!(error.kind, adze_core::ErrorKind::NotFound);
    assert_eq!(
        engine.run(owner, run).await.unwrap().status(),
        RunStatus::Queued
    );
    engine.shutdown().await;
}
