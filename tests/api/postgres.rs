//! The HTTP surface on the PostgreSQL backend: the scale path runs the same code.

use reqwest::StatusCode;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::support::TestServer;

fn admin_url() -> String {
    std::env::var("VESTIBULE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

#[tokio::test]
async fn register_login_logout_on_postgres() {
    let admin = admin_url();
    let name = format!("vestibule_api_{}", std::process::id());
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
        let server = TestServer::with(|config| config.database.url = url.to_string()).await;
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

async fn drop_database(connection: &mut PgConnection, name: &str) {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(connection)
    .await
    .expect("drop");
}
