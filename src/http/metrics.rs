//! Request metrics, and the router of the metrics listener. Every label takes its value from a
//! fixed set, never from client input, so no request can add a series.

use std::time::Instant;

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::http::error::MatrixError;

/// The router of the metrics listener: `GET /metrics` in Prometheus text format (404 when no
/// recorder could be installed), `M_UNRECOGNIZED` for anything else.
pub fn router(handle: Option<PrometheusHandle>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .fallback(|| async { MatrixError::unrecognized(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async {
            MatrixError::unrecognized(StatusCode::METHOD_NOT_ALLOWED)
        })
        .with_state(handle)
}

/// Middleware: counts requests and their latency per route template, method and status.
pub(super) async fn record(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [
        ("route", route),
        ("method", method.to_owned()),
        ("status", status),
    ];
    metrics::counter!("vestibule_http_requests_total", &labels).increment(1);
    metrics::histogram!("vestibule_http_request_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method's label: its name if it is one of the methods clients use, else `other` (a
/// client can send any token as a method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// `GET /metrics`.
async fn render(State(handle): State<Option<PrometheusHandle>>) -> Response {
    match handle {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => MatrixError::unrecognized(StatusCode::NOT_FOUND).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_methods_share_one_label() {
        for name in ["X0000001", "PROPFIND", "get", "CONNECT", "TRACE"] {
            let method = Method::from_bytes(name.as_bytes()).expect("a method token");
            assert_eq!(method_label(&method), "other", "{name}");
        }
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}
