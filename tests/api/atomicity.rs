//! One use case, one transaction: a failure injected between the steps of a use case (a
//! trigger that makes the database refuse the second step) leaves nothing of it behind.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::support::{TestServer, assert_error};

/// Makes the test server's database refuse every `DELETE` on `table` until the returned
/// statement is run.
pub async fn refuse_deletes_on(server: &TestServer, table: &str) -> String {
    let mut db = sqlx::SqliteConnection::connect(server.database_url())
        .await
        .expect("open the test database");
    let trigger = format!("refuse_deletes_on_{table}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TRIGGER {trigger} BEFORE DELETE ON {table} \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    )))
    .execute(&mut db)
    .await
    .expect("create the trigger");
    format!("DROP TRIGGER {trigger}")
}

/// Runs `statement` on the test server's database.
pub async fn run_sql(server: &TestServer, statement: String) {
    let mut db = sqlx::SqliteConnection::connect(server.database_url())
        .await
        .expect("open the test database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(&mut db)
        .await
        .expect("run the statement");
}

#[tokio::test]
async fn a_password_change_that_fails_midway_changes_nothing() {
    let server = TestServer::spawn().await;
    let first = server.register("alice", "password123").await;
    let second = server.login("alice", "password123").await;
    let token = first["access_token"].as_str();
    let restore = refuse_deletes_on(&server, "devices").await;
    server.events.take();

    let change = json!({"new_password": "new-password-456", "logout_devices": true});
    let (_, challenge) = server
        .post("/_matrix/client/v3/account/password", token, &change)
        .await;
    let mut change = change;
    change["auth"] = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "password123", "session": challenge["session"]});
    assert_error(
        &server
            .post("/_matrix/client/v3/account/password", token, &change)
            .await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "M_UNKNOWN",
    );
    assert_eq!(server.events.take().len(), 0, "nothing is reported");

    // The new hash was written before the sessions were to end, and rolled back with them.
    let (status, _) = server
        .get(
            "/_matrix/client/v3/account/whoami",
            second["access_token"].as_str(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the other session is still alive");
    server.login("alice", "password123").await;
    let wrong =
        json!({"type": "m.login.password", "user": "alice", "password": "new-password-456"});
    assert_error(
        &server.post("/_matrix/client/v3/login", None, &wrong).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );

    // With the database whole again, the same change goes through.
    run_sql(&server, restore).await;
    let change = json!({"new_password": "new-password-456", "logout_devices": true});
    let (_, challenge) = server
        .post("/_matrix/client/v3/account/password", token, &change)
        .await;
    let mut change = change;
    change["auth"] = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "password123", "session": challenge["session"]});
    let (status, body) = server
        .post("/_matrix/client/v3/account/password", token, &change)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.login("alice", "new-password-456").await;
}
