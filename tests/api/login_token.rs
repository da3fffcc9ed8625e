//! Login tokens: `POST /v1/login/get_token` behind UIA and the `m.login.token` login type.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_error};

const GET_TOKEN: &str = "/_matrix/client/v1/login/get_token";
const LOGIN: &str = "/_matrix/client/v3/login";

/// Completes password UIA on `get_token` and returns the 200 body.
pub(crate) async fn get_login_token(
    server: &TestServer,
    token: &str,
    user: &str,
    password: &str,
) -> Value {
    let (status, challenge) = server.post(GET_TOKEN, Some(token), &json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    assert_eq!(
        challenge["flows"],
        json!([{"stages": ["m.login.password"]}])
    );
    let body = json!({"auth": {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
        "session": challenge["session"],
    }});
    let (status, issued) = server.post(GET_TOKEN, Some(token), &body).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    issued
}

#[tokio::test]
async fn a_login_token_signs_in_another_device_once() {
    let server = TestServer::spawn().await;
    let alice = server.register("alice", "password123").await;
    let token = alice["access_token"].as_str().unwrap();

    let (_, types) = server.get(LOGIN, None).await;
    assert!(
        types["flows"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "m.login.token", "get_login_token": true})),
        "{types}"
    );
    let (_, capabilities) = server
        .get("/_matrix/client/v3/capabilities", Some(token))
        .await;
    assert_eq!(
        capabilities["capabilities"]["m.get_login_token"]["enabled"],
        true
    );

    let issued = get_login_token(&server, token, "alice", "password123").await;
    assert_eq!(issued["expires_in_ms"], 120_000);
    let login = json!({"type": "m.login.token", "token": issued["login_token"]});
    let (status, second) = server.post(LOGIN, None, &login).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["user_id"], "@alice:localhost");
    assert_ne!(second["device_id"], alice["device_id"]);
    let (status, _) = server
        .get(
            "/_matrix/client/v3/account/whoami",
            second["access_token"].as_str(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Single use.
    assert_error(
        &server.post(LOGIN, None, &login).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
}

#[tokio::test]
async fn a_login_token_expires_and_unknown_ones_are_refused() {
    let server = TestServer::spawn().await;
    let alice = server.register("alice", "password123").await;
    let issued = get_login_token(
        &server,
        alice["access_token"].as_str().unwrap(),
        "alice",
        "password123",
    )
    .await;
    server.clock.advance(120_001);
    let login = json!({"type": "m.login.token", "token": issued["login_token"]});
    assert_error(
        &server.post(LOGIN, None, &login).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    let unknown = json!({"type": "m.login.token", "token": "vlt_nonsense"});
    assert_error(
        &server.post(LOGIN, None, &unknown).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    let missing = json!({"type": "m.login.token"});
    let (status, body) = server.post(LOGIN, None, &missing).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn get_token_asks_for_the_password_every_time_and_refuses_a_wrong_one() {
    let server = TestServer::spawn().await;
    let alice = server.register("alice", "password123").await;
    let token = alice["access_token"].as_str().unwrap();
    get_login_token(&server, token, "alice", "password123").await;
    let (status, challenge) = server.post(GET_TOKEN, Some(token), &json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let wrong = json!({"auth": {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "alice"},
        "password": "not-it",
        "session": challenge["session"],
    }});
    let (status, failed) = server.post(GET_TOKEN, Some(token), &wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(failed["errcode"], "M_FORBIDDEN");
    assert_error(
        &server.post(GET_TOKEN, None, &json!({})).await,
        StatusCode::UNAUTHORIZED,
        "M_MISSING_TOKEN",
    );
}

#[tokio::test]
async fn disabled_login_tokens_are_refused_and_not_advertised() {
    let server = TestServer::with(|config| config.tokens.login_token_enabled = false).await;
    let alice = server.register("alice", "password123").await;
    let token = alice["access_token"].as_str().unwrap();
    assert_error(
        &server.post(GET_TOKEN, Some(token), &json!({})).await,
        StatusCode::BAD_REQUEST,
        "M_UNKNOWN",
    );
    let (_, capabilities) = server
        .get("/_matrix/client/v3/capabilities", Some(token))
        .await;
    assert_eq!(
        capabilities["capabilities"]["m.get_login_token"]["enabled"],
        false
    );
    let (_, types) = server.get(LOGIN, None).await;
    assert!(
        types["flows"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "m.login.token"})),
        "{types}"
    );
}

#[tokio::test]
async fn get_token_is_rate_limited_per_account() {
    let server = TestServer::with(|config| {
        config.rate_limits.enabled = true;
        config.rate_limits.register_per_ip.burst = 100;
        config.rate_limits.uia_password_per_account.burst = 100;
    })
    .await;
    let alice = server.register("alice", "password123").await;
    let token = alice["access_token"].as_str().unwrap();
    get_login_token(&server, token, "alice", "password123").await;
    let limited = server.post(GET_TOKEN, Some(token), &json!({})).await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED");
    server.clock.advance(60_000);
    let (status, _) = server.post(GET_TOKEN, Some(token), &json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
