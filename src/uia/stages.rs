//! Authentication stages behind one trait; adding a stage is one type and one registry entry.

use async_trait::async_trait;
use ruma::UserId;
use secrecy::SecretString;
use serde_json::{Map, Value};

use super::flows::StageFailure;
use crate::{
    accounts::{AccountError, Accounts},
    ratelimit::{Limit, RateLimitError, RateLimiter},
};

/// What a stage may know about the operation being authorised.
pub struct StageContext<'a> {
    /// The authenticated user the operation acts for, if the request carried a token.
    pub user: Option<&'a UserId>,
}

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
    async fn attempt(
        &self,
        context: &StageContext<'_>,
        auth: &Map<String, Value>,
    ) -> Result<(), StageFailure>;
}

/// `m.login.dummy`: always passes; used where a flow needs no real proof.
pub struct Dummy;

#[async_trait]
impl Stage for Dummy {
    fn kind(&self) -> &'static str {
        "m.login.dummy"
    }

    async fn attempt(
        &self,
        _: &StageContext<'_>,
        _: &Map<String, Value>,
    ) -> Result<(), StageFailure> {
        Ok(())
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

    async fn attempt(
        &self,
        context: &StageContext<'_>,
        auth: &Map<String, Value>,
    ) -> Result<(), StageFailure> {
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
            Ok(user_id) if user_id == requester => Ok(()),
            Ok(_) | Err(AccountError::InvalidCredentials | AccountError::Deactivated) => {
                Err(forbidden("Invalid username or password"))
            }
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
