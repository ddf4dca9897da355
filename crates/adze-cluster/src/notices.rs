//! The LISTEN connection: notifications wake the readers of the tables.
//!
//! One dedicated connection (LISTEN needs one outside the pool) hears `adze_calls` (a
//! call for some tenant: its owner reads them) and this replica's own channel (answers
//! and deliveries for it). When the connection drops it is made again with backoff, and
//! the readers run once, since notifications sent meanwhile are gone.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::Cluster;

pub async fn run(cluster: Arc<Cluster>) {
    let mut delay = Duration::from_millis(100);
    loop {
        match listen(&cluster).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "the LISTEN connection failed; reconnecting");
            }
        }
        tokio::select! {
            () = cluster.stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Listens until the cluster stops (`Ok`) or the connection fails.
async fn listen(cluster: &Cluster) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) =
        tokio_postgres::connect(&cluster.config.database_url, NoTls).await?;
    let (notices, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notification)) => {
                    let _ = notices.send(Ok(notification));
                }
                Ok(_) => {}
                Err(error) => {
                    let _ = notices.send(Err(error));
                    return;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN adze_calls; LISTEN {}", cluster.channel()))
        .await?;
    // Anything sent before the LISTEN took effect.
    cluster.calls_waiting.notify_one();
    cluster.mine_waiting.notify_one();
    let outcome = loop {
        tokio::select! {
            () = cluster.stop.cancelled() => break Ok(()),
            notice = heard.recv() => match notice {
                Some(Ok(notification)) => {
                    if notification.channel() == "adze_calls" {
                        let owned = notification
                            .payload()
                            .parse()
                            .is_ok_and(|tenant| cluster.leases.is_owned(tenant));
                        if owned {
                            cluster.calls_waiting.notify_one();
                        }
                    } else {
                        cluster.mine_waiting.notify_one();
                    }
                }
                Some(Err(error)) => break Err(error),
                None => break Ok(()),
            },
        }
    };
    driver.abort();
    outcome
}
