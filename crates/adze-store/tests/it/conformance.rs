//! The `Store` contract as tests. Each function takes a fresh, empty store; a backend's
//! test module calls every one of them (see `sqlite.rs`, `postgres.rs`).

use std::sync::Arc;

use adze_core::slots::default_requests;
use adze_core::state::{RunStatus, TaskStatus};
use adze_core::workflow::{TaskSpec, WorkflowSpec};
use adze_store::*;
use uuid::Uuid;

pub fn spec(name: &str, tasks: &[&str]) -> WorkflowSpec {
    WorkflowSpec {
        name: name.into(),
        description: String::new(),
        version: String::new(),
        event_triggers: vec![],
        tasks: tasks
            .iter()
            .map(|task| TaskSpec::new(*task, format!("{name}:{task}")))
            .collect(),
        on_failure: None,
    }
}

pub fn run_record(tenant: Uuid, version: Uuid) -> RunRecord {
    RunRecord {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        workflow_version_id: version,
        input: "{}".into(),
        additional_metadata: "{}".into(),
        event_id: None,
        created_at: 1,
        status: RunStatus::Queued,
        finished_at: None,
    }
}

pub fn task_record(run: &RunRecord, position: u32, status: TaskStatus) -> TaskRecord {
    TaskRecord {
        id: Uuid::now_v7(),
        run_id: run.id,
        tenant_id: run.tenant_id,
        position,
        name: format!("t{position}"),
        status,
        attempt: 0,
        worker_id: None,
        released: false,
        queued_seq: i64::from(position),
        output: None,
        error: None,
        created_at: 1,
        started_at: None,
        finished_at: None,
        queued_at: None,
        retries_from: 0,
    }
}

/// A new tenant with a one-task workflow and a (not yet stored) run of it.
pub async fn new_run(store: &dyn Store) -> (Uuid, RunRecord) {
    let tenant = Uuid::new_v4();
    let version = store
        .put_workflow(tenant, spec("wf", &["a"]))
        .await
        .unwrap()
        .version;
    (tenant, run_record(tenant, version.id))
}

pub async fn same_spec_is_a_no_op_and_a_change_is_a_new_version(store: Arc<dyn Store>) {
    let tenant = Uuid::new_v4();
    let first = store
        .put_workflow(tenant, spec("wf", &["a"]))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.version.number, 1);
    let again = store
        .put_workflow(tenant, spec("wf", &["a"]))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.version.id, first.version.id);
    let changed = store
        .put_workflow(tenant, spec("wf", &["a", "b"]))
        .await
        .unwrap();
    assert!(changed.created);
    assert_eq!(changed.version.number, 2);
    assert_eq!(changed.version.workflow_id, first.version.workflow_id);
    let other_tenant = store
        .put_workflow(Uuid::new_v4(), spec("wf", &["a"]))
        .await
        .unwrap();
    assert_eq!(
        other_tenant.version.number, 1,
        "tenants do not share workflows"
    );
    assert_eq!(store.workflow_versions(tenant).await.unwrap().len(), 2);
}

pub async fn unfinished_runs_are_recovered_and_finished_ones_are_not(store: Arc<dyn Store>) {
    let tenant = Uuid::new_v4();
    let version = store
        .put_workflow(tenant, spec("wf", &["a", "b"]))
        .await
        .unwrap()
        .version;
    let open = run_record(tenant, version.id);
    let done = run_record(tenant, version.id);
    let mut mutations = vec![
        Mutation::InsertRun(open.clone()),
        Mutation::InsertRun(done.clone()),
    ];
    for run in [&open, &done] {
        mutations.push(Mutation::SaveTask(task_record(run, 1, TaskStatus::Pending)));
        mutations.push(Mutation::SaveTask(task_record(run, 0, TaskStatus::Queued)));
    }
    mutations.push(Mutation::FinishRun {
        run_id: done.id,
        status: RunStatus::Completed,
        finished_at: 5,
    });
    store.commit(mutations).await.unwrap();

    assert_eq!(store.tenants_to_recover().await.unwrap(), vec![tenant]);
    let snapshot = store.load_tenant(tenant).await.unwrap();
    assert_eq!(
        snapshot.runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![open.id]
    );
    assert_eq!(snapshot.tasks.len(), 2);
    assert!(snapshot.tasks.iter().all(|task| task.run_id == open.id));
    assert_eq!(snapshot.workflows.len(), 1);

    let (run, tasks) = store.run(tenant, done.id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.finished_at, Some(5));
    assert_eq!(
        tasks.iter().map(|t| t.position).collect::<Vec<_>>(),
        vec![0, 1],
        "tasks in spec order"
    );
    assert!(
        store.run(Uuid::new_v4(), done.id).await.unwrap().is_none(),
        "another tenant sees nothing"
    );
}

