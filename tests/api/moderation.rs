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

/// A refresh of a locked account is refused before anything rotates: once unlocked, the
/// session's access token and refresh token still work (they used to be replaced by tokens the
/// client never received).
#[tokio::test]
async fn a_refused_refresh_of_a_locked_account_keeps_the_session() {
    let server = TestServer::spawn().await;
    server.register("alice", "password123").await;
    let refreshable = json!({"type": "m.login.password", "user": "alice", "password": "password123", "refresh_token": true});
    let (status, session) = server
        .post("/_matrix/client/v3/login", None, &refreshable)
        .await;
    assert_eq!(status, StatusCode::OK);
    let access_token = session["access_token"].as_str();
    let refresh = json!({"refresh_token": session["refresh_token"]});

    user_command(&server, "lock", "alice");
    let response = server
        .post("/_matrix/client/v3/refresh", None, &refresh)
        .await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "M_USER_LOCKED");
    user_command(&server, "unlock", "alice");

    let (status, body) = server
        .get("/_matrix/client/v3/account/whoami", access_token)
        .await;
    assert_eq!(status, StatusCode::OK, "the access token survived: {body}");
    let (status, body) = server
        .post("/_matrix/client/v3/refresh", None, &refresh)
        .await;
    assert_eq!(status, StatusCode::OK, "the refresh token survived: {body}");
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

#[tokio::test]
async fn administrators_lock_and_suspend_through_the_admin_api() {
    let server = TestServer::spawn().await;
    let admin = server.register("root", "password123").await;
    let alice = server.register("alice", "password123").await;
    let admin_token = admin["access_token"].as_str();
    let alice_token = alice["access_token"].as_str();
    let lock = "/_matrix/client/v1/admin/lock/@alice:localhost";
    let suspend = "/_matrix/client/v1/admin/suspend/@alice:localhost";

    // Not an administrator yet.
    assert_error(
        &server.get(lock, admin_token).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    let (_, capabilities) = server
        .get("/_matrix/client/v3/capabilities", admin_token)
        .await;
    assert!(
        capabilities["capabilities"]
            .get("m.account_moderation")
            .is_none()
    );

    user_command(&server, "grant-admin", "root");
    let (_, capabilities) = server
        .get("/_matrix/client/v3/capabilities", admin_token)
        .await;
    assert_eq!(
        capabilities["capabilities"]["m.account_moderation"],
        json!({"lock": true, "suspend": true})
    );
    let (status, body) = server.get(lock, admin_token).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"locked": false})));
    let (status, body) = server
        .request(
            Method::PUT,
            lock,
            admin_token,
            Some(&json!({"locked": true})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"locked": true})));
    let response = server
        .get("/_matrix/client/v3/account/whoami", alice_token)
        .await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "M_USER_LOCKED");
    server
        .request(
            Method::PUT,
            lock,
            admin_token,
            Some(&json!({"locked": false})),
        )
        .await;
    assert_eq!(
        server
            .get("/_matrix/client/v3/account/whoami", alice_token)
            .await
            .0,
        StatusCode::OK
    );

    let (status, body) = server
        .request(
            Method::PUT,
            suspend,
            admin_token,
            Some(&json!({"suspended": true})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"suspended": true})));
    let (_, body) = server.get(suspend, admin_token).await;
    assert_eq!(body, json!({"suspended": true}));
    let name = "/_matrix/client/v3/profile/@alice:localhost/displayname";
    let response = server
        .request(
            Method::PUT,
            name,
            alice_token,
            Some(&json!({"displayname": "A"})),
        )
        .await;
    assert_error(&response, StatusCode::FORBIDDEN, "M_USER_SUSPENDED");

    // Errors: unknown user, malformed ID, another server's user, a bad body, non-admins.
    let unknown = "/_matrix/client/v1/admin/lock/@ghost:localhost";
    assert_error(
        &server.get(unknown, admin_token).await,
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
    );
    let malformed = "/_matrix/client/v1/admin/lock/not-a-user";
    assert_error(
        &server.get(malformed, admin_token).await,
        StatusCode::BAD_REQUEST,
        "M_INVALID_PARAM",
    );
    let remote = "/_matrix/client/v1/admin/suspend/@bob:elsewhere.org";
    assert_error(
        &server.get(remote, admin_token).await,
        StatusCode::BAD_REQUEST,
        "M_INVALID_PARAM",
    );
    let response = server
        .request(
            Method::PUT,
            lock,
            admin_token,
            Some(&json!({"locked": "yes"})),
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_BAD_JSON");
    assert_error(
        &server.get(lock, alice_token).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );

    user_command(&server, "revoke-admin", "root");
    assert_error(
        &server.get(lock, admin_token).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
}

#[tokio::test]
async fn whois_shows_devices_to_administrators_and_to_the_user() {
    let server = TestServer::spawn().await;
    let admin = server.register("root", "password123").await;
    let alice = server.register("alice", "password123").await;
    user_command(&server, "grant-admin", "root");
    let path = "/_matrix/client/v3/admin/whois/@alice:localhost";
    for token in [
        admin["access_token"].as_str(),
        alice["access_token"].as_str(),
    ] {
        let (status, body) = server.get(path, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["user_id"], "@alice:localhost");
        let device = alice["device_id"].as_str().unwrap();
        let connection = &body["devices"][device]["sessions"][0]["connections"][0];
        assert_eq!(connection["ip"], "127.0.0.1");
        assert!(connection["last_seen"].is_i64());
    }
    let bob = server.register("bob", "password123").await;
    assert_error(
        &server.get(path, bob["access_token"].as_str()).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    let ghost = "/_matrix/client/r0/admin/whois/@ghost:localhost";
    assert_error(
        &server.get(ghost, admin["access_token"].as_str()).await,
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
    );
}
