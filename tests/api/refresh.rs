//! Refresh tokens (spec "Refreshing access tokens"): `refresh_token: true` on login and
//! register, `POST /v3/refresh`, soft logout on expiry, rotation with a short grace, and reuse
//! detection (a spent refresh token revokes its device).

use reqwest::StatusCode;
use serde_json::{Value, json};
use vestibule::{accounts::events::AccountEvent, config::Seconds};

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

/// Refreshes with `refresh_token`, returning status and body.
async fn refresh(server: &TestServer, refresh_token: &Value) -> (StatusCode, Value) {
    server
        .post(REFRESH, None, &json!({ "refresh_token": refresh_token }))
        .await
}

/// The status of `whoami` with `access_token`.
async fn whoami(server: &TestServer, access_token: &Value) -> StatusCode {
    server.get(WHOAMI, access_token.as_str()).await.0
}

/// The refresh token a refresh replaced is accepted again for the grace (60 s by default),
/// whether or not the new tokens were used; presenting the refresh token that the retry
/// replaced then revokes the device (a thief who used the old token first is caught when the
/// legitimate client refreshes).
#[tokio::test]
async fn within_the_grace_the_old_refresh_token_works_again() {
    let server = TestServer::spawn().await;
    let login = refreshable_login(&server).await;
    server.events.take();
    let (status, first) = refresh(&server, &login["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        whoami(&server, &login["access_token"]).await,
        StatusCode::UNAUTHORIZED
    );
    // The new access token is used: under the old rule that ended the grace at once.
    assert_eq!(
        whoami(&server, &first["access_token"]).await,
        StatusCode::OK
    );

    server.clock.advance(59_000);
    let (status, second) = refresh(&server, &login["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let expired = server.get(WHOAMI, first["access_token"].as_str()).await;
    assert_error(&expired, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    assert_eq!(
        whoami(&server, &second["access_token"]).await,
        StatusCode::OK
    );
    assert_eq!(server.events.take(), [], "nothing was revoked");

    // The first refresh's token was replaced by the retry: presenting it revokes everything.
    let reused = refresh(&server, &first["refresh_token"]).await;
    assert_error(&reused, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    assert_eq!(
        whoami(&server, &second["access_token"]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&server, &second["refresh_token"]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&server, &login["refresh_token"]).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// Security review F12: a refresh token presented after its grace is taken as stolen. The
/// device is deleted with all its tokens (also the newest pair), the deletion is reported, and
/// the answer is the spec's 401 `M_UNKNOWN_TOKEN`, with `soft_logout: false` since the session
/// is gone.
#[tokio::test]
async fn a_refresh_token_presented_after_its_grace_revokes_the_device() {
    let server = TestServer::spawn().await;
    let login = refreshable_login(&server).await;
    let (status, current) = refresh(&server, &login["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{current}");
    server.events.take();

    server.clock.advance(60_000);
    let reused = refresh(&server, &login["refresh_token"]).await;
    assert_error(&reused, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    assert_eq!(reused.1["soft_logout"], false);
    let revoked = server.get(WHOAMI, current["access_token"].as_str()).await;
    assert_error(&revoked, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    let refused = refresh(&server, &current["refresh_token"]).await;
    assert_error(&refused, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    let user_id = login["user_id"].as_str().expect("user_id");
    let device_id = login["device_id"].as_str().expect("device_id");
    assert_eq!(
        server.events.take(),
        [AccountEvent::DeviceDeleted {
            user_id: user_id.try_into().expect("user ID"),
            device_id: device_id.into(),
        }]
    );
    let other = server.login("rob", "password123").await;
    let (status, devices) = server
        .get("/_matrix/client/v3/devices", other["access_token"].as_str())
        .await;
    assert_eq!(status, StatusCode::OK, "{devices}");
    assert!(
        devices["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .all(|device| device["device_id"] != device_id),
        "{devices}"
    );
}

/// The grace is `tokens.refresh_grace_secs` and is counted from the first rotation away from
/// the token: retrying within it does not extend it.
#[tokio::test]
async fn the_grace_is_configurable_and_not_extended_by_retries() {
    let server = TestServer::with(|config| {
        config.tokens.refresh_grace_secs = Seconds::of(1);
    })
    .await;
    let login = refreshable_login(&server).await;
    assert_eq!(
        refresh(&server, &login["refresh_token"]).await.0,
        StatusCode::OK
    );
    server.clock.advance(999);
    let (status, retried) = refresh(&server, &login["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    server.clock.advance(1);
    let late = refresh(&server, &login["refresh_token"]).await;
    assert_error(&late, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    assert_eq!(
        whoami(&server, &retried["access_token"]).await,
        StatusCode::UNAUTHORIZED
    );
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
