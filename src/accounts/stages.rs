//! The UIA stages that prove something about an account: its password, an operator's
//! registration token, an email address. They live with the account rules they check; the
//! engine and the stages that need nothing from accounts are in `src/uia/`.

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::{Map, Value};

use super::{
    AccountError, PasswordVerifier, password::HashError, registration_tokens::RegistrationTokens,
};
use crate::{
    email::EmailPurpose,
    identity::SessionCredentials,
    ratelimit::{Limit, RateLimitError, RateLimiter},
    threepids::{ThreepidError, Threepids, comparable_email},
    uia::{
        Action, StageFailure, StageFailureKind,
        proofs::{EmailProof, IdentityServerSession, TokenProof, record},
        stages::{
            Stage, StageContext, StageOutcome, failure, forbidden, string_field, unavailable,
        },
    },
};

/// `m.login.password`: the requesting user proves they know their password. The user may be
/// named as at `/login`: an `m.id.user` or an email `m.id.thirdparty` identifier, or the
/// deprecated top-level `user` or `medium`/`address`; naming another user than the
/// authenticated one is refused outright (403), not retried.
pub struct Password {
    verifier: PasswordVerifier,
    threepids: Threepids,
    limiter: RateLimiter,
}

impl Password {
    /// The stage, checking passwords through the verifier and email owners through the
    /// third-party identifier service.
    pub fn new(verifier: PasswordVerifier, threepids: Threepids, limiter: RateLimiter) -> Self {
        Self {
            verifier,
            threepids,
            limiter,
        }
    }

    /// Who `auth` names: a user (localpart or ID), an email address, or nobody (the
    /// authenticated user is meant).
    fn named<'a>(auth: &'a Map<String, Value>) -> Result<Named<'a>, StageFailure> {
        let email = |medium: Option<&str>, address: Option<&'a str>| match medium {
            Some("email") => address.map(Named::Email).ok_or_else(|| {
                failure(StageFailureKind::MissingParam, "Missing parameter: address")
            }),
            _ => Err(forbidden("Only email addresses can name a user here")),
        };
        match auth.get("identifier").and_then(Value::as_object) {
            Some(identifier) => match string_field(identifier, "type") {
                Some("m.id.user") => {
                    Ok(string_field(identifier, "user").map_or(Named::Nobody, Named::User))
                }
                Some("m.id.thirdparty") => email(
                    string_field(identifier, "medium"),
                    string_field(identifier, "address"),
                ),
                _ => Err(forbidden("Unsupported identifier type")),
            },
            None if auth.contains_key("medium") => {
                email(string_field(auth, "medium"), string_field(auth, "address"))
            }
            None => Ok(string_field(auth, "user").map_or(Named::Nobody, Named::User)),
        }
    }
}

/// Who a password stage names.
enum Named<'a> {
    /// The authenticated user, by default.
    Nobody,
    /// A localpart or user ID.
    User(&'a str),
    /// An email address attached to an account.
    Email(&'a str),
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
        let named = Self::named(auth)?;
        let Some(requester) = context.user else {
            return Err(forbidden(
                "Password authentication needs an authenticated user",
            ));
        };
        let user = match named {
            Named::Nobody => requester.to_string(),
            Named::User(user) => {
                if self
                    .verifier
                    .user_id(user)
                    .is_some_and(|named| named != requester)
                {
                    return Err(failure(
                        StageFailureKind::OtherUser,
                        "The authentication names another user than the access token",
                    ));
                }
                user.to_owned()
            }
            // An address nobody has (or another user's) fails like a wrong password, so the
            // answer does not tell whose address it is.
            Named::Email(address) => match self.threepids.email_owner(address).await {
                Ok(owner) => owner.map(String::from).unwrap_or_default(),
                Err(err) => {
                    tracing::error!(error = %err, "password stage failed");
                    return Err(unavailable());
                }
            },
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
        match self
            .verifier
            .verify(&user, SecretString::from(password.to_owned()))
            .await
        {
            Ok(user_id) if user_id == requester => Ok(None),
            Ok(_)
            | Err(
                AccountError::InvalidCredentials | AccountError::Deactivated | AccountError::Locked,
            ) => Err(forbidden("Invalid username or password")),
            Err(AccountError::Hashing(HashError::Busy)) => Err(failure(
                StageFailureKind::LimitExceeded,
                "Too many password checks at once; retry shortly".to_owned(),
            )),
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
                address: comparable_email(&validated.address),
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
