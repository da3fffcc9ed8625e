//! Registration (spec "Account registration"), for every API version: the current `/register`
//! with User-Interactive Authentication and the guest upgrade, guest accounts, the seeds' v1
//! multi-stage flow, and the operator's `user create`. They share one ending,
//! [`Accounts::complete_registration`], so what a completed UIA session proved (terms, a
//! registration token, an email address) is recorded the same way everywhere.

use ruma::{OwnedDeviceId, OwnedUserId, UserId};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    AccountError, Accounts, DeviceRequest, IssuedSession, Requester, devices, events::AccountEvent,
    user_id,
};
use crate::{
    identity::SessionCredentials,
    ratelimit::Limit,
    store::{AcceptedTerms, Conflict, NewAccount, NewThreepid, RegistrationExtras, StoreError},
    uia::{
        Action, BoundRequest, Completed, Flow, Operation, Progress,
        proofs::{EmailProof, Proofs},
    },
};

/// Length of generated localparts.
const GENERATED_LOCALPART_CHARS: usize = 12;

/// The path v1 registration sessions are bound to.
const V1_PATH: &str = "/_matrix/client/api/v1/register";

/// Where the user chosen in a v1 stage is remembered in the session.
const V1_CHOSEN_USER: &str = "v1.user";

/// Where a registration's parameters are remembered in its UIA session.
const REGISTRATION_PARAMS: &str = "register.params";

/// A user registration as the current API (and v2_alpha) submits it. Every parameter may be
/// left out of a request: what an earlier request of the same UIA session gave is used.
pub struct RegistrationInput<'a> {
    /// The requested username (localpart or user ID); generated when absent throughout.
    pub username: Option<String>,
    /// The password; needed once the flow is complete.
    pub password: Option<String>,
    /// The device ID to reuse or create; generated when absent throughout.
    pub device_id: Option<OwnedDeviceId>,
    /// The new device's display name.
    pub initial_device_display_name: Option<String>,
    /// Whether to skip the first session (`inhibit_login`), if the request says.
    pub inhibit_login: Option<bool>,
    /// Whether the client wants a refresh token, if the request says.
    pub refresh_token: Option<bool>,
    /// The client's IP address, for the registration rate limit.
    pub ip: Option<String>,
    /// The access token of a guest account to upgrade into this full account.
    pub guest_access_token: Option<String>,
    /// Bind an email proven through an identity server to the new account there (the
    /// v2_alpha `bind_email`).
    pub bind_email: bool,
    /// The request, as UIA binds its session to it.
    pub request: BoundRequest<'a>,
}

/// A registered account and, unless login was inhibited, its first session.
#[derive(Debug)]
pub struct Registered {
    /// The account.
    pub user_id: OwnedUserId,
    /// Its first device session.
    pub session: Option<IssuedSession>,
}

/// One stage of the seeds' v1 registration, before the password.
pub struct V1Stage {
    /// The stage's `auth` keys: its `type`, its own keys, and `session` after the first stage.
    pub auth: Map<String, Value>,
    /// The `user` the stage named, if any; a later stage may not name another one.
    pub user: Option<String>,
    /// The client's IP address, for the registration rate limit.
    pub ip: Option<String>,
}

/// Where a v1 registration stands after a stage.
#[derive(Debug)]
pub struct V1Progress {
    /// The session the client sends back.
    pub session_id: String,
    /// The stages completed so far.
    pub completed: Vec<String>,
}

/// The v1 registration's last step, `m.login.password`.
pub struct V1Registration {
    /// The `user` given now, if any (else the one an earlier stage chose, else generated).
    pub user: Option<String>,
    /// The password.
    pub password: String,
    /// The session of the earlier stages, if there were any.
    pub session: Option<Value>,
    /// The client's IP address.
    pub ip: Option<String>,
}

