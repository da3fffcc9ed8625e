//! Storage for what an account gains after registration: login tokens, registration tokens,
//! profile fields, accepted terms, the operator's lock and suspension, and guest upgrades.
//!
//! The SQL is the same on both backends, so it is written once, in
//! [`impl_lifecycle_store!`](crate::impl_lifecycle_store), and expanded for each.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{NewLogin, StoreError};

/// A single-use `m.login.token` token to store.
#[derive(Debug, Clone)]
pub struct NewLoginToken {
    /// SHA-256 (hex) of the token.
    pub token_hash: String,
    /// The user the token logs in.
    pub user_id: String,
    /// When the token stops working, milliseconds since the epoch.
    pub expires_at_ms: i64,
}

/// A registration token as the operator manages it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationTokenRecord {
    /// The token itself (shared with the people invited to register).
    pub token: String,
    /// How many accounts it may create; `None` = unlimited.
    pub uses_allowed: Option<i64>,
    /// Accounts already created with it.
    pub completed: i64,
    /// Registrations in progress that have passed the token stage (ignored on insert).
    pub pending: i64,
    /// When it stops working, milliseconds since the epoch; `None` = never.
    pub expires_at_ms: Option<i64>,
    /// Creation time, milliseconds since the epoch.
    pub created_at_ms: i64,
}

/// A policy version a user accepted through `m.login.terms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedTerms {
    /// The policy's name in the configuration (e.g. `privacy_policy`).
    pub policy: String,
    /// The version that was shown.
    pub version: String,
}

/// What a registration records beside the account row, in the same transaction.
#[derive(Debug, Clone, Default)]
pub struct RegistrationExtras {
    /// Initial display name.
    pub displayname: Option<String>,
    /// Policy versions accepted during registration.
    pub accepted_terms: Vec<AcceptedTerms>,
    /// The registration token used, and the hash of the UIA session holding its reservation.
    pub registration_token: Option<(String, String)>,
    /// Third-party identifiers proven during registration, attached to the account.
    pub threepids: Vec<super::NewThreepid>,
}

/// A guest account becoming a full account.
#[derive(Debug, Clone)]
pub struct GuestUpgrade {
    /// The guest's user ID.
    pub user_id: String,
    /// Argon2id PHC string of the new password.
    pub password_hash: String,
    /// Time of the upgrade, milliseconds since the epoch.
    pub now_ms: i64,
    /// Terms, token and display name recorded as for any registration.
    pub extras: RegistrationExtras,
    /// The device session to open, unless login was inhibited.
    pub login: Option<NewLogin>,
}

/// A reversible restriction the operator puts on an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// Locked: every request but logout is refused with `M_USER_LOCKED`.
    Locked,
    /// Suspended: reading goes on, changes are refused with `M_USER_SUSPENDED`.
    Suspended,
}

impl Restriction {
    /// The `users` column holding when the restriction started.
    pub fn column(self) -> &'static str {
        match self {
            Self::Locked => "locked_at_ms",
            Self::Suspended => "suspended_at_ms",
        }
    }
}

/// Outcome of writing a profile field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileWrite {
    /// The field was written (or deleted).
    Saved,
    /// The whole profile would exceed the size limit; nothing was written.
    TooLarge,
    /// There is no active user with that ID.
    NoSuchUser,
}

/// Storage of the account-lifecycle features. Every method is atomic.
#[async_trait]
pub trait LifecycleStore: Send + Sync {
    /// Stores a login token.
    async fn insert_login_token(&self, token: NewLoginToken) -> Result<(), StoreError>;

