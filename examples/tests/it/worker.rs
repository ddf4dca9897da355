//! Worker behaviour: cancellation on timeout, releasing twice, slot types, draining on
//! shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use adze_sdk::{Context, Empty, Error, RunStatus, Task, TaskError, Workflow};
use tokio::sync::mpsc;

use crate::lite::Lite;

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_fires_the_tasks_cancellation_and_fails_the_run() {
    let lite = Lite::start();
    let client = lite.client("timeout").await;
    let noticed = Arc::new(AtomicBool::new(false));
    let flag = noticed.clone();
    let mut workflow = Workflow::<Empty>::new("sleepy");
    workflow.add(
        Task::new("sleepy", move |_: Empty, ctx: Context| {
            let flag = flag.clone();
            async move {
                tokio::select! {
                    _ = ctx.cancelled() => flag.store(true, Ordering::SeqCst),
                    _ = tokio::time::sleep(Duration::from_secs(120)) => {}
                }
                Ok::<_, TaskError>(())
            }
        })
        .timeout(Duration::from_secs(1)),
    );
    let worker = client
        .worker("w")
        .workflow(&workflow)
        .start()
        .await
        .unwrap();
    let error = client.run(&workflow, &Empty {}).await.unwrap_err();
    assert!(matches!(error, Error::TaskFailed { .. }), "{error:?}");
    println!("timeout error: {error}");
    let observed = async {
        while !noticed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(30), observed)
            .await
            .is_ok(),
        "the task never saw its cancellation\n{}",
        lite.log()
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn releasing_twice_is_harmless_and_slot_types_are_honoured() {
    let lite = Lite::start();
    let client = lite.client("twice").await;
    let mut workflow = Workflow::<Empty>::new("gpu-job");
    let job = workflow.add(
        Task::new("job", |_: Empty, ctx: Context| async move {
            ctx.release_slot().await?;
            ctx.release_slot().await?;
            Ok::<_, TaskError>("released twice".to_string())
        })
        .slot_request("gpu", 1),
    );
    let worker = client
        .worker("gpu-worker")
        .slot_type("gpu", 1)
        .workflow(&workflow)
        .start()
        .await
        .unwrap();
    let output = client.run(&workflow, &Empty {}).await.unwrap();
    assert_eq!(output.get(&job).unwrap(), "released twice");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_drains_the_running_task_and_takes_no_more_work() {
    let lite = Lite::start();
    let client = lite.client("drain").await;
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let mut workflow = Workflow::<Empty>::new("slow");
    let slow = workflow.add(Task::new("slow", move |_: Empty, _ctx: Context| {
        let started_tx = started_tx.clone();
        async move {
            let _ = started_tx.send(());
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Ok::<_, TaskError>("finished while draining".to_string())
        }
    }));
    let worker = client
        .worker("w")
        .workflow(&workflow)
        .start()
        .await
        .unwrap();
    let run = client.trigger(&workflow, &Empty {}).await.unwrap();
    started.recv().await.expect("the task started");
    worker.shutdown().await;

    let details = client.run_details(&run).await.unwrap();
    assert_eq!(details.status, RunStatus::Completed, "{details:?}");
    let output = client.wait(&run).await.unwrap();
    assert_eq!(output.get(&slow).unwrap(), "finished while draining");

    let later = client.trigger(&workflow, &Empty {}).await.unwrap();
    let details = client.run_details(&later).await.unwrap();
    assert_eq!(
        details.status,
        RunStatus::Queued,
        "a stopped worker took work: {details:?}"
    );
    assert!(
        started.try_recv().is_err(),
        "the stopped worker started another task"
    );
}
