//! The tenant state machine driven directly: commands in, state and assignments out.
//! Time is an input (`fire_timers(now)`), so liveness is tested without sleeping; the
//! batch's effects are run as if the store had committed it.

use std::time::Duration;

use adze_core::slots::SlotUnits;
use adze_core::state::TaskStatus;
use adze_core::workflow::{TaskSpec, WorkflowSpec};
use adze_core::{TaskId, WorkerId};
use adze_store::{Mutation, WorkflowVersionRecord};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Outcome, State};
use crate::{
    Assignment, EngineConfig, TaskEvent, TaskEventKind, TriggerRequest, WorkerRegistration,
};

pub(super) fn task(name: &str, parents: &[&str], retries: u32) -> TaskSpec {
    TaskSpec {
        parents: parents.iter().map(|p| p.to_string()).collect(),
        retries,
        ..TaskSpec::new(name, format!("wf:{name}"))
    }
}

pub(super) fn workflow_spec(tasks: Vec<TaskSpec>) -> WorkflowSpec {
    WorkflowSpec {
        name: "wf".into(),
        description: String::new(),
        version: String::new(),
        event_triggers: vec!["user:*".into()],
        tasks,
        on_failure: None,
    }
}

pub(super) fn state_with(tasks: Vec<TaskSpec>) -> State {
    let mut state = State::new(Uuid::new_v4(), EngineConfig::default());
    state.add_version(WorkflowVersionRecord {
        id: Uuid::new_v4(),
        workflow_id: Uuid::new_v4(),
        tenant_id: state.tenant,
        number: 1,
        spec: workflow_spec(tasks),
        created_at: 0,
    });
    state
}

pub(super) struct Worker {
    pub(super) id: WorkerId,
    stream: mpsc::UnboundedReceiver<Assignment>,
}

impl Worker {
    /// The tasks sent to this worker since the last look.
    pub(super) fn received(&mut self) -> Vec<Assignment> {
        std::iter::from_fn(|| self.stream.try_recv().ok()).collect()
    }
}

pub(super) fn worker(state: &mut State, slots: u32, actions: &[&str]) -> Worker {
    let id = state
        .register_worker(WorkerRegistration {
            name: "w".into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            capacity: SlotUnits::from([("default".into(), slots)]),
        })
        .unwrap();
    let (sender, stream) = mpsc::unbounded_channel();
    state.listen(id, sender).unwrap();
    settle(state);
    Worker { id, stream }
}

/// One actor turn: schedule, then commit the batch (run its effects as committed).
pub(super) fn settle(state: &mut State) -> Vec<Mutation> {
    state.schedule();
    let batch = std::mem::take(&mut state.batch);
    for effect in batch.effects {
        effect(Ok(()));
    }
    batch.mutations
}

pub(super) fn trigger(state: &mut State, count: usize) -> Vec<uuid::Uuid> {
    let requests = (0..count)
        .map(|i| TriggerRequest {
            workflow_name: "wf".into(),
            input: format!("{{\"i\":{i}}}"),
            additional_metadata: String::new(),
        })
        .collect();
    let runs = state.trigger(requests).unwrap();
    settle(state);
    runs
}

pub(super) fn report(
    state: &mut State,
    worker: WorkerId,
    task: TaskId,
    kind: TaskEventKind,
) -> Outcome {
    let outcome = state
        .task_event(TaskEvent {
            worker_id: worker,
            task_id: task,
            attempt: None,
            kind,
        })
        .unwrap();
    settle(state);
    outcome
}

pub(super) fn status(state: &State, task: TaskId) -> TaskStatus {
    state.tasks[&task].record.status
}

