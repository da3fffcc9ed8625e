//! Conformance tests of refresh-token rotation and spent refresh tokens on both backends.

use std::sync::Arc;

use super::{RACERS, account, login, on_postgres, on_sqlite, user_id};
use crate::store::{RefreshOutcome, Restriction, Store, TokenRotation};

conformance_suite!(
    the_previous_token_is_accepted_only_within_the_grace_of_its_first_rotation,
    older_refresh_tokens_are_spent_even_within_the_grace,
    refresh_rotation_without_grace_spends_at_once,
    spent_refresh_tokens_go_with_their_device,
    spent_refresh_tokens_are_forgotten_after_their_memory,
    a_locked_session_does_not_rotate_but_its_spent_tokens_are_still_told,
    concurrent_refresh_has_one_winner,
);

/// When spent refresh tokens are forgotten in these tests.
const FORGET_AT_MS: i64 = 100_000;

/// A rotation at `now_ms` to `access`/`refresh`, keeping the presented token for `grace_ms`.
fn rotation(access: &str, refresh: &str, now_ms: i64, grace_ms: Option<i64>) -> TokenRotation {
    TokenRotation {
        access_token_hash: access.to_owned(),
        refresh_token_hash: refresh.to_owned(),
        expires_at_ms: Some(now_ms + 50_000),
        grace_until_ms: grace_ms.map(|grace| now_ms + grace),
        forget_spent_at_ms: FORGET_AT_MS,
        now_ms,
    }
}

/// Rotates `presented` in a unit of work of its own.
async fn rotate(store: &dyn Store, presented: &str, rotation: TokenRotation) -> RefreshOutcome {
    let mut tx = store.begin().await.expect("begin");
    let outcome = tx
        .rotate_refresh_token(presented, rotation)
        .await
        .expect("rotate");
    tx.commit().await.expect("commit");
    outcome
}

/// Rita, with device PHONE holding `access-1` and `refresh-1`.
async fn account_with_refresh(store: &dyn Store) {
    let mut first = login("PHONE", "access-1");
    first.refresh_token_hash = Some("refresh-1".to_owned());
    store
        .create_account(account("rita", Some(first)))
        .await
        .expect("create_account");
}

fn rotated() -> RefreshOutcome {
    RefreshOutcome::Rotated {
        user_id: user_id("rita"),
        device_id: "PHONE".to_owned(),
    }
}

fn spent() -> RefreshOutcome {
    RefreshOutcome::Spent {
        user_id: user_id("rita"),
        device_id: "PHONE".to_owned(),
    }
}

async fn works(store: &dyn Store, access: &str) -> bool {
    store
        .find_token_owner(access)
        .await
        .expect("find")
        .is_some()
}

async fn the_previous_token_is_accepted_only_within_the_grace_of_its_first_rotation(
    store: Arc<dyn Store>,
) {
    let store = &*store;
    account_with_refresh(store).await;
    // Rotated at 2 000 with a grace of 500 ms: refresh-1 is accepted again until 2 500.
    let first = rotate(
        store,
        "refresh-1",
        rotation("access-2", "refresh-2", 2_000, Some(500)),
    );
    assert_eq!(first.await, rotated());
    assert!(!works(store, "access-1").await);
    let owner = store.find_token_owner("access-2").await.expect("find");
    assert_eq!(owner.expect("new token works").expires_at_ms, Some(52_000));

    // The response was lost: the retry, within the grace, rotates again (whether or not the
    // new access token was used), and spends refresh-2.
    let retry = rotate(
        store,
        "refresh-1",
        rotation("access-3", "refresh-3", 2_400, Some(500)),
    );
    assert_eq!(retry.await, rotated());
    assert!(!works(store, "access-2").await);
    let reuse = rotate(store, "refresh-2", rotation("a", "r", 2_450, Some(500)));
    assert_eq!(reuse.await, spent());
    assert!(
        works(store, "access-3").await,
        "a spent token changes nothing"
    );

    // The retry did not extend the grace: at 2 500 refresh-1 is spent.
    let late = rotate(store, "refresh-1", rotation("a", "r", 2_500, Some(500)));
    assert_eq!(late.await, spent());
    assert!(works(store, "access-3").await);
    // The current refresh token keeps working.
    let current = rotate(
        store,
        "refresh-3",
        rotation("access-4", "refresh-4", 2_600, None),
    );
    assert_eq!(current.await, rotated());
    assert!(works(store, "access-4").await);
}

async fn older_refresh_tokens_are_spent_even_within_the_grace(store: Arc<dyn Store>) {
    let store = &*store;
    account_with_refresh(store).await;
    let grace = Some(10_000);
    let first = rotate(
        store,
        "refresh-1",
        rotation("access-2", "refresh-2", 2_000, grace),
    );
    assert_eq!(first.await, rotated());
    let second = rotate(
        store,
        "refresh-2",
        rotation("access-3", "refresh-3", 2_100, grace),
    );
    assert_eq!(second.await, rotated());
    // refresh-1 is two rotations old: spent, although 10 s have not passed.
    let older = rotate(store, "refresh-1", rotation("a", "r", 2_200, grace));
    assert_eq!(older.await, spent());
    // refresh-2 is the one the session was rotated from, within its grace.
    let previous = rotate(
        store,
        "refresh-2",
        rotation("access-4", "refresh-4", 2_300, grace),
    );
    assert_eq!(previous.await, rotated());
    assert!(works(store, "access-4").await);
}

