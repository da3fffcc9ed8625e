//! Accounts: registration, password login, access-token authentication, logout and the
//! operator's account changes. No HTTP and no SQL here: callers speak Matrix, the store speaks
//! rows, and this module holds the rules in between.

pub mod last_seen;
mod login_tokens;
pub mod password;
mod profile;
pub mod registration_tokens;
pub mod tokens;
pub mod user_id;

use std::sync::Arc;

use regex::RegexSet;
use ruma::{DeviceId, OwnedDeviceId, OwnedServerName, OwnedUserId, UserId};
use secrecy::{ExposeSecret, SecretString};

pub use crate::store::Restriction;
use crate::{
    clock::{Clock, Randomness},
    ratelimit::{Limit, RateLimitError, RateLimiter},
    store::{
        Conflict, DeviceRecord, GuestUpgrade, NewAccount, NewLogin, RefreshOutcome,
        RegistrationExtras, Store, StoreError, TokenRotation,
    },
};
pub use password::{PasswordHasher, PasswordPolicy, PasswordRejected};
pub use profile::{ProfileField, ProfileRules};
pub use user_id::InvalidUsername;

/// Length of generated localparts.
const GENERATED_LOCALPART_CHARS: usize = 12;

/// What can go wrong in an account operation, named for the caller.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The requested username does not make a valid user ID.
    #[error("invalid username: {0}")]
    InvalidUsername(#[from] InvalidUsername),
    /// The user ID is taken (or was taken by an account since deactivated).
    #[error("user ID already taken")]
    UserInUse,
    /// A third-party identifier proven during registration belongs to another account.
    #[error("the email address is already in use")]
    ThreepidInUse,
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
    /// A rate limit refused the attempt.
    #[error("{0}")]
    RateLimited(RateLimitError),
    /// A failure of the store or the hasher.
    #[error("{0}")]
    Internal(String),
}

impl From<RateLimitError> for AccountError {
    fn from(err: RateLimitError) -> Self {
        Self::RateLimited(err)
    }
}

impl From<StoreError> for AccountError {
    fn from(err: StoreError) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<password::HashError> for AccountError {
    fn from(err: password::HashError) -> Self {
        Self::Internal(err.to_string())
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// The user the access token belongs to.
    pub user_id: OwnedUserId,
    /// The device the access token was issued to.
    pub device_id: OwnedDeviceId,
    /// Whether the user is a guest.
    pub is_guest: bool,
    /// Whether the operator has locked the account (only logout is then allowed).
    pub locked: bool,
    /// Whether the operator has suspended the account (reads allowed, changes refused).
    pub suspended: bool,
}

/// A device session handed to a client after registration or login.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    /// The device the tokens belong to.
    pub device_id: OwnedDeviceId,
    /// The new access token (shown to the client once, stored only hashed).
    pub access_token: String,
    /// Milliseconds until the access token expires, if it does.
    pub expires_in_ms: Option<u64>,
    /// The refresh token, when the client asked for one.
    pub refresh_token: Option<String>,
}

/// Device details a client may supply when it logs in or registers.
#[derive(Debug, Clone, Default)]
pub struct DeviceRequest {
    /// Reuse (or create) this device ID; generated when absent.
    pub device_id: Option<OwnedDeviceId>,
    /// Display name for a new device.
    pub display_name: Option<String>,
    /// The client's IP address.
    pub ip: Option<String>,
    /// Whether the client supports refresh tokens (`refresh_token: true`): it then gets one,
    /// and an access token with the refreshable lifetime.
    pub refresh_token: bool,
}

/// A registration the UIA stages have already approved.
#[derive(Debug)]
pub struct Registration {
    /// The user ID to create (already checked by [`Accounts::check_new_user_id`]).
    pub user_id: OwnedUserId,
    /// The password; `None` for guests.
    pub password: Option<SecretString>,
    /// Whether this is a guest account.
    pub is_guest: bool,
    /// The first device, or `None` when the client asked for no login (`inhibit_login`).
    pub login: Option<DeviceRequest>,
    /// Terms accepted and registration token used during UIA (the display name defaults to
    /// the localpart when not given).
    pub extras: RegistrationExtras,
}

/// Settings the account rules depend on.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// This server's name.
    pub server_name: OwnedServerName,
    /// The rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// Access-token lifetime in milliseconds; `None` = never expires.
    pub access_token_lifetime_ms: Option<i64>,
    /// Lifetime of access tokens issued with a refresh token, in milliseconds.
    pub refreshable_access_token_lifetime_ms: i64,
    /// Regular expressions over full user IDs that registration may not claim.
    pub exclusive_namespaces: RegexSet,
    /// Lifetime of `m.login.token` tokens, in milliseconds.
    pub login_token_lifetime_ms: i64,
    /// Which profile fields users may change.
    pub profile_rules: ProfileRules,
}

