//! Rebuilding a tenant's state from the store alone, on start.
//!
//! Queued tasks go back into their queues in their old order, with what is left of their
//! schedule timeout; a retry still in its backoff waits out the rest. Tasks bound to a worker
//! stay bound, holding their units (unless released), and the worker gets the heartbeat
//! timeout to come back: SDK workers reconnect with the same worker id. A task whose
//! worker is not in the store any more is failed as lost, retried by its policy.
//!
//! The same rebuild runs when a commit fails ([`reload`]): the actor's memory is then ahead
//! of the store, so it is thrown away, keeping only what lives outside the store (open
//! listen streams and callers waiting for runs).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use adze_core::slots::SlotPool;
use adze_core::state::TaskStatus;
use adze_core::{Error, Result, TenantId};
use adze_store::Store;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::timers::Timer;
use super::{Command, RunState, State, TaskState, WorkerState};
use crate::{EngineConfig, store_error};

pub(crate) async fn load(
    tenant: TenantId,
    store: &dyn Store,
    config: EngineConfig,
) -> Result<State> {
    let snapshot = store.load_tenant(tenant).await.map_err(store_error)?;
    let mut state = State::new(tenant, config);
    for version in snapshot.workflows {
        state.add_version(version);
    }
    let come_back_by = Instant::now() + state.config.heartbeat_timeout;
    for record in snapshot.workers {
        let id = record.id;
        state.workers.insert(
            id,
            WorkerState {
                pool: SlotPool::new(record.capacity.clone()),
                last_heartbeat_at: record.registered_at,
                last_listen_at: None,
                record,
                stream: None,
                heartbeat_deadline: come_back_by,
                listen_deadline: Some(come_back_by),
                tasks: HashSet::new(),
            },
        );
        state.arm(Timer::Worker(id), come_back_by);
    }
    let mut run_tasks: HashMap<_, Vec<_>> = HashMap::new();
    for task in snapshot.tasks {
        run_tasks.entry(task.run_id).or_default().push(task);
    }
    let mut orphans = Vec::new();
    for run in snapshot.runs {
        let version = state
            .versions
            .get(&run.workflow_version_id)
            .cloned()
            .ok_or_else(|| {
                Error::internal(format!(
                    "run {} has no workflow version {}",
                    run.id, run.workflow_version_id
                ))
            })?;
        let mut tasks = run_tasks.remove(&run.id).unwrap_or_default();
        tasks.sort_by_key(|task| task.position);
        let ids = tasks.iter().map(|task| task.id).collect();
        for record in tasks {
            let Some(requests) = version.requests.get(record.position as usize).cloned() else {
                return Err(Error::internal(format!(
                    "task {} is at position {}, outside its workflow version",
                    record.id, record.position
                )));
            };
            state.next_seq = state.next_seq.max(record.queued_seq + 1);
            if record.status.is_on_worker() {
                match record.worker_id.and_then(|id| state.workers.get_mut(&id)) {
                    Some(worker) => {
                        if !record.released {
                            worker.pool.take_unchecked(&requests);
                        }
                        worker.tasks.insert(record.id);
                    }
                    None => orphans.push(record.id),
                }
            }
            state
                .tasks
                .insert(record.id, TaskState::stored(record, requests));
        }
        state.runs.insert(
            run.id,
            RunState {
                record: run,
                version: Arc::clone(&version),
                tasks: ids,
            },
        );
    }
    let mut queued: Vec<_> = state
        .tasks
        .values()
        .filter(|task| task.record.status == TaskStatus::Queued)
        .map(|task| {
            (
                task.record.queued_seq,
                task.record.id,
                task.record.queued_at,
            )
        })
        .collect();
    queued.sort();
    let now = crate::clock::now_millis();
    for (_, task, queued_at) in queued {
        let since = queued_at.unwrap_or(now);
        if since > now {
            state.wait_backoff(task, millis(since - now));
        } else {
            state.join_queue(task, millis(now - since));
        }
    }
    // Bound tasks keep the part of their timeout they had not used before the restart.
    let bound: Vec<_> = state
        .tasks
        .values()
        .filter(|task| task.record.status.is_on_worker())
        .map(|task| (task.record.id, task.record.started_at))
        .collect();
    for (task, started_at) in bound {
        let elapsed = started_at.map_or(0, |at| now.saturating_sub(at).max(0) as u64);
        state.start_deadline(task, std::time::Duration::from_millis(elapsed));
    }
    for task in orphans {
        state.history(
            task,
            "worker lost",
            Some("its worker was not known after a restart".into()),
        );
        state.fail(
            task,
            "worker lost: its worker was not known after the engine restarted".into(),
            true,
        );
    }
    tracing::info!(%tenant, runs = state.runs.len(), workers = state.workers.len(), "tenant recovered");
    Ok(state)
}

fn millis(count: i64) -> std::time::Duration {
    std::time::Duration::from_millis(count.max(0) as u64)
}

/// Rebuilds `old` from the store after a failed commit, carrying over the open listen
/// streams and the callers waiting for runs. Retries while the store cannot be read;
/// meanwhile commands are refused at once (UNAVAILABLE) rather than left waiting, except
/// those that only make sense on the rebuilt state, which are applied to it. `None` when
/// the actor was stopped before the store came back.
pub(crate) async fn reload(
    old: State,
    store: &dyn Store,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    shutdown: &CancellationToken,
) -> Option<State> {
    let mut delay = std::time::Duration::from_millis(100);
    let mut deferred = Vec::new();
    let mut state = loop {
        match load(old.tenant, store, old.config.clone()).await {
            Ok(state) => break state,
            Err(error) => {
                tracing::error!(tenant = %old.tenant, %error, "tenant reload failed; retrying");
                let retry_at = tokio::time::Instant::now() + delay;
                loop {
                    tokio::select! {
                        () = tokio::time::sleep_until(retry_at) => break,
                        () = shutdown.cancelled() => return None,
                        command = commands.recv() => match command {
                            Some(command) => deferred.extend(command.refuse(&error)),
                            None => return None,
                        },
                    }
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
        }
    };
    state.epoch = old.epoch + 1;
    state.next_generation = old.next_generation;
    for (id, worker) in old.workers {
        if let Some((generation, stream)) = worker.stream {
            // A worker the store does not know any more loses its stream: it must register.
            let _ = state.adopt_stream(id, generation, stream);
        }
    }
    for (run, waiters) in old.waiters {
        if state.runs.contains_key(&run) {
            state.waiters.entry(run).or_default().extend(waiters);
        } else {
            // Not live after all: the engine handle reads it from the store.
            for waiter in waiters {
                state.batch.reply(waiter, Ok(None));
            }
        }
    }
    for command in deferred {
        state.handle(command);
    }
    tracing::warn!(tenant = %state.tenant, "tenant reloaded from the store after a failed commit");
    Some(state)
}
