//! Bad input on purpose: every case gets a clear Matrix error with the right status.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestServer, assert_error};

const REGISTER: &str = "/_matrix/client/v3/register";
const LOGIN: &str = "/_matrix/client/v3/login";

#[tokio::test]
async fn empty_and_unparseable_bodies_are_not_json() {
    let server = TestServer::spawn().await;
    for path in [REGISTER, LOGIN] {
        assert_error(
            &server.post_raw(path, "").await,
            StatusCode::BAD_REQUEST,
            "M_NOT_JSON",
        );
        assert_error(
            &server.post_raw(path, "{\"username\": ").await,
            StatusCode::BAD_REQUEST,
            "M_NOT_JSON",
        );
        assert_error(
            &server.post_raw(path, "\u{0}\u{1}binary").await,
            StatusCode::BAD_REQUEST,
            "M_NOT_JSON",
        );
    }
}

#[tokio::test]
async fn non_objects_and_wrong_types_are_bad_json() {
    let server = TestServer::spawn().await;
    for path in [REGISTER, LOGIN] {
        assert_error(
            &server.post_raw(path, "[1, 2]").await,
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
        );
        assert_error(
            &server.post_raw(path, "\"string\"").await,
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
        );
    }
    let wrong_types = [
        json!({"username": 5, "password": "password123"}),
        json!({"username": "ok", "password": ["x"]}),
        json!({"username": "ok", "password": "password123", "inhibit_login": "yes"}),
        json!({"username": "ok", "password": "password123", "auth": "dummy"}),
    ];
    for body in wrong_types {
        assert_error(
            &server.post(REGISTER, None, &body).await,
            StatusCode::BAD_REQUEST,
            "M_BAD_JSON",
        );
    }
    let login = json!({"type": "m.login.password", "user": "a", "password": 12});
    assert_error(
        &server.post(LOGIN, None, &login).await,
        StatusCode::BAD_REQUEST,
        "M_BAD_JSON",
    );
}

#[tokio::test]
async fn missing_fields_are_named() {
    let server = TestServer::spawn().await;
    let response = server
        .post(LOGIN, None, &json!({"user": "a", "password": "b"}))
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_MISSING_PARAM");
    assert!(
        response.1["error"]
            .as_str()
            .expect("message")
            .contains("type")
    );
    let response = server
        .post(
            LOGIN,
            None,
            &json!({"type": "m.login.password", "user": "a"}),
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_MISSING_PARAM");
    assert!(
        response.1["error"]
            .as_str()
            .expect("message")
            .contains("password")
    );
    // A registration without a password is asked for UIA first (issue 10); the password is
    // missing only once a flow is complete.
    let (status, challenge) = server.post(REGISTER, None, &json!({"username": "a"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let done = json!({"auth": {"type": "m.login.dummy", "session": challenge["session"]}});
    assert_error(
        &server.post(REGISTER, None, &done).await,
        StatusCode::BAD_REQUEST,
        "M_MISSING_PARAM",
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_are_unrecognized() {
    let server = TestServer::spawn().await;
    assert_error(
        &server.get("/_matrix/client/v3/nonexistent", None).await,
        StatusCode::NOT_FOUND,
        "M_UNRECOGNIZED",
    );
    assert_error(
        &server.get("/", None).await,
        StatusCode::NOT_FOUND,
        "M_UNRECOGNIZED",
    );
    assert_error(
        &server.request(Method::DELETE, LOGIN, None, None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "M_UNRECOGNIZED",
    );
    assert_error(
        &server
            .request(Method::PUT, "/_matrix/client/versions", None, None)
            .await,
        StatusCode::METHOD_NOT_ALLOWED,
        "M_UNRECOGNIZED",
    );
}

#[tokio::test]
async fn oversized_body_is_too_large() {
    let server = TestServer::spawn().await;
    let huge = format!("{{\"username\": \"{}\"}}", "a".repeat(10 * 1024 * 1024));
    assert_error(
        &server.post_raw(REGISTER, huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "M_TOO_LARGE",
    );
}

#[tokio::test]
async fn ten_kilobyte_password_is_refused_without_an_account() {
    let server = TestServer::spawn().await;
    let password = "p".repeat(10 * 1024);
    let body =
        json!({"username": "longpw", "password": password, "auth": {"type": "m.login.dummy"}});
    assert_error(
        &server.post(REGISTER, None, &body).await,
        StatusCode::BAD_REQUEST,
        "M_INVALID_PARAM",
    );
    let login = json!({"type": "m.login.password", "user": "longpw", "password": password});
    assert_error(
        &server.post(LOGIN, None, &login).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    let (status, body) = server
        .get(
            "/_matrix/client/v3/register/available?username=longpw",
            None,
        )
        .await;
    assert_eq!(
        (status, body["available"].clone()),
        (StatusCode::OK, json!(true))
    );
}

#[tokio::test]
async fn sql_metacharacters_are_just_characters() {
    let server = TestServer::spawn().await;
    let nasty = "'; DROP TABLE users; --\"\\%_";
    // As a username: invalid per the grammar, and nothing is written.
    let body =
        json!({"username": nasty, "password": "password123", "auth": {"type": "m.login.dummy"}});
    assert_error(
        &server.post(REGISTER, None, &body).await,
        StatusCode::BAD_REQUEST,
        "M_INVALID_USERNAME",
    );
    // In every other string field of a successful registration, stored and returned verbatim.
    let body = json!({"username": "sqlsafe", "password": nasty, "device_id": nasty, "initial_device_display_name": nasty});
    let (_, challenge) = server.post(REGISTER, None, &body).await;
    let mut body = body;
    body["auth"] = json!({"type": "m.login.dummy", "session": challenge["session"]});
    let (status, registered) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["device_id"], nasty);
    let (_, whoami) = server
        .get(
            "/_matrix/client/v3/account/whoami",
            registered["access_token"].as_str(),
        )
        .await;
    assert_eq!(whoami["device_id"], nasty);
    // In login fields: an ordinary failure.
    let login = json!({"type": "m.login.password", "user": nasty, "password": nasty});
    assert_error(
        &server.post(LOGIN, None, &login).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    let login = json!({"type": "m.login.password", "user": "sqlsafe", "password": nasty});
    assert_eq!(server.post(LOGIN, None, &login).await.0, StatusCode::OK);
    // As an access token and a UIA session: unknown, nothing more.
    assert_error(
        &server
            .get("/_matrix/client/v3/account/whoami", Some(nasty))
            .await,
        StatusCode::UNAUTHORIZED,
        "M_UNKNOWN_TOKEN",
    );
    let body = json!({"username": "other", "password": "password123", "auth": {"type": "m.login.dummy", "session": nasty}});
    assert_error(
        &server.post(REGISTER, None, &body).await,
        StatusCode::BAD_REQUEST,
        "M_UNKNOWN",
    );
    // The users table is still there.
    server.login("sqlsafe", nasty).await;
}
