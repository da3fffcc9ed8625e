//! Seed 000, the v1 registration document (swagger 1.2, `/_matrix/client/api/v1/register`):
//! `get_registration_info` lists every accepted flow ("All login stages MUST be mentioned if
//! there is >1 login type"), `submit_registration` takes a `type` and that type's keys and
//! answers "Bad login type" or "Missing JSON keys" (400) when they are wrong.

use reqwest::StatusCode;
use serde_json::json;

use super::{V1_LOGIN, V1_REGISTER, WHOAMI, email_stage, use_captcha, use_mail};
use crate::{
    peers::{CaptchaVerifier, MailSink, Sydent, SydentClient},
    support::{TestServer, assert_error},
};

#[tokio::test]
async fn get_registration_info_lists_every_configured_flow() {
    let sink = MailSink::start();
    let verifier = CaptchaVerifier::start().await;
    let server = TestServer::with(|config| {
        use_mail(config, &sink);
        use_captcha(config, &verifier);
        config.registration.flows = vec![
            vec!["m.login.dummy".into()],
            vec!["m.login.email.identity".into()],
            vec!["m.login.recaptcha".into(), "m.login.email.identity".into()],
        ];
    })
    .await;
    let (status, flows) = server.get(V1_REGISTER, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        flows,
        json!({"flows": [
            {"type": "m.login.password"},
            {"type": "m.login.email.identity", "stages": ["m.login.email.identity", "m.login.password"]},
            {"type": "m.login.recaptcha", "stages": ["m.login.recaptcha", "m.login.email.identity", "m.login.password"]},
        ]})
    );
}

#[tokio::test]
async fn submit_registration_errors_follow_the_document() {
    let server = TestServer::spawn().await;
    let response = server
        .post(
            V1_REGISTER,
            None,
            &json!({"user": "a", "password": "password123"}),
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_MISSING_PARAM");
    let response = server
        .post(V1_REGISTER, None, &json!({"type": "m.login.bogus"}))
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_UNKNOWN");
    assert_eq!(response.1["error"], "Bad login type");
    let response = server
        .post(
            V1_REGISTER,
            None,
            &json!({"type": "m.login.password", "user": "zed"}),
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_MISSING_PARAM");
    assert_eq!(response.1["error"], "Missing JSON keys");
    assert_error(
        &server.post_raw(V1_REGISTER, "{not json").await,
        StatusCode::BAD_REQUEST,
        "M_NOT_JSON",
    );
}

#[tokio::test]
async fn password_registration_shares_accounts_with_v3() {
    let server = TestServer::spawn().await;
    let body = json!({"type": "m.login.password", "user": "xena", "password": "password123"});
    let (status, registered) = server.post(V1_REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["user_id"], "@xena:localhost");
    assert_eq!(registered["home_server"], "localhost");
    assert_eq!(
        server
            .get(WHOAMI, registered["access_token"].as_str())
            .await
            .0,
        StatusCode::OK
    );
    // A v1 account logs in on v3, a v3 account on v1.
    server.login("xena", "password123").await;
    server.register("yuri", "password123").await;
    let v1 = json!({"type": "m.login.password", "user": "yuri", "password": "password123"});
    assert_eq!(server.post(V1_LOGIN, None, &v1).await.0, StatusCode::OK);
    assert_error(
        &server.post(V1_REGISTER, None, &body).await,
        StatusCode::BAD_REQUEST,
        "M_USER_IN_USE",
    );
    let generated = json!({"type": "m.login.password", "password": "password123"});
    let (status, registered) = server.post(V1_REGISTER, None, &generated).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
}

#[tokio::test]
async fn closed_registration_offers_no_flow() {
    let server = TestServer::with(|config| config.registration.enabled = false).await;
    let (_, flows) = server.get(V1_REGISTER, None).await;
    assert_eq!(flows, json!({"flows": []}));
    let body = json!({"type": "m.login.password", "user": "xena", "password": "password123"});
    assert_error(
        &server.post(V1_REGISTER, None, &body).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
}

#[tokio::test]
async fn email_identity_then_password_binds_the_address_at_the_identity_server() {
    let sink = MailSink::start();
    let sydent = Sydent::start(&sink);
    let url = sydent.url();
    let port = sink.port();
    let server = TestServer::named_by_address(move |config| {
        config.identity.trusted_servers = vec![url.try_into().expect("trusted server")];
        config.email.smtp_host = "127.0.0.1".into();
        config.email.smtp_port = port;
        config.email.tls = vestibule::config::SmtpTls::None;
        config.registration.flows = vec![vec!["m.login.email.identity".into()]];
    })
    .await;
    let identity = SydentClient::new(&sydent, &sink);
    let sid = identity.validate("Wendy@Example.org", "v1-secret").await;

    let (status, step) = server
        .post(
            V1_REGISTER,
            None,
            &email_stage(Some(&sydent.name()), &sid, "v1-secret", None),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{step}");
    assert_eq!(step["next"], "m.login.password");
    let password = json!({"type": "m.login.password", "user": "wendy", "password": "password123", "session": step["session"]});
    let (status, registered) = server.post(V1_REGISTER, None, &password).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let user_id = registered["user_id"].as_str().unwrap();
    assert_eq!(
        identity.lookup("wendy@example.org").await.as_deref(),
        Some(user_id)
    );
    let (_, threepids) = server
        .get(
            "/_matrix/client/v3/account/3pid",
            registered["access_token"].as_str(),
        )
        .await;
    assert_eq!(threepids["threepids"][0]["address"], "wendy@example.org");

    // A stage without its keys is the document's "Missing JSON keys".
    let response = server
        .post(
            V1_REGISTER,
            None,
            &json!({"type": "m.login.email.identity"}),
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_MISSING_PARAM");
    assert!(
        response.1["error"]
            .as_str()
            .unwrap()
            .starts_with("Missing JSON keys")
    );

    // A session the identity server never validated does not pass the stage.
    let started = identity
        .post(
            "/_matrix/identity/api/v1/validate/email/requestToken",
            &json!({"client_secret": "s2", "email": "x@example.org", "send_attempt": 1}),
        )
        .await;
    let response = server
        .post(
            V1_REGISTER,
            None,
            &email_stage(
                Some(&sydent.name()),
                started["sid"].as_str().unwrap(),
                "s2",
                None,
            ),
        )
        .await;
    assert_error(
        &response,
        StatusCode::UNAUTHORIZED,
        "M_THREEPID_AUTH_FAILED",
    );
}
