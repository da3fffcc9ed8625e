//! Passwords: checking one, the policy for new ones, and the use cases that change them (the
//! user's own change, a reset by email, the operator's reset).

use std::sync::Arc;

use ruma::{OwnedServerName, OwnedUserId, UserId};
use secrecy::{ExposeSecret, SecretString};

use super::{
    AccountError, Accounts, PasswordHasher, PasswordRejected, Requester, events::AccountEvent,
    password, sessions::end_sessions, user_id,
};
use crate::{
    store::Store,
    uia::{Action, BoundRequest, Operation},
};

/// Checks passwords against the stored hashes: what the login and the UIA `m.login.password`
/// stage share. Unknown users, deactivated users and wrong passwords cost the same time.
#[derive(Clone)]
pub struct PasswordVerifier {
    store: Arc<dyn Store>,
    hasher: PasswordHasher,
    server_name: OwnedServerName,
}

impl PasswordVerifier {
    /// A verifier over the accounts of `server_name`.
    pub fn new(
        store: Arc<dyn Store>,
        hasher: PasswordHasher,
        server_name: OwnedServerName,
    ) -> Self {
        Self {
            store,
            hasher,
            server_name,
        }
    }

    /// The user of this server that `user` (a localpart or a user ID) names, if it names one.
    pub fn user_id(&self, user: &str) -> Option<OwnedUserId> {
        user_id::user_id_for_login(user, &self.server_name)
    }

    /// Checks `password` for the user named by `user` (localpart or user ID).
    pub async fn verify(
        &self,
        user: &str,
        password: SecretString,
    ) -> Result<OwnedUserId, AccountError> {
        if password.expose_secret().len() > password::MAX_PASSWORD_BYTES {
            return Err(AccountError::InvalidCredentials);
        }
        let user_id = user_id::user_id_for_login(user, &self.server_name);
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
}

/// A password change as any API version submits it.
pub struct PasswordChange<'a> {
    /// The authenticated caller.
    pub requester: &'a Requester,
    /// The new password.
    pub new_password: String,
    /// Whether every other session of the user ends.
    pub logout_devices: bool,
    /// The request, as UIA binds its session to it.
    pub request: BoundRequest<'a>,
}

impl Accounts {
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

    /// Changes the caller's password: refused for guests and when the configuration disables
    /// password changes, `M_WEAK_PASSWORD` before UIA for a password the policy rejects, then
    /// `m.login.password` UIA. With `logout_devices` every other session of the user ends; the
    /// caller's own session is kept.
    pub async fn change_password(&self, change: PasswordChange<'_>) -> Result<(), AccountError> {
        let requester = change.requester;
        if requester.is_guest {
            return Err(AccountError::GuestAccessForbidden);
        }
        if !self.settings.password_change_enabled {
            return Err(AccountError::PasswordChangeDisabled);
        }
        let password = SecretString::from(change.new_password);
        self.check_new_password(&password, Some(&requester.user_id))?;
        self.confirm_password(requester, Action::ChangePassword, change.request)
            .await?;
        let keep = change
            .logout_devices
            .then_some(requester.device_id.as_ref());
        self.replace_password(
            &requester.user_id,
            password,
            change.logout_devices,
            keep,
            None,
        )
        .await
    }

    /// Resets a forgotten password: UIA `m.login.email.identity` with a session from
    /// `/account/password/email/requestToken` names the account, whose every session ends
    /// unless `logout_devices` is false. The verification session is spent.
    pub async fn reset_password_by_email(
        &self,
        new_password: String,
        logout_devices: bool,
        request: BoundRequest<'_>,
    ) -> Result<(), AccountError> {
        if !self.can_prove_addresses() {
            return Err(AccountError::NoPasswordReset);
        }
        let completed = self
            .uia
            .authenticate(Operation {
                action: Action::ChangePassword,
                request,
                user: None,
                flows: &[vec!["m.login.email.identity".to_owned()]],
            })
            .await?;
        let email = completed
            .proofs()
            .email
            .ok_or(AccountError::NoAccountWithEmail)?;
        let user_id = self
            .threepids
            .email_owner(&email.address)
            .await?
            .ok_or(AccountError::NoAccountWithEmail)?;
        let password = SecretString::from(new_password);
        self.check_new_password(&password, Some(&user_id))?;
        let spent = email.sid.as_deref();
        self.replace_password(&user_id, password, logout_devices, None, spent)
            .await
    }

    /// Sets a new password (policy-checked) without asking for the old one: for the operator
    /// and the reset by email. With `logout` every session of the user ends.
    pub async fn reset_password(
        &self,
        user_id: &UserId,
        password: SecretString,
        logout: bool,
    ) -> Result<(), AccountError> {
        self.check_new_password(&password, Some(user_id))?;
        self.replace_password(user_id, password, logout, None, None)
            .await
    }

    /// Stores the new password's hash (refused for a deactivated account) and, with `logout`, ends every session of the user but
    /// `keep_device` and revokes its login and OpenID tokens, and spends the verification
    /// session that proved the user's address (a reset by email), all in one transaction;
    /// reports the change and each ended session.
    async fn replace_password(
        &self,
        user_id: &UserId,
        password: SecretString,
        logout: bool,
        keep_device: Option<&ruma::DeviceId>,
        spent_session: Option<&str>,
    ) -> Result<(), AccountError> {
        let hash = self.hasher.hash(password).await?;
        let mut tx = self.store.begin().await?;
        let account = tx
            .find_user(user_id.as_str())
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        if account.deactivated_at_ms.is_some() {
            return Err(AccountError::Deactivated);
        }
        tx.set_password_hash(user_id.as_str(), &hash).await?;
        let ended = if logout {
            end_sessions(&mut tx, user_id, keep_device).await?
        } else {
            Vec::new()
        };
        if let Some(sid) = spent_session {
            tx.delete_validation(sid).await?;
        }
        tx.commit().await?;
        self.report(
            [AccountEvent::PasswordChanged {
                user_id: user_id.to_owned(),
            }]
            .into_iter()
            .chain(ended),
        )
        .await;
        Ok(())
    }

    /// User-Interactive Authentication in which a signed-in user proves, with their password,
    /// that they are who the access token says, before `action`.
    pub(crate) async fn confirm_password(
        &self,
        requester: &Requester,
        action: Action,
        request: BoundRequest<'_>,
    ) -> Result<(), AccountError> {
        self.uia
            .authenticate(Operation {
                action,
                request,
                user: Some(&requester.user_id),
                flows: &[vec!["m.login.password".to_owned()]],
            })
            .await?;
        Ok(())
    }
}
