//! The conformance suite on PostgreSQL, and what only the server backend has: versioned
//! migrations shared by replicas, group commit under many callers, and failing fast when
//! the pool or the database cannot serve.
//!
//! Each test takes a fresh database from `adze-testdb`; without a server they skip
//! loudly (and fail on CI).

use std::sync::Arc;
use std::time::{Duration, Instant};

use adze_core::state::TaskStatus;
use adze_store::postgres::{PgConfig, PgStore, migrate};
use adze_store::*;
use adze_testdb::{TestDatabase, fresh_database};
use uuid::Uuid;

use crate::conformance::{Fixture, new_run, run_record, spec, task_record};

async fn fresh() -> Option<Fixture> {
    let database = fresh_database().await?;
    Some(Fixture {
        store: store_on(&database).await,
        _resources: Box::new(database),
    })
}

pub async fn store_on(database: &TestDatabase) -> Arc<PgStore> {
    Arc::new(
        PgStore::connect(PgConfig::new(&database.url))
            .await
            .unwrap(),
    )
}

mod suite {
    use super::fresh;

    crate::store_conformance!(fresh().await);
}

/// A read and a commit, for tests of how calls fail.
async fn read_and_commit(store: &PgStore) -> [Result<()>; 2] {
    let read = answers(store.run(Uuid::new_v4(), Uuid::new_v4())).await;
    let commit = answers(store.commit(vec![Mutation::DeleteWorker(Uuid::new_v4())])).await;
    [read.map(drop), commit]
}

/// A guard against hanging: the calls under test must answer well within this.
async fn answers<T>(call: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the call hung")
}

