//! The account-event outlet: every change made through any API (v3, r0, the seeds' v1 and
//! v2_alpha prefixes, the admin endpoints) or by the operator's CLI is reported exactly once.

use reqwest::{Method, StatusCode};
use ruma::{OwnedDeviceId, OwnedUserId};
use serde_json::{Value, json};
use tempfile::TempDir;
use vestibule::accounts::events::AccountEvent;

use crate::{
    cli::vestibule,
    support::{TestServer, assert_error},
};

fn user(localpart: &str) -> OwnedUserId {
    format!("@{localpart}:localhost")
        .try_into()
        .expect("user ID")
}

fn device(body: &Value) -> OwnedDeviceId {
    body["device_id"].as_str().expect("device_id").into()
}

fn created(localpart: &str) -> AccountEvent {
    AccountEvent::Created {
        user_id: user(localpart),
        displayname: Some(localpart.to_owned()),
        emails: Vec::new(),
        is_guest: false,
    }
}

fn device_created(localpart: &str, body: &Value, name: Option<&str>) -> AccountEvent {
    AccountEvent::DeviceCreated {
        user_id: user(localpart),
        device_id: device(body),
        display_name: name.map(str::to_owned),
    }
}

fn device_deleted(localpart: &str, body: &Value) -> AccountEvent {
    AccountEvent::DeviceDeleted {
        user_id: user(localpart),
        device_id: device(body),
    }
}

/// Completes a password UIA round of `method path` with `body` for `localpart`.
async fn with_password_uia(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
    localpart: &str,
) -> (StatusCode, Value) {
    let (status, challenge) = server
        .request(method.clone(), path, token, Some(&body))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let mut body = body;
    body["auth"] = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": localpart},
        "password": "password123",
        "session": challenge["session"],
    });
    server.request(method, path, token, Some(&body)).await
}

