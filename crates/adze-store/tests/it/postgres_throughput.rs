//! How fast task lifecycles go through `PgStore::commit`: printed, never asserted (run
//! with `--nocapture`; `ADZE_BENCH_RUNS` scales it up).

use std::time::Instant;

use adze_core::state::{RunStatus, TaskStatus};
use adze_store::*;
use adze_testdb::fresh_database;
use uuid::Uuid;

use crate::conformance::{new_run, run_record, task_record};
use crate::postgres::store_on;

/// Each committer repeats: insert a run with its tasks, assign them, complete them and
/// finish the run: three commits, like the engine's for a run's life.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_lifecycles_through_group_commit() {
    let Some(database) = fresh_database().await else {
        return;
    };
    let store = store_on(&database).await;
    let runs: usize = std::env::var("ADZE_BENCH_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(20);
    println!("committers  tasks/run  commits/s  rows/s  tasks/s");
    for (committers, tasks_per_run) in [(1, 1), (16, 1), (128, 1), (1, 500), (16, 50), (64, 50)] {
        let (tenant, first_run) = new_run(store.as_ref()).await;
        let version = first_run.workflow_version_id;
        let started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..committers {
            let store = store.clone();
            workers.spawn(async move {
                let mut rows = 0;
                for _ in 0..runs {
                    rows += lifecycle(store.as_ref(), tenant, version, tasks_per_run).await;
                }
                rows
            });
        }
        let mut rows = 0;
        while let Some(written) = workers.join_next().await {
            rows += written.unwrap();
        }
        let seconds = started.elapsed().as_secs_f64();
        let commits = committers * runs * 3;
        let tasks = committers * runs * tasks_per_run;
        println!(
            "{committers:>10}  {tasks_per_run:>9}  {:>9.0}  {:>6.0}  {:>7.0}",
            commits as f64 / seconds,
            rows as f64 / seconds,
            tasks as f64 / seconds,
        );
    }
}

/// One run's life in three commits; returns the rows written.
async fn lifecycle(store: &dyn Store, tenant: Uuid, version: Uuid, tasks: usize) -> usize {
    let run = run_record(tenant, version);
    let mut queued: Vec<TaskRecord> = (0..tasks as u32)
        .map(|position| task_record(&run, position, TaskStatus::Queued))
        .collect();
    let history = |task: &TaskRecord, kind: &str| {
        Mutation::History(HistoryRecord {
            task_id: task.id,
            attempt: 0,
            at: 2,
            kind: kind.into(),
            worker_id: task.worker_id,
            detail: None,
        })
    };
    let mut insert = vec![Mutation::InsertRun(run.clone())];
    insert.extend(queued.iter().cloned().map(Mutation::SaveTask));
    let mut assign = Vec::new();
    let worker = Uuid::new_v4();
    for task in &mut queued {
        task.status = TaskStatus::Running;
        task.worker_id = Some(worker);
        task.started_at = Some(2);
        assign.push(history(task, "assigned"));
        assign.push(Mutation::SaveTask(task.clone()));
    }
    let mut complete = Vec::new();
    for task in &mut queued {
        task.status = TaskStatus::Completed;
        task.output = Some("{}".into());
        task.finished_at = Some(3);
        complete.push(history(task, "completed"));
        complete.push(Mutation::SaveTask(task.clone()));
    }
    complete.push(Mutation::FinishRun {
        run_id: run.id,
        status: RunStatus::Completed,
        finished_at: 3,
    });
    let rows = insert.len() + assign.len() + complete.len();
    for commit in [insert, assign, complete] {
        store.commit(commit).await.unwrap();
    }
    rows
}
