//! Conformance tests of the unit of work ([`StoreTx`](crate::store::StoreTx)) on both backends:
//! its writes become visible together on commit, and not at all when it is dropped.

use std::sync::Arc;

use serde_json::json;

use super::{account, login, on_postgres, on_sqlite, user_id};
use crate::store::{
    Conflict, NewLoginToken, NewThreepid, ProfileWrite, Store, StoreError, StoreTx,
};

conformance_suite!(
    a_dropped_unit_of_work_leaves_nothing,
    a_committed_unit_of_work_keeps_all_of_it,
    a_conflict_inside_a_unit_of_work_then_drop_leaves_nothing,
    every_session_of_a_user_ends_in_one_unit_of_work,
);

/// Writes, in `tx`, an account for `bob` with a device session, a login token, an OpenID token,
/// a profile field and an address; checks that `tx` sees its own writes.
async fn write_bob(tx: &mut StoreTx) {
    tx.create_account(account("bob", Some(login("PHONE", "bob-access"))))
        .await
        .unwrap();
    tx.insert_login_token(NewLoginToken {
        token_hash: "bob-login".to_owned(),
        user_id: user_id("bob"),
        expires_at_ms: 10_000,
    })
    .await
    .unwrap();
    tx.insert_openid_token("bob-openid", &user_id("bob"), 10_000)
        .await
        .unwrap();
    assert_eq!(
        tx.set_profile_field(&user_id("bob"), "displayname", Some(&json!("Bob")), 1_000)
            .await
            .unwrap(),
        ProfileWrite::Saved
    );
    tx.add_threepid(
        &user_id("bob"),
        NewThreepid {
            medium: "email".to_owned(),
            address: "bob@example.org".to_owned(),
            validated_at_ms: 900,
        },
        1_000,
    )
    .await
    .unwrap();
    assert!(tx.find_user(&user_id("bob")).await.unwrap().is_some());
}

/// Whether each of `write_bob`'s writes is visible through the store: account, device, access
/// token, profile, address, OpenID token. (The login token is checked by the callers, since
/// looking at it takes it.)
async fn bob_is_there(store: &dyn Store) -> [bool; 6] {
    [
        store.find_user(&user_id("bob")).await.unwrap().is_some(),
        !store
            .list_devices(&user_id("bob"))
            .await
            .unwrap()
            .is_empty(),
        store
            .find_token_owner("bob-access")
            .await
            .unwrap()
            .is_some(),
        store.profile(&user_id("bob")).await.unwrap().is_some(),
        store
            .threepid_owner("email", "bob@example.org")
            .await
            .unwrap()
            .is_some(),
        store
            .find_openid_token("bob-openid", 2_000)
            .await
            .unwrap()
            .is_some(),
    ]
}

async fn a_dropped_unit_of_work_leaves_nothing(store: Arc<dyn Store>) {
    let mut tx = store.begin().await.unwrap();
    write_bob(&mut tx).await;
    drop(tx);

    assert_eq!(bob_is_there(&*store).await, [false; 6]);
    assert_eq!(
        store.take_login_token("bob-login", 2_000).await.unwrap(),
        None
    );
    assert!(!store.localpart_exists("bob").await.unwrap());
}

async fn a_committed_unit_of_work_keeps_all_of_it(store: Arc<dyn Store>) {
    let mut tx = store.begin().await.unwrap();
    write_bob(&mut tx).await;
    // Until the commit, nobody else sees any of it.
    assert_eq!(bob_is_there(&*store).await, [false; 6]);
    tx.commit().await.unwrap();

    assert_eq!(bob_is_there(&*store).await, [true; 6]);
    assert_eq!(
        store.take_login_token("bob-login", 2_000).await.unwrap(),
        Some(user_id("bob"))
    );
    assert_eq!(
        store.profile(&user_id("bob")).await.unwrap(),
        Some(json!({ "displayname": "Bob" }).as_object().unwrap().clone())
    );
}

async fn a_conflict_inside_a_unit_of_work_then_drop_leaves_nothing(store: Arc<dyn Store>) {
    store.create_account(account("alice", None)).await.unwrap();

    let mut tx = store.begin().await.unwrap();
    write_bob(&mut tx).await;
    assert!(matches!(
        tx.create_account(account("alice", None)).await,
        Err(StoreError::Conflict(Conflict::UserIdTaken))
    ));
    drop(tx);

    assert_eq!(bob_is_there(&*store).await, [false; 6]);
    assert_eq!(
        store.take_login_token("bob-login", 2_000).await.unwrap(),
        None
    );
    // What was there before the unit of work is untouched.
    assert!(store.find_user(&user_id("alice")).await.unwrap().is_some());
    // And the store goes on working: bob can be written now.
    let mut tx = store.begin().await.unwrap();
    write_bob(&mut tx).await;
    tx.commit().await.unwrap();
    assert_eq!(bob_is_there(&*store).await, [true; 6]);
}

/// A password change that ends every other session, as one use case: the new hash, every
/// device but the current one (with their tokens), the login tokens and the OpenID tokens go
/// together.
async fn every_session_of_a_user_ends_in_one_unit_of_work(store: Arc<dyn Store>) {
    let mut tx = store.begin().await.unwrap();
    write_bob(&mut tx).await;
    tx.start_login(&user_id("bob"), login("LAPTOP", "bob-laptop"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.create_account(account("carol", None)).await.unwrap();
    store
        .insert_openid_token("carol-openid", &user_id("carol"), 10_000)
        .await
        .unwrap();

    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.set_password_hash(&user_id("bob"), "new-hash")
            .await
            .unwrap()
    );
    assert_eq!(
        tx.delete_all_devices(&user_id("bob"), Some("LAPTOP"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(tx.delete_login_tokens_of(&user_id("bob")).await.unwrap(), 1);
    assert_eq!(
        tx.delete_openid_tokens_of(&user_id("bob")).await.unwrap(),
        1
    );
    // Nothing of it shows before the commit.
    assert!(
        store
            .find_token_owner("bob-access")
            .await
            .unwrap()
            .is_some()
    );
    tx.commit().await.unwrap();

    let bob = store.find_user(&user_id("bob")).await.unwrap().unwrap();
    assert_eq!(bob.password_hash.as_deref(), Some("new-hash"));
    assert_eq!(store.find_token_owner("bob-access").await.unwrap(), None);
    assert!(
        store
            .find_token_owner("bob-laptop")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.take_login_token("bob-login", 2_000).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_openid_token("bob-openid", 2_000).await.unwrap(),
        None
    );
    // Another user's tokens are not touched.
    assert_eq!(
        store
            .find_openid_token("carol-openid", 2_000)
            .await
            .unwrap(),
        Some(user_id("carol"))
    );
}
