//! Authentication stages behind one trait; adding a stage is one type and one registry entry.

use async_trait::async_trait;
use ruma::UserId;
use secrecy::SecretString;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{
    Action,
    flows::{StageFailure, StageFailureKind},
    proofs::{AcceptedPolicy, EmailProof, IdentityServerSession, TokenProof, record},
};
use crate::{
    accounts::{AccountError, PasswordVerifier, registration_tokens::RegistrationTokens},
    config::{RecaptchaConfig, TermsPolicy},
    email::EmailPurpose,
    identity::SessionCredentials,
    ratelimit::{Limit, RateLimitError, RateLimiter},
    threepids::{ThreepidError, Threepids, canonical_email},
};

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

/// `m.login.password`: the requesting user proves they know their password.
pub struct Password {
    verifier: PasswordVerifier,
    limiter: RateLimiter,
}

impl Password {
    /// The stage, checking passwords through the account service.
    pub fn new(verifier: PasswordVerifier, limiter: RateLimiter) -> Self {
        Self { verifier, limiter }
    }
}

fn forbidden(message: &str) -> StageFailure {
    StageFailure::new(StageFailureKind::Forbidden, message)
}

fn failure(kind: StageFailureKind, message: impl Into<String>) -> StageFailure {
    StageFailure::new(kind, message)
}

/// What the client is told when this server (or a peer it needs) failed during a stage.
fn unavailable() -> StageFailure {
    failure(StageFailureKind::Unavailable, "Internal server error")
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
            return Err(failure(
                StageFailureKind::MissingParam,
                "Missing parameter: password",
            ));
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
            return Err(failure(
                StageFailureKind::LimitExceeded,
                format!("Too many password attempts; retry in {retry_after_ms} ms"),
            ));
        }
        let user = named_user.unwrap_or(requester.as_str());
        match self
            .verifier
            .verify(user, SecretString::from(password.to_owned()))
            .await
        {
            Ok(user_id) if user_id == requester => Ok(None),
            Ok(_)
            | Err(
                AccountError::InvalidCredentials | AccountError::Deactivated | AccountError::Locked,
            ) => Err(forbidden("Invalid username or password")),
            Err(err) => {
                tracing::error!(error = %err, "password stage failed");
                Err(unavailable())
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
            return Err(failure(
                StageFailureKind::MissingParam,
                "Missing parameter: token",
            ));
        };
        match self
            .tokens
            .reserve(token, context.session_hash, context.session_expires_at_ms)
            .await
        {
            Ok(true) => Ok(record(&TokenProof {
                token: token.to_owned(),
            })),
            Ok(false) => Err(failure(
                StageFailureKind::Forbidden,
                "Invalid, expired or used-up registration token",
            )),
            Err(err) => {
                tracing::error!(error = %err, "registration token stage failed");
                Err(unavailable())
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

/// `m.login.email.identity`: the user proves control of an email address through a
/// verification session, the homeserver's own (`threepid_creds` with `sid` and
/// `client_secret`) or, for older clients, a trusted identity server's (`id_server` too; the
/// seeds' `threepidCreds`). The proven address is recorded for the operation: attached to a
/// new account, or naming the account whose password is reset.
pub struct EmailIdentity {
    threepids: Threepids,
}

impl EmailIdentity {
    /// The stage, checking sessions through the third-party identifier service.
    pub fn new(threepids: Threepids) -> Self {
        Self { threepids }
    }
}

#[async_trait]
impl Stage for EmailIdentity {
    fn kind(&self) -> &'static str {
        "m.login.email.identity"
    }

    async fn attempt(&self, context: &StageContext<'_>, auth: &Map<String, Value>) -> StageOutcome {
        let purpose = match context.action {
            Action::Register => EmailPurpose::Register,
            Action::ChangePassword => EmailPurpose::Password,
            _ => return Err(forbidden("Email authentication is not offered here")),
        };
        let Some(creds) = auth
            .get("threepid_creds")
            .or_else(|| auth.get("threepidCreds"))
            .and_then(Value::as_object)
        else {
            return Err(failure(
                StageFailureKind::MissingParam,
                "Missing parameter: threepid_creds",
            ));
        };
        let (Some(sid), Some(client_secret)) = (
            string_field(creds, "sid"),
            string_field(creds, "client_secret"),
        ) else {
            return Err(failure(
                StageFailureKind::MissingParam,
                "threepid_creds needs sid and client_secret",
            ));
        };
        match self
            .threepids
            .proven_by_session(sid, client_secret, purpose)
            .await
        {
            Ok(proven) => {
                return Ok(record(&EmailProof {
                    medium: proven.medium,
                    address: proven.address,
                    validated_at_ms: proven.validated_at_ms,
                    sid: proven.sid,
                    identity_server: None,
                }));
            }
            Err(ThreepidError::NoSession) if string_field(creds, "id_server").is_some() => {}
            Err(err) => return Err(email_failure(&err)),
        }
        let session = SessionCredentials {
            id_server: string_field(creds, "id_server").unwrap_or_default(),
            sid,
            client_secret,
            id_access_token: string_field(creds, "id_access_token"),
        };
        match self.threepids.proven_by_identity_server(session).await {
            Ok(validated) => Ok(record(&EmailProof {
                medium: validated.medium,
                address: canonical_email(&validated.address),
                validated_at_ms: validated.validated_at_ms,
                sid: None,
                identity_server: Some(IdentityServerSession {
                    id_server: session.id_server.to_owned(),
                    sid: sid.to_owned(),
                    client_secret: client_secret.to_owned(),
                }),
            })),
            Err(err) => Err(email_failure(&err)),
        }
    }
}

/// The stage failure for a verification problem.
fn email_failure(err: &ThreepidError) -> StageFailure {
    let kind = match err {
        ThreepidError::NotValidated | ThreepidError::NoSession | ThreepidError::SessionExpired => {
            StageFailureKind::Unauthorized
        }
        ThreepidError::NotTrusted(_) => StageFailureKind::ServerNotTrusted,
        ThreepidError::AuthFailed => StageFailureKind::ThreepidAuthFailed,
        _ => StageFailureKind::Unavailable,
    };
    failure(kind, err.to_string())
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
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
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
