//! Identity servers, with the reference one (matrix-sydent) on loopback: the current
//! `/account/3pid/bind` and `/unbind` with an `id_access_token` obtained through Vestibule's
//! OpenID endpoints. (The seeds' `three_pid_creds` are in `seeds/seed_004_account_3pid.rs`.)

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    peers::{MailSink, Sydent, SydentClient},
    support::{TestServer, assert_error},
};

/// A server (named by its own address, so sydent can reach it) that trusts `sydent`.
pub async fn server_trusting(sydent: &Sydent) -> TestServer {
    let url = sydent.url();
    TestServer::named_by_address(move |config| {
        config.identity.trusted_servers = vec![url.try_into().expect("trusted server")]
    })
    .await
}

#[tokio::test]
async fn bind_and_unbind_with_an_identity_access_token_from_openid() {
    let sink = MailSink::start();
    let sydent = Sydent::start(&sink);
    let server = server_trusting(&sydent).await;
    let carol = server.register("carol", "password123").await;
    let token = carol["access_token"].as_str();
    let user_id = carol["user_id"].as_str().unwrap().to_owned();

    // The client proves who it is to the identity server with an OpenID token, which the
    // identity server checks against Vestibule's federation user-info endpoint.
    let path = format!("/_matrix/client/v3/user/{user_id}/openid/request_token");
    let (status, openid) = server.post(&path, token, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{openid}");
    assert_eq!(openid["token_type"], "Bearer");
    assert_eq!(
        openid["matrix_server_name"],
        server.config.server_name.as_str()
    );
    let mut identity = SydentClient::new(&sydent, &sink);
    let registered = identity
        .post("/_matrix/identity/v2/account/register", &openid)
        .await;
    identity.token = registered["token"].as_str().map(str::to_owned);
    assert!(identity.token.is_some(), "{registered}");

    let sid = identity.validate("carol@example.org", "carol-secret").await;
    let bind = json!({
        "client_secret": "carol-secret",
        "id_server": sydent.name(),
        "id_access_token": identity.token,
        "sid": sid,
    });
    let (status, body) = server
        .post("/_matrix/client/v3/account/3pid/bind", token, &bind)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(
        identity.lookup("carol@example.org").await.as_deref(),
        Some(user_id.as_str())
    );
    // Binding does not add the address to the account.
    let (_, listed) = server.get("/_matrix/client/v3/account/3pid", token).await;
    assert_eq!(listed["threepids"], json!([]));

    let unbind =
        json!({"medium": "email", "address": "carol@example.org", "id_server": sydent.name()});
    let (status, body) = server
        .post("/_matrix/client/v3/account/3pid/unbind", token, &unbind)
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"id_server_unbind_result": "success"})
        )
    );
    assert_eq!(identity.lookup("carol@example.org").await, None);

    let untrusted =
        json!({"medium": "email", "address": "carol@example.org", "id_server": "evil.example.org"});
    let response = server
        .post("/_matrix/client/v3/account/3pid/unbind", token, &untrusted)
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_SERVER_NOT_TRUSTED");
}

#[tokio::test]
async fn openid_tokens_are_for_yourself_and_expire() {
    let server = TestServer::spawn().await;
    let dora = server.register("dora", "password123").await;
    let token = dora["access_token"].as_str();
    let response = server
        .post(
            "/_matrix/client/v3/user/@someone:localhost/openid/request_token",
            token,
            &json!({}),
        )
        .await;
    assert_error(&response, StatusCode::FORBIDDEN, "M_FORBIDDEN");
    let (_, openid) = server
        .post(
            "/_matrix/client/v3/user/@dora:localhost/openid/request_token",
            token,
            &json!({}),
        )
        .await;
    assert_eq!(openid["expires_in"], 3600);
    let userinfo = format!(
        "/_matrix/federation/v1/openid/userinfo?access_token={}",
        openid["access_token"].as_str().unwrap()
    );
    let (status, body) = server.get(&userinfo, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"sub": "@dora:localhost"}))
    );
    server.clock.advance(3_600_001);
    assert_error(
        &server.get(&userinfo, None).await,
        StatusCode::UNAUTHORIZED,
        "M_UNKNOWN_TOKEN",
    );
}
