//! Profiles: display name, avatar URL and custom fields.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestServer, assert_error};

fn field(user_id: &str, field: &str) -> String {
    format!("/_matrix/client/v3/profile/{user_id}/{field}")
}

#[tokio::test]
async fn a_new_account_is_named_after_its_localpart_and_can_change_its_profile() {
    let server = TestServer::spawn().await;
    let alice = server.register("alice", "password123").await;
    let token = alice["access_token"].as_str();
    let me = "@alice:localhost";

    let (status, profile) = server
        .get(&format!("/_matrix/client/v3/profile/{me}"), None)
        .await;
    assert_eq!(
        (status, profile),
        (StatusCode::OK, json!({"displayname": "alice"}))
    );

    for (name, value) in [
        ("displayname", json!("Alice Liddell")),
        ("avatar_url", json!("mxc://localhost/abc123")),
        ("m.tz", json!("Europe/London")),
        ("org.example.pronouns", json!({"en": "she/her"})),
    ] {
        let (status, body) = server
            .request(
                Method::PUT,
                &field(me, name),
                token,
                Some(&json!({ name: value })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let (status, body) = server.get(&field(me, name), None).await;
        assert_eq!((status, body), (StatusCode::OK, json!({ name: value })));
    }
    // r0 serves the same profile.
    let (_, profile) = server
        .get(&format!("/_matrix/client/r0/profile/{me}"), token)
        .await;
    assert_eq!(profile["displayname"], "Alice Liddell");
    assert_eq!(profile["avatar_url"], "mxc://localhost/abc123");

    // Before v1.16 a null or missing display name or avatar cleared it; clients still do that.
    for (name, body) in [
        ("displayname", json!({"displayname": null})),
        ("avatar_url", json!({})),
    ] {
        let (status, _) = server
            .request(Method::PUT, &field(me, name), token, Some(&body))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_error(
            &server.get(&field(me, name), None).await,
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
        );
    }
    let (status, _) = server
        .request(
            Method::DELETE,
            &field(me, "org.example.pronouns"),
            token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        &server.get(&field(me, "org.example.pronouns"), None).await,
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
    );
}

#[tokio::test]
async fn bad_profile_writes_get_clear_errors() {
    let server = TestServer::spawn().await;
    let alice = server.register("alice", "password123").await;
    server.register("bob", "password123").await;
    let token = alice["access_token"].as_str();
    let me = "@alice:localhost";
    let put = |path: String, body: serde_json::Value| {
        let server = &server;
        async move { server.request(Method::PUT, &path, token, Some(&body)).await }
    };

    assert_error(
        &put(
            field("@bob:localhost", "displayname"),
            json!({"displayname": "Mallory"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    assert_error(
        &put(field(me, "org.example.key"), json!({"other": "x"})).await,
        StatusCode::BAD_REQUEST,
        "M_MISSING_PARAM",
    );
    assert_error(
        &put(field(me, "displayname"), json!({"displayname": 42})).await,
        StatusCode::BAD_REQUEST,
        "M_INVALID_PARAM",
    );
    assert_error(
        &put(
            field(me, "avatar_url"),
            json!({"avatar_url": "https://example.org/a.png"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "M_INVALID_PARAM",
    );
    assert_error(
        &put(field(me, "Custom"), json!({"Custom": 1})).await,
        StatusCode::BAD_REQUEST,
        "M_INVALID_PARAM",
    );
    let long = format!("org.example.{}", "a".repeat(250));
    assert_error(
        &put(field(me, &long), json!({ long.clone(): 1 })).await,
        StatusCode::BAD_REQUEST,
        "M_KEY_TOO_LARGE",
    );
    let (status, _) = put(
        field(me, "org.example.half"),
        json!({"org.example.half": "x".repeat(30_000)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        &put(
            field(me, "org.example.other"),
            json!({"org.example.other": "x".repeat(36_000)}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "M_PROFILE_TOO_LARGE",
    );
    let (status, body) = server
        .request(
            Method::PUT,
            &field(me, "displayname"),
            None,
            Some(&json!({"displayname": "x"})),
        )
        .await;
    assert_eq!(
        (status, body["errcode"].clone()),
        (StatusCode::UNAUTHORIZED, json!("M_MISSING_TOKEN"))
    );
    let (status, body) = server.post_raw(&field(me, "displayname"), "not json").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");

    assert_error(
        &server
            .get("/_matrix/client/v3/profile/@nobody:localhost", None)
            .await,
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
    );
    assert_error(
        &server
            .get("/_matrix/client/v3/profile/not-a-user-id", None)
            .await,
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
    );
    assert_error(
        &put(
            field("not-a-user-id", "displayname"),
            json!({"displayname": "x"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
}

#[tokio::test]
async fn configuration_locks_fields_and_capabilities_say_so() {
    let server = TestServer::with(|config| {
        config.profile.displayname_changes = false;
        config.profile.custom_fields = false;
    })
    .await;
    let alice = server.register("alice", "password123").await;
    let token = alice["access_token"].as_str();
    let me = "@alice:localhost";
    let response = server
        .request(
            Method::PUT,
            &field(me, "displayname"),
            token,
            Some(&json!({"displayname": "A"})),
        )
        .await;
    assert_error(&response, StatusCode::FORBIDDEN, "M_FORBIDDEN");
    let (status, _) = server
        .request(
            Method::PUT,
            &field(me, "avatar_url"),
            token,
            Some(&json!({"avatar_url": "mxc://localhost/a"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, capabilities) = server.get("/_matrix/client/v3/capabilities", token).await;
    let capabilities = &capabilities["capabilities"];
    assert_eq!(capabilities["m.set_displayname"]["enabled"], false);
    assert_eq!(capabilities["m.set_avatar_url"]["enabled"], true);
    assert_eq!(
        capabilities["m.profile_fields"],
        json!({"enabled": true, "allowed": ["avatar_url"]})
    );
}

/// Deactivates `user` (password `password123`) with `erase`.
async fn deactivate(server: &TestServer, user: &str, token: &str, erase: bool) {
    let path = "/_matrix/client/v3/account/deactivate";
    let (_, challenge) = server
        .post(path, Some(token), &json!({"erase": erase}))
        .await;
    let body = json!({"erase": erase, "auth": {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": "password123",
        "session": challenge["session"],
    }});
    let (status, _) = server.post(path, Some(token), &body).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_deactivated_account_has_no_profile_and_erase_deletes_it() {
    use sqlx::Connection;
    let server = TestServer::spawn().await;
    for (user, erase) in [("alice", true), ("bob", false)] {
        let registered = server.register(user, "password123").await;
        deactivate(
            &server,
            user,
            registered["access_token"].as_str().unwrap(),
            erase,
        )
        .await;
        let profile = format!("/_matrix/client/v3/profile/@{user}:localhost");
        assert_error(
            &server.get(&profile, None).await,
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
        );
    }
    // No API shows a deactivated profile, so the database tells what `erase` removed.
    let mut db = sqlx::SqliteConnection::connect(server.database_url())
        .await
        .expect("open the test database");
    let fields = |user: &'static str| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM profile_fields WHERE user_id = $1")
            .bind(format!("@{user}:localhost"))
    };
    assert_eq!(fields("alice").fetch_one(&mut db).await.unwrap(), 0);
    assert_eq!(fields("bob").fetch_one(&mut db).await.unwrap(), 1);
}
