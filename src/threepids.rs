//! Third-party identifiers (email): the homeserver's own verification sessions, the addresses
//! attached to accounts, bindings at identity servers, and the OpenID tokens identity servers
//! use. No HTTP and no SQL here.

use std::{sync::Arc, sync::LazyLock};

use regex::Regex;
use ruma::{OwnedUserId, UserId};

use crate::{
    clock::{Clock, Randomness},
    email::{EmailError, EmailPurpose, Mailer, VerificationEmail},
    identity::{IdentityClient, IdentityError, SessionCredentials, ValidatedThreepid},
    store::{
        BindingRecord, Conflict, NewThreepid, NewValidationSession, Store, StoreError,
        ThreepidRecord, TokenCheck, ValidationStart,
    },
    tokens,
};

/// The spec's grammar for client secrets and session IDs.
static CLIENT_SECRET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9a-zA-Z.=_-]{1,255}$").expect("valid regex"));

/// Characters in a session ID.
const SID_CHARS: usize = 24;
/// Characters in the code a user may type instead of following the link.
const CODE_CHARS: usize = 8;
/// Wrong codes a session accepts before it closes.
const MAX_TOKEN_FAILURES: i64 = 5;
/// Lifetime of OpenID tokens, in milliseconds (Synapse uses an hour too).
const OPENID_LIFETIME_MS: i64 = 3600 * 1000;

/// What can go wrong with third-party identifiers, named for the caller.
#[derive(Debug, thiserror::Error)]
pub enum ThreepidError {
    /// No SMTP server is configured.
    #[error("this server does not send email")]
    NoMailer,
    /// A parameter is malformed.
    #[error("{0}")]
    InvalidParam(String),
    /// The address is not allowed by the configuration.
    #[error("this email address is not allowed on this server")]
    Denied,
    /// The address already belongs to an account.
    #[error("this email address is already in use")]
    InUse,
    /// No account has this address.
    #[error("no account has this email address")]
    NotFound,
    /// The verification session is unknown, or its secret is wrong.
    #[error("unknown verification session")]
    NoSession,
    /// The verification session has expired.
    #[error("the verification session has expired")]
    SessionExpired,
    /// The address of the session has not been validated yet.
    #[error("the email address has not been validated")]
    NotValidated,
    /// A wrong token was submitted.
    #[error("wrong token")]
    WrongToken,
    /// Too many wrong tokens were submitted; the session is closed.
    #[error("too many wrong tokens; request a new email")]
    TooManyAttempts,
    /// The email could not be sent; nothing was kept.
    #[error("the email could not be sent; try again later")]
    SendFailed,
    /// The identity server is not trusted.
    #[error("{0}")]
    NotTrusted(String),
    /// The identity server does not vouch for the session.
    #[error("the third-party credentials could not be verified by the identity server")]
    AuthFailed,
    /// The identity server refused or could not be reached.
    #[error(transparent)]
    IdentityServer(IdentityError),
    /// An OpenID token is unknown or expired.
    #[error("unknown or expired OpenID token")]
    UnknownOpenIdToken,
    /// The store failed.
    #[error("third-party identifier storage failed")]
    Store(#[from] StoreError),
    /// A stored user ID could not be read back.
    #[error("a stored user ID is malformed")]
    CorruptIdentifier(#[from] ruma::IdParseError),
}

impl From<IdentityError> for ThreepidError {
    fn from(err: IdentityError) -> Self {
        match err {
            IdentityError::NotTrusted(_) => Self::NotTrusted(err.to_string()),
            IdentityError::NotValidated(_) => Self::AuthFailed,
            IdentityError::Refused(_)
            | IdentityError::Unreachable(_)
            | IdentityError::Nonsense(_) => Self::IdentityServer(err),
        }
    }
}

/// A request for a verification email.
#[derive(Debug, Clone)]
pub struct EmailTokenRequest {
    /// The client's secret for the session.
    pub client_secret: String,
    /// The address to verify.
    pub email: String,
    /// The client's attempt counter.
    pub send_attempt: u64,
    /// Where to send the user after validation.
    pub next_link: Option<String>,
    /// What the address is for.
    pub purpose: EmailPurpose,
}

/// A started verification session.
#[derive(Debug, Clone)]
pub struct EmailTokenResponse {
    /// The session ID.
    pub sid: String,
    /// Where the client may post the code the user received.
    pub submit_url: String,
}

/// A proven address, ready to attach to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenAddress {
    /// `email`.
    pub medium: String,
    /// The canonical address.
    pub address: String,
    /// When it was proven.
    pub validated_at_ms: i64,
    /// The homeserver session that proved it (consumed once used), if it was ours.
    pub sid: Option<String>,
}

/// The outcome of unbinding from identity servers, as `id_server_unbind_result` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnbindResult {
    /// Every binding was removed (or there was none).
    Success,
    /// At least one identity server could not be asked to unbind.
    NoSupport,
}