#[test]
fn a_full_worker_gets_nothing_until_a_slot_is_released() {
    let mut state = state_with(vec![task("heavy", &[], 0)]);
    let mut w = worker(&mut state, 1, &["wf:heavy"]);
    trigger(&mut state, 2);
    let first = w.received();
    assert_eq!(first.len(), 1, "one slot, one task");
    let first = first[0].task_id;
    report(&mut state, w.id, first, TaskEventKind::Started);
    assert!(w.received().is_empty());

    assert_eq!(state.release_slot(first).unwrap(), Outcome::Done);
    let mutations = settle(&mut state);
    let second = w.received();
    assert_eq!(
        second.len(),
        1,
        "the release lets the next task start in the same turn"
    );
    assert!(
        mutations
            .iter()
            .any(|m| matches!(m, Mutation::History(h) if h.kind == "slot released"))
    );

    // The released task is still running and still the worker's.
    assert_eq!(status(&state, first), TaskStatus::Running);
    assert!(state.workers[&w.id].tasks.contains(&first));
    assert_eq!(
        state.release_slot(first).unwrap(),
        Outcome::Done,
        "a second release is a no-op"
    );
    assert_eq!(
        state.workers[&w.id].pool.used_units("default"),
        1,
        "the no-op gave nothing back twice"
    );

    // Completing the released task must not give its units back a second time.
    report(
        &mut state,
        w.id,
        first,
        TaskEventKind::Completed("{}".into()),
    );
    assert_eq!(state.workers[&w.id].pool.used_units("default"), 1);
    assert!(
        state.release_slot(Uuid::new_v4()).unwrap() == Outcome::NotLive,
        "unknown tasks are not live"
    );
}

#[test]
fn releasing_a_finished_task_is_an_error() {
    let mut state = state_with(vec![task("a", &[], 0), task("b", &["a"], 0)]);
    let mut w = worker(&mut state, 1, &["wf:a", "wf:b"]);
    trigger(&mut state, 1);
    let a = w.received()[0].task_id;
    report(
        &mut state,
        w.id,
        a,
        TaskEventKind::Completed("{\"x\":1}".into()),
    );
    let error = state.release_slot(a).unwrap_err();
    assert_eq!(error.kind, adze_core::ErrorKind::FailedPrecondition);
    assert!(error.message.contains("finished"));
}

#[test]
fn children_start_after_parents_with_their_outputs() {
    let mut state = state_with(vec![task("a", &[], 0), task("b", &["a"], 0)]);
    let mut w = worker(&mut state, 4, &["wf:a", "wf:b"]);
    trigger(&mut state, 1);
    let sent = w.received();
    assert_eq!(sent.len(), 1, "only the root is queued");
    report(
        &mut state,
        w.id,
        sent[0].task_id,
        TaskEventKind::Completed("{\"x\":41}".into()),
    );
    let child = w.received();
    assert_eq!(child.len(), 1);
    let payload: serde_json::Value = serde_json::from_str(&child[0].payload).unwrap();
    assert_eq!(payload["parents"]["a"]["x"], 41);
    assert_eq!(payload["input"]["i"], 0);
}

#[test]
fn a_failed_parent_cancels_its_descendants_and_fails_the_run() {
    let mut state = state_with(vec![
        task("a", &[], 0),
        task("b", &["a"], 0),
        task("c", &["b"], 0),
    ]);
    let mut w = worker(&mut state, 4, &["wf:a", "wf:b", "wf:c"]);
    let run = trigger(&mut state, 1)[0];
    let (reply, mut answer) = tokio::sync::oneshot::channel();
    state.waiters.entry(run).or_default().push(reply);
    let a = w.received()[0].task_id;
    report(
        &mut state,
        w.id,
        a,
        TaskEventKind::Failed {
            error: "boom".into(),
            retryable: true,
        },
    );
    let snapshot = answer.try_recv().unwrap().unwrap().unwrap();
    assert_eq!(snapshot.status(), adze_core::state::RunStatus::Failed);
    let statuses: Vec<_> = snapshot.tasks.iter().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        vec![
            TaskStatus::Failed,
            TaskStatus::Cancelled,
            TaskStatus::Cancelled
        ]
    );
    assert!(state.runs.is_empty(), "a finished run leaves memory");
}

#[test]
fn duplicates_and_stale_attempts_change_nothing() {
    let mut state = state_with(vec![task("a", &[], 1)]);
    let mut w = worker(&mut state, 1, &["wf:a"]);
    trigger(&mut state, 1);
    let a = w.received()[0].task_id;
    report(&mut state, w.id, a, TaskEventKind::Started);
    report(&mut state, w.id, a, TaskEventKind::Started);
    assert_eq!(status(&state, a), TaskStatus::Running);
    report(
        &mut state,
        w.id,
        a,
        TaskEventKind::Failed {
            error: "first".into(),
            retryable: true,
        },
    );
    let retry = w.received();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempt, 1, "the retry is a new attempt");
    // A late report for attempt 0 is ignored.
    let stale = TaskEvent {
        worker_id: w.id,
        task_id: a,
        attempt: Some(0),
        kind: TaskEventKind::Completed("{}".into()),
    };
    state.task_event(stale).unwrap();
    assert_eq!(status(&state, a), TaskStatus::Assigned);
    // Another worker cannot complete it either.
    let other = TaskEvent {
        worker_id: Uuid::new_v4(),
        task_id: a,
        attempt: None,
        kind: TaskEventKind::Completed("{}".into()),
    };
    state.task_event(other).unwrap();
    assert_eq!(status(&state, a), TaskStatus::Assigned);
}

