//! Connection limits, spoken to over raw TCP: the header-read timeout, the idle timeout, the
//! per-IP cap, HTTP/2, and graceful shutdown.

use std::{num::NonZeroUsize, time::Duration};

use axum::body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::{Instant, sleep, timeout},
};
use vestibule::config::Seconds;

use crate::support::TestServer;

const VERSIONS: &[u8] = b"GET /_matrix/client/versions HTTP/1.1\r\nHost: localhost\r\n\r\n";

async fn connect(server: &TestServer) -> TcpStream {
    let address = server.base.trim_start_matches("http://");
    TcpStream::connect(address).await.expect("connects")
}

/// Reads one response with a `Content-Length` body and returns its head; `None` when the
/// connection closes first.
async fn read_response(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |value| value.trim().parse().expect("a length"));
            if received.len() >= end + 4 + length {
                return Some(head);
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => received.extend_from_slice(&chunk[..read]),
        }
    }
}

/// `GET /_matrix/client/versions` on `stream`: the response head, or `None` if the server
/// closed the connection instead.
async fn get_versions(stream: &mut TcpStream) -> Option<String> {
    stream.write_all(VERSIONS).await.ok()?;
    read_response(stream).await
}

/// How long until the server closes `stream` (anything it sends first is skipped), or `None`
/// if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut chunk = [0; 1024];
    loop {
        match timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut chunk),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends a request head one header line every 200 ms, never ending it; how long until the
/// server closes the connection, or `None` if it is still open after 5 s.
async fn trickle_headers(stream: &mut TcpStream) -> Option<Duration> {
    let started = Instant::now();
    let mut chunk = [0; 1024];
    let mut line = "GET /_matrix/client/versions HTTP/1.1\r\nHost: localhost\r\n".to_owned();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(5) {
        if stream.write_all(line.as_bytes()).await.is_err() {
            return Some(started.elapsed());
        }
        if let Ok(Ok(0) | Err(_)) =
            timeout(Duration::from_millis(200), stream.read(&mut chunk)).await
        {
            return Some(started.elapsed());
        }
        sent += 1;
        line = format!("x-slow-{sent}: 1\r\n");
    }
    None
}

#[track_caller]
fn assert_closed_after(closed: Option<Duration>, at_least: Duration, what: &str) {
    let closed = closed.unwrap_or_else(|| panic!("{what}: still open"));
    assert!(
        closed >= at_least && closed < at_least + Duration::from_secs(3),
        "{what}: closed after {closed:?}"
    );
}

#[tokio::test]
async fn slow_request_heads_are_cut_off_after_the_header_read_timeout() {
    let server =
        TestServer::with(|config| config.http.header_read_timeout_secs = Seconds::of(1)).await;
    // The idle timeout keeps its 60 s default: only the header-read timeout can close these.
    let silent = async {
        let mut stream = connect(&server).await;
        closed_within(&mut stream, Duration::from_secs(5)).await
    };
    let first_request = async {
        let mut stream = connect(&server).await;
        trickle_headers(&mut stream).await
    };
    let next_request = async {
        let mut stream = connect(&server).await;
        let head = get_versions(&mut stream).await.expect("a response");
        assert!(head.starts_with("http/1.1 200"), "{head}");
        trickle_headers(&mut stream).await
    };
    let (silent, first_request, next_request) = tokio::join!(silent, first_request, next_request);
    let second = Duration::from_millis(900);
    assert_closed_after(silent, second, "a connection that sends nothing");
    assert_closed_after(first_request, second, "a trickled first request");
    assert_closed_after(next_request, second, "a trickled keep-alive request");

    let mut stream = connect(&server).await;
    let head = get_versions(&mut stream).await.expect("a response");
    assert!(head.starts_with("http/1.1 200"), "{head}");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let server = TestServer::with(|config| config.http.idle_timeout_secs = Seconds::of(2)).await;
    let mut stream = connect(&server).await;
    assert!(get_versions(&mut stream).await.is_some());
    sleep(Duration::from_millis(1200)).await;
    let head = get_versions(&mut stream)
        .await
        .expect("still open after 1.2 s idle");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    // The clock restarted at the second response.
    let closed = closed_within(&mut stream, Duration::from_secs(6)).await;
    assert_closed_after(
        closed,
        Duration::from_millis(1900),
        "an idle HTTP/1.1 connection",
    );
}

#[tokio::test]
async fn http2_is_served_and_idle_http2_connections_are_closed() {
    let server = TestServer::with(|config| config.http.idle_timeout_secs = Seconds::of(2)).await;
    let stream = connect(&server).await;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake (prior knowledge)");
    let connection = tokio::spawn(connection);
    let request = axum::http::Request::get(format!("{}/_matrix/client/versions", server.base))
        .body(Body::empty())
        .expect("request");
    let response = sender.send_request(request).await.expect("a response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), axum::http::Version::HTTP_2);
    drop(response);
    let started = Instant::now();
    timeout(Duration::from_secs(6), connection)
        .await
        .expect("the server closes the idle connection")
        .expect("connection task")
        .expect("closed gracefully");
    assert_closed_after(
        Some(started.elapsed()),
        Duration::from_millis(1900),
        "an idle HTTP/2 connection",
    );
}

#[tokio::test]
async fn connections_over_the_per_ip_cap_are_closed_at_once() {
    let server = TestServer::with(|config| {
        config.http.max_connections_per_ip = NonZeroUsize::new(3).expect("not zero");
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(&server).await;
        assert!(get_versions(&mut stream).await.is_some());
        open.push(stream);
    }
    let mut fourth = connect(&server).await;
    assert!(
        closed_within(&mut fourth, Duration::from_secs(2))
            .await
            .is_some(),
        "the fourth connection from 127.0.0.1 is closed"
    );
    for stream in &mut open {
        let head = get_versions(stream)
            .await
            .expect("the first three still work");
        assert!(head.starts_with("http/1.1 200"), "{head}");
    }

    // A connection that ends frees its place.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut stream = connect(&server).await;
        if get_versions(&mut stream).await.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was never reused"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn trusted_proxies_are_not_capped() {
    let server = TestServer::with(|config| {
        config.http.max_connections_per_ip = NonZeroUsize::new(1).expect("not zero");
        config.http.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await;
    let mut first = connect(&server).await;
    let mut second = connect(&server).await;
    assert!(get_versions(&mut first).await.is_some());
    assert!(get_versions(&mut second).await.is_some());
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_takes_no_new_connections() {
    let mut server = TestServer::spawn().await;
    let body = br#"{"type":"m.login.password","identifier":{"type":"m.id.user","user":"nobody"},"password":"not-the-password"}"#;
    let (sent, rest) = body.split_at(body.len() / 2);
    let mut stream = connect(&server).await;
    let head = format!(
        "POST /_matrix/client/v3/login HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head sent");
    stream.write_all(sent).await.expect("half the body sent");
    // The handler is now waiting for the rest of the body.
    sleep(Duration::from_millis(500)).await;

    server.shut_down();
    let address = server.base.trim_start_matches("http://").to_owned();
    let deadline = Instant::now() + Duration::from_secs(3);
    while TcpStream::connect(&address).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        sleep(Duration::from_millis(50)).await;
    }

    stream.write_all(rest).await.expect("rest of the body sent");
    let head = read_response(&mut stream)
        .await
        .expect("the request in flight is answered");
    assert!(head.starts_with("http/1.1 403"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    timeout(Duration::from_secs(5), server.stopped())
        .await
        .expect("the server stops once drained");
}
