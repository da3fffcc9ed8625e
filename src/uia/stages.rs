//! Authentication stages behind one trait; adding a stage is one type and one registry entry.

use async_trait::async_trait;
use ruma::UserId;
use secrecy::SecretString;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::flows::StageFailure;
use crate::{
    accounts::{AccountError, Accounts, registration_tokens::RegistrationTokens},
    config::TermsPolicy,
    ratelimit::{Limit, RateLimitError, RateLimiter},
};

/// What a stage may know about the operation being authorised.
pub struct StageContext<'a> {
    /// The authenticated user the operation acts for, if the request carried a token.
    pub user: Option<&'a UserId>,
    /// SHA-256 (hex) of the UIA session's ID, under which a stage may hold a grant.
    pub session_hash: &'a str,
    /// When the session expires, milliseconds since the epoch: how long a grant is needed.
    pub session_expires_at_ms: i64,
}

/// What a passed stage records in the session for the operation to use once complete (for
/// example the registration token that was reserved); `None` records nothing.
pub type StageOutcome = Result<Option<Value>, StageFailure>;

/// One UIA stage type (`m.login.password`, `m.login.dummy`, …).
#[async_trait]
pub trait Stage: Send + Sync {
    /// The stage type, as it appears in flows and in `auth.type`.
    fn kind(&self) -> &'static str;

    /// The stage's entry in the challenge's `params`, if it has one.
    fn params(&self) -> Option<Value> {
        None
    }

    /// Checks the client's `auth` dictionary for this stage.
    async fn attempt(&self, context: &StageContext<'_>, auth: &Map<String, Value>) -> StageOutcome;
}

/// `m.login.dummy`: always passes; used where a flow needs no real proof.
pub struct Dummy;

#[async_trait]
impl Stage for Dummy {
    fn kind(&self) -> &'static str {
        "m.login.dummy"
    }

    async fn attempt(&self, _: &StageContext<'_>, _: &Map<String, Value>) -> StageOutcome {
        Ok(None)
    }
}

/// `m.login.password`: the requesting user proves they know their password.
pub struct Password {
    accounts: Accounts,
    limiter: RateLimiter,
}

impl Password {
    /// The stage, checking passwords through the account service.
    pub fn new(accounts: Accounts, limiter: RateLimiter) -> Self {
        Self { accounts, limiter }
    }
}

fn forbidden(error: &str) -> StageFailure {
    StageFailure {
        errcode: "M_FORBIDDEN",
        error: error.into(),
    }
}

fn string_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

#[async_trait]
impl Stage for Password {
    fn kind(&self) -> &'static str {
        "m.login.password"
    }

    async fn attempt(&self, context: &StageContext<'_>, auth: &Map<String, Value>) -> StageOutcome {
        let Some(password) = string_field(auth, "password") else {
            return Err(StageFailure {
                errcode: "M_MISSING_PARAM",
                error: "Missing parameter: password".into(),
            });
        };
        let named_user = match auth.get("identifier").and_then(Value::as_object) {
            Some(identifier) if string_field(identifier, "type") == Some("m.id.user") => {
                string_field(identifier, "user")
            }
            Some(_) => return Err(forbidden("Only m.id.user identifiers are supported")),
            None => string_field(auth, "user"),
        };
        let Some(requester) = context.user else {
            return Err(forbidden(
                "Password authentication needs an authenticated user",
            ));
        };
        if let Err(RateLimitError::Limited { retry_after_ms }) = self
            .limiter
            .take(Limit::UiaPasswordPerAccount, Some(requester.as_str()))
            .await
        {
            return Err(StageFailure {
                errcode: "M_LIMIT_EXCEEDED",
                error: format!("Too many password attempts; retry in {retry_after_ms} ms"),
            });
        }
        let user = named_user.unwrap_or(requester.as_str());
        match self
            .accounts
            .verify_password(user, SecretString::from(password.to_owned()))
            .await
        {
            Ok(user_id) if user_id == requester => Ok(None),
            Ok(_)
            | Err(
                AccountError::InvalidCredentials | AccountError::Deactivated | AccountError::Locked,
            ) => Err(forbidden("Invalid username or password")),
            Err(err) => {
                tracing::error!(error = %err, "password stage failed");
                Err(StageFailure {
                    errcode: "M_UNKNOWN",
                    error: "Internal server error".into(),
                })
            }
        }
    }
}

/// `m.login.registration_token`: the registration presents a token the operator issued; one
/// use of it is reserved for this session until the account is created or the session lapses.
pub struct RegistrationToken {
    tokens: RegistrationTokens,
}

impl RegistrationToken {
    /// The stage, checking tokens through the registration-token service.
    pub fn new(tokens: RegistrationTokens) -> Self {
        Self { tokens }
    }
}

#[async_trait]
impl Stage for RegistrationToken {
    fn kind(&self) -> &'static str {
        "m.login.registration_token"
    }

    async fn attempt(&self, context: &StageContext<'_>, auth: &Map<String, Value>) -> StageOutcome {
        let Some(token) = string_field(auth, "token") else {
            return Err(StageFailure {
                errcode: "M_MISSING_PARAM",
                error: "Missing parameter: token".into(),
            });
        };
        match self
            .tokens
            .reserve(token, context.session_hash, context.session_expires_at_ms)
            .await
        {
            Ok(true) => Ok(Some(json!({ "token": token }))),
            Ok(false) => Err(StageFailure {
                errcode: "M_FORBIDDEN",
                error: "Invalid, expired or used-up registration token".into(),
            }),
            Err(err) => {
                tracing::error!(error = %err, "registration token stage failed");
                Err(StageFailure {
                    errcode: "M_UNKNOWN",
                    error: "Internal server error".into(),
                })
            }
        }
    }
}

/// `m.login.terms`: the user accepts the configured policies; the versions shown are recorded
/// with the account.
pub struct Terms {
    policies: BTreeMap<String, TermsPolicy>,
}

impl Terms {
    /// The stage presenting `policies`.
    pub fn new(policies: BTreeMap<String, TermsPolicy>) -> Self {
        Self { policies }
    }
}

#[async_trait]
impl Stage for Terms {
    fn kind(&self) -> &'static str {
        "m.login.terms"
    }

    fn params(&self) -> Option<Value> {
        let policies: Map<String, Value> = self
            .policies
            .iter()
            .map(|(name, policy)| {
                let mut entry = json!({ "version": policy.version });
                for (language, translation) in &policy.translations {
                    entry[language] = json!({ "name": translation.name, "url": translation.url });
                }
                (name.clone(), entry)
            })
            .collect();
        Some(json!({ "policies": policies }))
    }

    async fn attempt(&self, _: &StageContext<'_>, _: &Map<String, Value>) -> StageOutcome {
        let accepted: Vec<Value> = self
            .policies
            .iter()
            .map(|(name, policy)| json!({ "policy": name, "version": policy.version }))
            .collect();
        Ok(Some(Value::Array(accepted)))
    }
}
