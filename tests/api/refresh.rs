//! Refresh tokens (spec "Refreshing access tokens"): `refresh_token: true` on login and
//! register, `POST /v3/refresh`, soft logout on expiry, rotation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_error};

const WHOAMI: &str = "/_matrix/client/v3/account/whoami";
const REFRESH: &str = "/_matrix/client/v3/refresh";

async fn refreshable_login(server: &TestServer) -> Value {
    server.register("rob", "password123").await;
    let body = json!({"type": "m.login.password", "user": "rob", "password": "password123", "refresh_token": true});
    let (status, login) = server.post("/_matrix/client/v3/login", None, &body).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    login
}

#[tokio::test]
async fn login_and_register_hand_out_refresh_tokens_on_request() {
    let server = TestServer::spawn().await;
    let login = refreshable_login(&server).await;
    assert!(
        login["refresh_token"]
            .as_str()
            .is_some_and(|token| token.starts_with("vrt_")),
        "{login}"
    );
    assert_eq!(login["expires_in_ms"], 300_000);
    let plain = server.login("rob", "password123").await;
    assert!(
        plain.get("refresh_token").is_none() && plain.get("expires_in_ms").is_none(),
        "{plain}"
    );

    let body = json!({"username": "reg", "password": "password123", "refresh_token": true, "auth": {"type": "m.login.dummy"}});
    let (status, registered) = server
        .post("/_matrix/client/v3/register", None, &body)
        .await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert!(
        registered["refresh_token"].is_string() && registered["expires_in_ms"] == 300_000,
        "{registered}"
    );
}

#[tokio::test]
async fn expired_token_is_soft_logout_and_refresh_recovers() {
    let server = TestServer::spawn().await;
    let login = refreshable_login(&server).await;
    server.clock.advance(300_001);
    let expired = server.get(WHOAMI, login["access_token"].as_str()).await;
    assert_error(&expired, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    assert_eq!(expired.1["soft_logout"], true);

    let (status, refreshed) = server
        .post(
            REFRESH,
            None,
            &json!({"refresh_token": login["refresh_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["expires_in_ms"], 300_000);
    assert_ne!(refreshed["refresh_token"], login["refresh_token"]);
    let (status, whoami) = server.get(WHOAMI, refreshed["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        whoami["device_id"], login["device_id"],
        "the session keeps its device"
    );
}

#[tokio::test]
async fn rotation_revokes_the_old_tokens() {
    let server = TestServer::spawn().await;
    let login = refreshable_login(&server).await;
    let old_refresh = json!({"refresh_token": login["refresh_token"]});
    let (_, first) = server.post(REFRESH, None, &old_refresh).await;
    assert_error(
        &server.get(WHOAMI, login["access_token"].as_str()).await,
        StatusCode::UNAUTHORIZED,
        "M_UNKNOWN_TOKEN",
    );
    // The response may have been lost: until the new tokens are used, the old refresh token
    // still works (and supersedes the first refresh).
    let (status, second) = server.post(REFRESH, None, &old_refresh).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_error(
        &server.get(WHOAMI, first["access_token"].as_str()).await,
        StatusCode::UNAUTHORIZED,
        "M_UNKNOWN_TOKEN",
    );
    // Once the new access token is used, the old refresh token is refused.
    assert_eq!(
        server.get(WHOAMI, second["access_token"].as_str()).await.0,
        StatusCode::OK
    );
    let reused = server.post(REFRESH, None, &old_refresh).await;
    assert_error(&reused, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    assert_eq!(reused.1["soft_logout"], false);
    // The current refresh token keeps working.
    let (status, _) = server
        .post(
            REFRESH,
            None,
            &json!({"refresh_token": second["refresh_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_refresh_requests() {
    let server = TestServer::spawn().await;
    assert_error(
        &server.post(REFRESH, None, &json!({})).await,
        StatusCode::BAD_REQUEST,
        "M_MISSING_PARAM",
    );
    assert_error(
        &server
            .post(REFRESH, None, &json!({"refresh_token": 7}))
            .await,
        StatusCode::BAD_REQUEST,
        "M_BAD_JSON",
    );
    assert_error(
        &server
            .post(REFRESH, None, &json!({"refresh_token": "vrt_unknown"}))
            .await,
        StatusCode::UNAUTHORIZED,
        "M_UNKNOWN_TOKEN",
    );
    let login = refreshable_login(&server).await;
    let (status, _) = server
        .post(
            "/_matrix/client/v3/logout",
            login["access_token"].as_str(),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let after_logout = server
        .post(
            REFRESH,
            None,
            &json!({"refresh_token": login["refresh_token"]}),
        )
        .await;
    assert_error(&after_logout, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
}