#[test]
fn a_lost_worker_fails_its_released_task_with_a_clear_error() {
    let mut state = state_with(vec![task("a", &[], 0)]);
    let mut w = worker(&mut state, 1, &["wf:a"]);
    trigger(&mut state, 1);
    let a = w.received()[0].task_id;
    report(&mut state, w.id, a, TaskEventKind::Started);
    state.release_slot(a).unwrap();
    settle(&mut state);

    state.fire_timers(Instant::now() + Duration::from_secs(10));
    assert!(
        state.workers.contains_key(&w.id),
        "heartbeats are not late yet"
    );
    state.fire_timers(
        Instant::now() + EngineConfig::default().heartbeat_timeout + Duration::from_secs(1),
    );
    let mutations = settle(&mut state);
    assert!(!state.workers.contains_key(&w.id));
    let failed = mutations
        .iter()
        .rev()
        .find_map(|m| match m {
            Mutation::SaveTask(task) if task.id == a => Some(task.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(failed.status, TaskStatus::Failed);
    assert!(failed.error.unwrap().contains("worker lost"));
}

#[test]
fn a_lost_worker_s_tasks_are_retried_elsewhere_when_the_policy_allows() {
    let mut state = state_with(vec![task("a", &[], 2)]);
    let mut lost = worker(&mut state, 1, &["wf:a"]);
    trigger(&mut state, 1);
    let a = lost.received()[0].task_id;
    report(&mut state, lost.id, a, TaskEventKind::Started);
    // Its stream closes and does not come back within the grace.
    let generation = state.workers[&lost.id].stream.as_ref().unwrap().0;
    state.listen_closed(lost.id, generation);
    let mut other = worker(&mut state, 1, &["wf:a"]);
    state.fire_timers(
        Instant::now() + EngineConfig::default().listen_grace + Duration::from_millis(10),
    );
    settle(&mut state);
    let retried = other.received();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].task_id, retried[0].attempt), (a, 1));
}

#[test]
fn a_worker_that_reconnects_in_time_keeps_its_tasks() {
    let mut state = state_with(vec![task("a", &[], 0)]);
    let mut w = worker(&mut state, 1, &["wf:a"]);
    let generation = state.workers[&w.id].stream.as_ref().unwrap().0;
    state.listen_closed(w.id, generation);
    trigger(&mut state, 1);
    assert!(
        w.received().is_empty(),
        "no work for a worker without a stream"
    );
    let (sender, stream) = mpsc::unbounded_channel();
    state.listen(w.id, sender).unwrap();
    w.stream = stream;
    settle(&mut state);
    assert_eq!(w.received().len(), 1);
    state.fire_timers(
        Instant::now() + EngineConfig::default().listen_grace + Duration::from_secs(1),
    );
    assert!(state.workers.contains_key(&w.id));
}

#[test]
fn queues_are_first_in_first_out() {
    let mut state = state_with(vec![task("a", &[], 0)]);
    trigger(&mut state, 5);
    let mut w = worker(&mut state, 1, &["wf:a"]);
    let mut order = Vec::new();
    for _ in 0..5 {
        let sent = w.received();
        assert_eq!(sent.len(), 1);
        let payload: serde_json::Value = serde_json::from_str(&sent[0].payload).unwrap();
        order.push(payload["input"]["i"].as_i64().unwrap());
        report(
            &mut state,
            w.id,
            sent[0].task_id,
            TaskEventKind::Completed("{}".into()),
        );
    }
    assert_eq!(order, vec![0, 1, 2, 3, 4]);
}

