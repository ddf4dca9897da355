//! `/WorkflowService/*`: registration from 0.x SDKs and triggers from every SDK.

use adze_proto::v0::workflow_service_server::WorkflowService;
use adze_proto::v0::*;
use adze_proto::v1;
use tonic::{Request, Response, Status};

use super::{Api, check_bulk, grpc};
use crate::convert::{self, timestamp};
use crate::status::to_status;

#[tonic::async_trait]
impl WorkflowService for Api {
    async fn put_workflow(
        &self,
        request: Request<PutWorkflowRequest>,
    ) -> Result<Response<WorkflowVersion>, Status> {
        let tenant = self.tenant(&request).await?;
        let spec = convert::workflow_from_v0(request.into_inner()).map_err(to_status)?;
        let version = self.engine.put_workflow(tenant, spec).await;
        grpc(version.map(|version| WorkflowVersion {
            id: version.id.to_string(),
            created_at: Some(timestamp(version.created_at)),
            updated_at: Some(timestamp(version.created_at)),
            version: version.spec.version,
            order: version.number,
            workflow_id: version.workflow_id.to_string(),
            scheduled_workflows: vec![],
        }))
    }

    async fn trigger_workflow(
        &self,
        request: Request<v1::TriggerWorkflowRequest>,
    ) -> Result<Response<TriggerWorkflowResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let trigger = convert::trigger(request.into_inner()).map_err(to_status)?;
        let runs = self.engine.trigger(tenant, vec![trigger]).await;
        grpc(runs.map(|runs| TriggerWorkflowResponse {
            workflow_run_id: runs[0].to_string(),
        }))
    }

    async fn bulk_trigger_workflow(
        &self,
        request: Request<BulkTriggerWorkflowRequest>,
    ) -> Result<Response<BulkTriggerWorkflowResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let workflows = request.into_inner().workflows;
        check_bulk("workflows", workflows.len()).map_err(to_status)?;
        let triggers = workflows
            .into_iter()
            .map(convert::trigger)
            .collect::<Result<Vec<_>, _>>()
            .map_err(to_status)?;
        let runs = self.engine.trigger(tenant, triggers).await;
        grpc(runs.map(|runs| BulkTriggerWorkflowResponse {
            workflow_run_ids: runs.iter().map(ToString::to_string).collect(),
        }))
    }
}
