//! The one-call methods of [`Store`], [`LifecycleStore`] and [`ThreepidStore`] on [`SqlStore`].
//! No SQL here: every statement is in a [`StoreTx`] method or a read function.
//!
//! - A write of several statements that must be atomic is one unit of work: begin, the
//!   [`StoreTx`] method(s), commit.
//! - A write of one statement (or of statements that need not be atomic together) runs the same
//!   [`StoreTx`] method on an autocommit connection ([`SqlStore::autocommit`]), so SQLite's
//!   write lock is never held while the task waits.
//! - A read runs on a pooled connection (or, for a UIA session, in a read snapshot).

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{
    BindingRecord, DeviceRecord, DueEmail, GuestUpgrade, LastSeen, LifecycleStore, NewAccount,
    NewLogin, NewLoginToken, NewThreepid, NewValidationSession, ProfileWrite,
    RegistrationTokenRecord, Restriction, SqlStore, Store, StoreError, StoreTx, ThreepidRecord,
    ThreepidStore, TokenCheck, TokenOwner, UiaProgressRecord, UiaSessionRecord, UserRecord,
    ValidationSessionRecord, ValidationStart, accounts, addresses, devices, openid, profiles,
    rate_limits, registration_tokens, sessions, uia, validations,
};

#[async_trait]
impl Store for SqlStore {
    async fn begin(&self) -> Result<StoreTx, StoreError> {
        self.begin_write().await
    }

    async fn create_account(&self, account: NewAccount) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        tx.create_account(account).await?;
        tx.commit().await
    }

    async fn localpart_exists(&self, localpart: &str) -> Result<bool, StoreError> {
        let mut conn = self.read().await?;
        accounts::localpart_exists(&mut conn, localpart).await
    }

    async fn find_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        let mut conn = self.read().await?;
        accounts::find_user(&mut conn, user_id).await
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.set_password_hash(user_id, password_hash).await
    }

    async fn deactivate_user(
        &self,
        user_id: &str,
        now_ms: i64,
        erase: bool,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let deactivated = tx.deactivate_user(user_id, now_ms, erase).await?;
        tx.commit().await?;
        Ok(deactivated)
    }

    async fn start_login(&self, user_id: &str, login: NewLogin) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        tx.start_login(user_id, login).await?;
        tx.commit().await
    }

    async fn find_token_owner(
        &self,
        access_token_hash: &str,
    ) -> Result<Option<TokenOwner>, StoreError> {
        let mut conn = self.read().await?;
        sessions::find_token_owner(&mut conn, access_token_hash).await
    }

    async fn delete_device(&self, user_id: &str, device_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.delete_device(user_id, device_id).await
    }

    async fn delete_all_devices(
        &self,
        user_id: &str,
        keep_device_id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut conn = self.autocommit().await?;
        let deleted = conn.delete_all_devices(user_id, keep_device_id).await?;
        Ok(u64::try_from(deleted.len()).unwrap_or(u64::MAX))
    }

    async fn rename_device(
        &self,
        user_id: &str,
        device_id: &str,
        display_name: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.rename_device(user_id, device_id, display_name).await
    }

    async fn update_last_seen(&self, updates: &[LastSeen]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for seen in updates {
            tx.record_last_seen(seen).await?;
        }
        tx.commit().await
    }

    async fn list_devices(&self, user_id: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        let mut conn = self.read().await?;
        devices::list_devices(&mut conn, self.dialect, user_id).await
    }

    async fn insert_uia_session(&self, session: UiaSessionRecord) -> Result<(), StoreError> {
        let mut conn = self.autocommit().await?;
        conn.insert_uia_session(session).await
    }

    async fn find_uia_session(
        &self,
        session_hash: &str,
    ) -> Result<Option<UiaSessionRecord>, StoreError> {
        let mut snapshot = self.begin_read_snapshot().await?;
        let session = uia::find_uia_session(&mut snapshot, self.dialect, session_hash).await?;
        snapshot.commit().await?;
        Ok(session)
    }

    async fn complete_uia_stage(
        &self,
        session_hash: &str,
        stage: &str,
        record: Option<&str>,
    ) -> Result<UiaProgressRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let progress = tx.complete_uia_stage(session_hash, stage, record).await?;
        tx.commit().await?;
        Ok(progress)
    }

    async fn set_uia_value(
        &self,
        session_hash: &str,
        name: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let set = tx.set_uia_value(session_hash, name, value).await?;
        tx.commit().await?;
        Ok(set)
    }

    async fn take_uia_session(&self, session_hash: &str) -> Result<bool, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.take_uia_session(session_hash).await
    }

    async fn delete_expired_uia_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.delete_expired_uia_sessions(now_ms).await
    }

    async fn take_rate_limit(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.take_rate_limit(key, now_ms, interval_ms, burst).await
    }

    async fn peek_rate_limit(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut conn = self.read().await?;
        rate_limits::peek_rate_limit(&mut conn, key, now_ms, interval_ms, burst).await
    }

    async fn delete_idle_rate_limits(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.delete_idle_rate_limits(now_ms).await
    }
}