/// What a registration's UIA session remembers between requests: the parameters given so far,
/// the password only as its argon2id hash.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RememberedRegistration {
    username: Option<String>,
    password_hash: Option<String>,
    /// HMAC of the hashed password keyed by the session ID (which the store keeps only as a
    /// digest): tells a resent password from a new one without hashing it again.
    password_mark: Option<String>,
    device_id: Option<String>,
    initial_device_display_name: Option<String>,
    inhibit_login: Option<bool>,
    refresh_token: Option<bool>,
}

impl RememberedRegistration {
    /// What was remembered, updated with what this request gives.
    fn update(self, input: &RegistrationInput<'_>, password: Option<(String, String)>) -> Self {
        let (password_hash, password_mark) = match password {
            Some((hash, mark)) => (Some(hash), Some(mark)),
            None => (self.password_hash, self.password_mark),
        };
        Self {
            username: input.username.clone().or(self.username),
            password_hash,
            password_mark,
            device_id: input
                .device_id
                .as_ref()
                .map(ToString::to_string)
                .or(self.device_id),
            initial_device_display_name: input
                .initial_device_display_name
                .clone()
                .or(self.initial_device_display_name),
            inhibit_login: input.inhibit_login.or(self.inhibit_login),
            refresh_token: input.refresh_token.or(self.refresh_token),
        }
    }

    /// The first device, unless login is inhibited.
    fn login(&self, ip: Option<String>) -> Option<DeviceRequest> {
        (!self.inhibit_login.unwrap_or(false)).then(|| DeviceRequest {
            device_id: self.device_id.as_deref().map(Into::into),
            display_name: self.initial_device_display_name.clone(),
            ip,
            refresh_token: self.refresh_token.unwrap_or(false),
        })
    }
}

/// Who a completed registration creates the account for.
enum Registrant {
    /// A new account, under this username (generated when absent).
    New(Option<String>),
    /// The guest's own account, becoming a full one.
    Guest(Requester),
}

impl Accounts {
    /// Registers a full account through the configured UIA flows: the name
    /// (`M_INVALID_USERNAME`, `M_EXCLUSIVE`, `M_USER_IN_USE`) and the password policy are
    /// checked before UIA, as the spec requires, when given; a request without them (a
    /// client learning the flows with `{}`) gets the challenge. The session remembers what
    /// each request gave (the password as its argon2id hash), so a later request may leave
    /// it out, add what was missing, or change the username while no stage is complete. Once
    /// a flow is complete, a password must be known (else 400 `M_MISSING_PARAM`, and the
    /// session stays open for a request with one); the account, its first session and what
    /// the stages proved are then written in one transaction. With a `guest_access_token` the
    /// guest's own account becomes the full account (the spec's guest upgrade: `username` must
    /// be the guest's localpart).
    pub async fn register(&self, input: RegistrationInput<'_>) -> Result<Registered, AccountError> {
        self.check_registration_open()?;
        if let Some(device_id) = &input.device_id {
            devices::check_device_id(device_id)?;
        }
        self.limiter
            .take(Limit::RegisterPerIp, input.ip.as_deref())
            .await?;
        let guest = match &input.guest_access_token {
            Some(token) => Some(
                self.guest_to_upgrade(token, input.username.as_deref())
                    .await?,
            ),
            None => None,
        };
        let requested = match (&guest, input.username.as_deref()) {
            (Some(guest), _) => Some(guest.user_id.clone()),
            (None, Some(username)) => Some(self.check_new_user_id(Some(username)).await?),
            (None, None) => None,
        };
        if let Some(password) = &input.password {
            self.check_new_password(&SecretString::from(password.clone()), requested.as_deref())?;
        }
        let flows = &self.settings.registration_flows;
        let operation = Operation {
            action: Action::Register,
            request: input.request,
            user: None,
            flows,
        };
        let progress = self.uia.advance(&operation).await?;
        let remembered: RememberedRegistration = progress
            .data
            .get(REGISTRATION_PARAMS)
            .and_then(|value| serde_json::from_value(value.clone()).ok())
            .unwrap_or_default();
        let attempted = input
            .request
            .body
            .get("auth")
            .and_then(|auth| auth.get("type"))
            .and_then(Value::as_str);
        let completed_before = progress
            .completed
            .iter()
            .any(|stage| Some(stage.as_str()) != attempted);
        if completed_before
            && input.username.is_some()
            && remembered.username.is_some()
            && input.username != remembered.username
        {
            return Err(AccountError::Forbidden(
                "The username cannot change once an authentication stage is complete",
            ));
        }
        let password = self
            .registration_password(input.password.as_deref(), &remembered, &progress.session_id)
            .await?;
        let params = remembered.update(&input, password);
        let complete = self.uia.require_complete(flows, &progress);
        if complete.is_err() || params.password_hash.is_none() {
            // Only a session that lives on needs to remember (a registration completed in
            // one request, the common case, writes nothing more).
            let value = serde_json::to_value(&params).unwrap_or_default();
            self.uia
                .remember(&progress, REGISTRATION_PARAMS, value)
                .await?;
        }
        complete?;
        let password_hash = params
            .password_hash
            .clone()
            .ok_or(AccountError::MissingParam("password"))?;
        let completed = self.uia.consume(progress).await?;
        let registrant = match guest {
            Some(guest) => Registrant::Guest(guest),
            None => Registrant::New(params.username.clone()),
        };
        self.complete_registration(
            registrant,
            password_hash,
            Some(completed),
            params.login(input.ip),
            input.bind_email,
        )
        .await
    }

