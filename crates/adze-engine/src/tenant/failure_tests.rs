//! When things go wrong, driven directly with time as an input: retry backoff, schedule
//! timeouts, cancellation, replay and on-failure tasks.

use std::time::Duration;

use adze_core::TaskId;
use adze_core::state::{RunStatus, TaskStatus};
use adze_core::workflow::TaskSpec;
use adze_store::{Mutation, Store};
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use super::tests::{
    Worker, one_running_task, report, settle, state_with, status, task, trigger, worker,
    workflow_spec,
};
use super::{ReplayTarget, RunSnapshot, State};
use crate::{AssignmentKind, EngineConfig, TaskEvent, TaskEventKind, TaskFilter, TriggerRequest};

fn fail(state: &mut State, w: &Worker, task: TaskId, retryable: bool) {
    report(
        state,
        w.id,
        task,
        TaskEventKind::Failed {
            error: "boom".into(),
            retryable,
        },
    );
}

fn complete(state: &mut State, w: &Worker, task: TaskId) {
    report(
        state,
        w.id,
        task,
        TaskEventKind::Completed("{\"ok\":1}".into()),
    );
}

fn with_backoff(retries: u32) -> TaskSpec {
    TaskSpec {
        backoff_factor: Some(2.0),
        backoff_max_seconds: Some(60),
        ..task("a", &[], retries)
    }
}

/// A receiver of the run's final snapshot, answered when it finishes.
fn wait_for(
    state: &mut State,
    run: Uuid,
) -> oneshot::Receiver<adze_core::Result<Option<RunSnapshot>>> {
    let (reply, answer) = oneshot::channel();
    state.waiters.entry(run).or_default().push(reply);
    answer
}

fn finished(answer: &mut oneshot::Receiver<adze_core::Result<Option<RunSnapshot>>>) -> RunSnapshot {
    answer
        .try_recv()
        .expect("the run has finished")
        .unwrap()
        .unwrap()
}

fn starts(w: &mut Worker) -> Vec<(TaskId, u32)> {
    w.received()
        .into_iter()
        .filter(|sent| sent.kind == AssignmentKind::Start)
        .map(|sent| (sent.task_id, sent.attempt))
        .collect()
}

#[test]
fn a_retry_waits_out_its_backoff_before_it_joins_the_queue() {
    let mut state = state_with(vec![with_backoff(3)]);
    state.config.heartbeat_timeout = Duration::from_secs(3600);
    let mut w = worker(&mut state, 1, &["wf:a"]);
    trigger(&mut state, 1);
    let a = w.received()[0].task_id;

    let failed_at = Instant::now();
    fail(&mut state, &w, a, true);
    assert_eq!(status(&state, a), TaskStatus::Queued);
    assert_eq!(state.tasks[&a].record.attempt, 1);
    assert!(starts(&mut w).is_empty(), "retry 1 waits 2^1 s");
    state.fire_timers(failed_at + Duration::from_millis(1_900));
    settle(&mut state);
    assert!(starts(&mut w).is_empty(), "not yet");
    state.fire_timers(Instant::now() + Duration::from_millis(2_100));
    settle(&mut state);
    assert_eq!(starts(&mut w), vec![(a, 1)]);

    // The second retry waits 2^2 s, and the store knows until when.
    let failed_at = Instant::now();
    let before = crate::clock::now_millis();
    fail(&mut state, &w, a, true);
    let queued_at = state.tasks[&a].record.queued_at.unwrap();
    assert!(
        queued_at >= before + 4_000,
        "queued_at is when the backoff ends"
    );
    state.fire_timers(failed_at + Duration::from_millis(3_900));
    settle(&mut state);
    assert!(starts(&mut w).is_empty());
    state.fire_timers(Instant::now() + Duration::from_millis(4_100));
    settle(&mut state);
    assert_eq!(starts(&mut w), vec![(a, 2)]);
}