#[async_trait]
impl LifecycleStore for SqlStore {
    async fn insert_login_token(&self, token: NewLoginToken) -> Result<(), StoreError> {
        let mut conn = self.autocommit().await?;
        conn.insert_login_token(token).await
    }

    async fn take_login_token(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.take_login_token(token_hash, now_ms).await
    }

    async fn delete_expired_grants(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self.autocommit().await?;
        // Independent purges, each statement on its own.
        Ok(conn.delete_expired_login_tokens(now_ms).await?
            + conn.delete_lapsed_reservations(now_ms).await?
            + conn.delete_expired_validations(now_ms).await?
            + conn.delete_expired_openid_tokens(now_ms).await?
            + conn.delete_forgotten_spent_refresh_tokens(now_ms).await?)
    }

    async fn create_registration_token(
        &self,
        token: RegistrationTokenRecord,
    ) -> Result<(), StoreError> {
        let mut conn = self.autocommit().await?;
        conn.create_registration_token(token).await
    }

    async fn list_registration_tokens(
        &self,
        now_ms: i64,
    ) -> Result<Vec<RegistrationTokenRecord>, StoreError> {
        let mut conn = self.read().await?;
        registration_tokens::list_registration_tokens(&mut conn, now_ms).await
    }

    async fn find_registration_token(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<Option<RegistrationTokenRecord>, StoreError> {
        let mut conn = self.read().await?;
        registration_tokens::find_registration_token(&mut conn, token, now_ms).await
    }

    async fn delete_registration_token(&self, token: &str) -> Result<bool, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.delete_registration_token(token).await
    }

    async fn reserve_registration_token(
        &self,
        token: &str,
        session_hash: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let reserved = tx
            .reserve_registration_token(token, session_hash, now_ms, until_ms)
            .await?;
        tx.commit().await?;
        Ok(reserved)
    }

    async fn release_registration_token(&self, session_hash: &str) -> Result<(), StoreError> {
        let mut conn = self.autocommit().await?;
        conn.release_registration_token(session_hash).await
    }

    async fn profile(&self, user_id: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        let mut conn = self.read().await?;
        profiles::profile(&mut conn, user_id).await
    }

    async fn set_profile_field(
        &self,
        user_id: &str,
        field: &str,
        value: Option<&Value>,
        max_profile_bytes: usize,
    ) -> Result<ProfileWrite, StoreError> {
        let mut tx = self.begin_write().await?;
        let written = tx
            .set_profile_field(user_id, field, value, max_profile_bytes)
            .await?;
        tx.commit().await?;
        Ok(written)
    }

    #[cfg(test)]
    async fn accepted_terms(&self, user_id: &str) -> Result<Vec<super::AcceptedTerms>, StoreError> {
        let mut conn = self.read().await?;
        profiles::accepted_terms(&mut conn, user_id).await
    }

