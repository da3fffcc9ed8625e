//! Identity servers, with the reference one (matrix-sydent) on loopback: the seeds' legacy
//! `POST /account/3pid` with `three_pid_creds` and `bind`, the current `/account/3pid/bind` and
//! `/unbind` with an `id_access_token` obtained through Vestibule's OpenID endpoints, unbinding
//! on deactivation, and the failure paths.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    peers::{MailSink, Sydent},
    support::{TestServer, assert_error},
};

/// A client of the identity server (what a Matrix client does itself).
struct IdentityClient<'a> {
    sydent: &'a Sydent,
    sink: &'a MailSink,
    http: reqwest::Client,
    token: Option<String>,
}

impl<'a> IdentityClient<'a> {
    fn new(sydent: &'a Sydent, sink: &'a MailSink) -> Self {
        Self {
            sydent,
            sink,
            http: reqwest::Client::new(),
            token: None,
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}{path}", self.sydent.url()))
            .json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("sydent answers");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("JSON")
    }

    /// Validates `email` at the identity server (v2 when registered, else v1); returns the sid.
    async fn validate(&self, email: &str, secret: &str) -> String {
        let api = if self.token.is_some() { "v2" } else { "api/v1" };
        let before = self.sink.messages().len();
        let body = json!({"client_secret": secret, "email": email, "send_attempt": 1});
        let started = self
            .post(
                &format!("/_matrix/identity/{api}/validate/email/requestToken"),
                &body,
            )
            .await;
        let sid = started["sid"].as_str().expect("sid").to_owned();
        let mail = self.sink.wait_for(before + 1).await.pop().expect("email");
        let token = mail.word_after("the code is");
        let submit = json!({"sid": sid, "client_secret": secret, "token": token});
        let done = self
            .post(
                &format!("/_matrix/identity/{api}/validate/email/submitToken"),
                &submit,
            )
            .await;
        assert_eq!(done["success"], true, "{done}");
        sid
    }

    /// The Matrix ID the identity server associates with `email`, if any (v1 lookup).
    async fn lookup(&self, email: &str) -> Option<String> {
        let url = format!("{}/_matrix/identity/api/v1/lookup", self.sydent.url());
        let body: Value = self
            .http
            .get(url)
            .query(&[("medium", "email"), ("address", email)])
            .send()
            .await
            .expect("lookup")
            .json()
            .await
            .expect("JSON");
        body["mxid"].as_str().map(str::to_owned)
    }
}

async fn server_trusting(sydent: &Sydent) -> TestServer {
    let url = sydent.url();
    TestServer::named_by_address(move |config| config.identity.trusted_servers = vec![url]).await
}

#[tokio::test]
async fn legacy_three_pid_creds_add_and_bind_and_deactivation_unbinds() {
    let sink = MailSink::start();
    let sydent = Sydent::start(&sink);
    let server = server_trusting(&sydent).await;
    let identity = IdentityClient::new(&sydent, &sink);
    let alice = server.register("alice", "password123").await;
    let token = alice["access_token"].as_str();
    let user_id = alice["user_id"].as_str().unwrap().to_owned();

    let sid = identity
        .validate("Alice@Example.org", "legacy-secret")
        .await;
    let body = json!({
        "threePidCreds": {"id_server": sydent.name(), "sid": sid, "client_secret": "legacy-secret"},
        "bind": true,
    });
    let (status, added) = server
        .post("/_matrix/client/v2_alpha/account/3pid", token, &body)
        .await;
    assert_eq!((status, added), (StatusCode::OK, json!({})));
    let (_, listed) = server
        .get("/_matrix/client/v2_alpha/account/3pid", token)
        .await;
    assert_eq!(listed["threepids"][0]["address"], "alice@example.org");
    assert_eq!(
        identity.lookup("alice@example.org").await.as_deref(),
        Some(user_id.as_str())
    );

    // The r0 shape (`three_pid_creds`) works too, without binding.
    let sid = identity
        .validate("alice.work@example.org", "r0-secret")
        .await;
    let body = json!({"three_pid_creds": {"id_server": sydent.name(), "sid": sid, "client_secret": "r0-secret"}});
    let (status, _) = server
        .post("/_matrix/client/r0/account/3pid", token, &body)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(identity.lookup("alice.work@example.org").await, None);

    let (_, challenge) = server
        .post("/_matrix/client/v3/account/deactivate", token, &json!({}))
        .await;
    let body = json!({"auth": {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "alice"},
        "password": "password123",
        "session": challenge["session"],
    }});
    let (status, done) = server
        .post("/_matrix/client/v3/account/deactivate", token, &body)
        .await;
    assert_eq!(
        (status, done),
        (
            StatusCode::OK,
            json!({"id_server_unbind_result": "success"})
        )
    );
    assert_eq!(identity.lookup("alice@example.org").await, None);
}

#[tokio::test]
async fn identity_server_refusals_are_reported() {
    let sink = MailSink::start();
    let sydent = Sydent::start(&sink);
    let server = server_trusting(&sydent).await;
    let identity = IdentityClient::new(&sydent, &sink);
    let bob = server.register("bob", "password123").await;
    let token = bob["access_token"].as_str();
    let add = |id_server: String, sid: &str| json!({"three_pid_creds": {"id_server": id_server, "sid": sid, "client_secret": "bob-secret"}});

    // A session the identity server has not validated.
    let started = identity
        .post(
            "/_matrix/identity/api/v1/validate/email/requestToken",
            &json!({"client_secret": "bob-secret", "email": "bob@example.org", "send_attempt": 1}),
        )
        .await;
    let sid = started["sid"].as_str().unwrap();
    let response = server
        .post(
            "/_matrix/client/v3/account/3pid",
            token,
            &add(sydent.name(), sid),
        )
        .await;
    assert_error(&response, StatusCode::FORBIDDEN, "M_THREEPID_AUTH_FAILED");
    let response = server
        .post(
            "/_matrix/client/v2_alpha/account/3pid",
            token,
            &add(sydent.name(), "no-such-sid"),
        )
        .await;
    assert_error(&response, StatusCode::FORBIDDEN, "M_THREEPID_AUTH_FAILED");

    // An identity server this homeserver does not trust is never contacted.
    let response = server
        .post(
            "/_matrix/client/v3/account/3pid",
            token,
            &add("evil.example.org".into(), sid),
        )
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "M_SERVER_NOT_TRUSTED");

    // An identity server that is down.
    let name = sydent.name();
    drop(sydent);
    let response = server
        .post("/_matrix/client/v3/account/3pid", token, &add(name, sid))
        .await;
    assert_error(&response, StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN");
    let (_, listed) = server.get("/_matrix/client/v3/account/3pid", token).await;
    assert_eq!(listed["threepids"], json!([]));
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
    assert_eq!(openid["matrix_server_name"], server.config.server_name);
    let mut identity = IdentityClient::new(&sydent, &sink);
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
