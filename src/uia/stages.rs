//! Authentication stages behind one trait, and the stages that need nothing from accounts
//! (`m.login.dummy`, `m.login.terms`, `m.login.recaptcha`); the account stages are in
//! `src/accounts/stages.rs`. Adding a stage is one type and one registry entry in `app.rs`.

use async_trait::async_trait;
use ruma::UserId;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{
    Action,
    flows::{StageFailure, StageFailureKind},
    proofs::{AcceptedPolicy, record},
};
use crate::config::{RecaptchaConfig, TermsPolicy};

/// What a stage may know about the operation being authorised.
pub struct StageContext<'a> {
    /// The operation being authorised.
    pub action: Action,
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

/// A wrong proof (`M_FORBIDDEN`).
pub fn forbidden(message: &str) -> StageFailure {
    StageFailure::new(StageFailureKind::Forbidden, message)
}

/// A failure of `kind`.
pub fn failure(kind: StageFailureKind, message: impl Into<String>) -> StageFailure {
    StageFailure::new(kind, message)
}

/// What the client is told when this server (or a peer it needs) failed during a stage.
pub fn unavailable() -> StageFailure {
    failure(StageFailureKind::Unavailable, "Internal server error")
}

/// A string key of the client's `auth` dictionary.
pub fn string_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
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
        let accepted: Vec<AcceptedPolicy> = self
            .policies
            .iter()
            .map(|(name, policy)| AcceptedPolicy {
                policy: name.clone(),
                version: policy.version.clone(),
            })
            .collect();
        Ok(record(&accepted))
    }
}

/// `m.login.recaptcha`: the client solved a CAPTCHA; its `response` is checked with the
/// configured verification service (reCAPTCHA's `siteverify` protocol). The seeds' v1 clients
/// also send a `challenge`, which the current protocol no longer uses.
pub struct Recaptcha {
    config: RecaptchaConfig,
    http: reqwest::Client,
}

impl Recaptcha {
    /// The stage checking answers with the service in `config`.
    pub fn new(config: RecaptchaConfig) -> Self {
        // The verdict must come from the configured verifier itself: no redirect is followed.
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .build()
            .unwrap_or_default();
        Self { config, http }
    }
}

#[async_trait]
impl Stage for Recaptcha {
    fn kind(&self) -> &'static str {
        "m.login.recaptcha"
    }

    fn params(&self) -> Option<Value> {
        Some(json!({ "public_key": self.config.public_key }))
    }

    async fn attempt(&self, _: &StageContext<'_>, auth: &Map<String, Value>) -> StageOutcome {
        let Some(response) = string_field(auth, "response") else {
            return Err(failure(
                StageFailureKind::CaptchaNeeded,
                "Missing parameter: response",
            ));
        };
        let verdict = self
            .http
            .post(self.config.verify_url.clone())
            .form(&[
                ("secret", self.config.private_key.expose()),
                ("response", response),
            ])
            .send()
            .await;
        let success = match verdict {
            Ok(answer) => answer
                .json::<Value>()
                .await
                .is_ok_and(|body| body["success"] == Value::Bool(true)),
            Err(err) => {
                tracing::error!(error = %err, "the CAPTCHA service could not be reached");
                return Err(failure(
                    StageFailureKind::Unavailable,
                    "The CAPTCHA could not be checked; try again",
                ));
            }
        };
        if success {
            Ok(None)
        } else {
            Err(failure(
                StageFailureKind::CaptchaInvalid,
                "The CAPTCHA answer is wrong",
            ))
        }
    }
}
