//! `/v1.AdminService/*`: registration from 1.x SDKs and the run details `run()` polls.

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
