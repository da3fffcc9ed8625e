//! `POST /register` and `GET /register/available`.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, assert_error, concurrently};

const REGISTER: &str = "/_matrix/client/v3/register";

#[tokio::test]
async fn dummy_flow_registers_and_logs_in() {
    let server = TestServer::spawn().await;
    let body = json!({"username": "alice", "password": "password123", "initial_device_display_name": "Phone"});
    let (status, challenge) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge["flows"], json!([{"stages": ["m.login.dummy"]}]));
    assert!(challenge["params"].is_object());
    assert!(challenge["session"].as_str().is_some_and(|s| s.len() >= 16));
    assert_eq!(challenge["completed"], json!([]));

    let mut body = body;
    body["auth"] = json!({"type": "m.login.dummy", "session": challenge["session"]});
    let (status, registered) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["user_id"], "@alice:localhost");
    let token = registered["access_token"].as_str().expect("token");
    assert!(registered["device_id"].is_string());
    let (status, whoami) = server
        .get("/_matrix/client/v3/account/whoami", Some(token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        whoami,
        json!({"user_id": "@alice:localhost", "device_id": registered["device_id"], "is_guest": false})
    );
}

#[tokio::test]
async fn r0_prefix_serves_the_same_registration() {
    let server = TestServer::spawn().await;
    let body =
        json!({"username": "bob", "password": "password123", "auth": {"type": "m.login.dummy"}});
    let (status, registered) = server
        .post("/_matrix/client/r0/register", None, &body)
        .await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    server.login("bob", "password123").await;
}

#[tokio::test]
async fn closed_registration_is_forbidden() {
    let server = TestServer::with(|config| config.registration.enabled = false).await;
    let body = json!({"username": "carol", "password": "password123"});
    assert_error(
        &server.post(REGISTER, None, &body).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    assert_error(
        &server
            .get("/_matrix/client/v3/register/available?username=carol", None)
            .await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
}

#[tokio::test]
async fn username_is_checked_before_uia() {
    let server = TestServer::with(|config| {
        config.registration.exclusive_user_namespaces = vec!["@irc_.*:localhost".into()]
    })
    .await;
    server.register("taken", "password123").await;
    // No `auth` at all: a UIA challenge would be 401, these must come first.
    let cases = [
        ("taken", "M_USER_IN_USE"),
        ("TAKEN", "M_USER_IN_USE"),
        ("irc_bot", "M_EXCLUSIVE"),
        ("with space", "M_INVALID_USERNAME"),
        ("with:colon", "M_INVALID_USERNAME"),
        ("ünicode", "M_INVALID_USERNAME"),
        ("", "M_INVALID_USERNAME"),
        ("@someone:other.server", "M_INVALID_USERNAME"),
    ];
    for (username, errcode) in cases {
        let response = server
            .post(
                REGISTER,
                None,
                &json!({"username": username, "password": "password123"}),
            )
            .await;
        assert_error(&response, StatusCode::BAD_REQUEST, errcode);
    }
    let long = "a".repeat(250);
    let response = server
        .post(
            REGISTER,
            None,
            &json!({"username": long, "password": "password123"}),
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_INVALID_USERNAME");
}

#[tokio::test]
async fn upper_case_username_is_downcased_as_the_spec_requires() {
    let server = TestServer::spawn().await;
    let registered = server.register("MixedCase", "password123").await;
    assert_eq!(registered["user_id"], "@mixedcase:localhost");
    server.login("MIXEDCASE", "password123").await;
}

#[tokio::test]
async fn weak_password_is_refused_before_uia() {
    let server = TestServer::spawn().await;
    let response = server
        .post(
            REGISTER,
            None,
            &json!({"username": "weak", "password": "short"}),
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_WEAK_PASSWORD");
}

#[tokio::test]
async fn omitted_username_gets_a_generated_localpart() {
    let server = TestServer::spawn().await;
    let body = json!({"password": "password123", "auth": {"type": "m.login.dummy"}});
    let (status, registered) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let user_id = registered["user_id"].as_str().expect("user id");
    assert!(
        user_id.starts_with('@') && user_id.ends_with(":localhost"),
        "{user_id}"
    );
    server.login(user_id, "password123").await;
}

#[tokio::test]
async fn inhibit_login_returns_no_token() {
    let server = TestServer::spawn().await;
    let body = json!({"username": "quiet", "password": "password123", "inhibit_login": true, "auth": {"type": "m.login.dummy"}});
    let (status, registered) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["user_id"], "@quiet:localhost");
    assert!(registered.get("access_token").is_none(), "{registered}");
    assert!(registered["device_id"].is_null(), "{registered}");
    server.login("quiet", "password123").await;
}

#[tokio::test]
async fn requested_device_id_is_used() {
    let server = TestServer::spawn().await;
    let body = json!({"username": "dev", "password": "password123", "device_id": "MYDEVICE", "auth": {"type": "m.login.dummy"}});
    let (_, registered) = server.post(REGISTER, None, &body).await;
    assert_eq!(registered["device_id"], "MYDEVICE");
}

#[tokio::test]
async fn guests_register_when_enabled() {
    let server = TestServer::spawn().await;
    let response = server
        .post("/_matrix/client/v3/register?kind=guest", None, &json!({}))
        .await;
    assert_error(&response, StatusCode::FORBIDDEN, "M_GUEST_ACCESS_FORBIDDEN");

    let server = TestServer::with(|config| config.registration.guest_access = true).await;
    let (status, guest) = server
        .post("/_matrix/client/v3/register?kind=guest", None, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{guest}");
    let (_, whoami) = server
        .get(
            "/_matrix/client/v3/account/whoami",
            guest["access_token"].as_str(),
        )
        .await;
    assert_eq!(whoami["is_guest"], true);
    assert_eq!(whoami["user_id"], guest["user_id"]);
}

#[tokio::test]
async fn availability() {
    let server = TestServer::spawn().await;
    server.register("present", "password123").await;
    let (status, body) = server
        .get(
            "/_matrix/client/v3/register/available?username=absent",
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"available": true})));
    let response = server
        .get(
            "/_matrix/client/r0/register/available?username=present",
            None,
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_USER_IN_USE");
    let response = server
        .get(
            "/_matrix/client/v3/register/available?username=bad%20name",
            None,
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_INVALID_USERNAME");
    let response = server
        .get("/_matrix/client/v3/register/available", None)
        .await;
    assert_eq!(response.0, StatusCode::BAD_REQUEST, "{}", response.1);
}

#[tokio::test]
async fn concurrent_registrations_of_one_name_create_one_account() {
    let server = std::sync::Arc::new(TestServer::spawn().await);
    let results = concurrently(8, |i| {
        let server = server.clone();
        async move {
            let body = json!({"username": "race", "password": format!("password{i:03}"), "auth": {"type": "m.login.dummy"}});
            server.post(REGISTER, None, &body).await
        }
    })
    .await;
    let winners = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(winners, 1, "{results:?}");
    for response in results
        .iter()
        .filter(|(status, _)| *status != StatusCode::OK)
    {
        assert_error(response, StatusCode::BAD_REQUEST, "M_USER_IN_USE");
    }
}
