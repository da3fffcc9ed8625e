//! Token-authenticated registration: the `m.login.registration_token` stage, the validity
//! endpoint, and the operator's `vestibule registration-token` commands.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::{
    cli::vestibule,
    support::{TestServer, assert_error, concurrently},
};

const REGISTER: &str = "/_matrix/client/v3/register";
const VALIDITY: &str = "/_matrix/client/v1/register/m.login.registration_token/validity";

async fn token_server() -> TestServer {
    TestServer::with(|config| {
        config.registration.flows = vec![vec!["m.login.registration_token".into()]];
    })
    .await
}

/// Runs `vestibule registration-token ARGS` on the server's database; returns stdout.
fn token_command(server: &TestServer, args: &[&str]) -> String {
    let dir = TempDir::new().expect("dir");
    let mut full = vec!["registration-token"];
    full.extend_from_slice(args);
    let output = vestibule(&dir, server.database_url(), &full, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

async fn valid(server: &TestServer, token: &str) -> Value {
    let (status, body) = server.get(&format!("{VALIDITY}?token={token}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["valid"].clone()
}

/// Starts a registration and submits `token` in its session; returns the final response.
pub async fn register_with_token(
    server: &TestServer,
    username: &str,
    token: &str,
) -> (StatusCode, Value) {
    let body = json!({"username": username, "password": "password123"});
    let (status, challenge) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    assert_eq!(
        challenge["flows"],
        json!([{"stages": ["m.login.registration_token"]}])
    );
    let mut body = body;
    body["auth"] = json!({
        "type": "m.login.registration_token",
        "token": token,
        "session": challenge["session"],
    });
    server.post(REGISTER, None, &body).await
}

#[tokio::test]
async fn operator_tokens_gate_registration() {
    let server = token_server().await;
    let created = token_command(
        &server,
        &[
            "create",
            "--token",
            "invite-1",
            "--uses",
            "2",
            "--valid-for",
            "1h",
        ],
    );
    assert_eq!(created.trim(), "invite-1");
    let generated = token_command(&server, &["create"]);
    assert_eq!(generated.trim().len(), 16);

    assert_eq!(valid(&server, "invite-1").await, true);
    assert_eq!(valid(&server, "unknown").await, false);

    let (status, body) = register_with_token(&server, "alice", "invite-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@alice:localhost");

    let (status, refused) = register_with_token(&server, "bob", "wrong-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["errcode"], "M_FORBIDDEN");
    assert_eq!(refused["completed"], json!([]));

    let listed = token_command(&server, &["list"]);
    let line = listed
        .lines()
        .find(|line| line.starts_with("invite-1\t"))
        .expect("token listed");
    let columns: Vec<&str> = line.split('\t').collect();
    assert_eq!(&columns[1..4], ["2", "0", "1"], "{listed}");
    assert!(columns[4].ends_with('Z'), "{listed}");
    assert!(listed.contains("unlimited\t0\t0\tnever"), "{listed}");

    let (status, body) = register_with_token(&server, "carol", "invite-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        valid(&server, "invite-1").await,
        false,
        "both uses are spent"
    );
    let (status, refused) = register_with_token(&server, "dave", "invite-1").await;
    assert_eq!(
        (status, refused["errcode"].clone()),
        (StatusCode::UNAUTHORIZED, json!("M_FORBIDDEN"))
    );

    let token = generated.trim();
    token_command(&server, &["revoke", token]);
    assert_eq!(valid(&server, token).await, false);
    let dir = TempDir::new().expect("dir");
    let again = vestibule(
        &dir,
        server.database_url(),
        &["registration-token", "revoke", token],
        None,
    );
    assert!(!again.status.success());
}

#[tokio::test]
async fn a_single_use_token_admits_exactly_one_of_many_concurrent_registrations() {
    let server = std::sync::Arc::new(token_server().await);
    token_command(&server, &["create", "--token", "once", "--uses", "1"]);
    let results = concurrently(6, |i| {
        let server = server.clone();
        async move { register_with_token(&server, &format!("racer{i}"), "once").await }
    })
    .await;
    let winners = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(winners, 1, "{results:?}");
    for (status, body) in results
        .iter()
        .filter(|(status, _)| *status != StatusCode::OK)
    {
        assert_eq!(
            (*status, body["errcode"].clone()),
            (StatusCode::UNAUTHORIZED, json!("M_FORBIDDEN"))
        );
    }
    assert!(token_command(&server, &["list"]).contains("once\t1\t0\t1\tnever"));
}

#[tokio::test]
async fn bad_operator_input_is_refused_with_a_reason() {
    let server = token_server().await;
    let dir = TempDir::new().expect("dir");
    for args in [
        &["registration-token", "create", "--uses", "0"][..],
        &["registration-token", "create", "--token", "has space"][..],
        &["registration-token", "create", "--valid-for", "soon"][..],
    ] {
        let output = vestibule(&dir, server.database_url(), args, None);
        assert!(!output.status.success(), "{args:?}");
        assert!(!output.stderr.is_empty());
    }
    token_command(&server, &["create", "--token", "dup"]);
    let output = vestibule(
        &dir,
        server.database_url(),
        &["registration-token", "create", "--token", "dup"],
        None,
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
}

#[tokio::test]
async fn validity_needs_a_token_and_open_registration() {
    let server = token_server().await;
    assert_error(
        &server.get(VALIDITY, None).await,
        StatusCode::BAD_REQUEST,
        "M_MISSING_PARAM",
    );
    let closed = TestServer::with(|config| config.registration.enabled = false).await;
    assert_error(
        &closed.get(&format!("{VALIDITY}?token=abc"), None).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
}
