//! Single-use login tokens (`m.login.token`): a signed-in user lets another device sign in.

use ruma::{OwnedUserId, UserId};

use super::{AccountError, Accounts, DeviceRequest, IssuedSession, Requester};
use crate::{
    ratelimit::Limit,
    store::NewLoginToken,
    tokens,
    uia::{Action, BoundRequest},
};

impl Accounts {
    /// Whether users may issue login tokens here (`GET /login` says so).
    pub fn issues_login_tokens(&self) -> bool {
        self.settings.login_token_enabled
    }

    /// Issues a login token for the caller after password UIA (asked every time, as the spec
    /// requires); returns it with its lifetime in milliseconds. Refused when the configuration
    /// disables login tokens; limited per account, counted only once a token is issued (the
    /// UIA round trips are not extra tokens). Only its digest is stored.
    pub async fn get_login_token(
        &self,
        requester: &Requester,
        request: BoundRequest<'_>,
    ) -> Result<(String, i64), AccountError> {
        if !self.settings.login_token_enabled {
            return Err(AccountError::LoginTokensDisabled);
        }
        let account = Some(requester.user_id.as_str());
        self.limiter
            .peek(Limit::LoginTokenPerAccount, account)
            .await?;
        self.confirm_password(requester, Action::GetLoginToken, request)
            .await?;
        self.limiter
            .take(Limit::LoginTokenPerAccount, account)
            .await?;
        self.issue_login_token(&requester.user_id).await
    }

    async fn issue_login_token(&self, user_id: &UserId) -> Result<(String, i64), AccountError> {
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
    /// unknown, used or expired token is [`AccountError::InvalidLoginToken`]. Spending the token
    /// and opening the session are one transaction.
    pub async fn login_with_token(
        &self,
        token: &str,
        device: DeviceRequest,
    ) -> Result<(OwnedUserId, IssuedSession), AccountError> {
        device.check()?;
        self.limiter
            .take(Limit::LoginPerIp, device.ip.as_deref())
            .await?;
        let mut tx = self.store.begin().await?;
        let owner = tx
            .take_login_token(&tokens::digest(token), self.clock.now_ms())
            .await?;
        let account = match &owner {
            Some(user_id) => tx.find_user(user_id).await?,
            None => None,
        };
        let refusal = match &account {
            None => Some(AccountError::InvalidLoginToken),
            Some(account) if account.deactivated_at_ms.is_some() => Some(AccountError::Deactivated),
            Some(account) if account.locked => Some(AccountError::Locked),
            Some(_) => None,
        };
        if let Some(refusal) = refusal {
            // The token is spent all the same.
            tx.commit().await?;
            return Err(refusal);
        }
        let user_id = UserId::parse(owner.unwrap_or_default())?;
        let (login, issued) = self.new_login(device, self.clock.now_ms());
        let event = super::sessions::session_opened(&user_id, &login, &issued);
        tx.start_login(user_id.as_str(), login).await?;
        tx.commit().await?;
        metrics::counter!("vestibule_logins_total").increment(1);
        self.report([event]).await;
        Ok((user_id, issued))
    }

    /// Deletes expired login tokens, lapsed registration-token reservations, expired email
    /// verification sessions and OpenID tokens, and spent refresh tokens no longer remembered;
    /// run periodically.
    pub async fn purge_expired_grants(&self) -> Result<u64, AccountError> {
        Ok(self
            .store
            .delete_expired_grants(self.clock.now_ms())
            .await?)
    }
}
