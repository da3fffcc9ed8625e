//! Sessions: opening a device session, access tokens, and single-use login tokens (refresh
//! tokens are in `refresh_tokens.rs`).

use sqlx::AnyConnection;

use super::{
    Conflict, NewLogin, NewLoginToken, StoreError, StoreTx, TokenOwner, conflict_on_unique,
};

/// Who holds the access token with this hash. (`BOOLEAN` columns are read through a `CAST`, as
/// in [`find_user`](super::accounts::find_user).)
#[tracing::instrument(skip_all, name = "db.find_token_owner")]
pub(super) async fn find_token_owner(
    conn: &mut AnyConnection,
    access_token_hash: &str,
) -> Result<Option<TokenOwner>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.user_id, t.device_id, CAST(u.is_guest AS INTEGER) AS is_guest, \
             t.expires_at_ms, \
             u.locked_at_ms IS NOT NULL AS locked, u.suspended_at_ms IS NOT NULL AS suspended \
         FROM access_tokens t JOIN users u ON u.user_id = t.user_id \
         WHERE t.token_hash = $1",
    )
    .bind(access_token_hash)
    .fetch_optional(conn)
    .await?)
}

/// A login token as deleted.
#[derive(sqlx::FromRow)]
struct LoginTokenRow {
    user_id: String,
    expires_at_ms: i64,
}

impl StoreTx {
    /// Opens a device session: creates the device if the user has none with that ID (else keeps
    /// it, with its name, and updates its last-seen), deletes every token the device held
    /// before, and stores the new access token ([`Conflict::TokenHashInUse`] if its hash, or its
    /// refresh token's, is taken).
    #[tracing::instrument(skip_all, name = "db.start_login")]
    pub(crate) async fn start_login(
        &mut self,
        user_id: &str,
        login: NewLogin,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO devices \
                 (user_id, device_id, display_name, created_at_ms, last_seen_ts, last_seen_ip) \
             VALUES ($1, $2, $3, $4, $4, $5) \
             ON CONFLICT (user_id, device_id) DO UPDATE SET \
                 last_seen_ts = excluded.last_seen_ts, \
                 last_seen_ip = COALESCE(excluded.last_seen_ip, devices.last_seen_ip)",
        )
        .bind(user_id)
        .bind(&login.device_id)
        .bind(login.display_name)
        .bind(login.now_ms)
        .bind(login.ip)
        .execute(self.conn())
        .await?;

        sqlx::query("DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2")
            .bind(user_id)
            .bind(&login.device_id)
            .execute(self.conn())
            .await?;

        sqlx::query(
            "INSERT INTO access_tokens (token_hash, user_id, device_id, created_at_ms, \
                 expires_at_ms, refresh_token_hash) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(login.access_token_hash)
        .bind(user_id)
        .bind(login.device_id)
        .bind(login.now_ms)
        .bind(login.expires_at_ms)
        .bind(login.refresh_token_hash)
        .execute(self.conn())
        .await
        .map_err(conflict_on_unique(Conflict::TokenHashInUse))?;
        Ok(())
    }

    /// Stores a single-use login token.
    #[tracing::instrument(skip_all, name = "db.insert_login_token")]
    pub(crate) async fn insert_login_token(
        &mut self,
        token: NewLoginToken,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_tokens (token_hash, user_id, expires_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(token.token_hash)
        .bind(token.user_id)
        .bind(token.expires_at_ms)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Deletes the login token and returns its user if it had not expired at `now_ms`: of
    /// two concurrent uses, only one gets the user.
    #[tracing::instrument(skip_all, name = "db.take_login_token")]
    pub(crate) async fn take_login_token(
        &mut self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<LoginTokenRow> = sqlx::query_as(
            "DELETE FROM login_tokens WHERE token_hash = $1 RETURNING user_id, expires_at_ms",
        )
        .bind(token_hash)
        .fetch_optional(self.conn())
        .await?;
        Ok(row
            .filter(|token| token.expires_at_ms > now_ms)
            .map(|token| token.user_id))
    }

    /// Deletes every login token of a user (for example when all its sessions end); returns
    /// how many.
    #[tracing::instrument(skip_all, name = "db.delete_login_tokens_of")]
    pub(crate) async fn delete_login_tokens_of(
        &mut self,
        user_id: &str,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM login_tokens WHERE user_id = $1")
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected())
    }

    /// Deletes login tokens that expired at or before `now_ms`; returns how many.
    #[tracing::instrument(skip_all, name = "db.delete_expired_login_tokens")]
    pub(crate) async fn delete_expired_login_tokens(
        &mut self,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM login_tokens WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected())
    }
}
