//! `/Dispatcher/*`: what workers call, and the run-result stream clients wait on.

use std::collections::{BTreeMap, HashSet};
use std::pin::Pin;
use std::time::Duration;

use adze_core::Error;
use adze_core::slots::capacity_from_register;
use adze_engine::{TaskEvent, TaskEventKind, WorkerRegistration};
use adze_proto::v0::dispatcher_server::Dispatcher;
use adze_proto::v0::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::{Api, grpc};
use crate::convert::{self, uuid};
use crate::status::to_status;

/// The most unfinished runs one `SubscribeToWorkflowRuns` stream may wait on at once.
const MAX_WAITS_PER_STREAM: usize = 100_000;

type ActionStream = Pin<Box<dyn Stream<Item = Result<AssignedAction, Status>> + Send>>;
type RunEventStream = Pin<Box<dyn Stream<Item = Result<WorkflowRunEvent, Status>> + Send>>;

impl Api {
    async fn listen_stream(
        &self,
        request: Request<WorkerListenRequest>,
    ) -> Result<Response<ActionStream>, Status> {
        let tenant = self.tenant(&request).await?;
        let worker = uuid("worker_id", &request.get_ref().worker_id).map_err(to_status)?;
        let assignments = self
            .engine
            .listen(tenant, worker)
            .await
            .map_err(to_status)?;
        let stream = UnboundedReceiverStream::new(assignments)
            .map(|assignment| Ok(convert::assigned_action(assignment)));
        Ok(Response::new(Box::pin(stream)))
    }
}

#[tonic::async_trait]
impl Dispatcher for Api {
    type ListenStream = ActionStream;
    type ListenV2Stream = ActionStream;
    type SubscribeToWorkflowRunsStream = RunEventStream;

    async fn get_version(
        &self,
        request: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, Status> {
        self.tenant(&request).await?;
        Ok(Response::new(GetVersionResponse {
            version: crate::HATCHET_COMPATIBLE_VERSION.to_string(),
        }))
    }

    async fn register(
        &self,
        request: Request<WorkerRegisterRequest>,
    ) -> Result<Response<WorkerRegisterResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let request = request.into_inner();
        let config: BTreeMap<String, i32> = request.slot_config.into_iter().collect();
        let capacity = capacity_from_register(request.slots, &config).map_err(to_status)?;
        let registration = WorkerRegistration {
            name: request.worker_name.clone(),
            actions: request.actions,
            capacity,
        };
        let worker = self.engine.register_worker(tenant, registration).await;
        grpc(worker.map(|worker| WorkerRegisterResponse {
            tenant_id: tenant.to_string(),
            worker_id: worker.to_string(),
            worker_name: request.worker_name,
        }))
    }

    async fn listen(
        &self,
        request: Request<WorkerListenRequest>,
    ) -> Result<Response<ActionStream>, Status> {
        self.listen_stream(request).await
    }

    async fn listen_v2(
        &self,
        request: Request<WorkerListenRequest>,
    ) -> Result<Response<ActionStream>, Status> {
        self.listen_stream(request).await
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let worker = uuid("worker_id", &request.get_ref().worker_id).map_err(to_status)?;
        grpc(
            self.engine
                .heartbeat(tenant, worker)
                .await
                .map(|()| HeartbeatResponse {}),
        )
    }

