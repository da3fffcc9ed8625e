//! The interface for third-party identifiers: the homeserver's own email verification
//! sessions, addresses attached to accounts, bindings made at identity servers, and OpenID
//! tokens. The statements are in `validations.rs`, `addresses.rs` and `openid.rs`.

use async_trait::async_trait;

use super::StoreError;

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
    /// The account that asked (an address addition made with an access token), named on the
    /// confirmation page.
    pub requester: Option<String>,
    /// The email to queue in the same transaction when this attempt is sent; `None` sends
    /// nothing (a reset for an address no account has, under `hide_address_existence`).
    pub email: Option<QueuedEmail>,
}

/// An email queued in the outbox with its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEmail {
    /// `verification` (the link and code) or `address_in_use` (a notice to the owner).
    pub kind: String,
    /// The address the email goes to: the canonical, stored form.
    pub recipient: String,
    /// The code the email carries (empty for a notice).
    pub code: String,
}

/// An email of the outbox that is due, claimed by this instance until its lease ends.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueEmail {
    /// The outbox entry.
    pub id: i64,
    /// Its verification session.
    pub sid: String,
    /// The session's client secret (part of the link).
    pub client_secret: String,
    /// `verification` or `address_in_use`.
    pub kind: String,
    /// Where it goes.
    pub recipient: String,
    /// `register`, `add` or `password`.
    pub purpose: String,
    /// The code it carries.
    pub code: String,
    /// How many sends failed before.
    pub attempts: i64,
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
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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
    /// SHA-256 (hex) of the current token.
    pub token_hash: String,
    /// The account that asked for an address addition, if known.
    pub requester: Option<String>,
    /// Wrong codes submitted so far.
    pub failed_attempts: i64,
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
    /// The SMTP server refused the session's email for good: no code can arrive.
    DeliveryFailed,
}

/// A third-party identifier attached to an account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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

/// Storage of third-party identifiers. Every method is atomic (one statement, or
/// one unit of work: see [`StoreTx`](super::StoreTx)), except where it says otherwise.
#[async_trait]
pub trait ThreepidStore: Send + Sync {
    /// Starts a verification session, or finds the one this request repeats (same secret,
    /// address and purpose): a higher `send_attempt` replaces its token and asks for a send.
    async fn start_validation(
        &self,
        session: NewValidationSession,
    ) -> Result<ValidationStart, StoreError>;

    /// Deletes a verification session (spent, or no longer wanted).
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

    /// Claims up to `limit` outbox emails that are due at `now_ms` and not held by another
    /// instance, holding them until `lease_until_ms`. Of two instances claiming at once, each
    /// email goes to one.
    async fn claim_due_emails(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<DueEmail>, StoreError>;

    /// An outbox email was sent: it leaves the outbox.
    async fn email_sent(&self, id: i64) -> Result<(), StoreError>;

    /// Sending an outbox email failed for now: it is retried at `next_attempt_at_ms`.
    async fn email_deferred(&self, id: i64, next_attempt_at_ms: i64) -> Result<(), StoreError>;

    /// The SMTP server refused an outbox email for good: it leaves the outbox and its session
    /// is marked failed (unless a newer attempt replaced the email meanwhile).
    async fn email_refused(&self, id: i64, now_ms: i64) -> Result<(), StoreError>;

    /// The identifiers attached to a user, ordered by medium and address.
    async fn user_threepids(&self, user_id: &str) -> Result<Vec<ThreepidRecord>, StoreError>;

    /// The user an identifier is attached to.
    async fn threepid_owner(
        &self,
        medium: &str,
        address: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Attaches an identifier to a user (again attaching it to the same user refreshes its
    /// validation time); owned by another user, it is
    /// [`Conflict::ThreepidInUse`](super::Conflict::ThreepidInUse).
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