    /// Deletes the login token and returns its user if it had not expired at `now_ms`: of
    /// two concurrent uses, only one gets the user.
    async fn take_login_token(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError>;

    /// Deletes expired login tokens, lapsed registration-token reservations, expired email
    /// verification sessions and expired OpenID tokens.
    async fn delete_expired_grants(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// Stores a new registration token; an existing one with that text is a conflict.
    async fn create_registration_token(
        &self,
        token: RegistrationTokenRecord,
    ) -> Result<(), StoreError>;

    /// Every registration token, with its pending uses as of `now_ms`, ordered by token.
    async fn list_registration_tokens(
        &self,
        now_ms: i64,
    ) -> Result<Vec<RegistrationTokenRecord>, StoreError>;

    /// One registration token, with its pending uses as of `now_ms`.
    async fn find_registration_token(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<Option<RegistrationTokenRecord>, StoreError>;

    /// Deletes a registration token (and its reservations); `false` if it did not exist.
    async fn delete_registration_token(&self, token: &str) -> Result<bool, StoreError>;

    /// Reserves one use of `token` for the UIA session `session_hash` until `until_ms`, if the
    /// token exists, has not expired at `now_ms`, and completed plus pending uses are below its
    /// allowance. Concurrent reservations are serialised, so an allowance of N admits N.
    /// A session that already holds a reservation for the token keeps it (`true`).
    async fn reserve_registration_token(
        &self,
        token: &str,
        session_hash: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Gives back the reservation of a UIA session whose registration failed.
    async fn release_registration_token(&self, session_hash: &str) -> Result<(), StoreError>;

    /// The profile fields of an active user; `None` if there is no such active user.
    async fn profile(&self, user_id: &str) -> Result<Option<Map<String, Value>>, StoreError>;

    /// Sets (or with `None` deletes) one profile field, refusing when the serialised profile
    /// would exceed `max_profile_bytes`.
    async fn set_profile_field(
        &self,
        user_id: &str,
        field: &str,
        value: Option<&Value>,
        max_profile_bytes: usize,
    ) -> Result<ProfileWrite, StoreError>;

    /// The policy versions the user accepted, ordered by policy and version.
    async fn accepted_terms(&self, user_id: &str) -> Result<Vec<AcceptedTerms>, StoreError>;

    /// Applies (from `now_ms`, keeping an earlier start) or lifts an operator's restriction;
    /// `false` if there is no such user.
    async fn set_restriction(
        &self,
        user_id: &str,
        restriction: Restriction,
        active: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Grants or revokes the server-administrator role; `false` if there is no such user.
    async fn set_admin(&self, user_id: &str, admin: bool) -> Result<bool, StoreError>;

    /// Turns an active guest account into a full account with a password, records the
    /// registration extras and opens the session, atomically; `false` if the user is not an
    /// active guest (for example, a concurrent upgrade won).
    async fn upgrade_guest(&self, upgrade: GuestUpgrade) -> Result<bool, StoreError>;
}

/// Implements [`LifecycleStore`] for a store type with a `pool` field and a `begin_write`
/// method, and defines `record_registration_extras` for its connection type. The statements are
/// portable between SQLite and PostgreSQL; where PostgreSQL needs a row lock to serialise a
/// check-then-write, a no-op `UPDATE` takes it (SQLite's write transactions are already
/// exclusive).
#[macro_export]
macro_rules! impl_lifecycle_store {
    ($store:ty, $connection:ty) => {
        /// Writes what a registration records beside the account row, inside its transaction.
        async fn record_registration_extras(
            conn: &mut $connection,
            user_id: &str,
            now_ms: i64,
            extras: &$crate::store::RegistrationExtras,
        ) -> Result<(), $crate::store::StoreError> {
            if let Some(displayname) = &extras.displayname {
                sqlx::query(
                    "INSERT INTO profile_fields (user_id, field, value) \
                     VALUES ($1, 'displayname', $2) \
                     ON CONFLICT (user_id, field) DO NOTHING",
                )
                .bind(user_id)
                .bind(serde_json::Value::from(displayname.as_str()).to_string())
                .execute(&mut *conn)
                .await?;
            }
            for terms in &extras.accepted_terms {
                sqlx::query(
                    "INSERT INTO accepted_terms (user_id, policy, version, accepted_at_ms) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(user_id)
                .bind(&terms.policy)
                .bind(&terms.version)
                .bind(now_ms)
                .execute(&mut *conn)
                .await?;
            }
            for threepid in &extras.threepids {
                sqlx::query(
                    "INSERT INTO user_threepids \
                     (medium, address, user_id, validated_at_ms, added_at_ms) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&threepid.medium)
                .bind(&threepid.address)
                .bind(user_id)
                .bind(threepid.validated_at_ms)
                .bind(now_ms)
                .execute(&mut *conn)
                .await
                .map_err(conflict_on_unique($crate::store::THREEPID_IN_USE))?;
            }
            if let Some((token, session_hash)) = &extras.registration_token {
                sqlx::query(
                    "UPDATE registration_tokens SET completed = completed + 1 WHERE token = $1",
                )
                .bind(token)
                .execute(&mut *conn)
                .await?;
                sqlx::query("DELETE FROM registration_token_reservations WHERE session_hash = $1")
                    .bind(session_hash)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// Columns of a registration token row with its live reservations counted.
        const REGISTRATION_TOKEN_COLUMNS: &str = "t.token, t.uses_allowed, t.completed, \
             (SELECT COUNT(*) FROM registration_token_reservations r \
              WHERE r.token = t.token AND r.expires_at_ms > $1), \
             t.expires_at_ms, t.created_at_ms";

        type RegistrationTokenRow = (String, Option<i64>, i64, i64, Option<i64>, i64);

        fn registration_token_from_row(
            row: RegistrationTokenRow,
        ) -> $crate::store::RegistrationTokenRecord {
            let (token, uses_allowed, completed, pending, expires_at_ms, created_at_ms) = row;
            $crate::store::RegistrationTokenRecord {
                token,
                uses_allowed,
                completed,
                pending,
                expires_at_ms,
                created_at_ms,
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::LifecycleStore for $store {
            async fn insert_login_token(
                &self,
                token: $crate::store::NewLoginToken,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO login_tokens (token_hash, user_id, expires_at_ms) \
                     VALUES ($1, $2, $3)",
                )
                .bind(token.token_hash)
                .bind(token.user_id)
                .bind(token.expires_at_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn take_login_token(
                &self,
                token_hash: &str,
                now_ms: i64,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                let row: Option<(String, i64)> = sqlx::query_as(
                    "DELETE FROM login_tokens WHERE token_hash = $1 \
                     RETURNING user_id, expires_at_ms",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row
                    .filter(|(_, expires_at_ms)| *expires_at_ms > now_ms)
                    .map(|(user_id, _)| user_id))
            }

            async fn delete_expired_grants(
                &self,
                now_ms: i64,
            ) -> Result<u64, $crate::store::StoreError> {
                let tokens = sqlx::query("DELETE FROM login_tokens WHERE expires_at_ms <= $1")
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                let reservations = sqlx::query(
                    "DELETE FROM registration_token_reservations WHERE expires_at_ms <= $1",
                )
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                let mut purged = tokens.rows_affected() + reservations.rows_affected();
                for table in ["threepid_validations", "openid_tokens"] {
                    let query = format!("DELETE FROM {table} WHERE expires_at_ms <= $1");
                    purged += sqlx::query(sqlx::AssertSqlSafe(query))
                        .bind(now_ms)
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                }
                Ok(purged)
            }

            async fn create_registration_token(
                &self,
                token: $crate::store::RegistrationTokenRecord,
            ) -> Result<(), $crate::store::StoreError> {
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
                .execute(&self.pool)
                .await
                .map_err(conflict_on_unique("registration token already exists"))?;
                Ok(())
            }

            async fn list_registration_tokens(
                &self,
                now_ms: i64,
            ) -> Result<Vec<$crate::store::RegistrationTokenRecord>, $crate::store::StoreError>
            {
                let query = format!(
                    "SELECT {REGISTRATION_TOKEN_COLUMNS} FROM registration_tokens t \
                     ORDER BY t.token"
                );
                let rows: Vec<RegistrationTokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(query))
                    .bind(now_ms)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().map(registration_token_from_row).collect())
            }

            async fn find_registration_token(
                &self,
                token: &str,
                now_ms: i64,
            ) -> Result<Option<$crate::store::RegistrationTokenRecord>, $crate::store::StoreError>
            {
                let query = format!(
                    "SELECT {REGISTRATION_TOKEN_COLUMNS} FROM registration_tokens t \
                     WHERE t.token = $2"
                );
                let row: Option<RegistrationTokenRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(query))
                        .bind(now_ms)
                        .bind(token)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(registration_token_from_row))
            }

            async fn delete_registration_token(
                &self,
                token: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query("DELETE FROM registration_tokens WHERE token = $1")
                    .bind(token)
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn reserve_registration_token(
                &self,
                token: &str,
                session_hash: &str,
                now_ms: i64,
                until_ms: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                // Locks the token's row (PostgreSQL) so concurrent reservations queue here.
                sqlx::query("UPDATE registration_tokens SET completed = completed WHERE token = $1")
                    .bind(token)
                    .execute(&mut *tx)
                    .await?;
                let held: Option<String> = sqlx::query_scalar(
                    "SELECT token FROM registration_token_reservations \
                     WHERE session_hash = $1 AND expires_at_ms > $2",
                )
                .bind(session_hash)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(held) = held {
                    return Ok(held == token);
                }
                let inserted = sqlx::query(
                    "INSERT INTO registration_token_reservations \
                     (session_hash, token, expires_at_ms) \
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
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(inserted.rows_affected() > 0)
            }

            async fn release_registration_token(
                &self,
                session_hash: &str,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("DELETE FROM registration_token_reservations WHERE session_hash = $1")
                    .bind(session_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn profile(
                &self,
                user_id: &str,
            ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, $crate::store::StoreError>
            {
                let active: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM users \
                     WHERE user_id = $1 AND deactivated_at_ms IS NULL)",
                )
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
                if !active {
                    return Ok(None);
                }
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT field, value FROM profile_fields WHERE user_id = $1 ORDER BY field",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(Some(
                    rows.into_iter()
                        .filter_map(|(field, value)| {
                            Some((field, serde_json::from_str(&value).ok()?))
                        })
                        .collect(),
                ))
            }

            async fn set_profile_field(
                &self,
                user_id: &str,
                field: &str,
                value: Option<&serde_json::Value>,
                max_profile_bytes: usize,
            ) -> Result<$crate::store::ProfileWrite, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                // Locks the user's row (PostgreSQL), serialising writes to one profile.
                let active = sqlx::query(
                    "UPDATE users SET is_guest = is_guest \
                     WHERE user_id = $1 AND deactivated_at_ms IS NULL",
                )
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                if active.rows_affected() == 0 {
                    return Ok($crate::store::ProfileWrite::NoSuchUser);
                }
                let Some(value) = value else {
                    sqlx::query("DELETE FROM profile_fields WHERE user_id = $1 AND field = $2")
                        .bind(user_id)
                        .bind(field)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    return Ok($crate::store::ProfileWrite::Saved);
                };
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT field, value FROM profile_fields WHERE user_id = $1 AND field <> $2",
                )
                .bind(user_id)
                .bind(field)
                .fetch_all(&mut *tx)
                .await?;
                let mut profile: serde_json::Map<String, serde_json::Value> = rows
                    .into_iter()
                    .filter_map(|(field, value)| Some((field, serde_json::from_str(&value).ok()?)))
                    .collect();
                profile.insert(field.to_owned(), value.clone());
                if serde_json::Value::Object(profile).to_string().len() > max_profile_bytes {
                    return Ok($crate::store::ProfileWrite::TooLarge);
                }
                sqlx::query(
                    "INSERT INTO profile_fields (user_id, field, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, field) DO UPDATE SET value = excluded.value",
                )
                .bind(user_id)
                .bind(field)
                .bind(value.to_string())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::store::ProfileWrite::Saved)
            }

            async fn accepted_terms(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::store::AcceptedTerms>, $crate::store::StoreError> {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT policy, version FROM accepted_terms WHERE user_id = $1 \
                     ORDER BY policy, version",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(policy, version)| $crate::store::AcceptedTerms { policy, version })
                    .collect())
            }

            async fn set_restriction(
                &self,
                user_id: &str,
                restriction: $crate::store::Restriction,
                active: bool,
                now_ms: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let column = restriction.column();
                let query = format!(
                    "UPDATE users SET {column} = \
                     CASE WHEN $2 THEN COALESCE({column}, $3) ELSE NULL END \
                     WHERE user_id = $1"
                );
                let result = sqlx::query(sqlx::AssertSqlSafe(query))
                    .bind(user_id)
                    .bind(active)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn set_admin(
                &self,
                user_id: &str,
                admin: bool,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query("UPDATE users SET is_admin = $2 WHERE user_id = $1")
                    .bind(user_id)
                    .bind(admin)
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn upgrade_guest(
                &self,
                upgrade: $crate::store::GuestUpgrade,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let updated = sqlx::query(
                    "UPDATE users SET is_guest = FALSE, password_hash = $2 \
                     WHERE user_id = $1 AND is_guest AND deactivated_at_ms IS NULL",
                )
                .bind(&upgrade.user_id)
                .bind(&upgrade.password_hash)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() == 0 {
                    return Ok(false);
                }
                record_registration_extras(
                    &mut tx,
                    &upgrade.user_id,
                    upgrade.now_ms,
                    &upgrade.extras,
                )
                .await?;
                if let Some(login) = upgrade.login {
                    open_device_session(&mut tx, &upgrade.user_id, login).await?;
                }
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}
