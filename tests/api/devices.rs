//! Device management: list, get, rename, delete (through UIA) and bulk delete.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use vestibule::clock::Clock;

use crate::support::{TestServer, assert_error};

fn password_auth(session: &Value) -> Value {
    json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "dev"},
        "password": "password123",
        "session": session,
    })
}

async fn user_with_two_devices(server: &TestServer) -> (String, String) {
    let body = json!({"username": "dev", "password": "password123", "device_id": "PHONE",
        "initial_device_display_name": "Phone", "auth": {"type": "m.login.dummy"}});
    let (status, phone) = server
        .post("/_matrix/client/v3/register", None, &body)
        .await;
    assert_eq!(status, StatusCode::OK, "{phone}");
    let login = json!({"type": "m.login.password", "user": "dev", "password": "password123",
        "device_id": "LAPTOP", "initial_device_display_name": "Laptop"});
    let (_, laptop) = server.post("/_matrix/client/v3/login", None, &login).await;
    let token = |body: &Value| body["access_token"].as_str().expect("token").to_owned();
    (token(&phone), token(&laptop))
}

#[tokio::test]
async fn list_get_and_rename_devices() {
    let server = TestServer::spawn().await;
    let (phone, _) = user_with_two_devices(&server).await;
    let (status, list) = server.get("/_matrix/client/v3/devices", Some(&phone)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let devices = list["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0]["device_id"], "LAPTOP");
    assert_eq!(devices[0]["display_name"], "Laptop");
    assert_eq!(devices[1]["display_name"], "Phone");
    assert_eq!(devices[1]["last_seen_ip"], "127.0.0.1");
    assert!(devices[1]["last_seen_ts"].is_i64());

    let (status, device) = server
        .get("/_matrix/client/r0/devices/PHONE", Some(&phone))
        .await;
    assert_eq!(
        (status, device["display_name"].clone()),
        (StatusCode::OK, json!("Phone"))
    );
    let rename = server
        .request(
            Method::PUT,
            "/_matrix/client/v3/devices/PHONE",
            Some(&phone),
            Some(&json!({"display_name": "Old phone"})),
        )
        .await;
    assert_eq!(rename, (StatusCode::OK, json!({})));
    let (_, device) = server
        .get("/_matrix/client/v3/devices/PHONE", Some(&phone))
        .await;
    assert_eq!(device["display_name"], "Old phone");

    assert_error(
        &server
            .get("/_matrix/client/v3/devices/NOPE", Some(&phone))
            .await,
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
    );
    let rename = server
        .request(
            Method::PUT,
            "/_matrix/client/v3/devices/NOPE",
            Some(&phone),
            Some(&json!({"display_name": "x"})),
        )
        .await;
    assert_error(&rename, StatusCode::NOT_FOUND, "M_NOT_FOUND");
    // Another user's devices are invisible.
    let other = server.register("other", "password123").await;
    let response = server
        .get(
            "/_matrix/client/v3/devices/PHONE",
            other["access_token"].as_str(),
        )
        .await;
    assert_error(&response, StatusCode::NOT_FOUND, "M_NOT_FOUND");
    assert_error(
        &server.get("/_matrix/client/v3/devices", None).await,
        StatusCode::UNAUTHORIZED,
        "M_MISSING_TOKEN",
    );
}

#[tokio::test]
async fn deleting_a_device_needs_uia_and_revokes_its_token() {
    let server = TestServer::spawn().await;
    let (phone, laptop) = user_with_two_devices(&server).await;
    let path = "/_matrix/client/v3/devices/LAPTOP";
    let (status, challenge) = server
        .request(Method::DELETE, path, Some(&phone), Some(&json!({})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    assert_eq!(
        challenge["flows"],
        json!([{"stages": ["m.login.password"]}])
    );
    let body = json!({"auth": password_auth(&challenge["session"])});
    let deleted = server
        .request(Method::DELETE, path, Some(&phone), Some(&body))
        .await;
    assert_eq!(deleted, (StatusCode::OK, json!({})));
    assert_error(
        &server
            .get("/_matrix/client/v3/account/whoami", Some(&laptop))
            .await,
        StatusCode::UNAUTHORIZED,
        "M_UNKNOWN_TOKEN",
    );
    let (_, list) = server.get("/_matrix/client/v3/devices", Some(&phone)).await;
    assert_eq!(list["devices"].as_array().expect("devices").len(), 1);
    // Deleting it again ("removed previously") is a success, after UIA like any deletion.
    let (status, challenge) = server
        .request(Method::DELETE, path, Some(&phone), Some(&json!({})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body = json!({"auth": password_auth(&challenge["session"])});
    assert_eq!(
        server
            .request(Method::DELETE, path, Some(&phone), Some(&body))
            .await,
        (StatusCode::OK, json!({}))
    );
}

#[tokio::test]
async fn bulk_delete_through_uia() {
    let server = TestServer::spawn().await;
    let (phone, laptop) = user_with_two_devices(&server).await;
    let path = "/_matrix/client/v3/delete_devices";
    assert_error(
        &server.post(path, Some(&phone), &json!({})).await,
        StatusCode::BAD_REQUEST,
        "M_MISSING_PARAM",
    );
    let body = json!({"devices": ["LAPTOP", "PHONE", "UNKNOWN"]});
    let (status, challenge) = server.post(path, Some(&phone), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut body = body;
    body["auth"] = password_auth(&challenge["session"]);
    assert_eq!(
        server.post(path, Some(&phone), &body).await,
        (StatusCode::OK, json!({}))
    );
    for token in [&phone, &laptop] {
        assert_error(
            &server
                .get("/_matrix/client/v3/account/whoami", Some(token))
                .await,
            StatusCode::UNAUTHORIZED,
            "M_UNKNOWN_TOKEN",
        );
    }
}

#[tokio::test]
async fn last_seen_follows_requests_and_survives_a_restart() {
    let server = TestServer::spawn().await;
    let (phone, laptop) = user_with_two_devices(&server).await;
    let logged_in_at = server.clock.now_ms();
    server.clock.advance(60_000);
    assert_eq!(
        server
            .get("/_matrix/client/v3/account/whoami", Some(&laptop))
            .await
            .0,
        StatusCode::OK
    );
    let laptop_seen = |list: &Value| {
        let devices = list["devices"].as_array().expect("devices");
        devices
            .iter()
            .find(|device| device["device_id"] == "LAPTOP")
            .expect("laptop")["last_seen_ts"]
            .clone()
    };
    let (_, list) = server.get("/_matrix/client/v3/devices", Some(&phone)).await;
    assert_eq!(laptop_seen(&list), json!(logged_in_at + 60_000));
    // Written in a batch at the latest when the server stops.
    let server = server.restart().await;
    let (_, list) = server.get("/_matrix/client/v3/devices", Some(&phone)).await;
    assert_eq!(laptop_seen(&list), json!(logged_in_at + 60_000));
}

/// Clients send `DELETE /devices/{id}` without a body first, to learn the flows.
#[tokio::test]
async fn deleting_a_device_without_a_body_asks_for_uia() {
    let server = TestServer::spawn().await;
    let (phone, _) = user_with_two_devices(&server).await;
    let response = server
        .http
        .delete(format!("{}/_matrix/client/v3/devices/LAPTOP", server.base))
        .bearer_auth(&phone)
        .send()
        .await
        .expect("request is sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge: Value = response.json().await.expect("JSON");
    assert_eq!(
        challenge["flows"],
        json!([{"stages": ["m.login.password"]}])
    );
    let body = json!({"auth": password_auth(&challenge["session"])});
    let (status, answer) = server
        .request(
            Method::DELETE,
            "/_matrix/client/v3/devices/LAPTOP",
            Some(&phone),
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// `PUT /devices/{id}` with `{}` leaves the name as it is; only a given `display_name` changes it.
#[tokio::test]
async fn renaming_without_a_name_keeps_the_name() {
    let server = TestServer::spawn().await;
    let (phone, _) = user_with_two_devices(&server).await;
    let (status, _) = server
        .request(
            Method::PUT,
            "/_matrix/client/v3/devices/LAPTOP",
            Some(&phone),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, laptop) = server
        .get("/_matrix/client/v3/devices/LAPTOP", Some(&phone))
        .await;
    assert_eq!(laptop["display_name"], "Laptop");
    let (status, _) = server
        .request(
            Method::PUT,
            "/_matrix/client/v3/devices/NOSUCH",
            Some(&phone),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Device IDs a client asks for are at most 255 bytes of printable characters.
#[tokio::test]
async fn device_ids_must_be_short_and_printable() {
    let server = TestServer::spawn().await;
    let (phone, _) = user_with_two_devices(&server).await;
    for device_id in [
        "A".repeat(256),
        "NUL\u{0}BYTE".to_owned(),
        "TAB\tHERE".to_owned(),
    ] {
        let login = json!({"type": "m.login.password", "user": "dev", "password": "password123",
            "device_id": device_id});
        assert_error(
            &server.post("/_matrix/client/v3/login", None, &login).await,
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
        );
        let register = json!({"username": format!("u{}", device_id.len()), "password": "password123",
            "device_id": device_id, "auth": {"type": "m.login.dummy"}});
        assert_error(
            &server
                .post("/_matrix/client/v3/register", None, &register)
                .await,
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
        );
    }
    // None was created; looking one up finds nothing.
    let long = format!("/_matrix/client/v3/devices/{}", "A".repeat(256));
    assert_error(
        &server.get(&long, Some(&phone)).await,
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
    );
    let (_, list) = server.get("/_matrix/client/v3/devices", Some(&phone)).await;
    assert_eq!(list["devices"].as_array().map(Vec::len), Some(2));
}
