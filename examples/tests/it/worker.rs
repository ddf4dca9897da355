//! Worker behaviour: cancellation on timeout, releasing twice, slot types, draining on
//! shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use adze_sdk::{Context, Empty, Error, Task, TaskError, Workflow};

use crate::lite::{Lite, check_drain_pauses, serve};

/// What a task waiting for its cancellation has been through.
#[derive(Default)]
struct Seen {
    started: AtomicBool,
    cancelled: AtomicBool,
}

/// A task that runs until it is cancelled (or two minutes pass), telling `seen`.
fn until_cancelled(timeout: Duration, seen: Arc<Seen>) -> Workflow<Empty> {
    let mut workflow = Workflow::<Empty>::new("sleepy");
    workflow.add(
        Task::new("sleepy", move |_: Empty, ctx: Context| {
            let seen = seen.clone();
            async move {
                seen.started.store(true, Ordering::SeqCst);
                tokio::select! {
                    _ = ctx.cancelled() => seen.cancelled.store(true, Ordering::SeqCst),
                    _ = tokio::time::sleep(Duration::from_secs(120)) => {}
                }
                Ok::<_, TaskError>(())
            }
        })
        .timeout(timeout),
    );
    workflow
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_fires_the_tasks_cancellation_and_fails_the_run() {
    let lite = Lite::start();
    let client = lite.client("timeout").await;
    let seen = Arc::new(Seen::default());
    let workflow = until_cancelled(Duration::from_secs(1), seen.clone());
    let worker = serve(&client, &workflow).await;
    let error = client.run(&workflow, &Empty {}).await.unwrap_err();
    assert!(matches!(error, Error::TaskFailed { .. }), "{error:?}");
    println!("timeout error: {error}");
    let observed = async {
        while !seen.cancelled.load(Ordering::SeqCst) {
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
async fn a_drain_that_runs_out_of_time_cancels_the_task() {
    let lite = Lite::start();
    let client = lite.client("drainout").await;
    let seen = Arc::new(Seen::default());
    let workflow = until_cancelled(Duration::from_secs(300), seen.clone());
    let worker = client
        .worker("w")
        .workflow(&workflow)
        .drain_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    client.trigger(&workflow, &Empty {}).await.unwrap();
    // RUNNING on the engine is not yet running here: wait for the body itself.
    while !seen.started.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.shutdown().await;
    assert!(
        seen.cancelled.load(Ordering::SeqCst),
        "shutdown returned before the task saw its cancellation"
    );
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
async fn shutdown_pauses_the_worker_and_drains_the_running_task() {
    let lite = Lite::start();
    let client = lite.client("drain").await;
    check_drain_pauses(&lite, &client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_reconnects_after_the_engine_restarts() {
    let mut lite = Lite::start();
    let client = lite.client("restart").await;
    let dag = adze_examples::dag::workflow();
    let worker = serve(&client, &dag.workflow).await;
    let input = adze_examples::dag::DagInput { n: 1 };
    client.run(&dag.workflow, &input).await.unwrap();
    // A run no worker serves yet, awaited across the restart.
    let mut later = Workflow::<Empty>::new("later");
    let later_task = later.add(Task::new("later", |_: Empty, _ctx: Context| async {
        Ok::<_, TaskError>(7)
    }));
    // Registered by a worker that stops at once, so the run stays queued.
    serve(&client, &later).await.shutdown().await;
    let pending = client.trigger(&later, &Empty {}).await.unwrap();
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.wait(&pending).await }
    });

    lite.restart();
    // The client's channel reconnects too; the first calls may still find it down.
    let mut run = client.trigger(&dag.workflow, &input).await;
    for _ in 0..50 {
        match &run {
            Err(error) if error.is_transient() => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                run = client.trigger(&dag.workflow, &input).await;
            }
            _ => break,
        }
    }
    let run = run.expect("triggering after the restart");
    let output = tokio::time::timeout(Duration::from_secs(60), client.wait(&run))
        .await
        .unwrap_or_else(|_| panic!("no result after the restart\n{}", lite.log()))
        .unwrap();
    assert_eq!(output.get(&dag.child).unwrap().plus_one, 3);

    let later_worker = serve(&client, &later).await;
    let output = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the wait begun before the restart never ended\n{}",
                lite.log()
            )
        })
        .unwrap()
        .expect("the wait begun before the restart");
    assert_eq!(output.get(&later_task).unwrap(), 7);
    later_worker.shutdown().await;
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_keep_a_worker_with_a_long_task_alive() {
    // Heartbeats every 4 s against an 8 s timeout: a 12 s task outlives the timeout
    // only if they arrive.
    let lite = Lite::start_with(&["--heartbeat-timeout", "8"]);
    let client = lite.client("heartbeat").await;
    let mut workflow = Workflow::<Empty>::new("long");
    workflow.add(
        Task::new("long", |_: Empty, _ctx: Context| async {
            tokio::time::sleep(Duration::from_secs(12)).await;
            Ok::<_, TaskError>(())
        })
        .timeout(Duration::from_secs(60)),
    );
    let worker = serve(&client, &workflow).await;
    let result = client.run(&workflow, &Empty {}).await;
    assert!(result.is_ok(), "{result:?}\n{}", lite.log());
    worker.shutdown().await;
}
