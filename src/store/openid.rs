//! OpenID tokens: short-lived proofs of a user's identity for other services.

use sqlx::AnyConnection;

use super::{StoreError, StoreTx};

/// The user of an OpenID token that has not expired at `now_ms` (an active user's only).
#[tracing::instrument(skip_all, name = "db.find_openid_token")]
pub(super) async fn find_openid_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    now_ms: i64,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT t.user_id FROM openid_tokens t JOIN users u ON u.user_id = t.user_id \
         WHERE t.token_hash = $1 AND t.expires_at_ms > $2 AND u.deactivated_at_ms IS NULL",
    )
    .bind(token_hash)
    .bind(now_ms)
    .fetch_optional(conn)
    .await?)
}

impl StoreTx {
    /// Stores an OpenID token.
    #[tracing::instrument(skip_all, name = "db.insert_openid_token")]
    pub(crate) async fn insert_openid_token(
        &mut self,
        token_hash: &str,
        user_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO openid_tokens (token_hash, user_id, expires_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(expires_at_ms)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Deletes every OpenID token of a user (for example when all its sessions end); returns
    /// how many.
    #[tracing::instrument(skip_all, name = "db.delete_openid_tokens_of")]
    pub(crate) async fn delete_openid_tokens_of(
        &mut self,
        user_id: &str,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM openid_tokens WHERE user_id = $1")
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected())
    }

    /// Deletes OpenID tokens that expired at or before `now_ms`; returns how many.
    #[tracing::instrument(skip_all, name = "db.delete_expired_openid_tokens")]
    pub(crate) async fn delete_expired_openid_tokens(
        &mut self,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM openid_tokens WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected())
    }
}
