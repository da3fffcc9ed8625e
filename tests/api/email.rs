//! Email verification with a real SMTP server: registration with an email, the validation
//! link and code, password reset by email, adding and removing addresses, login by email, and
//! the failure paths.

use reqwest::StatusCode;
use serde_json::{Value, json};
use vestibule::{
    accounts::events::AccountEvent,
    config::{Config, SmtpTls},
};

use crate::{
    atomicity::{refuse_deletes_on, run_sql},
    peers::{MailSink, ReceivedEmail},
    support::{TestServer, assert_error},
};

pub(crate) const REGISTER: &str = "/_matrix/client/v3/register";
pub(crate) const REGISTER_TOKEN: &str = "/_matrix/client/v3/register/email/requestToken";
pub(crate) const ADD_TOKEN: &str = "/_matrix/client/v3/account/3pid/email/requestToken";
pub(crate) const PASSWORD_TOKEN: &str = "/_matrix/client/v3/account/password/email/requestToken";

/// Points the server's mailer at `port` on loopback, in plain SMTP.
pub(crate) fn use_smtp(config: &mut Config, port: u16) {
    config.email.smtp_host = "127.0.0.1".into();
    config.email.smtp_port = port;
    config.email.tls = SmtpTls::None;
}

pub(crate) async fn email_server(sink: &MailSink, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let port = sink.port();
    TestServer::with(move |config| {
        use_smtp(config, port);
        adjust(config);
    })
    .await
}

