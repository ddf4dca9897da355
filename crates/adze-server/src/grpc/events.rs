//! `/EventsService/*`: events that trigger workflows, and task logs.

use adze_engine::NewEvent;
use adze_proto::v0::events_service_server::EventsService;
use adze_proto::v0::*;
use tonic::{Request, Response, Status};

use super::{Api, check_bulk, grpc};
use crate::convert::{timestamp, uuid};
use crate::status::to_status;

fn new_event(request: PushEventRequest) -> NewEvent {
    NewEvent {
        key: request.key,
        payload: request.payload,
        additional_metadata: request.additional_metadata.unwrap_or_default(),
        scope: request.scope,
    }
}

fn event_message(record: adze_store::EventRecord) -> Event {
    Event {
        tenant_id: record.tenant_id.to_string(),
        event_id: record.id.to_string(),
        key: record.key,
        payload: record.payload,
        event_timestamp: Some(timestamp(record.created_at)),
        additional_metadata: Some(record.additional_metadata),
        scope: record.scope,
    }
}

#[tonic::async_trait]
impl EventsService for Api {
    async fn push(&self, request: Request<PushEventRequest>) -> Result<Response<Event>, Status> {
        let tenant = self.tenant(&request).await?;
        let events = self
            .engine
            .push_events(tenant, vec![new_event(request.into_inner())])
            .await;
        grpc(events.map(|mut records| event_message(records.remove(0))))
    }

    async fn bulk_push(
        &self,
        request: Request<BulkPushEventRequest>,
    ) -> Result<Response<Events>, Status> {
        let tenant = self.tenant(&request).await?;
        let events = request.into_inner().events;
        check_bulk("events", events.len()).map_err(to_status)?;
        let records = self
            .engine
            .push_events(tenant, events.into_iter().map(new_event).collect())
            .await;
        grpc(records.map(|records| Events {
            events: records.into_iter().map(event_message).collect(),
        }))
    }

    async fn put_log(
        &self,
        request: Request<PutLogRequest>,
    ) -> Result<Response<PutLogResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let request = request.into_inner();
        let task =
            uuid("task_run_external_id", &request.task_run_external_id).map_err(to_status)?;
        grpc(
            self.engine
                .put_log(tenant, task, request.message, request.level)
                .await
                .map(|()| PutLogResponse {}),
        )
    }
}