#[tokio::test]
async fn sessions_devices_and_profile_on_v3_and_r0() {
    let server = TestServer::spawn().await;
    let first = server.register("alice", "password123").await;
    assert_eq!(
        server.events.take(),
        [created("alice"), device_created("alice", &first, None)]
    );
    let token = first["access_token"].as_str();

    let login = json!({"type": "m.login.password", "user": "alice", "password": "password123", "initial_device_display_name": "Phone"});
    let (status, second) = server.post("/_matrix/client/r0/login", None, &login).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(
        server.events.take(),
        [device_created("alice", &second, Some("Phone"))]
    );

    let rename = format!(
        "/_matrix/client/v3/devices/{}",
        second["device_id"].as_str().expect("device")
    );
    let (status, _) = server
        .request(
            Method::PUT,
            &rename,
            token,
            Some(&json!({"display_name": "Old phone"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.events.take(),
        [AccountEvent::DeviceRenamed {
            user_id: user("alice"),
            device_id: device(&second),
            display_name: Some("Old phone".into()),
        }]
    );

    for (path, value) in [
        ("displayname", json!({"displayname": "Alice"})),
        (
            "avatar_url",
            json!({"avatar_url": "mxc://localhost/avatar"}),
        ),
    ] {
        let (status, body) = server
            .request(
                Method::PUT,
                &format!("/_matrix/client/r0/profile/@alice:localhost/{path}"),
                token,
                Some(&value),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(
        server.events.take(),
        [
            AccountEvent::DisplayNameChanged {
                user_id: user("alice"),
                displayname: Some("Alice".into()),
            },
            AccountEvent::AvatarChanged {
                user_id: user("alice"),
                avatar_url: Some("mxc://localhost/avatar".into()),
            },
        ]
    );

    // Setting the same display name again changes nothing and reports nothing.
    let (status, _) = server
        .request(
            Method::PUT,
            "/_matrix/client/v3/profile/@alice:localhost/displayname",
            token,
            Some(&json!({"displayname": "Alice"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.events.take(), []);

    // A refused change reports nothing.
    let (status, _) = server
        .request(
            Method::PUT,
            "/_matrix/client/v3/devices/NOSUCHDEVICE",
            token,
            Some(&json!({"display_name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.events.take(), []);

    // The password change ends the other session and keeps the caller's.
    let change = json!({"new_password": "password123", "logout_devices": true});
    let (status, body) = with_password_uia(
        &server,
        Method::POST,
        "/_matrix/client/v3/account/password",
        token,
        change,
        "alice",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        server.events.take(),
        [
            AccountEvent::PasswordChanged {
                user_id: user("alice")
            },
            device_deleted("alice", &second),
        ]
    );

    let third = server.login("alice", "password123").await;
    let fourth = server.login("alice", "password123").await;
    server.events.take();
    let delete = format!(
        "/_matrix/client/r0/devices/{}",
        third["device_id"].as_str().expect("device")
    );
    let (status, body) =
        with_password_uia(&server, Method::DELETE, &delete, token, json!({}), "alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.events.take(), [device_deleted("alice", &third)]);

    let (status, _) = server
        .post(
            "/_matrix/client/r0/logout",
            fourth["access_token"].as_str(),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.events.take(), [device_deleted("alice", &fourth)]);

    let (status, _) = server
        .post("/_matrix/client/v3/logout/all", token, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.events.take(), [device_deleted("alice", &first)]);
}

#[tokio::test]
async fn guests_and_deactivation() {
    let server = TestServer::with(|config| config.registration.guest_access = true).await;
    let (status, guest) = server
        .post("/_matrix/client/v3/register?kind=guest", None, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{guest}");
    let guest_id: OwnedUserId = guest["user_id"]
        .as_str()
        .expect("user_id")
        .try_into()
        .expect("user ID");
    let localpart = guest_id.localpart().to_owned();
    assert_eq!(
        server.events.take(),
        [
            AccountEvent::Created {
                user_id: guest_id.clone(),
                displayname: Some(localpart.clone()),
                emails: Vec::new(),
                is_guest: true,
            },
            device_created(&localpart, &guest, None),
        ]
    );

    let upgrade = json!({"username": localpart, "password": "password123", "guest_access_token": guest["access_token"]});
    let (status, challenge) = server
        .post("/_matrix/client/v3/register", None, &upgrade)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let mut upgrade = upgrade;
    upgrade["auth"] = json!({"type": "m.login.dummy", "session": challenge["session"]});
    let (status, upgraded) = server
        .post("/_matrix/client/v3/register", None, &upgrade)
        .await;
    assert_eq!(status, StatusCode::OK, "{upgraded}");
    assert_eq!(
        server.events.take(),
        [
            AccountEvent::GuestUpgraded {
                user_id: guest_id.clone()
            },
            device_created(&localpart, &upgraded, None),
        ]
    );

    let token = upgraded["access_token"].as_str();
    let (status, body) = with_password_uia(
        &server,
        Method::POST,
        "/_matrix/client/r0/account/deactivate",
        token,
        json!({"erase": true}),
        &localpart,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        server.events.take(),
        [AccountEvent::Deactivated {
            user_id: guest_id,
            erased: true,
        }]
    );
}

#[tokio::test]
async fn the_seeds_prefixes_report_like_the_current_api() {
    let server = TestServer::spawn().await;
    let v1 = json!({"type": "m.login.password", "user": "bob", "password": "password123"});
    let (status, registered) = server
        .post("/_matrix/client/api/v1/register", None, &v1)
        .await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(
        server.events.take(),
        [created("bob"), device_created("bob", &registered, None)]
    );
    let (status, logged_in) = server.post("/_matrix/client/api/v1/login", None, &v1).await;
    assert_eq!(status, StatusCode::OK, "{logged_in}");
    assert_eq!(
        server.events.take(),
        [device_created("bob", &logged_in, None)]
    );

    let v2 = json!({"username": "carol", "password": "password123"});
    let (_, challenge) = server
        .post("/_matrix/client/v2_alpha/register", None, &v2)
        .await;
    let mut v2 = v2;
    v2["auth"] = json!({"type": "m.login.dummy", "session": challenge["session"]});
    let (status, carol) = server
        .post("/_matrix/client/v2_alpha/register", None, &v2)
        .await;
    assert_eq!(status, StatusCode::OK, "{carol}");
    let carol_session = server
        .events
        .take()
        .into_iter()
        .find_map(|event| match event {
            AccountEvent::DeviceCreated { device_id, .. } => Some(device_id),
            _ => None,
        })
        .expect("a device session");
    let other = server.login("carol", "password123").await;
    server.events.take();
    let (status, body) = with_password_uia(
        &server,
        Method::POST,
        "/_matrix/client/v2_alpha/account/password",
        carol["access_token"].as_str(),
        json!({"new_password": "password123"}),
        "carol",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        server.events.take(),
        [
            AccountEvent::PasswordChanged {
                user_id: user("carol")
            },
            device_deleted("carol", &other),
        ]
    );
    assert!(!carol_session.as_str().is_empty());
}

#[tokio::test]
async fn administrators_and_the_operator_cli_report_their_changes() {
    let server = TestServer::spawn().await;
    let root = server.register("root", "password123").await;
    server.register("dave", "password123").await;
    server.events.take();
    let dir = TempDir::new().expect("dir");
    let cli = |args: &[&str]| {
        let output = vestibule(&dir, server.database_url(), args, None);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    cli(&["user", "grant-admin", "root"]);

    let token = root["access_token"].as_str();
    for (path, body) in [
        ("lock", json!({"locked": true})),
        // Locking a locked account changes nothing and reports nothing.
        ("lock", json!({"locked": true})),
        ("lock", json!({"locked": false})),
        ("suspend", json!({"suspended": true})),
    ] {
        let (status, answer) = server
            .request(
                Method::PUT,
                &format!("/_matrix/client/v1/admin/{path}/@dave:localhost"),
                token,
                Some(&body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    assert_eq!(
        server.events.take(),
        [
            AccountEvent::Locked {
                user_id: user("dave"),
                locked: true
            },
            AccountEvent::Locked {
                user_id: user("dave"),
                locked: false
            },
            AccountEvent::Suspended {
                user_id: user("dave"),
                suspended: true
            },
        ]
    );
    // A non-administrator's attempt changes and reports nothing.
    let dave = server.login("dave", "password123").await;
    server.events.take();
    assert_error(
        &server
            .request(
                Method::PUT,
                "/_matrix/client/v1/admin/lock/@root:localhost",
                dave["access_token"].as_str(),
                Some(&json!({"locked": true})),
            )
            .await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    assert_eq!(server.events.take(), []);

    // The CLI is another process: its changes leave through the log outlet, one line each.
    let kinds = |stderr: &str| -> Vec<String> {
        stderr
            .lines()
            .filter(|line| line.contains("vestibule::account_events"))
            .filter_map(|line| line.split("kind=\"").nth(1))
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    };
    let stderr = cli(&["user", "create", "erin", "--password", "password123"]);
    assert_eq!(kinds(&stderr), ["created"], "{stderr}");
    for (action, kind) in [
        ("lock", "locked"),
        ("unlock", "locked"),
        ("suspend", "suspended"),
        ("unsuspend", "suspended"),
    ] {
        let stderr = cli(&["user", action, "erin"]);
        assert_eq!(kinds(&stderr), [kind], "{action}: {stderr}");
    }
    server.login("erin", "password123").await;
    let stderr = cli(&[
        "user",
        "reset-password",
        "erin",
        "--password",
        "password456",
    ]);
    assert_eq!(
        kinds(&stderr),
        ["password_changed", "device_deleted"],
        "{stderr}"
    );
    let stderr = cli(&["user", "deactivate", "erin"]);
    assert_eq!(kinds(&stderr), ["deactivated"], "{stderr}");
}