/// The path and query of a link in an email (links use `public_baseurl`, not the test port).
pub(crate) fn local(link: &str) -> String {
    let url = url::Url::parse(link).expect("link is a URL");
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

pub(crate) async fn request_token(
    server: &TestServer,
    endpoint: &str,
    secret: &str,
    email: &str,
    attempt: u64,
) -> (StatusCode, Value) {
    let body = json!({"client_secret": secret, "email": email, "send_attempt": attempt});
    server.post(endpoint, None, &body).await
}

/// Requests a token and follows the link in the email; returns the session ID.
pub(crate) async fn verify(
    server: &TestServer,
    sink: &MailSink,
    endpoint: &str,
    secret: &str,
    email: &str,
) -> String {
    let before = sink.messages().len();
    let (status, body) = request_token(server, endpoint, secret, email, 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mail = sink.wait_for(before + 1).await.pop().expect("email");
    follow_link(server, &mail).await;
    body["sid"].as_str().expect("sid").to_owned()
}

/// Follows the link in the email as a person with a browser does: opens the page, then
/// presses its button (the form posts the page's hidden fields back).
pub(crate) async fn follow_link(server: &TestServer, mail: &ReceivedEmail) {
    let link = mail.link_containing("/_vestibule/email/validate");
    let response = confirm_page(server, &link).await;
    assert_eq!(response.status(), StatusCode::OK, "confirmed {link}");
}

/// Opens a validation link's page and submits its form; the answer to the form.
pub(crate) async fn confirm_page(server: &TestServer, link: &str) -> reqwest::Response {
    let page_url = format!("{}{}", server.base, local(link));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(&page_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "validation page for {link}");
    let html = page.text().await.unwrap();
    client
        .post(&page_url)
        .form(&hidden_fields(&html))
        .send()
        .await
        .unwrap()
}

/// The hidden fields of the page's form, as a browser would post them.
pub(crate) fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let input =
        regex::Regex::new(r#"<input type="hidden" name="([a-z_]+)" value="([^"]*)">"#).unwrap();
    let fields: Vec<_> = input
        .captures_iter(html)
        .map(|field| (field[1].to_owned(), field[2].to_owned()))
        .collect();
    assert_eq!(fields.len(), 4, "the form's hidden fields: {html}");
    fields
}

pub(crate) fn email_auth(sid: &str, secret: &str) -> Value {
    json!({
        "type": "m.login.email.identity",
        "threepid_creds": {"sid": sid, "client_secret": secret},
    })
}

/// Registers `username` through an `m.login.email.identity` flow with a verified `email`.
pub(crate) async fn register_with_email(
    server: &TestServer,
    sink: &MailSink,
    username: &str,
    email: &str,
) -> Value {
    let secret = format!("secret-{username}");
    let sid = verify(server, sink, REGISTER_TOKEN, &secret, email).await;
    let body = json!({"username": username, "password": "password123"});
    let (status, challenge) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    assert_eq!(
        challenge["flows"],
        json!([{"stages": ["m.login.email.identity"]}])
    );
    let mut body = body;
    body["auth"] = email_auth(&sid, &secret);
    body["auth"]["session"] = challenge["session"].clone();
    let (status, registered) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    registered
}

pub(crate) fn email_flow(config: &mut Config) {
    config.registration.flows = vec![vec!["m.login.email.identity".into()]];
}

#[tokio::test]
async fn registration_with_an_email_then_login_by_email() {
    let sink = MailSink::start();
    let server = email_server(&sink, email_flow).await;
    let (status, body) =
        request_token(&server, REGISTER_TOKEN, "s3cret", "Alice@Example.org", 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["submit_url"]
            .as_str()
            .unwrap()
            .ends_with("/_vestibule/email/submit_token")
    );
    let mail = sink.wait_for(1).await.remove(0);
    // The email goes to the canonical, stored spelling of the address.
    assert_eq!(mail.to, "alice@example.org");
    assert!(mail.subject.contains("register"), "{}", mail.subject);
    assert!(
        mail.html
            .as_deref()
            .is_some_and(|html| html.contains("<a href="))
    );

    // The session is not usable before the link is followed.
    let body = json!({"username": "alice", "password": "password123"});
    let (_, challenge) = server.post(REGISTER, None, &body).await;
    let mut early = body.clone();
    early["auth"] = email_auth(body_sid(&server, &sink).await.as_str(), "s3cret");
    early["auth"]["session"] = challenge["session"].clone();
    let (status, refused) = server.post(REGISTER, None, &early).await;
    assert_eq!(
        (status, refused["errcode"].clone()),
        (StatusCode::UNAUTHORIZED, json!("M_UNAUTHORIZED"))
    );

    follow_link(&server, &mail).await;
    let (status, registered) = server.post(REGISTER, None, &early).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(
        server.events.take().first(),
        Some(&AccountEvent::Created {
            user_id: "@alice:localhost".try_into().expect("user ID"),
            displayname: Some("alice".into()),
            emails: vec!["alice@example.org".into()],
            is_guest: false,
        })
    );

    let token = registered["access_token"].as_str();
    let (_, threepids) = server.get("/_matrix/client/v3/account/3pid", token).await;
    let threepid = &threepids["threepids"][0];
    assert_eq!(
        (threepid["medium"].as_str(), threepid["address"].as_str()),
        (Some("email"), Some("alice@example.org"))
    );
    assert!(threepid["validated_at"].as_i64().is_some() && threepid["added_at"].as_i64().is_some());

    for identifier in [
        json!({"type": "m.id.thirdparty", "medium": "email", "address": "ALICE@example.ORG"}),
        json!({"type": "m.id.thirdparty", "medium": "email", "address": "alice@example.org"}),
    ] {
        let login = json!({"type": "m.login.password", "identifier": identifier, "password": "password123"});
        let (status, body) = server.post("/_matrix/client/v3/login", None, &login).await;
        assert_eq!(
            (status, body["user_id"].clone()),
            (StatusCode::OK, json!("@alice:localhost"))
        );
    }
    let deprecated = json!({"type": "m.login.password", "medium": "email", "address": "alice@example.org", "password": "password123"});
    assert_eq!(
        server
            .post("/_matrix/client/v3/login", None, &deprecated)
            .await
            .0,
        StatusCode::OK
    );
    let wrong = json!({"type": "m.login.password", "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": "nobody@example.org"}, "password": "password123"});
    assert_error(
        &server.post("/_matrix/client/v3/login", None, &wrong).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );

    // The address is taken now; its session was spent by the registration.
    let (status, body) =
        request_token(&server, REGISTER_TOKEN, "other", "alice@EXAMPLE.org", 1).await;
    assert_eq!(
        (status, body["errcode"].clone()),
        (StatusCode::BAD_REQUEST, json!("M_THREEPID_IN_USE"))
    );
    let mut reuse = json!({"username": "alice2", "password": "password123"});
    let (_, challenge) = server.post(REGISTER, None, &reuse).await;
    reuse["auth"] = email_auth(
        early["auth"]["threepid_creds"]["sid"].as_str().unwrap(),
        "s3cret",
    );
    reuse["auth"]["session"] = challenge["session"].clone();
    let (status, _) = server.post(REGISTER, None, &reuse).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The session ID a repeated request (same secret, address and attempt) answers with.
async fn body_sid(server: &TestServer, sink: &MailSink) -> String {
    let before = sink.messages().len();
    let (_, body) = request_token(server, REGISTER_TOKEN, "s3cret", "Alice@Example.org", 1).await;
    assert_eq!(
        sink.messages().len(),
        before,
        "a repeated send_attempt sends nothing"
    );
    body["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn send_attempt_makes_requests_idempotent() {
    let sink = MailSink::start();
    let server = email_server(&sink, |_| {}).await;
    let (_, first) = request_token(&server, REGISTER_TOKEN, "abc", "bob@example.org", 1).await;
    let (_, again) = request_token(&server, REGISTER_TOKEN, "abc", "bob@example.org", 1).await;
    assert_eq!(first["sid"], again["sid"]);
    assert_eq!(sink.wait_for(1).await.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "the same attempt sent no second email"
    );
    let (_, next) = request_token(&server, REGISTER_TOKEN, "abc", "bob@example.org", 2).await;
    assert_eq!(first["sid"], next["sid"]);
    let mails = sink.wait_for(2).await;
    // The newest email's code works on the submit_url.
    let code = mails[1].word_after("code in your client:");
    let submit = json!({"sid": first["sid"], "client_secret": "abc", "token": code});
    let (status, body) = server
        .post("/_vestibule/email/submit_token", None, &submit)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let sink = MailSink::start();
    let server = email_server(&sink, |config| {
        config.email.allowed_domains = vec!["example.org".into()];
    })
    .await;
    let cases = [
        (
            json!({"client_secret": "no spaces allowed", "email": "a@example.org", "send_attempt": 1}),
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
        ),
        (
            json!({"client_secret": "ok", "email": "not-an-address", "send_attempt": 1}),
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
        ),
        (
            json!({"client_secret": "ok", "email": "a@example.org", "send_attempt": 1, "next_link": "javascript:alert(1)"}),
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
        ),
        (
            json!({"client_secret": "ok", "email": "a@elsewhere.net", "send_attempt": 1}),
            StatusCode::FORBIDDEN,
            "M_THREEPID_DENIED",
        ),
        (
            json!({"client_secret": "ok", "email": "a@example.org"}),
            StatusCode::BAD_REQUEST,
            "M_MISSING_PARAM",
        ),
    ];
    for (body, status, errcode) in cases {
        assert_error(
            &server.post(REGISTER_TOKEN, None, &body).await,
            status,
            errcode,
        );
    }
    assert_error(
        &request_token(&server, PASSWORD_TOKEN, "ok", "nobody@example.org", 1).await,
        StatusCode::BAD_REQUEST,
        "M_THREEPID_NOT_FOUND",
    );
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn codes_are_checked_and_expire() {
    let sink = MailSink::start();
    let server = email_server(&sink, |_| {}).await;
    let (_, body) = request_token(&server, ADD_TOKEN, "sec", "carol@example.org", 1).await;
    let sid = body["sid"].as_str().unwrap();
    let code = sink.wait_for(1).await[0].word_after("code in your client:");
    let submit =
        |secret: &str, token: &str| json!({"sid": sid, "client_secret": secret, "token": token});
    let url = "/_vestibule/email/submit_token";
    assert_error(
        &server.post(url, None, &submit("other", &code)).await,
        StatusCode::BAD_REQUEST,
        "M_NO_VALID_SESSION",
    );
    for _ in 0..5 {
        assert_error(
            &server.post(url, None, &submit("sec", "WRONG")).await,
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
        );
    }
    assert_error(
        &server.post(url, None, &submit("sec", &code)).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );

    let (_, body) = request_token(&server, ADD_TOKEN, "sec2", "carol@example.org", 1).await;
    let code = sink.wait_for(2).await[1].word_after("code in your client:");
    server.clock.advance(24 * 3600 * 1000 + 1);
    let expired = json!({"sid": body["sid"], "client_secret": "sec2", "token": code});
    assert_error(
        &server.post(url, None, &expired).await,
        StatusCode::BAD_REQUEST,
        "M_SESSION_EXPIRED",
    );
    let mail = &sink.messages()[1];
    let (status, page) = server
        .get(&local(&mail.link_containing("validate")), None)
        .await;
    assert_eq!((status, page), (StatusCode::BAD_REQUEST, Value::Null));
}

#[tokio::test]
async fn the_validation_link_redirects_to_next_link() {
    let sink = MailSink::start();
    let server = email_server(&sink, |config| {
        config.email.next_link_allowed_hosts = vec!["client.example.org".into()];
    })
    .await;
    let body = json!({"client_secret": "n", "email": "dan@example.org", "send_attempt": 1, "next_link": "https://client.example.org/done"});
    let (status, _) = server.post(ADD_TOKEN, None, &body).await;
    assert_eq!(status, StatusCode::OK);
    let link = sink.wait_for(1).await[0].link_containing("validate");
    let response = confirm_page(&server, &link).await;
    assert!(response.status().is_redirection());
    assert_eq!(
        response.headers()["location"],
        "https://client.example.org/done"
    );
}

#[tokio::test]
async fn password_reset_by_email_logs_out_every_device() {
    let sink = MailSink::start();
    let server = email_server(&sink, email_flow).await;
    let registered = register_with_email(&server, &sink, "erin", "erin@example.org").await;
    let other = server.login("erin", "password123").await;

    let sid = verify(&server, &sink, PASSWORD_TOKEN, "reset", "ERIN@example.org").await;
    assert!(sink.messages().last().unwrap().subject.contains("Reset"));
    let body = json!({"new_password": "new-password-456"});
    let (status, challenge) = server
        .post("/_matrix/client/v3/account/password", None, &body)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    assert_eq!(
        challenge["flows"],
        json!([{"stages": ["m.login.email.identity"]}])
    );
    let mut body = body;
    body["auth"] = email_auth(&sid, "reset");
    body["auth"]["session"] = challenge["session"].clone();
    let (status, done) = server
        .post("/_matrix/client/v3/account/password", None, &body)
        .await;
    assert_eq!((status, done), (StatusCode::OK, json!({})));

    for session in [&registered, &other] {
        let response = server
            .get(
                "/_matrix/client/v3/account/whoami",
                session["access_token"].as_str(),
            )
            .await;
        assert_error(&response, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    }
    server.login("erin", "new-password-456").await;
    let old = json!({"type": "m.login.password", "user": "erin", "password": "password123"});
    assert_error(
        &server.post("/_matrix/client/v3/login", None, &old).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    // The session is spent.
    let (_, challenge) = server
        .post(
            "/_matrix/client/v3/account/password",
            None,
            &json!({"new_password": "third-password-789"}),
        )
        .await;
    let mut again = json!({"new_password": "third-password-789"});
    again["auth"] = email_auth(&sid, "reset");
    again["auth"]["session"] = challenge["session"].clone();
    assert_eq!(
        server
            .post("/_matrix/client/v3/account/password", None, &again)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn hidden_address_existence_answers_alike_and_sends_nothing() {
    let sink = MailSink::start();
    let server = email_server(&sink, |config| config.email.hide_address_existence = true).await;
    let (status, body) = request_token(&server, PASSWORD_TOKEN, "h", "ghost@example.org", 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["sid"].is_string());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn adding_and_removing_an_address() {
    let sink = MailSink::start();
    let server = email_server(&sink, |_| {}).await;
    let frank = server.register("frank", "password123").await;
    let token = frank["access_token"].as_str();
    let (_, capabilities) = server.get("/_matrix/client/v3/capabilities", token).await;
    assert_eq!(
        capabilities["capabilities"]["m.3pid_changes"]["enabled"],
        true
    );

    let sid = verify(&server, &sink, ADD_TOKEN, "add", "frank@example.org").await;
    let add = json!({"client_secret": "add", "sid": sid});
    let (status, challenge) = server
        .post("/_matrix/client/v3/account/3pid/add", token, &add)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let mut add = add;
    add["auth"] = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "frank"}, "password": "password123", "session": challenge["session"]});
    let (status, body) = server
        .post("/_matrix/client/v3/account/3pid/add", token, &add)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (_, listed) = server.get("/_matrix/client/r0/account/3pid", token).await;
    assert_eq!(listed["threepids"][0]["address"], "frank@example.org");
    let frank_id: ruma::OwnedUserId = "@frank:localhost".try_into().expect("user ID");
    assert_eq!(
        server.events.take().last(),
        Some(&AccountEvent::EmailAdded {
            user_id: frank_id.clone(),
            address: "frank@example.org".into(),
        })
    );

    // Somebody else cannot register or add it.
    let (status, body) = request_token(&server, ADD_TOKEN, "x", "frank@example.org", 1).await;
    assert_eq!(
        (status, body["errcode"].clone()),
        (StatusCode::BAD_REQUEST, json!("M_THREEPID_IN_USE"))
    );

    let delete = json!({"medium": "email", "address": "Frank@Example.org"});
    let (status, body) = server
        .post("/_matrix/client/v3/account/3pid/delete", token, &delete)
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"id_server_unbind_result": "success"})
        )
    );
    let (_, listed) = server.get("/_matrix/client/v3/account/3pid", token).await;
    assert_eq!(listed["threepids"], json!([]));
    assert_eq!(
        server.events.take(),
        [AccountEvent::EmailRemoved {
            user_id: frank_id,
            address: "frank@example.org".into(),
        }]
    );
    // Removing an address the account does not have reports nothing.
    let (status, _) = server
        .post("/_matrix/client/v3/account/3pid/delete", token, &delete)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.events.take(), []);
}

#[tokio::test]
async fn adding_needs_a_validated_session_of_the_right_kind() {
    let sink = MailSink::start();
    let server = email_server(&sink, |_| {}).await;
    let gina = server.register("gina", "password123").await;
    let token = gina["access_token"].as_str();
    let (_, body) = request_token(&server, ADD_TOKEN, "g", "gina@example.org", 1).await;
    sink.wait_for(1).await;
    let add = |sid: &Value, secret: &str| json!({"client_secret": secret, "sid": sid});
    let with_auth = |mut body: Value, session: &Value| {
        body["auth"] = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "gina"}, "password": "password123", "session": session});
        body
    };
    let (_, challenge) = server
        .post(
            "/_matrix/client/v3/account/3pid/add",
            token,
            &add(&body["sid"], "g"),
        )
        .await;
    let response = server
        .post(
            "/_matrix/client/v3/account/3pid/add",
            token,
            &with_auth(add(&body["sid"], "g"), &challenge["session"]),
        )
        .await;
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        "M_SESSION_NOT_VALIDATED",
    );
    let response = server
        .post(
            "/_matrix/client/v3/account/3pid/add",
            token,
            &add(&body["sid"], "bad secret"),
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_INVALID_PARAM");
}