/// A replay reopens a finished run: recovery must load it again, with the retry timing
/// of its tasks.
pub async fn a_reopened_run_is_recovered_with_its_retry_timing(store: Arc<dyn Store>) {
    let (tenant, run) = new_run(store.as_ref()).await;
    let mut task = task_record(&run, 0, TaskStatus::Completed);
    store
        .commit(vec![
            Mutation::InsertRun(run.clone()),
            Mutation::SaveTask(task.clone()),
            Mutation::FinishRun {
                run_id: run.id,
                status: RunStatus::Completed,
                finished_at: 5,
            },
        ])
        .await
        .unwrap();
    assert!(store.load_tenant(tenant).await.unwrap().runs.is_empty());

    task.status = TaskStatus::Queued;
    task.attempt = 1;
    task.retries_from = 1;
    task.queued_at = Some(1_000_000);
    store
        .commit(vec![
            Mutation::ReopenRun { run_id: run.id },
            Mutation::SaveTask(task.clone()),
        ])
        .await
        .unwrap();
    let snapshot = store.load_tenant(tenant).await.unwrap();
    assert_eq!(snapshot.runs.len(), 1);
    assert_eq!(snapshot.runs[0].finished_at, None);
    assert_eq!(snapshot.tasks, vec![task]);
}

pub async fn a_saved_task_replaces_the_old_row(store: Arc<dyn Store>) {
    let (tenant, run) = new_run(store.as_ref()).await;
    let mut task = task_record(&run, 0, TaskStatus::Queued);
    store
        .commit(vec![
            Mutation::InsertRun(run.clone()),
            Mutation::SaveTask(task.clone()),
        ])
        .await
        .unwrap();
    task.status = TaskStatus::Completed;
    task.output = Some("{\"ok\":true}".into());
    task.released = true;
    task.worker_id = Some(Uuid::new_v4());
    store
        .commit(vec![Mutation::SaveTask(task.clone())])
        .await
        .unwrap();
    assert_eq!(
        store.task(tenant, task.id).await.unwrap(),
        Some(task.clone())
    );
    assert_eq!(store.task(Uuid::new_v4(), task.id).await.unwrap(), None);
}

