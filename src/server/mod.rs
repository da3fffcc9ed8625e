//! The HTTP server under the routers: accepting connections and serving HTTP/1.1 and HTTP/2
//! on them, within limits that keep one client from holding the server's connections:
//!
//! - a request's headers must arrive within `http.header_read_timeout_secs`: the first
//!   request's within that time of connecting (on either protocol: a connection that has not
//!   brought one by then is dropped), and on HTTP/1.1 each later one within that time of the
//!   previous response (hyper's header-read timer, which also bounds the first from its first
//!   byte);
//! - a connection with no request in flight for `http.idle_timeout_secs` is closed;
//! - a client network holds at most `http.max_connections_per_ip` connections; one more is
//!   closed at once.
//!
//! A request counts as in flight from its complete head until its response is ready. Closing a
//! connection that has served requests, for idleness as for shutdown, is graceful: hyper
//! finishes the response being written and takes no further request.

mod idle;
mod per_ip;

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::{Pin, pin},
    sync::Arc,
    time::Duration,
};

use axum::{Router, extract::ConnectInfo, http::Request, response::Response};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinSet,
};
use tower::ServiceExt;

use self::{
    idle::{Activity, Idle},
    per_ip::{ConnectionCap, Slot},
};
use crate::config::HttpConfig;

/// Serves routers on listeners within the connection limits of `http.*`; cheap to clone.
#[derive(Clone)]
pub struct Server {
    builder: Arc<Builder<TokioExecutor>>,
    cap: ConnectionCap,
    header_read_timeout: Duration,
    idle_timeout: Duration,
}

impl Server {
    /// A server with the limits in `config`. Its listeners share one count per client network.
    pub fn new(config: &HttpConfig) -> Self {
        let header_read_timeout = config.header_read_timeout_secs.as_duration();
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout);
        Self {
            builder: Arc::new(builder),
            cap: ConnectionCap::new(config.max_connections_per_ip.get(), &config.trusted_proxies),
            header_read_timeout,
            idle_timeout: config.idle_timeout_secs.as_duration(),
        }
    }

    /// Serves `router` on the connections `listener` accepts until `stop` turns true; then
    /// closes the listener, lets every connection finish the requests in flight, and returns
    /// once all are closed.
    pub async fn run(self, listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => match self.cap.admit(peer.ip()) {
                        Some(slot) => {
                            let connection = self.clone().serve_connection(
                                stream,
                                peer,
                                router.clone(),
                                stop.clone(),
                                slot,
                            );
                            connections.spawn(connection);
                        }
                        None => refuse(stream, peer),
                    },
                    Err(err) => accept_failed(err).await,
                },
                () = stopping(&mut stop) => break,
                Some(_) = connections.join_next() => {}
            }
        }
        drop(listener);
        while connections.join_next().await.is_some() {}
    }

    /// Serves one connection until it closes: by the client, by an error, or gracefully when
    /// it has been idle too long or the server stops.
    async fn serve_connection(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        router: Router,
        mut stop: watch::Receiver<bool>,
        _slot: Slot,
    ) {
        let activity = Activity::new();
        let service = ConnectionService {
            router,
            peer,
            activity: activity.clone(),
        };
        let mut connection = pin!(self.builder.serve_connection(TokioIo::new(stream), service));
        let mut idle = pin!(activity.idle_for(self.header_read_timeout, self.idle_timeout));
        let mut closing = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(%peer, error = %err, "connection closed on an error");
                    }
                    return;
                }
                went_idle = &mut idle, if !closing => {
                    if went_idle == Idle::Unused {
                        tracing::debug!(%peer, "connection closed: no request head in time");
                        return;
                    }
                }
                () = stopping(&mut stop), if !closing => {}
            }
            connection.as_mut().graceful_shutdown();
            closing = true;
        }
    }
}

/// Resolves once the server is stopping (or gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Closes a connection over the per-IP cap.
fn refuse(stream: TcpStream, peer: SocketAddr) {
    drop(stream);
    tracing::debug!(%peer, "connection closed: too many open from this address");
    metrics::counter!("vestibule_http_connections_refused_total").increment(1);
}

/// Handles a failed `accept`: a client that left before it was accepted concerns nobody else;
/// anything else (such as running out of file descriptors) is logged, and accepting pauses for
/// a second rather than spin.
async fn accept_failed(err: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %err, "cannot accept connections");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The router as hyper calls it on one connection: each request carries the peer's address
/// (`ConnectInfo`, as the client-IP extractor expects) and is in flight until its response is
/// ready.
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    activity: Activity,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let in_flight = self.activity.begin();
        let response = self.router.clone().oneshot(request);
        Box::pin(async move {
            let response = response.await;
            drop(in_flight);
            response
        })
    }
}