#[test]
fn a_non_retryable_failure_is_final_at_once() {
    let mut state = state_with(vec![task("a", &[], 3)]);
    let mut w = worker(&mut state, 1, &["wf:a"]);
    let run = trigger(&mut state, 1)[0];
    let mut answer = wait_for(&mut state, run);
    let a = w.received()[0].task_id;
    fail(&mut state, &w, a, false);
    let snapshot = finished(&mut answer);
    assert_eq!(snapshot.status(), RunStatus::Failed);
    assert_eq!(snapshot.tasks[0].attempt, 0, "no retry was made");
    assert!(starts(&mut w).is_empty());
}

#[test]
fn a_task_no_worker_takes_fails_at_its_schedule_timeout() {
    let mut state = state_with(vec![task("a", &[], 0)]);
    let run = trigger(&mut state, 1)[0];
    let mut answer = wait_for(&mut state, run);
    let queued_at = Instant::now();
    state.fire_timers(queued_at + Duration::from_secs(299));
    settle(&mut state);
    assert!(answer.try_recv().is_err(), "5 min have not passed");
    state.fire_timers(Instant::now() + Duration::from_secs(301));
    settle(&mut state);
    let snapshot = finished(&mut answer);
    assert_eq!(snapshot.status(), RunStatus::Failed);
    let error = snapshot.tasks[0].error.as_deref().unwrap();
    assert!(error.contains("schedule timeout of 5m"), "{error}");
    assert!(state.queues.values().all(|queue| queue.is_empty()));
}

/// The paused clock moves only when told: the retry's own schedule timeout counts from
/// the moment the first one fired, not from a time the test jumped to.
#[tokio::test(start_paused = true)]
async fn a_schedule_timeout_is_retried_by_policy() {
    let mut state = state_with(vec![task("a", &[], 1)]);
    state.config.heartbeat_timeout = Duration::from_secs(3600);
    trigger(&mut state, 1);
    tokio::time::advance(Duration::from_secs(301)).await;
    state.fire_timers(Instant::now());
    settle(&mut state);
    let (&a, task) = state.tasks.iter().next().unwrap();
    assert_eq!(
        (task.record.status, task.record.attempt),
        (TaskStatus::Queued, 1)
    );
    let mut w = worker(&mut state, 1, &["wf:a"]);
    assert_eq!(starts(&mut w), vec![(a, 1)], "the retry is in the queue");
}

#[test]
fn one_timer_watches_the_schedule_timeouts_of_a_whole_queue() {
    let mut state = state_with(vec![TaskSpec {
        timeout_ms: 3_600_000,
        ..task("a", &[], 0)
    }]);
    state.config.heartbeat_timeout = Duration::from_secs(3600);
    trigger(&mut state, 100);
    let schedule_timers = state
        .timers
        .iter()
        .filter(|std::cmp::Reverse((_, timer))| matches!(timer, super::timers::Timer::Schedule(_)))
        .count();
    assert_eq!(schedule_timers, 1);

    // Two are assigned in time; the queue's check must leave them alone.
    let mut w = worker(&mut state, 2, &["wf:a"]);
    let assigned: Vec<TaskId> = w.received().iter().map(|sent| sent.task_id).collect();
    state.fire_timers(Instant::now() + Duration::from_secs(301));
    settle(&mut state);
    assert_eq!(state.runs.len(), 2, "the 98 still queued timed out");
    for task in assigned {
        assert_eq!(status(&state, task), TaskStatus::Assigned);
    }
}

#[test]
fn a_cancelled_queued_task_leaves_its_queue() {
    let mut state = state_with(vec![task("a", &[], 0)]);
    let mut w = worker(&mut state, 1, &["wf:a"]);
    let runs = trigger(&mut state, 2);
    let first = w.received()[0].task_id;
    let mut answer = wait_for(&mut state, runs[1]);
    let cancelled = state.cancel(&[runs[1]], None);
    settle(&mut state);
    assert_eq!(cancelled.len(), 1);
    let snapshot = finished(&mut answer);
    assert_eq!(snapshot.status(), RunStatus::Cancelled);
    assert_eq!(snapshot.tasks[0].error.as_deref(), Some("task cancelled"));
    complete(&mut state, &w, first);
    assert!(
        w.received().is_empty(),
        "the cancelled task is never assigned"
    );
}