impl UnbindResult {
    /// The spec's string for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::NoSupport => "no-support",
        }
    }
}

/// Settings of the third-party identifier service.
#[derive(Debug, Clone)]
pub struct ThreepidSettings {
    /// The URL users and clients reach this server at.
    pub public_baseurl: url::Url,
    /// Verification-token lifetime, in milliseconds.
    pub token_lifetime_ms: i64,
    /// Allowed email domains; empty = any.
    pub allowed_domains: Vec<String>,
    /// Answer as if fine, sending nothing, for taken or unknown addresses.
    pub hide_address_existence: bool,
}

/// The third-party identifier service.
#[derive(Clone)]
pub struct Threepids {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Randomness>,
    mailer: Option<Mailer>,
    identity: IdentityClient,
    settings: Arc<ThreepidSettings>,
}

/// The canonical form of an email address: the spec compares them case-insensitively, so they
/// are kept lower-cased.
pub fn canonical_email(address: &str) -> String {
    address.trim().to_lowercase()
}

impl Threepids {
    /// Builds the service.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Randomness>,
        mailer: Option<Mailer>,
        identity: IdentityClient,
        settings: ThreepidSettings,
    ) -> Self {
        Self {
            store,
            clock,
            rng,
            mailer,
            identity,
            settings: Arc::new(settings),
        }
    }

    /// Whether email verification is available (an SMTP server is configured).
    pub fn sends_email(&self) -> bool {
        self.mailer.is_some()
    }

    /// The identity-server client.
    pub fn identity(&self) -> &IdentityClient {
        &self.identity
    }

    /// Starts (or repeats) an email verification: checks the request, the address's standing
    /// for `purpose`, then sends the email. A repeated `send_attempt` answers with the same
    /// session and sends nothing; a failed send keeps nothing.
    pub async fn request_email_token(
        &self,
        request: EmailTokenRequest,
    ) -> Result<EmailTokenResponse, ThreepidError> {
        let mailer = self.mailer.as_ref().ok_or(ThreepidError::NoMailer)?;
        check_client_secret(&request.client_secret)?;
        let address = self.check_email(&request.email)?;
        if let Some(next_link) = &request.next_link {
            check_next_link(next_link)?;
        }
        let owner = self.store.threepid_owner("email", &address).await?;
        let refused = match request.purpose {
            EmailPurpose::Register | EmailPurpose::Add => {
                owner.is_some().then_some(ThreepidError::InUse)
            }
            EmailPurpose::Password => owner.is_none().then_some(ThreepidError::NotFound),
        };
        let in_use_notice = match refused {
            None => false,
            Some(refused) if !self.settings.hide_address_existence => return Err(refused),
            // An answer indistinguishable from a real one; an unknown address gets no email.
            Some(ThreepidError::NotFound) => {
                return Ok(self.token_response(self.rng.alphanumeric(SID_CHARS)));
            }
            // A taken address: a real session (so repeats stay idempotent) whose code is never
            // sent, and a notice to the owner instead.
            Some(_) => true,
        };
        let code = self.rng.alphanumeric(CODE_CHARS).to_ascii_uppercase();
        let now_ms = self.clock.now_ms();
        let session = NewValidationSession {
            sid: self.rng.alphanumeric(SID_CHARS),
            client_secret: request.client_secret.clone(),
            medium: "email".into(),
            address: address.clone(),
            purpose: request.purpose.as_str().into(),
            send_attempt: i64::try_from(request.send_attempt).unwrap_or(i64::MAX),
            token_hash: tokens::digest(&code),
            next_link: request.next_link,
            now_ms,
            expires_at_ms: now_ms.saturating_add(self.settings.token_lifetime_ms),
        };
        let start = match self.store.start_validation(session.clone()).await {
            // A concurrent identical request created the session first: it is a repeat.
            Err(StoreError::Conflict(Conflict::ValidationSessionExists)) => {
                self.store.start_validation(session).await?
            }
            other => other?,
        };
        let sid = match start {
            ValidationStart::AlreadySent { sid } => return Ok(self.token_response(sid)),
            ValidationStart::Send { sid } => sid,
        };
        let link = self.validation_link(&sid, &request.client_secret, &code);
        let sent = if in_use_notice {
            mailer
                .send_address_in_use(request.email.trim(), request.purpose)
                .await
        } else {
            let email = VerificationEmail {
                to: request.email.trim(),
                purpose: request.purpose,
                link: link.as_str(),
                code: &code,
            };
            mailer.send_verification(email).await
        };
        if let Err(err) = sent {
            self.store.delete_validation(&sid).await?;
            return Err(match err {
                EmailError::Message(reason) => ThreepidError::InvalidParam(reason),
                _ => ThreepidError::SendFailed,
            });
        }
        Ok(self.token_response(sid))
    }

    fn token_response(&self, sid: String) -> EmailTokenResponse {
        EmailTokenResponse {
            sid,
            submit_url: self.url("_vestibule/email/submit_token").to_string(),
        }
    }

    fn url(&self, path: &str) -> url::Url {
        let mut url = self.settings.public_baseurl.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/{path}"));
        url
    }

    fn validation_link(&self, sid: &str, client_secret: &str, code: &str) -> url::Url {
        let mut link = self.url("_vestibule/email/validate");
        link.query_pairs_mut()
            .append_pair("sid", sid)
            .append_pair("client_secret", client_secret)
            .append_pair("token", code);
        link
    }

    /// The canonical address, if it is an email address this server accepts.
    fn check_email(&self, email: &str) -> Result<String, ThreepidError> {
        let address: lettre::Address = email.trim().parse().map_err(|_| {
            ThreepidError::InvalidParam(format!("{email:?} is not an email address"))
        })?;
        let domain = address.domain().to_lowercase();
        let allowed = &self.settings.allowed_domains;
        if !allowed.is_empty() && !allowed.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
            return Err(ThreepidError::Denied);
        }
        Ok(canonical_email(email))
    }

    /// Submits the code from the email (or the link's token): validates the session's address.
    /// Returns where to send the user next, if the client asked.
    pub async fn submit_token(
        &self,
        sid: &str,
        client_secret: &str,
        token: &str,
    ) -> Result<Option<String>, ThreepidError> {
        let check = self
            .store
            .check_validation_token(
                sid,
                client_secret,
                &tokens::digest(&token.trim().to_ascii_uppercase()),
                self.clock.now_ms(),
                MAX_TOKEN_FAILURES,
            )
            .await?;
        match check {
            TokenCheck::Validated { next_link } => Ok(next_link),
            TokenCheck::WrongToken => Err(ThreepidError::WrongToken),
            TokenCheck::NoSession => Err(ThreepidError::NoSession),
            TokenCheck::Expired => Err(ThreepidError::SessionExpired),
            TokenCheck::TooManyAttempts => Err(ThreepidError::TooManyAttempts),
        }
    }

    /// The address a session of this server proved for `purpose`.
    pub async fn proven_by_session(
        &self,
        sid: &str,
        client_secret: &str,
        purpose: EmailPurpose,
    ) -> Result<ProvenAddress, ThreepidError> {
        let session = self
            .store
            .find_validation(sid)
            .await?
            .filter(|session| {
                session.client_secret == client_secret && session.purpose == purpose.as_str()
            })
            .ok_or(ThreepidError::NoSession)?;
        if session.expires_at_ms <= self.clock.now_ms() {
            return Err(ThreepidError::SessionExpired);
        }
        let validated_at_ms = session.validated_at_ms.ok_or(ThreepidError::NotValidated)?;
        Ok(ProvenAddress {
            medium: session.medium,
            address: session.address,
            validated_at_ms,
            sid: Some(session.sid),
        })
    }

    /// The address a trusted identity server validated (the seeds' `threepidCreds`), if this
    /// server accepts it (an email outside `email.allowed_domains` is [`ThreepidError::Denied`]).
    pub async fn proven_by_identity_server(
        &self,
        creds: SessionCredentials<'_>,
    ) -> Result<ValidatedThreepid, ThreepidError> {
        let validated = self.identity.validated_threepid(creds).await?;
        if validated.medium == "email" {
            self.check_email(&validated.address)?;
        }
        Ok(validated)
    }

    /// The user an email address belongs to.
    pub async fn email_owner(&self, address: &str) -> Result<Option<OwnedUserId>, ThreepidError> {
        let owner = self
            .store
            .threepid_owner("email", &canonical_email(address))
            .await?;
        Ok(owner.and_then(|owner| UserId::parse(owner).ok()))
    }

    /// The identifiers attached to a user.
    pub async fn list(&self, user_id: &UserId) -> Result<Vec<ThreepidRecord>, ThreepidError> {
        Ok(self.store.user_threepids(user_id.as_str()).await?)
    }

    /// Attaches a proven address to a user (`M_THREEPID_IN_USE` if another user has it).
    pub async fn attach(
        &self,
        user_id: &UserId,
        proven: &ProvenAddress,
    ) -> Result<(), ThreepidError> {
        let threepid = NewThreepid {
            medium: proven.medium.clone(),
            address: proven.address.clone(),
            validated_at_ms: proven.validated_at_ms,
        };
        match self
            .store
            .add_threepid(user_id.as_str(), threepid, self.clock.now_ms())
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(Conflict::ThreepidInUse)) => Err(ThreepidError::InUse),
            Err(err) => Err(err.into()),
        }
    }

    /// Detaches an address from a user (one the user does not have is no error) and unbinds
    /// it from the identity servers this server bound it at, or from `id_server` only. Says
    /// whether the user had the address, and how the unbinding went.
    pub async fn detach(
        &self,
        user_id: &UserId,
        medium: &str,
        address: &str,
        id_server: Option<&str>,
    ) -> Result<(bool, UnbindResult), ThreepidError> {
        let address = canonical_email(address);
        let removed = self
            .store
            .remove_threepid(user_id.as_str(), medium, &address)
            .await?;
        let unbound = self.unbind(user_id, medium, &address, id_server).await?;
        Ok((removed, unbound))
    }

    /// Binds the address of an identity server's session to the user there, and remembers the
    /// binding so it can be removed later.
    pub async fn bind(
        &self,
        user_id: &UserId,
        creds: SessionCredentials<'_>,
    ) -> Result<(), ThreepidError> {
        let validated = self.identity.validated_threepid(creds).await?;
        self.identity.bind(creds, user_id.as_str()).await?;
        let binding = BindingRecord {
            medium: validated.medium.clone(),
            address: canonical_email(&validated.address),
            id_server: creds.id_server.to_owned(),
            sid: creds.sid.to_owned(),
            client_secret: creds.client_secret.to_owned(),
            bound_address: validated.address,
        };
        self.store.add_binding(user_id.as_str(), binding).await?;
        Ok(())
    }

    /// Removes the user's bindings of an address (at `id_server`, or wherever this server
    /// bound it). A binding that cannot be removed is kept and reported as `no-support`.
    pub async fn unbind(
        &self,
        user_id: &UserId,
        medium: &str,
        address: &str,
        id_server: Option<&str>,
    ) -> Result<UnbindResult, ThreepidError> {
        let address = canonical_email(address);
        let bindings = self.store.bindings(user_id.as_str()).await?;
        let targets = bindings.iter().filter(|binding| {
            binding.medium == medium
                && binding.address == address
                && id_server.is_none_or(|server| server.eq_ignore_ascii_case(&binding.id_server))
        });
        self.remove_bindings(user_id, targets).await
    }

    /// Removes every binding of the user (account deactivation).
    pub async fn unbind_all(&self, user_id: &UserId) -> Result<UnbindResult, ThreepidError> {
        let bindings = self.store.bindings(user_id.as_str()).await?;
        self.remove_bindings(user_id, bindings.iter()).await
    }

    async fn remove_bindings(
        &self,
        user_id: &UserId,
        bindings: impl Iterator<Item = &BindingRecord>,
    ) -> Result<UnbindResult, ThreepidError> {
        let mut result = UnbindResult::Success;
        for binding in bindings {
            let creds = SessionCredentials {
                id_server: &binding.id_server,
                sid: &binding.sid,
                client_secret: &binding.client_secret,
                id_access_token: None,
            };
            match self
                .identity
                .unbind(
                    creds,
                    user_id.as_str(),
                    &binding.medium,
                    &binding.bound_address,
                )
                .await
            {
                Ok(()) => {
                    self.store
                        .remove_binding(
                            user_id.as_str(),
                            &binding.medium,
                            &binding.address,
                            &binding.id_server,
                        )
                        .await?;
                }
                Err(err) => {
                    tracing::warn!(error = %err, id_server = %binding.id_server, "unbind failed");
                    result = UnbindResult::NoSupport;
                }
            }
        }
        Ok(result)
    }

    /// Issues an OpenID token that identity servers (and other services) can exchange for
    /// the user's ID; returns it with its lifetime in seconds.
    pub async fn issue_openid_token(
        &self,
        user_id: &UserId,
    ) -> Result<(String, u64), ThreepidError> {
        let token = self.rng.alphanumeric(40);
        let expires_at_ms = self.clock.now_ms().saturating_add(OPENID_LIFETIME_MS);
        self.store
            .insert_openid_token(&tokens::digest(&token), user_id.as_str(), expires_at_ms)
            .await?;
        Ok((
            token,
            u64::try_from(OPENID_LIFETIME_MS / 1000).unwrap_or_default(),
        ))
    }

    /// The user behind an OpenID token.
    pub async fn openid_user(&self, token: &str) -> Result<OwnedUserId, ThreepidError> {
        let user = self
            .store
            .find_openid_token(&tokens::digest(token), self.clock.now_ms())
            .await?
            .ok_or(ThreepidError::UnknownOpenIdToken)?;
        Ok(UserId::parse(user)?)
    }
}

