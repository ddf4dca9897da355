//! TLS and mutual TLS: `adze lite` speaks plaintext, so these tests put a TLS-terminating
//! proxy in front of it, with the test-only certificates of `tls/` (a CA, a server
//! certificate for localhost and 127.0.0.1, a client certificate; valid for a century).

use std::path::PathBuf;
use std::sync::Arc;

use adze_examples::dag::{self, DagInput};
use adze_sdk::{Client, Config, Error, TlsStrategy};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

use crate::lite::{Lite, check_drain_pauses, serve};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/tls")
        .join(name)
}

/// Accepts TLS on a free port and forwards the bytes to `upstream`; returns its address.
async fn tls_proxy(upstream: String, require_client_cert: bool) -> String {
    let provider = Arc::new(crypto::ring::default_provider());
    let certs = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let mut config = if require_client_cert {
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(fixture("ca.pem")).unwrap() {
            roots.add(ca.unwrap()).unwrap();
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
    } else {
        builder.with_no_client_auth().with_single_cert(certs, key)
    }
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                // A refused handshake (no client certificate) just ends this connection.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                if let Ok(mut plain) = TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    address
}

async fn client_over(
    lite: &Lite,
    proxy: &str,
    tls: TlsStrategy,
    identity: bool,
) -> adze_sdk::Result<Client> {
    client_with_rest(lite, proxy, None, tls, identity).await
}

/// A client whose gRPC goes through `proxy` and, if given, REST through `rest_proxy`.
async fn client_with_rest(
    lite: &Lite,
    proxy: &str,
    rest_proxy: Option<&str>,
    tls: TlsStrategy,
    identity: bool,
) -> adze_sdk::Result<Client> {
    let mut builder = Config::builder()
        .token(lite.token())
        .host_port(proxy)
        .tls(tls)
        .tls_root_ca_file(fixture("ca.pem"))
        .tls_server_name("localhost")
        .namespace("tls");
    if let Some(rest_proxy) = rest_proxy {
        let port = rest_proxy
            .rsplit_once(':')
            .map(|(_, port)| port)
            .unwrap_or_default();
        builder = builder.server_url(format!("https://localhost:{port}"));
    }
    if identity {
        builder = builder.tls_client_identity(fixture("client.pem"), fixture("client.key"));
    }
    Client::connect(builder.build()?).await
}

/// Runs the DAG example with worker and client both connected through `proxy`.
async fn dag_round_trip(client: &Client) {
    let dag = dag::workflow();
    let worker = serve(client, &dag.workflow).await;
    let output = client.run(&dag.workflow, &DagInput { n: 2 }).await.unwrap();
    assert_eq!(output.get(&dag.child).unwrap().plus_one, 5);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_and_client_work_over_tls() {
    let lite = Lite::start();
    let proxy = tls_proxy(lite.grpc().to_string(), false).await;
    let client = client_over(&lite, &proxy, TlsStrategy::Tls, false)
        .await
        .unwrap();
    dag_round_trip(&client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_presents_the_client_certificate() {
    let lite = Lite::start();
    let proxy = tls_proxy(lite.grpc().to_string(), true).await;
    let client = client_over(&lite, &proxy, TlsStrategy::Mtls, true)
        .await
        .unwrap();
    dag_round_trip(&client).await;

    // Without the certificate the handshake fails: a connection error, not a hang.
    let refused = match client_over(&lite, &proxy, TlsStrategy::Tls, false).await {
        Ok(client) => client.push_event("x", &adze_sdk::Empty {}).await.map(drop),
        Err(error) => Err(error),
    };
    assert!(matches!(refused, Err(Error::Connection(_))), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shutdown_pause_goes_over_https_too() {
    let lite = Lite::start();
    let grpc = tls_proxy(lite.grpc().to_string(), true).await;
    let rest = tls_proxy(lite.http_addr().to_string(), true).await;
    let client = client_with_rest(&lite, &grpc, Some(&rest), TlsStrategy::Mtls, true)
        .await
        .unwrap();
    check_drain_pauses(&lite, &client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_server_certificate_is_refused() {
    let lite = Lite::start();
    let proxy = tls_proxy(lite.grpc().to_string(), false).await;
    // The system's roots do not include the test CA.
    let config = Config::builder()
        .token(lite.token())
        .host_port(&proxy)
        .tls(TlsStrategy::Tls)
        .tls_server_name("localhost")
        .build()
        .unwrap();
    let refused = match Client::connect(config).await {
        Ok(client) => client.push_event("x", &adze_sdk::Empty {}).await.map(drop),
        Err(error) => Err(error),
    };
    assert!(matches!(refused, Err(Error::Connection(_))), "{refused:?}");
}