#[test]
fn a_cancelled_released_task_gets_the_cancel_on_its_worker() {
    let (mut state, mut w, a) = one_running_task(0);
    state.release_slot(a).unwrap();
    settle(&mut state);
    let run = state.tasks[&a].record.run_id;
    let mut answer = wait_for(&mut state, run);
    assert_eq!(state.cancel(&[a], None), vec![a]);
    settle(&mut state);
    let sent = w.received();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].kind, sent[0].task_id), (AssignmentKind::Cancel, a));
    assert_eq!(finished(&mut answer).status(), RunStatus::Cancelled);
    assert!(
        state.workers[&w.id].tasks.is_empty(),
        "no longer the worker's"
    );
}

#[test]
fn cancelling_a_running_task_frees_its_slot_for_the_next() {
    let (mut state, mut w, a) = one_running_task(0);
    let next = trigger(&mut state, 1)[0];
    assert!(w.received().is_empty(), "the slot is taken");
    state.cancel(&[a], None);
    settle(&mut state);
    let sent = w.received();
    let kinds: Vec<_> = sent.iter().map(|sent| sent.kind).collect();
    assert_eq!(kinds, vec![AssignmentKind::Cancel, AssignmentKind::Start]);
    assert_eq!(sent[1].run_id, next);
}

#[test]
fn cancelling_a_finished_task_is_a_no_op() {
    let (mut state, w, a) = one_running_task(0);
    complete(&mut state, &w, a);
    assert!(state.cancel(&[a], None).is_empty());
    assert!(settle(&mut state).is_empty(), "nothing to write");
}

#[test]
fn children_of_a_cancelled_task_never_start() {
    let mut state = state_with(vec![task("a", &[], 0), task("b", &["a"], 0)]);
    let mut w = worker(&mut state, 2, &["wf:a", "wf:b"]);
    let run = trigger(&mut state, 1)[0];
    let mut answer = wait_for(&mut state, run);
    let a = w.received()[0].task_id;
    state.cancel(&[a], None);
    settle(&mut state);
    let snapshot = finished(&mut answer);
    assert_eq!(snapshot.tasks[1].status, TaskStatus::Cancelled);
    let why = snapshot.tasks[1].error.as_deref().unwrap();
    assert!(why.contains("ancestor task was cancelled (a)"), "{why}");
    assert!(starts(&mut w).is_empty());
}

#[test]
fn a_filter_cancels_only_what_it_matches() {
    let mut state = state_with(vec![task("a", &[], 0)]);
    let requests = ["x", "y"]
        .iter()
        .map(|team| TriggerRequest {
            workflow_name: "wf".into(),
            input: "{}".into(),
            additional_metadata: format!("{{\"team\":\"{team}\"}}"),
        })
        .collect();
    let runs = state.trigger(requests).unwrap();
    settle(&mut state);
    let running_only = TaskFilter {
        statuses: vec![RunStatus::Running],
        ..TaskFilter::default()
    };
    assert!(
        state.cancel(&[], Some(&running_only)).is_empty(),
        "both are queued"
    );
    let later = TaskFilter {
        since: Some(crate::clock::now_millis() + 60_000),
        ..TaskFilter::default()
    };
    assert!(state.cancel(&[], Some(&later)).is_empty());
    let team_x = TaskFilter {
        additional_metadata: vec![("team".into(), "x".into())],
        statuses: vec![RunStatus::Queued],
        ..TaskFilter::default()
    };
    let cancelled = state.cancel(&[], Some(&team_x));
    settle(&mut state);
    assert_eq!(cancelled.len(), 1);
    assert!(!state.runs.contains_key(&runs[0]), "team x's run is done");
    assert!(state.runs.contains_key(&runs[1]));
}

