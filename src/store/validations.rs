//! The homeserver's own email verification sessions: started (or resent), checked against a
//! submitted token, forgotten.

use sqlx::AnyConnection;

use super::{
    Conflict, NewValidationSession, QueuedEmail, StoreError, StoreTx, TokenCheck,
    ValidationSessionRecord, ValidationStart, conflict_on_unique,
};

/// The session a request repeats.
#[derive(sqlx::FromRow)]
struct RepeatedSessionRow {
    sid: String,
    send_attempt: i64,
}

/// What a token submission is checked against.
#[derive(sqlx::FromRow)]
struct TokenCheckRow {
    client_secret: String,
    token_hash: String,
    expires_at_ms: i64,
    failed_attempts: i64,
    next_link: Option<String>,
    delivery_failed_at_ms: Option<i64>,
}

/// A verification session by ID.
#[tracing::instrument(skip_all, name = "db.find_validation")]
pub(super) async fn find_validation(
    conn: &mut AnyConnection,
    sid: &str,
) -> Result<Option<ValidationSessionRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT sid, client_secret, medium, address, purpose, expires_at_ms, validated_at_ms, \
             token_hash, requester, failed_attempts \
         FROM threepid_validations WHERE sid = $1",
    )
    .bind(sid)
    .fetch_optional(conn)
    .await?)
}

