//! The interface for what an account gains after registration: login tokens, registration
//! tokens, profile fields, accepted terms, the operator's lock and suspension, and guest
//! upgrades. The statements are in `sessions.rs`, `registration_tokens.rs`, `profiles.rs` and
//! `accounts.rs`.

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
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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
    pub(super) fn column(self) -> &'static str {
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

/// Storage of the account-lifecycle features. Every method is atomic (one statement, or
/// one unit of work: see [`StoreTx`](super::StoreTx)), except where it says otherwise.
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
    /// verification sessions, expired OpenID tokens and spent refresh tokens whose memory ended
    /// (each kind on its own; returns how many in all).
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

    /// The policy versions the user accepted, ordered by policy and version. (Only tests read
    /// them back; the server records them with the account.)
    #[cfg(test)]
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
