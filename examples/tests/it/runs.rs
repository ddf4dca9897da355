//! Triggering, waiting and reading runs: DAG outputs, failures, retries, bulk, details.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use adze_examples::dag::{self, DagInput, Doubled, FromParent};
use adze_sdk::{
    Client, Context, Empty, Error, RunRef, RunStatus, Task, TaskError, TriggerOptions, Workflow,
};
use serde_json::json;

use crate::lite::{Lite, serve, serve_all};

#[tokio::test(flavor = "multi_thread")]
async fn dag_outputs_reach_the_child_and_the_client() {
    let lite = Lite::start();
    let client = lite.client("dag").await;
    let dag = dag::workflow();
    let worker = serve(&client, &dag.workflow).await;

    let run = client
        .trigger(&dag.workflow, &DagInput { n: 21 })
        .await
        .unwrap();
    let output = client.wait(&run).await.unwrap();
    assert_eq!(output.get(&dag.parent).unwrap(), Doubled { doubled: 42 });
    assert_eq!(
        output.get(&dag.child).unwrap(),
        FromParent {
            from_parent: 42,
            plus_one: 43
        }
    );

    let details = client.run_details(&run).await.unwrap();
    assert_eq!(details.status, RunStatus::Completed);
    assert!(details.done);
    assert_eq!(details.input, json!({ "n": 21 }));
    assert_eq!(
        details.tasks["child"].output,
        Some(json!({ "from_parent": 42, "plus_one": 43 }))
    );
    worker.shutdown().await;
}

/// A one-task workflow whose body is `body`.
fn single<O, F, Fut>(
    name: &str,
    task: impl FnOnce(Task<Empty, O>) -> Task<Empty, O>,
    body: F,
) -> Workflow<Empty>
where
    O: serde::Serialize + 'static,
    F: Fn(Empty, Context) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<O, TaskError>> + Send + 'static,
{
    let mut workflow = Workflow::<Empty>::new(name);
    workflow.add(task(Task::new(name, body)));
    workflow
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_retried_by_policy_and_reach_the_client_with_their_message() {
    let lite = Lite::start();
    let client = lite.client("fail").await;
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = attempts.clone();
    let flaky = single(
        "flaky",
        |task| task.retries(1),
        move |_, ctx: Context| {
            seen.fetch_add(1, Ordering::SeqCst);
            async move {
                Err::<(), _>(TaskError::new(format!(
                    "boom on attempt {}",
                    ctx.retry_count()
                )))
            }
        },
    );
    let final_attempts = Arc::new(AtomicU32::new(0));
    let seen_final = final_attempts.clone();
    let fatal = single(
        "fatal",
        |task| task.retries(3),
        move |_, _| {
            seen_final.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(TaskError::non_retryable("no point retrying")) }
        },
    );
    let panics = single(
        "panics",
        |task| task,
        |_, _| async { panic!("the body panicked on purpose") as Result<(), TaskError> },
    );
    let worker = serve_all(&client, &[&flaky, &fatal, &panics]).await;

    match client.run(&flaky, &Empty {}).await {
        Err(Error::TaskFailed { task, message, .. }) => {
            assert_eq!(task, "flaky");
            assert!(message.contains("boom on attempt 1"), "{message}");
        }
        other => panic!("expected the flaky task to fail: {other:?}"),
    }
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "one attempt and one retry"
    );

    let error = client.run(&fatal, &Empty {}).await.unwrap_err();
    assert!(error.to_string().contains("no point retrying"), "{error}");
    assert_eq!(
        final_attempts.load(Ordering::SeqCst),
        1,
        "non-retryable: no retries"
    );

    let error = client.run(&panics, &Empty {}).await.unwrap_err();
    assert!(error.to_string().contains("panicked on purpose"), "{error}");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn input_that_does_not_fit_the_task_fails_it_naming_the_problem() {
    let lite = Lite::start();
    let client = lite.client("input").await;
    let dag = dag::workflow();
    let worker = serve(&client, &dag.workflow).await;
    let run = client
        .trigger_named(
            "dag",
            &json!({ "n": "not a number" }),
            TriggerOptions::default(),
        )
        .await
        .unwrap();
    let error = client.wait(&run).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("does not match the task's input type"),
        "{error}"
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_runs_metadata_logs_and_a_refreshed_timeout() {
    let lite = Lite::start();
    let client = lite.client("bulk").await;
    let echo = single(
        "echo",
        |task| task.timeout(Duration::from_secs(5)),
        |_, ctx: Context| async move {
            ctx.log("echoing the metadata").await?;
            ctx.refresh_timeout(Duration::from_secs(10)).await?;
            Ok(ctx.additional_metadata().clone())
        },
    );
    let worker = serve(&client, &echo).await;
    let runs = client
        .bulk_trigger(&echo, &[Empty {}, Empty {}, Empty {}])
        .await
        .unwrap();
    assert_eq!(runs.len(), 3);
    for result in client.wait_all(&runs).await.unwrap() {
        result.unwrap();
    }
    let metadata = serde_json::Map::from_iter([("source".to_string(), json!("test"))]);
    let run = client
        .trigger_named(
            "echo",
            &Empty {},
            TriggerOptions {
                additional_metadata: Some(metadata),
            },
        )
        .await
        .unwrap();
    let output = client.wait(&run).await.unwrap();
    assert_eq!(
        output.task::<serde_json::Value>("echo").unwrap()["source"],
        "test"
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_refusals_come_back_as_clear_errors() {
    let lite = Lite::start();
    let client = lite.client("refusals").await;
    let too_long = single(
        "too-long",
        |task| task.timeout(Duration::from_secs(2 * 366 * 24 * 3600)),
        |_, _| async { Ok(()) },
    );
    match client.worker("w").workflow(&too_long).start().await {
        Err(Error::InvalidArgument(message)) => assert!(message.contains("too-long"), "{message}"),
        Err(other) => panic!("expected an invalid-argument error, got {other:?}"),
        Ok(_) => panic!("a two-year timeout was accepted"),
    }
    let missing = client
        .run_details(&RunRef::new("00000000-0000-0000-0000-000000000000"))
        .await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    let unknown = client
        .trigger_named("no-such-workflow", &Empty {}, TriggerOptions::default())
        .await;
    assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");

    let forged = adze_sdk::Config::builder()
        .token(format!("{}x", lite.token()))
        .host_port(client.config().host_port())
        .tls(adze_sdk::TlsStrategy::None)
        .build()
        .unwrap();
    let forged = Client::connect(forged).await.unwrap();
    let refused = forged.push_event("x", &Empty {}).await;
    assert!(matches!(refused, Err(Error::Auth(_))), "{refused:?}");
}
