//! Third-party identifiers (email): the homeserver's own verification sessions, the addresses
//! attached to accounts, bindings at identity servers, and the OpenID tokens identity servers
//! use. No HTTP and no SQL here.

use std::{sync::Arc, sync::LazyLock, time::Duration};

use regex::Regex;
use ruma::{OwnedUserId, UserId};
use tokio::sync::Notify;

use crate::{
    clock::{Clock, Randomness},
    email::{EmailPurpose, Mailer, VerificationEmail},
    identity::{IdentityClient, IdentityError, SessionCredentials, ValidatedThreepid},
    store::{
        BindingRecord, Conflict, DueEmail, NewThreepid, NewValidationSession, QueuedEmail, Store,
        StoreError, ThreepidRecord, TokenCheck, ValidationStart,
    },
    tokens,
};

mod addresses;

pub use addresses::{InvalidEmail, canonical_email};

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
/// The longest `next_link` kept: a URL, not a document.
const MAX_NEXT_LINK_BYTES: usize = 2048;
/// Outbox emails one delivery round claims.
const DELIVERY_BATCH: i64 = 4;
/// How long an instance holds the emails it claimed before another may retry them: longer
/// than a round can take (each SMTP step of each send may take up to lettre's 10 s timeout),
/// so that no email is sent twice by two instances.
const DELIVERY_LEASE_MS: i64 = 600_000;
/// The wait before the first retry of a failed send; doubled for each further one.
const FIRST_RETRY_DELAY_MS: i64 = 1000;
/// The longest wait between two retries of a send.
const MAX_RETRY_DELAY_MS: i64 = 300_000;
/// The outbox kind of an email carrying a link and a code.
const VERIFICATION_EMAIL: &str = "verification";
/// The outbox kind of a notice to the owner of a taken address.
const ADDRESS_IN_USE_EMAIL: &str = "address_in_use";

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
    /// The SMTP server refused the session's email for good: its code can never arrive.
    #[error("the email to this address could not be delivered; check the address")]
    DeliveryFailed,
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
    /// The account that asked for the session, when it asked with an access token: only that
    /// account may use the proof (its confirmation page named it).
    pub requester: Option<String>,
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
    /// Verification-token lifetime for registration and address additions, in milliseconds.
    pub token_lifetime_ms: i64,
    /// Verification-token lifetime for password resets, in milliseconds.
    pub password_reset_lifetime_ms: i64,
    /// Allowed email domains; empty = any.
    pub allowed_domains: Vec<String>,
    /// Answer as if fine for taken or unknown addresses: the owner of a taken one gets a
    /// notice instead of a code, an unknown one nothing.
    pub hide_address_existence: bool,
    /// Hosts a `next_link` may lead to; empty = the host of `public_baseurl` only.
    pub next_link_allowed_hosts: Vec<String>,
    /// Accept non-ASCII local parts.
    pub allow_unicode_local_parts: bool,
}

/// What the page behind an email's link asks the user to confirm.
#[derive(Debug, Clone)]
pub struct PendingConfirmation {
    /// What the address is being proven for.
    pub purpose: EmailPurpose,
    /// The address.
    pub address: String,
    /// The account concerned: the one whose password would be reset, or the one that asked to
    /// add the address; `None` when it is not known (a registration, an anonymous request).
    pub account: Option<OwnedUserId>,
    /// The hidden value the confirmation form must send back: bound to this session and its
    /// current code, so a form can't be forged without the email.
    pub form_key: String,
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
    /// Woken when an email is queued, so that this instance sends it at once.
    outbox_queued: Arc<Notify>,
}

