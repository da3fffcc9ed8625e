//! `GET/POST /login`, `/logout`, `/logout/all`, `/account/whoami` and token handling.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, assert_error};

const LOGIN: &str = "/_matrix/client/v3/login";
const WHOAMI: &str = "/_matrix/client/v3/account/whoami";

#[tokio::test]
async fn login_flows_offer_password_and_login_tokens() {
    let server = TestServer::spawn().await;
    for prefix in ["v3", "r0"] {
        let (status, body) = server
            .get(&format!("/_matrix/client/{prefix}/login"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"flows": [
                {"type": "m.login.password"},
                {"type": "m.login.token", "get_login_token": true},
            ]})
        );
    }
}

#[tokio::test]
async fn password_login_accepts_every_way_of_naming_the_user() {
    let server = TestServer::spawn().await;
    server.register("dana", "password123").await;
    let bodies = [
        json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "dana"}, "password": "password123"}),
        json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "@dana:localhost"}, "password": "password123"}),
        json!({"type": "m.login.password", "user": "dana", "password": "password123"}),
        json!({"type": "m.login.password", "user": "@dana:localhost", "password": "password123"}),
    ];
    for body in bodies {
        let (status, login) = server.post(LOGIN, None, &body).await;
        assert_eq!(status, StatusCode::OK, "{body} -> {login}");
        assert_eq!(login["user_id"], "@dana:localhost");
        assert_eq!(login["home_server"], "localhost");
        assert!(login["device_id"].is_string());
        let (status, _) = server.get(WHOAMI, login["access_token"].as_str()).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let server = TestServer::spawn().await;
    server.register("erin", "password123").await;
    let wrong = server
        .post(
            LOGIN,
            None,
            &json!({"type": "m.login.password", "user": "erin", "password": "nope"}),
        )
        .await;
    let unknown = server
        .post(
            LOGIN,
            None,
            &json!({"type": "m.login.password", "user": "nobody", "password": "nope"}),
        )
        .await;
    let elsewhere = server
        .post(
            LOGIN,
            None,
            &json!({"type": "m.login.password", "user": "@erin:other", "password": "password123"}),
        )
        .await;
    assert_error(&wrong, StatusCode::FORBIDDEN, "M_FORBIDDEN");
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, elsewhere);
}

#[tokio::test]
async fn unknown_login_type_and_identifier_are_refused() {
    let server = TestServer::spawn().await;
    let response = server
        .post(LOGIN, None, &json!({"type": "m.login.bogus", "user": "x"}))
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_UNKNOWN");
    let body = json!({"type": "m.login.password", "identifier": {"type": "m.id.phone", "country": "GB", "phone": "1"}, "password": "x"});
    assert_error(
        &server.post(LOGIN, None, &body).await,
        StatusCode::BAD_REQUEST,
        "M_UNKNOWN",
    );
}

#[tokio::test]
async fn reusing_a_device_id_invalidates_its_old_token() {
    let server = TestServer::spawn().await;
    server.register("finn", "password123").await;
    let body = json!({"type": "m.login.password", "user": "finn", "password": "password123", "device_id": "LAPTOP"});
    let (_, first) = server.post(LOGIN, None, &body).await;
    let (_, second) = server.post(LOGIN, None, &body).await;
    assert_eq!(first["device_id"], "LAPTOP");
    assert_eq!(second["device_id"], "LAPTOP");
    assert_error(
        &server.get(WHOAMI, first["access_token"].as_str()).await,
        StatusCode::UNAUTHORIZED,
        "M_UNKNOWN_TOKEN",
    );
    let (status, whoami) = server.get(WHOAMI, second["access_token"].as_str()).await;
    assert_eq!(
        (status, whoami["device_id"].clone()),
        (StatusCode::OK, json!("LAPTOP"))
    );
}

#[tokio::test]
async fn token_in_query_parameter_is_accepted() {
    let server = TestServer::spawn().await;
    let token = server.register("gail", "password123").await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (status, body) = server
        .get(&format!("{WHOAMI}?access_token={token}"), None)
        .await;
    assert_eq!(
        (status, body["user_id"].clone()),
        (StatusCode::OK, json!("@gail:localhost"))
    );
}

#[tokio::test]
async fn missing_and_unknown_tokens() {
    let server = TestServer::spawn().await;
    let missing = server.get(WHOAMI, None).await;
    assert_error(&missing, StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN");
    let unknown = server.get(WHOAMI, Some("vat_not_a_real_token")).await;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    assert_eq!(unknown.1["soft_logout"], false);
    let response = server
        .http
        .get(format!("{}{WHOAMI}", server.base))
        .header("authorization", "Basic abc")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_token_is_a_soft_logout() {
    let server = TestServer::with(|config| config.tokens.access_token_lifetime_secs = 60).await;
    let registered = server.register("hank", "password123").await;
    assert_eq!(registered["expires_in_ms"], 60_000);
    let token = registered["access_token"].as_str().expect("token");
    assert_eq!(server.get(WHOAMI, Some(token)).await.0, StatusCode::OK);
    server.clock.advance(61_000);
    let expired = server.get(WHOAMI, Some(token)).await;
    assert_error(&expired, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    assert_eq!(expired.1["soft_logout"], true);
}

#[tokio::test]
async fn logout_ends_only_this_session() {
    let server = TestServer::spawn().await;
    let first = server.register("ivy", "password123").await;
    let second = server.login("ivy", "password123").await;
    let (status, body) = server
        .post(
            "/_matrix/client/v3/logout",
            first["access_token"].as_str(),
            &json!({}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_error(
        &server.get(WHOAMI, first["access_token"].as_str()).await,
        StatusCode::UNAUTHORIZED,
        "M_UNKNOWN_TOKEN",
    );
    assert_eq!(
        server.get(WHOAMI, second["access_token"].as_str()).await.0,
        StatusCode::OK
    );
    let again = server
        .post(
            "/_matrix/client/v3/logout",
            first["access_token"].as_str(),
            &json!({}),
        )
        .await;
    assert_error(&again, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
}

#[tokio::test]
async fn logout_all_ends_every_session() {
    let server = TestServer::spawn().await;
    let first = server.register("jack", "password123").await;
    let second = server.login("jack", "password123").await;
    let other_user = server.register("kate", "password123").await;
    let (status, _) = server
        .post(
            "/_matrix/client/r0/logout/all",
            second["access_token"].as_str(),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for token in [&first, &second] {
        assert_error(
            &server.get(WHOAMI, token["access_token"].as_str()).await,
            StatusCode::UNAUTHORIZED,
            "M_UNKNOWN_TOKEN",
        );
    }
    assert_eq!(
        server
            .get(WHOAMI, other_user["access_token"].as_str())
            .await
            .0,
        StatusCode::OK
    );
    server.login("jack", "password123").await;
}
