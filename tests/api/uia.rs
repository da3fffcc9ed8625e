//! The User-Interactive Authentication engine, seen through `POST /register`.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, assert_error};

const REGISTER: &str = "/_matrix/client/v3/register";

#[tokio::test]
async fn unknown_session_is_refused() {
    let server = TestServer::spawn().await;
    let body = json!({"username": "u1", "password": "password123", "auth": {"type": "m.login.dummy", "session": "nonexistent"}});
    assert_error(
        &server.post(REGISTER, None, &body).await,
        StatusCode::BAD_REQUEST,
        "M_UNKNOWN",
    );
}

#[tokio::test]
async fn session_is_bound_to_the_request_that_started_it() {
    let server = TestServer::spawn().await;
    let (_, challenge) = server
        .post(
            REGISTER,
            None,
            &json!({"username": "u2", "password": "password123"}),
        )
        .await;
    let session = challenge["session"].clone();
    // Same body, different path.
    let other_path = json!({"username": "u2", "password": "password123", "auth": {"type": "m.login.dummy", "session": session}});
    assert_error(
        &server
            .post("/_matrix/client/r0/register", None, &other_path)
            .await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    // The original request still completes.
    let (status, _) = server.post(REGISTER, None, &other_path).await;
    assert_eq!(status, StatusCode::OK);

    // Where the body says what is authorised (here the new password), it is bound too.
    let u2 = server.login("u2", "password123").await;
    let token = u2["access_token"].as_str();
    let change = json!({"new_password": "new-password-1"});
    let (_, challenge) = server
        .post("/_matrix/client/v3/account/password", token, &change)
        .await;
    let other_body = json!({"new_password": "attacker-chosen", "auth": {"type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "u2"}, "password": "password123",
        "session": challenge["session"]}});
    assert_error(
        &server
            .post("/_matrix/client/v3/account/password", token, &other_body)
            .await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    server.login("u2", "password123").await;
}

/// Element (and matrix-js-sdk's `registerRequest({})`) opens sign-up with an empty body to learn
/// the flows, then sends the form in the same session.
#[tokio::test]
async fn registration_starts_with_an_empty_body_and_remembers_its_parameters() {
    let server = TestServer::spawn().await;
    for probe in [json!({}), json!({"initial_device_display_name": "Element"})] {
        let (status, challenge) = server.post(REGISTER, None, &probe).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
        assert_eq!(challenge["flows"], json!([{"stages": ["m.login.dummy"]}]));
        assert!(challenge["params"].is_object() && challenge["session"].is_string());
    }

    // The probe, then the real form with the stage.
    let (_, challenge) = server.post(REGISTER, None, &json!({})).await;
    let form = json!({"username": "elena", "password": "password123",
        "auth": {"type": "m.login.dummy", "session": challenge["session"]}});
    let (status, registered) = server.post(REGISTER, None, &form).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["user_id"], "@elena:localhost");

    // Parameters given once are remembered; a later request gives only `auth`.
    let first = json!({"username": "fiona", "password": "password123", "device_id": "FIONAS",
        "initial_device_display_name": "Fiona's phone", "refresh_token": true});
    let (_, challenge) = server.post(REGISTER, None, &first).await;
    let only_auth = json!({"auth": {"type": "m.login.dummy", "session": challenge["session"]}});
    let (status, registered) = server.post(REGISTER, None, &only_auth).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["user_id"], "@fiona:localhost");
    assert_eq!(registered["device_id"], "FIONAS");
    assert!(registered["refresh_token"].is_string(), "{registered}");
    let (_, device) = server
        .get(
            "/_matrix/client/v3/devices/FIONAS",
            registered["access_token"].as_str(),
        )
        .await;
    assert_eq!(device["display_name"], "Fiona's phone");

    // A later request may bring another password: that one counts.
    let first = json!({"username": "hanna", "password": "first-password"});
    let (_, challenge) = server.post(REGISTER, None, &first).await;
    let second = json!({"password": "second-password",
        "auth": {"type": "m.login.dummy", "session": challenge["session"]}});
    let (status, registered) = server.post(REGISTER, None, &second).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    server.login("hanna", "second-password").await;

    // `inhibit_login` is remembered too.
    let first = json!({"username": "gert", "password": "password123", "inhibit_login": true});
    let (_, challenge) = server.post(REGISTER, None, &first).await;
    let only_auth = json!({"auth": {"type": "m.login.dummy", "session": challenge["session"]}});
    let (status, registered) = server.post(REGISTER, None, &only_auth).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert!(registered.get("access_token").is_none(), "{registered}");
}