/// The account service: rules over the store, with injected time and randomness.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    hasher: PasswordHasher,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Randomness>,
    limiter: RateLimiter,
    last_seen: last_seen::LastSeenRecorder,
    settings: Arc<AccountSettings>,
}

impl Accounts {
    /// Builds the service.
    pub fn new(
        store: Arc<dyn Store>,
        hasher: PasswordHasher,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Randomness>,
        limiter: RateLimiter,
        settings: AccountSettings,
    ) -> Self {
        Self {
            store,
            hasher,
            clock,
            rng,
            limiter,
            last_seen: last_seen::LastSeenRecorder::default(),
            settings: Arc::new(settings),
        }
    }

    /// This server's name.
    pub fn server_name(&self) -> &ruma::ServerName {
        &self.settings.server_name
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

    /// Checks a new password for `user` (when known) against the policy, without hashing it.
    pub fn check_new_password(
        &self,
        password: &SecretString,
        user: Option<&UserId>,
    ) -> Result<(), AccountError> {
        let localpart = user.map(UserId::localpart);
        self.settings
            .password_policy
            .check(password.expose_secret(), localpart)
            .map_err(|rejected| match rejected {
                PasswordRejected::TooLong => AccountError::PasswordTooLong(rejected),
                other => AccountError::WeakPassword(other),
            })
    }

    /// Creates the account and, unless login is inhibited, its first device session, in one
    /// atomic write: a lost race for the user ID leaves nothing behind.
    pub async fn register(
        &self,
        registration: Registration,
    ) -> Result<Option<IssuedSession>, AccountError> {
        let password_hash = match registration.password {
            Some(password) => {
                self.check_new_password(&password, Some(&registration.user_id))?;
                Some(self.hasher.hash(password).await?)
            }
            None => None,
        };
        let now_ms = self.clock.now_ms();
        let (login, issued) = match registration.login {
            Some(device) => {
                let (login, issued) = self.new_login(device, now_ms)?;
                (Some(login), Some(issued))
            }
            None => (None, None),
        };
        let mut extras = registration.extras;
        if extras.displayname.is_none() {
            extras.displayname = Some(registration.user_id.localpart().to_owned());
        }
        let account = NewAccount {
            user_id: registration.user_id.to_string(),
            localpart: registration.user_id.localpart().to_owned(),
            password_hash,
            is_guest: registration.is_guest,
            created_at_ms: now_ms,
            login,
            extras,
        };
        match self.store.create_account(account).await {
            Ok(()) => {
                metrics::counter!("vestibule_registrations_total").increment(1);
                Ok(issued)
            }
            Err(StoreError::Conflict(Conflict::ThreepidInUse)) => Err(AccountError::ThreepidInUse),
            Err(StoreError::Conflict(Conflict::UserIdTaken)) => Err(AccountError::UserInUse),
            Err(err) => Err(err.into()),
        }
    }

    /// Checks `password` for the user named by `user` (localpart or user ID). Unknown users,
    /// deactivated users and wrong passwords cost the same time.
    pub async fn verify_password(
        &self,
        user: &str,
        password: SecretString,
    ) -> Result<OwnedUserId, AccountError> {
        if password.expose_secret().len() > password::MAX_PASSWORD_BYTES {
            return Err(AccountError::InvalidCredentials);
        }
        let user_id = user_id::user_id_for_login(user, &self.settings.server_name);
        let record = match &user_id {
            Some(user_id) => self.store.find_user(user_id.as_str()).await?,
            None => None,
        };
        let deactivated = record
            .as_ref()
            .is_some_and(|record| record.deactivated_at_ms.is_some());
        let locked = record.as_ref().is_some_and(|record| record.locked);
        let stored = record.and_then(|record| record.password_hash);
        let matches = self.hasher.verify(password, stored).await?;
        match (user_id, matches) {
            (Some(_), true) if deactivated => Err(AccountError::Deactivated),
            (Some(_), true) if locked => Err(AccountError::Locked),
            (Some(user_id), true) => Ok(user_id),
            _ => Err(AccountError::InvalidCredentials),
        }
    }

    /// Logs `user` in with a password, opening (or reusing) a device session.
    pub async fn login_with_password(
        &self,
        user: &str,
        password: SecretString,
        device: DeviceRequest,
    ) -> Result<(OwnedUserId, IssuedSession), AccountError> {
        let account =
            user_id::user_id_for_login(user, &self.settings.server_name).map(|id| id.to_string());
        self.limiter
            .take(Limit::LoginPerIp, device.ip.as_deref())
            .await?;
        self.limiter
            .take(Limit::LoginPerAccount, account.as_deref())
            .await?;
        self.limiter
            .peek(Limit::FailedLoginPerAccount, account.as_deref())
            .await?;
        let user_id = match self.verify_password(user, password).await {
            Err(AccountError::InvalidCredentials) => {
                // Counted only after the refusal is decided, so the bucket never changes the
                // answer to this attempt, only to the next ones.
                let _ = self
                    .limiter
                    .take(Limit::FailedLoginPerAccount, account.as_deref())
                    .await;
                return Err(AccountError::InvalidCredentials);
            }
            result => result?,
        };
        let issued = self.open_session(&user_id, device).await?;
        Ok((user_id, issued))
    }

    /// Opens a device session for an already authenticated user. Reusing a device ID keeps
    /// the device and invalidates the tokens it held.
    pub async fn open_session(
        &self,
        user_id: &UserId,
        device: DeviceRequest,
    ) -> Result<IssuedSession, AccountError> {
        let (login, issued) = self.new_login(device, self.clock.now_ms())?;
        self.store.start_login(user_id.as_str(), login).await?;
        metrics::counter!("vestibule_logins_total").increment(1);
        Ok(issued)
    }

    fn new_login(
        &self,
        device: DeviceRequest,
        now_ms: i64,
    ) -> Result<(NewLogin, IssuedSession), AccountError> {
        let device_id = match device.device_id {
            Some(device_id) => device_id,
            None => OwnedDeviceId::from(tokens::new_device_id(self.rng.as_ref())),
        };
        let access_token = tokens::new_access_token(self.rng.as_ref());
        let refresh_token = device
            .refresh_token
            .then(|| tokens::new_refresh_token(self.rng.as_ref()));
        let lifetime = self.access_token_lifetime(refresh_token.is_some());
        let login = NewLogin {
            device_id: device_id.to_string(),
            display_name: device.display_name,
            access_token_hash: tokens::digest(&access_token),
            expires_at_ms: lifetime.map(|lifetime| now_ms.saturating_add(lifetime)),
            refresh_token_hash: refresh_token.as_deref().map(tokens::digest),
            now_ms,
            ip: device.ip,
        };
        let issued = IssuedSession {
            device_id,
            access_token,
            expires_in_ms: lifetime.and_then(|lifetime| u64::try_from(lifetime).ok()),
            refresh_token,
        };
        Ok((login, issued))
    }

    /// How long a new access token lives: the refreshable lifetime when it comes with a
    /// refresh token, else the configured (possibly unlimited) one.
    fn access_token_lifetime(&self, refreshable: bool) -> Option<i64> {
        if refreshable {
            Some(self.settings.refreshable_access_token_lifetime_ms)
        } else {
            self.settings.access_token_lifetime_ms
        }
    }

    /// Exchanges a refresh token for a new access token and refresh token on the same device;
    /// the old access token stops working. With `keep_previous` (the current spec) the old
    /// refresh token is accepted again until the new tokens are first used, so a client that
    /// lost the response can retry; without it (the v2_alpha API) it is revoked at once.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        keep_previous: bool,
    ) -> Result<IssuedSession, AccountError> {
        let now_ms = self.clock.now_ms();
        let access_token = tokens::new_access_token(self.rng.as_ref());
        let new_refresh_token = tokens::new_refresh_token(self.rng.as_ref());
        let lifetime = self.settings.refreshable_access_token_lifetime_ms;
        let rotation = TokenRotation {
            access_token_hash: tokens::digest(&access_token),
            refresh_token_hash: tokens::digest(&new_refresh_token),
            expires_at_ms: Some(now_ms.saturating_add(lifetime)),
            keep_previous,
            now_ms,
        };
        let device_id = match self
            .store
            .rotate_refresh_token(&tokens::digest(refresh_token), rotation)
            .await?
        {
            RefreshOutcome::Rotated { device_id, .. } => device_id,
            RefreshOutcome::Unknown => return Err(AccountError::UnknownRefreshToken),
            RefreshOutcome::Locked => return Err(AccountError::Locked),
        };
        Ok(IssuedSession {
            device_id: device_id.into(),
            access_token,
            expires_in_ms: u64::try_from(lifetime).ok(),
            refresh_token: Some(new_refresh_token),
        })
    }

