//! A failed commit must not leave the engine believing what the store does not hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use adze_core::state::RunStatus;
use adze_core::workflow::WorkflowSpec;
use adze_core::{RunId, TaskId, TenantId};
use adze_engine::{Engine, EngineConfig, TaskEvent, TaskEventKind};
use adze_store::*;
use async_trait::async_trait;
use uuid::Uuid;

use super::*;

/// A real store, with one switch: fail the next commit, as a full disk would.
struct FailingCommits {
    inner: Arc<dyn Store>,
    fail_next: AtomicBool,
}

#[async_trait]
impl Store for FailingCommits {
    async fn commit(&self, mutations: Vec<Mutation>) -> Result<()> {
        if !mutations.is_empty() && self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Commit("injected: disk full".into()));
        }
        self.inner.commit(mutations).await
    }
    async fn put_workflow(
        &self,
        tenant: TenantId,
        spec: WorkflowSpec,
    ) -> Result<PutWorkflowOutcome> {
        self.inner.put_workflow(tenant, spec).await
    }
    async fn workflow_versions(&self, tenant: TenantId) -> Result<Vec<WorkflowVersionRecord>> {
        self.inner.workflow_versions(tenant).await
    }
    async fn signing_key(&self) -> Result<Vec<u8>> {
        self.inner.signing_key().await
    }
    async fn find_token(&self, token_id: Uuid) -> Result<Option<TokenRecord>> {
        self.inner.find_token(token_id).await
    }
    async fn tenants_to_recover(&self) -> Result<Vec<TenantId>> {
        self.inner.tenants_to_recover().await
    }
    async fn load_tenant(&self, tenant: TenantId) -> Result<TenantSnapshot> {
        self.inner.load_tenant(tenant).await
    }
    async fn run(
        &self,
        tenant: TenantId,
        run: RunId,
    ) -> Result<Option<(RunRecord, Vec<TaskRecord>)>> {
        self.inner.run(tenant, run).await
    }
    async fn task(&self, tenant: TenantId, task: TaskId) -> Result<Option<TaskRecord>> {
        self.inner.task(tenant, task).await
    }
    async fn task_history(&self, tenant: TenantId, task: TaskId) -> Result<Vec<HistoryRecord>> {
        self.inner.task_history(tenant, task).await
    }
}

crate::on_every_backend!(after_a_failed_commit_the_tenant_is_rebuilt_from_the_store);

async fn after_a_failed_commit_the_tenant_is_rebuilt_from_the_store(place: Place) {
    let store = Arc::new(FailingCommits {
        inner: place.store().await,
        fail_next: AtomicBool::new(false),
    });
    let engine = Engine::start(store.clone(), EngineConfig::default())
        .await
        .unwrap();
    let tenant = Uuid::new_v4();
    engine
        .put_workflow(tenant, workflow("fragile"))
        .await
        .unwrap();
    let (worker, mut stream) = connect_worker(&engine, tenant, 1, "fragile:only").await;

    store.fail_next.store(true, Ordering::SeqCst);
    let error = engine
        .trigger(tenant, vec![trigger("fragile")])
        .await
        .unwrap_err();
    assert!(error.message.contains("storage failure"), "{error}");
    assert!(
        !arrives_soon(&mut stream).await,
        "a run that was never stored must not start"
    );

    // The reloaded tenant kept the worker's stream and serves new runs.
    let run = engine
        .trigger(tenant, vec![trigger("fragile")])
        .await
        .unwrap()[0];
    let assignment = next(&mut stream).await;
    assert_eq!(assignment.run_id, run);
    let done = TaskEvent {
        worker_id: worker,
        task_id: assignment.task_id,
        attempt: None,
        kind: TaskEventKind::Completed("{}".into()),
    };
    engine.task_event(tenant, done).await.unwrap();
    assert_eq!(
        engine.wait_run(tenant, run).await.unwrap().status(),
        RunStatus::Completed
    );
    assert_eq!(
        store.load_tenant(tenant).await.unwrap().runs.len(),
        0,
        "nothing half-stored is left unfinished"
    );
    engine.shutdown().await;
}
