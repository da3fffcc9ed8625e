//! Durable state: the [`Store`] trait and its one implementation over `sqlx::Any`, on SQLite or
//! PostgreSQL (picked by the database URL).
//!
//! The SQL is written once, in plain Rust, split by area (`accounts.rs`, `sessions.rs`,
//! `refresh_tokens.rs`, `devices.rs`, `uia.rs`, `rate_limits.rs`, `registration_tokens.rs`,
//! `profiles.rs`, `validations.rs`, `addresses.rs`, `openid.rs`). Where the two databases
//! differ, a `Dialect` value (`dialect.rs`) supplies the fragment or the `BEGIN` statement.
//!
//! Every write is a method of [`StoreTx`], the unit of work: a transaction with domain-shaped
//! methods, committed once. The one-call methods of [`Store`], [`LifecycleStore`] and
//! [`ThreepidStore`] each begin a unit of work, call its method(s) and commit; those that write
//! a single statement run it on its own instead, so SQLite's write lock is never held across
//! an `await` (`one_call.rs`). Reads outside a unit of work run on a pooled connection. Secrets never reach this layer in
//! clear: tokens and UIA session ids arrive already hashed.
//!
//! [`Store`] is public because `app::build` takes it (and the integration tests call that), so
//! the traits and the types in their methods are public too; the implementation and the
//! methods of [`StoreTx`] are `pub(crate)`, so rustc reports what no one uses.

mod accounts;
mod addresses;
mod connect;
mod devices;
mod dialect;
mod lifecycle;
mod one_call;
mod openid;
mod outbox;
mod profiles;
mod rate_limits;
mod refresh_tokens;
mod registration_tokens;
mod sessions;
#[cfg(test)]
mod tests;
mod threepids;
mod uia;
mod unit_of_work;
mod validations;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

pub(crate) use connect::SqlStore;
use dialect::{DbBool, Dialect};
pub use lifecycle::{
    AcceptedTerms, GuestUpgrade, LifecycleStore, NewLoginToken, ProfileWrite, RegistrationExtras,
    RegistrationTokenRecord, Restriction,
};
pub use threepids::{
    BindingRecord, DueEmail, NewThreepid, NewValidationSession, QueuedEmail, ThreepidRecord,
    ThreepidStore, TokenCheck, ValidationSessionRecord, ValidationStart,
};
pub use unit_of_work::StoreTx;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule of the database refused the write (for example a taken localpart).
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The embedded migrations could not be applied.
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// Which uniqueness rule a write ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// The user ID or the localpart is taken (also by a deactivated account).
    #[error("user ID or localpart already taken")]
    UserIdTaken,
    /// A new access or refresh token hashes to one already stored.
    #[error("access or refresh token hash already in use")]
    TokenHashInUse,
    /// A UIA session with this id already exists.
    #[error("UIA session already exists")]
    UiaSessionExists,
    /// A registration token with this text already exists.
    #[error("registration token already exists")]
    RegistrationTokenExists,
    /// A concurrent identical request started the verification session first.
    #[error("validation session already started")]
    ValidationSessionExists,
    /// The third-party identifier is attached to another account.
    #[error("third-party identifier already in use")]
    ThreepidInUse,
}