#[test]
fn paused_workers_get_no_new_work() {
    let mut state = state_with(vec![task("a", &[], 0)]);
    let mut w = worker(&mut state, 2, &["wf:a"]);
    state.set_paused(w.id, true).unwrap();
    trigger(&mut state, 1);
    assert!(w.received().is_empty());
    state.set_paused(w.id, false).unwrap();
    settle(&mut state);
    assert_eq!(w.received().len(), 1);
}

#[test]
fn events_start_matching_workflows_and_bad_input_is_refused() {
    let mut state = state_with(vec![task("a", &[], 0)]);
    let event = |key: &str, payload: &str| crate::NewEvent {
        key: key.into(),
        payload: payload.into(),
        additional_metadata: String::new(),
        scope: None,
    };
    state
        .push_events(vec![
            event("user:create", "{\"id\":7}"),
            event("order:create", "{}"),
        ])
        .unwrap();
    assert_eq!(state.runs.len(), 1, "only user:* matches");
    let error = state
        .push_events(vec![event("user:create", "[1]")])
        .unwrap_err();
    assert!(error.message.contains("payload must be a JSON object"));
    let bad = TriggerRequest {
        workflow_name: "wf".into(),
        input: "3".into(),
        additional_metadata: String::new(),
    };
    let good = TriggerRequest {
        workflow_name: "wf".into(),
        input: "{}".into(),
        additional_metadata: String::new(),
    };
    let error = state.trigger(vec![good, bad]).unwrap_err();
    assert!(error.message.contains("workflows[1].input"));
    assert_eq!(
        state.runs.len(),
        1,
        "a bulk trigger with one bad request starts nothing"
    );
    let unknown = TriggerRequest {
        workflow_name: "nope".into(),
        input: "{}".into(),
        additional_metadata: String::new(),
    };
    assert_eq!(
        state.trigger(vec![unknown]).unwrap_err().kind,
        adze_core::ErrorKind::NotFound
    );
}

/// One workflow of one task `a`, a one-slot worker, and a run of it started there.
/// Heartbeats are not the subject of the tests that use it: the worker stays alive.
pub(super) fn one_running_task(retries: u32) -> (State, Worker, TaskId) {
    let mut state = state_with(vec![task("a", &[], retries)]);
    state.config.heartbeat_timeout = Duration::from_secs(3600);
    let mut w = worker(&mut state, 1, &["wf:a"]);
    trigger(&mut state, 1);
    let a = w.received()[0].task_id;
    report(&mut state, w.id, a, TaskEventKind::Started);
    (state, w, a)
}

#[test]
fn a_released_task_still_times_out_and_its_worker_gets_the_cancel() {
    let (mut state, mut w, a) = one_running_task(0);
    state.release_slot(a).unwrap();
    settle(&mut state);
    let timeout = Duration::from_secs(60);

    state.fire_timers(Instant::now() + timeout - Duration::from_secs(1));
    settle(&mut state);
    assert!(w.received().is_empty(), "not due yet");
    state.fire_timers(Instant::now() + timeout + Duration::from_secs(1));
    settle(&mut state);
    let sent = w.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].kind, sent[0].task_id),
        (crate::AssignmentKind::Cancel, a)
    );
    assert!(state.runs.is_empty(), "the run failed and finished");
}

#[test]
fn refresh_moves_the_deadline_and_a_timeout_is_retried_by_policy() {
    let (mut state, mut w, a) = one_running_task(1);
    state
        .refresh_timeout(a, Duration::from_secs(30))
        .unwrap()
        .unwrap();
    settle(&mut state);

    state.fire_timers(Instant::now() + Duration::from_secs(61));
    settle(&mut state);
    assert!(
        w.received().is_empty(),
        "the refresh moved the deadline to 90 s"
    );
    state.fire_timers(Instant::now() + Duration::from_secs(91));
    settle(&mut state);
    let sent = w.received();
    let kinds: Vec<_> = sent.iter().map(|a| (a.kind, a.attempt)).collect();
    assert_eq!(
        kinds,
        vec![
            (crate::AssignmentKind::Cancel, 0),
            (crate::AssignmentKind::Start, 1)
        ],
        "cancel the timed-out attempt, then start the retry"
    );
    assert!(
        state.tasks[&a]
            .record
            .error
            .as_deref()
            .unwrap()
            .contains("execution timeout of 1m")
    );
}
