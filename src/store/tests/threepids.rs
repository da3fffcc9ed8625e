//! Conformance tests of [`ThreepidStore`](crate::store::ThreepidStore) on both backends.

use std::sync::Arc;

use super::{RACERS, account, on_postgres, on_sqlite, user_id};
use crate::store::{
    BindingRecord, Conflict, NewThreepid, NewValidationSession, QueuedEmail, Store, StoreError,
    TokenCheck, ValidationStart,
};

conformance_suite!(
    a_repeated_send_attempt_reuses_the_session_and_a_higher_one_resends,
    concurrent_identical_requests_start_one_session,
    tokens_are_checked_counted_and_expire,
    an_address_belongs_to_one_account,
    bindings_are_remembered_until_removed,
    openid_tokens_expire_and_die_with_the_account,
    queued_emails_are_claimed_once_and_retried_when_due,
    a_refused_email_fails_its_session_and_a_resend_replaces_it,
);

fn session(sid: &str, secret: &str, attempt: i64, token_hash: &str) -> NewValidationSession {
    NewValidationSession {
        sid: sid.to_owned(),
        client_secret: secret.to_owned(),
        medium: "email".to_owned(),
        address: "alice@example.org".to_owned(),
        purpose: "register".to_owned(),
        send_attempt: attempt,
        token_hash: token_hash.to_owned(),
        next_link: Some("https://example.org/done".to_owned()),
        now_ms: 1_000,
        expires_at_ms: 10_000,
        requester: None,
        email: Some(QueuedEmail {
            kind: "verification".to_owned(),
            recipient: "alice@example.org".to_owned(),
            code: format!("CODE{attempt}"),
        }),
    }
}

async fn queued_emails_are_claimed_once_and_retried_when_due(store: Arc<dyn Store>) {
    store
        .start_validation(session("sid1", "secret", 1, "t1"))
        .await
        .unwrap();
    // Of many instances claiming at once, one gets the email.
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.claim_due_emails(1_000, 61_000, 10).await })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.expect("task panicked").unwrap());
    }
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    let email = &claimed[0];
    assert_eq!(
        (
            email.sid.as_str(),
            email.client_secret.as_str(),
            email.code.as_str()
        ),
        ("sid1", "secret", "CODE1")
    );
    // Held by its claimer until the lease ends; deferred, it is due again later.
    assert!(
        store
            .claim_due_emails(2_000, 62_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.email_deferred(email.id, 3_000).await.unwrap();
    assert!(
        store
            .claim_due_emails(2_500, 62_500, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let retried = store.claim_due_emails(3_000, 63_000, 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 1);
    store.email_sent(retried[0].id).await.unwrap();
    assert!(
        store
            .claim_due_emails(9_000, 69_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A session with nothing to send queues nothing; an expired session's email is not sent.
    let mut silent = session("sid2", "other", 1, "t2");
    silent.email = None;
    store.start_validation(silent).await.unwrap();
    store
        .start_validation(session("sid3", "third", 1, "t3"))
        .await
        .unwrap();
    assert!(
        store
            .claim_due_emails(10_000, 70_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_refused_email_fails_its_session_and_a_resend_replaces_it(store: Arc<dyn Store>) {
    store
        .start_validation(session("sid1", "secret", 1, "t1"))
        .await
        .unwrap();
    let claimed = store.claim_due_emails(1_000, 61_000, 10).await.unwrap();
    store.email_refused(claimed[0].id, 1_500).await.unwrap();
    assert_eq!(
        store
            .check_validation_token("sid1", "secret", "t1", 2_000, 5)
            .await
            .unwrap(),
        TokenCheck::DeliveryFailed
    );
    // A higher attempt queues a new email and clears the failure.
    store
        .start_validation(session("sid9", "secret", 2, "t2"))
        .await
        .unwrap();
    let resent = store.claim_due_emails(2_000, 62_000, 10).await.unwrap();
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].code, "CODE2");
    // An old refusal arriving after the resend leaves the new attempt alone.
    store.email_refused(claimed[0].id, 2_500).await.unwrap();
    assert_eq!(
        store
            .check_validation_token("sid1", "secret", "t2", 3_000, 5)
            .await
            .unwrap(),
        TokenCheck::Validated {
            next_link: Some("https://example.org/done".to_owned())
        }
    );
}

async fn a_repeated_send_attempt_reuses_the_session_and_a_higher_one_resends(
    store: Arc<dyn Store>,
) {
    let first = store
        .start_validation(session("sid1", "secret", 1, "t1"))
        .await
        .unwrap();
    assert_eq!(
        first,
        ValidationStart::Send {
            sid: "sid1".to_owned()
        }
    );
    let again = store
        .start_validation(session("sid2", "secret", 1, "t2"))
        .await
        .unwrap();
    assert_eq!(
        again,
        ValidationStart::AlreadySent {
            sid: "sid1".to_owned()
        }
    );
    let resend = store
        .start_validation(session("sid3", "secret", 2, "t3"))
        .await
        .unwrap();
    assert_eq!(
        resend,
        ValidationStart::Send {
            sid: "sid1".to_owned()
        }
    );
    // The resend replaced the token.
    assert_eq!(
        store
            .check_validation_token("sid1", "secret", "t1", 2_000, 5)
            .await
            .unwrap(),
        TokenCheck::WrongToken
    );
    assert_eq!(
        store
            .check_validation_token("sid1", "secret", "t3", 2_000, 5)
            .await
            .unwrap(),
        TokenCheck::Validated {
            next_link: Some("https://example.org/done".to_owned())
        }
    );
    // Another secret is another session.
    let other = store
        .start_validation(session("sid4", "other", 1, "t4"))
        .await
        .unwrap();
    assert_eq!(
        other,
        ValidationStart::Send {
            sid: "sid4".to_owned()
        }
    );
    let found = store.find_validation("sid1").await.unwrap().unwrap();
    assert_eq!(found.validated_at_ms, Some(2_000));
    store.delete_validation("sid1").await.unwrap();
    assert_eq!(store.find_validation("sid1").await.unwrap(), None);
}

async fn concurrent_identical_requests_start_one_session(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .start_validation(session(&format!("sid{i}"), "secret", 1, "token"))
                    .await
            })
        })
        .collect();
    let mut sent = 0;
    for task in tasks {
        match task.await.expect("task panicked") {
            Ok(ValidationStart::Send { .. }) => sent += 1,
            Ok(ValidationStart::AlreadySent { .. }) | Err(StoreError::Conflict(_)) => {}
            Err(err) => panic!("unexpected error: {err}"),
        }
    }
    assert_eq!(sent, 1);
}

async fn tokens_are_checked_counted_and_expire(store: Arc<dyn Store>) {
    store
        .start_validation(session("sid", "secret", 1, "right"))
        .await
        .unwrap();
    let check = |secret: &'static str, token: &'static str, now: i64| {
        let store = Arc::clone(&store);
        async move {
            store
                .check_validation_token("sid", secret, token, now, 3)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        check("wrong-secret", "right", 2_000).await,
        TokenCheck::NoSession
    );
    assert_eq!(
        store
            .check_validation_token("nope", "secret", "right", 2_000, 3)
            .await
            .unwrap(),
        TokenCheck::NoSession
    );
    for _ in 0..3 {
        assert_eq!(
            check("secret", "wrong", 2_000).await,
            TokenCheck::WrongToken
        );
    }
    assert_eq!(
        check("secret", "right", 2_000).await,
        TokenCheck::TooManyAttempts
    );

    store
        .start_validation(session("sid2", "s2", 1, "right"))
        .await
        .unwrap();
    assert_eq!(
        store
            .check_validation_token("sid2", "s2", "right", 10_000, 3)
            .await
            .unwrap(),
        TokenCheck::Expired
    );
    assert_eq!(store.delete_expired_grants(10_000).await.unwrap(), 2);
}

async fn an_address_belongs_to_one_account(store: Arc<dyn Store>) {
    for localpart in ["alice", "bob"] {
        store
            .create_account(account(localpart, None))
            .await
            .unwrap();
    }
    let threepid = |validated_at_ms| NewThreepid {
        medium: "email".to_owned(),
        address: "shared@example.org".to_owned(),
        validated_at_ms,
    };
    store
        .add_threepid(&user_id("alice"), threepid(1_000), 1_500)
        .await
        .unwrap();
    // Adding it again to the same account refreshes it; to another account is a conflict.
    store
        .add_threepid(&user_id("alice"), threepid(2_000), 2_500)
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_threepid(&user_id("bob"), threepid(3_000), 3_500)
            .await,
        Err(StoreError::Conflict(Conflict::ThreepidInUse))
    ));
    let listed = store.user_threepids(&user_id("alice")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].validated_at_ms, listed[0].added_at_ms),
        (2_000, 1_500)
    );
    assert_eq!(
        store
            .threepid_owner("email", "shared@example.org")
            .await
            .unwrap(),
        Some(user_id("alice"))
    );
    assert!(
        !store
            .remove_threepid(&user_id("bob"), "email", "shared@example.org")
            .await
            .unwrap()
    );
    assert!(
        store
            .remove_threepid(&user_id("alice"), "email", "shared@example.org")
            .await
            .unwrap()
    );
    store
        .add_threepid(&user_id("bob"), threepid(4_000), 4_500)
        .await
        .unwrap();
}