    async fn subscribe_to_workflow_runs(
        &self,
        request: Request<Streaming<SubscribeToWorkflowRunsRequest>>,
    ) -> Result<Response<RunEventStream>, Status> {
        let tenant = self.tenant(&request).await?;
        let mut inbound = request.into_inner();
        let (events, outbound) = mpsc::channel(256);
        let engine = self.engine.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut waiting = tokio::task::JoinSet::new();
            // A run asked for twice while its wait is pending is waited on once.
            let mut pending: HashSet<uuid::Uuid> = HashSet::new();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    message = inbound.next() => match message {
                        Some(Ok(message)) => {
                            let run = match uuid("workflow_run_id", &message.workflow_run_id) {
                                Ok(run) => run,
                                Err(error) => {
                                    let _ = events.send(Err(to_status(error))).await;
                                    break;
                                }
                            };
                            if pending.len() >= MAX_WAITS_PER_STREAM && !pending.contains(&run) {
                                let error = adze_core::Error::new(
                                    adze_core::ErrorKind::ResourceExhausted,
                                    format!("at most {MAX_WAITS_PER_STREAM} runs may be awaited on one stream"),
                                );
                                let _ = events.send(Err(to_status(error))).await;
                                break;
                            }
                            if pending.insert(run) {
                                let engine = engine.clone();
                                waiting.spawn(async move { (run, engine.wait_run(tenant, run).await) });
                            }
                        }
                        // The client hung up or half-closed: finish the waits already asked for.
                        Some(Err(_)) | None => break,
                    },
                    Some(finished) = waiting.join_next(), if !waiting.is_empty() => {
                        let Ok((run, outcome)) = finished else { continue };
                        pending.remove(&run);
                        match outcome {
                            Ok(snapshot) => {
                                if events.send(Ok(convert::run_finished(&snapshot))).await.is_err() {
                                    return;
                                }
                            }
                            Err(error) => tracing::warn!(run_id = %run, %error, "cannot report the run's result"),
                        }
                    }
                }
            }
            while let Some(finished) = waiting.join_next().await {
                if let Ok((_, Ok(snapshot))) = finished
                    && events
                        .send(Ok(convert::run_finished(&snapshot)))
                        .await
                        .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(outbound))))
    }

    async fn send_step_action_event(
        &self,
        request: Request<StepActionEvent>,
    ) -> Result<Response<ActionEventResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let event = request.into_inner();
        let worker_id = uuid("worker_id", &event.worker_id).map_err(to_status)?;
        let task_id =
            uuid("task_run_external_id", &event.task_run_external_id).map_err(to_status)?;
        let attempt = event
            .retry_count
            .map(|count| {
                u32::try_from(count)
                    .map_err(|_| to_status(Error::invalid("retry_count must not be negative")))
            })
            .transpose()?;
        let kind = match StepActionEventType::try_from(event.event_type) {
            Ok(StepActionEventType::StepEventTypeStarted) => TaskEventKind::Started,
            Ok(StepActionEventType::StepEventTypeCompleted) => {
                TaskEventKind::Completed(event.event_payload)
            }
            Ok(StepActionEventType::StepEventTypeFailed) => TaskEventKind::Failed {
                error: event.event_payload,
                retryable: !event.should_not_retry.unwrap_or(false),
            },
            // Acknowledgements and cancel confirmations change nothing yet.
            Ok(_) => {
                return Ok(Response::new(ActionEventResponse {
                    tenant_id: tenant.to_string(),
                    worker_id: event.worker_id,
                }));
            }
            Err(_) => {
                return Err(to_status(Error::invalid(format!(
                    "event_type {} is not a step event type",
                    event.event_type
                ))));
            }
        };
        let outcome = self
            .engine
            .task_event(
                tenant,
                TaskEvent {
                    worker_id,
                    task_id,
                    attempt,
                    kind,
                },
            )
            .await;
        grpc(outcome.map(|()| ActionEventResponse {
            tenant_id: tenant.to_string(),
            worker_id: event.worker_id,
        }))
    }

    async fn unsubscribe(
        &self,
        request: Request<WorkerUnsubscribeRequest>,
    ) -> Result<Response<WorkerUnsubscribeResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let worker_id = request.into_inner().worker_id;
        let worker = uuid("worker_id", &worker_id).map_err(to_status)?;
        grpc(
            self.engine
                .unsubscribe(tenant, worker)
                .await
                .map(|()| WorkerUnsubscribeResponse {
                    tenant_id: tenant.to_string(),
                    worker_id,
                }),
        )
    }

    async fn refresh_timeout(
        &self,
        request: Request<RefreshTimeoutRequest>,
    ) -> Result<Response<RefreshTimeoutResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let request = request.into_inner();
        let task =
            uuid("task_run_external_id", &request.task_run_external_id).map_err(to_status)?;
        let by = convert::duration(
            "increment_timeout_by",
            &request.increment_timeout_by,
            Duration::ZERO,
        )
        .map_err(to_status)?;
        let deadline = self.engine.refresh_timeout(tenant, task, by).await;
        grpc(deadline.map(|at| RefreshTimeoutResponse {
            timeout_at: Some(convert::timestamp(at)),
        }))
    }

    async fn release_slot(
        &self,
        request: Request<ReleaseSlotRequest>,
    ) -> Result<Response<ReleaseSlotResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let task = uuid(
            "task_run_external_id",
            &request.get_ref().task_run_external_id,
        )
        .map_err(to_status)?;
        grpc(
            self.engine
                .release_slot(tenant, task)
                .await
                .map(|()| ReleaseSlotResponse {}),
        )
    }

    async fn upsert_worker_labels(
        &self,
        request: Request<UpsertWorkerLabelsRequest>,
    ) -> Result<Response<UpsertWorkerLabelsResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let worker_id = request.into_inner().worker_id;
        uuid("worker_id", &worker_id).map_err(to_status)?;
        // Labels are accepted so SDKs that send them keep working; placement by label is
        // not implemented yet (workflows that ask for labels are refused at registration).
        Ok(Response::new(UpsertWorkerLabelsResponse {
            tenant_id: tenant.to_string(),
            worker_id,
        }))
    }
}
