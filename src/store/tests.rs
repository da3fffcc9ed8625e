//! Conformance suite: every test runs against [`SqlStore`] on both SQLite and PostgreSQL.
//!
//! SQLite tests use a fresh file in a temporary directory. PostgreSQL tests create a fresh
//! database on the server at `VESTIBULE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and drop it afterwards, also when the test
//! panics.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::{
    DeviceRecord, LastSeen, NewAccount, NewLogin, RegistrationExtras, SqlStore, Store, StoreError,
    TokenOwner, UiaProgressRecord, UiaSessionRecord, UserRecord,
};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Connections per test pool: enough for the concurrency tests to really run in parallel.
const POOL_SIZE: u32 = 8;

/// How many tasks race in the concurrency tests.
const RACERS: usize = 8;

/// Runs `test` against a store on a new SQLite file (in a directory that does not exist yet).
async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("create temporary directory");
    let path = dir.path().join("data").join("vestibule.db");
    let store = SqlStore::connect(&format!("sqlite://{}", path.display()), POOL_SIZE)
        .await
        .expect("open SQLite store");
    test(Arc::new(store)).await;
}

/// Runs `test` against a store on a new PostgreSQL database, then drops the database.
async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url = std::env::var("VESTIBULE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let name = format!("vestibule_test_{:016x}", rand::random::<u64>());
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .expect("connect to the PostgreSQL admin database");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .expect("create test database");

    let mut url = url::Url::parse(&admin_url).expect("parse PostgreSQL URL");
    url.set_path(&name);
    // The test runs in its own task so that a panic comes back here as a value and the
    // database is dropped before the panic resumes.
    let outcome = match SqlStore::connect(url.as_str(), POOL_SIZE).await {
        Ok(store) => {
            let result = tokio::spawn(test(Arc::new(store.clone()))).await;
            store.pool.close().await;
            result.map_err(|error| error.into_panic())
        }
        Err(error) => Err(Box::new(format!("open PostgreSQL store: {error}")) as _),
    };

    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .expect("drop test database");
    admin.close().await.expect("close admin connection");

    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Generates, for each named test function, one `#[tokio::test]` per backend.
macro_rules! conformance_suite {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::on_sqlite(super::$test).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::on_postgres(super::$test).await;
                }
            )+
        }
    };
}

conformance_suite!(
    create_and_find_user,
    duplicate_localpart_conflicts,
    concurrent_duplicate_localpart_has_one_winner,
    account_with_login_creates_device_and_token,
    token_expiry_is_returned,
    guest_flag_reaches_token_owner,
    relogin_on_same_device_replaces_token_and_keeps_name,
    start_login_creates_new_device,
    duplicate_token_hash_conflicts_and_rolls_back,
    delete_device_removes_its_tokens,
    delete_all_devices_honours_keep,
    list_devices_orders_by_device_id,
    set_password_hash_replaces_hash,
    deactivate_user_removes_sessions_and_keeps_localpart,
    failed_create_account_leaves_no_rows,
    uia_session_round_trip,
    complete_uia_stage_is_idempotent_and_ordered,
    uia_values_are_kept_per_name,
    concurrent_stage_records_are_all_kept,
    take_uia_session_succeeds_once,
    concurrent_take_uia_session_has_one_winner,
    delete_expired_uia_sessions_removes_only_expired,
    rate_limit_allows_bursts_then_refuses_until_the_interval_passes,
    concurrent_rate_limit_takes_never_exceed_the_burst,
    rename_device_sets_and_clears_the_name,
    last_seen_updates_are_batched_and_never_go_back,
);

mod lifecycle;
mod refresh_tokens;
mod threepids;
mod unit_of_work;

const SERVER: &str = "example.org";

fn user_id(localpart: &str) -> String {
    format!("@{localpart}:{SERVER}")
}

fn account(localpart: &str, login: Option<NewLogin>) -> NewAccount {
    NewAccount {
        user_id: user_id(localpart),
        localpart: localpart.to_owned(),
        password_hash: Some(format!("hash-of-{localpart}")),
        is_guest: false,
        created_at_ms: 1_000,
        login,
        extras: RegistrationExtras::default(),
    }
}

fn login(device_id: &str, token_hash: &str) -> NewLogin {
    NewLogin {
        device_id: device_id.to_owned(),
        display_name: Some(format!("{device_id} name")),
        access_token_hash: token_hash.to_owned(),
        expires_at_ms: None,
        refresh_token_hash: None,
        now_ms: 1_000,
        ip: Some("192.0.2.1".to_owned()),
    }
}

