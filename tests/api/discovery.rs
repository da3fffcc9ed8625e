//! `/versions`, `/.well-known/matrix/client`, `/capabilities` and CORS.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, assert_error};

#[tokio::test]
async fn versions_lists_served_spec_versions() {
    let server = TestServer::spawn().await;
    let (status, body) = server.get("/_matrix/client/versions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["versions"],
        json!(["r0.5.0", "r0.6.0", "r0.6.1", "v1.1"])
    );
    assert!(body["unstable_features"].is_object());
}

#[tokio::test]
async fn well_known_points_at_public_baseurl() {
    let server = TestServer::with(|config| {
        config.public_baseurl = "https://matrix.example.org/".parse().expect("URL");
        config.registration.allow_unverified_on_public_address = true;
    })
    .await;
    let (status, body) = server.get("/.well-known/matrix/client", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"m.homeserver": {"base_url": "https://matrix.example.org/"}})
    );
}

#[tokio::test]
async fn capabilities_reflect_configuration() {
    let server = TestServer::with(|config| {
        config.password.change_enabled = false;
        config.profile.displayname_changes = false;
    })
    .await;
    let token = server.register("cap", "password123").await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (status, body) = server
        .get("/_matrix/client/v3/capabilities", Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["capabilities"]["m.change_password"],
        json!({"enabled": false})
    );
    assert_eq!(
        body["capabilities"]["m.set_displayname"],
        json!({"enabled": false})
    );

    let server = TestServer::spawn().await;
    let token = server.register("cap", "password123").await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (_, body) = server
        .get("/_matrix/client/r0/capabilities", Some(&token))
        .await;
    // Enabled is the spec's default for m.change_password, so it may be omitted.
    assert_ne!(
        body["capabilities"]["m.change_password"],
        json!({"enabled": false}),
        "{body}"
    );
    assert_error(
        &server.get("/_matrix/client/v3/capabilities", None).await,
        StatusCode::UNAUTHORIZED,
        "M_MISSING_TOKEN",
    );
}

#[tokio::test]
async fn cors_headers_follow_the_web_browser_clients_section() {
    let server = TestServer::spawn().await;
    let response = server
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/_matrix/client/v3/login", server.base),
        )
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert!(response.status().is_success());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let methods = headers["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    for method in ["GET", "POST", "PUT", "DELETE", "OPTIONS"] {
        assert!(methods.contains(method), "{methods}");
    }
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    for header in ["x-requested-with", "content-type", "authorization"] {
        assert!(allowed.contains(header), "{allowed}");
    }
    let response = server
        .http
        .get(format!("{}/_matrix/client/versions", server.base))
        .header("origin", "https://app.example")
        .send()
        .await
        .expect("get");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}
