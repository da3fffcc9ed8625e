//! Sessions: signing in with a password, access-token authentication and logout (refresh is in
//! `refresh.rs`).

use ruma::{DeviceId, OwnedDeviceId, OwnedUserId, UserId};
use secrecy::SecretString;

use super::{
    AccountError, Accounts, DeviceRequest, IssuedSession, Requester, events::AccountEvent, user_id,
};
use crate::{
    ratelimit::Limit,
    store::{NewLogin, StoreTx},
    tokens,
};

/// The longest wait a login attempt to an attacked account is made to sit out.
const MAX_LOGIN_DELAY_MS: i64 = 10_000;

/// Who a password login names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginUser {
    /// A localpart or a full user ID.
    Name(String),
    /// An email address attached to the account (compared case-insensitively).
    Email(String),
}

impl Accounts {
    /// Logs a user in with a password, opening (or reusing) a device session. An unknown email
    /// address is checked against a dummy hash, so it costs the same time as a wrong password.
    pub async fn login_with_password(
        &self,
        user: LoginUser,
        password: SecretString,
        device: DeviceRequest,
    ) -> Result<(OwnedUserId, IssuedSession), AccountError> {
        device.check()?;
        let user = match user {
            LoginUser::Name(name) => name,
            LoginUser::Email(address) => self
                .threepids
                .email_owner(&address)
                .await?
                .map(String::from)
                .unwrap_or_default(),
        };
        let account =
            user_id::user_id_for_login(&user, &self.settings.server_name).map(|id| id.to_string());
        self.limiter
            .take(Limit::LoginPerIp, device.ip.as_deref())
            .await?;
        // Per account *and* client network: attempts from elsewhere can't lock the owner out.
        let network = device.ip.as_deref().map(|ip| self.limiter.network(ip));
        let account_from_network = account
            .as_deref()
            .map(|account| format!("{account}|{}", network.as_deref().unwrap_or("-")));
        self.limiter
            .take(Limit::LoginPerAccount, account_from_network.as_deref())
            .await?;
        self.limiter
            .peek(
                Limit::FailedLoginPerAccount,
                account_from_network.as_deref(),
            )
            .await?;
        self.slow_down_if_attacked(account.as_deref(), network.as_deref())
            .await?;
        let user_id = match self.verifier.verify(&user, password).await {
            Err(AccountError::InvalidCredentials) => {
                // Counted only after the refusal is decided, so the buckets never change the
                // answer to this attempt, only to the next ones.
                let _ = self
                    .limiter
                    .take(
                        Limit::FailedLoginPerAccount,
                        account_from_network.as_deref(),
                    )
                    .await;
                let _ = self
                    .limiter
                    .take(Limit::FailedLoginAccountWide, account.as_deref())
                    .await;
                return Err(AccountError::InvalidCredentials);
            }
            result => result?,
        };
        let issued = self.open_session(&user_id, device).await?;
        Ok((user_id, issued))
    }

    /// Once an account has failed many logins from many networks, each attempt waits (at most
    /// [`MAX_LOGIN_DELAY_MS`]) before its password is checked: guessing slows down, and the
    /// owner is never refused. An attempt from a network one of the account's devices was last
    /// seen on does not wait.
    async fn slow_down_if_attacked(
        &self,
        account: Option<&str>,
        network: Option<&str>,
    ) -> Result<(), AccountError> {
        let Err(crate::ratelimit::RateLimitError::Limited { retry_after_ms }) = self
            .limiter
            .peek(Limit::FailedLoginAccountWide, account)
            .await
        else {
            return Ok(());
        };
        if let (Some(account), Some(network)) = (account, network) {
            let devices = self.store.list_devices(account).await?;
            let known = devices.iter().any(|device| {
                device
                    .last_seen_ip
                    .as_deref()
                    .is_some_and(|ip| self.limiter.network(ip) == network)
            });
            if known {
                return Ok(());
            }
        }
        let delay = u64::try_from(retry_after_ms.clamp(0, MAX_LOGIN_DELAY_MS)).unwrap_or(0);
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        Ok(())
    }

