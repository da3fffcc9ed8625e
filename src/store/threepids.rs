//! Storage for third-party identifiers: the homeserver's own email verification sessions,
//! addresses attached to accounts, bindings made at identity servers, and OpenID tokens.
//!
//! Like [`super::lifecycle`], the SQL is portable and written once in
//! [`impl_threepid_store!`](crate::impl_threepid_store).

use async_trait::async_trait;

use super::StoreError;

/// The reason a unique-constraint conflict reports when an address already has an owner.
pub const THREEPID_IN_USE: &str = "third-party identifier already in use";

/// A verification session to start (or to resend, for a higher `send_attempt`).
#[derive(Debug, Clone)]
pub struct NewValidationSession {
    /// The session ID to use if a new session is created.
    pub sid: String,
    /// The client's secret for the session.
    pub client_secret: String,
    /// `email`.
    pub medium: String,
    /// The canonical address.
    pub address: String,
    /// What the address will be used for: `register`, `add` or `password`.
    pub purpose: String,
    /// The client's attempt counter: a repeat of an attempt already made sends nothing.
    pub send_attempt: i64,
    /// SHA-256 (hex) of the token to send.
    pub token_hash: String,
    /// Where the validation page sends the user afterwards.
    pub next_link: Option<String>,
    /// Now, milliseconds since the epoch.
    pub now_ms: i64,
    /// When the token stops working.
    pub expires_at_ms: i64,
}

/// What [`ThreepidStore::start_validation`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationStart {
    /// A new session, or a new attempt on an existing one: send the token.
    Send {
        /// The session ID.
        sid: String,
    },
    /// This attempt was already made: answer with the same session, send nothing.
    AlreadySent {
        /// The session ID.
        sid: String,
    },
}

/// A verification session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationSessionRecord {
    /// The session ID.
    pub sid: String,
    /// The client's secret.
    pub client_secret: String,
    /// `email`.
    pub medium: String,
    /// The canonical address.
    pub address: String,
    /// `register`, `add` or `password`.
    pub purpose: String,
    /// When the token stops working.
    pub expires_at_ms: i64,
    /// When the address was proven, if it was.
    pub validated_at_ms: Option<i64>,
}

/// The outcome of submitting a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// The token was right (now or before): the address is proven.
    Validated {
        /// Where to send the user, if the client asked.
        next_link: Option<String>,
    },
    /// Wrong token; counted.
    WrongToken,
    /// No session with that ID and secret.
    NoSession,
    /// The session's token expired.
    Expired,
    /// Too many wrong tokens: the session is closed.
    TooManyAttempts,
}

/// A third-party identifier attached to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreepidRecord {
    /// `email`.
    pub medium: String,
    /// The canonical address.
    pub address: String,
    /// When the address was proven, milliseconds since the epoch.
    pub validated_at_ms: i64,
    /// When it was attached to the account.
    pub added_at_ms: i64,
}

/// An identifier to attach to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewThreepid {
    /// `email`.
    pub medium: String,
    /// The canonical address.
    pub address: String,
    /// When the address was proven.
    pub validated_at_ms: i64,
}

/// A binding this server made at an identity server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRecord {
    /// `email`.
    pub medium: String,
    /// The canonical address.
    pub address: String,
    /// The identity server, as named by the client.
    pub id_server: String,
    /// The identity server's validation session.
    pub sid: String,
    /// That session's client secret (what the identity server accepts to unbind).
    pub client_secret: String,
    /// The address as the identity server's session spelled it.
    pub bound_address: String,
}

/// Storage of third-party identifiers. Every method is atomic.
#[async_trait]
pub trait ThreepidStore: Send + Sync {
    /// Starts a verification session, or finds the one this request repeats (same secret,
    /// address and purpose): a higher `send_attempt` replaces its token and asks for a send.
    async fn start_validation(
        &self,
        session: NewValidationSession,
    ) -> Result<ValidationStart, StoreError>;

    /// Deletes a verification session (its email could not be sent).
    async fn delete_validation(&self, sid: &str) -> Result<(), StoreError>;

    /// A verification session by ID.
    async fn find_validation(
        &self,
        sid: &str,
    ) -> Result<Option<ValidationSessionRecord>, StoreError>;

    /// Checks a submitted token; a wrong one is counted, and after `max_failures` the session
    /// accepts no more.
    async fn check_validation_token(
        &self,
        sid: &str,
        client_secret: &str,
        token_hash: &str,
        now_ms: i64,
        max_failures: i64,
    ) -> Result<TokenCheck, StoreError>;

    /// The identifiers attached to a user, ordered by medium and address.
    async fn user_threepids(&self, user_id: &str) -> Result<Vec<ThreepidRecord>, StoreError>;

