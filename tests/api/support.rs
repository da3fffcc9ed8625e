//! The black-box harness: a real Vestibule on a random loopback port (and its metrics on
//! another) with a fresh SQLite database and a manual clock, and a small JSON client for it.

use std::{
    future::Future,
    sync::{Arc, Mutex},
};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use vestibule::{
    Listeners,
    accounts::events::{AccountEvent, AccountEvents},
    app,
    clock::{ManualClock, OsRandomness},
    config::Config,
    telemetry,
};

use crate::conformance;

/// A running server and what a test needs to talk to it.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `http://127.0.0.1:PORT` of the metrics listener, when metrics are enabled.
    metrics_base: Option<String>,
    /// The server's clock; tests advance it instead of sleeping.
    pub clock: ManualClock,
    /// The configuration the server runs with.
    pub config: Config,
    /// HTTP client.
    pub http: reqwest::Client,
    /// Every account change the server reported, in order (a test double of the outlet a
    /// homeserver listens to).
    pub events: RecordedEvents,
    dir: Arc<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// A configuration for tests: cheap argon2 (the real parameters are for the benchmark) and a
/// database in `dir`.
pub fn test_config(dir: &TempDir) -> Config {
    let mut config = Config::default();
    config.database.url = format!("sqlite:{}", dir.path().join("vestibule.db").display())
        .as_str()
        .into();
    config.password.argon2_memory_kib = 256;
    config.password.argon2_iterations = 1;
    // Tests make many requests from one address; the rate-limit tests turn limits back on.
    config.rate_limits.enabled = false;
    config
}

impl TestServer {
    /// A server with the default test configuration.
    pub async fn spawn() -> Self {
        Self::with(|_| {}).await
    }

