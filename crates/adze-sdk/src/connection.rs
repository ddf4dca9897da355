//! One gRPC channel to the engine, shared by the client and its workers, with the token
//! attached to every call.

use std::path::Path;
use std::time::Duration;

use adze_proto::v0::dispatcher_client::DispatcherClient;
use adze_proto::v0::events_service_client::EventsServiceClient;
use adze_proto::v0::workflow_service_client::WorkflowServiceClient;
use adze_proto::v1::admin_service_client::AdminServiceClient;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::{Config, TlsStrategy, env};
use crate::error::{Error, Result};

/// Hatchet's SDKs ping every 10 s, also without calls; Adze and Hatchet allow that.
const KEEPALIVE: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Authed = InterceptedService<Channel, Bearer>;

#[derive(Clone)]
pub(crate) struct Connection {
    channel: Channel,
    bearer: Bearer,
}

impl Connection {
    pub(crate) async fn open(config: &Config) -> Result<Connection> {
        let address = config.host_port();
        let scheme = if config.tls() == TlsStrategy::None {
            "http"
        } else {
            "https"
        };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(|_| {
                Error::Config(format!(
                    "host_port {address:?} is not a host:port address ({})",
                    env::HOST_PORT
                ))
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_while_idle(true);
        if config.tls() != TlsStrategy::None {
            endpoint = endpoint.tls_config(tls_config(config)?).map_err(|error| {
                Error::Config(format!("TLS settings: {}", source_chain(&error)))
            })?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|error| Error::Connection(format!("{address}: {}", source_chain(&error))))?;
        let value: AsciiMetadataValue =
            MetadataValue::try_from(format!("bearer {}", config.token())).map_err(|_| {
                Error::Config("the token contains characters not allowed in a header".into())
            })?;
        Ok(Connection {
            channel,
            bearer: Bearer(value),
        })
    }

    pub(crate) fn dispatcher(&self) -> DispatcherClient<Authed> {
        DispatcherClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .accept_compressed(CompressionEncoding::Gzip)
    }

    pub(crate) fn events(&self) -> EventsServiceClient<Authed> {
        EventsServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .accept_compressed(CompressionEncoding::Gzip)
    }

    pub(crate) fn workflows(&self) -> WorkflowServiceClient<Authed> {
        WorkflowServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .accept_compressed(CompressionEncoding::Gzip)
    }

    pub(crate) fn admin(&self) -> AdminServiceClient<Authed> {
        AdminServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .accept_compressed(CompressionEncoding::Gzip)
    }
}

/// The TLS side of the channel: a given CA or the system's roots, and for mTLS the
/// client's certificate.
fn tls_config(config: &Config) -> Result<ClientTlsConfig> {
    let files = config.tls_files();
    let mut tls = ClientTlsConfig::new().domain_name(config.tls_server_name());
    tls = match &files.root_ca {
        Some(path) => tls.ca_certificate(Certificate::from_pem(read_pem(
            path,
            env::TLS_ROOT_CA_FILE,
        )?)),
        None => tls.with_native_roots(),
    };
    if config.tls() == TlsStrategy::Mtls {
        // Config::build has checked that both are set.
        if let (Some(cert), Some(key)) = (&files.cert, &files.key) {
            let cert = read_pem(cert, env::TLS_CERT_FILE)?;
            let key = read_pem(key, env::TLS_KEY_FILE)?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
    }
    Ok(tls)
}

fn read_pem(path: &Path, variable: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| {
        Error::Config(format!(
            "cannot read {} ({variable}): {error}",
            path.display()
        ))
    })
}

/// Transport errors keep the useful part ("connection refused") in their sources.
fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[derive(Clone)]
pub(crate) struct Bearer(AsciiMetadataValue);

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
