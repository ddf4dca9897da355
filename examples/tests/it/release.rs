//! The release example on a one-slot worker: with the release, the second run starts
//! after the first releases and before it finishes; without, only after it finishes.

use std::time::{Duration, Instant};

use adze_examples::release::{self, Phase, Shape, UserCreated};
use tokio::sync::mpsc;

use crate::lite::Lite;

const HEAVY: Duration = Duration::from_millis(300);
const LIGHT: Duration = Duration::from_secs(3);

#[derive(Debug)]
struct Step {
    run: String,
    phase: Phase,
    at: Instant,
}

/// Pushes two `user:create` events to a one-slot worker and returns every phase seen.
async fn two_runs(release: bool) -> Vec<Step> {
    let lite = Lite::start();
    let client = lite.client("release").await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let observer: release::Observer = std::sync::Arc::new(move |run: &str, phase, at| {
        let _ = tx.send(Step {
            run: run.to_string(),
            phase,
            at,
        });
    });
    let shape = Shape {
        heavy: HEAVY,
        light: LIGHT,
        release,
    };
    let (workflow, _) = release::workflow(shape, observer);
    let worker = client
        .worker("release-worker")
        .slots(1)
        .workflow(&workflow)
        .start()
        .await
        .expect("starting the worker");
    for user in ["ada", "grace"] {
        let payload = UserCreated { user: user.into() };
        client
            .push_event(release::EVENT, &payload)
            .await
            .expect("pushing user:create");
    }
    let mut steps = Vec::new();
    let collect = async {
        while steps
            .iter()
            .filter(|s: &&Step| s.phase == Phase::Finished)
            .count()
            < 2
        {
            steps.push(rx.recv().await.expect("the observer lives"));
        }
    };
    if tokio::time::timeout(Duration::from_secs(90), collect)
        .await
        .is_err()
    {
        panic!("two runs did not finish; seen {steps:?}\n{}", lite.log());
    }
    worker.shutdown().await;
    steps
}

fn at(steps: &[Step], run: &str, phase: Phase) -> Instant {
    steps
        .iter()
        .find(|s| s.run == run && s.phase == phase)
        .unwrap_or_else(|| panic!("run {run} never reached {phase:?}: {steps:?}"))
        .at
}

fn runs_in_start_order(steps: &[Step]) -> (String, String) {
    let mut started = steps.iter().filter(|s| s.phase == Phase::Started);
    let first = started.next().expect("a first run").run.clone();
    let second = started.next().expect("a second run").run.clone();
    (first, second)
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_release_the_next_run_starts_during_the_light_part() {
    let steps = two_runs(true).await;
    let (first, second) = runs_in_start_order(&steps);
    let second_start = at(&steps, &second, Phase::Started);
    assert!(
        second_start >= at(&steps, &first, Phase::Releasing),
        "one slot: the second run started before the first released it: {steps:?}"
    );
    assert!(
        second_start < at(&steps, &first, Phase::Finished),
        "the second run should start while the first is in its light part: {steps:?}"
    );
    println!(
        "release to next start: {:?}",
        second_start - at(&steps, &first, Phase::Releasing)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_release_runs_on_one_slot_never_overlap() {
    let steps = two_runs(false).await;
    let (first, second) = runs_in_start_order(&steps);
    assert!(
        at(&steps, &second, Phase::Started) >= at(&steps, &first, Phase::Finished),
        "one slot, no release: the runs overlapped: {steps:?}"
    );
}