fn uia_session(session_hash: &str, expires_at_ms: i64) -> UiaSessionRecord {
    UiaSessionRecord {
        session_hash: session_hash.to_owned(),
        action: "register".to_owned(),
        fingerprint: format!("fingerprint-{session_hash}"),
        user_id: None,
        values: BTreeMap::new(),
        created_at_ms: 1_000,
        expires_at_ms,
        completed: Vec::new(),
    }
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "expected a conflict, got {result:?}"
    );
}

async fn device_ids(store: &dyn Store, localpart: &str) -> Vec<String> {
    store
        .list_devices(&user_id(localpart))
        .await
        .expect("list devices")
        .into_iter()
        .map(|device| device.device_id)
        .collect()
}

async fn create_and_find_user(store: Arc<dyn Store>) {
    assert!(
        !store
            .localpart_exists("alice")
            .await
            .expect("localpart_exists")
    );
    assert_eq!(
        store.find_user(&user_id("alice")).await.expect("find_user"),
        None
    );

    store
        .create_account(account("alice", None))
        .await
        .expect("create alice");
    let guest = NewAccount {
        password_hash: None,
        is_guest: true,
        ..account("1234", None)
    };
    store.create_account(guest).await.expect("create guest");

    assert!(
        store
            .localpart_exists("alice")
            .await
            .expect("localpart_exists")
    );
    assert_eq!(
        store.find_user(&user_id("alice")).await.expect("find_user"),
        Some(UserRecord {
            user_id: user_id("alice"),
            localpart: "alice".to_owned(),
            password_hash: Some("hash-of-alice".to_owned()),
            is_guest: false,
            created_at_ms: 1_000,
            deactivated_at_ms: None,
            locked: false,
            suspended: false,
            is_admin: false,
        })
    );
    assert_eq!(
        store.find_user(&user_id("1234")).await.expect("find_user"),
        Some(UserRecord {
            user_id: user_id("1234"),
            localpart: "1234".to_owned(),
            password_hash: None,
            is_guest: true,
            created_at_ms: 1_000,
            deactivated_at_ms: None,
            locked: false,
            suspended: false,
            is_admin: false,
        })
    );
    assert!(device_ids(&*store, "alice").await.is_empty());
}

async fn duplicate_localpart_conflicts(store: Arc<dyn Store>) {
    store
        .create_account(account("alice", None))
        .await
        .expect("create alice");
    assert_conflict(store.create_account(account("alice", None)).await);
    let other_server = NewAccount {
        user_id: "@alice:other.example".to_owned(),
        ..account("alice", None)
    };
    assert_conflict(store.create_account(other_server).await);
    assert_eq!(
        store
            .find_user("@alice:other.example")
            .await
            .expect("find_user"),
        None
    );
}

