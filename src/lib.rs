//! Vestibule: a Matrix account and authentication server.
//!
//! Data flows one way: [`http`] (axum handlers) → [`uia`] and [`accounts`] (rules) →
//! [`store`] (SQLite or PostgreSQL). See `ARCHITECTURE.md`.

pub mod accounts;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod email;
pub mod http;
pub mod identity;
mod private_files;
pub mod ratelimit;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod threepids;
pub mod tokens;
pub mod uia;

use std::{future::Future, time::Duration};

use tokio::net::TcpListener;

use crate::{app::AppState, server::Server};

/// How often expired UIA sessions and refilled rate-limit buckets are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);
/// How often devices' last-seen times are written to the store.
const LAST_SEEN_FLUSH_INTERVAL: Duration = Duration::from_secs(15);
/// How often the email outbox is checked for emails other instances queued or that are due
/// again (this instance's own are sent at once).
const OUTBOX_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The sockets a server answers on.
pub struct Listeners {
    /// Client traffic (`listen`): the API.
    pub client: Vec<TcpListener>,
    /// Prometheus scrapes (`observability.metrics_listen`): `/metrics` only, when enabled.
    pub metrics: Option<TcpListener>,
}

/// Serves `state` on every listener until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    state: AppState,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let purge = tokio::spawn(purge_expired_sessions(state.clone()));
    let flush = tokio::spawn(flush_last_seen(state.clone()));
    let threepids = state.threepids.clone();
    let outbox = tokio::spawn(async move { threepids.run_outbox(OUTBOX_POLL_INTERVAL).await });
    let accounts = state.accounts.clone();
    let server = Server::new(&state.config.http);
    let metrics = http::metrics::router(state.metrics.clone());
    let router = http::router(state);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners.client {
        servers.spawn(
            server
                .clone()
                .run(listener, router.clone(), stop_rx.clone()),
        );
    }
    if let Some(listener) = listeners.metrics {
        servers.spawn(server.run(listener, metrics, stop_rx));
    }
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut result = Ok(());
    while let Some(joined) = servers.join_next().await {
        if let Err(err) = joined {
            result = Err(std::io::Error::other(err));
        }
    }
    purge.abort();
    flush.abort();
    outbox.abort();
    if let Err(err) = accounts.flush_last_seen().await {
        tracing::warn!(error = %err, "could not write devices' last-seen times at shutdown");
    }
    result
}

async fn flush_last_seen(state: AppState) {
    let mut interval = tokio::time::interval(LAST_SEEN_FLUSH_INTERVAL);
    loop {
        interval.tick().await;
        if let Err(err) = state.accounts.flush_last_seen().await {
            tracing::warn!(error = %err, "could not write devices' last-seen times");
        }
    }
}

async fn purge_expired_sessions(state: AppState) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    loop {
        interval.tick().await;
        match state.uia.purge_expired().await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "purged expired UIA sessions"),
            Err(err) => tracing::warn!(error = ?err, "could not purge expired UIA sessions"),
        }
        if let Err(err) = state.accounts.purge_expired_grants().await {
            tracing::warn!(error = %err, "could not purge expired grants and spent refresh tokens");
        }
        if let Err(err) = state.limiter.purge_idle().await {
            tracing::warn!(error = %err, "could not purge idle rate-limit buckets");
        }
    }
}
