//! The email outbox: verification emails queued with their sessions, claimed by one instance
//! at a time, and then sent, deferred or refused.

use super::{DueEmail, StoreError, StoreTx};

impl StoreTx {
    /// Claims up to `limit` due emails for this instance until `lease_until_ms`. Each claim is
    /// a compare-and-set on the email's lease, so of two instances claiming at once, each email
    /// goes to one; emails of expired sessions are skipped (they go with their session).
    #[tracing::instrument(skip_all, name = "db.claim_due_emails")]
    pub(crate) async fn claim_due_emails(
        &mut self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<DueEmail>, StoreError> {
        let candidates: Vec<(i64,)> = sqlx::query_as(
            "SELECT o.id FROM email_outbox o \
             JOIN threepid_validations v ON v.sid = o.sid \
             WHERE o.next_attempt_at_ms <= $1 AND o.claimed_until_ms <= $1 \
               AND v.expires_at_ms > $1 \
             ORDER BY o.next_attempt_at_ms, o.id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for (id,) in candidates {
            let won = sqlx::query(
                "UPDATE email_outbox SET claimed_until_ms = $2 \
                 WHERE id = $1 AND claimed_until_ms <= $3",
            )
            .bind(id)
            .bind(lease_until_ms)
            .bind(now_ms)
            .execute(self.conn())
            .await?
            .rows_affected()
                == 1;
            if !won {
                continue;
            }
            let email: DueEmail = sqlx::query_as(
                "SELECT o.id, o.sid, v.client_secret, o.kind, o.recipient, o.purpose, o.code, \
                     o.attempts \
                 FROM email_outbox o JOIN threepid_validations v ON v.sid = o.sid \
                 WHERE o.id = $1",
            )
            .bind(id)
            .fetch_one(self.conn())
            .await?;
            claimed.push(email);
        }
        Ok(claimed)
    }

    /// A sent email leaves the outbox.
    #[tracing::instrument(skip_all, name = "db.email_sent")]
    pub(crate) async fn email_sent(&mut self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM email_outbox WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// A failed send is retried at `next_attempt_at_ms`, by whichever instance claims it then.
    #[tracing::instrument(skip_all, name = "db.email_deferred")]
    pub(crate) async fn email_deferred(
        &mut self,
        id: i64,
        next_attempt_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE email_outbox SET attempts = attempts + 1, next_attempt_at_ms = $2, \
                 claimed_until_ms = 0 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(next_attempt_at_ms)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// A refused email leaves the outbox and marks its session failed, unless a newer attempt
    /// already replaced it (then the newer email stands).
    #[tracing::instrument(skip_all, name = "db.email_refused")]
    pub(crate) async fn email_refused(&mut self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        let refused: Option<(String,)> =
            sqlx::query_as("DELETE FROM email_outbox WHERE id = $1 RETURNING sid")
                .bind(id)
                .fetch_optional(self.conn())
                .await?;
        if let Some((sid,)) = refused {
            sqlx::query(
                "UPDATE threepid_validations SET delivery_failed_at_ms = $2 WHERE sid = $1",
            )
            .bind(sid)
            .bind(now_ms)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }
}
