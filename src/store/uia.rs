//! User-Interactive Authentication sessions: the session row, its completed stages (in
//! completion order) and its named values.

use sqlx::AnyConnection;

use super::dialect::Dialect;
use super::{
    Conflict, StoreError, StoreTx, UiaProgressRecord, UiaSessionRecord, conflict_on_unique,
};

/// A `uia_sessions` row.
#[derive(sqlx::FromRow)]
struct UiaSessionRow {
    session_hash: String,
    action: String,
    fingerprint: String,
    user_id: Option<String>,
    created_at_ms: i64,
    expires_at_ms: i64,
}

/// A `uia_session_values` row, without its session.
#[derive(sqlx::FromRow)]
struct UiaValueRow {
    name: String,
    value: String,
}

/// Looks a UIA session up, with its completed stages and values; expired sessions are still
/// returned. For a consistent answer, run it in a transaction (a read snapshot or a unit of
/// work).
#[tracing::instrument(skip_all, name = "db.find_uia_session")]
pub(super) async fn find_uia_session(
    conn: &mut AnyConnection,
    dialect: Dialect,
    session_hash: &str,
) -> Result<Option<UiaSessionRecord>, StoreError> {
    let row: Option<UiaSessionRow> = sqlx::query_as(
        "SELECT session_hash, action, fingerprint, user_id, created_at_ms, expires_at_ms \
         FROM uia_sessions WHERE session_hash = $1",
    )
    .bind(session_hash)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let progress = uia_progress(conn, dialect, &row.session_hash).await?;
    Ok(Some(UiaSessionRecord {
        session_hash: row.session_hash,
        action: row.action,
        fingerprint: row.fingerprint,
        user_id: row.user_id,
        values: progress.values,
        created_at_ms: row.created_at_ms,
        expires_at_ms: row.expires_at_ms,
        completed: progress.completed,
    }))
}

/// Where a UIA session stands: its completed stages, in completion order, and its values.
async fn uia_progress(
    conn: &mut AnyConnection,
    dialect: Dialect,
    session_hash: &str,
) -> Result<UiaProgressRecord, StoreError> {
    let query = format!(
        "SELECT stage FROM uia_completed_stages WHERE session_hash = $1 ORDER BY {}",
        dialect.completion_order()
    );
    let completed = sqlx::query_scalar(sqlx::AssertSqlSafe(query))
        .bind(session_hash)
        .fetch_all(&mut *conn)
        .await?;
    let values: Vec<UiaValueRow> =
        sqlx::query_as("SELECT name, value FROM uia_session_values WHERE session_hash = $1")
            .bind(session_hash)
            .fetch_all(conn)
            .await?;
    Ok(UiaProgressRecord {
        completed,
        values: values
            .into_iter()
            .map(|row| (row.name, row.value))
            .collect(),
    })
}

impl StoreTx {
    /// Stores a new UIA session (its `completed` list and `values` are ignored: a new session
    /// has none); an existing one with that hash is [`Conflict::UiaSessionExists`].
    #[tracing::instrument(skip_all, name = "db.insert_uia_session")]
    pub(crate) async fn insert_uia_session(
        &mut self,
        session: UiaSessionRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO uia_sessions \
                 (session_hash, action, fingerprint, user_id, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session.session_hash)
        .bind(session.action)
        .bind(session.fingerprint)
        .bind(session.user_id)
        .bind(session.created_at_ms)
        .bind(session.expires_at_ms)
        .execute(self.conn())
        .await
        .map_err(conflict_on_unique(Conflict::UiaSessionExists))?;
        Ok(())
    }

    /// Records a completed stage (idempotent) together with what it recorded (kept under the
    /// stage's name), and returns where the session stands, read in this unit of work. An
    /// unknown session records nothing and stands nowhere.
    #[tracing::instrument(skip_all, name = "db.complete_uia_stage")]
    pub(crate) async fn complete_uia_stage(
        &mut self,
        session_hash: &str,
        stage: &str,
        record: Option<&str>,
    ) -> Result<UiaProgressRecord, StoreError> {
        let query = format!(
            "INSERT INTO uia_completed_stages (session_hash, stage) \
             SELECT session_hash, $2 FROM uia_sessions WHERE session_hash = $1{} \
             ON CONFLICT DO NOTHING",
            self.dialect.key_share()
        );
        sqlx::query(sqlx::AssertSqlSafe(query))
            .bind(session_hash)
            .bind(stage)
            .execute(self.conn())
            .await?;
        if let Some(record) = record {
            self.set_uia_value(session_hash, stage, record).await?;
        }
        let dialect = self.dialect;
        uia_progress(self.conn(), dialect, session_hash).await
    }

    /// Sets one named value of a session (JSON text), leaving its other values as they are;
    /// `false` if the session does not exist.
    #[tracing::instrument(skip_all, name = "db.set_uia_value")]
    pub(crate) async fn set_uia_value(
        &mut self,
        session_hash: &str,
        name: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let query = format!(
            "INSERT INTO uia_session_values (session_hash, name, value) \
             SELECT session_hash, $2, $3 FROM uia_sessions WHERE session_hash = $1{} \
             ON CONFLICT (session_hash, name) DO UPDATE SET value = excluded.value",
            self.dialect.key_share()
        );
        let result = sqlx::query(sqlx::AssertSqlSafe(query))
            .bind(session_hash)
            .bind(name)
            .bind(value)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Deletes a session; `true` only for the one caller that actually deleted it, so a
    /// completed session can be consumed exactly once.
    #[tracing::instrument(skip_all, name = "db.take_uia_session")]
    pub(crate) async fn take_uia_session(
        &mut self,
        session_hash: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM uia_sessions WHERE session_hash = $1")
            .bind(session_hash)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Deletes sessions that expired before `now_ms`; returns how many.
    #[tracing::instrument(skip_all, name = "db.delete_expired_uia_sessions")]
    pub(crate) async fn delete_expired_uia_sessions(
        &mut self,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM uia_sessions WHERE expires_at_ms < $1")
            .bind(now_ms)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected())
    }
}