async fn refresh_rotation_without_grace_spends_at_once(store: Arc<dyn Store>) {
    let store = &*store;
    account_with_refresh(store).await;
    let first = rotate(
        store,
        "refresh-1",
        rotation("access-2", "refresh-2", 2_000, None),
    );
    assert_eq!(first.await, rotated());
    let again = rotate(store, "refresh-1", rotation("a", "r", 2_001, None));
    assert_eq!(again.await, spent());
    let unknown = rotate(store, "unknown", rotation("a", "r", 2_001, None));
    assert_eq!(unknown.await, RefreshOutcome::Unknown);
    assert!(works(store, "access-2").await);
}

async fn spent_refresh_tokens_go_with_their_device(store: Arc<dyn Store>) {
    let store = &*store;
    account_with_refresh(store).await;
    let mut laptop = login("LAPTOP", "laptop-access-1");
    laptop.refresh_token_hash = Some("laptop-refresh-1".to_owned());
    store
        .start_login(&user_id("rita"), laptop)
        .await
        .expect("second device");
    for (old, access, new) in [
        ("refresh-1", "access-2", "refresh-2"),
        ("laptop-refresh-1", "laptop-access-2", "laptop-refresh-2"),
    ] {
        let outcome = rotate(store, old, rotation(access, new, 2_000, None)).await;
        assert!(
            matches!(outcome, RefreshOutcome::Rotated { .. }),
            "{outcome:?}"
        );
    }

    assert!(
        store
            .delete_device(&user_id("rita"), "PHONE")
            .await
            .expect("delete device")
    );
    let forgotten = rotate(store, "refresh-1", rotation("a", "r", 2_100, None));
    assert_eq!(forgotten.await, RefreshOutcome::Unknown);
    let other = rotate(store, "laptop-refresh-1", rotation("a", "r", 2_100, None)).await;
    assert_eq!(
        other,
        RefreshOutcome::Spent {
            user_id: user_id("rita"),
            device_id: "LAPTOP".to_owned(),
        }
    );
}

async fn spent_refresh_tokens_are_forgotten_after_their_memory(store: Arc<dyn Store>) {
    let store = &*store;
    account_with_refresh(store).await;
    let first = rotate(
        store,
        "refresh-1",
        rotation("access-2", "refresh-2", 2_000, None),
    );
    assert_eq!(first.await, rotated());
    let remembered = rotate(
        store,
        "refresh-1",
        rotation("a", "r", FORGET_AT_MS - 1, None),
    );
    assert_eq!(remembered.await, spent());
    // Past its memory, a spent token is unknown, before and after the purge.
    let past = rotate(store, "refresh-1", rotation("a", "r", FORGET_AT_MS, None));
    assert_eq!(past.await, RefreshOutcome::Unknown);
    let purge = |now_ms| store.delete_expired_grants(now_ms);
    assert_eq!(purge(FORGET_AT_MS - 1).await.expect("purge"), 0);
    assert_eq!(purge(FORGET_AT_MS).await.expect("purge"), 1);
    let purged = rotate(
        store,
        "refresh-1",
        rotation("a", "r", FORGET_AT_MS - 1, None),
    );
    assert_eq!(purged.await, RefreshOutcome::Unknown);
    assert!(works(store, "access-2").await);
}

async fn a_locked_session_does_not_rotate_but_its_spent_tokens_are_still_told(
    store: Arc<dyn Store>,
) {
    let store = &*store;
    account_with_refresh(store).await;
    let first = rotate(
        store,
        "refresh-1",
        rotation("access-2", "refresh-2", 2_000, None),
    );
    assert_eq!(first.await, rotated());
    assert!(
        store
            .set_restriction(&user_id("rita"), Restriction::Locked, true, 2_100)
            .await
            .expect("lock")
    );
    let locked = rotate(store, "refresh-2", rotation("a", "r", 2_200, None));
    assert_eq!(locked.await, RefreshOutcome::Locked);
    assert!(works(store, "access-2").await);
    let reuse = rotate(store, "refresh-1", rotation("a", "r", 2_200, None));
    assert_eq!(reuse.await, spent());
}

async fn concurrent_refresh_has_one_winner(store: Arc<dyn Store>) {
    account_with_refresh(&*store).await;
    let attempts: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let rotation = rotation(&format!("a{i}"), &format!("r{i}"), 2_000, None);
                rotate(&*store, "refresh-1", rotation).await
            })
        })
        .collect();
    let mut winners = 0;
    for attempt in attempts {
        // A loser finds the token unknown (its rotation was under way) or already spent.
        match attempt.await.expect("task") {
            RefreshOutcome::Rotated { .. } => winners += 1,
            RefreshOutcome::Unknown | RefreshOutcome::Spent { .. } => {}
            RefreshOutcome::Locked => panic!("not locked"),
        }
    }
    assert_eq!(winners, 1);
}
