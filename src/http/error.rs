//! The one error type every handler returns: a Matrix standard error, a UIA challenge, or an
//! internal failure whose detail is logged and never sent. This is the one place where domain
//! errors get their Matrix error codes and HTTP statuses.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};
use std::borrow::Cow;

use crate::{
    accounts::password::HashError,
    uia::{Challenge, StageFailureKind, UiaError},
};

/// How long a client told the hashing queue is full should wait before retrying.
const BUSY_RETRY_AFTER_MS: u64 = 1000;

/// An error answered to a client.
#[derive(Debug)]
pub enum MatrixError {
    /// The spec's standard error JSON: `{"errcode": …, "error": …}` plus optional extra fields.
    Standard {
        /// HTTP status.
        status: StatusCode,
        /// The Matrix `errcode`, e.g. `M_FORBIDDEN`.
        errcode: Cow<'static, str>,
        /// Human-readable explanation.
        message: String,
        /// Extra top-level fields (`soft_logout`, `retry_after_ms`, …).
        extra: Map<String, Value>,
    },
    /// A 401 User-Interactive Authentication response body (`flows`, `params`, `session`, …).
    Uiaa(Value),
    /// Something failed on our side; the detail goes to the log only.
    Internal(String),
}

impl MatrixError {
    /// A standard error with the given status, code and message.
    pub fn new(
        status: StatusCode,
        errcode: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self::Standard {
            status,
            errcode: errcode.into(),
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// Adds an extra top-level field to a standard error.
    #[must_use]
    pub fn with(mut self, key: &str, value: Value) -> Self {
        if let Self::Standard { extra, .. } = &mut self {
            extra.insert(key.to_owned(), value);
        }
        self
    }

    /// 400 `M_BAD_JSON`.
    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", message)
    }

    /// 400 `M_MISSING_PARAM`.
    pub fn missing_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_MISSING_PARAM", message)
    }

    /// 400 `M_INVALID_PARAM`.
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", message)
    }

    /// 403 `M_FORBIDDEN`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", message)
    }

    /// 403 `M_GUEST_ACCESS_FORBIDDEN`: the endpoint is reserved for full accounts.
    pub fn guest_access_forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "M_GUEST_ACCESS_FORBIDDEN",
            "Guest accounts may not use this endpoint",
        )
    }

    /// 400 `M_UNKNOWN`.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", message)
    }

    /// 404/405 `M_UNRECOGNIZED`.
    pub fn unrecognized(status: StatusCode) -> Self {
        Self::new(status, "M_UNRECOGNIZED", "Unrecognized request")
    }

    /// An internal failure, with context for the log.
    pub fn internal(context: impl std::fmt::Display) -> Self {
        Self::Internal(context.to_string())
    }
}

/// An error and its causes, one after the other, for the log. A cause whose text the line
/// already holds (an error that prints its source itself) is not repeated.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl IntoResponse for MatrixError {
    fn into_response(self) -> Response {
        match self {
            Self::Standard {
                status,
                errcode,
                message,
                extra,
            } => {
                let mut body = Map::new();
                body.insert("errcode".into(), Value::String(errcode.into_owned()));
                body.insert("error".into(), message.into());
                let retry_after = extra.get("retry_after_ms").and_then(Value::as_u64);
                body.extend(extra);
                let mut response = (status, Json(Value::Object(body))).into_response();
                if let Some(ms) = retry_after
                    && let Ok(value) = HeaderValue::from_str(&ms.div_ceil(1000).to_string())
                {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
            Self::Uiaa(body) => (StatusCode::UNAUTHORIZED, Json(body)).into_response(),
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                let body = json!({"errcode": "M_UNKNOWN", "error": "Internal server error"});
                (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
            }
        }
    }
}

impl From<crate::ratelimit::RateLimitError> for MatrixError {
    fn from(err: crate::ratelimit::RateLimitError) -> Self {
        match err {
            crate::ratelimit::RateLimitError::Limited { retry_after_ms } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "M_LIMIT_EXCEEDED",
                "Too many requests",
            )
            .with("retry_after_ms", Value::from(retry_after_ms)),
            crate::ratelimit::RateLimitError::Store(err) => Self::internal(error_chain(&err)),
        }
    }
}