    /// Resolves an access token to its holder.
    /// The device's activity is noted in memory (written in batches by
    /// [`Accounts::flush_last_seen`]), not written on every request.
    pub async fn authenticate(
        &self,
        access_token: &str,
        ip: Option<String>,
    ) -> Result<Requester, AccountError> {
        let token_hash = tokens::digest(access_token);
        let owner = self
            .store
            .find_token_owner(&token_hash)
            .await?
            .ok_or(AccountError::UnknownToken)?;
        if owner
            .expires_at_ms
            .is_some_and(|expires| expires <= self.clock.now_ms())
        {
            return Err(AccountError::ExpiredToken);
        }
        if owner.refresh_pending {
            // First use of a refreshed token: the refresh token it replaced is now spent.
            self.store.settle_refresh(&token_hash).await?;
        }
        self.last_seen
            .record(&owner.user_id, &owner.device_id, self.clock.now_ms(), ip);
        let user_id =
            UserId::parse(owner.user_id).map_err(|err| AccountError::Internal(err.to_string()))?;
        Ok(Requester {
            user_id,
            device_id: owner.device_id.into(),
            is_guest: owner.is_guest,
            locked: owner.locked,
            suspended: owner.suspended,
        })
    }

    /// Ends the caller's session: its device and every token of that device are deleted.
    pub async fn logout(&self, requester: &Requester) -> Result<(), AccountError> {
        self.store
            .delete_device(requester.user_id.as_str(), requester.device_id.as_str())
            .await?;
        Ok(())
    }

