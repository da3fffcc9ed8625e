//! Account locking and suspension, applied by the operator's CLI to a running server.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tempfile::TempDir;

use crate::{
    cli::vestibule,
    support::{TestServer, assert_error},
};

fn user_command(server: &TestServer, action: &str, user: &str) {
    let dir = TempDir::new().expect("dir");
    let output = vestibule(&dir, server.database_url(), &["user", action, user], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_locked_account_keeps_its_sessions_but_can_only_log_out() {
    let server = TestServer::spawn().await;
    let first = server.register("alice", "password123").await;
    let second = server.login("alice", "password123").await;
    let token = first["access_token"].as_str();
    user_command(&server, "lock", "alice");

    let response = server.get("/_matrix/client/v3/account/whoami", token).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "M_USER_LOCKED");
    assert_eq!(response.1["soft_logout"], true);
    let response = server.get("/_matrix/client/v3/devices", token).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "M_USER_LOCKED");
    let login = json!({"type": "m.login.password", "user": "alice", "password": "password123"});
    let response = server.post("/_matrix/client/v3/login", None, &login).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "M_USER_LOCKED");

    // Logging out still works.
    let (status, _) = server
        .post(
            "/_matrix/client/v3/logout",
            second["access_token"].as_str(),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Nor can a refresh token mint a new access token.
    let refreshable = json!({"type": "m.login.password", "user": "alice", "password": "password123", "refresh_token": true});
    user_command(&server, "unlock", "alice");
    let (_, session) = server
        .post("/_matrix/client/v3/login", None, &refreshable)
        .await;
    user_command(&server, "lock", "alice");
    let refresh = json!({"refresh_token": session["refresh_token"]});
    let response = server
        .post("/_matrix/client/v3/refresh", None, &refresh)
        .await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "M_USER_LOCKED");

    user_command(&server, "unlock", "@alice:localhost");
    let (status, _) = server.get("/_matrix/client/v3/account/whoami", token).await;
    assert_eq!(status, StatusCode::OK, "the session survived the lock");
    server.login("alice", "password123").await;
}

#[tokio::test]
async fn a_suspended_account_can_read_but_not_change_its_profile() {
    let server = TestServer::spawn().await;
    let alice = server.register("alice", "password123").await;
    let token = alice["access_token"].as_str();
    user_command(&server, "suspend", "alice");

    let (status, _) = server.get("/_matrix/client/v3/account/whoami", token).await;
    assert_eq!(status, StatusCode::OK);
    server.login("alice", "password123").await;
    let (status, _) = server
        .get("/_matrix/client/v3/profile/@alice:localhost", token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let name = "/_matrix/client/v3/profile/@alice:localhost/displayname";
    let response = server
        .request(Method::PUT, name, token, Some(&json!({"displayname": "A"})))
        .await;
    assert_error(&response, StatusCode::FORBIDDEN, "M_USER_SUSPENDED");
    let (_, capabilities) = server.get("/_matrix/client/v3/capabilities", token).await;
    assert_eq!(
        capabilities["capabilities"]["m.set_displayname"]["enabled"],
        false
    );

    user_command(&server, "unsuspend", "alice");
    let (status, _) = server
        .request(Method::PUT, name, token, Some(&json!({"displayname": "A"})))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn moderating_an_unknown_user_fails() {
    let server = TestServer::spawn().await;
    let dir = TempDir::new().expect("dir");
    for action in ["lock", "unlock", "suspend", "unsuspend"] {
        let output = vestibule(
            &dir,
            server.database_url(),
            &["user", action, "ghost"],
            None,
        );
        assert!(!output.status.success(), "{action}");
    }
}
