//! Seed 001, the v2_alpha API (`/_matrix/client/v2_alpha`): `POST /register` through UIA with
//! `username`, `password` (required) and `bind_email`, answering `user_id`, `access_token`,
//! `home_server` and a `refresh_token`, with `M_USER_IN_USE` and `M_EXCLUSIVE`;
//! `POST /tokenrefresh`; `POST /account/password` (UIA, `{}`, and `M_NOT_FOUND` when a third
//! party identifier names no account); `GET/POST /account/3pid` with `threePidCreds`.
//! Registration and token refresh are also on the document's own basePath,
//! `/_matrix/client/api/v2_alpha`, where its example is written.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{WHOAMI, use_mail};
use crate::{
    peers::{MailSink, Sydent, SydentClient},
    support::{TestServer, assert_error},
};

const V2_REGISTER: &str = "/_matrix/client/v2_alpha/register";
const V2_REFRESH: &str = "/_matrix/client/v2_alpha/tokenrefresh";
const V2_PASSWORD: &str = "/_matrix/client/v2_alpha/account/password";
const V2_3PID: &str = "/_matrix/client/v2_alpha/account/3pid";

#[tokio::test]
async fn registration_through_uia_returns_a_refresh_token() {
    let server = TestServer::with(|config| {
        config.registration.exclusive_user_namespaces = vec!["@irc_.*:localhost".into()]
    })
    .await;
    let body =
        json!({"username": "cheeky_monkey", "password": "ilovebananas", "bind_email": false});
    let (status, challenge) = server.post(V2_REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    assert_eq!(challenge["flows"], json!([{"stages": ["m.login.dummy"]}]));
    let mut body = body;
    body["auth"] = json!({"type": "m.login.dummy", "session": challenge["session"]});
    let (status, registered) = server.post(V2_REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["user_id"], "@cheeky_monkey:localhost");
    assert_eq!(registered["home_server"], "localhost");
    assert!(registered["refresh_token"].is_string());
    assert_eq!(
        server
            .get(WHOAMI, registered["access_token"].as_str())
            .await
            .0,
        StatusCode::OK
    );

    let taken = json!({"username": "cheeky_monkey", "password": "ilovebananas"});
    assert_error(
        &server.post(V2_REGISTER, None, &taken).await,
        StatusCode::BAD_REQUEST,
        "M_USER_IN_USE",
    );
    let exclusive = json!({"username": "irc_bot", "password": "ilovebananas"});
    assert_error(
        &server.post(V2_REGISTER, None, &exclusive).await,
        StatusCode::BAD_REQUEST,
        "M_EXCLUSIVE",
    );
    // The password is required to complete the registration, not to start its UIA.
    let no_password = json!({"username": "nopass"});
    let (status, challenge) = server.post(V2_REGISTER, None, &no_password).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let done = json!({"auth": {"type": "m.login.dummy", "session": challenge["session"]}});
    assert_error(
        &server.post(V2_REGISTER, None, &done).await,
        StatusCode::BAD_REQUEST,
        "M_MISSING_PARAM",
    );
}

#[tokio::test]
async fn a_refresh_token_works_once() {
    let server = TestServer::spawn().await;
    let body =
        json!({"username": "ray", "password": "password123", "auth": {"type": "m.login.dummy"}});
    let (_, registered) = server.post(V2_REGISTER, None, &body).await;
    let old = json!({"refresh_token": registered["refresh_token"]});
    let (status, refreshed) = server.post(V2_REFRESH, None, &old).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert!(refreshed["access_token"].is_string() && refreshed["refresh_token"].is_string());
    assert_eq!(
        server
            .get(WHOAMI, refreshed["access_token"].as_str())
            .await
            .0,
        StatusCode::OK
    );
    assert_error(
        &server
            .get(WHOAMI, registered["access_token"].as_str())
            .await,
        StatusCode::UNAUTHORIZED,
        "M_UNKNOWN_TOKEN",
    );
    // The old refresh token stops working at once, even before the new tokens are used.
    let newer = json!({"refresh_token": refreshed["refresh_token"]});
    let (status, newest) = server.post(V2_REFRESH, None, &newer).await;
    assert_eq!(status, StatusCode::OK, "{newest}");
    assert_error(
        &server.post(V2_REFRESH, None, &newer).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    // Presenting a spent refresh token revoked the device: the newest tokens are gone too.
    assert_error(
        &server.get(WHOAMI, newest["access_token"].as_str()).await,
        StatusCode::UNAUTHORIZED,
        "M_UNKNOWN_TOKEN",
    );
    let newest = json!({"refresh_token": newest["refresh_token"]});
    assert_error(
        &server.post(V2_REFRESH, None, &newest).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    assert_error(
        &server.post(V2_REFRESH, None, &old).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
}

/// A server with an email registration flow (and an open one), trusting `sydent`, mailing through `sink`.
async fn email_server(sydent: &Sydent, sink: &MailSink) -> TestServer {
    let url = sydent.url();
    let port = sink.port();
    TestServer::named_by_address(move |config| {
        config.identity.trusted_servers = vec![url.try_into().expect("trusted server")];
        config.email.smtp_host = "127.0.0.1".into();
        config.email.smtp_port = port;
        config.email.tls = vestibule::config::SmtpTls::None;
        config.registration.flows = vec![
            vec!["m.login.email.identity".into()],
            vec!["m.login.dummy".into()],
        ];
    })
    .await
}

fn email_auth(sydent: &Sydent, sid: &str, secret: &str, session: &Value) -> Value {
    json!({
        "type": "m.login.email.identity",
        "threepidCreds": {"id_server": sydent.name(), "sid": sid, "client_secret": secret},
        "session": session,
    })
}

#[tokio::test]
async fn bind_email_binds_the_registration_email_at_the_identity_server() {
    let sink = MailSink::start();
    let sydent = Sydent::start(&sink);
    let server = email_server(&sydent, &sink).await;
    let identity = SydentClient::new(&sydent, &sink);
    for (username, email, bind) in [
        ("bound", "bound@example.org", true),
        ("unbound", "unbound@example.org", false),
    ] {
        let sid = identity.validate(email, "v2-secret").await;
        let body = json!({"username": username, "password": "password123", "bind_email": bind});
        let (_, challenge) = server.post(V2_REGISTER, None, &body).await;
        assert_eq!(
            challenge["flows"][0],
            json!({"stages": ["m.login.email.identity"]})
        );
        let mut body = body;
        body["auth"] = email_auth(&sydent, &sid, "v2-secret", &challenge["session"]);
        let (status, registered) = server.post(V2_REGISTER, None, &body).await;
        assert_eq!(status, StatusCode::OK, "{registered}");
        let expected = bind.then(|| registered["user_id"].as_str().unwrap().to_owned());
        assert_eq!(identity.lookup(email).await, expected);
        let (_, listed) = server
            .get(V2_3PID, registered["access_token"].as_str())
            .await;
        assert_eq!(
            listed["threepids"][0],
            json!({"medium": "email", "address": email, "validated_at": listed["threepids"][0]["validated_at"], "added_at": listed["threepids"][0]["added_at"]})
        );
    }
}

#[tokio::test]
async fn password_change_without_a_token_resets_by_email_or_is_not_found() {
    let sink = MailSink::start();
    let sydent = Sydent::start(&sink);
    let server = email_server(&sydent, &sink).await;
    let identity = SydentClient::new(&sydent, &sink);

    // An account whose address was added through the identity server.
    let tess = server.register("tess", "password123").await;
    let sid = identity.validate("tess@example.org", "add-secret").await;
    let add = json!({"threePidCreds": {"id_server": sydent.name(), "sid": sid, "client_secret": "add-secret"}});
    let (status, _) = server
        .post(V2_3PID, tess["access_token"].as_str(), &add)
        .await;
    assert_eq!(status, StatusCode::OK);

    let sid = identity.validate("tess@example.org", "reset-secret").await;
    let body = json!({"new_password": "brand-new-pass"});
    let (status, challenge) = server.post(V2_PASSWORD, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let mut body = body;
    body["auth"] = email_auth(&sydent, &sid, "reset-secret", &challenge["session"]);
    let (status, done) = server.post(V2_PASSWORD, None, &body).await;
    assert_eq!((status, done), (StatusCode::OK, json!({})));
    server.login("tess", "brand-new-pass").await;

    // An address the identity server validated but no account has: M_NOT_FOUND.
    let sid = identity
        .validate("nobody@example.org", "nobody-secret")
        .await;
    let body = json!({"new_password": "brand-new-pass"});
    let (_, challenge) = server.post(V2_PASSWORD, None, &body).await;
    let mut body = body;
    body["auth"] = email_auth(&sydent, &sid, "nobody-secret", &challenge["session"]);
    assert_error(
        &server.post(V2_PASSWORD, None, &body).await,
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
    );
}

#[tokio::test]
async fn without_email_or_identity_server_the_password_endpoint_needs_a_token() {
    let sink = MailSink::start();
    let server = TestServer::with(|config| use_mail(config, &sink)).await;
    let (status, challenge) = server
        .post(V2_PASSWORD, None, &json!({"new_password": "whatever-123"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let plain = TestServer::spawn().await;
    assert_error(
        &plain
            .post(V2_PASSWORD, None, &json!({"new_password": "whatever-123"}))
            .await,
        StatusCode::UNAUTHORIZED,
        "M_MISSING_TOKEN",
    );
}

/// Seed 001's `basePath`; its register example is written there (the prose says `V2_REGISTER`'s).
const API_V2_REGISTER: &str = "/_matrix/client/api/v2_alpha/register";
/// Seed 001's register example request, verbatim.
fn register_example() -> Value {
    json!({
        "username": "cheeky_monkey",
        "password": "ilovebananas",
        "bind_email": false
    })
}

/// Seed 001, `POST /register` example request and its 200 example response, on the document's
/// basePath (and on the prose's prefix): the endpoint uses UIA, so the body as written gets the
/// challenge and the same body with only `auth` added registers.
#[tokio::test]
async fn the_register_example_registers_as_written_on_both_prefixes() {
    for path in [API_V2_REGISTER, V2_REGISTER] {
        let server = TestServer::spawn().await;
        let (status, challenge) = server.post(path, None, &register_example()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {challenge}");
        assert!(challenge["session"].is_string(), "{challenge}");
        let mut body = register_example();
        body["auth"] = json!({"type": "m.login.dummy", "session": challenge["session"]});
        let (status, registered) = server.post(path, None, &body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {registered}");
        for field in ["user_id", "access_token", "home_server", "refresh_token"] {
            assert!(
                registered[field].is_string(),
                "{field} missing: {registered}"
            );
        }
        assert_eq!(registered["user_id"], "@cheeky_monkey:localhost");
        // The refresh token is for the document's `/tokenrefresh`, on the same prefix.
        let refresh = path.replace("/register", "/tokenrefresh");
        let old = json!({"refresh_token": registered["refresh_token"]});
        let (status, refreshed) = server.post(&refresh, None, &old).await;
        assert_eq!(status, StatusCode::OK, "{refresh}: {refreshed}");
    }
}

/// Seed 001, `POST /register` 400 example response (`M_USER_IN_USE` with its `error`): the
/// example request, verbatim, for a username that is already taken.
#[tokio::test]
async fn the_user_in_use_example_answers_the_register_example_once_taken() {
    let server = TestServer::spawn().await;
    server.register("cheeky_monkey", "ilovebananas").await;
    for path in [API_V2_REGISTER, V2_REGISTER] {
        let response = server.post(path, None, &register_example()).await;
        // assert_error also checks the example's `error` is there.
        assert_error(&response, StatusCode::BAD_REQUEST, "M_USER_IN_USE");
    }
}

/// Seed 001, prose request example `POST $V2PREFIX/account/password` with `new_password`:
/// with an access token, through UIA, answering the empty object.
#[tokio::test]
async fn the_password_request_example_changes_the_password() {
    let server = TestServer::spawn().await;
    let monkey = server.register("cheeky_monkey", "ilovebananas").await;
    let token = monkey["access_token"].as_str();
    let body = json!({"new_password": "ilovemangoes"});
    let (status, challenge) = server.post(V2_PASSWORD, token, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let mut body = body;
    body["auth"] = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "cheeky_monkey"},
        "password": "ilovebananas",
        "session": challenge["session"],
    });
    let (status, done) = server.post(V2_PASSWORD, token, &body).await;
    assert_eq!((status, done), (StatusCode::OK, json!({})));
    server.login("cheeky_monkey", "ilovemangoes").await;
}

/// Seed 001, prose request examples `POST $V2PREFIX/account/3pid` (`threePidCreds` with
/// `id_server`, `sid`, `client_secret`, and `bind`) answering `{}`, then
/// `GET $V2PREFIX/account/3pid` answering `threepids` of `medium` and `address`.
#[tokio::test]
async fn the_account_3pid_request_examples_add_bind_and_list() {
    let sink = MailSink::start();
    let sydent = Sydent::start(&sink);
    let server = email_server(&sydent, &sink).await;
    let identity = SydentClient::new(&sydent, &sink);
    let monkey = server.register("cheeky_monkey", "ilovebananas").await;
    let token = monkey["access_token"].as_str();
    let sid = identity
        .validate("monkey@banana.island", "monkey-secret")
        .await;
    let add = json!({
        "threePidCreds": {"id_server": sydent.name(), "sid": sid, "client_secret": "monkey-secret"},
        "bind": true,
    });
    let (status, added) = server.post(V2_3PID, token, &add).await;
    assert_eq!((status, added), (StatusCode::OK, json!({})));
    assert_eq!(
        identity.lookup("monkey@banana.island").await,
        monkey["user_id"].as_str().map(str::to_owned)
    );
    let (status, listed) = server.get(V2_3PID, token).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["threepids"][0]["medium"], "email");
    assert_eq!(listed["threepids"][0]["address"], "monkey@banana.island");
}
