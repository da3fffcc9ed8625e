//! Password change through UIA: `POST /v3/account/password` and the v2_alpha seed's
//! `POST /v2_alpha/account/password`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use vestibule::config::Quota;

use crate::support::{TestServer, assert_error};

const PASSWORD: &str = "/_matrix/client/v3/account/password";
const WHOAMI: &str = "/_matrix/client/v3/account/whoami";

fn password_auth(session: &Value, user: &str, password: &str) -> Value {
    json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
        "session": session,
    })
}

fn token(body: &Value) -> &str {
    body["access_token"].as_str().expect("access token")
}

#[tokio::test]
async fn change_password_through_uia_logs_out_other_devices() {
    let server = TestServer::spawn().await;
    let first = server.register("uma", "old-password").await;
    let other = server.login("uma", "old-password").await;

    let body = json!({"new_password": "new-password"});
    let (status, challenge) = server.post(PASSWORD, Some(token(&first)), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    assert_eq!(
        challenge["flows"],
        json!([{"stages": ["m.login.password"]}])
    );
    let session = challenge["session"].clone();

    let mut body = body;
    body["auth"] = password_auth(&session, "@uma:localhost", "wrong-password");
    let (status, failed) = server.post(PASSWORD, Some(token(&first)), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(failed["errcode"], "M_FORBIDDEN");
    assert_eq!(failed["flows"], challenge["flows"]);

    body["auth"] = password_auth(&session, "@uma:localhost", "old-password");
    let (status, done) = server.post(PASSWORD, Some(token(&first)), &body).await;
    assert_eq!((status, done), (StatusCode::OK, json!({})));

    assert_eq!(
        server.get(WHOAMI, Some(token(&first))).await.0,
        StatusCode::OK,
        "the caller stays logged in"
    );
    assert_error(
        &server.get(WHOAMI, Some(token(&other))).await,
        StatusCode::UNAUTHORIZED,
        "M_UNKNOWN_TOKEN",
    );
    let old = json!({"type": "m.login.password", "user": "uma", "password": "old-password"});
    assert_error(
        &server.post("/_matrix/client/v3/login", None, &old).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    server.login("uma", "new-password").await;
}

#[tokio::test]
async fn logout_devices_false_keeps_other_sessions() {
    let server = TestServer::spawn().await;
    let first = server.register("vic", "old-password").await;
    let other = server.login("vic", "old-password").await;
    let body = json!({"new_password": "new-password", "logout_devices": false, "auth": password_auth(&Value::Null, "vic", "old-password")});
    let (status, _) = server
        .post(
            "/_matrix/client/r0/account/password",
            Some(token(&first)),
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.get(WHOAMI, Some(token(&other))).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refusals_before_uia() {
    let server = TestServer::spawn().await;
    let user = server.register("wes", "old-password").await;
    let weak = server
        .post(
            PASSWORD,
            Some(token(&user)),
            &json!({"new_password": "short"}),
        )
        .await;
    assert_error(&weak, StatusCode::BAD_REQUEST, "M_WEAK_PASSWORD");
    let anonymous = server
        .post(PASSWORD, None, &json!({"new_password": "new-password"}))
        .await;
    assert_error(&anonymous, StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN");
    let missing = server.post(PASSWORD, Some(token(&user)), &json!({})).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "M_MISSING_PARAM");

    let server = TestServer::with(|config| config.password.change_enabled = false).await;
    let user = server.register("wes", "old-password").await;
    let disabled = server
        .post(
            PASSWORD,
            Some(token(&user)),
            &json!({"new_password": "new-password"}),
        )
        .await;
    assert_error(&disabled, StatusCode::FORBIDDEN, "M_FORBIDDEN");
}

#[tokio::test]
async fn a_session_belongs_to_its_user() {
    let server = TestServer::spawn().await;
    let xia = server.register("xia", "password-x").await;
    let yan = server.register("yan", "password-y").await;
    let body = json!({"new_password": "new-password"});
    let (_, challenge) = server.post(PASSWORD, Some(token(&xia)), &body).await;
    let mut body = body;
    body["auth"] = password_auth(&challenge["session"], "yan", "password-y");
    assert_error(
        &server.post(PASSWORD, Some(token(&yan)), &body).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    // Naming another user inside one's own session is refused outright (issue 10: 403, not a
    // 401 retry).
    body["auth"] = password_auth(&challenge["session"], "yan", "password-y");
    assert_error(
        &server.post(PASSWORD, Some(token(&xia)), &body).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
}

#[tokio::test]
async fn uia_password_attempts_are_rate_limited_per_account() {
    let server = TestServer::with(|config| {
        config.rate_limits.enabled = true;
        config.rate_limits.login_per_ip = Quota {
            per_second: 1000.0,
            burst: 1000,
        };
        config.rate_limits.login_per_account = Quota {
            per_second: 1000.0,
            burst: 1000,
        };
        config.rate_limits.register_per_ip = Quota {
            per_second: 1000.0,
            burst: 1000,
        };
        config.rate_limits.uia_password_per_account = Quota {
            per_second: 0.5,
            burst: 2,
        };
    })
    .await;
    let user = server.register("zoe", "old-password").await;
    let body = json!({"new_password": "new-password"});
    let (_, challenge) = server.post(PASSWORD, Some(token(&user)), &body).await;
    let mut body = body;
    body["auth"] = password_auth(&challenge["session"], "zoe", "wrong-password");
    for _ in 0..2 {
        let (_, failed) = server.post(PASSWORD, Some(token(&user)), &body).await;
        assert_eq!(failed["errcode"], "M_FORBIDDEN");
    }
    body["auth"] = password_auth(&challenge["session"], "zoe", "old-password");
    let (status, limited) = server.post(PASSWORD, Some(token(&user)), &body).await;
    assert_eq!(
        (status, limited["errcode"].clone()),
        (StatusCode::UNAUTHORIZED, json!("M_LIMIT_EXCEEDED"))
    );
    server.clock.advance(2_000);
    let (status, _) = server.post(PASSWORD, Some(token(&user)), &body).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn v2_alpha_password_change() {
    let server = TestServer::spawn().await;
    let user = server.register("ada", "old-password").await;
    let path = "/_matrix/client/v2_alpha/account/password";
    let body = json!({"new_password": "new-password"});
    let (status, challenge) = server.post(path, Some(token(&user)), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let mut body = body;
    body["auth"] = password_auth(&challenge["session"], "ada", "old-password");
    let (status, done) = server.post(path, Some(token(&user)), &body).await;
    assert_eq!((status, done), (StatusCode::OK, json!({})));
    server.login("ada", "new-password").await;
    let missing = server.post(path, Some(token(&user)), &json!({})).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "M_MISSING_PARAM");
}

#[tokio::test]
async fn policy_rules_are_named_in_the_refusal() {
    let server = TestServer::with(|config| {
        config.password.require_digit = true;
        config.password.require_symbol = true;
    })
    .await;
    let register = |password: &str| json!({"username": "bea", "password": password});
    for (password, rule) in [
        ("nodigits!", "digit"),
        ("n0symbols", "symbol"),
        ("bea-pass-1", "username"),
    ] {
        let response = server
            .post("/_matrix/client/v3/register", None, &register(password))
            .await;
        assert_error(&response, StatusCode::BAD_REQUEST, "M_WEAK_PASSWORD");
        assert!(
            response.1["error"]
                .as_str()
                .expect("message")
                .contains(rule),
            "{}",
            response.1
        );
    }
    let user = server.register("bea", "g00d-pass").await;
    let change = server
        .post(
            PASSWORD,
            Some(token(&user)),
            &json!({"new_password": "BEA-and-1"}),
        )
        .await;
    assert_error(&change, StatusCode::BAD_REQUEST, "M_WEAK_PASSWORD");
}
