//! Rate-limit buckets (GCRA): one theoretical arrival time per key, shared by every instance.

use sqlx::AnyConnection;

use super::{StoreError, StoreTx};

/// Whether a request on bucket `key` would be allowed at `now_ms`: `None` when allowed,
/// `Some(ms)` with the wait until one would be.
#[tracing::instrument(skip_all, name = "db.peek_rate_limit")]
pub(super) async fn peek_rate_limit(
    conn: &mut AnyConnection,
    key: &str,
    now_ms: i64,
    interval_ms: i64,
    burst: i64,
) -> Result<Option<i64>, StoreError> {
    let tat_ms: Option<i64> = sqlx::query_scalar("SELECT tat_ms FROM rate_limits WHERE key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await?;
    let wait = tat_ms.map_or(0, |tat| {
        tat.max(now_ms) + interval_ms - now_ms - interval_ms * burst
    });
    Ok((wait > 0).then_some(wait))
}

impl StoreTx {
    /// Takes one request from the rate-limit bucket `key` (GCRA: one request per
    /// `interval_ms`, bursts of `burst`). `None` when allowed, `Some(ms)` when refused, with the
    /// wait until a request would be allowed.
    #[tracing::instrument(skip_all, name = "db.take_rate_limit")]
    pub(crate) async fn take_rate_limit(
        &mut self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> Result<Option<i64>, StoreError> {
        // Allowed when the new arrival time stays within `burst` intervals of now; the
        // conditional upsert makes check and update one atomic statement.
        let query = format!(
            "INSERT INTO rate_limits (key, tat_ms) VALUES ($1, $2 + $3) \
             ON CONFLICT (key) DO UPDATE SET tat_ms = {greatest}(rate_limits.tat_ms, $2) + $3 \
             WHERE {greatest}(rate_limits.tat_ms, $2) + $3 - $2 <= $3 * $4 \
             RETURNING tat_ms",
            greatest = self.dialect.greatest()
        );
        let allowed: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(query))
            .bind(key)
            .bind(now_ms)
            .bind(interval_ms)
            .bind(burst)
            .fetch_optional(self.conn())
            .await?;
        if allowed.is_some() {
            return Ok(None);
        }
        peek_rate_limit(self.conn(), key, now_ms, interval_ms, burst)
            .await
            .map(|wait| wait.or(Some(1)))
    }

    /// Deletes buckets that are full again (nothing to remember); returns how many.
    #[tracing::instrument(skip_all, name = "db.delete_idle_rate_limits")]
    pub(crate) async fn delete_idle_rate_limits(&mut self, now_ms: i64) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM rate_limits WHERE tat_ms < $1")
            .bind(now_ms)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected())
    }
}
