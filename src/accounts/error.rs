//! What can go wrong in an account use case, named for the caller. The HTTP layer
//! (`src/http/error.rs`) gives each its Matrix error code; the CLI prints it.

use super::{InvalidUsername, PasswordRejected, password::HashError};
use crate::{
    accounts::registration_tokens::RegistrationTokenError, ratelimit::RateLimitError,
    store::StoreError, threepids::ThreepidError, uia::UiaError,
};

/// What can go wrong in an account operation, named for the caller.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Registration is disabled by the configuration.
    #[error("registration has been disabled")]
    RegistrationDisabled,
    /// Guest registration is disabled by the configuration.
    #[error("guest access is disabled")]
    GuestAccessDisabled,
    /// Password changes are disabled by the configuration.
    #[error("password changes are disabled on this server")]
    PasswordChangeDisabled,
    /// Login tokens are disabled by the configuration.
    #[error("login tokens are disabled on this server")]
    LoginTokensDisabled,
    /// No address can be proven here (no SMTP server, no trusted identity server), so a
    /// forgotten password cannot be reset: the request simply lacks the access token it needs.
    #[error(
        "missing access token (this server neither sends email nor trusts an identity server, \
         so a forgotten password cannot be reset by email)"
    )]
    NoPasswordReset,
    /// No account has the email address that was proven.
    #[error("no account has this email address")]
    NoAccountWithEmail,
    /// A parameter is malformed, for the reason given.
    #[error("{0}")]
    InvalidParam(String),
    /// The request lacks a parameter the operation needs.
    #[error("missing parameter: {0}")]
    MissingParam(&'static str),
    /// The requested username does not make a valid user ID.
    #[error("invalid username: {0}")]
    InvalidUsername(#[from] InvalidUsername),
    /// The user ID is taken (or was taken by an account since deactivated).
    #[error("user ID already taken")]
    UserInUse,
    /// A third-party identifier proven during registration belongs to another account.
    #[error("the email address is already in use")]
    ThreepidInUse,
    /// Only email addresses can be attached to accounts.
    #[error("only email addresses can be attached to accounts here")]
    MediumNotSupported,
    /// The user ID lies in a namespace reserved by the configuration.
    #[error("user ID is in an exclusive namespace")]
    Exclusive,
    /// The new password breaks the policy.
    #[error("{0}")]
    WeakPassword(PasswordRejected),
    /// The password is longer than accepted.
    #[error("{0}")]
    PasswordTooLong(PasswordRejected),
    /// Unknown user or wrong password (deliberately not told apart).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The account is deactivated.
    #[error("account has been deactivated")]
    Deactivated,
    /// The operator has locked the account.
    #[error("account has been locked")]
    Locked,
    /// The operator has suspended the account, and this action is not allowed while suspended.
    #[error("you cannot perform this action while suspended")]
    Suspended,
    /// The login token is unknown, used or expired.
    #[error("invalid login token")]
    InvalidLoginToken,
    /// The operation is refused for this requester, for the reason given.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request is not one this server can act on, for the reason given.
    #[error("{0}")]
    Unsupported(&'static str),
    /// A profile field is not valid, for the reason given.
    #[error("{0}")]
    InvalidProfileField(String),
    /// The profile would exceed its size limit.
    #[error("the profile would exceed 64 KiB")]
    ProfileTooLarge,
    /// A profile field name is longer than 255 bytes.
    #[error("profile field names are at most 255 bytes")]
    ProfileKeyTooLarge,
    /// Guests may not do this.
    #[error("guest accounts may not do this")]
    GuestAccessForbidden,
    /// The user has no such profile field.
    #[error("no such profile field")]
    NoSuchProfileField,
    /// The access token is unknown (or was revoked).
    #[error("unknown access token")]
    UnknownToken,
    /// The refresh token is unknown, revoked, or was already exchanged.
    #[error("unknown refresh token")]
    UnknownRefreshToken,
    /// The access token expired; the client should refresh or log in again.
    #[error("access token has expired")]
    ExpiredToken,
    /// The user does not exist.
    #[error("no such user")]
    NoSuchUser,
    /// The user has no device with that ID.
    #[error("no such device")]
    NoSuchDevice,
    /// User-Interactive Authentication has not (yet) authorised the operation.
    #[error(transparent)]
    Uia(#[from] UiaError),
    /// A third-party identifier step failed.
    #[error(transparent)]
    Threepid(#[from] ThreepidError),
    /// A registration token could not be created.
    #[error(transparent)]
    RegistrationToken(#[from] RegistrationTokenError),
    /// A rate limit refused the attempt.
    #[error(transparent)]
    RateLimited(#[from] RateLimitError),
    /// The store failed.
    #[error("account storage failed")]
    Store(#[from] StoreError),
    /// The password hasher failed.
    #[error(transparent)]
    Hashing(#[from] HashError),
    /// A stored identifier could not be read back.
    #[error("a stored identifier is malformed")]
    CorruptIdentifier(#[from] ruma::IdParseError),
}
