//! Refresh tokens: rotation with a short grace for the replaced token, and the spent tokens
//! remembered per device so that presenting one again can be told from an unknown token.

use super::dialect::DbBool;
use super::{Conflict, RefreshOutcome, StoreError, StoreTx, TokenRotation, conflict_on_unique};

/// The session a refresh token belongs to.
#[derive(sqlx::FromRow)]
struct RefreshSessionRow {
    token_hash: String,
    user_id: String,
    device_id: String,
    refresh_token_hash: Option<String>,
    previous_refresh_hash: Option<String>,
    previous_refresh_until_ms: Option<i64>,
    #[sqlx(try_from = "DbBool")]
    locked: bool,
}

/// The device a spent refresh token was issued to.
#[derive(sqlx::FromRow)]
struct SpentRow {
    user_id: String,
    device_id: String,
}

impl StoreTx {
    /// Exchanges a refresh token for a new token pair on the same device: the old access token
    /// is revoked, and every refresh token the session knew is remembered as spent (until
    /// `rotation.forget_spent_at_ms`). The presented hash may be the session's current refresh
    /// token or, until its grace ends, the one it was rotated from; a retry with that one keeps
    /// the grace's original end. A hash that is neither, but is remembered as spent, is
    /// [`RefreshOutcome::Spent`] and changes nothing (the caller decides what to revoke). Of two
    /// concurrent refreshes with one token, exactly one rotates; a locked account's session is
    /// left as it is.
    #[tracing::instrument(skip_all, name = "db.rotate_refresh_token")]
    pub(crate) async fn rotate_refresh_token(
        &mut self,
        presented_refresh_hash: &str,
        rotation: TokenRotation,
    ) -> Result<RefreshOutcome, StoreError> {
        let session: Option<RefreshSessionRow> = sqlx::query_as(
            "SELECT t.token_hash, t.user_id, t.device_id, t.refresh_token_hash, \
                 t.previous_refresh_hash, t.previous_refresh_until_ms, \
                 u.locked_at_ms IS NOT NULL AS locked \
             FROM access_tokens t JOIN users u ON u.user_id = t.user_id \
             WHERE t.refresh_token_hash = $1 \
                 OR (t.previous_refresh_hash = $1 AND t.previous_refresh_until_ms > $2)",
        )
        .bind(presented_refresh_hash)
        .bind(rotation.now_ms)
        .fetch_optional(self.conn())
        .await?;
        let Some(session) = session else {
            return self
                .spent_refresh_token(presented_refresh_hash, rotation.now_ms)
                .await;
        };
        if session.locked {
            // Nothing rotates: the session stays as it was for when the lock is lifted.
            return Ok(RefreshOutcome::Locked);
        }
        // Of two concurrent refreshes, only the one whose delete finds the row goes on.
        let deleted = sqlx::query("DELETE FROM access_tokens WHERE token_hash = $1")
            .bind(&session.token_hash)
            .execute(self.conn())
            .await?;
        if deleted.rows_affected() != 1 {
            return Ok(RefreshOutcome::Unknown);
        }
        for spent in [&session.refresh_token_hash, &session.previous_refresh_hash]
            .into_iter()
            .flatten()
        {
            self.remember_spent_refresh_token(spent, &session, rotation.forget_spent_at_ms)
                .await?;
        }
        let retry = session.previous_refresh_hash.as_deref() == Some(presented_refresh_hash);
        let grace_until_ms = rotation.grace_until_ms.map(|until| {
            match session.previous_refresh_until_ms.filter(|_| retry) {
                Some(earlier) => earlier.min(until),
                None => until,
            }
        });
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, user_id, device_id, created_at_ms, \
                 expires_at_ms, refresh_token_hash, previous_refresh_hash, \
                 previous_refresh_until_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(rotation.access_token_hash)
        .bind(&session.user_id)
        .bind(&session.device_id)
        .bind(rotation.now_ms)
        .bind(rotation.expires_at_ms)
        .bind(rotation.refresh_token_hash)
        .bind(grace_until_ms.map(|_| presented_refresh_hash))
        .bind(grace_until_ms)
        .execute(self.conn())
        .await
        .map_err(conflict_on_unique(Conflict::TokenHashInUse))?;
        Ok(RefreshOutcome::Rotated {
            user_id: session.user_id,
            device_id: session.device_id,
        })
    }

    /// Remembers a refresh token of `session` as spent (a token already remembered keeps its
    /// first entry).
    async fn remember_spent_refresh_token(
        &mut self,
        token_hash: &str,
        session: &RefreshSessionRow,
        forget_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO spent_refresh_tokens (token_hash, user_id, device_id, forget_at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(token_hash)
        .bind(&session.user_id)
        .bind(&session.device_id)
        .bind(forget_at_ms)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// [`RefreshOutcome::Spent`] if the hash is remembered as spent at `now_ms` and is not in
    /// its grace (a concurrent rotation may have just put it there), else
    /// [`RefreshOutcome::Unknown`].
    async fn spent_refresh_token(
        &mut self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<RefreshOutcome, StoreError> {
        let spent: Option<SpentRow> = sqlx::query_as(
            "SELECT s.user_id, s.device_id FROM spent_refresh_tokens s \
             WHERE s.token_hash = $1 AND s.forget_at_ms > $2 \
                 AND NOT EXISTS (SELECT 1 FROM access_tokens t \
                     WHERE t.previous_refresh_hash = $1 AND t.previous_refresh_until_ms > $2)",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(self.conn())
        .await?;
        Ok(
            spent.map_or(RefreshOutcome::Unknown, |spent| RefreshOutcome::Spent {
                user_id: spent.user_id,
                device_id: spent.device_id,
            }),
        )
    }

    /// Forgets spent refresh tokens whose memory ended at or before `now_ms`; returns how many.
    #[tracing::instrument(skip_all, name = "db.delete_forgotten_spent_refresh_tokens")]
    pub(crate) async fn delete_forgotten_spent_refresh_tokens(
        &mut self,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM spent_refresh_tokens WHERE forget_at_ms <= $1")
            .bind(now_ms)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected())
    }
}