    /// Registers a guest account (no password, no UIA) when guest access is enabled. As the
    /// spec requires, everything the client sent but the device's display name is ignored:
    /// the server picks the user ID and the device ID, and always opens a session (without a
    /// refresh token).
    pub async fn register_guest(
        &self,
        device_display_name: Option<String>,
        ip: Option<String>,
    ) -> Result<Registered, AccountError> {
        self.limiter
            .take(Limit::RegisterPerIp, ip.as_deref())
            .await?;
        if !self.settings.guest_access {
            return Err(AccountError::GuestAccessDisabled);
        }
        let user_id = self.check_new_user_id(None).await?;
        let login = DeviceRequest {
            device_id: None,
            display_name: device_display_name,
            ip,
            refresh_token: false,
        };
        let session = self
            .create_account(
                &user_id,
                None,
                true,
                Some(login),
                RegistrationExtras::default(),
                None,
            )
            .await?;
        Ok(Registered { user_id, session })
    }

    /// The operator creates an account with a password (no UIA, no session).
    pub async fn create_user(
        &self,
        username: &str,
        password: SecretString,
    ) -> Result<OwnedUserId, AccountError> {
        let user_id = self.check_new_user_id(Some(username)).await?;
        self.check_new_password(&password, Some(&user_id))?;
        let password_hash = self.hasher.hash(password).await?;
        self.create_account(
            &user_id,
            Some(password_hash),
            false,
            None,
            RegistrationExtras::default(),
            None,
        )
        .await?;
        Ok(user_id)
    }

    /// `GET /register/available`: whether a username could be registered (the error says why
    /// not); limited per IP, as the spec marks it, so that it can't list the accounts.
    pub async fn username_available(
        &self,
        username: &str,
        ip: Option<&str>,
    ) -> Result<(), AccountError> {
        self.check_registration_open()?;
        self.limiter
            .take(Limit::RegistrationLookupPerIp, ip)
            .await?;
        self.check_new_user_id(Some(username)).await.map(drop)
    }

    /// Whether a registration could use `token` now (the spec's `/validity` check); limited
    /// per IP, so that tokens can't be guessed through it.
    pub async fn registration_token_valid(
        &self,
        token: &str,
        ip: Option<&str>,
    ) -> Result<bool, AccountError> {
        self.check_registration_open()?;
        self.limiter
            .take(Limit::RegistrationLookupPerIp, ip)
            .await?;
        Ok(self.registration_tokens.is_usable(token).await?)
    }

