//! `POST /account/deactivate` through UIA.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, assert_error};

const DEACTIVATE: &str = "/_matrix/client/v3/account/deactivate";

#[tokio::test]
async fn deactivation_ends_the_account_for_good() {
    let server = TestServer::spawn().await;
    let first = server.register("dora", "password123").await;
    let other = server.login("dora", "password123").await;
    let token = first["access_token"].as_str().expect("token");

    let (status, challenge) = server
        .post(DEACTIVATE, Some(token), &json!({"erase": true}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    assert_eq!(
        challenge["flows"],
        json!([{"stages": ["m.login.password"]}])
    );
    let auth = |password: &str| {
        json!({"erase": true, "auth": {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "dora"},
            "password": password,
            "session": challenge["session"],
        }})
    };
    let (status, failed) = server
        .post(DEACTIVATE, Some(token), &auth("wrong-password"))
        .await;
    assert_eq!(
        (status, failed["errcode"].clone()),
        (StatusCode::UNAUTHORIZED, json!("M_FORBIDDEN"))
    );
    let (status, done) = server
        .post(DEACTIVATE, Some(token), &auth("password123"))
        .await;
    assert_eq!(
        (status, done),
        (
            StatusCode::OK,
            json!({"id_server_unbind_result": "success"})
        )
    );

    for session in [&first, &other] {
        let whoami = server
            .get(
                "/_matrix/client/v3/account/whoami",
                session["access_token"].as_str(),
            )
            .await;
        assert_error(&whoami, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    }
    let login = json!({"type": "m.login.password", "user": "dora", "password": "password123"});
    assert_error(
        &server.post("/_matrix/client/v3/login", None, &login).await,
        StatusCode::FORBIDDEN,
        "M_USER_DEACTIVATED",
    );
    let register = json!({"username": "dora", "password": "password123"});
    assert_error(
        &server
            .post("/_matrix/client/v3/register", None, &register)
            .await,
        StatusCode::BAD_REQUEST,
        "M_USER_IN_USE",
    );
}

#[tokio::test]
async fn deactivation_needs_a_token_and_the_password() {
    let server = TestServer::spawn().await;
    assert_error(
        &server.post(DEACTIVATE, None, &json!({})).await,
        StatusCode::UNAUTHORIZED,
        "M_MISSING_TOKEN",
    );
    let user = server.register("eli", "password123").await;
    let auth = json!({"auth": {"type": "m.login.dummy"}});
    let response = server
        .post(
            "/_matrix/client/r0/account/deactivate",
            user["access_token"].as_str(),
            &auth,
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_UNRECOGNIZED");
    server.login("eli", "password123").await;
}