/// A server whose one registration flow is `m.login.dummy` then `m.login.terms`.
async fn dummy_then_terms() -> TestServer {
    TestServer::with(|config| {
        config.registration.flows = vec![vec!["m.login.dummy".into(), "m.login.terms".into()]];
        config.registration.terms = serde_json::from_value(json!({"tos": {"version": "1",
            "en": {"name": "Terms", "url": "https://example.org/tos"}}}))
        .expect("terms");
    })
    .await
}

/// A flow completed without a password is 400 `M_MISSING_PARAM` and writes nothing; the
/// session stays open for the request that brings one.
#[tokio::test]
async fn a_completed_flow_without_a_password_keeps_its_session() {
    let server = dummy_then_terms().await;
    let (_, challenge) = server.post(REGISTER, None, &json!({})).await;
    let session = challenge["session"].clone();
    let dummy = json!({"username": "hugo", "auth": {"type": "m.login.dummy", "session": session}});
    let (status, _) = server.post(REGISTER, None, &dummy).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let terms = json!({"auth": {"type": "m.login.terms", "session": session}});
    assert_error(
        &server.post(REGISTER, None, &terms).await,
        StatusCode::BAD_REQUEST,
        "M_MISSING_PARAM",
    );
    let (status, _) = server
        .get("/_matrix/client/v3/register/available?username=hugo", None)
        .await;
    assert_eq!(status, StatusCode::OK, "nothing was written");
    let password = json!({"password": "password123", "auth": {"session": session}});
    let (status, registered) = server.post(REGISTER, None, &password).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["user_id"], "@hugo:localhost");
}

/// A client retrying after `M_USER_IN_USE` may change the username while no stage is complete.
#[tokio::test]
async fn the_username_may_change_until_a_stage_is_complete() {
    let server = dummy_then_terms().await;
    let (_, challenge) = server
        .post(
            REGISTER,
            None,
            &json!({"username": "ivy", "password": "password123"}),
        )
        .await;
    let session = challenge["session"].clone();
    let renamed =
        json!({"username": "ivy2", "auth": {"type": "m.login.dummy", "session": session}});
    let (status, _) = server.post(REGISTER, None, &renamed).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let again = json!({"username": "ivy3", "auth": {"type": "m.login.terms", "session": session}});
    assert_error(
        &server.post(REGISTER, None, &again).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    let terms = json!({"auth": {"type": "m.login.terms", "session": session}});
    let (status, registered) = server.post(REGISTER, None, &terms).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["user_id"], "@ivy2:localhost");
}

#[tokio::test]
async fn completed_session_cannot_be_reused() {
    let server = TestServer::spawn().await;
    let body = json!({"username": "u4", "password": "password123"});
    let (_, challenge) = server.post(REGISTER, None, &body).await;
    let mut body = body;
    body["auth"] = json!({"type": "m.login.dummy", "session": challenge["session"]});
    assert_eq!(server.post(REGISTER, None, &body).await.0, StatusCode::OK);
    assert_error(
        &server.post(REGISTER, None, &body).await,
        StatusCode::BAD_REQUEST,
        "M_USER_IN_USE",
    );
    body["username"] = json!("u4b");
    let response = server.post(REGISTER, None, &body).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_UNKNOWN");
}