    /// The seeds' v1 registration flows: each configured flow's stages without
    /// `m.login.dummy`, then `m.login.password`; none while registration is disabled.
    pub fn v1_registration_flows(&self) -> Vec<Flow> {
        if !self.settings.registration_enabled {
            return Vec::new();
        }
        self.v1_stage_flows()
            .into_iter()
            .map(|mut flow| {
                flow.push("m.login.password".to_owned());
                flow
            })
            .collect()
    }

    /// One v1 stage before the password: advances the stored UIA session (without consuming
    /// it) and remembers the `user` the stage named; naming a different one than an earlier
    /// stage is refused.
    pub async fn v1_registration_stage(&self, stage: V1Stage) -> Result<V1Progress, AccountError> {
        self.check_registration_open()?;
        self.limiter
            .take(Limit::RegisterPerIp, stage.ip.as_deref())
            .await?;
        let body = json!({ "auth": stage.auth });
        let flows = self.v1_stage_flows();
        let progress = self.uia.advance(&v1_operation(&body, &flows)).await?;
        if let Some(user) = stage.user {
            match v1_chosen_user(&progress) {
                Some(chosen) if chosen != user => return Err(v1_user_changed()),
                Some(_) => {}
                None => {
                    self.uia
                        .remember(&progress, V1_CHOSEN_USER, Value::String(user))
                        .await?;
                }
            }
        }
        Ok(V1Progress {
            session_id: progress.session_id,
            completed: progress.completed,
        })
    }

    /// The v1 `m.login.password` step: checks name and password, then consumes the session of
    /// the earlier stages (unless a flow is the password alone) and creates the account, with
    /// a first session; an email proven through an identity server is bound there.
    pub async fn register_v1(&self, input: V1Registration) -> Result<Registered, AccountError> {
        self.check_registration_open()?;
        self.limiter
            .take(Limit::RegisterPerIp, input.ip.as_deref())
            .await?;
        let flows = self.v1_stage_flows();
        let body = json!({ "auth": { "session": input.session } });
        let (user, has_session) = match &input.session {
            Some(_) => {
                let progress = self.uia.advance(&v1_operation(&body, &flows)).await?;
                let chosen = v1_chosen_user(&progress);
                let user = match (input.user, chosen) {
                    (Some(user), Some(chosen)) if user != chosen => return Err(v1_user_changed()),
                    (user, chosen) => user.or(chosen),
                };
                (user, true)
            }
            None if flows.iter().any(Vec::is_empty) => (input.user, false),
            None => return Err(AccountError::MissingParam("session")),
        };
        let requested = match user.as_deref() {
            Some(user) => Some(self.check_new_user_id(Some(user)).await?),
            None => None,
        };
        let password = SecretString::from(input.password);
        self.check_new_password(&password, requested.as_deref())?;
        let password_hash = self.hasher.hash(password).await?;
        let completed = if has_session {
            let completed = self
                .uia
                .authenticate(v1_operation(&body, &flows))
                .await
                .map_err(|error| match error {
                    crate::uia::UiaError::Challenge(_) => AccountError::Unsupported(
                        "Complete the earlier registration stages before m.login.password",
                    ),
                    other => other.into(),
                })?;
            Some(completed)
        } else {
            None
        };
        let login = Some(DeviceRequest {
            ip: input.ip,
            ..DeviceRequest::default()
        });
        self.complete_registration(Registrant::New(user), password_hash, completed, login, true)
            .await
    }

    /// The argon2id hash (and its mark) of a registration's password: the remembered one when
    /// the request repeats the password the session already hashed (clients resend the whole
    /// form with each UIA step, and hashing is the expensive part), a new one when the request
    /// brings another password, none when it brings none.
    async fn registration_password(
        &self,
        given: Option<&str>,
        remembered: &RememberedRegistration,
        session_id: &str,
    ) -> Result<Option<(String, String)>, AccountError> {
        let Some(password) = given else {
            return Ok(None);
        };
        let mark = password_mark(session_id, password);
        if let (Some(hash), Some(known)) = (&remembered.password_hash, &remembered.password_mark)
            && *known == mark
        {
            return Ok(Some((hash.clone(), mark)));
        }
        let hash = self
            .hasher
            .hash(SecretString::from(password.to_owned()))
            .await?;
        Ok(Some((hash, mark)))
    }