/// The form in which an address given by a client (or an identity server) is compared with
/// stored ones: its canonical form, or, for an address this server would never accept, one no
/// stored address has.
pub fn comparable_email(address: &str) -> String {
    canonical_email(address).unwrap_or_else(|_| address.trim().to_owned())
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
            outbox_queued: Arc::new(Notify::new()),
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

    /// Starts (or repeats) an email verification: checks the request and the address's
    /// standing for `purpose`, then stores the session and queues its email in one
    /// transaction, and answers before any SMTP work (the outbox sends it). A repeated
    /// `send_attempt` answers with the same session and queues nothing. `requester` is the
    /// account that asked, when the request carried an access token.
    pub async fn request_email_token(
        &self,
        request: EmailTokenRequest,
        requester: Option<&UserId>,
    ) -> Result<EmailTokenResponse, ThreepidError> {
        if self.mailer.is_none() {
            return Err(ThreepidError::NoMailer);
        }
        check_client_secret(&request.client_secret)?;
        let address = self.check_email(&request.email)?;
        let next_link = request
            .next_link
            .as_deref()
            .map(|link| self.check_next_link(link))
            .transpose()?;
        let owner = self.store.threepid_owner("email", &address).await?;
        let refused = match request.purpose {
            EmailPurpose::Register | EmailPurpose::Add => {
                owner.is_some().then_some(ThreepidError::InUse)
            }
            EmailPurpose::Password => owner.is_none().then_some(ThreepidError::NotFound),
        };
        let code = self.rng.alphanumeric_upper(CODE_CHARS);
        // Hidden refusals still get a real session (repeats stay idempotent, wrong codes are
        // counted the same), whose code is never sent: a taken address's owner gets a notice,
        // an unknown address gets nothing.
        let email = match refused {
            None => Some(QueuedEmail {
                kind: VERIFICATION_EMAIL.into(),
                recipient: address.clone(),
                code: code.clone(),
            }),
            Some(refused) if !self.settings.hide_address_existence => return Err(refused),
            Some(ThreepidError::NotFound) => None,
            Some(_) => Some(QueuedEmail {
                kind: ADDRESS_IN_USE_EMAIL.into(),
                recipient: address.clone(),
                code: String::new(),
            }),
        };
        let lifetime_ms = match request.purpose {
            EmailPurpose::Password => self.settings.password_reset_lifetime_ms,
            EmailPurpose::Register | EmailPurpose::Add => self.settings.token_lifetime_ms,
        };
        let now_ms = self.clock.now_ms();
        let session = NewValidationSession {
            sid: self.rng.alphanumeric(SID_CHARS),
            client_secret: request.client_secret.clone(),
            medium: "email".into(),
            address,
            purpose: request.purpose.as_str().into(),
            send_attempt: i64::try_from(request.send_attempt).unwrap_or(i64::MAX),
            token_hash: tokens::digest(&code),
            next_link,
            now_ms,
            expires_at_ms: now_ms.saturating_add(lifetime_ms),
            requester: requester.map(|user| user.as_str().to_owned()),
            email,
        };
        let start = match self.store.start_validation(session.clone()).await {
            // A concurrent identical request created the session first: it is a repeat.
            Err(StoreError::Conflict(Conflict::ValidationSessionExists)) => {
                self.store.start_validation(session).await?
            }
            other => other?,
        };
        let sid = match start {
            ValidationStart::AlreadySent { sid } => sid,
            ValidationStart::Send { sid } => {
                self.outbox_queued.notify_one();
                sid
            }
        };
        Ok(self.token_response(sid))
    }

    /// Sends the outbox emails that are due, as one round: each is sent, deferred with a
    /// growing delay while the SMTP server fails for now, or dropped with its session marked
    /// failed when the server refuses it for good. Returns how many emails it handled.
    pub async fn deliver_due_emails(&self) -> Result<usize, ThreepidError> {
        let Some(mailer) = &self.mailer else {
            return Ok(0);
        };
        let now_ms = self.clock.now_ms();
        let due = self
            .store
            .claim_due_emails(now_ms, now_ms + DELIVERY_LEASE_MS, DELIVERY_BATCH)
            .await?;
        let handled = due.len();
        for email in due {
            let purpose = EmailPurpose::parse(&email.purpose).unwrap_or(EmailPurpose::Register);
            let sent = if email.kind == ADDRESS_IN_USE_EMAIL {
                mailer.send_address_in_use(&email.recipient, purpose).await
            } else {
                let link = self.validation_link(&email.sid, &email.client_secret, &email.code);
                let verification = VerificationEmail {
                    to: &email.recipient,
                    purpose,
                    link: link.as_str(),
                    code: &email.code,
                };
                mailer.send_verification(verification).await
            };
            let now_ms = self.clock.now_ms();
            match sent {
                Ok(()) => self.store.email_sent(email.id).await?,
                Err(err) if err.is_permanent() => {
                    tracing::warn!(error = %err, email_id = email.id,
                        "the SMTP server refused a verification email for good");
                    self.store.email_refused(email.id, now_ms).await?;
                }
                Err(err) => {
                    let delay = retry_delay_ms(&email);
                    tracing::warn!(error = %err, email_id = email.id, retry_in_ms = delay,
                        "sending a verification email failed; it will be retried");
                    self.store.email_deferred(email.id, now_ms + delay).await?;
                }
            }
        }
        Ok(handled)
    }

    /// Delivers outbox emails for as long as the server runs: at once when this instance
    /// queues one, and every `poll` for emails other instances queued or that are due again.
    pub async fn run_outbox(&self, poll: Duration) {
        loop {
            match self.deliver_due_emails().await {
                Ok(0) => {}
                // More may be due: go on without waiting.
                Ok(_) => continue,
                Err(err) => {
                    tracing::warn!(error = %err, "could not deliver queued emails");
                }
            }
            tokio::select! {
                () = self.outbox_queued.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// What the page behind a session's link asks the user to confirm, if `token` is the
    /// session's current code. Nothing is validated (a page fetched by a link scanner changes
    /// nothing); a wrong code is counted, as on `submit_url`, so that the page can't be used
    /// to guess codes.
    pub async fn pending_confirmation(
        &self,
        sid: &str,
        client_secret: &str,
        token: &str,
    ) -> Result<PendingConfirmation, ThreepidError> {
        if !could_be_session(sid, client_secret) {
            return Err(ThreepidError::NoSession);
        }
        let session = self
            .store
            .find_validation(sid)
            .await?
            .filter(|session| session.client_secret == client_secret)
            .ok_or(ThreepidError::NoSession)?;
        if session.expires_at_ms <= self.clock.now_ms() {
            return Err(ThreepidError::SessionExpired);
        }
        if session.failed_attempts >= MAX_TOKEN_FAILURES {
            return Err(ThreepidError::TooManyAttempts);
        }
        if session.token_hash != tokens::digest(&normalized_code(token)) {
            // Counted as on `submit_url`, so the page can't be used to guess codes.
            return Err(self
                .submit_token(sid, client_secret, token)
                .await
                .err()
                .unwrap_or(ThreepidError::WrongToken));
        }
        let purpose = EmailPurpose::parse(&session.purpose).ok_or(ThreepidError::NoSession)?;
        let account = match purpose {
            EmailPurpose::Password => self.email_owner(&session.address).await?,
            EmailPurpose::Add => session
                .requester
                .as_deref()
                .map(UserId::parse)
                .transpose()?,
            EmailPurpose::Register => None,
        };
        Ok(PendingConfirmation {
            purpose,
            form_key: form_key(&session.sid, &session.token_hash),
            address: session.address,
            account,
        })
    }

    /// Confirms a session from its page's form: `form_key` must be the one the page carried,
    /// then the code is submitted as by [`Self::submit_token`].
    pub async fn confirm(
        &self,
        sid: &str,
        client_secret: &str,
        token: &str,
        form_key: &str,
    ) -> Result<Option<String>, ThreepidError> {
        let pending = self.pending_confirmation(sid, client_secret, token).await;
        match pending {
            Ok(pending) if pending.form_key == form_key => {}
            // A forged form is refused; a wrong code was counted already.
            Ok(_) => return Err(ThreepidError::NoSession),
            Err(err) => return Err(err),
        }
        self.submit_token(sid, client_secret, token).await
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
        let address = canonical_email(email).map_err(|err| {
            ThreepidError::InvalidParam(format!("{email:?} is not an accepted address: {err}"))
        })?;
        let (local, domain) = address.rsplit_once('@').unwrap_or_default();
        if !self.settings.allow_unicode_local_parts && !local.is_ascii() {
            return Err(ThreepidError::InvalidParam(
                "addresses whose part before the @ is not ASCII are not accepted here".into(),
            ));
        }
        let allowed = &self.settings.allowed_domains;
        if !allowed.is_empty() && !allowed.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
            return Err(ThreepidError::Denied);
        }
        Ok(address)
    }

    /// A `next_link` must be an http(s) URL on an allowed host (by default the host of
    /// `public_baseurl`); it is kept as the parsed URL's serialization, never as sent.
    fn check_next_link(&self, next_link: &str) -> Result<String, ThreepidError> {
        let invalid = |reason: &str| ThreepidError::InvalidParam(format!("next_link {reason}"));
        if next_link.len() > MAX_NEXT_LINK_BYTES {
            return Err(invalid("is too long"));
        }
        let url = url::Url::parse(next_link).map_err(|_| invalid("is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("must be an http or https URL"));
        }
        let host = url.host_str().unwrap_or_default();
        let allowed = &self.settings.next_link_allowed_hosts;
        let permitted = if allowed.is_empty() {
            self.settings
                .public_baseurl
                .host_str()
                .is_some_and(|own| own.eq_ignore_ascii_case(host))
        } else {
            allowed
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(host))
        };
        if !permitted {
            return Err(invalid(
                "leads to a host this server does not send users to",
            ));
        }
        Ok(url.to_string())
    }

    /// Submits the code from the email (or the link's token): validates the session's address.
    /// Returns where to send the user next, if the client asked.
    pub async fn submit_token(
        &self,
        sid: &str,
        client_secret: &str,
        token: &str,
    ) -> Result<Option<String>, ThreepidError> {
        if !could_be_session(sid, client_secret) {
            return Err(ThreepidError::NoSession);
        }
        let check = self
            .store
            .check_validation_token(
                sid,
                client_secret,
                &tokens::digest(&normalized_code(token)),
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
            TokenCheck::DeliveryFailed => Err(ThreepidError::DeliveryFailed),
        }
    }

    /// The address a session of this server proved for `purpose`.
    pub async fn proven_by_session(
        &self,
        sid: &str,
        client_secret: &str,
        purpose: EmailPurpose,
    ) -> Result<ProvenAddress, ThreepidError> {
        if !could_be_session(sid, client_secret) {
            return Err(ThreepidError::NoSession);
        }
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
            requester: session.requester,
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
            .threepid_owner("email", &comparable_email(address))
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
        let address = comparable_email(address);
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
            address: comparable_email(&validated.address),
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
        let address = comparable_email(address);
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

/// Whether a session ID and client secret could name a session at all (both follow the spec's
/// grammar); anything else is answered as an unknown session without asking the store.
fn could_be_session(sid: &str, client_secret: &str) -> bool {
    CLIENT_SECRET.is_match(sid) && CLIENT_SECRET.is_match(client_secret)
}

/// A code as typed or linked: case and surrounding spaces don't matter.
fn normalized_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

/// The hidden value of a session's confirmation form: a digest of the session and its current
/// code's digest, so only a page made for this email can be posted back.
fn form_key(sid: &str, token_hash: &str) -> String {
    tokens::digest(&format!("vestibule-confirm:{sid}:{token_hash}"))
}

/// How long to wait before the next attempt at an email that failed `attempts + 1` times.
fn retry_delay_ms(email: &DueEmail) -> i64 {
    let doublings = u32::try_from(email.attempts.clamp(0, 20)).unwrap_or(20);
    FIRST_RETRY_DELAY_MS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_RETRY_DELAY_MS)
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
}