    /// The user an identifier is attached to.
    async fn threepid_owner(
        &self,
        medium: &str,
        address: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Attaches an identifier to a user (again attaching it to the same user refreshes its
    /// validation time); owned by another user, it is a conflict ([`THREEPID_IN_USE`]).
    async fn add_threepid(
        &self,
        user_id: &str,
        threepid: NewThreepid,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Detaches an identifier from a user; `false` if the user did not have it.
    async fn remove_threepid(
        &self,
        user_id: &str,
        medium: &str,
        address: &str,
    ) -> Result<bool, StoreError>;

    /// Records a binding made at an identity server (replacing one for the same server).
    async fn add_binding(&self, user_id: &str, binding: BindingRecord) -> Result<(), StoreError>;

    /// The user's bindings at identity servers.
    async fn bindings(&self, user_id: &str) -> Result<Vec<BindingRecord>, StoreError>;

    /// Forgets a binding; `false` if there was none.
    async fn remove_binding(
        &self,
        user_id: &str,
        medium: &str,
        address: &str,
        id_server: &str,
    ) -> Result<bool, StoreError>;

    /// Stores an OpenID token.
    async fn insert_openid_token(
        &self,
        token_hash: &str,
        user_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError>;

    /// The user of an OpenID token that has not expired at `now_ms`.
    async fn find_openid_token(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError>;
}

/// Implements [`ThreepidStore`] for a store type with a `pool` field and a `begin_write`
/// method. The statements are portable between SQLite and PostgreSQL; a no-op `UPDATE` takes
/// the row lock PostgreSQL needs where a read decides a write.
#[macro_export]
macro_rules! impl_threepid_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ThreepidStore for $store {
            async fn start_validation(
                &self,
                session: $crate::store::NewValidationSession,
            ) -> Result<$crate::store::ValidationStart, $crate::store::StoreError> {
                use $crate::store::ValidationStart;
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE threepid_validations SET send_attempt = send_attempt \
                     WHERE client_secret = $1 AND medium = $2 AND address = $3 AND purpose = $4",
                )
                .bind(&session.client_secret)
                .bind(&session.medium)
                .bind(&session.address)
                .bind(&session.purpose)
                .execute(&mut *tx)
                .await?;
                let existing: Option<(String, i64)> = sqlx::query_as(
                    "SELECT sid, send_attempt FROM threepid_validations \
                     WHERE client_secret = $1 AND medium = $2 AND address = $3 AND purpose = $4",
                )
                .bind(&session.client_secret)
                .bind(&session.medium)
                .bind(&session.address)
                .bind(&session.purpose)
                .fetch_optional(&mut *tx)
                .await?;
                let start = match existing {
                    Some((sid, attempt)) if session.send_attempt <= attempt => {
                        return Ok(ValidationStart::AlreadySent { sid });
                    }
                    Some((sid, _)) => {
                        sqlx::query(
                            "UPDATE threepid_validations SET send_attempt = $2, \
                             token_hash = $3, next_link = $4, expires_at_ms = $5, \
                             failed_attempts = 0 WHERE sid = $1",
                        )
                        .bind(&sid)
                        .bind(session.send_attempt)
                        .bind(&session.token_hash)
                        .bind(&session.next_link)
                        .bind(session.expires_at_ms)
                        .execute(&mut *tx)
                        .await?;
                        ValidationStart::Send { sid }
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO threepid_validations (sid, client_secret, medium, \
                             address, purpose, send_attempt, token_hash, next_link, \
                             created_at_ms, expires_at_ms) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
                        .execute(&mut *tx)
                        .await
                        .map_err(conflict_on_unique("validation session already started"))?;
                        ValidationStart::Send { sid: session.sid }
                    }
                };
                tx.commit().await?;
                Ok(start)
            }

            async fn delete_validation(&self, sid: &str) -> Result<(), $crate::store::StoreError> {
                sqlx::query("DELETE FROM threepid_validations WHERE sid = $1")
                    .bind(sid)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn find_validation(
                &self,
                sid: &str,
            ) -> Result<Option<$crate::store::ValidationSessionRecord>, $crate::store::StoreError>
            {
                let row: Option<(String, String, String, String, String, i64, Option<i64>)> =
                    sqlx::query_as(
                        "SELECT sid, client_secret, medium, address, purpose, expires_at_ms, \
                         validated_at_ms FROM threepid_validations WHERE sid = $1",
                    )
                    .bind(sid)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(
                    |(sid, client_secret, medium, address, purpose, expires_at_ms, validated_at_ms)| {
                        $crate::store::ValidationSessionRecord {
                            sid,
                            client_secret,
                            medium,
                            address,
                            purpose,
                            expires_at_ms,
                            validated_at_ms,
                        }
                    },
                ))
            }

            async fn check_validation_token(
                &self,
                sid: &str,
                client_secret: &str,
                token_hash: &str,
                now_ms: i64,
                max_failures: i64,
            ) -> Result<$crate::store::TokenCheck, $crate::store::StoreError> {
                use $crate::store::TokenCheck;
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE threepid_validations SET failed_attempts = failed_attempts \
                     WHERE sid = $1",
                )
                .bind(sid)
                .execute(&mut *tx)
                .await?;
                let row: Option<(String, String, i64, i64, Option<String>)> = sqlx::query_as(
                    "SELECT client_secret, token_hash, expires_at_ms, failed_attempts, next_link \
                     FROM threepid_validations WHERE sid = $1",
                )
                .bind(sid)
                .fetch_optional(&mut *tx)
                .await?;
                let check = match row {
                    None => TokenCheck::NoSession,
                    Some((secret, _, _, _, _)) if secret != client_secret => TokenCheck::NoSession,
                    Some((_, _, expires_at_ms, _, _)) if expires_at_ms <= now_ms => {
                        TokenCheck::Expired
                    }
                    Some((_, _, _, failures, _)) if failures >= max_failures => {
                        TokenCheck::TooManyAttempts
                    }
                    Some((_, stored, _, _, _)) if stored != token_hash => {
                        sqlx::query(
                            "UPDATE threepid_validations \
                             SET failed_attempts = failed_attempts + 1 WHERE sid = $1",
                        )
                        .bind(sid)
                        .execute(&mut *tx)
                        .await?;
                        TokenCheck::WrongToken
                    }
                    Some((_, _, _, _, next_link)) => {
                        sqlx::query(
                            "UPDATE threepid_validations \
                             SET validated_at_ms = COALESCE(validated_at_ms, $2) WHERE sid = $1",
                        )
                        .bind(sid)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                        TokenCheck::Validated { next_link }
                    }
                };
                tx.commit().await?;
                Ok(check)
            }

            async fn user_threepids(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::store::ThreepidRecord>, $crate::store::StoreError> {
                let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
                    "SELECT medium, address, validated_at_ms, added_at_ms FROM user_threepids \
                     WHERE user_id = $1 ORDER BY medium, address",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(medium, address, validated_at_ms, added_at_ms)| {
                        $crate::store::ThreepidRecord {
                            medium,
                            address,
                            validated_at_ms,
                            added_at_ms,
                        }
                    })
                    .collect())
            }

            async fn threepid_owner(
                &self,
                medium: &str,
                address: &str,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT user_id FROM user_threepids WHERE medium = $1 AND address = $2",
                )
                .bind(medium)
                .bind(address)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn add_threepid(
                &self,
                user_id: &str,
                threepid: $crate::store::NewThreepid,
                now_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                let result = sqlx::query(
                    "INSERT INTO user_threepids \
                     (medium, address, user_id, validated_at_ms, added_at_ms) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (medium, address) DO UPDATE \
                     SET validated_at_ms = excluded.validated_at_ms \
                     WHERE user_threepids.user_id = excluded.user_id",
                )
                .bind(&threepid.medium)
                .bind(&threepid.address)
                .bind(user_id)
                .bind(threepid.validated_at_ms)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                if result.rows_affected() == 0 {
                    return Err($crate::store::StoreError::Conflict(
                        $crate::store::THREEPID_IN_USE,
                    ));
                }
                Ok(())
            }

            async fn remove_threepid(
                &self,
                user_id: &str,
                medium: &str,
                address: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query(
                    "DELETE FROM user_threepids \
                     WHERE user_id = $1 AND medium = $2 AND address = $3",
                )
                .bind(user_id)
                .bind(medium)
                .bind(address)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn add_binding(
                &self,
                user_id: &str,
                binding: $crate::store::BindingRecord,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO threepid_bindings (user_id, medium, address, id_server, sid, \
                     client_secret, bound_address) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (user_id, medium, address, id_server) DO UPDATE \
                     SET sid = excluded.sid, client_secret = excluded.client_secret, \
                     bound_address = excluded.bound_address",
                )
                .bind(user_id)
                .bind(binding.medium)
                .bind(binding.address)
                .bind(binding.id_server)
                .bind(binding.sid)
                .bind(binding.client_secret)
                .bind(binding.bound_address)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn bindings(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::store::BindingRecord>, $crate::store::StoreError> {
                let rows: Vec<(String, String, String, String, String, String)> = sqlx::query_as(
                    "SELECT medium, address, id_server, sid, client_secret, bound_address \
                     FROM threepid_bindings WHERE user_id = $1 \
                     ORDER BY medium, address, id_server",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(medium, address, id_server, sid, client_secret, bound_address)| {
                            $crate::store::BindingRecord {
                                medium,
                                address,
                                id_server,
                                sid,
                                client_secret,
                                bound_address,
                            }
                        },
                    )
                    .collect())
            }

            async fn remove_binding(
                &self,
                user_id: &str,
                medium: &str,
                address: &str,
                id_server: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query(
                    "DELETE FROM threepid_bindings WHERE user_id = $1 AND medium = $2 \
                     AND address = $3 AND id_server = $4",
                )
                .bind(user_id)
                .bind(medium)
                .bind(address)
                .bind(id_server)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn insert_openid_token(
                &self,
                token_hash: &str,
                user_id: &str,
                expires_at_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO openid_tokens (token_hash, user_id, expires_at_ms) \
                     VALUES ($1, $2, $3)",
                )
                .bind(token_hash)
                .bind(user_id)
                .bind(expires_at_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_openid_token(
                &self,
                token_hash: &str,
                now_ms: i64,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT t.user_id FROM openid_tokens t \
                     JOIN users u ON u.user_id = t.user_id \
                     WHERE t.token_hash = $1 AND t.expires_at_ms > $2 \
                     AND u.deactivated_at_ms IS NULL",
                )
                .bind(token_hash)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?)
            }
        }
    };
}