#[tokio::test]
async fn sessions_expire() {
    let server = TestServer::spawn().await;
    let body = json!({"username": "u5", "password": "password123"});
    let (_, challenge) = server.post(REGISTER, None, &body).await;
    server.clock.advance(15 * 60 * 1000 + 1);
    let mut body = body;
    body["auth"] = json!({"type": "m.login.dummy", "session": challenge["session"]});
    assert_error(
        &server.post(REGISTER, None, &body).await,
        StatusCode::BAD_REQUEST,
        "M_UNKNOWN",
    );
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let server = TestServer::spawn().await;
    let body = json!({"username": "u6", "password": "password123"});
    let (_, challenge) = server.post(REGISTER, None, &body).await;
    let server = server.restart().await;
    let mut body = body;
    body["auth"] = json!({"type": "m.login.dummy", "session": challenge["session"]});
    let (status, registered) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
}

#[tokio::test]
async fn multi_stage_flow_reports_progress_and_failures() {
    let server = TestServer::with(|config| {
        config.registration.flows = vec![vec!["m.login.dummy".into(), "m.login.password".into()]];
    })
    .await;
    let body = json!({"username": "u7", "password": "password123"});
    let (_, challenge) = server.post(REGISTER, None, &body).await;
    assert_eq!(
        challenge["flows"],
        json!([{"stages": ["m.login.dummy", "m.login.password"]}])
    );
    let session = challenge["session"].clone();
    let mut body = body;
    body["auth"] = json!({"type": "m.login.dummy", "session": session});
    let (status, progress) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(progress["completed"], json!(["m.login.dummy"]));
    assert_eq!(progress["session"], session);
    assert!(progress.get("errcode").is_none());
    // The password stage needs an existing, authenticated user: it fails, and says so in the
    // challenge, keeping the progress made.
    body["auth"] = json!({"type": "m.login.password", "session": session, "identifier": {"type": "m.id.user", "user": "u7"}, "password": "x"});
    let (status, failed) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(failed["errcode"], "M_FORBIDDEN");
    assert_eq!(failed["completed"], json!(["m.login.dummy"]));
    // A stage no flow offers.
    body["auth"] = json!({"type": "m.login.recaptcha", "response": "captcha", "session": session});
    assert_error(
        &server.post(REGISTER, None, &body).await,
        StatusCode::BAD_REQUEST,
        "M_UNRECOGNIZED",
    );
}

/// The deprecated shapes of an `m.login.password` stage are accepted in every UIA password
/// stage, as at `/login`: a top-level `user` (localpart or user ID) and `medium`/`address`.
#[tokio::test]
async fn deprecated_password_stage_shapes_are_accepted() {
    let server = TestServer::spawn().await;
    let alice = server.register("alice", "password123").await;
    let token = alice["access_token"].as_str();
    let shapes = [
        json!({"type": "m.login.password", "user": "alice", "password": "password123"}),
        json!({"type": "m.login.password", "user": "@alice:localhost", "password": "password123"}),
    ];
    for shape in shapes {
        let change = json!({"new_password": "password123", "logout_devices": false});
        let (status, challenge) = server
            .post("/_matrix/client/v3/account/password", token, &change)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
        let mut change = change;
        change["auth"] = shape.clone();
        change["auth"]["session"] = challenge["session"].clone();
        let (status, body) = server
            .post("/_matrix/client/v3/account/password", token, &change)
            .await;
        assert_eq!(status, StatusCode::OK, "{shape}: {body}");
    }
}

/// A password stage that names another user than the access token's is refused outright
/// (Complement: "DELETE /device/{deviceId} requires UI auth user to match device owner").
#[tokio::test]
async fn a_password_stage_naming_another_user_is_forbidden() {
    let server = TestServer::spawn().await;
    let alice = server.register("alice", "password123").await;
    server.register("bob", "password456").await;
    let token = alice["access_token"].as_str();
    let path = format!(
        "/_matrix/client/v3/devices/{}",
        alice["device_id"].as_str().expect("device")
    );
    let (status, challenge) = server
        .request(reqwest::Method::DELETE, &path, token, Some(&json!({})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let body = json!({"auth": {"type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "bob"}, "password": "password456",
        "session": challenge["session"]}});
    assert_error(
        &server
            .request(reqwest::Method::DELETE, &path, token, Some(&body))
            .await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    let (status, _) = server.get("/_matrix/client/v3/account/whoami", token).await;
    assert_eq!(status, StatusCode::OK, "the device was not deleted");
}