async fn bindings_are_remembered_until_removed(store: Arc<dyn Store>) {
    store.create_account(account("alice", None)).await.unwrap();
    let binding = |sid: &str| BindingRecord {
        medium: "email".to_owned(),
        address: "alice@example.org".to_owned(),
        id_server: "id.example.org".to_owned(),
        sid: sid.to_owned(),
        client_secret: "secret".to_owned(),
        bound_address: "Alice@Example.org".to_owned(),
    };
    store
        .add_binding(&user_id("alice"), binding("first"))
        .await
        .unwrap();
    store
        .add_binding(&user_id("alice"), binding("second"))
        .await
        .unwrap();
    let bindings = store.bindings(&user_id("alice")).await.unwrap();
    assert_eq!(bindings, vec![binding("second")]);
    assert!(
        store
            .remove_binding(
                &user_id("alice"),
                "email",
                "alice@example.org",
                "id.example.org"
            )
            .await
            .unwrap()
    );
    assert!(store.bindings(&user_id("alice")).await.unwrap().is_empty());
}

async fn openid_tokens_expire_and_die_with_the_account(store: Arc<dyn Store>) {
    store.create_account(account("alice", None)).await.unwrap();
    store
        .insert_openid_token("hash", &user_id("alice"), 5_000)
        .await
        .unwrap();
    assert_eq!(
        store.find_openid_token("hash", 4_000).await.unwrap(),
        Some(user_id("alice"))
    );
    assert_eq!(store.find_openid_token("hash", 5_000).await.unwrap(), None);
    assert_eq!(store.find_openid_token("other", 4_000).await.unwrap(), None);
    store
        .deactivate_user(&user_id("alice"), 4_500, false)
        .await
        .unwrap();
    assert_eq!(store.find_openid_token("hash", 4_000).await.unwrap(), None);
}
