//! Prometheus metrics: served on their own listener only.

use reqwest::StatusCode;

use crate::support::{TestServer, assert_error};

/// The metrics page of `server`.
async fn scrape(server: &TestServer) -> String {
    let response = server
        .http
        .get(server.metrics_url())
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain"),
    );
    response.text().await.expect("metrics text")
}

/// The lines of the request counter whose labels include every one of `labels`.
fn counter_lines<'a>(metrics: &'a str, labels: &[&str]) -> Vec<&'a str> {
    metrics
        .lines()
        .filter(|line| line.starts_with("vestibule_http_requests_total{"))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .collect()
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_not_the_client_one() {
    let server = TestServer::spawn().await;
    let (status, _) = server.get("/_matrix/client/versions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        &server.get("/metrics", None).await,
        StatusCode::NOT_FOUND,
        "M_UNRECOGNIZED",
    );

    let metrics = scrape(&server).await;
    let versions = counter_lines(
        &metrics,
        &[
            r#"route="/_matrix/client/versions""#,
            r#"method="GET""#,
            r#"status="200""#,
        ],
    );
    assert!(!versions.is_empty(), "{metrics}");
}