    /// Validates a requested username and checks it is free: the checks the spec wants done
    /// before any User-Interactive Authentication. `None` generates a free localpart.
    pub async fn check_new_user_id(
        &self,
        username: Option<&str>,
    ) -> Result<OwnedUserId, AccountError> {
        let Some(username) = username else {
            return self.generate_user_id().await;
        };
        let user_id = user_id::user_id_for_registration(username, &self.settings.server_name)?;
        if self
            .settings
            .exclusive_namespaces
            .is_match(user_id.as_str())
        {
            return Err(AccountError::Exclusive);
        }
        if self.store.localpart_exists(user_id.localpart()).await? {
            return Err(AccountError::UserInUse);
        }
        Ok(user_id)
    }

    async fn generate_user_id(&self) -> Result<OwnedUserId, AccountError> {
        loop {
            let localpart = self
                .rng
                .alphanumeric(GENERATED_LOCALPART_CHARS)
                .to_ascii_lowercase();
            let user_id =
                user_id::user_id_for_registration(&localpart, &self.settings.server_name)?;
            if !self
                .settings
                .exclusive_namespaces
                .is_match(user_id.as_str())
                && !self.store.localpart_exists(&localpart).await?
            {
                return Ok(user_id);
            }
        }
    }

    fn check_registration_open(&self) -> Result<(), AccountError> {
        if self.settings.registration_enabled {
            Ok(())
        } else {
            Err(AccountError::RegistrationDisabled)
        }
    }

    /// The stages before the password of each v1 flow: what the UIA engine must see completed.
    fn v1_stage_flows(&self) -> Vec<Flow> {
        self.settings
            .registration_flows
            .iter()
            .map(|flow| {
                flow.iter()
                    .filter(|stage| *stage != "m.login.dummy")
                    .cloned()
                    .collect()
            })
            .collect()
    }

    /// The guest behind `token`, if `username` names that guest's own account.
    async fn guest_to_upgrade(
        &self,
        token: &str,
        username: Option<&str>,
    ) -> Result<Requester, AccountError> {
        // An unknown token is 403, not 401: on `/register` a 401 is the UIA challenge.
        let guest = self
            .authenticate(token, None)
            .await
            .map_err(|_| AccountError::Forbidden("Unknown guest_access_token"))?;
        if !guest.is_guest {
            return Err(AccountError::Forbidden(
                "guest_access_token does not belong to a guest account",
            ));
        }
        let username = username.ok_or(AccountError::MissingParam("username"))?;
        let named = username
            .strip_prefix('@')
            .and_then(|user_id| user_id.split_once(':'))
            .map_or(username, |(localpart, _)| localpart);
        if !named.eq_ignore_ascii_case(guest.user_id.localpart()) {
            return Err(AccountError::Forbidden(
                "A guest account can only be upgraded under its own username",
            ));
        }
        Ok(guest)
    }

