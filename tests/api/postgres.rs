//! The HTTP surface on the PostgreSQL backend: the scale path runs the same code.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tempfile::TempDir;

use crate::{
    cli::vestibule,
    registration_token::register_with_token,
    support::{TestServer, assert_error, concurrently},
};

fn admin_url() -> String {
    std::env::var("VESTIBULE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

#[tokio::test]
async fn register_login_logout_on_postgres() {
    let name = format!("vestibule_api_{}", std::process::id());
    let (mut connection, url) = fresh_database(&name).await;
    {
        let server = TestServer::with(|config| config.database.url = url.as_str().into()).await;
        let registered = server.register("pat", "password123").await;
        let login = server.login("pat", "password123").await;
        let (status, whoami) = server
            .get(
                "/_matrix/client/v3/account/whoami",
                login["access_token"].as_str(),
            )
            .await;
        assert_eq!(
            (status, whoami["user_id"].as_str()),
            (StatusCode::OK, Some("@pat:localhost"))
        );
        let (status, _) = server
            .post(
                "/_matrix/client/v3/logout",
                registered["access_token"].as_str(),
                &serde_json::json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let server = server.restart().await;
        assert_eq!(
            server
                .get(
                    "/_matrix/client/v3/account/whoami",
                    login["access_token"].as_str()
                )
                .await
                .0,
            StatusCode::OK
        );
    }
    drop_database(&mut connection, &name).await;
}

/// A fresh, empty database `name` (dropped first if a crashed run left it): an admin connection
/// and the database's URL.
async fn fresh_database(name: &str) -> (PgConnection, url::Url) {
    let admin = admin_url();
    let mut connection = PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL reachable at VESTIBULE_TEST_POSTGRES_URL");
    drop_database(&mut connection, name).await;
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut connection)
        .await
        .expect("create");
    let mut url = url::Url::parse(&admin).expect("url");
    url.set_path(name);
    (connection, url)
}

async fn drop_database(connection: &mut PgConnection, name: &str) {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(connection)
    .await
    .expect("drop");
}

/// Two stateless instances on one PostgreSQL database, as behind a load balancer: a one-use
/// registration token admits exactly one of many registrations spread over both, a login token
/// from one works once on the other, and profiles and the operator's lock are seen by both.
#[tokio::test]
async fn account_lifecycle_across_two_instances_on_postgres() {
    let admin = admin_url();
    let name = format!("vestibule_api_lifecycle_{}", std::process::id());
    let mut connection = PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL reachable at VESTIBULE_TEST_POSTGRES_URL");
    drop_database(&mut connection, &name).await;
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut connection)
        .await
        .expect("create");
    let mut url = url::Url::parse(&admin).expect("url");
    url.set_path(&name);
    {
        let instance = |url: String| {
            TestServer::with(move |config| {
                config.database.url = url.as_str().into();
                config.registration.flows = vec![vec!["m.login.registration_token".into()]];
            })
        };
        let a = Arc::new(instance(url.to_string()).await);
        let b = Arc::new(instance(url.to_string()).await);
        let dir = TempDir::new().expect("dir");
        let created = vestibule(
            &dir,
            url.as_str(),
            &[
                "registration-token",
                "create",
                "--token",
                "one",
                "--uses",
                "1",
            ],
            None,
        );
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );

        let results = concurrently(6, |i| {
            let server = if i % 2 == 0 { a.clone() } else { b.clone() };
            async move { register_with_token(&server, &format!("racer{i}"), "one").await }
        })
        .await;
        let winners: Vec<&Value> = results
            .iter()
            .filter(|(status, _)| *status == StatusCode::OK)
            .map(|(_, body)| body)
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let winner = winners[0];
        let user_id = winner["user_id"].as_str().expect("user_id");
        let token = winner["access_token"].as_str();

        let name_path = format!("/_matrix/client/v3/profile/{user_id}/displayname");
        let (status, _) = a
            .request(
                Method::PUT,
                &name_path,
                token,
                Some(&json!({"displayname": "Winner"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, name) = b.get(&name_path, None).await;
        assert_eq!(name, json!({"displayname": "Winner"}));

        let locked = vestibule(&dir, url.as_str(), &["user", "lock", user_id], None);
        assert!(locked.status.success());
        let response = b.get("/_matrix/client/v3/account/whoami", token).await;
        assert_error(&response, StatusCode::UNAUTHORIZED, "M_USER_LOCKED");
        let unlocked = vestibule(&dir, url.as_str(), &["user", "unlock", user_id], None);
        assert!(unlocked.status.success());
        let (status, _) = b.get("/_matrix/client/v3/account/whoami", token).await;
        assert_eq!(status, StatusCode::OK);
    }
    drop_database(&mut connection, &name).await;
}

/// Connections cut under the server (here: every backend of its database terminated, as a
/// database restart would) are never handed out again: the server answers a clear error at
/// most for the requests that met a dead connection, then works again without a restart.
#[tokio::test]
async fn connections_cut_under_the_server_are_replaced() {
    let name = format!("vestibule_cut_{}", std::process::id());
    let (mut connection, url) = fresh_database(&name).await;
    {
        let server = TestServer::with(|config| config.database.url = url.as_str().into()).await;
        let registered = server.register("carl", "password123").await;
        let token = registered["access_token"].as_str();
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .execute(&mut connection)
        .await
        .expect("terminate the server's connections");
        let mut failures = 0;
        for attempt in 0..20 {
            let (status, body) = server.get("/_matrix/client/v3/account/whoami", token).await;
            if status == StatusCode::OK {
                break;
            }
            failures += 1;
            assert_eq!(body["errcode"], "M_UNKNOWN", "{body}");
            assert!(attempt < 19, "the server never recovered: {status} {body}");
        }
        assert!(
            failures <= 16,
            "each dead connection fails at most one request"
        );
        let login = server.login("carl", "password123").await;
        assert!(login["access_token"].is_string());
    }
    drop_database(&mut connection, &name).await;
}

/// A connection broken in the middle of a transaction (its backend terminated while a login
/// writes its device) fails that one request with a clear error and is never handed out again:
/// with a pool of one connection, the next requests work without a restart.
#[tokio::test]
async fn a_connection_broken_mid_transaction_is_not_reused() {
    let name = format!("vestibule_midtx_{}", std::process::id());
    let (mut connection, url) = fresh_database(&name).await;
    {
        let server = TestServer::with(|config| {
            config.database.url = url.as_str().into();
            config.database.max_connections = 1;
        })
        .await;
        server.register("dora", "password123").await;
        let mut database = PgConnection::connect(url.as_str())
            .await
            .expect("connect to the server's database");
        sqlx::raw_sql(
            "CREATE FUNCTION slow_device() RETURNS trigger AS $$ BEGIN \
               IF NEW.display_name = 'slow' THEN PERFORM pg_sleep(30); END IF; RETURN NEW; \
             END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER slow_device BEFORE INSERT ON devices \
               FOR EACH ROW EXECUTE FUNCTION slow_device();",
        )
        .execute(&mut database)
        .await
        .expect("install the slow trigger");
        let slow_login = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "dora"},
            "password": "password123",
            "initial_device_display_name": "slow",
        });
        let cut = async {
            // Wait until the login's transaction sits in the trigger, then cut it.
            loop {
                let cut: Vec<(bool,)> = sqlx::query_as(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = $1 AND pid <> pg_backend_pid() \
                       AND query LIKE '%devices%' AND xact_start IS NOT NULL",
                )
                .bind(&name)
                .fetch_all(&mut database)
                .await
                .expect("look for the login's backend");
                if !cut.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        let ((status, body), ()) = tokio::join!(
            server.post("/_matrix/client/v3/login", None, &slow_login),
            cut
        );
        assert!(status.is_server_error(), "{status} {body}");
        assert_eq!(body["errcode"], "M_UNKNOWN", "{body}");

        let login = server.login("dora", "password123").await;
        let token = login["access_token"].as_str();
        let (status, body) = server.get("/_matrix/client/v3/account/whoami", token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        database.close().await.expect("close");
    }
    drop_database(&mut connection, &name).await;
}

/// F14 on PostgreSQL, which refuses U+0000 in text: still 400 `M_INVALID_PARAM`, never 500.
#[tokio::test]
async fn nul_bytes_are_refused_before_postgresql_sees_them() {
    let name = format!("vestibule_nul_{}", std::process::id());
    let (mut connection, url) = fresh_database(&name).await;
    {
        let server = TestServer::with(|config| config.database.url = url.as_str().into()).await;
        crate::security::refuses_nul_and_odd_device_ids(&server).await;
    }
    drop_database(&mut connection, &name).await;
}