    /// The user's devices, ordered by device ID, with their latest activity.
    pub async fn devices(&self, user_id: &UserId) -> Result<Vec<DeviceRecord>, AccountError> {
        let mut devices = self.store.list_devices(user_id.as_str()).await?;
        self.last_seen.overlay(&mut devices);
        Ok(devices)
    }

    /// Writes the devices' recent activity to the store; run periodically and at shutdown.
    pub async fn flush_last_seen(&self) -> Result<usize, AccountError> {
        Ok(self.last_seen.flush(self.store.as_ref()).await?)
    }

    /// One of the user's devices.
    pub async fn device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
    ) -> Result<DeviceRecord, AccountError> {
        self.devices(user_id)
            .await?
            .into_iter()
            .find(|device| device.device_id == device_id.as_str())
            .ok_or(AccountError::NoSuchDevice)
    }

    /// Renames one of the user's devices (`None` clears the name).
    pub async fn rename_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        display_name: Option<&str>,
    ) -> Result<(), AccountError> {
        if self
            .store
            .rename_device(user_id.as_str(), device_id.as_str(), display_name)
            .await?
        {
            Ok(())
        } else {
            Err(AccountError::NoSuchDevice)
        }
    }

    /// Deletes devices of the user and every token issued to them; unknown IDs are skipped.
    /// Returns how many were deleted.
    pub async fn delete_devices(
        &self,
        user_id: &UserId,
        device_ids: &[OwnedDeviceId],
    ) -> Result<usize, AccountError> {
        let mut deleted = 0;
        for device_id in device_ids {
            if self
                .store
                .delete_device(user_id.as_str(), device_id.as_str())
                .await?
            {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Ends every session of the user.
    pub async fn logout_all(&self, user_id: &UserId) -> Result<(), AccountError> {
        self.store
            .delete_all_devices(user_id.as_str(), None)
            .await?;
        Ok(())
    }

    /// Sets a new password for a user who has proven who they are (UIA). With `logout_devices`
    /// every other session of the user ends; the caller's own session is kept.
    pub async fn change_password(
        &self,
        requester: &Requester,
        password: SecretString,
        logout_devices: bool,
    ) -> Result<(), AccountError> {
        self.check_new_password(&password, Some(&requester.user_id))?;
        let hash = self.hasher.hash(password).await?;
        if !self
            .store
            .set_password_hash(requester.user_id.as_str(), &hash)
            .await?
        {
            return Err(AccountError::NoSuchUser);
        }
        if logout_devices {
            self.store
                .delete_all_devices(
                    requester.user_id.as_str(),
                    Some(requester.device_id.as_str()),
                )
                .await?;
        }
        Ok(())
    }

    /// Sets a new password (policy-checked) without asking for the old one: for the operator.
    /// With `logout` every session of the user ends.
    pub async fn reset_password(
        &self,
        user_id: &UserId,
        password: SecretString,
        logout: bool,
    ) -> Result<(), AccountError> {
        self.check_new_password(&password, Some(user_id))?;
        let record = self
            .store
            .find_user(user_id.as_str())
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        if record.deactivated_at_ms.is_some() {
            return Err(AccountError::Deactivated);
        }
        let hash = self.hasher.hash(password).await?;
        if !self
            .store
            .set_password_hash(user_id.as_str(), &hash)
            .await?
        {
            return Err(AccountError::NoSuchUser);
        }
        if logout {
            self.store
                .delete_all_devices(user_id.as_str(), None)
                .await?;
        }
        Ok(())
    }

    /// Deactivates the account: no more logins, every session ended, the localpart kept; with
    /// `erase`, the profile is deleted too.
    pub async fn deactivate(&self, user_id: &UserId, erase: bool) -> Result<(), AccountError> {
        if self
            .store
            .deactivate_user(user_id.as_str(), self.clock.now_ms(), erase)
            .await?
        {
            Ok(())
        } else {
            Err(AccountError::NoSuchUser)
        }
    }

    /// Turns the guest account of `guest` into a full account with `password`, recording the
    /// registration extras and opening a new session unless login is inhibited.
    pub async fn upgrade_guest(
        &self,
        guest: &Requester,
        password: SecretString,
        extras: RegistrationExtras,
        login: Option<DeviceRequest>,
    ) -> Result<Option<IssuedSession>, AccountError> {
        self.check_new_password(&password, Some(&guest.user_id))?;
        let password_hash = self.hasher.hash(password).await?;
        let now_ms = self.clock.now_ms();
        let (login, issued) = match login {
            Some(device) => {
                let (login, issued) = self.new_login(device, now_ms)?;
                (Some(login), Some(issued))
            }
            None => (None, None),
        };
        let upgrade = GuestUpgrade {
            user_id: guest.user_id.to_string(),
            password_hash,
            now_ms,
            extras,
            login,
        };
        let upgraded = match self.store.upgrade_guest(upgrade).await {
            Err(StoreError::Conflict(Conflict::ThreepidInUse)) => {
                return Err(AccountError::ThreepidInUse);
            }
            other => other?,
        };
        if upgraded {
            metrics::counter!("vestibule_registrations_total").increment(1);
            Ok(issued)
        } else {
            Err(AccountError::Forbidden(
                "This is not an active guest account",
            ))
        }
    }

    /// Applies or lifts an operator's restriction. A locked account keeps its sessions, but
    /// every request except logout gets `M_USER_LOCKED`; a suspended one can sign in and read,
    /// but changes are refused with `M_USER_SUSPENDED`.
    pub async fn set_restriction(
        &self,
        user_id: &UserId,
        restriction: Restriction,
        active: bool,
    ) -> Result<(), AccountError> {
        if self
            .store
            .set_restriction(user_id.as_str(), restriction, active, self.clock.now_ms())
            .await?
        {
            Ok(())
        } else {
            Err(AccountError::NoSuchUser)
        }
    }

    /// Grants or revokes the server-administrator role (operator action): administrators may
    /// lock and suspend accounts through the admin API and look up other users' sessions.
    pub async fn set_admin(&self, user_id: &UserId, admin: bool) -> Result<(), AccountError> {
        if self.store.set_admin(user_id.as_str(), admin).await? {
            Ok(())
        } else {
            Err(AccountError::NoSuchUser)
        }
    }

    /// Whether the user is a server administrator.
    pub async fn is_admin(&self, user_id: &UserId) -> Result<bool, AccountError> {
        Ok(self
            .store
            .find_user(user_id.as_str())
            .await?
            .is_some_and(|user| user.is_admin && user.deactivated_at_ms.is_none()))
    }

    /// Whether an existing account is locked and whether it is suspended.
    pub async fn moderation_status(&self, user_id: &UserId) -> Result<(bool, bool), AccountError> {
        let user = self
            .store
            .find_user(user_id.as_str())
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        Ok((user.locked, user.suspended))
    }
}
