//! Where the bench sends its load: a gRPC URL and a token, and the typed clients over it.

use std::time::{Duration, Instant};

use adze_proto::v0::GetVersionRequest;
use adze_proto::v0::dispatcher_client::DispatcherClient;
use adze_proto::v0::events_service_client::EventsServiceClient;
use adze_proto::v0::workflow_service_client::WorkflowServiceClient;
use adze_proto::v1::admin_service_client::AdminServiceClient;
use anyhow::Context;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// An engine to talk to.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` of the gRPC server.
    pub grpc_url: String,
    pub token: String,
}

/// Adds the token to every call, as the SDKs do.
#[derive(Clone)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// The clients of one connection (one HTTP/2 connection; calls are multiplexed on it).
#[derive(Clone)]
pub struct Clients {
    pub dispatcher: DispatcherClient<Authed>,
    pub events: EventsServiceClient<Authed>,
    pub workflows: WorkflowServiceClient<Authed>,
    pub admin: AdminServiceClient<Authed>,
}

impl Target {
    /// Opens a new connection.
    pub async fn connect(&self) -> anyhow::Result<Clients> {
        let channel = Endpoint::from_shared(self.grpc_url.clone())
            .with_context(|| format!("--target {:?} is not a URL", self.grpc_url))?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", self.grpc_url))?;
        let bearer = Bearer(
            format!("bearer {}", self.token)
                .parse()
                .context("the token is not valid header text")?,
        );
        // Generous limits: a bulk trigger of 1,000 runs with big payloads is large.
        let limit = 64 * 1024 * 1024;
        Ok(Clients {
            dispatcher: DispatcherClient::with_interceptor(channel.clone(), bearer.clone())
                .max_decoding_message_size(limit),
            events: EventsServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            workflows: WorkflowServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            admin: AdminServiceClient::with_interceptor(channel, bearer),
        })
    }
}

/// Waits until the engine answers an authenticated call; returns how long that took.
pub async fn wait_ready(target: &Target, limit: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let answered = match target.connect().await {
            Ok(mut clients) => clients
                .dispatcher
                .get_version(GetVersionRequest {})
                .await
                .is_ok(),
            Err(_) => false,
        };
        if answered {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            anyhow::bail!(
                "the engine at {} was not ready within {limit:?}",
                target.grpc_url
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