impl From<crate::accounts::AccountError> for MatrixError {
    fn from(err: crate::accounts::AccountError) -> Self {
        use crate::accounts::AccountError;
        let message = err.to_string();
        match err {
            AccountError::RegistrationDisabled => Self::forbidden("Registration has been disabled"),
            AccountError::GuestAccessDisabled => Self::new(
                StatusCode::FORBIDDEN,
                "M_GUEST_ACCESS_FORBIDDEN",
                "Guest access is disabled",
            ),
            AccountError::PasswordChangeDisabled => {
                Self::forbidden("Password changes are disabled on this server")
            }
            AccountError::LoginTokensDisabled => {
                Self::unknown("Login tokens are disabled on this server")
            }
            AccountError::NoPasswordReset => Self::new(
                StatusCode::UNAUTHORIZED,
                "M_MISSING_TOKEN",
                "Missing access token (this server neither sends email nor trusts an identity \
                 server, so a forgotten password cannot be reset by email)",
            ),
            AccountError::NoAccountWithEmail => Self::new(
                StatusCode::NOT_FOUND,
                "M_NOT_FOUND",
                "No account has this email address",
            ),
            AccountError::InvalidParam(reason) => Self::invalid_param(reason),
            AccountError::MissingParam(name) => {
                Self::missing_param(format!("Missing parameter: {name}"))
            }
            AccountError::MediumNotSupported => Self::new(
                StatusCode::BAD_REQUEST,
                "M_THREEPID_MEDIUM_NOT_SUPPORTED",
                "Only email addresses can be attached to accounts here",
            ),
            AccountError::Unsupported(reason) => Self::unknown(reason),
            AccountError::Uia(err) => err.into(),
            AccountError::Threepid(err) => err.into(),
            AccountError::RegistrationToken(err) => Self::internal(err),
            AccountError::Hashing(HashError::Busy) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "M_LIMIT_EXCEEDED",
                "Too many password checks at once; retry shortly",
            )
            .with("retry_after_ms", Value::from(BUSY_RETRY_AFTER_MS)),
            AccountError::Store(_)
            | AccountError::Hashing(_)
            | AccountError::CorruptIdentifier(_) => Self::internal(error_chain(&err)),
            AccountError::InvalidUsername(_) => {
                Self::new(StatusCode::BAD_REQUEST, "M_INVALID_USERNAME", message)
            }
            AccountError::UserInUse => Self::new(
                StatusCode::BAD_REQUEST,
                "M_USER_IN_USE",
                "User ID already taken",
            ),
            AccountError::ThreepidInUse => {
                Self::new(StatusCode::BAD_REQUEST, "M_THREEPID_IN_USE", message)
            }
            AccountError::Exclusive => Self::new(
                StatusCode::BAD_REQUEST,
                "M_EXCLUSIVE",
                "User ID is reserved by an application service",
            ),
            AccountError::WeakPassword(_) => {
                Self::new(StatusCode::BAD_REQUEST, "M_WEAK_PASSWORD", message)
            }
            AccountError::PasswordTooLong(_) => Self::invalid_param(message),
            AccountError::InvalidCredentials => Self::forbidden("Invalid username or password"),
            AccountError::Deactivated => Self::new(
                StatusCode::FORBIDDEN,
                "M_USER_DEACTIVATED",
                "This account has been deactivated",
            ),
            AccountError::UnknownToken => Self::new(
                StatusCode::UNAUTHORIZED,
                "M_UNKNOWN_TOKEN",
                "Unknown access token",
            )
            .with("soft_logout", Value::Bool(false)),
            AccountError::UnknownRefreshToken => Self::new(
                StatusCode::UNAUTHORIZED,
                "M_UNKNOWN_TOKEN",
                "Unknown or already used refresh token",
            )
            .with("soft_logout", Value::Bool(false)),
            AccountError::ExpiredToken => Self::new(
                StatusCode::UNAUTHORIZED,
                "M_UNKNOWN_TOKEN",
                "Access token has expired",
            )
            .with("soft_logout", Value::Bool(true)),
            AccountError::NoSuchDevice => {
                Self::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "No such device")
            }
            AccountError::NoSuchUser => {
                Self::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "No such user")
            }
            AccountError::Locked => Self::new(
                StatusCode::UNAUTHORIZED,
                "M_USER_LOCKED",
                "This account has been locked",
            )
            .with("soft_logout", Value::Bool(true)),
            AccountError::Suspended => Self::new(
                StatusCode::FORBIDDEN,
                "M_USER_SUSPENDED",
                "You cannot perform this action while suspended.",
            ),
            AccountError::InvalidLoginToken => Self::forbidden("Invalid login token"),
            AccountError::Forbidden(reason) => Self::forbidden(reason),
            AccountError::InvalidProfileField(_) => Self::invalid_param(message),
            AccountError::ProfileTooLarge => {
                Self::new(StatusCode::BAD_REQUEST, "M_PROFILE_TOO_LARGE", message)
            }
            AccountError::ProfileKeyTooLarge => {
                Self::new(StatusCode::BAD_REQUEST, "M_KEY_TOO_LARGE", message)
            }
            AccountError::GuestAccessForbidden => Self::guest_access_forbidden(),
            AccountError::NoSuchProfileField => Self::new(
                StatusCode::NOT_FOUND,
                "M_NOT_FOUND",
                "The profile field is not set",
            ),
            AccountError::RateLimited(limited) => limited.into(),
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for MatrixError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        Self::invalid_param(rejection.body_text())
    }
}

