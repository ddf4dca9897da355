//! Pausing a worker over REST (`PATCH /api/v1/workers/{id}` `{"isPaused": true}`), as
//! Hatchet's SDKs do on shutdown: the engine stops assigning to it while the listen
//! stream stays open for cancellations of the tasks it drains.
//!
//! One request at shutdown does not justify an HTTP client dependency; this speaks just
//! enough HTTP/1.1, over plaintext for `http://` and over rustls for `https://` (trusting
//! the configured CA, or the system's roots, like the gRPC channel).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

use crate::config::{Config, TlsStrategy};

const TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn pause(config: &Config, worker_id: &str) -> Result<(), String> {
    let server_url = config.server_url();
    let (secure, rest) = if let Some(rest) = server_url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = server_url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!(
            "server_url {server_url:?} is neither http:// nor https://"
        ));
    };
    let (authority, prefix) = match rest.split_once('/') {
        Some((authority, prefix)) => (authority, format!("/{}", prefix.trim_end_matches('/'))),
        None => (rest, String::new()),
    };
    let body = r#"{"isPaused":true}"#;
    let request = format!(
        "PATCH {prefix}/api/v1/workers/{worker_id} HTTP/1.1\r\nHost: {authority}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        config.token(),
        body.len()
    );
    let exchange = async {
        let tcp = TcpStream::connect(with_default_port(authority, secure))
            .await
            .map_err(|error| format!("{authority}: {error}"))?;
        if secure {
            let host = authority
                .rsplit_once(':')
                .map_or(authority, |(host, _)| host);
            let name = ServerName::try_from(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
            )
            .map_err(|_| format!("{host:?} is not a server name"))?;
            let tls = connector(config)?
                .connect(name, tcp)
                .await
                .map_err(|error| format!("TLS with {authority}: {error}"))?;
            send(tls, &request).await
        } else {
            send(tcp, &request).await
        }
        .map_err(|error| format!("{authority}: {error}"))
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer from {authority} within {TIMEOUT:?}"))??;
    let status_line = String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    match status_line.split_whitespace().nth(1) {
        Some(code) if code.starts_with('2') => Ok(()),
        _ => Err(format!("the engine answered {status_line:?}")),
    }
}

fn with_default_port(authority: &str, secure: bool) -> String {
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:{}", if secure { 443 } else { 80 })
    }
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> std::io::Result<Vec<u8>> {
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    Ok(response)
}

fn connector(config: &Config) -> Result<TlsConnector, String> {
    let files = config.tls_files();
    let mut roots = RootCertStore::empty();
    match &files.root_ca {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|error| format!("{}: {error}", path.display()))?
            {
                let cert = cert.map_err(|error| format!("{}: {error}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|error| format!("{}: {error}", path.display()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system certificate rustls cannot use is skipped, as the gRPC side does.
                let _ = roots.add(cert);
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots);
    let client = match (config.tls(), &files.cert, &files.key) {
        (TlsStrategy::Mtls, Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|error| format!("{}: {error}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|error| format!("{}: {error}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| error.to_string())?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(client)))
}