pub async fn history_keeps_its_order(store: Arc<dyn Store>) {
    let (tenant, run) = new_run(store.as_ref()).await;
    let task = task_record(&run, 0, TaskStatus::Running);
    let entry = |kind: &str| {
        Mutation::History(HistoryRecord {
            task_id: task.id,
            attempt: 0,
            at: 1,
            kind: kind.into(),
            worker_id: None,
            detail: None,
        })
    };
    store
        .commit(vec![
            Mutation::InsertRun(run.clone()),
            Mutation::SaveTask(task.clone()),
            entry("assigned"),
            entry("started"),
            entry("slot released"),
        ])
        .await
        .unwrap();
    let kinds: Vec<_> = store
        .task_history(tenant, task.id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.kind)
        .collect();
    assert_eq!(kinds, vec!["assigned", "started", "slot released"]);
    assert!(
        store
            .task_history(Uuid::new_v4(), task.id)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn tokens_can_be_found_and_revoked(store: Arc<dyn Store>) {
    let token = TokenRecord {
        id: Uuid::new_v4(),
        tenant_id: Uuid::new_v4(),
        created_at: 1,
        expires_at: 2,
        revoked_at: None,
    };
    store
        .commit(vec![Mutation::InsertToken(token.clone())])
        .await
        .unwrap();
    assert_eq!(
        store.find_token(token.id).await.unwrap(),
        Some(token.clone())
    );
    store
        .commit(vec![Mutation::RevokeToken {
            token_id: token.id,
            at: 9,
        }])
        .await
        .unwrap();
    assert_eq!(
        store
            .find_token(token.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(9)
    );
    assert_eq!(store.find_token(Uuid::new_v4()).await.unwrap(), None);
    let key = store.signing_key().await.unwrap();
    assert!(key.len() >= 32);
    assert_eq!(
        store.signing_key().await.unwrap(),
        key,
        "the key is made once"
    );
}

pub async fn workers_are_saved_and_deleted(store: Arc<dyn Store>) {
    let tenant = Uuid::new_v4();
    let worker = WorkerRecord {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        name: "w".into(),
        actions: vec!["wf:a".into()],
        capacity: default_requests(false),
        paused: false,
        registered_at: 1,
    };
    store
        .commit(vec![Mutation::SaveWorker(worker.clone())])
        .await
        .unwrap();
    assert_eq!(
        store.load_tenant(tenant).await.unwrap().workers,
        vec![worker.clone()]
    );
    store
        .commit(vec![Mutation::DeleteWorker(worker.id)])
        .await
        .unwrap();
    assert!(store.load_tenant(tenant).await.unwrap().workers.is_empty());
}

pub async fn concurrent_commits_all_land_and_a_bad_one_fails_alone(store: Arc<dyn Store>) {
    let (tenant, duplicate) = new_run(store.as_ref()).await;
    let version_id = duplicate.workflow_version_id;
    store
        .commit(vec![Mutation::InsertRun(duplicate.clone())])
        .await
        .unwrap();
    let mut commits = tokio::task::JoinSet::new();
    for i in 0..200 {
        let store = store.clone();
        let run = if i == 100 {
            duplicate.clone()
        } else {
            run_record(tenant, version_id)
        };
        commits.spawn(async move { (run.id, store.commit(vec![Mutation::InsertRun(run)]).await) });
    }
    let mut failed = 0;
    while let Some(joined) = commits.join_next().await {
        let (id, result) = joined.unwrap();
        match result {
            Ok(()) => assert!(store.run(tenant, id).await.unwrap().is_some()),
            Err(_) => {
                assert_eq!(id, duplicate.id, "only the duplicate fails");
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 1);
    assert_eq!(store.load_tenant(tenant).await.unwrap().runs.len(), 200);
}

/// A store for one test and what must outlive its use (its directory or database).
pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub _resources: Box<dyn std::any::Any + Send>,
}

/// Calls every test of the suite with the store of a fresh [`Fixture`]: `new_store` is an
/// expression (it may `.await`) giving `Option<Fixture>`, `None` to skip.
#[macro_export]
macro_rules! store_conformance {
    ($new_store:expr) => {
        $crate::store_conformance!($new_store;
            same_spec_is_a_no_op_and_a_change_is_a_new_version,
            unfinished_runs_are_recovered_and_finished_ones_are_not,
            a_reopened_run_is_recovered_with_its_retry_timing,
            a_saved_task_replaces_the_old_row,
            history_keeps_its_order,
            tokens_can_be_found_and_revoked,
            workers_are_saved_and_deleted,
            concurrent_commits_all_land_and_a_bad_one_fails_alone,
        );
    };
    ($new_store:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                let Some(fixture) = $new_store else { return };
                $crate::conformance::$test(fixture.store.clone()).await;
            }
        )*
    };
}