impl From<crate::threepids::ThreepidError> for MatrixError {
    fn from(err: crate::threepids::ThreepidError) -> Self {
        use crate::threepids::ThreepidError;
        let message = err.to_string();
        let (status, errcode) = match err {
            ThreepidError::NoMailer | ThreepidError::Denied => {
                (StatusCode::FORBIDDEN, "M_THREEPID_DENIED")
            }
            ThreepidError::InvalidParam(_) | ThreepidError::WrongToken => {
                (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
            }
            ThreepidError::InUse => (StatusCode::BAD_REQUEST, "M_THREEPID_IN_USE"),
            ThreepidError::NotFound => (StatusCode::BAD_REQUEST, "M_THREEPID_NOT_FOUND"),
            ThreepidError::NoSession => (StatusCode::BAD_REQUEST, "M_NO_VALID_SESSION"),
            ThreepidError::SessionExpired => (StatusCode::BAD_REQUEST, "M_SESSION_EXPIRED"),
            ThreepidError::NotValidated => (StatusCode::BAD_REQUEST, "M_SESSION_NOT_VALIDATED"),
            ThreepidError::TooManyAttempts => (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
            ThreepidError::NotTrusted(_) => (StatusCode::BAD_REQUEST, "M_SERVER_NOT_TRUSTED"),
            ThreepidError::AuthFailed => (StatusCode::FORBIDDEN, "M_THREEPID_AUTH_FAILED"),
            ThreepidError::DeliveryFailed => (StatusCode::BAD_REQUEST, "M_UNKNOWN"),
            // The detail (an internal URL, the peer's answer) is for the operator's log only.
            ThreepidError::IdentityServer(_) => {
                tracing::warn!(error = %error_chain(&err), "an identity server failed");
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "M_UNKNOWN",
                    "the identity server could not be asked; try again later",
                );
            }
            ThreepidError::UnknownOpenIdToken => (StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN"),
            ThreepidError::Store(_) | ThreepidError::CorruptIdentifier(_) => {
                return Self::internal(error_chain(&err));
            }
        };
        Self::new(status, errcode, message)
    }
}

impl From<UiaError> for MatrixError {
    fn from(err: UiaError) -> Self {
        match err {
            UiaError::Challenge(challenge) => Self::Uiaa(challenge_body(&challenge)),
            UiaError::MalformedAuth(message) => Self::bad_json(message),
            UiaError::StageNotOffered(stage) => Self::new(
                StatusCode::BAD_REQUEST,
                "M_UNRECOGNIZED",
                format!("Authentication stage {stage:?} is not offered for this request"),
            ),
            UiaError::UnknownSession => Self::unknown("Unknown or expired authentication session"),
            UiaError::OperationChanged => {
                Self::forbidden("This authentication session was started for a different request")
            }
            UiaError::OtherUser => {
                Self::forbidden("The authentication names another user than the access token")
            }
            UiaError::Store(err) => Self::internal(error_chain(&err)),
        }
    }
}

/// The Matrix error code of a failed UIA stage.
pub fn stage_errcode(kind: StageFailureKind) -> &'static str {
    match kind {
        StageFailureKind::Forbidden => "M_FORBIDDEN",
        StageFailureKind::MissingParam => "M_MISSING_PARAM",
        StageFailureKind::LimitExceeded => "M_LIMIT_EXCEEDED",
        StageFailureKind::OtherUser => "M_FORBIDDEN",
        StageFailureKind::Unauthorized => "M_UNAUTHORIZED",
        StageFailureKind::ServerNotTrusted => "M_SERVER_NOT_TRUSTED",
        StageFailureKind::ThreepidAuthFailed => "M_THREEPID_AUTH_FAILED",
        StageFailureKind::CaptchaNeeded => "M_CAPTCHA_NEEDED",
        StageFailureKind::CaptchaInvalid => "M_CAPTCHA_INVALID",
        StageFailureKind::Unavailable => "M_UNKNOWN",
    }
}

/// The 401 body of the spec's User-Interactive Authentication API: `flows`, `params`,
/// `session`, `completed`, and the failed stage's `errcode` and `error`.
fn challenge_body(challenge: &Challenge) -> Value {
    let flows: Vec<Value> = challenge
        .flows
        .iter()
        .map(|stages| json!({ "stages": stages }))
        .collect();
    let mut body = json!({
        "flows": flows,
        "params": challenge.params,
        "session": challenge.session,
        "completed": challenge.completed,
    });
    if let Some(failure) = &challenge.failure {
        body["errcode"] = json!(stage_errcode(failure.kind));
        body["error"] = json!(failure.message);
    }
    body
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    #[test]
    fn an_error_chain_names_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: {0}")]
        struct Outer(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("wrapper")]
        struct Wrapper(#[source] Outer);
        let io = std::io::Error::other("disk full");
        assert_eq!(
            error_chain(&Wrapper(Outer(io))),
            "wrapper: outer: disk full"
        );
    }

    use super::*;
    use crate::uia::StageFailure;

    #[test]
    fn a_challenge_carries_the_failed_stage() {
        let challenge = Challenge {
            flows: vec![vec!["a".into(), "b".into()]],
            params: Map::new(),
            session: "s".into(),
            completed: vec!["a".into()],
            failure: Some(StageFailure::new(StageFailureKind::Forbidden, "nope")),
        };
        let body = challenge_body(&challenge);
        assert_eq!(body["flows"][0]["stages"], json!(["a", "b"]));
        assert_eq!(body["session"], "s");
        assert_eq!(body["completed"], json!(["a"]));
        assert_eq!(body["errcode"], "M_FORBIDDEN");
        assert_eq!(body["error"], "nope");
    }
}