async fn concurrent_duplicate_localpart_has_one_winner(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = Arc::clone(&store);
            let login = login(&format!("DEVICE{i}"), &format!("token{i}"));
            tokio::spawn(async move { store.create_account(account("bob", Some(login))).await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.expect("task panicked") {
            Ok(()) => winners += 1,
            result => assert_conflict(result),
        }
    }
    assert_eq!(winners, 1);

    let devices = device_ids(&*store, "bob").await;
    assert_eq!(devices.len(), 1);
    let mut owned_tokens = 0;
    for i in 0..RACERS {
        if let Some(owner) = store
            .find_token_owner(&format!("token{i}"))
            .await
            .expect("find_token_owner")
        {
            assert_eq!(owner.device_id, devices[0]);
            owned_tokens += 1;
        }
    }
    assert_eq!(owned_tokens, 1);
}

async fn account_with_login_creates_device_and_token(store: Arc<dyn Store>) {
    store
        .create_account(account("alice", Some(login("PHONE", "token-a"))))
        .await
        .expect("create alice");

    assert_eq!(
        store
            .find_token_owner("token-a")
            .await
            .expect("find_token_owner"),
        Some(TokenOwner {
            user_id: user_id("alice"),
            device_id: "PHONE".to_owned(),
            is_guest: false,
            expires_at_ms: None,
            locked: false,
            suspended: false,
        })
    );
    assert_eq!(
        store
            .find_token_owner("unknown")
            .await
            .expect("find_token_owner"),
        None
    );
    assert_eq!(
        store
            .list_devices(&user_id("alice"))
            .await
            .expect("list_devices"),
        vec![DeviceRecord {
            user_id: user_id("alice"),
            device_id: "PHONE".to_owned(),
            display_name: Some("PHONE name".to_owned()),
            last_seen_ts: Some(1_000),
            last_seen_ip: Some("192.0.2.1".to_owned()),
        }]
    );
}

async fn token_expiry_is_returned(store: Arc<dyn Store>) {
    let expiring = NewLogin {
        expires_at_ms: Some(61_000),
        refresh_token_hash: Some("refresh-a".to_owned()),
        ..login("PHONE", "token-a")
    };
    store
        .create_account(account("alice", Some(expiring)))
        .await
        .expect("create alice");
    let owner = store
        .find_token_owner("token-a")
        .await
        .expect("find_token_owner")
        .expect("token has an owner");
    assert_eq!(owner.expires_at_ms, Some(61_000));
}

async fn guest_flag_reaches_token_owner(store: Arc<dyn Store>) {
    let guest = NewAccount {
        password_hash: None,
        is_guest: true,
        ..account("1234", Some(login("GUEST", "token-g")))
    };
    store.create_account(guest).await.expect("create guest");
    let owner = store
        .find_token_owner("token-g")
        .await
        .expect("find_token_owner")
        .expect("token has an owner");
    assert!(owner.is_guest);
}

async fn relogin_on_same_device_replaces_token_and_keeps_name(store: Arc<dyn Store>) {
    let first = NewLogin {
        refresh_token_hash: Some("refresh-1".to_owned()),
        ..login("PHONE", "token-1")
    };
    store
        .create_account(account("alice", Some(first)))
        .await
        .expect("create alice");

    let second = NewLogin {
        display_name: Some("Renamed".to_owned()),
        // The old token's refresh hash is free again once that token is gone.
        refresh_token_hash: Some("refresh-1".to_owned()),
        now_ms: 5_000,
        ip: Some("192.0.2.9".to_owned()),
        ..login("PHONE", "token-2")
    };
    store
        .start_login(&user_id("alice"), second)
        .await
        .expect("log in again");

    assert_eq!(
        store
            .find_token_owner("token-1")
            .await
            .expect("find_token_owner"),
        None
    );
    assert_eq!(
        store
            .find_token_owner("token-2")
            .await
            .expect("find_token_owner")
            .map(|owner| owner.device_id),
        Some("PHONE".to_owned())
    );
    assert_eq!(
        store
            .list_devices(&user_id("alice"))
            .await
            .expect("list_devices"),
        vec![DeviceRecord {
            user_id: user_id("alice"),
            device_id: "PHONE".to_owned(),
            display_name: Some("PHONE name".to_owned()),
            last_seen_ts: Some(5_000),
            last_seen_ip: Some("192.0.2.9".to_owned()),
        }]
    );
}

async fn start_login_creates_new_device(store: Arc<dyn Store>) {
    store
        .create_account(account("alice", Some(login("PHONE", "token-1"))))
        .await
        .expect("create alice");
    let laptop = NewLogin {
        display_name: None,
        ip: None,
        ..login("LAPTOP", "token-2")
    };
    store
        .start_login(&user_id("alice"), laptop)
        .await
        .expect("log in on a second device");

    assert!(
        store
            .find_token_owner("token-1")
            .await
            .expect("find_token_owner")
            .is_some()
    );
    assert!(
        store
            .find_token_owner("token-2")
            .await
            .expect("find_token_owner")
            .is_some()
    );
    let devices = store
        .list_devices(&user_id("alice"))
        .await
        .expect("list_devices");
    assert_eq!(
        devices[0],
        DeviceRecord {
            user_id: user_id("alice"),
            device_id: "LAPTOP".to_owned(),
            display_name: None,
            last_seen_ts: Some(1_000),
            last_seen_ip: None,
        }
    );
    assert_eq!(devices.len(), 2);
}

async fn duplicate_token_hash_conflicts_and_rolls_back(store: Arc<dyn Store>) {
    let first = NewLogin {
        refresh_token_hash: Some("refresh-1".to_owned()),
        ..login("PHONE", "token-1")
    };
    store
        .create_account(account("alice", Some(first)))
        .await
        .expect("create alice");

    assert_conflict(
        store
            .start_login(&user_id("alice"), login("LAPTOP", "token-1"))
            .await,
    );
    let reused_refresh = NewLogin {
        refresh_token_hash: Some("refresh-1".to_owned()),
        ..login("TABLET", "token-3")
    };
    assert_conflict(store.start_login(&user_id("alice"), reused_refresh).await);

    assert_eq!(device_ids(&*store, "alice").await, vec!["PHONE"]);
    assert_eq!(
        store
            .find_token_owner("token-3")
            .await
            .expect("find_token_owner"),
        None
    );
    assert_eq!(
        store
            .find_token_owner("token-1")
            .await
            .expect("find_token_owner")
            .map(|owner| owner.device_id),
        Some("PHONE".to_owned())
    );
}

async fn delete_device_removes_its_tokens(store: Arc<dyn Store>) {
    store
        .create_account(account("alice", Some(login("PHONE", "token-1"))))
        .await
        .expect("create alice");
    store
        .start_login(&user_id("alice"), login("LAPTOP", "token-2"))
        .await
        .expect("log in on a second device");

    assert!(
        store
            .delete_device(&user_id("alice"), "PHONE")
            .await
            .expect("delete_device")
    );
    assert!(
        !store
            .delete_device(&user_id("alice"), "PHONE")
            .await
            .expect("delete_device")
    );
    assert!(
        !store
            .delete_device(&user_id("nobody"), "LAPTOP")
            .await
            .expect("delete_device")
    );

    assert_eq!(
        store
            .find_token_owner("token-1")
            .await
            .expect("find_token_owner"),
        None
    );
    assert!(
        store
            .find_token_owner("token-2")
            .await
            .expect("find_token_owner")
            .is_some()
    );
    assert_eq!(device_ids(&*store, "alice").await, vec!["LAPTOP"]);
}

async fn delete_all_devices_honours_keep(store: Arc<dyn Store>) {
    store
        .create_account(account("alice", Some(login("A", "token-a"))))
        .await
        .expect("create alice");
    store
        .create_account(account("bob", Some(login("A", "token-bob"))))
        .await
        .expect("create bob");
    for device in ["B", "C"] {
        store
            .start_login(&user_id("alice"), login(device, &format!("token-{device}")))
            .await
            .expect("log in");
    }

    let deleted = store
        .delete_all_devices(&user_id("alice"), Some("B"))
        .await
        .expect("delete_all_devices");
    assert_eq!(deleted, 2);
    assert_eq!(device_ids(&*store, "alice").await, vec!["B"]);
    assert_eq!(
        store
            .find_token_owner("token-a")
            .await
            .expect("find_token_owner"),
        None
    );
    assert_eq!(
        store
            .find_token_owner("token-C")
            .await
            .expect("find_token_owner"),
        None
    );
    assert!(
        store
            .find_token_owner("token-B")
            .await
            .expect("find_token_owner")
            .is_some()
    );

    let deleted = store
        .delete_all_devices(&user_id("alice"), None)
        .await
        .expect("delete_all_devices");
    assert_eq!(deleted, 1);
    assert!(device_ids(&*store, "alice").await.is_empty());
    assert_eq!(
        store
            .find_token_owner("token-B")
            .await
            .expect("find_token_owner"),
        None
    );

    assert_eq!(device_ids(&*store, "bob").await, vec!["A"]);
    assert!(
        store
            .find_token_owner("token-bob")
            .await
            .expect("find_token_owner")
            .is_some()
    );
}

async fn list_devices_orders_by_device_id(store: Arc<dyn Store>) {
    store
        .create_account(account("alice", None))
        .await
        .expect("create alice");
    for device in ["b", "B1", "a", "A"] {
        store
            .start_login(&user_id("alice"), login(device, &format!("token-{device}")))
            .await
            .expect("log in");
    }
    assert_eq!(
        device_ids(&*store, "alice").await,
        vec!["A", "B1", "a", "b"]
    );
    assert!(device_ids(&*store, "nobody").await.is_empty());
}

async fn set_password_hash_replaces_hash(store: Arc<dyn Store>) {
    store
        .create_account(account("alice", None))
        .await
        .expect("create alice");
    assert!(
        store
            .set_password_hash(&user_id("alice"), "new-hash")
            .await
            .expect("set_password_hash")
    );
    assert!(
        !store
            .set_password_hash(&user_id("nobody"), "new-hash")
            .await
            .expect("set_password_hash")
    );
    let alice = store
        .find_user(&user_id("alice"))
        .await
        .expect("find_user")
        .expect("alice exists");
    assert_eq!(alice.password_hash.as_deref(), Some("new-hash"));
}

async fn deactivate_user_removes_sessions_and_keeps_localpart(store: Arc<dyn Store>) {
    store
        .create_account(account("alice", Some(login("PHONE", "token-1"))))
        .await
        .expect("create alice");
    store
        .start_login(&user_id("alice"), login("LAPTOP", "token-2"))
        .await
        .expect("log in on a second device");
    store
        .create_account(account("bob", Some(login("PHONE", "token-bob"))))
        .await
        .expect("create bob");

    assert!(
        store
            .deactivate_user(&user_id("alice"), 9_000, false)
            .await
            .expect("deactivate")
    );

    let alice = store
        .find_user(&user_id("alice"))
        .await
        .expect("find_user")
        .expect("a deactivated account is still found");
    assert_eq!(alice.deactivated_at_ms, Some(9_000));
    assert!(device_ids(&*store, "alice").await.is_empty());
    assert_eq!(
        store
            .find_token_owner("token-1")
            .await
            .expect("find_token_owner"),
        None
    );
    assert_eq!(
        store
            .find_token_owner("token-2")
            .await
            .expect("find_token_owner"),
        None
    );

    assert!(
        store
            .localpart_exists("alice")
            .await
            .expect("localpart_exists")
    );
    assert_conflict(store.create_account(account("alice", None)).await);

    assert!(
        !store
            .deactivate_user(&user_id("alice"), 10_000, false)
            .await
            .expect("deactivate")
    );
    let alice = store
        .find_user(&user_id("alice"))
        .await
        .expect("find_user")
        .expect("alice exists");
    assert_eq!(alice.deactivated_at_ms, Some(9_000));
    assert!(
        !store
            .deactivate_user(&user_id("nobody"), 10_000, false)
            .await
            .expect("deactivate")
    );

    assert!(
        store
            .find_token_owner("token-bob")
            .await
            .expect("find_token_owner")
            .is_some()
    );
}

async fn failed_create_account_leaves_no_rows(store: Arc<dyn Store>) {
    store
        .create_account(account("alice", Some(login("PHONE", "token-1"))))
        .await
        .expect("create alice");

    // Refused by the users row: the login must not be written.
    let same_localpart = NewAccount {
        user_id: "@alice:other.example".to_owned(),
        ..account("alice", Some(login("LAPTOP", "token-2")))
    };
    assert_conflict(store.create_account(same_localpart).await);
    assert_eq!(
        store
            .find_token_owner("token-2")
            .await
            .expect("find_token_owner"),
        None
    );
    assert!(
        store
            .list_devices("@alice:other.example")
            .await
            .expect("list_devices")
            .is_empty()
    );
    assert_eq!(device_ids(&*store, "alice").await, vec!["PHONE"]);

    // Refused by the token row: the users and devices rows must not be written.
    assert_conflict(
        store
            .create_account(account("carol", Some(login("TABLET", "token-1"))))
            .await,
    );
    assert!(
        !store
            .localpart_exists("carol")
            .await
            .expect("localpart_exists")
    );
    assert_eq!(
        store.find_user(&user_id("carol")).await.expect("find_user"),
        None
    );
    assert!(device_ids(&*store, "carol").await.is_empty());
    assert_eq!(
        store
            .find_token_owner("token-1")
            .await
            .expect("find_token_owner")
            .map(|owner| owner.user_id),
        Some(user_id("alice"))
    );
    store
        .create_account(account("carol", Some(login("TABLET", "token-3"))))
        .await
        .expect("carol can still register");
}

async fn uia_session_round_trip(store: Arc<dyn Store>) {
    let session = UiaSessionRecord {
        action: "delete_devices".to_owned(),
        user_id: Some(user_id("alice")),
        ..uia_session("session-1", 61_000)
    };
    store
        .insert_uia_session(UiaSessionRecord {
            completed: vec!["ignored".to_owned()],
            ..session.clone()
        })
        .await
        .expect("insert session");
    assert_eq!(
        store
            .find_uia_session("session-1")
            .await
            .expect("find session"),
        Some(session)
    );
    assert_eq!(
        store
            .find_uia_session("unknown")
            .await
            .expect("find session"),
        None
    );
    assert_conflict(store.insert_uia_session(uia_session("session-1", 1)).await);
}

async fn complete_uia_stage_is_idempotent_and_ordered(store: Arc<dyn Store>) {
    store
        .insert_uia_session(uia_session("session-1", 61_000))
        .await
        .expect("insert session");
    store
        .insert_uia_session(uia_session("session-2", 61_000))
        .await
        .expect("insert session");

    let complete = |stage: &'static str| {
        let store = Arc::clone(&store);
        async move {
            store
                .complete_uia_stage("session-1", stage, None)
                .await
                .expect("complete stage")
                .completed
        }
    };
    assert_eq!(complete("m.login.terms").await, vec!["m.login.terms"]);
    assert_eq!(
        complete("m.login.email.identity").await,
        vec!["m.login.terms", "m.login.email.identity"]
    );
    assert_eq!(
        complete("m.login.terms").await,
        vec!["m.login.terms", "m.login.email.identity"]
    );
    assert_eq!(
        complete("m.login.dummy").await,
        vec!["m.login.terms", "m.login.email.identity", "m.login.dummy"]
    );

    let found = store
        .find_uia_session("session-1")
        .await
        .expect("find session")
        .expect("session exists");
    assert_eq!(
        found.completed,
        vec!["m.login.terms", "m.login.email.identity", "m.login.dummy"]
    );
    let other = store
        .find_uia_session("session-2")
        .await
        .expect("find session")
        .expect("session exists");
    assert!(other.completed.is_empty());

    assert!(
        store
            .complete_uia_stage("unknown", "m.login.dummy", Some("{}"))
            .await
            .expect("complete stage of unknown session")
            == UiaProgressRecord::default()
    );
    assert_eq!(
        store
            .find_uia_session("unknown")
            .await
            .expect("find session"),
        None
    );
}