    /// The common ending of every UIA registration: creates the account (or upgrades the
    /// guest) with what the completed stages proved, gives a registration token's reserved
    /// use back when that fails, and afterwards, with `bind_email`, binds an identity server's
    /// address there.
    async fn complete_registration(
        &self,
        registrant: Registrant,
        password_hash: String,
        completed: Option<Completed>,
        login: Option<DeviceRequest>,
        bind_email: bool,
    ) -> Result<Registered, AccountError> {
        let proofs = completed
            .as_ref()
            .map(Completed::proofs)
            .unwrap_or_default();
        let session_hash = completed
            .as_ref()
            .map(|completed| completed.session_hash.clone());
        let extras = registration_extras(&proofs, session_hash.as_deref());
        let spent_session = proofs.email.as_ref().and_then(|email| email.sid.as_deref());
        let result = match registrant {
            Registrant::Guest(guest) => self
                .upgrade_guest(&guest, password_hash, extras, login, spent_session)
                .await
                .map(|session| Registered {
                    user_id: guest.user_id,
                    session,
                }),
            Registrant::New(username) => {
                match self.check_new_user_id(username.as_deref()).await {
                    // Checked again: the name may have been taken while the client completed
                    // UIA (the store's unique constraint decides any race that remains).
                    Ok(user_id) => self
                        .create_account(
                            &user_id,
                            Some(password_hash),
                            false,
                            login,
                            extras,
                            spent_session,
                        )
                        .await
                        .map(|session| Registered { user_id, session }),
                    Err(err) => Err(err),
                }
            }
        };
        if result.is_err()
            && proofs.registration_token.is_some()
            && let Some(session_hash) = &session_hash
            && let Err(err) = self.registration_tokens.release(session_hash).await
        {
            tracing::warn!(error = %err, "could not release a registration token reservation");
        }
        if let (Ok(registered), Some(email)) = (&result, &proofs.email) {
            self.bind_registration_email(&registered.user_id, email, bind_email)
                .await;
        }
        result
    }

    /// Creates the account with what the stages proved (terms, the registration token's use,
    /// the email address) and, unless login is inhibited, its first device session, and spends
    /// the email's verification session, in one transaction: a lost race for the user ID, or
    /// any failure, leaves nothing behind.
    async fn create_account(
        &self,
        user_id: &UserId,
        password_hash: Option<String>,
        is_guest: bool,
        login: Option<DeviceRequest>,
        mut extras: RegistrationExtras,
        spent_session: Option<&str>,
    ) -> Result<Option<IssuedSession>, AccountError> {
        let now_ms = self.clock.now_ms();
        let (login, issued) = login.map(|device| self.new_login(device, now_ms)).unzip();
        if extras.displayname.is_none() {
            extras.displayname = Some(user_id.localpart().to_owned());
        }
        let created = AccountEvent::Created {
            user_id: user_id.to_owned(),
            displayname: extras.displayname.clone(),
            emails: extras
                .threepids
                .iter()
                .map(|threepid| threepid.address.clone())
                .collect(),
            is_guest,
        };
        let device = device_event(user_id, login.as_ref());
        let account = NewAccount {
            user_id: user_id.to_string(),
            localpart: user_id.localpart().to_owned(),
            password_hash,
            is_guest,
            created_at_ms: now_ms,
            login,
            extras,
        };
        let mut tx = self.store.begin().await?;
        tx.create_account(account)
            .await
            .map_err(registration_conflict)?;
        if let Some(sid) = spent_session {
            tx.delete_validation(sid).await?;
        }
        tx.commit().await?;
        metrics::counter!("vestibule_registrations_total").increment(1);
        self.report([created].into_iter().chain(device)).await;
        Ok(issued)
    }

    /// Turns the guest account of `guest` into a full account with `password`, recording the
    /// registration extras and opening a new session unless login is inhibited.
    async fn upgrade_guest(
        &self,
        guest: &Requester,
        password_hash: String,
        extras: RegistrationExtras,
        login: Option<DeviceRequest>,
        spent_session: Option<&str>,
    ) -> Result<Option<IssuedSession>, AccountError> {
        let now_ms = self.clock.now_ms();
        let (login, issued) = login.map(|device| self.new_login(device, now_ms)).unzip();
        let device = device_event(&guest.user_id, login.as_ref());
        let emails: Vec<AccountEvent> = extras
            .threepids
            .iter()
            .map(|threepid| AccountEvent::EmailAdded {
                user_id: guest.user_id.clone(),
                address: threepid.address.clone(),
            })
            .collect();
        let upgrade = crate::store::GuestUpgrade {
            user_id: guest.user_id.to_string(),
            password_hash,
            now_ms,
            extras,
            login,
        };
        let mut tx = self.store.begin().await?;
        let upgraded = tx
            .upgrade_guest(upgrade)
            .await
            .map_err(registration_conflict)?;
        if !upgraded {
            return Err(AccountError::Forbidden(
                "This is not an active guest account",
            ));
        }
        if let Some(sid) = spent_session {
            tx.delete_validation(sid).await?;
        }
        tx.commit().await?;
        metrics::counter!("vestibule_registrations_total").increment(1);
        let upgraded = AccountEvent::GuestUpgraded {
            user_id: guest.user_id.clone(),
        };
        self.report([upgraded].into_iter().chain(emails).chain(device))
            .await;
        Ok(issued)
    }

