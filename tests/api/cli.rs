//! The `vestibule` binary: operator commands, start-up errors, and the zero-setup quick start.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::json;
use tempfile::TempDir;

use crate::{
    files::{database_files, mode},
    support::{TestServer, assert_error},
};

/// Runs the `vestibule` binary with `args` against `database_url`, feeding `stdin` if given.
pub fn vestibule(
    config_dir: &TempDir,
    database_url: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let config = config_dir.path().join("vestibule.toml");
    std::fs::write(
        &config,
        "server_name = \"localhost\"\n[password]\nargon2_memory_kib = 256\nargon2_iterations = 1\n",
    )
    .expect("config written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vestibule"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .env("VESTIBULE_DATABASE__URL", database_url)
        .env_remove("VESTIBULE_USER_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vestibule starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("stdin written");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("vestibule finishes")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn operator_manages_users_on_the_live_database() {
    let server = TestServer::spawn().await;
    let dir = TempDir::new().expect("dir");
    let url = server.database_url().to_owned();

    let created = vestibule(
        &dir,
        &url,
        &["user", "create", "opal"],
        Some("first-password\n"),
    );
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(String::from_utf8_lossy(&created.stdout).contains("@opal:localhost"));
    let session = server.login("opal", "first-password").await;

    let duplicate = vestibule(
        &dir,
        &url,
        &["user", "create", "opal", "--password", "whatever123"],
        None,
    );
    assert!(!duplicate.status.success());
    assert!(
        stderr(&duplicate).contains("taken"),
        "{}",
        stderr(&duplicate)
    );

    let reset = vestibule(
        &dir,
        &url,
        &[
            "user",
            "reset-password",
            "@opal:localhost",
            "--password",
            "second-password",
        ],
        None,
    );
    assert!(reset.status.success(), "{}", stderr(&reset));
    let whoami = server
        .get(
            "/_matrix/client/v3/account/whoami",
            session["access_token"].as_str(),
        )
        .await;
    assert_error(&whoami, StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN");
    let old = server
        .post(
            "/_matrix/client/v3/login",
            None,
            &json!({"type": "m.login.password", "user": "opal", "password": "first-password"}),
        )
        .await;
    assert_error(&old, StatusCode::FORBIDDEN, "M_FORBIDDEN");
    server.login("opal", "second-password").await;

    let deactivated = vestibule(&dir, &url, &["user", "deactivate", "opal"], None);
    assert!(deactivated.status.success(), "{}", stderr(&deactivated));
    let login = server
        .post(
            "/_matrix/client/v3/login",
            None,
            &json!({"type": "m.login.password", "user": "opal", "password": "second-password"}),
        )
        .await;
    assert_error(&login, StatusCode::FORBIDDEN, "M_USER_DEACTIVATED");
    let register = server
        .post(
            "/_matrix/client/v3/register",
            None,
            &json!({"username": "opal", "password": "password123"}),
        )
        .await;
    assert_error(&register, StatusCode::BAD_REQUEST, "M_USER_IN_USE");

    let missing = vestibule(&dir, &url, &["user", "deactivate", "nobody"], None);
    assert!(!missing.status.success());
}

#[test]
fn help_explains_each_command() {
    let dir = TempDir::new().expect("dir");
    let output = vestibule(&dir, "sqlite::memory:", &["--help"], None);
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "migrate", "user", "config"] {
        assert!(help.contains(command), "{help}");
    }
    let output = vestibule(&dir, "sqlite::memory:", &["user", "--help"], None);
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["create", "reset-password", "deactivate"] {
        assert!(help.contains(command), "{help}");
    }
}

/// An environment variable set for one run.
type EnvVar = (&'static str, &'static str);

fn run_with_config(contents: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let dir = TempDir::new().expect("dir");
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, contents).expect("written");
    Command::new(env!("CARGO_BIN_EXE_vestibule"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("runs")
}

#[test]
fn bad_configuration_stops_startup_with_one_clear_line() {
    let cases: [(&str, &[EnvVar], &str); 5] = [
        ("server_name = 5", &[], "server_name"),
        ("bogus_key = true", &[], "bogus_key"),
        ("this is not toml", &[], "bad.toml"),
        (
            "",
            &[("VESTIBULE_PASSWORD__MIN_LENGTH", "zero")],
            "password.min_length",
        ),
        (
            "listen = [\"0.0.0.0:8008\"]",
            &[],
            "allow_unverified_on_public_address",
        ),
    ];
    for (contents, env, expected) in cases {
        let output = run_with_config(contents, env, &["config", "check"]);
        assert!(!output.status.success(), "{contents}");
        let message = stderr(&output);
        assert_eq!(message.trim().lines().count(), 1, "{message}");
        assert!(
            message.starts_with("error: ") && message.contains(expected),
            "{contents}: {message}"
        );
        assert!(!message.contains("panicked"), "{message}");
    }
}

#[test]
fn variables_of_the_cli_and_tests_are_not_configuration() {
    let env = [
        ("VESTIBULE_TEST_POSTGRES_URL", "postgres://elsewhere"),
        ("VESTIBULE_USER_PASSWORD", "secret"),
        ("VESTIBULE_SPEC_DIR", "/elsewhere"),
        ("VESTIBULE_PEERS_VENV", "/elsewhere"),
        ("VESTIBULE_SERVER_NAME", "example.org"),
    ];
    let output = run_with_config("", &env, &["config", "check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("server_name = \"example.org\""));
}

#[test]
fn unreachable_database_stops_startup_with_one_clear_line() {
    let output = run_with_config(
        "",
        &[(
            "VESTIBULE_DATABASE__URL",
            "postgres://postgres@127.0.0.1:1/none",
        )],
        &["migrate"],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("cannot open database postgres://postgres@127.0.0.1:1/none"),
        "{message}"
    );
    assert_eq!(
        message
            .trim()
            .lines()
            .filter(|line| line.starts_with("error"))
            .count(),
        1,
        "{message}"
    );
}

/// A loopback port nothing listens on (free a moment ago).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Whether `GET url` answers `status` within ten seconds.
async fn answers(url: &str, status: StatusCode) -> bool {
    for _ in 0..100 {
        if reqwest::get(url)
            .await
            .is_ok_and(|response| response.status() == status)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn quick_start_generates_config_and_database() {
    let dir = TempDir::new().expect("dir");
    let port = free_port();
    let metrics_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vestibule"))
        .arg("serve")
        .current_dir(dir.path())
        .env("VESTIBULE_LISTEN", format!("[\"127.0.0.1:{port}\"]"))
        .env(
            "VESTIBULE_OBSERVABILITY__METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env_remove("VESTIBULE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let answered = answers(&format!("{base}/_matrix/client/versions"), StatusCode::OK).await;
    let metrics = answers(
        &format!("http://127.0.0.1:{metrics_port}/metrics"),
        StatusCode::OK,
    )
    .await;
    let client_metrics = answers(&format!("{base}/metrics"), StatusCode::NOT_FOUND).await;
    // Killed (SIGKILL), the server leaves its -wal and -shm files behind, to be looked at.
    let _ = child.kill();
    let _ = child.wait();
    assert!(answered, "server never answered");
    assert!(metrics, "metrics not served on their listener");
    assert!(client_metrics, "/metrics is not 404 on the client listener");
    let data = dir.path().join("vestibule-data");
    let generated = std::fs::read_to_string(data.join("vestibule.toml")).expect("config generated");
    assert!(generated.contains("server_name = \"localhost\""));
    // Security review F17: the data directory and the database are the server's user's alone.
    assert_eq!(mode(&data), 0o700);
    for file in database_files(&data.join("vestibule.db")) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn metrics_listener_is_opened_only_when_enabled() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    let port = free_port();
    let dir = TempDir::new().expect("dir");
    let config = dir.path().join("vestibule.toml");
    std::fs::write(
        &config,
        format!(
            "listen = [\"127.0.0.1:{port}\"]\n[database]\nurl = \"sqlite:{}\"\n\
             [observability]\nmetrics_listen = \"127.0.0.1:{taken_port}\"\n",
            dir.path().join("vestibule.db").display()
        ),
    )
    .expect("config written");
    let serve = |metrics_enabled: &str| {
        Command::new(env!("CARGO_BIN_EXE_vestibule"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env("VESTIBULE_OBSERVABILITY__METRICS_ENABLED", metrics_enabled)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts")
    };

    // Enabled, on a taken address: start-up stops with one line naming the key.
    let mut child = serve("true");
    let mut exited = None;
    for _ in 0..100 {
        exited = child.try_wait().expect("status");
        if exited.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if exited.is_none() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("output");
    assert!(
        exited.is_some_and(|status| !status.success()),
        "serve kept running"
    );
    let message = stderr(&output);
    let errors: Vec<_> = message
        .lines()
        .filter(|line| line.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{message}");
    assert!(
        errors[0].contains(&format!(
            "cannot listen on 127.0.0.1:{taken_port} (observability.metrics_listen)"
        )),
        "{message}"
    );

    // Disabled: the address is not even tried, and the server runs.
    let mut child = serve("false");
    let answered = answers(
        &format!("http://127.0.0.1:{port}/_matrix/client/versions"),
        StatusCode::OK,
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(answered, "server never answered");
    drop(taken);
}
