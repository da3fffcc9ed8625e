//! Registration tokens and their reservations: a registration in progress that passed the
//! token stage holds one use until it completes (a completion) or fails (released) or lapses.

use sqlx::AnyConnection;

use super::{Conflict, RegistrationTokenRecord, StoreError, StoreTx, conflict_on_unique};

/// The columns of a [`RegistrationTokenRecord`], with the reservations live at `$1` counted.
const REGISTRATION_TOKEN_COLUMNS: &str = "t.token, t.uses_allowed, t.completed, \
     (SELECT COUNT(*) FROM registration_token_reservations r \
      WHERE r.token = t.token AND r.expires_at_ms > $1) AS pending, \
     t.expires_at_ms, t.created_at_ms";

/// Every registration token, with its pending uses as of `now_ms`, ordered by token.
#[tracing::instrument(skip_all, name = "db.list_registration_tokens")]
pub(super) async fn list_registration_tokens(
    conn: &mut AnyConnection,
    now_ms: i64,
) -> Result<Vec<RegistrationTokenRecord>, StoreError> {
    let query =
        format!("SELECT {REGISTRATION_TOKEN_COLUMNS} FROM registration_tokens t ORDER BY t.token");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(query))
        .bind(now_ms)
        .fetch_all(conn)
        .await?)
}

/// One registration token, with its pending uses as of `now_ms`.
#[tracing::instrument(skip_all, name = "db.find_registration_token")]
pub(super) async fn find_registration_token(
    conn: &mut AnyConnection,
    token: &str,
    now_ms: i64,
) -> Result<Option<RegistrationTokenRecord>, StoreError> {
    let query = format!(
        "SELECT {REGISTRATION_TOKEN_COLUMNS} FROM registration_tokens t WHERE t.token = $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(query))
        .bind(now_ms)
        .bind(token)
        .fetch_optional(conn)
        .await?)
}

impl StoreTx {
    /// Stores a new registration token; an existing one with that text is
    /// [`Conflict::RegistrationTokenExists`].
    #[tracing::instrument(skip_all, name = "db.create_registration_token")]
    pub(crate) async fn create_registration_token(
        &mut self,
        token: RegistrationTokenRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO registration_tokens \
                 (token, uses_allowed, completed, expires_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token.token)
        .bind(token.uses_allowed)
        .bind(token.completed)
        .bind(token.expires_at_ms)
        .bind(token.created_at_ms)
        .execute(self.conn())
        .await
        .map_err(conflict_on_unique(Conflict::RegistrationTokenExists))?;
        Ok(())
    }

    /// Deletes a registration token (and its reservations); `false` if it did not exist.
    #[tracing::instrument(skip_all, name = "db.delete_registration_token")]
    pub(crate) async fn delete_registration_token(
        &mut self,
        token: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM registration_tokens WHERE token = $1")
            .bind(token)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Reserves one use of `token` for the UIA session `session_hash` until `until_ms`, if the
    /// token exists, has not expired at `now_ms`, and completed plus pending uses are below its
    /// allowance. Concurrent reservations are serialised, so an allowance of N admits N.
    /// A session that already holds a reservation for the token keeps it (`true`).
    #[tracing::instrument(skip_all, name = "db.reserve_registration_token")]
    pub(crate) async fn reserve_registration_token(
        &mut self,
        token: &str,
        session_hash: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        // Locks the token's row (PostgreSQL) so concurrent reservations queue here.
        sqlx::query("UPDATE registration_tokens SET completed = completed WHERE token = $1")
            .bind(token)
            .execute(self.conn())
            .await?;
        let held: Option<String> = sqlx::query_scalar(
            "SELECT token FROM registration_token_reservations \
             WHERE session_hash = $1 AND expires_at_ms > $2",
        )
        .bind(session_hash)
        .bind(now_ms)
        .fetch_optional(self.conn())
        .await?;
        if let Some(held) = held {
            return Ok(held == token);
        }
        let inserted = sqlx::query(
            "INSERT INTO registration_token_reservations (session_hash, token, expires_at_ms) \
             SELECT $1, t.token, $3 FROM registration_tokens t \
             WHERE t.token = $2 \
                 AND (t.expires_at_ms IS NULL OR t.expires_at_ms > $4) \
                 AND (t.uses_allowed IS NULL OR t.completed + \
                     (SELECT COUNT(*) FROM registration_token_reservations r \
                      WHERE r.token = t.token AND r.expires_at_ms > $4) \
                     < t.uses_allowed) \
             ON CONFLICT (session_hash) DO UPDATE \
             SET token = excluded.token, expires_at_ms = excluded.expires_at_ms",
        )
        .bind(session_hash)
        .bind(token)
        .bind(until_ms)
        .bind(now_ms)
        .execute(self.conn())
        .await?;
        Ok(inserted.rows_affected() > 0)
    }

    /// Turns the reservation of a UIA session into a completed use of `token`.
    #[tracing::instrument(skip_all, name = "db.consume_registration_token")]
    pub(crate) async fn consume_registration_token(
        &mut self,
        token: &str,
        session_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE registration_tokens SET completed = completed + 1 WHERE token = $1")
            .bind(token)
            .execute(self.conn())
            .await?;
        self.release_registration_token(session_hash).await
    }

    /// Gives back the reservation of a UIA session whose registration failed.
    #[tracing::instrument(skip_all, name = "db.release_registration_token")]
    pub(crate) async fn release_registration_token(
        &mut self,
        session_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM registration_token_reservations WHERE session_hash = $1")
            .bind(session_hash)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Deletes reservations that lapsed at or before `now_ms`; returns how many.
    #[tracing::instrument(skip_all, name = "db.delete_lapsed_reservations")]
    pub(crate) async fn delete_lapsed_reservations(
        &mut self,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let result =
            sqlx::query("DELETE FROM registration_token_reservations WHERE expires_at_ms <= $1")
                .bind(now_ms)
                .execute(self.conn())
                .await?;
        Ok(result.rows_affected())
    }
}