    async fn set_restriction(
        &self,
        user_id: &str,
        restriction: Restriction,
        active: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.set_restriction(user_id, restriction, active, now_ms)
            .await
    }

    async fn set_admin(&self, user_id: &str, admin: bool) -> Result<bool, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.set_admin(user_id, admin).await
    }

    async fn upgrade_guest(&self, upgrade: GuestUpgrade) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let upgraded = tx.upgrade_guest(upgrade).await?;
        tx.commit().await?;
        Ok(upgraded)
    }
}

#[async_trait]
impl ThreepidStore for SqlStore {
    async fn start_validation(
        &self,
        session: NewValidationSession,
    ) -> Result<ValidationStart, StoreError> {
        let mut tx = self.begin_write().await?;
        let start = tx.start_validation(session).await?;
        tx.commit().await?;
        Ok(start)
    }

    async fn delete_validation(&self, sid: &str) -> Result<(), StoreError> {
        let mut conn = self.autocommit().await?;
        conn.delete_validation(sid).await
    }

    async fn find_validation(
        &self,
        sid: &str,
    ) -> Result<Option<ValidationSessionRecord>, StoreError> {
        let mut conn = self.read().await?;
        validations::find_validation(&mut conn, sid).await
    }

    async fn check_validation_token(
        &self,
        sid: &str,
        client_secret: &str,
        token_hash: &str,
        now_ms: i64,
        max_failures: i64,
    ) -> Result<TokenCheck, StoreError> {
        let mut tx = self.begin_write().await?;
        let check = tx
            .check_validation_token(sid, client_secret, token_hash, now_ms, max_failures)
            .await?;
        tx.commit().await?;
        Ok(check)
    }

    async fn claim_due_emails(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<DueEmail>, StoreError> {
        let mut tx = self.begin_write().await?;
        let claimed = tx.claim_due_emails(now_ms, lease_until_ms, limit).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn email_sent(&self, id: i64) -> Result<(), StoreError> {
        let mut conn = self.autocommit().await?;
        conn.email_sent(id).await
    }

    async fn email_deferred(&self, id: i64, next_attempt_at_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.autocommit().await?;
        conn.email_deferred(id, next_attempt_at_ms).await
    }

    async fn email_refused(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        tx.email_refused(id, now_ms).await?;
        tx.commit().await
    }

    async fn user_threepids(&self, user_id: &str) -> Result<Vec<ThreepidRecord>, StoreError> {
        let mut conn = self.read().await?;
        addresses::user_threepids(&mut conn, user_id).await
    }

    async fn threepid_owner(
        &self,
        medium: &str,
        address: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.read().await?;
        addresses::threepid_owner(&mut conn, medium, address).await
    }

    async fn add_threepid(
        &self,
        user_id: &str,
        threepid: NewThreepid,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.autocommit().await?;
        conn.add_threepid(user_id, threepid, now_ms).await
    }

    async fn remove_threepid(
        &self,
        user_id: &str,
        medium: &str,
        address: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.remove_threepid(user_id, medium, address).await
    }

    async fn add_binding(&self, user_id: &str, binding: BindingRecord) -> Result<(), StoreError> {
        let mut conn = self.autocommit().await?;
        conn.add_binding(user_id, binding).await
    }

    async fn bindings(&self, user_id: &str) -> Result<Vec<BindingRecord>, StoreError> {
        let mut conn = self.read().await?;
        addresses::bindings(&mut conn, user_id).await
    }

    async fn remove_binding(
        &self,
        user_id: &str,
        medium: &str,
        address: &str,
        id_server: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.autocommit().await?;
        conn.remove_binding(user_id, medium, address, id_server)
            .await
    }

    async fn insert_openid_token(
        &self,
        token_hash: &str,
        user_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.autocommit().await?;
        conn.insert_openid_token(token_hash, user_id, expires_at_ms)
            .await
    }

    async fn find_openid_token(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.read().await?;
        openid::find_openid_token(&mut conn, token_hash, now_ms).await
    }
}