    /// A server whose configuration `adjust` changes first.
    pub async fn with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = Arc::new(TempDir::new().expect("temp dir"));
        let mut config = test_config(&dir);
        adjust(&mut config);
        Self::start(config, dir, ManualClock::new(1_700_000_000_000), None, None).await
    }

    /// A server whose server name is its own address (`127.0.0.1:PORT`), so that peers which
    /// resolve server names (an identity server's OpenID lookup) reach it over plain HTTP.
    pub async fn named_by_address(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = Arc::new(TempDir::new().expect("temp dir"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let mut config = test_config(&dir);
        config.server_name = address.to_string().try_into().expect("server name");
        config.public_baseurl = format!("http://{address}/").parse().expect("URL");
        adjust(&mut config);
        Self::start(
            config,
            dir,
            ManualClock::new(1_700_000_000_000),
            Some(listener),
            None,
        )
        .await
    }

    async fn start(
        config: Config,
        dir: Arc<TempDir>,
        clock: ManualClock,
        listener: Option<TcpListener>,
        events: Option<RecordedEvents>,
    ) -> Self {
        config.validate().expect("test config is valid");
        let store = app::open_store(&config).await.expect("store opens");
        let events = events.unwrap_or_default();
        let state = app::build_with_events(
            config.clone(),
            store,
            Arc::new(clock.clone()),
            Arc::new(OsRandomness),
            config
                .observability
                .metrics_enabled
                .then(telemetry::metrics_handle)
                .flatten(),
            Arc::new(events.clone()),
        )
        .expect("state builds");
        let listener = match listener {
            Some(listener) => listener,
            None => TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        };
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let metrics = if config.observability.metrics_enabled {
            Some(TcpListener::bind("127.0.0.1:0").await.expect("bind"))
        } else {
            None
        };
        let metrics_base = metrics
            .as_ref()
            .map(|listener| format!("http://{}", listener.local_addr().expect("address")));
        let listeners = Listeners {
            client: vec![listener],
            metrics,
        };
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            vestibule::serve(state, listeners, async move {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
        });
        Self {
            base,
            metrics_base,
            clock,
            config,
            http: reqwest::Client::new(),
            events,
            dir,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Stops this server and starts a new one on the same database, clock and configuration.
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        Self::start(
            self.config.clone(),
            self.dir.clone(),
            self.clock.clone(),
            None,
            Some(self.events.clone()),
        )
        .await
    }

    async fn stop(&mut self) {
        self.shut_down();
        self.stopped().await;
    }

    /// Asks the server to stop, as SIGTERM does, without waiting for it.
    pub fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Waits until the server has stopped (after [`Self::shut_down`]).
    pub async fn stopped(&mut self) {
        if let Some(task) = self.task.take() {
            task.await.expect("server stops cleanly");
        }
    }

    /// The URL of `/metrics` on the metrics listener.
    pub fn metrics_url(&self) -> String {
        let base = self.metrics_base.as_ref().expect("metrics are enabled");
        format!("{base}/metrics")
    }

    /// The database URL of this server (for CLI tests).
    pub fn database_url(&self) -> &str {
        self.config.database.url.expose()
    }

    /// Sends a request and returns status and JSON body (`Value::Null` for a non-JSON body). A
    /// JSON body must conform to the published schema of the endpoint and status.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let method_name = method.to_string();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request is sent");
        let status = response.status();
        let text = response.text().await.expect("body is read");
        (status, conforming_body(&method_name, path, status, &text))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::GET, path, token, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, token, Some(body)).await
    }

    /// `POST path` with raw bytes as the body; a JSON answer must conform like [`Self::request`]'s.
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request is sent");
        let status = response.status();
        let text = response.text().await.expect("body is read");
        (status, conforming_body("POST", path, status, &text))
    }

    /// Registers `username` through the dummy flow and returns the 200 body.
    pub async fn register(&self, username: &str, password: &str) -> Value {
        let body = json!({ "username": username, "password": password });
        let (status, challenge) = self.post("/_matrix/client/v3/register", None, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
        let mut body = body;
        body["auth"] = json!({ "type": "m.login.dummy", "session": challenge["session"] });
        let (status, registered) = self.post("/_matrix/client/v3/register", None, &body).await;
        assert_eq!(status, StatusCode::OK, "{registered}");
        registered
    }

    /// Logs `user` in with a password and returns the 200 body.
    pub async fn login(&self, user: &str, password: &str) -> Value {
        let body = json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": user },
            "password": password,
        });
        let (status, body) = self.post("/_matrix/client/v3/login", None, &body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The JSON body `text` (`Value::Null` when it is not JSON), after checking that it conforms to
/// the published schema of `method path` for `status`.
fn conforming_body(method: &str, path: &str, status: StatusCode, text: &str) -> Value {
    match serde_json::from_str(text) {
        Ok(body) => {
            conformance::assert_conforms(method, path, status.as_u16(), &body);
            body
        }
        Err(_) => Value::Null,
    }
}

/// Asserts a standard Matrix error: status, `errcode`, and a non-empty `error`.
#[track_caller]
pub fn assert_error(response: &(StatusCode, Value), status: StatusCode, errcode: &str) {
    let (actual_status, body) = response;
    assert_eq!(*actual_status, status, "status of {body}");
    assert_eq!(body["errcode"], errcode, "errcode of {body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|error| !error.is_empty()),
        "error message of {body}"
    );
}

/// Runs `make` `n` times concurrently and collects the results.
pub async fn concurrently<F, T>(n: usize, make: impl Fn(usize) -> F) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(make(i))).collect();
    let mut results = Vec::with_capacity(n);
    for handle in handles {
        results.push(handle.await.expect("task completes"));
    }
    results
}

/// The account events a server reported, for tests to take and compare.
#[derive(Clone, Default)]
pub struct RecordedEvents(Arc<Mutex<Vec<AccountEvent>>>);

impl RecordedEvents {
    /// The events reported since the last call, in order.
    pub fn take(&self) -> Vec<AccountEvent> {
        std::mem::take(&mut *self.0.lock().expect("events lock"))
    }
}

#[async_trait::async_trait]
impl AccountEvents for RecordedEvents {
    async fn report(&self, event: AccountEvent) {
        self.0.lock().expect("events lock").push(event);
    }
}
