//! Pausing a worker over REST (`PATCH /api/v1/workers/{id}` `{"isPaused": true}`), as
//! Hatchet's SDKs do on shutdown: the engine stops assigning to it while the listen
//! stream stays open for cancellations of the tasks it drains.
//!
//! One request at shutdown does not justify an HTTP client dependency; this speaks just
//! enough HTTP/1.1 over plaintext. Against an `https://` server URL the pause is skipped
//! with a warning, and the drain relies on the listen stream closing at its end.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn pause(server_url: &str, token: &str, worker_id: &str) -> Result<(), String> {
    let rest = server_url
        .strip_prefix("http://")
        .ok_or_else(|| format!("server_url {server_url:?} is not plain http://"))?;
    let (authority, prefix) = match rest.split_once('/') {
        Some((authority, prefix)) => (authority, format!("/{}", prefix.trim_end_matches('/'))),
        None => (rest, String::new()),
    };
    let body = r#"{"isPaused":true}"#;
    let request = format!(
        "PATCH {prefix}/api/v1/workers/{worker_id} HTTP/1.1\r\nHost: {authority}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = TcpStream::connect(authority).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer from {authority} within {TIMEOUT:?}"))?
        .map_err(|error| format!("{authority}: {error}"))?;
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
