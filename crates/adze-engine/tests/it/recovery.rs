use adze_core::state::RunStatus;
use adze_engine::{TaskEvent, TaskEventKind};
use uuid::Uuid;

use super::*;

crate::on_every_backend!(accepted_runs_survive_a_crash);

/// An engine that stops without shutting down (as after SIGKILL) loses no accepted run:
/// a second engine on the same place finds every run and completes it.
async fn accepted_runs_survive_a_crash(place: Place) {
    let tenant = Uuid::new_v4();
    let runs = {
        let crashed = engine_on(&place).await;
        crashed
            .put_workflow(tenant, workflow("durable"))
            .await
            .unwrap();
        let runs = crashed
            .trigger(tenant, (0..5).map(|_| trigger("durable")).collect())
            .await
            .unwrap();
        // A worker takes one run and dies with the engine.
        let (_, mut stream) = connect_worker(&crashed, tenant, 1, "durable:only").await;
        next(&mut stream).await;
        runs
    };

    let engine = engine_on(&place).await;
    let (worker, mut stream) = connect_worker(&engine, tenant, 10, "durable:only").await;
    let mut started = Vec::new();
    for _ in 0..4 {
        started.push(next(&mut stream).await.task_id);
    }
    for task in started {
        let done = TaskEvent {
            worker_id: worker,
            task_id: task,
            attempt: None,
            kind: TaskEventKind::Completed("{}".into()),
        };
        engine.task_event(tenant, done).await.unwrap();
    }
    let mut completed = 0;
    for run in &runs {
        let snapshot = engine.run(tenant, *run).await.unwrap();
        if snapshot.status() == RunStatus::Completed {
            completed += 1;
        } else {
            assert_eq!(
                snapshot.status(),
                RunStatus::Running,
                "the dead worker's run waits for it to return"
            );
        }
    }
    assert_eq!(completed, 4);
    engine.shutdown().await;
}