async fn sql(database: &TestDatabase) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn migrations_run_once_even_when_replicas_start_together() {
    let Some(database) = fresh_database().await else {
        return;
    };
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let url = database.url.clone();
        starts.spawn(async move { migrate(&url).await.unwrap() });
    }
    let mut applied = Vec::new();
    while let Some(versions) = starts.join_next().await {
        applied.extend(versions.unwrap());
    }
    applied.sort();
    let versions = applied.len() as i64;
    assert!(versions >= 1);
    assert_eq!(
        applied,
        (1..=versions).collect::<Vec<_>>(),
        "exactly one start applied each version, in order"
    );
    assert!(migrate(&database.url).await.unwrap().is_empty());
    let recorded: i64 = sql(&database)
        .await
        .query_one("SELECT count(*) FROM adze_schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, versions);
    PgStore::connect(PgConfig::new(&database.url))
        .await
        .expect("a migrated database opens");
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_message() {
    let Some(database) = fresh_database().await else {
        return;
    };
    migrate(&database.url).await.unwrap();
    sql(&database)
        .await
        .execute(
            "INSERT INTO adze_schema_migrations (version) VALUES (99)",
            &[],
        )
        .await
        .unwrap();
    let error = PgStore::connect(PgConfig::new(&database.url))
        .await
        .err()
        .expect("a newer schema must be refused");
    assert!(
        matches!(error, StoreError::SchemaTooNew { found: 99, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("newer than this binary"),
        "{error}"
    );
}

/// Many callers at once, each writing a run with tasks and history; one of them also
/// writes a task of a run that does not exist. Only that caller fails, and none of its
/// rows land, not even its valid run.
#[tokio::test]
async fn a_bad_commit_among_many_merged_ones_fails_alone_and_whole() {
    let Some(database) = fresh_database().await else {
        return;
    };
    let store = store_on(&database).await;
    let (tenant, first_run) = new_run(store.as_ref()).await;
    let version = first_run.workflow_version_id;
    let transactions_before = committed_transactions(&database).await;
    let callers = 300;
    let bad_caller = 150;
    let mut commits = tokio::task::JoinSet::new();
    for caller in 0..callers {
        let store = store.clone();
        let run = run_record(tenant, version);
        commits.spawn(async move {
            let mut mutations = vec![Mutation::InsertRun(run.clone())];
            for position in 0..2 {
                let task = task_record(&run, position, TaskStatus::Queued);
                mutations.push(Mutation::History(HistoryRecord {
                    task_id: task.id,
                    attempt: 0,
                    at: 1,
                    kind: "queued".into(),
                    worker_id: None,
                    detail: None,
                }));
                mutations.push(Mutation::SaveTask(task));
            }
            if caller == bad_caller {
                let missing = run_record(tenant, version);
                mutations.push(Mutation::SaveTask(task_record(
                    &missing,
                    0,
                    TaskStatus::Queued,
                )));
            }
            (caller, run.id, store.commit(mutations).await)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = commits.join_next().await {
        outcomes.push(joined.unwrap());
    }
    let transactions = committed_transactions(&database).await - transactions_before;
    println!("{callers} concurrent commits took about {transactions} transactions");
    let mut failed = Vec::new();
    for (caller, run, outcome) in outcomes {
        let stored = store.run(tenant, run).await.unwrap();
        match outcome {
            Ok(()) => assert_eq!(stored.unwrap().1.len(), 2, "caller {caller}'s tasks"),
            Err(error) => {
                assert!(matches!(error, StoreError::Postgres(_)), "{error:?}");
                assert!(stored.is_none(), "a failed commit wrote nothing");
                failed.push(caller);
            }
        }
    }
    assert_eq!(failed, vec![bad_caller]);
    let snapshot = store.load_tenant(tenant).await.unwrap();
    assert_eq!(snapshot.runs.len(), callers - 1);
    assert_eq!(snapshot.tasks.len(), 2 * (callers - 1));
}

/// Transactions committed in the database so far (the statistics lag a little, which
/// only blurs the printed figure).
async fn committed_transactions(database: &TestDatabase) -> i64 {
    let client = sql(database).await;
    client
        .batch_execute("SELECT pg_stat_force_next_flush()")
        .await
        .unwrap();
    client
        .query_one(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_saved_task_written_twice_in_one_commit_keeps_the_last_write() {
    let Some(Fixture { store, _resources }) = fresh().await else {
        return;
    };
    let (tenant, run) = new_run(store.as_ref()).await;
    let queued = task_record(&run, 0, TaskStatus::Queued);
    let mut running = queued.clone();
    running.status = TaskStatus::Running;
    running.worker_id = Some(Uuid::new_v4());
    let worker = WorkerRecord {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        name: "w".into(),
        actions: vec!["wf:a".into()],
        capacity: adze_core::slots::default_requests(false),
        paused: false,
        registered_at: 1,
    };
    store
        .commit(vec![
            Mutation::SaveWorker(worker.clone()),
            Mutation::InsertRun(run.clone()),
            Mutation::SaveTask(queued),
            Mutation::SaveTask(running.clone()),
            Mutation::DeleteWorker(worker.id),
            Mutation::SaveWorker(worker.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(store.task(tenant, running.id).await.unwrap(), Some(running));
    assert_eq!(
        store.load_tenant(tenant).await.unwrap().workers,
        vec![worker]
    );
}

#[tokio::test]
async fn an_exhausted_pool_answers_exhausted_at_once() {
    let Some(database) = fresh_database().await else {
        return;
    };
    let store = PgStore::connect(PgConfig {
        pool_size: 1,
        pool_wait_timeout: Duration::from_millis(200),
        ..PgConfig::new(&database.url)
    })
    .await
    .unwrap();
    let held = store.pool().get().await.unwrap();
    let started = Instant::now();
    let outcomes = read_and_commit(&store).await;
    assert!(
        matches!(
            outcomes,
            [Err(StoreError::Exhausted(_)), Err(StoreError::Exhausted(_))]
        ),
        "{outcomes:?}"
    );
    println!(
        "exhausted pool: two calls refused in {:?}",
        started.elapsed()
    );
    drop(held);
    store
        .commit(vec![Mutation::DeleteWorker(Uuid::new_v4())])
        .await
        .expect("the connection is back in the pool");
}

#[tokio::test]
async fn a_database_that_refuses_connections_is_unavailable_at_once() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let outcome = answers(PgStore::connect(PgConfig::new(format!(
        "postgres://postgres@127.0.0.1:{port}/adze"
    ))))
    .await;
    let error = outcome.err().expect("nothing listens there");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    println!("connection refused in {:?}: {error}", started.elapsed());
}

/// The server ends every connection of the store (as a restart does): calls fail as
/// unavailable at worst, and the pool heals by itself.
#[tokio::test]
async fn the_pool_replaces_connections_the_server_ended() {
    let Some(database) = fresh_database().await else {
        return;
    };
    let store = PgStore::connect(PgConfig::new(&database.url))
        .await
        .unwrap();
    let tenant = Uuid::new_v4();
    store
        .put_workflow(tenant, spec("wf", &["a"]))
        .await
        .unwrap();
    let ended: i64 = sql(&database)
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ended >= 1, "the store's connections were ended");
    let mut unavailable = 0;
    let versions = loop {
        match answers(store.workflow_versions(tenant)).await {
            Ok(versions) => break versions,
            Err(StoreError::Unavailable(_)) if unavailable < 3 => unavailable += 1,
            Err(error) => panic!("not healed: {error:?}"),
        }
    };
    assert_eq!(versions.len(), 1);
    println!("after {ended} connections ended: {unavailable} calls unavailable, then healed");
}

/// While the database is down every call fails at once as unavailable (none hangs); once
/// it is back the same store carries on without being reopened.
#[tokio::test]
async fn while_the_database_is_down_calls_fail_fast_and_then_the_store_carries_on() {
    let Some(cluster) = adze_testdb::own_cluster().await else {
        return;
    };
    let store = PgStore::connect(PgConfig::new(cluster.url()))
        .await
        .unwrap();
    let (tenant, run) = new_run(&store).await;
    cluster.stop().await.unwrap();
    let started = Instant::now();
    let outcomes = read_and_commit(&store).await;
    assert!(
        matches!(
            outcomes,
            [
                Err(StoreError::Unavailable(_)),
                Err(StoreError::Unavailable(_))
            ]
        ),
        "{outcomes:?}"
    );
    println!(
        "database down: two calls unavailable in {:?}",
        started.elapsed()
    );

    cluster.start().await.unwrap();
    let mut unavailable = 0;
    loop {
        match answers(store.commit(vec![Mutation::InsertRun(run.clone())])).await {
            Ok(()) => break,
            Err(StoreError::Unavailable(_)) if unavailable < 3 => unavailable += 1,
            Err(error) => panic!("the store did not recover: {error:?}"),
        }
    }
    assert!(store.run(tenant, run.id).await.unwrap().is_some());
    println!("database back: {unavailable} calls unavailable, then served");
}

/// Replicas fence every commit with their tenant's lease. In a group merged from many
/// tenants' commits, the one whose lease is gone fails alone.
#[tokio::test]
async fn a_commit_without_its_lease_fails_alone_among_others() {
    let Some(Fixture { store, _resources }) = fresh().await else {
        return;
    };
    let mut commits = tokio::task::JoinSet::new();
    for caller in 0..100 {
        let store = store.clone();
        commits.spawn(async move {
            let (tenant, run) = new_run(store.as_ref()).await;
            let mut mutations = vec![Mutation::InsertRun(run.clone())];
            if caller == 50 {
                // No replica holds a lease on this tenant.
                mutations.insert(
                    0,
                    Mutation::Fence {
                        tenant_id: tenant,
                        owner: Uuid::new_v4(),
                    },
                );
            }
            let outcome = store.commit(mutations).await;
            let stored = store.run(tenant, run.id).await.unwrap().is_some();
            (caller, outcome, stored)
        });
    }
    let mut fenced = Vec::new();
    while let Some(joined) = commits.join_next().await {
        let (caller, outcome, stored) = joined.unwrap();
        match outcome {
            Ok(()) => assert!(stored, "caller {caller}'s run"),
            Err(error) => {
                assert!(matches!(error, StoreError::Fenced(_)), "{error:?}");
                assert!(!stored, "a fenced commit wrote nothing");
                fenced.push(caller);
            }
        }
    }
    assert_eq!(fenced, vec![50]);
}
