//! The attacks of the security review (`shared/reviews/security-review.md`), each performed
//! against a running server: every test here failed before its finding was fixed.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    browser::Browser,
    email::{
        ADD_TOKEN, PASSWORD_TOKEN, REGISTER_TOKEN, email_auth, email_flow, email_server, local,
        register_with_email, request_token,
    },
    peers::MailSink,
    support::{TestServer, assert_error},
};

const PASSWORD: &str = "/_matrix/client/v3/account/password";

/// Tries to reset the password with an email session; the final answer.
async fn reset_password(server: &TestServer, sid: &str, secret: &str) -> (StatusCode, Value) {
    let body = json!({"new_password": "pwned by attacker 1", "logout_devices": true});
    let (status, challenge) = server.post(PASSWORD, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let mut body = body;
    body["auth"] = email_auth(sid, secret);
    body["auth"]["session"] = challenge["session"].clone();
    server.post(PASSWORD, None, &body).await
}

/// F1: an attacker starts a reset for the victim's address; a link scanner fetches the link
/// in the victim's email (GET only, twice). The page says what would be confirmed, and nothing
/// is: the attacker's reset fails, the victim's password still works.
#[tokio::test]
async fn f1_a_scanner_fetching_the_reset_link_changes_nothing() {
    let sink = MailSink::start();
    let server = email_server(&sink, email_flow).await;
    register_with_email(&server, &sink, "victim", "victim@example.org").await;
    let (status, body) = request_token(
        &server,
        PASSWORD_TOKEN,
        "attackerSecret1",
        "victim@example.org",
        1,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sid = body["sid"].as_str().unwrap();
    let link = sink.wait_for(2).await[1].link_containing("/_vestibule/email/validate");
    for _ in 0..2 {
        let page = server
            .http
            .get(format!("{}{}", server.base, local(&link)))
            .send()
            .await;
        let page = page.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()["x-frame-options"], "DENY");
        assert_eq!(page.headers()["referrer-policy"], "same-origin");
        let html = page.text().await.unwrap();
        assert!(
            html.contains("reset the password of @victim:localhost"),
            "{html}"
        );
    }
    let (status, answer) = reset_password(&server, sid, "attackerSecret1").await;
    assert_ne!(status, StatusCode::OK, "{answer}");
    server.login("victim", "password123").await;
}

/// F1: a person opens the link in a real browser and presses the button: the address is
/// validated, and the reset then works.
#[tokio::test]
async fn f1_the_link_validates_once_the_page_is_confirmed_in_a_browser() {
    let sink = MailSink::start();
    let server = TestServer::named_by_address(|config| {
        crate::email::use_smtp(config, sink.port());
        email_flow(config);
    })
    .await;
    register_with_email(&server, &sink, "owner", "owner@example.org").await;
    let (_, body) = request_token(&server, PASSWORD_TOKEN, "mine", "owner@example.org", 1).await;
    let link = sink.wait_for(2).await[1].link_containing("/_vestibule/email/validate");
    let browser = Browser::start().await;
    browser.open(&link).await;
    let text = browser.wait_for_text("reset the password of @owner:").await;
    assert!(text.contains("reset the password of @owner:"), "{text}");
    browser.click("#confirm").await;
    let text = browser
        .wait_for_text("Your email address is verified")
        .await;
    assert!(text.contains("Your email address is verified"), "{text}");
    let (status, answer) = reset_password(&server, body["sid"].as_str().unwrap(), "mine").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// F1: a form posted from another site is refused; a form whose hidden key was not made for
/// this email is refused.
#[tokio::test]
async fn f1_forged_confirmations_are_refused() {
    let sink = MailSink::start();
    let server = email_server(&sink, |_| {}).await;
    let (_, body) = request_token(&server, ADD_TOKEN, "s1", "forge@example.org", 1).await;
    let link = sink.wait_for(1).await[0].link_containing("/_vestibule/email/validate");
    let url = url::Url::parse(&link).unwrap();
    let mut fields: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    fields.push(("form_key".into(), "guessed".into()));
    let post = |origin: Option<&'static str>, fields: Vec<(String, String)>| {
        let mut request = server
            .http
            .post(format!("{}/_vestibule/email/validate", server.base))
            .form(&fields);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let forged = post(None, fields.clone()).await.unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let html = server
        .http
        .get(format!("{}{}", server.base, local(&link)))
        .send()
        .await;
    let good = crate::email::hidden_fields(&html.unwrap().text().await.unwrap());
    let cross_site = post(Some("https://evil.example"), good.clone())
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    // Neither validated the session.
    let submit = json!({"sid": body["sid"], "client_secret": "s1", "token": "WRONGONE"});
    let (_, answer) = server
        .post("/_vestibule/email/submit_token", None, &submit)
        .await;
    assert_eq!(answer["errcode"], "M_INVALID_PARAM", "{answer}");
}

/// F1: a password-reset session lives an hour by default, not a day.
#[tokio::test]
async fn f1_reset_sessions_expire_after_an_hour() {
    let sink = MailSink::start();
    let server = email_server(&sink, email_flow).await;
    register_with_email(&server, &sink, "hour", "hour@example.org").await;
    let (_, body) = request_token(&server, PASSWORD_TOKEN, "h1", "hour@example.org", 1).await;
    let mail = sink.wait_for(2).await.remove(1);
    server.clock.advance(3601 * 1000);
    let submit = json!({"sid": body["sid"], "client_secret": "h1",
        "token": mail.word_after("code in your client:")});
    let response = server
        .post("/_vestibule/email/submit_token", None, &submit)
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_SESSION_EXPIRED");
}

/// What one `requestToken` answer showed.
struct Observed {
    status: StatusCode,
    keys: Vec<String>,
    same_sid_on_repeat: bool,
    wrong_code: Value,
    elapsed: Duration,
}

async fn observe(server: &TestServer, secret: &str, email: &str) -> Observed {
    let started = Instant::now();
    let (status, body) = request_token(server, PASSWORD_TOKEN, secret, email, 1).await;
    let elapsed = started.elapsed();
    let (_, again) = request_token(server, PASSWORD_TOKEN, secret, email, 1).await;
    let submit = json!({"sid": body["sid"], "client_secret": secret, "token": "WRONG123"});
    let (_, wrong_code) = server
        .post("/_vestibule/email/submit_token", None, &submit)
        .await;
    let mut keys: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    Observed {
        status,
        keys,
        same_sid_on_repeat: body["sid"] == again["sid"],
        wrong_code: wrong_code["errcode"].clone(),
        elapsed,
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// F2: with `hide_address_existence`, a reset for a known and for an unknown address look the
/// same on every observable: status, body, `sid` reuse, the wrong-code errcode, and time.
#[tokio::test]
async fn f2_hidden_existence_is_not_observable() {
    let sink = MailSink::start();
    let server = email_server(&sink, |config| {
        email_flow(config);
        config.email.hide_address_existence = true;
    })
    .await;
    register_with_email(&server, &sink, "known", "known@example.org").await;
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for round in 0..20 {
        // Interleaved, so that machine load falls on both alike.
        let known = observe(&server, &format!("k{round}"), "known@example.org").await;
        let unknown = observe(&server, &format!("u{round}"), "ghost@example.org").await;
        assert_eq!(known.status, unknown.status);
        assert_eq!(known.keys, unknown.keys);
        assert!(known.same_sid_on_repeat && unknown.same_sid_on_repeat);
        assert_eq!(known.wrong_code, unknown.wrong_code);
        assert_eq!(known.wrong_code, "M_INVALID_PARAM");
        known_times.push(known.elapsed);
        unknown_times.push(unknown.elapsed);
    }
    // Counters of sent emails (which do differ) are on the operator's metrics listener only.
    let (status, _) = server.get("/metrics", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (known, unknown) = (median(known_times), median(unknown_times));
    let (fast, slow) = (known.min(unknown), known.max(unknown));
    assert!(
        slow.as_secs_f64() <= fast.as_secs_f64() * 1.2 + 0.002,
        "median known {known:?} vs unknown {unknown:?}"
    );
}

/// F4: the Kelvin sign is not a `K`, and a quoted local part is the same mailbox as the
/// unquoted one: neither reaches an account through another spelling.
#[tokio::test]
async fn f4_other_spellings_of_an_address_reach_no_account() {
    let sink = MailSink::start();
    let server = email_server(&sink, email_flow).await;
    register_with_email(&server, &sink, "kvictim", "kevin@example.org").await;
    let response = request_token(
        &server,
        PASSWORD_TOKEN,
        "att1",
        "\u{212A}evin@example.org",
        1,
    )
    .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_INVALID_PARAM");
    let response = request_token(&server, REGISTER_TOKEN, "att2", "\"kevin\"@example.org", 1).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_THREEPID_IN_USE");
    let login = json!({"type": "m.login.password", "password": "password123",
        "identifier": {"type": "m.id.thirdparty", "medium": "email",
            "address": "\u{212A}evin@example.org"}});
    let response = server.post("/_matrix/client/v3/login", None, &login).await;
    assert_error(&response, StatusCode::FORBIDDEN, "M_FORBIDDEN");
    // A reset mail goes to the stored address, whatever the spelling asked for.
    let (status, _) = request_token(&server, PASSWORD_TOKEN, "own", "KEVIN@Example.ORG", 1).await;
    assert_eq!(status, StatusCode::OK);
    let mail = sink.wait_for(2).await.remove(1);
    assert!(mail.to.contains("kevin@example.org"), "{}", mail.to);
}

/// F10: `next_link` may only lead to this server's host (or the configured ones), and is kept
/// in its parsed form.
#[tokio::test]
async fn f10_next_link_is_no_open_redirect() {
    let sink = MailSink::start();
    let server = email_server(&sink, |_| {}).await;
    for (n, link) in [
        "https://evil.example/phish?x=1",
        "https:\\\\evil.example",
        "http://10.0.0.1/internal",
        &format!("http://127.0.0.1/{}", "a".repeat(3000)),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"client_secret": format!("n{n}"), "email": "nl@example.org",
            "send_attempt": 1, "next_link": link});
        let response = server.post(ADD_TOKEN, None, &body).await;
        assert_error(&response, StatusCode::BAD_REQUEST, "M_INVALID_PARAM");
    }
    let body = json!({"client_secret": "ok", "email": "nl@example.org", "send_attempt": 1,
        "next_link": "http://127.0.0.1:8008/done\tthere"});
    let (status, _) = server.post(ADD_TOKEN, None, &body).await;
    assert_eq!(status, StatusCode::OK);
    let link = sink.wait_for(1).await[0].link_containing("validate");
    let response = crate::email::confirm_page(&server, &link).await;
    assert_eq!(
        response.headers()["location"],
        "http://127.0.0.1:8008/donethere"
    );
}

/// F16: IP-literal and single-label domains are refused, and one address gets at most three
/// emails an hour however many clients ask.
#[tokio::test]
async fn f16_odd_recipients_and_mail_bombing_are_refused() {
    let sink = MailSink::start();
    let server = email_server(&sink, |config| {
        config.rate_limits.enabled = true;
        config.rate_limits.email_per_ip.burst = 100;
    })
    .await;
    for address in ["a10@127.0.0.1", "a11@localhost", "a12@[127.0.0.1]"] {
        let response = request_token(&server, REGISTER_TOKEN, "odd", address, 1).await;
        assert_error(&response, StatusCode::BAD_REQUEST, "M_INVALID_PARAM");
    }
    for attempt in 0..3 {
        let secret = format!("bomb{attempt}");
        let (status, _) =
            request_token(&server, REGISTER_TOKEN, &secret, "inbox@example.org", 1).await;
        assert_eq!(status, StatusCode::OK);
    }
    let response = request_token(&server, REGISTER_TOKEN, "bomb3", "INBOX@example.org", 1).await;
    assert_error(&response, StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED");
    assert_eq!(sink.wait_for(3).await.len(), 3);
}

/// A server behind a trusted proxy on loopback, with the rate limits on.
async fn behind_proxy(adjust: impl FnOnce(&mut vestibule::config::Config)) -> TestServer {
    TestServer::with(|config| {
        config.rate_limits.enabled = true;
        config.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        adjust(config);
    })
    .await
}

/// A password login sent through the proxy for `client`.
async fn login_from(
    server: &TestServer,
    client: &str,
    user: &str,
    password: &str,
) -> (StatusCode, Value) {
    let body = json!({"type": "m.login.password", "password": password,
        "identifier": {"type": "m.id.user", "user": user}});
    let response = server
        .http
        .post(format!("{}/_matrix/client/v3/login", server.base))
        .header("x-forwarded-for", client)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// F5: wrong passwords from one network lock that network out, never the owner elsewhere;
/// the addresses of one IPv6 /64 share one bucket.
#[tokio::test]
async fn f5_strangers_cannot_lock_the_owner_out() {
    let server = behind_proxy(|config| config.rate_limits.login_per_ip.burst = 100).await;
    server.register("owner", "password123").await;
    let mut limited = false;
    for attempt in 0..6 {
        let attacker = format!("2001:db8:1:2::{attempt}");
        let (status, _) = login_from(&server, &attacker, "owner", "wrong").await;
        limited |= status == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "failures from one /64 are limited together");
    let (status, body) = login_from(&server, "2001:db8:1:3::1", "owner", "password123").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the owner's network still signs in: {body}"
    );
}

/// F6: `X-Forwarded-For` hops with ports or brackets are understood, a hop that does not
/// parse ends the walk, and IPv4-mapped addresses are IPv4.
#[tokio::test]
async fn f6_forwarded_addresses_are_parsed_strictly() {
    let server = behind_proxy(|config| config.rate_limits.login_per_ip.burst = 100).await;
    server.register("carol", "password123").await;
    for (header, expected) in [
        ("6.6.6.6, 9.9.9.9:4321", "9.9.9.9"),
        ("6.6.6.7, [2001:db8::1]:443", "2001:db8::1"),
        ("6.6.6.8, unknown", "127.0.0.1"),
        ("::ffff:3.3.3.3", "3.3.3.3"),
    ] {
        let (status, login) = login_from(&server, header, "carol", "password123").await;
        assert_eq!(status, StatusCode::OK, "{login}");
        let token = login["access_token"].as_str().unwrap();
        let device = login["device_id"].as_str().unwrap();
        // Asked through the same proxy hops, as the device's own requests are.
        let seen: Value = server
            .http
            .get(format!(
                "{}/_matrix/client/v3/devices/{device}",
                server.base
            ))
            .bearer_auth(token)
            .header("x-forwarded-for", header)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(seen["last_seen_ip"], expected, "for {header}");
    }
}

/// F8: with every hashing thread busy and the queue full, a password check is answered at
/// once with 429 and a retry time, instead of waiting behind the flood.
#[tokio::test]
async fn f8_a_full_hashing_queue_answers_at_once() {
    let server = TestServer::with(|config| {
        config.password.hash_workers = 1;
        config.password.hash_queue = 1;
        config.password.argon2_memory_kib = 32 * 1024;
        config.password.argon2_iterations = 3;
    })
    .await;
    let url = format!("{}/_matrix/client/v3/login", server.base);
    let answers = crate::support::concurrently(12, |_| {
        let body = json!({"type": "m.login.password", "password": "wrong",
            "identifier": {"type": "m.id.user", "user": "nobody"}});
        let (http, url) = (server.http.clone(), url.clone());
        async move {
            let response = http.post(url).json(&body).send().await.unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    })
    .await;
    let busy: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!busy.is_empty(), "{answers:?}");
    assert_eq!(busy[0].1["errcode"], "M_LIMIT_EXCEEDED");
    assert!(busy[0].1["retry_after_ms"].is_u64());
}

/// F8: the hashing queue is shared fairly between client networks: a flood from one network
/// fills only its own line, and a login from another network still gets its turn.
#[tokio::test]
async fn f8_a_flood_from_one_network_does_not_starve_others() {
    let server = TestServer::with(|config| {
        config.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        config.password.hash_workers = 1;
        config.password.hash_queue_per_network = 2;
        config.password.argon2_memory_kib = 64 * 1024;
        config.password.argon2_iterations = 3;
    })
    .await;
    server.register("owner", "password123").await;
    let url = format!("{}/_matrix/client/v3/login", server.base);
    let login = |network: &'static str, password: &'static str| {
        let body = json!({"type": "m.login.password", "password": password,
            "identifier": {"type": "m.id.user", "user": "owner"}});
        let (http, url) = (server.http.clone(), url.clone());
        async move {
            let response = http
                .post(url)
                .header("x-forwarded-for", network)
                .json(&body)
                .send()
                .await
                .unwrap();
            response.status()
        }
    };
    let flood = crate::support::concurrently(48, move |_| login("10.9.9.9", "wrong"));
    let owner = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        login("192.0.2.10", "password123").await
    };
    let (flood, owner) = tokio::join!(flood, owner);
    assert!(
        flood.contains(&StatusCode::TOO_MANY_REQUESTS),
        "the flood's surplus is refused: {flood:?}"
    );
    assert_eq!(owner, StatusCode::OK, "the owner's network got its turn");
}

/// F9: `/register/available` and the registration-token `/validity` check spend a per-IP
/// budget.
#[tokio::test]
async fn f9_enumeration_endpoints_are_rate_limited() {
    let server = TestServer::with(|config| config.rate_limits.enabled = true).await;
    for path in [
        "/_matrix/client/v3/register/available?username=someone",
        "/_matrix/client/v1/register/m.login.registration_token/validity?token=guess",
    ] {
        let mut limited = false;
        for _ in 0..30 {
            let (status, _) = server.get(path, None).await;
            limited |= status == StatusCode::TOO_MANY_REQUESTS;
        }
        assert!(limited, "{path} was never limited");
    }
}

/// F11: an identity server's redirect is not followed: the secrets in its URL never reach the
/// redirect's target.
#[tokio::test]
async fn f11_identity_server_redirects_are_not_followed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_port = target.local_addr().unwrap().port();
    let redirector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirector_port = redirector.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = redirector.accept().await {
            let mut request = [0_u8; 4096];
            let _ = socket.read(&mut request).await;
            let answer = format!(
                "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{target_port}/redirected\r\n\
                 content-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = reached.clone();
    tokio::spawn(async move {
        if target.accept().await.is_ok() {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let id_server = format!("127.0.0.1:{redirector_port}");
    let server = TestServer::with(|config| {
        config.identity.trusted_servers = vec![format!("http://{id_server}").try_into().unwrap()];
    })
    .await;
    let user = server.register("idsrv", "password123").await;
    let body = json!({"sid": "s1", "client_secret": "abc", "id_server": id_server,
        "id_access_token": "t"});
    let (status, answer) = server
        .post(
            "/_matrix/client/v3/account/3pid/bind",
            user["access_token"].as_str(),
            &body,
        )
        .await;
    assert_ne!(status, StatusCode::OK, "{answer}");
    assert!(
        !answer.to_string().contains("127.0.0.1"),
        "no internal URL reaches the client: {answer}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!reached.load(std::sync::atomic::Ordering::SeqCst));
}

/// F13: a password change that logs out every device also revokes the login tokens issued
/// before it.
#[tokio::test]
async fn f13_login_tokens_die_with_a_password_change() {
    let server = TestServer::spawn().await;
    let user = server.register("ltuser", "password123").await;
    let token = user["access_token"].as_str().unwrap();
    let issued = crate::login_token::get_login_token(&server, token, "ltuser", "password123").await;
    let (_, challenge) = server
        .post(
            PASSWORD,
            Some(token),
            &json!({"new_password": "another-pass-456"}),
        )
        .await;
    // `logout_devices` is true by default.
    let body = json!({"new_password": "another-pass-456",
        "auth": {"type": "m.login.password", "password": "password123",
            "identifier": {"type": "m.id.user", "user": "ltuser"},
            "session": challenge["session"]}});
    let (status, answer) = server.post(PASSWORD, Some(token), &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let login = json!({"type": "m.login.token", "token": issued["login_token"]});
    let response = server.post("/_matrix/client/v3/login", None, &login).await;
    assert_error(&response, StatusCode::FORBIDDEN, "M_FORBIDDEN");
}

/// F14, F15: U+0000 anywhere in a JSON string, a path or a query is 400 `M_INVALID_PARAM`
/// (never a 500), and device IDs are bounded and printable.
#[tokio::test]
async fn f14_nul_bytes_and_odd_device_ids_are_refused() {
    let server = TestServer::spawn().await;
    refuses_nul_and_odd_device_ids(&server).await;
}

/// The F14/F15 attacks against `server` (also run on PostgreSQL).
pub(crate) async fn refuses_nul_and_odd_device_ids(server: &TestServer) {
    server.register("nul", "password123").await;
    let login = |extra: Value| {
        let mut body = json!({"type": "m.login.password", "password": "password123",
            "identifier": {"type": "m.id.user", "user": "nul"}});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for extra in [
        json!({"device_id": "../../x\u{0000}<script>"}),
        json!({"initial_device_display_name": "a\u{0000}b"}),
        json!({"device_id": "D".repeat(10_000)}),
    ] {
        let response = server
            .post("/_matrix/client/v3/login", None, &login(extra))
            .await;
        assert_error(&response, StatusCode::BAD_REQUEST, "M_INVALID_PARAM");
    }
    let submit = json!({"sid": "a\u{0000}", "client_secret": "x", "token": "y"});
    let (status, _) = server
        .post("/_vestibule/email/submit_token", None, &submit)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = server
        .get(
            "/_vestibule/email/validate?sid=a%00&client_secret=b&token=c",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// F18: a body that repeats a key is refused on every endpoint, `/login` included, so that a
/// proxy acting on the first value and the server on the last can't disagree.
#[tokio::test]
async fn f18_repeated_json_keys_are_refused() {
    let server = TestServer::spawn().await;
    server.register("dup", "password123").await;
    let body = r#"{"type":"m.login.token","type":"m.login.password",
        "identifier":{"type":"m.id.user","user":"dup"},"password":"password123"}"#;
    let response = server
        .post_raw("/_matrix/client/v3/login", body.as_bytes().to_vec())
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_BAD_JSON");
    let nested = r#"{"type":"m.login.password","password":"password123",
        "identifier":{"type":"m.id.user","user":"nobody","user":"dup"}}"#;
    let response = server
        .post_raw("/_matrix/client/v3/login", nested.as_bytes().to_vec())
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_BAD_JSON");
}

/// F18: the `Bearer` scheme is case-insensitive, as HTTP says.
#[tokio::test]
async fn f18_the_bearer_scheme_is_case_insensitive() {
    let server = TestServer::spawn().await;
    let user = server.register("casey", "password123").await;
    let token = user["access_token"].as_str().unwrap();
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = server
            .http
            .get(format!("{}/_matrix/client/v3/account/whoami", server.base))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
}

/// F18: deactivation releases the account's addresses: a new account may take them, and no
/// reset email goes to a closed account.
#[tokio::test]
async fn f18_deactivation_releases_addresses() {
    let sink = MailSink::start();
    let server = email_server(&sink, email_flow).await;
    let user = register_with_email(&server, &sink, "leaver", "leaver@example.org").await;
    let token = user["access_token"].as_str();
    let body = json!({"auth": {"type": "m.login.password", "password": "password123",
        "identifier": {"type": "m.id.user", "user": "leaver"}}});
    let (_, challenge) = server
        .post("/_matrix/client/v3/account/deactivate", token, &json!({}))
        .await;
    let mut body = body;
    body["auth"]["session"] = challenge["session"].clone();
    let (status, answer) = server
        .post("/_matrix/client/v3/account/deactivate", token, &body)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let response = request_token(&server, PASSWORD_TOKEN, "r1", "leaver@example.org", 1).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_THREEPID_NOT_FOUND");
    let (status, _) = request_token(&server, REGISTER_TOKEN, "r2", "leaver@example.org", 1).await;
    assert_eq!(status, StatusCode::OK);
}

/// F5: once an account has failed many logins from many networks, further attempts wait
/// before their password is checked, but are never refused; a network one of the account's
/// devices was seen on does not wait.
#[tokio::test]
async fn f5_an_attacked_account_slows_down_but_its_owner_does_not() {
    let server = behind_proxy(|config| {
        config.rate_limits.login_per_ip.burst = 100;
        config.rate_limits.login_per_account.burst = 100;
        config.rate_limits.failed_login_per_account.burst = 100;
        config.rate_limits.failed_login_account_wide.per_second = 1.0;
        config.rate_limits.failed_login_account_wide.burst = 2;
    })
    .await;
    server.register("target", "password123").await;
    // The owner signs in from home once, so a device of the account was seen there.
    let (status, _) = login_from(&server, "198.51.100.7", "target", "password123").await;
    assert_eq!(status, StatusCode::OK);
    for network in ["203.0.113.1", "203.0.113.2"] {
        let (status, _) = login_from(&server, network, "target", "wrong").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let started = Instant::now();
    let (status, _) = login_from(&server, "203.0.113.3", "target", "wrong").await;
    let attacker_waited = started.elapsed();
    assert_eq!(status, StatusCode::FORBIDDEN, "slowed down, not refused");
    assert!(
        attacker_waited >= Duration::from_millis(500),
        "{attacker_waited:?}"
    );
    for network in ["203.0.113.4", "203.0.113.5"] {
        login_from(&server, network, "target", "wrong").await;
    }
    let started = Instant::now();
    let (status, body) = login_from(&server, "198.51.100.7", "target", "password123").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        started.elapsed() < attacker_waited,
        "the owner's network waited {:?}",
        started.elapsed()
    );
}

/// Review of the fixes: the confirmation page can't be used to guess codes (wrong codes count,
/// and a closed session shows no page even for the right code), and an address whose request
/// named an account can only be added to that account.
#[tokio::test]
async fn the_confirmation_page_counts_guesses_and_binds_the_requester() {
    let sink = MailSink::start();
    let server = email_server(&sink, |_| {}).await;
    let alice = server.register("alice", "password123").await;
    let mallory = server.register("mallory", "password123").await;
    let body = json!({"client_secret": "pg", "email": "shared@example.org", "send_attempt": 1});
    let (status, started) = server
        .post(ADD_TOKEN, alice["access_token"].as_str(), &body)
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let link = sink.wait_for(1).await[0].link_containing("/_vestibule/email/validate");
    let page = server
        .http
        .get(format!("{}{}", server.base, local(&link)))
        .send()
        .await;
    let html = page.unwrap().text().await.unwrap();
    assert!(html.contains("@alice:localhost"), "{html}");
    // Someone else's token can't use the proof the page presented as alice's.
    let response = crate::email::confirm_page(&server, &link).await;
    assert_eq!(response.status(), StatusCode::OK);
    let add = json!({"sid": started["sid"], "client_secret": "pg",
        "auth": {"type": "m.login.password", "password": "password123",
            "identifier": {"type": "m.id.user", "user": "mallory"}}});
    let token = mallory["access_token"].as_str();
    let (_, challenge) = server
        .post(
            "/_matrix/client/v3/account/3pid/add",
            token,
            &json!({"sid": started["sid"], "client_secret": "pg"}),
        )
        .await;
    let mut add = add;
    add["auth"]["session"] = challenge["session"].clone();
    let response = server
        .post("/_matrix/client/v3/account/3pid/add", token, &add)
        .await;
    assert_error(&response, StatusCode::FORBIDDEN, "M_THREEPID_AUTH_FAILED");

    // Guessing through the page: five wrong codes close the session.
    let (_, second) = server
        .post(
            ADD_TOKEN,
            None,
            &json!({"client_secret": "g2", "email": "guess@example.org", "send_attempt": 1}),
        )
        .await;
    let link = sink.wait_for(2).await[1].link_containing("/_vestibule/email/validate");
    let sid = second["sid"].as_str().unwrap();
    for guess in 0..5 {
        let path =
            format!("/_vestibule/email/validate?sid={sid}&client_secret=g2&token=WRONG00{guess}");
        let page = server
            .http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    }
    let page = server
        .http
        .get(format!("{}{}", server.base, local(&link)))
        .send()
        .await
        .unwrap();
    assert_ne!(
        page.status(),
        StatusCode::OK,
        "a closed session shows no page"
    );
}
