//! Rate limits: a refused request gets 429 `M_LIMIT_EXCEEDED` with `retry_after_ms` and a
//! `Retry-After` header, and is allowed again once the wait has passed.

use reqwest::StatusCode;
use serde_json::{Value, json};
use vestibule::config::Quota;

use crate::support::{TestServer, assert_error};

const LOGIN: &str = "/_matrix/client/v3/login";
/// A quota that never refuses in these tests.
const GENEROUS: Quota = Quota {
    per_second: 1000.0,
    burst: 1000,
};

async fn limited_server(
    adjust: impl FnOnce(&mut vestibule::config::RateLimitConfig),
) -> TestServer {
    TestServer::with(|config| {
        let limits = &mut config.rate_limits;
        limits.enabled = true;
        limits.login_per_ip = GENEROUS;
        limits.login_per_account = GENEROUS;
        limits.failed_login_per_account = GENEROUS;
        limits.register_per_ip = GENEROUS;
        limits.refresh_per_ip = GENEROUS;
        adjust(limits);
    })
    .await
}

fn password_login(user: &str, password: &str) -> Value {
    json!({"type": "m.login.password", "user": user, "password": password})
}

/// Asserts a 429 and returns its `retry_after_ms`.
#[track_caller]
fn assert_limited(response: &(StatusCode, Value)) -> i64 {
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED");
    let retry_after = response.1["retry_after_ms"]
        .as_i64()
        .expect("retry_after_ms");
    assert!(retry_after > 0, "{}", response.1);
    retry_after
}

#[tokio::test]
async fn login_per_ip_refuses_then_recovers() {
    let server = limited_server(|limits| {
        limits.login_per_ip = Quota {
            per_second: 0.5,
            burst: 2,
        }
    })
    .await;
    server.register("lena", "password123").await;
    server.login("lena", "password123").await;
    server.login("lena", "password123").await;
    let refused = server
        .post(LOGIN, None, &password_login("lena", "password123"))
        .await;
    let retry_after = assert_limited(&refused);
    assert_eq!(retry_after, 2_000);
    // The header carries whole seconds.
    let response = server
        .http
        .post(format!("{}{LOGIN}", server.base))
        .json(&password_login("lena", "password123"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "2");
    server.clock.advance(retry_after);
    server.login("lena", "password123").await;
}

#[tokio::test]
async fn failed_logins_lock_the_account_for_a_while() {
    let server = limited_server(|limits| {
        limits.failed_login_per_account = Quota {
            per_second: 0.1,
            burst: 2,
        }
    })
    .await;
    server.register("mona", "password123").await;
    for _ in 0..2 {
        let wrong = server
            .post(LOGIN, None, &password_login("mona", "wrong-password"))
            .await;
        assert_error(&wrong, StatusCode::FORBIDDEN, "M_FORBIDDEN");
    }
    // Even the right password is refused now, before it is checked.
    let retry_after = assert_limited(
        &server
            .post(LOGIN, None, &password_login("mona", "password123"))
            .await,
    );
    assert_eq!(retry_after, 10_000);
    // Other accounts are not affected.
    server.register("nina", "password123").await;
    server.login("nina", "password123").await;
    server.clock.advance(retry_after);
    server.login("@mona:localhost", "password123").await;
}

#[tokio::test]
async fn login_per_account_counts_every_attempt() {
    let server = limited_server(|limits| {
        limits.login_per_account = Quota {
            per_second: 1.0,
            burst: 1,
        }
    })
    .await;
    server.register("omar", "password123").await;
    server.login("omar", "password123").await;
    assert_limited(
        &server
            .post(LOGIN, None, &password_login("omar", "password123"))
            .await,
    );
    server.clock.advance(1_000);
    server.login("omar", "password123").await;
}

#[tokio::test]
async fn registration_per_ip_refuses_then_recovers() {
    let server = limited_server(|limits| {
        limits.register_per_ip = Quota {
            per_second: 0.25,
            burst: 2,
        }
    })
    .await;
    let register = |name: &str| json!({"username": name, "password": "password123", "auth": {"type": "m.login.dummy"}});
    for name in ["reg1", "reg2"] {
        assert_eq!(
            server
                .post("/_matrix/client/v3/register", None, &register(name))
                .await
                .0,
            StatusCode::OK
        );
    }
    let retry_after = assert_limited(
        &server
            .post("/_matrix/client/v3/register", None, &register("reg3"))
            .await,
    );
    let v1 = json!({"type": "m.login.password", "user": "reg3", "password": "password123"});
    assert_limited(
        &server
            .post("/_matrix/client/api/v1/register", None, &v1)
            .await,
    );
    server.clock.advance(retry_after);
    assert_eq!(
        server
            .post("/_matrix/client/v3/register", None, &register("reg3"))
            .await
            .0,
        StatusCode::OK
    );
    // Nothing was created by the refused attempts.
    let (status, _) = server
        .get("/_matrix/client/v3/register/available?username=reg4", None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn refresh_per_ip_refuses_then_recovers() {
    let server = limited_server(|limits| {
        limits.refresh_per_ip = Quota {
            per_second: 1.0,
            burst: 1,
        }
    })
    .await;
    server.register("pia", "password123").await;
    let (_, login) = server.post(LOGIN, None, &json!({"type": "m.login.password", "user": "pia", "password": "password123", "refresh_token": true})).await;
    let (status, refreshed) = server
        .post(
            "/_matrix/client/v3/refresh",
            None,
            &json!({"refresh_token": login["refresh_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let body = json!({"refresh_token": refreshed["refresh_token"]});
    let retry_after = assert_limited(&server.post("/_matrix/client/v3/refresh", None, &body).await);
    server.clock.advance(retry_after);
    assert_eq!(
        server
            .post("/_matrix/client/v3/refresh", None, &body)
            .await
            .0,
        StatusCode::OK
    );
}

async fn login_from(server: &TestServer, forwarded_for: &str) -> StatusCode {
    server
        .http
        .post(format!("{}{LOGIN}", server.base))
        .header("x-forwarded-for", forwarded_for)
        .json(&password_login("quin", "password123"))
        .send()
        .await
        .expect("sent")
        .status()
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_limited_one_by_one() {
    let server = TestServer::with(|config| {
        config.http.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
        config.rate_limits.enabled = true;
        config.rate_limits.login_per_ip = Quota {
            per_second: 0.1,
            burst: 1,
        };
        config.rate_limits.login_per_account = GENEROUS;
        config.rate_limits.register_per_ip = GENEROUS;
    })
    .await;
    server.register("quin", "password123").await;
    assert_eq!(login_from(&server, "203.0.113.5").await, StatusCode::OK);
    assert_eq!(
        login_from(&server, "203.0.113.5").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy has its own bucket; a trusted hop is skipped.
    assert_eq!(
        login_from(&server, "203.0.113.6, 127.0.0.1").await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let server = limited_server(|limits| {
        limits.login_per_ip = Quota {
            per_second: 0.1,
            burst: 1,
        }
    })
    .await;
    server.register("quin", "password123").await;
    assert_eq!(login_from(&server, "203.0.113.5").await, StatusCode::OK);
    // A client can't escape its limit by claiming to be someone else.
    assert_eq!(
        login_from(&server, "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
