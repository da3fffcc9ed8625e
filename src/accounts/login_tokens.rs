//! Single-use login tokens (`m.login.token`): a signed-in user lets another device sign in.

use ruma::{OwnedUserId, UserId};

use super::{AccountError, Accounts, DeviceRequest, IssuedSession, tokens};
use crate::store::NewLoginToken;

impl Accounts {
    /// Issues a login token for `user_id`; returns it with its lifetime in milliseconds. Only
    /// its digest is stored.
    pub async fn issue_login_token(&self, user_id: &UserId) -> Result<(String, i64), AccountError> {
        let token = tokens::new_login_token(self.rng.as_ref());
        let lifetime_ms = self.settings.login_token_lifetime_ms;
        self.store
            .insert_login_token(NewLoginToken {
                token_hash: tokens::digest(&token),
                user_id: user_id.to_string(),
                expires_at_ms: self.clock.now_ms().saturating_add(lifetime_ms),
            })
            .await?;
        Ok((token, lifetime_ms))
    }

    /// Logs in with a login token, which is spent whether or not it was still valid; an
    /// unknown, used or expired token is [`AccountError::InvalidLoginToken`].
    pub async fn login_with_token(
        &self,
        token: &str,
        device: DeviceRequest,
    ) -> Result<(OwnedUserId, IssuedSession), AccountError> {
        let user_id = self
            .store
            .take_login_token(&tokens::digest(token), self.clock.now_ms())
            .await?
            .ok_or(AccountError::InvalidLoginToken)?;
        let user = self
            .store
            .find_user(&user_id)
            .await?
            .ok_or(AccountError::InvalidLoginToken)?;
        if user.deactivated_at_ms.is_some() {
            return Err(AccountError::Deactivated);
        }
        if user.locked {
            return Err(AccountError::Locked);
        }
        let user_id =
            UserId::parse(user_id).map_err(|err| AccountError::Internal(err.to_string()))?;
        let issued = self.open_session(&user_id, device).await?;
        Ok((user_id, issued))
    }

    /// Deletes expired login tokens and lapsed registration-token reservations; run
    /// periodically.
    pub async fn purge_expired_grants(&self) -> Result<u64, AccountError> {
        Ok(self
            .store
            .delete_expired_grants(self.clock.now_ms())
            .await?)
    }
}
