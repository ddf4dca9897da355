//! The worker's end of ListenV2: one stream of assignments, reopened with backoff when
//! it breaks, and a fresh registration when the engine no longer knows the
//! worker (it was declared lost while we were away).

use adze_proto::v0::{AssignedAction, WorkerListenRequest, WorkerRegisterRequest};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::backoff;
use crate::connection::Connection;
use crate::error::Result;

pub(crate) async fn register(
    connection: &Connection,
    request: &WorkerRegisterRequest,
) -> Result<String> {
    let response = connection.dispatcher().register(request.clone()).await?;
    Ok(response.into_inner().worker_id)
}

pub(crate) async fn listen(
    connection: Connection,
    registration: WorkerRegisterRequest,
    worker_id: watch::Sender<String>,
    assigned: mpsc::Sender<AssignedAction>,
    stop: CancellationToken,
) {
    let mut failures: u32 = 0;
    loop {
        let id = worker_id.borrow().clone();
        let outcome = tokio::select! {
            _ = stop.cancelled() => return,
            outcome = listen_once(&connection, id.clone(), &assigned, &mut failures) => outcome,
        };
        match outcome {
            Ok(()) => tracing::warn!(worker_id = %id, "listen stream ended; reconnecting"),
            Err(status) if status.code() == tonic::Code::NotFound => {
                tracing::warn!(worker_id = %id, "the engine no longer knows this worker; registering again");
                match register(&connection, &registration).await {
                    Ok(new_id) => {
                        tracing::info!(worker_id = %new_id, "registered again");
                        worker_id.send_replace(new_id);
                        continue;
                    }
                    Err(error) => tracing::warn!(%error, "registering again failed"),
                }
            }
            Err(status) => tracing::warn!(
                worker_id = %id,
                code = ?status.code(),
                message = status.message(),
                "listen stream failed; reconnecting"
            ),
        }
        failures = failures.saturating_add(1);
        let delay = backoff::delay(failures);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Ok when the stream ended cleanly or nobody takes assignments any more.
async fn listen_once(
    connection: &Connection,
    worker_id: String,
    assigned: &mpsc::Sender<AssignedAction>,
    failures: &mut u32,
) -> Result<(), tonic::Status> {
    let mut stream = connection
        .dispatcher()
        .listen_v2(WorkerListenRequest { worker_id })
        .await?
        .into_inner();
    *failures = 0;
    while let Some(action) = stream.message().await? {
        if assigned.send(action).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}