impl From<Conflict> for StoreError {
    fn from(conflict: Conflict) -> Self {
        Self::Conflict(conflict)
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`] with `conflict` as the reason.
fn conflict_on_unique(conflict: Conflict) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(conflict),
        other => StoreError::Database(other),
    }
}

/// A new account, written together with its first login (if any) in one transaction.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Full Matrix user ID, `@localpart:server_name`.
    pub user_id: String,
    /// The localpart; unique forever, even after deactivation.
    pub localpart: String,
    /// Argon2id PHC string, or `None` for accounts without a password (guests).
    pub password_hash: Option<String>,
    /// Whether this is a guest account.
    pub is_guest: bool,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The device and access token to create with the account, unless login was inhibited.
    pub login: Option<NewLogin>,
    /// Display name, accepted terms and registration token, written in the same transaction.
    pub extras: RegistrationExtras,
}

/// A device session to open: the device (created or reused) and its new access token.
#[derive(Debug, Clone)]
pub struct NewLogin {
    /// Device ID, created if the user has no such device yet.
    pub device_id: String,
    /// Display name for a newly created device; an existing device keeps its name.
    pub display_name: Option<String>,
    /// SHA-256 (hex) of the new access token.
    pub access_token_hash: String,
    /// When the access token stops working, milliseconds since the epoch; `None` = never.
    pub expires_at_ms: Option<i64>,
    /// SHA-256 (hex) of the refresh token paired with the access token, if one was issued.
    pub refresh_token_hash: Option<String>,
    /// Time of the login, milliseconds since the epoch.
    pub now_ms: i64,
    /// Client IP address of the login request, if known.
    pub ip: Option<String>,
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRecord {
    /// Full Matrix user ID.
    pub user_id: String,
    /// The localpart.
    pub localpart: String,
    /// Password hash (argon2id PHC, or bcrypt imported from Synapse); `None` = no password login.
    pub password_hash: Option<String>,
    /// Whether this is a guest account.
    #[sqlx(try_from = "DbBool")]
    pub is_guest: bool,
    /// Creation time, milliseconds since the epoch.
    pub created_at_ms: i64,
    /// When the account was deactivated, if it was.
    pub deactivated_at_ms: Option<i64>,
    /// Whether the operator has locked the account.
    #[sqlx(try_from = "DbBool")]
    pub locked: bool,
    /// Whether the operator has suspended the account.
    #[sqlx(try_from = "DbBool")]
    pub suspended: bool,
    /// Whether the account is a server administrator.
    #[sqlx(try_from = "DbBool")]
    pub is_admin: bool,
}

/// Who an access token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenOwner {
    /// Full Matrix user ID.
    pub user_id: String,
    /// The device the token was issued to.
    pub device_id: String,
    /// Whether the account is a guest account.
    #[sqlx(try_from = "DbBool")]
    pub is_guest: bool,
    /// When the token stops working, milliseconds since the epoch; `None` = never.
    pub expires_at_ms: Option<i64>,
    /// Whether the operator has locked the account.
    #[sqlx(try_from = "DbBool")]
    pub locked: bool,
    /// Whether the operator has suspended the account.
    #[sqlx(try_from = "DbBool")]
    pub suspended: bool,
}

/// The tokens that replace a session's pair on refresh.
#[derive(Debug, Clone)]
pub struct TokenRotation {
    /// SHA-256 (hex) of the new access token.
    pub access_token_hash: String,
    /// SHA-256 (hex) of the new refresh token.
    pub refresh_token_hash: String,
    /// When the new access token stops working, milliseconds since the epoch.
    pub expires_at_ms: Option<i64>,
    /// Until when (milliseconds since the epoch) the presented refresh token is accepted again,
    /// for a client that lost the response; `None` revokes it at once (the v2_alpha seed).
    pub grace_until_ms: Option<i64>,
    /// Until when the refresh tokens this rotation spends are remembered as spent (milliseconds
    /// since the epoch).
    pub forget_spent_at_ms: i64,
    /// Time of the refresh, milliseconds since the epoch.
    pub now_ms: i64,
}

/// What became of a refresh token presented for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The session's tokens were replaced.
    Rotated {
        /// Owner of the session.
        user_id: String,
        /// The session's device.
        device_id: String,
    },
    /// No session holds this refresh token, and it is not remembered as spent.
    Unknown,
    /// The refresh token was once this device's but is spent: replaced by a later one, and
    /// past its grace. Nothing was changed.
    Spent {
        /// Owner of the device.
        user_id: String,
        /// The device the token was issued to.
        device_id: String,
    },
    /// The session's account is locked; nothing was rotated.
    Locked,
}

/// A device as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviceRecord {
    /// Owner of the device.
    pub user_id: String,
    /// Device ID.
    pub device_id: String,
    /// Human-readable name, if set.
    pub display_name: Option<String>,
    /// Last time the device was seen, milliseconds since the epoch.
    pub last_seen_ts: Option<i64>,
    /// Last IP the device was seen from.
    pub last_seen_ip: Option<String>,
}

/// When and from where a device was last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastSeen {
    /// Owner of the device.
    pub user_id: String,
    /// The device.
    pub device_id: String,
    /// Time of the last request, milliseconds since the epoch.
    pub ts: i64,
    /// IP address of the last request, if known.
    pub ip: Option<String>,
}

/// A User-Interactive Authentication session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiaSessionRecord {
    /// SHA-256 (hex) of the session ID handed to the client.
    pub session_hash: String,
    /// The operation the session was started for (e.g. `register`).
    pub action: String,
    /// HMAC of method, path and body (without `auth`), keyed by the session ID: binds the
    /// session to the request that started it.
    pub fingerprint: String,
    /// The user the operation acts for, when the request was authenticated.
    pub user_id: Option<String>,
    /// What the session remembers, by name: each completed stage's record (under the stage
    /// type) and the operation's own values, as JSON text.
    pub values: BTreeMap<String, String>,
    /// Creation time, milliseconds since the epoch.
    pub created_at_ms: i64,
    /// Expiry time, milliseconds since the epoch.
    pub expires_at_ms: i64,
    /// Stages completed so far, in completion order.
    pub completed: Vec<String>,
}

/// Where a UIA session stands, read in the transaction that last changed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UiaProgressRecord {
    /// Stages completed so far, in completion order.
    pub completed: Vec<String>,
    /// What the session remembers, by name, as JSON text.
    pub values: BTreeMap<String, String>,
}

/// The storage interface of Vestibule, on SQLite or PostgreSQL (one implementation over
/// `sqlx::Any`).
///
/// Every method is atomic: one statement, or one unit of work begun and committed inside the
/// call. A use case that must change several things at once opens its own unit of work with
/// [`Store::begin`] and commits it when everything is written.
#[async_trait]
pub trait Store: LifecycleStore + ThreepidStore + Send + Sync + 'static {
    /// Begins a unit of work: a write transaction whose changes become visible together on
    /// `StoreTx::commit`, and are rolled back if it is dropped without.
    async fn begin(&self) -> Result<StoreTx, StoreError>;

    /// Creates the user and, if given, its first device and access token, atomically.
    /// A taken localpart (even of a deactivated account) is `StoreError::Conflict`.
    async fn create_account(&self, account: NewAccount) -> Result<(), StoreError>;

    /// Whether an account (active or deactivated) with this localpart exists.
    async fn localpart_exists(&self, localpart: &str) -> Result<bool, StoreError>;

    /// Looks an account up by full user ID.
    async fn find_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Replaces the password hash; `false` if there is no such user.
    async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError>;

    /// Marks the account deactivated at `now_ms` and deletes all its devices, tokens and
    /// attached addresses (and, with `erase`, its profile); the password hash is kept so a
    /// correct password can be told it belongs to a deactivated account. `false` if there is no such active user.
    async fn deactivate_user(
        &self,
        user_id: &str,
        now_ms: i64,
        erase: bool,
    ) -> Result<bool, StoreError>;

    /// Opens a device session: creates the device if the user has none with that ID (else keeps
    /// it and updates its last-seen), deletes every token the device held before, and stores
    /// the new access token.
    async fn start_login(&self, user_id: &str, login: NewLogin) -> Result<(), StoreError>;

    /// Who holds the access token with this hash.
    async fn find_token_owner(
        &self,
        access_token_hash: &str,
    ) -> Result<Option<TokenOwner>, StoreError>;

    /// Deletes a device and every token issued to it; `false` if it did not exist.
    async fn delete_device(&self, user_id: &str, device_id: &str) -> Result<bool, StoreError>;

    /// Deletes every device (and their tokens) of a user except `keep_device_id`; returns how
    /// many devices were deleted.
    async fn delete_all_devices(
        &self,
        user_id: &str,
        keep_device_id: Option<&str>,
    ) -> Result<u64, StoreError>;

    /// Sets (or with `None` clears) a device's display name; `false` if there is no such device.
    async fn rename_device(
        &self,
        user_id: &str,
        device_id: &str,
        display_name: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Records last-seen times in one transaction; a time older than the stored one is
    /// ignored, and devices that no longer exist are skipped.
    async fn update_last_seen(&self, updates: &[LastSeen]) -> Result<(), StoreError>;

    /// All devices of a user, ordered by device ID.
    async fn list_devices(&self, user_id: &str) -> Result<Vec<DeviceRecord>, StoreError>;

    /// Stores a new UIA session (its `completed` list and `values` are ignored: a new session
    /// has none).
    async fn insert_uia_session(&self, session: UiaSessionRecord) -> Result<(), StoreError>;

    /// Looks a UIA session up, with its completed stages; expired sessions are still returned
    /// (the caller decides using its clock).
    async fn find_uia_session(
        &self,
        session_hash: &str,
    ) -> Result<Option<UiaSessionRecord>, StoreError>;

    /// Records a completed stage (idempotent) together with what it recorded (kept under the
    /// stage's name), in one transaction, and returns where the session stands, read in that
    /// same transaction. An unknown session records nothing and stands nowhere.
    async fn complete_uia_stage(
        &self,
        session_hash: &str,
        stage: &str,
        record: Option<&str>,
    ) -> Result<UiaProgressRecord, StoreError>;

    /// Sets one named value of a session (JSON text), leaving its other values as they are;
    /// `false` if the session does not exist.
    async fn set_uia_value(
        &self,
        session_hash: &str,
        name: &str,
        value: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes a session; `true` only for the one caller that actually deleted it, so a
    /// completed session can be consumed exactly once.
    async fn take_uia_session(&self, session_hash: &str) -> Result<bool, StoreError>;

    /// Deletes sessions that expired before `now_ms`; returns how many.
    async fn delete_expired_uia_sessions(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// Takes one request from the rate-limit bucket `key` (GCRA: one request per
    /// `interval_ms`, bursts of `burst`), atomically across instances. `Ok(None)` when allowed,
    /// `Ok(Some(ms))` when refused, with the wait until a request would be allowed.
    async fn take_rate_limit(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> Result<Option<i64>, StoreError>;

    /// Like [`Store::take_rate_limit`] but only looks: whether a request would be allowed now.
    async fn peek_rate_limit(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> Result<Option<i64>, StoreError>;

    /// Deletes buckets that are full again (nothing to remember); returns how many.
    async fn delete_idle_rate_limits(&self, now_ms: i64) -> Result<u64, StoreError>;
}

/// Opens the store named by a database URL (`sqlite:…`, `sqlite://…` or a bare file path for
/// SQLite, `postgres://…` or `postgresql://…` for PostgreSQL), creating the SQLite file if
/// needed, and applies the embedded migrations.
/// A `max_connections` of 0 picks the backend's default pool size (4 for SQLite, 16 for
/// PostgreSQL).
pub(crate) async fn open(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    let max_connections = match max_connections {
        0 => Dialect::of_url(url).default_pool_size(),
        n => n,
    };
    Ok(Arc::new(SqlStore::connect(url, max_connections).await?))
}
