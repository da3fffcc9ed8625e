//! Seed 002, the v1 login API (`/_matrix/client/api/v1/login`): `GET` lists the flows,
//! `POST` takes `m.login.password` with `user` (or `username`) as a localpart or a full user ID
//! and answers `user_id`, `access_token`, `home_server`; bad credentials are 403
//! `M_FORBIDDEN`. Tokens issued here work on every prefix, also as the `access_token` query
//! parameter the document's security section uses.

use reqwest::StatusCode;
use serde_json::json;

use super::{V1_LOGIN, WHOAMI};
use crate::support::{TestServer, assert_error};

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

/// The document's own example request, verbatim: no `type`, `username` and `password`.
#[tokio::test]
async fn the_seed_example_logs_in_as_written() {
    let server = TestServer::spawn().await;
    server.register("cheeky_monkey", "ilovebananas").await;
    let example = json!({"username": "cheeky_monkey", "password": "ilovebananas"});
    let (status, body) = server.post(V1_LOGIN, None, &example).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for field in ["user_id", "access_token", "home_server"] {
        assert!(body[field].is_string(), "{field} missing from {body}");
    }
    assert_eq!(body["user_id"], "@cheeky_monkey:localhost");
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
async fn accounts_are_shared_between_v1_login_and_v3() {
    let server = TestServer::spawn().await;
    server.register("yuri", "password123").await;
    let v1 = json!({"type": "m.login.password", "user": "yuri", "password": "password123"});
    let (status, login) = server.post(V1_LOGIN, None, &v1).await;
    assert_eq!(status, StatusCode::OK);
    let (_, whoami) = server
        .get(
            "/_matrix/client/r0/account/whoami",
            login["access_token"].as_str(),
        )
        .await;
    assert_eq!(whoami["user_id"], "@yuri:localhost");
}

/// Seed 002, `POST /login` 403 example response (`{"errcode": "M_FORBIDDEN"}`): the example
/// request, verbatim, when the password is not the account's.
#[tokio::test]
async fn the_forbidden_example_answers_the_login_example_with_a_wrong_password() {
    let server = TestServer::spawn().await;
    server.register("cheeky_monkey", "ilovemangoes").await;
    let example = json!({"username": "cheeky_monkey", "password": "ilovebananas"});
    assert_error(
        &server.post(V1_LOGIN, None, &example).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
}
