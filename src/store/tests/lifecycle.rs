//! Conformance tests of [`LifecycleStore`](crate::store::LifecycleStore) on both backends.

use std::sync::Arc;

use serde_json::json;

use super::{RACERS, account, login, on_postgres, on_sqlite, user_id};
use crate::store::{
    AcceptedTerms, GuestUpgrade, NewAccount, NewLoginToken, NewThreepid, ProfileWrite,
    RegistrationExtras, RegistrationTokenRecord, Restriction, Store,
};

conformance_suite!(
    login_token_works_once_and_not_after_expiry,
    registration_token_allowance_counts_reservations_and_completions,
    concurrent_reservations_never_exceed_the_allowance,
    revoked_or_expired_registration_tokens_cannot_be_reserved,
    registration_extras_are_written_with_the_account,
    profile_fields_round_trip_within_the_size_limit,
    deactivation_hides_the_profile_with_or_without_erase,
    lock_and_suspension_reach_user_and_token_owner,
    guest_upgrade_happens_once,
);

fn registration_token(token: &str, uses_allowed: Option<i64>) -> RegistrationTokenRecord {
    RegistrationTokenRecord {
        token: token.to_owned(),
        uses_allowed,
        completed: 0,
        pending: 0,
        expires_at_ms: Some(100_000),
        created_at_ms: 1_000,
    }
}

async fn login_token_works_once_and_not_after_expiry(store: Arc<dyn Store>) {
    store.create_account(account("alice", None)).await.unwrap();
    for (hash, expires_at_ms) in [("once", 5_000), ("stale", 2_000)] {
        store
            .insert_login_token(NewLoginToken {
                token_hash: hash.to_owned(),
                user_id: user_id("alice"),
                expires_at_ms,
            })
            .await
            .unwrap();
    }
    assert_eq!(
        store.take_login_token("once", 3_000).await.unwrap(),
        Some(user_id("alice"))
    );
    assert_eq!(store.take_login_token("once", 3_000).await.unwrap(), None);
    assert_eq!(store.take_login_token("stale", 3_000).await.unwrap(), None);
    assert_eq!(
        store.take_login_token("unknown", 3_000).await.unwrap(),
        None
    );
}

