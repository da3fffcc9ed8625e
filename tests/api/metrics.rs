//! Prometheus metrics: served on their own listener only, with labels no client can choose.

use reqwest::{Method, StatusCode};

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

#[tokio::test]
async fn labels_come_from_fixed_sets_whatever_the_client_sends() {
    let server = TestServer::spawn().await;
    for method in ["X0000001", "X0000002"] {
        let method = Method::from_bytes(method.as_bytes()).expect("a method token");
        assert_error(
            &server
                .request(method, "/_matrix/client/versions", None, None)
                .await,
            StatusCode::METHOD_NOT_ALLOWED,
            "M_UNRECOGNIZED",
        );
    }
    assert_error(
        &server.get("/no-such-path-5b1e", None).await,
        StatusCode::NOT_FOUND,
        "M_UNRECOGNIZED",
    );

    let metrics = scrape(&server).await;
    assert!(!metrics.contains("X000000"), "{metrics}");
    assert!(!metrics.contains("no-such-path-5b1e"), "{metrics}");
    let other = counter_lines(
        &metrics,
        &[
            r#"route="/_matrix/client/versions""#,
            r#"method="other""#,
            r#"status="405""#,
        ],
    );
    assert!(!other.is_empty(), "{metrics}");
    let unmatched = counter_lines(&metrics, &[r#"route="unmatched""#, r#"status="404""#]);
    assert!(!unmatched.is_empty(), "{metrics}");
}
