//! `/v1.AdminService/*`: registration from 1.x SDKs, the run details `run()` polls, and
//! cancel / replay of tasks and runs.

use adze_proto::v1::admin_service_server::AdminService;
use adze_proto::v1::*;
use tonic::{Request, Response, Status};

use super::{Api, grpc};
use crate::convert::{self, uuid};
use crate::status::to_status;

#[tonic::async_trait]
impl AdminService for Api {
    async fn put_workflow(
        &self,
        request: Request<CreateWorkflowVersionRequest>,
    ) -> Result<Response<CreateWorkflowVersionResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let spec = convert::workflow_from_v1(request.into_inner()).map_err(to_status)?;
        let version = self.engine.put_workflow(tenant, spec).await;
        grpc(version.map(|version| CreateWorkflowVersionResponse {
            id: version.id.to_string(),
            workflow_id: version.workflow_id.to_string(),
        }))
    }

    async fn cancel_tasks(
        &self,
        request: Request<CancelTasksRequest>,
    ) -> Result<Response<CancelTasksResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let request = request.into_inner();
        let ids = convert::external_ids(&request.external_ids).map_err(to_status)?;
        let filter = request
            .filter
            .as_ref()
            .map(grpc_filter)
            .transpose()
            .map_err(to_status)?;
        if ids.is_empty() && filter.is_none() {
            return Err(to_status(adze_core::Error::invalid(
                "external_ids or filter must be set",
            )));
        }
        let cancelled = self.engine.cancel_tasks(tenant, ids, filter).await;
        grpc(cancelled.map(|tasks| CancelTasksResponse {
            cancelled_tasks: tasks.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn replay_tasks(
        &self,
        request: Request<ReplayTasksRequest>,
    ) -> Result<Response<ReplayTasksResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let request = request.into_inner();
        if request.filter.is_some() {
            return Err(to_status(convert::replay_filter_unsupported()));
        }
        let ids = convert::external_ids(&request.external_ids).map_err(to_status)?;
        let replayed = self.engine.replay_tasks(tenant, ids).await;
        grpc(replayed.map(|tasks| ReplayTasksResponse {
            replayed_tasks: tasks.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn get_run_details(
        &self,
        request: Request<GetRunDetailsRequest>,
    ) -> Result<Response<GetRunDetailsResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let run = uuid("external_id", &request.get_ref().external_id).map_err(to_status)?;
        let snapshot = self.engine.run(tenant, run).await;
        grpc(snapshot.map(|snapshot| convert::run_details(&snapshot)))
    }
}

fn grpc_filter(filter: &TasksFilter) -> adze_core::Result<adze_engine::TaskFilter> {
    convert::task_filter(convert::FilterFields {
        field: "filter",
        statuses: &filter.statuses,
        since: filter.since.as_ref().map(convert::millis),
        until: filter.until.as_ref().map(convert::millis),
        workflow_ids: &filter.workflow_ids,
        additional_metadata: &filter.additional_metadata,
    })
}
