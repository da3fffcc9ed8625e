//! The seeds' APIs on their original prefixes: v1 login and registration, v2_alpha
//! registration and token refresh. Accounts and tokens are shared with the current API.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, assert_error};

const V1_LOGIN: &str = "/_matrix/client/api/v1/login";
const V1_REGISTER: &str = "/_matrix/client/api/v1/register";
const V2_REGISTER: &str = "/_matrix/client/v2_alpha/register";
const V2_REFRESH: &str = "/_matrix/client/v2_alpha/tokenrefresh";
const WHOAMI: &str = "/_matrix/client/v3/account/whoami";

#[tokio::test]
async fn v1_login_flows_and_password_login() {
    let server = TestServer::spawn().await;
    let (status, flows) = server.get(V1_LOGIN, None).await;
    assert_eq!(
        (status, flows),
        (
            StatusCode::OK,
            json!({"flows": [{"type": "m.login.password"}]})
        )
    );
    server.register("vera", "password123").await;
    for body in [
        json!({"type": "m.login.password", "user": "vera", "password": "password123"}),
        json!({"type": "m.login.password", "user": "@vera:localhost", "password": "password123"}),
        json!({"type": "m.login.password", "username": "vera", "password": "password123"}),
    ] {
        let (status, login) = server.post(V1_LOGIN, None, &body).await;
        assert_eq!(status, StatusCode::OK, "{body} -> {login}");
        assert_eq!(login["user_id"], "@vera:localhost");
        assert_eq!(login["home_server"], "localhost");
        let token = login["access_token"].as_str().expect("token");
        // Tokens issued here work on every prefix, also as the v1 query parameter.
        assert_eq!(server.get(WHOAMI, Some(token)).await.0, StatusCode::OK);
        assert_eq!(
            server
                .get(&format!("{WHOAMI}?access_token={token}"), None)
                .await
                .0,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn v1_login_errors_follow_the_seed() {
    let server = TestServer::spawn().await;
    server.register("walt", "password123").await;
    let wrong = json!({"type": "m.login.password", "user": "walt", "password": "nope"});
    assert_error(
        &server.post(V1_LOGIN, None, &wrong).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    let no_type = json!({"user": "walt", "password": "password123"});
    assert_error(
        &server.post(V1_LOGIN, None, &no_type).await,
        StatusCode::BAD_REQUEST,
        "M_MISSING_PARAM",
    );
    let bad_type = json!({"type": "m.login.magic", "user": "walt"});
    let response = server.post(V1_LOGIN, None, &bad_type).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_UNKNOWN");
    assert_eq!(response.1["error"], "Bad login type");
    let missing = json!({"type": "m.login.password", "user": "walt"});
    let response = server.post(V1_LOGIN, None, &missing).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_MISSING_PARAM");
    assert_eq!(response.1["error"], "Missing JSON keys");
    assert_error(
        &server.post_raw(V1_LOGIN, "not json").await,
        StatusCode::BAD_REQUEST,
        "M_NOT_JSON",
    );
}

#[tokio::test]
async fn v1_registration_shares_accounts_with_v3() {
    let server = TestServer::spawn().await;
    let (status, flows) = server.get(V1_REGISTER, None).await;
    assert_eq!(
        (status, flows),
        (
            StatusCode::OK,
            json!({"flows": [{"type": "m.login.password"}]})
        )
    );
    let body = json!({"type": "m.login.password", "user": "xena", "password": "password123"});
    let (status, registered) = server.post(V1_REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["user_id"], "@xena:localhost");
    assert_eq!(registered["home_server"], "localhost");
    assert_eq!(
        server
            .get(WHOAMI, registered["access_token"].as_str())
            .await
            .0,
        StatusCode::OK
    );
    // A v1 account logs in on v3, a v3 account on v1.
    server.login("xena", "password123").await;
    server.register("yuri", "password123").await;
    let v1 = json!({"type": "m.login.password", "user": "yuri", "password": "password123"});
    assert_eq!(server.post(V1_LOGIN, None, &v1).await.0, StatusCode::OK);

    assert_error(
        &server.post(V1_REGISTER, None, &body).await,
        StatusCode::BAD_REQUEST,
        "M_USER_IN_USE",
    );
    let bad_type = json!({"type": "m.login.bogus"});
    assert_error(
        &server.post(V1_REGISTER, None, &bad_type).await,
        StatusCode::BAD_REQUEST,
        "M_UNKNOWN",
    );
    let missing = json!({"type": "m.login.password", "user": "zed"});
    assert_error(
        &server.post(V1_REGISTER, None, &missing).await,
        StatusCode::BAD_REQUEST,
        "M_MISSING_PARAM",
    );
    let generated = json!({"type": "m.login.password", "password": "password123"});
    let (status, registered) = server.post(V1_REGISTER, None, &generated).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
}

#[tokio::test]
async fn v1_registration_closed() {
    let server = TestServer::with(|config| config.registration.enabled = false).await;
    let (_, flows) = server.get(V1_REGISTER, None).await;
    assert_eq!(flows, json!({"flows": []}));
    let body = json!({"type": "m.login.password", "user": "xena", "password": "password123"});
    assert_error(
        &server.post(V1_REGISTER, None, &body).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
}

#[tokio::test]
async fn v2_alpha_registration_through_uia_returns_a_refresh_token() {
    let server = TestServer::with(|config| {
        config.registration.exclusive_user_namespaces = vec!["@irc_.*:localhost".into()]
    })
    .await;
    let body =
        json!({"username": "cheeky_monkey", "password": "ilovebananas", "bind_email": false});
    let (status, challenge) = server.post(V2_REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    assert_eq!(challenge["flows"], json!([{"stages": ["m.login.dummy"]}]));
    let mut body = body;
    body["auth"] = json!({"type": "m.login.dummy", "session": challenge["session"]});
    let (status, registered) = server.post(V2_REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["user_id"], "@cheeky_monkey:localhost");
    assert_eq!(registered["home_server"], "localhost");
    assert!(registered["refresh_token"].is_string());
    assert_eq!(
        server
            .get(WHOAMI, registered["access_token"].as_str())
            .await
            .0,
        StatusCode::OK
    );

    let taken = server
        .post(
            V2_REGISTER,
            None,
            &json!({"username": "cheeky_monkey", "password": "ilovebananas"}),
        )
        .await;
    assert_error(&taken, StatusCode::BAD_REQUEST, "M_USER_IN_USE");
    let exclusive = server
        .post(
            V2_REGISTER,
            None,
            &json!({"username": "irc_bot", "password": "ilovebananas"}),
        )
        .await;
    assert_error(&exclusive, StatusCode::BAD_REQUEST, "M_EXCLUSIVE");
    let no_password = server
        .post(V2_REGISTER, None, &json!({"username": "nopass"}))
        .await;
    assert_error(&no_password, StatusCode::BAD_REQUEST, "M_MISSING_PARAM");
}

#[tokio::test]
async fn v2_alpha_refresh_token_works_once() {
    let server = TestServer::spawn().await;
    let body =
        json!({"username": "ray", "password": "password123", "auth": {"type": "m.login.dummy"}});
    let (_, registered) = server.post(V2_REGISTER, None, &body).await;
    let old = json!({"refresh_token": registered["refresh_token"]});
    let (status, refreshed) = server.post(V2_REFRESH, None, &old).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert!(refreshed["access_token"].is_string() && refreshed["refresh_token"].is_string());
    assert_eq!(
        server
            .get(WHOAMI, refreshed["access_token"].as_str())
            .await
            .0,
        StatusCode::OK
    );
    assert_error(
        &server
            .get(WHOAMI, registered["access_token"].as_str())
            .await,
        StatusCode::UNAUTHORIZED,
        "M_UNKNOWN_TOKEN",
    );
    // The old refresh token stops working at once, even before the new tokens are used.
    let (status, again) = server
        .post(
            V2_REFRESH,
            None,
            &json!({"refresh_token": refreshed["refresh_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_error(
        &server.post(V2_REFRESH, None, &old).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .post(
                V2_REFRESH,
                None,
                &json!({"refresh_token": refreshed["refresh_token"]}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
}
