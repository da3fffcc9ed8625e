//! Real protocol peers for the email and identity-server tests: an SMTP server that stores what
//! it receives (`tests/peers/smtp_sink.py`, aiosmtpd) and the reference identity server,
//! matrix-sydent (`tests/peers/run_sydent.py`). Both run from the venv `tests/peers/setup.sh`
//! builds, as child processes on loopback ports, stopped when the test drops them.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tempfile::TempDir;

/// The `tests/peers` directory.
fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// Builds the peers' venv once per test process (a no-op when it is up to date).
fn ensure_venv() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let status = Command::new("bash")
            .arg(peers_dir().join("setup.sh"))
            .status()
            .expect("run tests/peers/setup.sh");
        assert!(
            status.success(),
            "tests/peers/setup.sh could not build the Python venv the SMTP and identity-server \
             peers run from: it needs python3 >= 3.11 (with venv) and access to PyPI; run \
             `bash tests/peers/setup.sh` to see why"
        );
    });
}

/// A peer process, killed when dropped.
struct Peer {
    child: Child,
    port: u16,
}

impl Peer {
    /// Starts `script ARGS` and waits for its `READY <port>` line.
    fn start(script: &str, args: &[String]) -> Self {
        ensure_venv();
        let mut child = Command::new("bash")
            .arg(peers_dir().join(script))
            .args(args)
            .arg("--exit-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("start {script}: {err}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the READY line");
        let port = line
            .strip_prefix("READY ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("{script} did not become ready: {line:?}"));
        Self { child, port }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message the SMTP sink received.
pub struct ReceivedEmail {
    /// The `To:` header.
    pub to: String,
    /// The `Subject:` header.
    pub subject: String,
    /// The plain-text body, decoded.
    pub text: String,
    /// The HTML body, decoded, if there is one.
    pub html: Option<String>,
}

impl ReceivedEmail {
    /// The first URL in the text body that contains `needle`.
    pub fn link_containing(&self, needle: &str) -> String {
        self.text
            .split_whitespace()
            .find(|word| word.starts_with("http") && word.contains(needle))
            .unwrap_or_else(|| panic!("no link with {needle:?} in {}", self.text))
            .to_owned()
    }

    /// The word after `marker` in the text body (a code such as "… your client: ABCD1234").
    pub fn word_after(&self, marker: &str) -> String {
        let (_, rest) = self
            .text
            .split_once(marker)
            .unwrap_or_else(|| panic!("no {marker:?} in {}", self.text));
        rest.split_whitespace()
            .next()
            .expect("a word after the marker")
            .trim_end_matches('.')
            .to_owned()
    }
}

/// A real SMTP server on loopback that keeps every message as a file.
pub struct MailSink {
    peer: Peer,
    dir: TempDir,
}

impl MailSink {
    /// Starts the sink on a free port.
    pub fn start() -> Self {
        Self::start_on(0)
    }

    /// Starts the sink on `port`.
    pub fn start_on(port: u16) -> Self {
        let dir = TempDir::new().expect("mail dir");
        let args = [
            "--port".to_owned(),
            port.to_string(),
            "--maildir".to_owned(),
            dir.path().display().to_string(),
        ];
        let peer = Peer::start("smtp_sink.sh", &args);
        Self { peer, dir }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.peer.port
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedEmail> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read mail dir")
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                let raw = std::fs::read(path).expect("read message");
                let message = mail_parser::MessageParser::default()
                    .parse(&raw)
                    .expect("parse message");
                ReceivedEmail {
                    to: message
                        .to()
                        .and_then(|to| to.first())
                        .and_then(|to| to.address())
                        .unwrap_or_default()
                        .to_owned(),
                    subject: message.subject().unwrap_or_default().to_owned(),
                    text: message.body_text(0).unwrap_or_default().into_owned(),
                    html: message.body_html(0).map(|html| html.into_owned()),
                }
            })
            .collect()
    }

    /// Waits (up to 10 s) until `count` messages have arrived, and returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<ReceivedEmail> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} emails, got {}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// matrix-sydent on loopback, sending its emails to a [`MailSink`].
pub struct Sydent {
    peer: Peer,
}

impl Sydent {
    /// Starts sydent, mailing through `sink`.
    pub fn start(sink: &MailSink) -> Self {
        let args = [
            "--smtp-port".to_owned(),
            sink.port().to_string(),
            "--log-level".to_owned(),
            "WARNING".to_owned(),
        ];
        Self {
            peer: Peer::start("run_sydent.sh", &args),
        }
    }

    /// Its server name, `127.0.0.1:PORT`, what clients send as `id_server`.
    pub fn name(&self) -> String {
        format!("127.0.0.1:{}", self.peer.port)
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer.port)
    }
}

/// A client of the identity server: what a Matrix client does there itself.
pub struct SydentClient<'a> {
    sydent: &'a Sydent,
    sink: &'a MailSink,
    http: reqwest::Client,
    /// The identity access token, once registered through OpenID (v2 API).
    pub token: Option<String>,
}

impl<'a> SydentClient<'a> {
    /// A client of `sydent`, reading its emails from `sink`.
    pub fn new(sydent: &'a Sydent, sink: &'a MailSink) -> Self {
        Self {
            sydent,
            sink,
            http: reqwest::Client::new(),
            token: None,
        }
    }

    /// `POST path` with a JSON body (and the identity access token once registered).
    pub async fn post(&self, path: &str, body: &Value) -> Value {
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
    pub async fn validate(&self, email: &str, secret: &str) -> String {
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
    pub async fn lookup(&self, email: &str) -> Option<String> {
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

/// A stand-in for reCAPTCHA's `siteverify` (the real service cannot run here): accepts the
/// answer `good` for the secret `captcha-secret`.
pub struct CaptchaVerifier {
    /// The verification URL.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl CaptchaVerifier {
    /// The secret key the verifier expects.
    pub const SECRET: &str = "captcha-secret";

    /// Starts the verifier on a free loopback port.
    pub async fn start() -> Self {
        use axum::{Form, Json, Router, routing::post};
        use std::collections::HashMap;
        async fn verify(Form(form): Form<HashMap<String, String>>) -> Json<Value> {
            let success = form.get("secret").map(String::as_str) == Some(CaptchaVerifier::SECRET)
                && form.get("response").map(String::as_str) == Some("good");
            Json(json!({ "success": success }))
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/siteverify",
            listener.local_addr().expect("address")
        );
        let app = Router::new().route("/siteverify", post(verify));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("verifier runs");
        });
        Self { url, task }
    }
}

impl Drop for CaptchaVerifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}
