//! A full disk is survived: the SQLite database lives on a 2 MiB tmpfs in a private mount
//! namespace (`unshare -m`, so no real disk of the machine is ever filled), a filler file takes
//! the rest of it, writes fail with a clear error, and once the filler is gone, writes work
//! again without a restart.
//!
//! The write that matters is a login: its first write is inside a transaction, so the disk is
//! found full at `COMMIT`, where SQLite rolls the whole transaction back by itself. The
//! driver's own `ROLLBACK` then fails, and a connection reused after that would refuse every
//! later `BEGIN`; with one pooled connection, every later write would fail until a restart.

use std::{
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

/// What the namespace's shell does: mount the tmpfs over the data directory, run the server,
/// and fill or free the tmpfs when the test asks through files in the control directory.
const SCRIPT: &str = r#"
set -e
mount -t tmpfs -o size=2m tmpfs "$DATA"
"$BIN" --config "$CFG" serve &
server=$!
while kill -0 "$server" 2>/dev/null; do
  if [ -e "$CTRL/fill" ]; then
    dd if=/dev/zero of="$DATA/filler" bs=4k 2>/dev/null || true
    rm -f "$CTRL/fill"; touch "$CTRL/filled"
  fi
  if [ -e "$CTRL/free" ]; then
    rm -f "$DATA/filler" "$CTRL/free"; touch "$CTRL/freed"
  fi
  sleep 0.05
done
"#;

/// The server in its namespace, killed with its shell when dropped.
struct Confined(Child);

impl Drop for Confined {
    fn drop(&mut self) {
        // The shell's process group: the shell, the server and any dd.
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
        let _ = self.0.wait();
    }
}

async fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn register(http: &reqwest::Client, base: &str, username: &str) -> (StatusCode, Value) {
    let body = json!({"username": username, "password": "password123",
        "auth": {"type": "m.login.dummy"}});
    post(http, format!("{base}/_matrix/client/v3/register"), body).await
}

async fn login(http: &reqwest::Client, base: &str, username: &str) -> (StatusCode, Value) {
    let body = json!({"type": "m.login.password", "password": "password123",
        "identifier": {"type": "m.id.user", "user": username}});
    post(http, format!("{base}/_matrix/client/v3/login"), body).await
}

#[tokio::test]
async fn writes_work_again_once_space_is_back() {
    let dir = TempDir::new().expect("temp dir");
    let (data, control) = (dir.path().join("data"), dir.path().join("control"));
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::create_dir_all(&control).expect("control dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let config = dir.path().join("vestibule.toml");
    std::fs::write(
        &config,
        format!(
            "listen = [\"127.0.0.1:{port}\"]\n\
             [database]\nurl = \"sqlite:{}/vestibule.db\"\nmax_connections = 1\n\
             [password]\nargon2_memory_kib = 256\nargon2_iterations = 1\n\
             [rate_limits]\nenabled = false\n",
            data.display()
        ),
    )
    .expect("config written");
    let child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", SCRIPT])
        .env("DATA", &data)
        .env("CTRL", &control)
        .env("CFG", &config)
        .env("BIN", env!("CARGO_BIN_EXE_vestibule"))
        .env("RUST_LOG", "warn")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("unshare starts (needs root and util-linux's unshare)");
    let _server = Confined(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = http
            .get(format!("{base}/_matrix/client/versions"))
            .send()
            .await
            .is_ok();
        if up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the confined server did not start: `unshare -m` needs root (CAP_SYS_ADMIN)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = register(&http, &base, "before").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    std::fs::write(control.join("fill"), "").expect("ask to fill");
    wait_for(&control.join("filled")).await;
    for attempt in 0..3 {
        let (status, body) = login(&http, &base, "before").await;
        assert!(
            status.is_server_error(),
            "a login on a full disk fails: {status} {body}"
        );
        assert_eq!(body["errcode"], "M_UNKNOWN", "{body}");
        let (status, body) = register(&http, &base, &format!("during{attempt}")).await;
        assert!(
            status.is_server_error(),
            "a registration on a full disk fails: {status} {body}"
        );
        assert_eq!(body["errcode"], "M_UNKNOWN", "{body}");
    }

    std::fs::write(control.join("free"), "").expect("ask to free");
    wait_for(&control.join("freed")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (status, body) = login(&http, &base, "before").await;
        if status == StatusCode::OK {
            let (status, body) = register(&http, &base, &format!("after{attempt}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes still fail after space came back, without a restart: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