#[test]
fn replay_runs_a_finished_task_and_its_descendants_again() {
    let mut state = state_with(vec![task("a", &[], 2), task("b", &["a"], 0)]);
    let mut w = worker(&mut state, 2, &["wf:a", "wf:b"]);
    let run = trigger(&mut state, 1)[0];
    let mut answer = wait_for(&mut state, run);
    let a = w.received()[0].task_id;
    complete(&mut state, &w, a);
    let b = w.received()[0].task_id;
    complete(&mut state, &w, b);
    let stored = finished(&mut answer);
    assert!(state.runs.is_empty());

    let target = ReplayTarget { run, task: Some(a) };
    let asked = state.replay(&[target], Vec::new());
    assert_eq!(asked.missing, vec![run], "a finished run must be given");
    let replayed = state.replay(&[target], vec![stored]);
    let mutations = settle(&mut state);
    assert_eq!(replayed.tasks, vec![a, b]);
    assert!(
        mutations
            .iter()
            .any(|m| matches!(m, Mutation::ReopenRun { run_id } if *run_id == run))
    );
    let sent = w.received();
    assert_eq!((sent.len(), sent[0].task_id, sent[0].attempt), (1, a, 1));
    let payload: serde_json::Value = serde_json::from_str(&sent[0].payload).unwrap();
    assert_eq!(payload["input"]["i"], 0, "the same input");
    assert_eq!(
        status(&state, b),
        TaskStatus::Pending,
        "b waits for a again"
    );
    assert_eq!(
        state.tasks[&a].record.retries_from, 1,
        "a fresh retry count"
    );

    let mut answer = wait_for(&mut state, run);
    complete(&mut state, &w, a);
    assert_eq!(starts(&mut w), vec![(b, 1)]);
    complete(&mut state, &w, b);
    assert_eq!(finished(&mut answer).status(), RunStatus::Completed);
}

#[tokio::test(start_paused = true)]
async fn a_replay_gets_fresh_retries_and_starts_its_backoff_over() {
    let mut state = state_with(vec![with_backoff(1)]);
    state.config.heartbeat_timeout = Duration::from_secs(3600);
    let mut w = worker(&mut state, 1, &["wf:a"]);
    let run = trigger(&mut state, 1)[0];
    let a = w.received()[0].task_id;
    fail(&mut state, &w, a, true);
    tokio::time::advance(Duration::from_secs(2)).await;
    state.fire_timers(Instant::now());
    settle(&mut state);
    assert_eq!(starts(&mut w), vec![(a, 1)]);
    let mut answer = wait_for(&mut state, run);
    fail(&mut state, &w, a, true);
    let stored = finished(&mut answer);
    assert_eq!(stored.status(), RunStatus::Failed, "its one retry is used");

    let target = ReplayTarget { run, task: None };
    state.replay(&[target], vec![stored]);
    settle(&mut state);
    assert_eq!(starts(&mut w), vec![(a, 2)]);
    fail(&mut state, &w, a, true);
    assert_eq!(
        (status(&state, a), state.tasks[&a].record.attempt),
        (TaskStatus::Queued, 3),
        "the replay's own retry"
    );
    tokio::time::advance(Duration::from_millis(1_900)).await;
    state.fire_timers(Instant::now());
    settle(&mut state);
    assert!(starts(&mut w).is_empty());
    tokio::time::advance(Duration::from_millis(200)).await;
    state.fire_timers(Instant::now());
    settle(&mut state);
    assert_eq!(
        starts(&mut w),
        vec![(a, 3)],
        "2^1 s after the failure, not 2^3"
    );
}

#[test]
fn replaying_an_unfinished_task_changes_nothing() {
    let (mut state, _w, a) = one_running_task(0);
    let run = state.tasks[&a].record.run_id;
    let replayed = state.replay(&[ReplayTarget { run, task: Some(a) }], Vec::new());
    assert!(replayed.tasks.is_empty() && replayed.missing.is_empty());
    assert_eq!(status(&state, a), TaskStatus::Running);
}