#[tokio::test]
async fn an_smtp_server_that_is_down_delays_the_email_instead_of_failing() {
    // A port nothing listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::with(|config| use_smtp(config, port)).await;
    let (status, first) =
        request_token(&server, REGISTER_TOKEN, "down", "hal@example.org", 1).await;
    assert_eq!(status, StatusCode::OK, "{first}");

    // The email waits in the outbox and leaves once the server is up and its retry is due.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let sink = MailSink::start_on(port);
    server.clock.advance(10 * 60 * 1000);
    let mail = sink.wait_for(1).await.remove(0);
    assert!(mail.to.contains("hal@example.org"), "{}", mail.to);
    follow_link(&server, &mail).await;
    // The repeated attempt is the same session, and sends nothing more.
    let (_, again) = request_token(&server, REGISTER_TOKEN, "down", "hal@example.org", 1).await;
    assert_eq!(again["sid"], first["sid"]);
}

#[tokio::test]
async fn an_email_refused_for_good_fails_its_session() {
    let sink = MailSink::start();
    let server = email_server(&sink, |_| {}).await;
    let (status, body) =
        request_token(&server, REGISTER_TOKEN, "gone", "refused@example.org", 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The refusal is recorded by the outbox soon after; the session then says so.
    let submit = json!({"sid": body["sid"], "client_secret": "gone", "token": "AAAAAAAA"});
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, answer) = server
            .post("/_vestibule/email/submit_token", None, &submit)
            .await;
        if answer["error"]
            .as_str()
            .is_some_and(|error| error.contains("could not be delivered"))
        {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the refused email never failed its session: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn without_a_mailer_email_features_are_refused_clearly() {
    let server = TestServer::spawn().await;
    let response = request_token(&server, REGISTER_TOKEN, "n", "ivy@example.org", 1).await;
    assert_error(&response, StatusCode::FORBIDDEN, "M_THREEPID_DENIED");
    let ivy = server.register("ivy", "password123").await;
    let (_, capabilities) = server
        .get(
            "/_matrix/client/v3/capabilities",
            ivy["access_token"].as_str(),
        )
        .await;
    assert_eq!(
        capabilities["capabilities"]["m.3pid_changes"]["enabled"],
        false
    );
    let mut config = Config::default();
    email_flow(&mut config);
    let error = config.validate().expect_err("email flow without SMTP");
    assert!(error.to_string().contains("email.smtp_host"), "{error}");
}

#[tokio::test]
async fn operators_can_replace_the_templates() {
    let sink = MailSink::start();
    let templates = tempfile::TempDir::new().unwrap();
    std::fs::write(
        templates.path().join("verification.txt"),
        "Welcome to {{ server_name }}! Code: {{ code }} Link: {{ link }}",
    )
    .unwrap();
    let dir = templates.path().display().to_string();
    let server = email_server(&sink, move |config| config.email.template_dir = dir).await;
    let (status, _) = request_token(&server, REGISTER_TOKEN, "t", "jo@example.org", 1).await;
    assert_eq!(status, StatusCode::OK);
    let mail = sink.wait_for(1).await.remove(0);
    assert!(
        mail.text.starts_with("Welcome to localhost! Code: "),
        "{}",
        mail.text
    );
    follow_link(&server, &mail).await;
}

#[tokio::test]
async fn phone_numbers_are_refused_as_unsupported() {
    let server = TestServer::spawn().await;
    let body = json!({"client_secret": "p", "country": "GB", "phone_number": "07700900001", "send_attempt": 1});
    for endpoint in [
        "/_matrix/client/v3/register/msisdn/requestToken",
        "/_matrix/client/v3/account/3pid/msisdn/requestToken",
        "/_matrix/client/r0/account/password/msisdn/requestToken",
    ] {
        let response = server.post(endpoint, None, &body).await;
        assert_error(
            &response,
            StatusCode::BAD_REQUEST,
            "M_THREEPID_MEDIUM_NOT_SUPPORTED",
        );
    }
    let login = json!({"type": "m.login.password", "identifier": {"type": "m.id.phone", "country": "GB", "phone": "07700900001"}, "password": "x"});
    let response = server.post("/_matrix/client/v3/login", None, &login).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_UNKNOWN");
    assert!(
        response.1["error"]
            .as_str()
            .unwrap()
            .contains("identity server")
    );
}

#[tokio::test]
async fn token_terms_and_email_stages_compose_in_one_registration() {
    use vestibule::config::{TermsPolicy, TermsTranslation};
    let sink = MailSink::start();
    let server = email_server(&sink, |config| {
        config.registration.flows = vec![vec![
            "m.login.registration_token".into(),
            "m.login.terms".into(),
            "m.login.email.identity".into(),
        ]];
        let english = TermsTranslation {
            name: "Terms".into(),
            url: "https://example.org/terms".into(),
        };
        config.registration.terms.insert(
            "terms_of_service".into(),
            TermsPolicy {
                version: "2.0".into(),
                translations: [("en".to_owned(), english)].into(),
            },
        );
    })
    .await;
    let dir = tempfile::TempDir::new().unwrap();
    let created = crate::cli::vestibule(
        &dir,
        server.database_url(),
        &[
            "registration-token",
            "create",
            "--token",
            "combo",
            "--uses",
            "1",
        ],
        None,
    );
    assert!(created.status.success());
    let sid = verify(
        &server,
        &sink,
        REGISTER_TOKEN,
        "combo-secret",
        "kim@example.org",
    )
    .await;

    let body = json!({"username": "kim", "password": "password123"});
    let (_, challenge) = server.post(REGISTER, None, &body).await;
    let session = challenge["session"].clone();
    let stages = [
        json!({"type": "m.login.registration_token", "token": "combo", "session": session}),
        json!({"type": "m.login.terms", "session": session}),
    ];
    for auth in stages {
        let mut step = body.clone();
        step["auth"] = auth;
        let (status, progress) = server.post(REGISTER, None, &step).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{progress}");
    }
    let mut last = body.clone();
    last["auth"] = email_auth(&sid, "combo-secret");
    last["auth"]["session"] = session;
    let (status, registered) = server.post(REGISTER, None, &last).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let (_, listed) = server
        .get(
            "/_matrix/client/v3/account/3pid",
            registered["access_token"].as_str(),
        )
        .await;
    assert_eq!(listed["threepids"][0]["address"], "kim@example.org");
    let validity = "/_matrix/client/v1/register/m.login.registration_token/validity?token=combo";
    assert_eq!(server.get(validity, None).await.1, json!({"valid": false}));
}

#[tokio::test]
async fn hidden_existence_tells_the_owner_of_a_taken_address_instead() {
    let sink = MailSink::start();
    let server = email_server(&sink, |config| {
        email_flow(config);
        config.email.hide_address_existence = true;
    })
    .await;
    register_with_email(&server, &sink, "lena", "lena@example.org").await;
    let before = sink.messages().len();
    let (status, body) =
        request_token(&server, REGISTER_TOKEN, "intruder", "LENA@example.org", 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["sid"].is_string() && body["submit_url"].is_string());
    let notice = sink.wait_for(before + 1).await.pop().unwrap();
    assert!(
        notice.subject.contains("already has an account"),
        "{}",
        notice.subject
    );
    assert!(notice.text.contains("reset it"), "{}", notice.text);
    assert!(
        !notice.text.contains("/_vestibule/email/validate"),
        "no link in a notice"
    );
    // Repeating the attempt sends nothing more.
    let (_, again) =
        request_token(&server, REGISTER_TOKEN, "intruder", "LENA@example.org", 1).await;
    assert_eq!(again["sid"], body["sid"]);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(sink.messages().len(), before + 1);
}

/// Attaching the address and spending its verification session are one transaction: when
/// the second step fails, the address is not attached and the session can still be used.
#[tokio::test]
async fn adding_an_address_that_fails_midway_adds_nothing() {
    let sink = MailSink::start();
    let server = email_server(&sink, |_| {}).await;
    let gina = server.register("gina", "password123").await;
    let token = gina["access_token"].as_str();
    let sid = verify(&server, &sink, ADD_TOKEN, "add", "gina@example.org").await;
    let add_with_uia = || async {
        let add = json!({"client_secret": "add", "sid": sid});
        let (_, challenge) = server
            .post("/_matrix/client/v3/account/3pid/add", token, &add)
            .await;
        let mut add = add;
        add["auth"] = json!({"type": "m.login.password", "user": "gina", "password": "password123", "session": challenge["session"]});
        server
            .post("/_matrix/client/v3/account/3pid/add", token, &add)
            .await
    };

    let restore = refuse_deletes_on(&server, "threepid_validations").await;
    server.events.take();
    assert_error(
        &add_with_uia().await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "M_UNKNOWN",
    );
    let (_, listed) = server.get("/_matrix/client/v3/account/3pid", token).await;
    assert_eq!(listed["threepids"], json!([]));
    assert_eq!(server.events.take(), []);

    run_sql(&server, restore).await;
    let (status, body) = add_with_uia().await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (_, listed) = server.get("/_matrix/client/v3/account/3pid", token).await;
    assert_eq!(listed["threepids"][0]["address"], "gina@example.org");
}

/// The account, what its stages proved, and the spending of the email's verification session
/// are one transaction: when the last step fails, there is no account and the name is free.
#[tokio::test]
async fn a_registration_that_fails_midway_creates_nothing() {
    let sink = MailSink::start();
    let server = email_server(&sink, email_flow).await;
    let sid = verify(&server, &sink, REGISTER_TOKEN, "reg", "hana@example.org").await;
    let body = json!({"username": "hana", "password": "password123"});
    let (_, challenge) = server.post(REGISTER, None, &body).await;
    let mut body = body;
    body["auth"] = email_auth(&sid, "reg");
    body["auth"]["session"] = challenge["session"].clone();

    let restore = refuse_deletes_on(&server, "threepid_validations").await;
    assert_error(
        &server.post(REGISTER, None, &body).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "M_UNKNOWN",
    );
    assert_eq!(server.events.take(), []);
    let (status, available) = server
        .get("/_matrix/client/v3/register/available?username=hana", None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the name is still free: {available}"
    );
    run_sql(&server, restore).await;
    register_with_email(&server, &sink, "hana", "hana@example.org").await;
}