async fn uia_values_are_kept_per_name(store: Arc<dyn Store>) {
    store
        .insert_uia_session(uia_session("session-1", 61_000))
        .await
        .expect("insert session");
    assert!(
        store
            .set_uia_value("session-1", "user", r#""alice""#)
            .await
            .expect("set value")
    );
    assert!(
        store
            .set_uia_value("session-1", "user", r#""bob""#)
            .await
            .expect("replace value")
    );
    assert!(
        !store
            .set_uia_value("unknown", "user", "{}")
            .await
            .expect("set value of unknown session")
    );
    let progress = store
        .complete_uia_stage("session-1", "m.login.terms", Some(r#"{"accepted":1}"#))
        .await
        .expect("complete stage with record");
    let expected: BTreeMap<String, String> = [
        ("m.login.terms".to_owned(), r#"{"accepted":1}"#.to_owned()),
        ("user".to_owned(), r#""bob""#.to_owned()),
    ]
    .into();
    assert_eq!(progress.completed, vec!["m.login.terms"]);
    assert_eq!(progress.values, expected);
    let found = store
        .find_uia_session("session-1")
        .await
        .expect("find session")
        .expect("session exists");
    assert_eq!(found.values, expected);
}

/// Stages completed concurrently on one session each keep their record (a read-modify-write
/// of one blob would lose all but one).
async fn concurrent_stage_records_are_all_kept(store: Arc<dyn Store>) {
    store
        .insert_uia_session(uia_session("session-1", 61_000))
        .await
        .expect("insert session");
    let tasks: Vec<_> = (0..RACERS)
        .map(|racer| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .complete_uia_stage("session-1", &format!("stage-{racer}"), Some("true"))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task panicked").expect("complete stage");
    }
    let found = store
        .find_uia_session("session-1")
        .await
        .expect("find session")
        .expect("session exists");
    assert_eq!(found.completed.len(), RACERS);
    assert_eq!(found.values.len(), RACERS);
}

async fn take_uia_session_succeeds_once(store: Arc<dyn Store>) {
    store
        .insert_uia_session(uia_session("session-1", 61_000))
        .await
        .expect("insert session");
    store
        .complete_uia_stage("session-1", "m.login.dummy", None)
        .await
        .expect("complete stage");

    assert!(
        store
            .take_uia_session("session-1")
            .await
            .expect("take session")
    );
    assert!(
        !store
            .take_uia_session("session-1")
            .await
            .expect("take session")
    );
    assert_eq!(
        store
            .find_uia_session("session-1")
            .await
            .expect("find session"),
        None
    );

    // The id may be reused without inheriting the old session's stages.
    store
        .insert_uia_session(uia_session("session-1", 61_000))
        .await
        .expect("insert session again");
    let found = store
        .find_uia_session("session-1")
        .await
        .expect("find session")
        .expect("session exists");
    assert!(found.completed.is_empty());
}

async fn concurrent_take_uia_session_has_one_winner(store: Arc<dyn Store>) {
    store
        .insert_uia_session(uia_session("session-1", 61_000))
        .await
        .expect("insert session");
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.take_uia_session("session-1").await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.expect("task panicked").expect("take session") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

async fn delete_expired_uia_sessions_removes_only_expired(store: Arc<dyn Store>) {
    for (hash, expires_at_ms) in [("early", 100), ("edge", 200), ("late", 300)] {
        store
            .insert_uia_session(uia_session(hash, expires_at_ms))
            .await
            .expect("insert session");
        store
            .complete_uia_stage(hash, "m.login.dummy", None)
            .await
            .expect("complete stage");
    }

    assert_eq!(
        store
            .delete_expired_uia_sessions(200)
            .await
            .expect("delete expired"),
        1
    );
    assert_eq!(
        store.find_uia_session("early").await.expect("find session"),
        None
    );
    assert!(
        store
            .find_uia_session("edge")
            .await
            .expect("find session")
            .is_some()
    );

    assert_eq!(
        store
            .delete_expired_uia_sessions(301)
            .await
            .expect("delete expired"),
        2
    );
    assert_eq!(
        store.find_uia_session("late").await.expect("find session"),
        None
    );
    assert_eq!(
        store
            .delete_expired_uia_sessions(i64::MAX)
            .await
            .expect("delete expired"),
        0
    );
}

#[tokio::test]
async fn sqlite_accepts_every_url_form() {
    let dir = tempfile::tempdir().expect("create temporary directory");
    let root = dir.path().display();
    for url in [
        format!("sqlite:{root}/colon.db"),
        format!("sqlite://{root}/slashes.db"),
        format!("{root}/bare/nested/path.db"),
    ] {
        let store = SqlStore::connect(&url, 1).await.expect("open SQLite store");
        store
            .create_account(account("alice", None))
            .await
            .expect("create alice");
    }
    for file in ["colon.db", "slashes.db", "bare/nested/path.db"] {
        assert!(dir.path().join(file).is_file(), "{file} was not created");
    }

    // Reopening an existing database keeps its data and does not rerun migrations.
    let store = SqlStore::connect(&format!("sqlite:{root}/colon.db"), 1)
        .await
        .expect("reopen SQLite store");
    assert!(
        store
            .localpart_exists("alice")
            .await
            .expect("localpart_exists")
    );
}

/// Every pooled SQLite connection is set up as before the move to `sqlx::Any`: write-ahead
/// log, foreign keys, a 5 s busy timeout and `synchronous = NORMAL`.
#[tokio::test]
async fn sqlite_connections_keep_their_set_up() {
    let dir = tempfile::tempdir().expect("create temporary directory");
    let url = format!("sqlite://{}", dir.path().join("pragmas.db").display());
    let store = SqlStore::connect(&url, 2).await.expect("open SQLite store");
    // Two connections at once, so the second is a fresh one too.
    let mut first = store.pool.acquire().await.expect("acquire");
    let mut second = store.pool.acquire().await.expect("acquire");
    for conn in [&mut first, &mut second] {
        let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut **conn)
            .await
            .expect("journal_mode");
        assert_eq!(journal_mode, "wal");
        // synchronous = 1 is NORMAL.
        for (pragma, expected) in [
            ("PRAGMA foreign_keys", 1),
            ("PRAGMA busy_timeout", 5_000),
            ("PRAGMA synchronous", 1),
        ] {
            let value: i64 = sqlx::query_scalar(pragma)
                .fetch_one(&mut **conn)
                .await
                .expect(pragma);
            assert_eq!(value, expected, "{pragma}");
        }
    }
}

/// The two backends' migrations must stay in step: a migration added to one folder only would
/// leave the other backend's schema behind.
#[test]
fn both_backends_have_the_same_migrations() {
    let names = |backend: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
            .map(|entry| {
                entry
                    .expect("read directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty(), "no SQLite migrations found");
    assert_eq!(sqlite, names("postgres"));
}

async fn rate_limit_allows_bursts_then_refuses_until_the_interval_passes(store: Arc<dyn Store>) {
    // One request per second, bursts of 3.
    for _ in 0..3 {
        assert_eq!(
            store
                .take_rate_limit("login:ip", 10_000, 1_000, 3)
                .await
                .expect("take"),
            None
        );
    }
    assert_eq!(
        store
            .peek_rate_limit("login:ip", 10_000, 1_000, 3)
            .await
            .expect("peek"),
        Some(1_000)
    );
    assert_eq!(
        store
            .take_rate_limit("login:ip", 10_000, 1_000, 3)
            .await
            .expect("take"),
        Some(1_000)
    );
    assert_eq!(
        store
            .take_rate_limit("login:ip", 10_400, 1_000, 3)
            .await
            .expect("take"),
        Some(600)
    );
    // Other keys are independent.
    assert_eq!(
        store
            .take_rate_limit("login:other", 10_400, 1_000, 3)
            .await
            .expect("take"),
        None
    );
    assert_eq!(
        store
            .peek_rate_limit("login:ip", 11_000, 1_000, 3)
            .await
            .expect("peek"),
        None
    );
    assert_eq!(
        store
            .take_rate_limit("login:ip", 11_000, 1_000, 3)
            .await
            .expect("take"),
        None
    );
    assert_eq!(
        store
            .take_rate_limit("login:ip", 11_000, 1_000, 3)
            .await
            .expect("take"),
        Some(1_000)
    );
    // Idle buckets are forgotten once full again.
    assert_eq!(
        store.delete_idle_rate_limits(20_000).await.expect("purge"),
        2
    );
    assert_eq!(
        store
            .peek_rate_limit("login:ip", 20_000, 1_000, 3)
            .await
            .expect("peek"),
        None
    );
}

async fn concurrent_rate_limit_takes_never_exceed_the_burst(store: Arc<dyn Store>) {
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(
                async move { store.take_rate_limit("register:ip", 5_000, 60_000, 4).await },
            )
        })
        .collect();
    let mut allowed = 0;
    for attempt in attempts {
        if attempt.await.expect("task").expect("take").is_none() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 4);
}

async fn rename_device_sets_and_clears_the_name(store: Arc<dyn Store>) {
    store
        .create_account(account("ned", Some(login("PHONE", "t1"))))
        .await
        .expect("create_account");
    assert!(
        store
            .rename_device(&user_id("ned"), "PHONE", Some("Ned's phone"))
            .await
            .expect("rename")
    );
    let devices = store.list_devices(&user_id("ned")).await.expect("list");
    assert_eq!(devices[0].display_name.as_deref(), Some("Ned's phone"));
    assert!(
        store
            .rename_device(&user_id("ned"), "PHONE", None)
            .await
            .expect("rename")
    );
    assert_eq!(
        store.list_devices(&user_id("ned")).await.expect("list")[0].display_name,
        None
    );
    assert!(
        !store
            .rename_device(&user_id("ned"), "NOPE", Some("x"))
            .await
            .expect("rename")
    );
    assert!(
        !store
            .rename_device(&user_id("other"), "PHONE", Some("x"))
            .await
            .expect("rename")
    );
}

async fn last_seen_updates_are_batched_and_never_go_back(store: Arc<dyn Store>) {
    store
        .create_account(account("lou", Some(login("PHONE", "t1"))))
        .await
        .expect("create_account");
    let seen = |device: &str, ts: i64, ip: Option<&str>| LastSeen {
        user_id: user_id("lou"),
        device_id: device.to_owned(),
        ts,
        ip: ip.map(str::to_owned),
    };
    store
        .update_last_seen(&[
            seen("PHONE", 5_000, Some("198.51.100.7")),
            seen("GONE", 5_000, None),
        ])
        .await
        .expect("update");
    let device = &store.list_devices(&user_id("lou")).await.expect("list")[0];
    assert_eq!(
        (device.last_seen_ts, device.last_seen_ip.as_deref()),
        (Some(5_000), Some("198.51.100.7"))
    );
    store
        .update_last_seen(&[seen("PHONE", 4_000, Some("203.0.113.1"))])
        .await
        .expect("update");
    store
        .update_last_seen(&[seen("PHONE", 6_000, None)])
        .await
        .expect("update");
    let device = &store.list_devices(&user_id("lou")).await.expect("list")[0];
    assert_eq!(
        (device.last_seen_ts, device.last_seen_ip.as_deref()),
        (Some(6_000), Some("198.51.100.7"))
    );
}