fn with_on_failure() -> State {
    let mut state = state_with(vec![task("a", &[], 0)]);
    let version = state.latest["wf"].record.clone();
    let mut spec = version.spec.clone();
    spec.on_failure = Some(TaskSpec::new("cleanup", "wf:cleanup"));
    state.versions.clear();
    state.latest.clear();
    state.add_version(adze_store::WorkflowVersionRecord { spec, ..version });
    state
}

#[test]
fn the_on_failure_task_runs_once_with_the_errors_and_the_run_stays_failed() {
    let mut state = with_on_failure();
    let mut w = worker(&mut state, 2, &["wf:a", "wf:cleanup"]);
    let run = trigger(&mut state, 1)[0];
    let a = w.received()[0].task_id;
    let mut answer = wait_for(&mut state, run);
    fail(&mut state, &w, a, true);
    let sent = w.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].task_name, "cleanup");
    let payload: serde_json::Value = serde_json::from_str(&sent[0].payload).unwrap();
    assert_eq!(payload["step_run_errors"]["a"], "boom");
    assert!(
        answer.try_recv().is_err(),
        "the run waits for its on-failure task"
    );
    assert_eq!(state.snapshot(run).unwrap().status(), RunStatus::Running);

    complete(&mut state, &w, sent[0].task_id);
    let snapshot = finished(&mut answer);
    assert_eq!(snapshot.status(), RunStatus::Failed);
    assert_eq!(snapshot.tasks.len(), 2);
    assert_eq!(snapshot.tasks[1].status, TaskStatus::Completed);
}

#[test]
fn a_run_that_succeeds_never_creates_its_on_failure_task() {
    let mut state = with_on_failure();
    let mut w = worker(&mut state, 2, &["wf:a", "wf:cleanup"]);
    let run = trigger(&mut state, 1)[0];
    let mut answer = wait_for(&mut state, run);
    let a = w.received()[0].task_id;
    complete(&mut state, &w, a);
    let snapshot = finished(&mut answer);
    assert_eq!(snapshot.status(), RunStatus::Completed);
    assert_eq!(snapshot.tasks.len(), 1);
    assert!(w.received().is_empty());
}

/// The backoff's end is in the store: after a restart the retry waits only the rest.
#[tokio::test]
async fn a_backoff_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = adze_store::sqlite::SqliteStore::open(dir.path()).unwrap();
    let tenant = Uuid::new_v4();
    let spec = workflow_spec(vec![TaskSpec {
        backoff_factor: Some(10.0),
        ..task("a", &[], 1)
    }]);
    let version = store.put_workflow(tenant, spec).await.unwrap().version;
    let config = EngineConfig {
        heartbeat_timeout: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    let mut state = State::new(tenant, config.clone());
    state.add_version(version);
    let mut w = worker(&mut state, 1, &["wf:a"]);
    let run_request = TriggerRequest {
        workflow_name: "wf".into(),
        input: "{}".into(),
        additional_metadata: String::new(),
    };
    state.trigger(vec![run_request]).unwrap();
    let mut mutations = settle(&mut state);
    let a = w.received()[0].task_id;
    state
        .task_event(TaskEvent {
            worker_id: w.id,
            task_id: a,
            attempt: None,
            kind: TaskEventKind::Failed {
                error: "boom".into(),
                retryable: true,
            },
        })
        .unwrap();
    mutations.extend(settle(&mut state));
    store.commit(mutations).await.unwrap();

    let mut recovered = super::recovery::load(tenant, &store, config).await.unwrap();
    let task = &recovered.tasks[&a];
    assert_eq!(
        (task.record.status, task.record.attempt),
        (TaskStatus::Queued, 1)
    );
    assert!(task.ready_at.is_some(), "still in its backoff");
    let mut w = worker(&mut recovered, 1, &["wf:a"]);
    assert!(starts(&mut w).is_empty());
    recovered.fire_timers(Instant::now() + Duration::from_secs(8));
    settle(&mut recovered);
    assert!(
        starts(&mut w).is_empty(),
        "10 s have not passed since the failure"
    );
    recovered.fire_timers(Instant::now() + Duration::from_secs(11));
    settle(&mut recovered);
    assert_eq!(starts(&mut w), vec![(a, 1)]);
}
