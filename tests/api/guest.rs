//! Guest accounts: what they may not do, and upgrading one to a full account.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestServer, assert_error};

const REGISTER: &str = "/_matrix/client/v3/register";

async fn guest(server: &TestServer) -> Value {
    let (status, guest) = server
        .post(&format!("{REGISTER}?kind=guest"), None, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{guest}");
    guest
}

async fn guest_server() -> TestServer {
    TestServer::with(|config| config.registration.guest_access = true).await
}

#[tokio::test]
async fn guests_are_refused_on_endpoints_reserved_for_full_accounts() {
    let server = guest_server().await;
    let guest = guest(&server).await;
    let token = guest["access_token"].as_str().unwrap();
    let user_id = guest["user_id"].as_str().unwrap();

    let (status, whoami) = server
        .get("/_matrix/client/v3/account/whoami", Some(token))
        .await;
    assert_eq!(
        (status, whoami["is_guest"].clone()),
        (StatusCode::OK, json!(true))
    );
    for (method, path, body) in [
        (
            Method::POST,
            "/_matrix/client/v3/account/password",
            json!({"new_password": "password123"}),
        ),
        (
            Method::POST,
            "/_matrix/client/v3/account/deactivate",
            json!({}),
        ),
        (
            Method::POST,
            "/_matrix/client/v1/login/get_token",
            json!({}),
        ),
        (
            Method::POST,
            "/_matrix/client/v3/delete_devices",
            json!({"devices": []}),
        ),
        (Method::DELETE, "/_matrix/client/v3/devices/ABC", json!({})),
        (
            Method::POST,
            "/_matrix/client/r0/account/password",
            json!({"new_password": "password123"}),
        ),
    ] {
        let response = server.request(method, path, Some(token), Some(&body)).await;
        assert_error(&response, StatusCode::FORBIDDEN, "M_GUEST_ACCESS_FORBIDDEN");
    }
    let avatar = format!("/_matrix/client/v3/profile/{user_id}/avatar_url");
    let response = server
        .request(
            Method::PUT,
            &avatar,
            Some(token),
            Some(&json!({"avatar_url": "mxc://localhost/a"})),
        )
        .await;
    assert_error(&response, StatusCode::FORBIDDEN, "M_GUEST_ACCESS_FORBIDDEN");
    // Guests may name themselves and list their devices.
    let name = format!("/_matrix/client/v3/profile/{user_id}/displayname");
    let (status, _) = server
        .request(
            Method::PUT,
            &name,
            Some(token),
            Some(&json!({"displayname": "Visitor"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.get("/_matrix/client/v3/devices", Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, capabilities) = server
        .get("/_matrix/client/v3/capabilities", Some(token))
        .await;
    assert_eq!(
        capabilities["capabilities"]["m.change_password"]["enabled"],
        false
    );
    assert_eq!(
        capabilities["capabilities"]["m.set_displayname"]["enabled"],
        true
    );
    assert_eq!(
        capabilities["capabilities"]["m.set_avatar_url"]["enabled"],
        false
    );
}

#[tokio::test]
async fn a_guest_upgrades_to_a_full_account_under_its_own_name() {
    let server = guest_server().await;
    let guest = guest(&server).await;
    let guest_token = guest["access_token"].as_str().unwrap();
    let user_id = guest["user_id"].as_str().unwrap();
    let localpart = user_id.trim_start_matches('@').split(':').next().unwrap();

    // Another name is refused, before any UIA.
    let wrong = json!({"username": "somebody", "password": "password123", "guest_access_token": guest_token});
    assert_error(
        &server.post(REGISTER, None, &wrong).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    let unknown =
        json!({"username": localpart, "password": "password123", "guest_access_token": "vat_nope"});
    assert_error(
        &server.post(REGISTER, None, &unknown).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );

    let body = json!({"username": localpart, "password": "password123", "guest_access_token": guest_token});
    let (status, challenge) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let mut body = body;
    body["auth"] = json!({"type": "m.login.dummy", "session": challenge["session"]});
    let (status, upgraded) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::OK, "{upgraded}");
    assert_eq!(upgraded["user_id"], user_id);

    let (_, whoami) = server
        .get(
            "/_matrix/client/v3/account/whoami",
            upgraded["access_token"].as_str(),
        )
        .await;
    assert_eq!(whoami["is_guest"], false);
    // The guest session became a full one too, and the password now logs in.
    let (_, whoami) = server
        .get("/_matrix/client/v3/account/whoami", Some(guest_token))
        .await;
    assert_eq!(whoami["is_guest"], false);
    server.login(localpart, "password123").await;

    // A full account is not upgraded again.
    let again = json!({"username": localpart, "password": "password456", "guest_access_token": guest_token});
    assert_error(
        &server.post(REGISTER, None, &again).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
}

/// "All parameters in the request body with the exception of `initial_device_display_name` MUST
/// BE ignored by the server. The server MUST pick a `device_id` for the account regardless of
/// input." (spec, guest registration)
#[tokio::test]
async fn guest_registration_ignores_everything_but_the_device_name() {
    let server = guest_server().await;
    let body = json!({"username": "chosen", "password": "password123", "device_id": "MINE",
        "inhibit_login": true, "refresh_token": true, "initial_device_display_name": "Guest phone"});
    let (status, guest) = server
        .post(&format!("{REGISTER}?kind=guest"), None, &body)
        .await;
    assert_eq!(status, StatusCode::OK, "{guest}");
    assert_ne!(guest["user_id"], "@chosen:localhost");
    assert_ne!(guest["device_id"], "MINE");
    let token = guest["access_token"]
        .as_str()
        .expect("a session despite inhibit_login");
    assert!(guest.get("refresh_token").is_none(), "{guest}");
    let path = format!(
        "/_matrix/client/v3/devices/{}",
        guest["device_id"].as_str().unwrap()
    );
    let (_, device) = server.get(&path, Some(token)).await;
    assert_eq!(device["display_name"], "Guest phone");
}