async fn registration_token_allowance_counts_reservations_and_completions(store: Arc<dyn Store>) {
    store
        .create_registration_token(registration_token("invite", Some(2)))
        .await
        .unwrap();
    assert!(
        store
            .reserve_registration_token("invite", "s1", 2_000, 10_000)
            .await
            .unwrap()
    );
    // The same session keeps its reservation instead of taking a second use.
    assert!(
        store
            .reserve_registration_token("invite", "s1", 2_000, 10_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .reserve_registration_token("invite", "s2", 2_000, 10_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .reserve_registration_token("invite", "s3", 2_000, 10_000)
            .await
            .unwrap()
    );
    let record = store
        .find_registration_token("invite", 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((record.pending, record.completed), (2, 0));

    // s1 registers: its use is completed; s2 gives its reservation back.
    let mut alice = account("alice", None);
    alice.extras.registration_token = Some(("invite".to_owned(), "s1".to_owned()));
    store.create_account(alice).await.unwrap();
    store.release_registration_token("s2").await.unwrap();
    let record = store
        .find_registration_token("invite", 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((record.pending, record.completed), (0, 1));

    // A reservation lapses with its session.
    assert!(
        store
            .reserve_registration_token("invite", "s4", 2_000, 3_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .reserve_registration_token("invite", "s5", 2_500, 10_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .reserve_registration_token("invite", "s5", 3_000, 10_000)
            .await
            .unwrap()
    );
    assert_eq!(store.delete_expired_grants(20_000).await.unwrap(), 2);
}

async fn concurrent_reservations_never_exceed_the_allowance(store: Arc<dyn Store>) {
    store
        .create_registration_token(registration_token("few", Some(3)))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .reserve_registration_token("few", &format!("session{i}"), 2_000, 10_000)
                    .await
                    .expect("reserve")
            })
        })
        .collect();
    let mut reserved = 0;
    for task in tasks {
        if task.await.expect("task panicked") {
            reserved += 1;
        }
    }
    assert_eq!(reserved, 3);
}

async fn revoked_or_expired_registration_tokens_cannot_be_reserved(store: Arc<dyn Store>) {
    store
        .create_registration_token(registration_token("short", None))
        .await
        .unwrap();
    assert!(
        store
            .create_registration_token(registration_token("short", None))
            .await
            .is_err()
    );
    assert!(
        !store
            .reserve_registration_token("short", "s1", 100_000, 200_000)
            .await
            .unwrap()
    );
    assert!(store.delete_registration_token("short").await.unwrap());
    assert!(!store.delete_registration_token("short").await.unwrap());
    assert!(
        !store
            .reserve_registration_token("short", "s1", 2_000, 10_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .list_registration_tokens(2_000)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn registration_extras_are_written_with_the_account(store: Arc<dyn Store>) {
    let mut alice = account("alice", None);
    alice.extras = RegistrationExtras {
        displayname: Some("alice".to_owned()),
        accepted_terms: vec![AcceptedTerms {
            policy: "privacy_policy".to_owned(),
            version: "1.0".to_owned(),
        }],
        registration_token: None,
        threepids: vec![NewThreepid {
            medium: "email".to_owned(),
            address: "alice@example.org".to_owned(),
            validated_at_ms: 900,
        }],
    };
    store.create_account(alice).await.unwrap();
    assert_eq!(
        store
            .threepid_owner("email", "alice@example.org")
            .await
            .unwrap(),
        Some(user_id("alice"))
    );
    // A second account with the same address is refused, and nothing of it is written.
    let mut bob = account("bob", None);
    bob.extras.threepids = vec![NewThreepid {
        medium: "email".to_owned(),
        address: "alice@example.org".to_owned(),
        validated_at_ms: 900,
    }];
    assert!(matches!(
        store.create_account(bob).await,
        Err(crate::store::StoreError::Conflict(
            crate::store::Conflict::ThreepidInUse
        ))
    ));
    assert!(!store.localpart_exists("bob").await.unwrap());
    assert_eq!(
        store.profile(&user_id("alice")).await.unwrap(),
        Some(
            json!({ "displayname": "alice" })
                .as_object()
                .unwrap()
                .clone()
        )
    );
    assert_eq!(
        store.accepted_terms(&user_id("alice")).await.unwrap(),
        vec![AcceptedTerms {
            policy: "privacy_policy".to_owned(),
            version: "1.0".to_owned(),
        }]
    );
}

async fn profile_fields_round_trip_within_the_size_limit(store: Arc<dyn Store>) {
    store.create_account(account("alice", None)).await.unwrap();
    let alice = user_id("alice");
    let set = |field: &'static str, value: serde_json::Value| {
        let store = Arc::clone(&store);
        let alice = alice.clone();
        async move {
            store
                .set_profile_field(&alice, field, Some(&value), 100)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        set("displayname", json!("Alice")).await,
        ProfileWrite::Saved
    );
    assert_eq!(
        set("org.example.n", json!([1, 2])).await,
        ProfileWrite::Saved
    );
    assert_eq!(
        set("displayname", json!("Alice L.")).await,
        ProfileWrite::Saved
    );
    assert_eq!(
        set("org.example.big", json!("x".repeat(80))).await,
        ProfileWrite::TooLarge
    );
    assert_eq!(
        store.profile(&alice).await.unwrap(),
        Some(
            json!({ "displayname": "Alice L.", "org.example.n": [1, 2] })
                .as_object()
                .unwrap()
                .clone()
        )
    );
    assert_eq!(
        store
            .set_profile_field(&alice, "org.example.n", None, 100)
            .await
            .unwrap(),
        ProfileWrite::Saved
    );
    assert_eq!(store.profile(&alice).await.unwrap().unwrap().len(), 1);
    assert_eq!(
        store
            .set_profile_field(&user_id("nobody"), "displayname", Some(&json!("x")), 100)
            .await
            .unwrap(),
        ProfileWrite::NoSuchUser
    );
    assert_eq!(store.profile(&user_id("nobody")).await.unwrap(), None);
}

async fn deactivation_hides_the_profile_with_or_without_erase(store: Arc<dyn Store>) {
    for localpart in ["kept", "erased"] {
        store
            .create_account(account(localpart, None))
            .await
            .unwrap();
        store
            .set_profile_field(&user_id(localpart), "displayname", Some(&json!("x")), 1_000)
            .await
            .unwrap();
    }
    store
        .deactivate_user(&user_id("kept"), 2_000, false)
        .await
        .unwrap();
    store
        .deactivate_user(&user_id("erased"), 2_000, true)
        .await
        .unwrap();
    assert_eq!(store.profile(&user_id("kept")).await.unwrap(), None);
    assert_eq!(store.profile(&user_id("erased")).await.unwrap(), None);
    // Neither can be written either. (What `erase` deletes is checked against the database
    // in the API test `a_deactivated_account_has_no_profile_and_erase_deletes_it`.)
    assert_eq!(
        store
            .set_profile_field(&user_id("kept"), "displayname", Some(&json!("y")), 1_000)
            .await
            .unwrap(),
        ProfileWrite::NoSuchUser
    );
}

async fn lock_and_suspension_reach_user_and_token_owner(store: Arc<dyn Store>) {
    store
        .create_account(account("alice", Some(login("PHONE", "tok"))))
        .await
        .unwrap();
    let alice = user_id("alice");
    assert!(
        store
            .set_restriction(&alice, Restriction::Locked, true, 2_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_restriction(&alice, Restriction::Suspended, true, 2_000)
            .await
            .unwrap()
    );
    let owner = store.find_token_owner("tok").await.unwrap().unwrap();
    assert!(owner.locked && owner.suspended);
    let user = store.find_user(&alice).await.unwrap().unwrap();
    assert!(user.locked && user.suspended);
    assert!(
        store
            .set_restriction(&alice, Restriction::Locked, false, 3_000)
            .await
            .unwrap()
    );
    let owner = store.find_token_owner("tok").await.unwrap().unwrap();
    assert!(!owner.locked && owner.suspended);
    assert!(
        !store
            .set_restriction(&user_id("nobody"), Restriction::Locked, true, 3_000)
            .await
            .unwrap()
    );
    assert!(store.set_admin(&alice, true).await.unwrap());
    assert!(store.find_user(&alice).await.unwrap().unwrap().is_admin);
    assert!(store.set_admin(&alice, false).await.unwrap());
    assert!(!store.find_user(&alice).await.unwrap().unwrap().is_admin);
    assert!(!store.set_admin(&user_id("nobody"), true).await.unwrap());
}

async fn guest_upgrade_happens_once(store: Arc<dyn Store>) {
    let guest = NewAccount {
        password_hash: None,
        is_guest: true,
        ..account("1234", Some(login("GUEST", "guest-token")))
    };
    store.create_account(guest).await.unwrap();
    let upgrade = |token: &str| GuestUpgrade {
        user_id: user_id("1234"),
        password_hash: "new-hash".to_owned(),
        now_ms: 2_000,
        extras: RegistrationExtras::default(),
        login: Some(login("FULL", token)),
    };
    assert!(store.upgrade_guest(upgrade("full-token")).await.unwrap());
    assert!(!store.upgrade_guest(upgrade("second-token")).await.unwrap());
    let user = store.find_user(&user_id("1234")).await.unwrap().unwrap();
    assert!(!user.is_guest);
    assert_eq!(user.password_hash.as_deref(), Some("new-hash"));
    let owner = store.find_token_owner("full-token").await.unwrap().unwrap();
    assert!(!owner.is_guest);
    assert_eq!(store.find_token_owner("second-token").await.unwrap(), None);
}