    /// After a registration with an address proven through an identity server: it is bound
    /// there when asked. The account exists by now, so a failure here is logged rather than
    /// failing the registration.
    async fn bind_registration_email(&self, user_id: &UserId, email: &EmailProof, bind: bool) {
        let Some(session) = email.identity_server.as_ref().filter(|_| bind) else {
            return;
        };
        let creds = SessionCredentials {
            id_server: &session.id_server,
            sid: &session.sid,
            client_secret: &session.client_secret,
            id_access_token: None,
        };
        if let Err(err) = self.threepids.bind(user_id, creds).await {
            tracing::warn!(error = %err, %user_id, "could not bind the registration email");
        }
    }
}

/// What the completed stages proved, as the store records it with the account: the policy
/// versions accepted, the registration token used (with the session holding its reservation)
/// and the proven email address.
fn registration_extras(proofs: &Proofs, session_hash: Option<&str>) -> RegistrationExtras {
    RegistrationExtras {
        displayname: None,
        accepted_terms: proofs
            .accepted_terms
            .iter()
            .map(|accepted| AcceptedTerms {
                policy: accepted.policy.clone(),
                version: accepted.version.clone(),
            })
            .collect(),
        registration_token: proofs
            .registration_token
            .clone()
            .zip(session_hash.map(str::to_owned)),
        threepids: proofs
            .email
            .iter()
            .map(|email| NewThreepid {
                medium: email.medium.clone(),
                address: email.address.clone(),
                validated_at_ms: email.validated_at_ms,
            })
            .collect(),
    }
}

/// The event for the device session a registration opens, if it opens one.
fn device_event(user_id: &UserId, login: Option<&crate::store::NewLogin>) -> Option<AccountEvent> {
    login.map(|login| AccountEvent::DeviceCreated {
        user_id: user_id.to_owned(),
        device_id: login.device_id.as_str().into(),
        display_name: login.display_name.clone(),
    })
}

/// A registration write refused by a uniqueness rule: the address or the user ID is taken.
fn registration_conflict(err: StoreError) -> AccountError {
    match err {
        StoreError::Conflict(Conflict::ThreepidInUse) => AccountError::ThreepidInUse,
        StoreError::Conflict(Conflict::UserIdTaken) => AccountError::UserInUse,
        other => other.into(),
    }
}

/// HMAC-SHA256 of `password` keyed by the UIA session ID, hex.
fn password_mark(session_id: &str, password: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(session_id.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(password.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The UIA operation of a v1 step: bound to the v1 path and a body of only `auth`, since every
/// step carries different keys.
fn v1_operation<'a>(body: &'a Value, flows: &'a [Flow]) -> Operation<'a> {
    Operation {
        action: Action::Register,
        request: BoundRequest {
            method: "POST",
            path: V1_PATH,
            body,
        },
        user: None,
        flows,
    }
}

/// The user an earlier v1 stage chose, if any.
fn v1_chosen_user(progress: &Progress) -> Option<String> {
    progress
        .data
        .get(V1_CHOSEN_USER)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn v1_user_changed() -> AccountError {
    AccountError::Forbidden("The user was chosen in an earlier stage and cannot be changed")
}