    /// Opens a device session for an already authenticated user. Reusing a device ID keeps
    /// the device and invalidates the tokens it held.
    pub(crate) async fn open_session(
        &self,
        user_id: &UserId,
        device: DeviceRequest,
    ) -> Result<IssuedSession, AccountError> {
        let (login, issued) = self.new_login(device, self.clock.now_ms());
        let event = session_opened(user_id, &login, &issued);
        self.store.start_login(user_id.as_str(), login).await?;
        metrics::counter!("vestibule_logins_total").increment(1);
        self.report([event]).await;
        Ok(issued)
    }

    /// The tokens of a new device session: what the store keeps (digests) and what the client
    /// gets.
    pub(crate) fn new_login(
        &self,
        device: DeviceRequest,
        now_ms: i64,
    ) -> (NewLogin, IssuedSession) {
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
        (login, issued)
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

    /// Resolves an access token to its holder.
    /// The device's activity is noted in memory (written in batches by
    /// [`Accounts::flush_last_seen`]), not written on every request.
    pub async fn authenticate(
        &self,
        access_token: &str,
        ip: Option<String>,
    ) -> Result<Requester, AccountError> {
        let owner = self
            .store
            .find_token_owner(&tokens::digest(access_token))
            .await?
            .ok_or(AccountError::UnknownToken)?;
        if owner
            .expires_at_ms
            .is_some_and(|expires| expires <= self.clock.now_ms())
        {
            return Err(AccountError::ExpiredToken);
        }
        self.last_seen
            .record(&owner.user_id, &owner.device_id, self.clock.now_ms(), ip);
        Ok(Requester {
            user_id: UserId::parse(owner.user_id)?,
            device_id: owner.device_id.into(),
            is_guest: owner.is_guest,
            locked: owner.locked,
            suspended: owner.suspended,
        })
    }

    /// Ends the caller's session: its device and every token of that device are deleted.
    pub async fn logout(&self, requester: &Requester) -> Result<(), AccountError> {
        if self
            .store
            .delete_device(requester.user_id.as_str(), requester.device_id.as_str())
            .await?
        {
            self.report([AccountEvent::DeviceDeleted {
                user_id: requester.user_id.clone(),
                device_id: requester.device_id.clone(),
            }])
            .await;
        }
        Ok(())
    }

    /// Ends every session of the user, and revokes its login and OpenID tokens.
    pub async fn logout_all(&self, user_id: &UserId) -> Result<(), AccountError> {
        let mut tx = self.store.begin().await?;
        let ended = end_sessions(&mut tx, user_id, None).await?;
        tx.commit().await?;
        self.report(ended).await;
        Ok(())
    }
}

/// The event for a device session being opened.
pub(super) fn session_opened(
    user_id: &UserId,
    login: &NewLogin,
    issued: &IssuedSession,
) -> AccountEvent {
    AccountEvent::DeviceCreated {
        user_id: user_id.to_owned(),
        device_id: issued.device_id.clone(),
        display_name: login.display_name.clone(),
    }
}

/// Inside `tx`: deletes every device of the user but `keep` (with their tokens) and the user's
/// login and OpenID tokens, and returns the events to report for the ended sessions.
pub(super) async fn end_sessions(
    tx: &mut StoreTx,
    user_id: &UserId,
    keep: Option<&DeviceId>,
) -> Result<Vec<AccountEvent>, AccountError> {
    let deleted = tx
        .delete_all_devices(user_id.as_str(), keep.map(DeviceId::as_str))
        .await?;
    tx.delete_login_tokens_of(user_id.as_str()).await?;
    tx.delete_openid_tokens_of(user_id.as_str()).await?;
    Ok(deleted
        .into_iter()
        .map(|device_id| AccountEvent::DeviceDeleted {
            user_id: user_id.to_owned(),
            device_id: device_id.into(),
        })
        .collect())
}