impl StoreTx {
    /// Starts a verification session, or finds the one this request repeats (same secret,
    /// address and purpose): a higher `send_attempt` replaces its token and its queued email.
    /// A concurrent identical request that created the session first is
    /// [`Conflict::ValidationSessionExists`].
    #[tracing::instrument(skip_all, name = "db.start_validation")]
    pub(crate) async fn start_validation(
        &mut self,
        session: NewValidationSession,
    ) -> Result<ValidationStart, StoreError> {
        // Locks the repeated session's row (PostgreSQL) so its attempts are counted in turn.
        sqlx::query(
            "UPDATE threepid_validations SET send_attempt = send_attempt \
             WHERE client_secret = $1 AND medium = $2 AND address = $3 AND purpose = $4",
        )
        .bind(&session.client_secret)
        .bind(&session.medium)
        .bind(&session.address)
        .bind(&session.purpose)
        .execute(self.conn())
        .await?;
        let existing: Option<RepeatedSessionRow> = sqlx::query_as(
            "SELECT sid, send_attempt FROM threepid_validations \
             WHERE client_secret = $1 AND medium = $2 AND address = $3 AND purpose = $4",
        )
        .bind(&session.client_secret)
        .bind(&session.medium)
        .bind(&session.address)
        .bind(&session.purpose)
        .fetch_optional(self.conn())
        .await?;
        match existing {
            Some(existing) if session.send_attempt <= existing.send_attempt => {
                Ok(ValidationStart::AlreadySent { sid: existing.sid })
            }
            Some(existing) => {
                sqlx::query(
                    "UPDATE threepid_validations SET send_attempt = $2, token_hash = $3, \
                         next_link = $4, expires_at_ms = $5, failed_attempts = 0, \
                         delivery_failed_at_ms = NULL \
                     WHERE sid = $1",
                )
                .bind(&existing.sid)
                .bind(session.send_attempt)
                .bind(&session.token_hash)
                .bind(&session.next_link)
                .bind(session.expires_at_ms)
                .execute(self.conn())
                .await?;
                self.queue_email(
                    &existing.sid,
                    &session.purpose,
                    session.email,
                    session.now_ms,
                )
                .await?;
                Ok(ValidationStart::Send { sid: existing.sid })
            }
            None => {
                sqlx::query(
                    "INSERT INTO threepid_validations (sid, client_secret, medium, address, \
                         purpose, send_attempt, token_hash, next_link, created_at_ms, \
                         expires_at_ms, requester) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&session.sid)
                .bind(&session.client_secret)
                .bind(&session.medium)
                .bind(&session.address)
                .bind(&session.purpose)
                .bind(session.send_attempt)
                .bind(&session.token_hash)
                .bind(&session.next_link)
                .bind(session.now_ms)
                .bind(session.expires_at_ms)
                .bind(&session.requester)
                .execute(self.conn())
                .await
                .map_err(conflict_on_unique(Conflict::ValidationSessionExists))?;
                self.queue_email(
                    &session.sid,
                    &session.purpose,
                    session.email,
                    session.now_ms,
                )
                .await?;
                Ok(ValidationStart::Send { sid: session.sid })
            }
        }
    }

    /// Checks a submitted token; a wrong one is counted, and after `max_failures` the session
    /// accepts no more.
    #[tracing::instrument(skip_all, name = "db.check_validation_token")]
    pub(crate) async fn check_validation_token(
        &mut self,
        sid: &str,
        client_secret: &str,
        token_hash: &str,
        now_ms: i64,
        max_failures: i64,
    ) -> Result<TokenCheck, StoreError> {
        // Locks the session's row (PostgreSQL) so concurrent wrong tokens are all counted.
        sqlx::query(
            "UPDATE threepid_validations SET failed_attempts = failed_attempts WHERE sid = $1",
        )
        .bind(sid)
        .execute(self.conn())
        .await?;
        let row: Option<TokenCheckRow> = sqlx::query_as(
            "SELECT client_secret, token_hash, expires_at_ms, failed_attempts, next_link, \
                 delivery_failed_at_ms \
             FROM threepid_validations WHERE sid = $1",
        )
        .bind(sid)
        .fetch_optional(self.conn())
        .await?;
        let Some(row) = row else {
            return Ok(TokenCheck::NoSession);
        };
        if row.client_secret != client_secret {
            return Ok(TokenCheck::NoSession);
        }
        if row.expires_at_ms <= now_ms {
            return Ok(TokenCheck::Expired);
        }
        if row.delivery_failed_at_ms.is_some() {
            return Ok(TokenCheck::DeliveryFailed);
        }
        if row.failed_attempts >= max_failures {
            return Ok(TokenCheck::TooManyAttempts);
        }
        if row.token_hash != token_hash {
            sqlx::query(
                "UPDATE threepid_validations SET failed_attempts = failed_attempts + 1 \
                 WHERE sid = $1",
            )
            .bind(sid)
            .execute(self.conn())
            .await?;
            return Ok(TokenCheck::WrongToken);
        }
        sqlx::query(
            "UPDATE threepid_validations SET validated_at_ms = COALESCE(validated_at_ms, $2) \
             WHERE sid = $1",
        )
        .bind(sid)
        .bind(now_ms)
        .execute(self.conn())
        .await?;
        Ok(TokenCheck::Validated {
            next_link: row.next_link,
        })
    }

    /// Queues the email of a session's new attempt, replacing one still waiting for an older
    /// attempt (its code no longer works).
    async fn queue_email(
        &mut self,
        sid: &str,
        purpose: &str,
        email: Option<QueuedEmail>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM email_outbox WHERE sid = $1")
            .bind(sid)
            .execute(self.conn())
            .await?;
        if let Some(email) = email {
            sqlx::query(
                "INSERT INTO email_outbox (sid, kind, recipient, purpose, code, \
                     next_attempt_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(sid)
            .bind(&email.kind)
            .bind(&email.recipient)
            .bind(purpose)
            .bind(&email.code)
            .bind(now_ms)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// Forgets a verification session (spent: what it proved has been used).
    #[tracing::instrument(skip_all, name = "db.delete_validation")]
    pub(crate) async fn delete_validation(&mut self, sid: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM threepid_validations WHERE sid = $1")
            .bind(sid)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Deletes verification sessions that expired at or before `now_ms`; returns how many.
    #[tracing::instrument(skip_all, name = "db.delete_expired_validations")]
    pub(crate) async fn delete_expired_validations(
        &mut self,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM threepid_validations WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected())
    }
}