/// Checks a client secret against the spec's grammar.
pub fn check_client_secret(client_secret: &str) -> Result<(), ThreepidError> {
    if CLIENT_SECRET.is_match(client_secret) {
        Ok(())
    } else {
        Err(ThreepidError::InvalidParam(
            "client_secret must be 1-255 characters of 0-9 a-z A-Z . = _ -".into(),
        ))
    }
}

/// A `next_link` must be an http(s) URL.
fn check_next_link(next_link: &str) -> Result<(), ThreepidError> {
    match url::Url::parse(next_link) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(()),
        _ => Err(ThreepidError::InvalidParam(
            "next_link must be an http or https URL".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_secrets_follow_the_grammar() {
        assert!(check_client_secret("monkeys_are_GREAT.=-1").is_ok());
        assert!(check_client_secret("").is_err());
        assert!(check_client_secret("has space").is_err());
        assert!(check_client_secret(&"a".repeat(256)).is_err());
    }

    #[test]
    fn next_links_must_be_web_urls() {
        assert!(check_next_link("https://example.org/done").is_ok());
        assert!(check_next_link("javascript:alert(1)").is_err());
        assert!(check_next_link("not a url").is_err());
    }

    #[test]
    fn emails_compare_case_insensitively() {
        assert_eq!(canonical_email(" Alice@Example.ORG "), "alice@example.org");
    }
}
