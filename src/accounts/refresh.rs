//! Refreshing access tokens, and what a spent refresh token presented again revokes.

use ruma::UserId;

use super::{AccountError, Accounts, IssuedSession, events::AccountEvent};
use crate::{
    ratelimit::Limit,
    store::{RefreshOutcome, TokenRotation},
    tokens,
};

/// How long a spent refresh token is remembered, so that presenting it revokes its device:
/// seven days, long enough to catch a thief or a client that comes back after a week away,
/// short enough that a device which refreshes every few minutes keeps a bounded number of rows.
const SPENT_REFRESH_TOKEN_MEMORY_MS: i64 = 7 * 24 * 3600 * 1000;

impl Accounts {
    /// Exchanges a refresh token for a new access token and refresh token on the same device;
    /// the old access token stops working. With `keep_previous` (the current spec) the old
    /// refresh token is accepted again for the configured grace after this first rotation, so a
    /// client that lost the response can retry; without it (the v2_alpha API) it is revoked at
    /// once. A locked account's refresh is refused before anything rotates.
    ///
    /// A refresh token once valid for a device but now spent (replaced, and past its grace) is
    /// taken as a sign that it was stolen: in one transaction the device is deleted with every
    /// token it held, the deletion is reported, and the answer is
    /// [`AccountError::UnknownRefreshToken`], as for a token never seen.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        keep_previous: bool,
        ip: Option<&str>,
    ) -> Result<IssuedSession, AccountError> {
        self.limiter.take(Limit::RefreshPerIp, ip).await?;
        let now_ms = self.clock.now_ms();
        let access_token = tokens::new_access_token(self.rng.as_ref());
        let new_refresh_token = tokens::new_refresh_token(self.rng.as_ref());
        let lifetime = self.settings.refreshable_access_token_lifetime_ms;
        let rotation = TokenRotation {
            access_token_hash: tokens::digest(&access_token),
            refresh_token_hash: tokens::digest(&new_refresh_token),
            expires_at_ms: Some(now_ms.saturating_add(lifetime)),
            grace_until_ms: keep_previous
                .then(|| now_ms.saturating_add(self.settings.refresh_grace_ms)),
            forget_spent_at_ms: now_ms.saturating_add(SPENT_REFRESH_TOKEN_MEMORY_MS),
            now_ms,
        };
        let mut tx = self.store.begin().await?;
        let outcome = tx
            .rotate_refresh_token(&tokens::digest(refresh_token), rotation)
            .await?;
        let revoked = match &outcome {
            RefreshOutcome::Spent { user_id, device_id } => {
                tx.delete_device(user_id, device_id).await?
            }
            _ => false,
        };
        tx.commit().await?;
        match outcome {
            RefreshOutcome::Rotated { device_id, .. } => Ok(IssuedSession {
                device_id: device_id.into(),
                access_token,
                expires_in_ms: u64::try_from(lifetime).ok(),
                refresh_token: Some(new_refresh_token),
            }),
            RefreshOutcome::Spent { user_id, device_id } => {
                tracing::warn!(
                    %user_id,
                    %device_id,
                    "a spent refresh token was presented: the device and its tokens are revoked"
                );
                if revoked {
                    self.report([AccountEvent::DeviceDeleted {
                        user_id: UserId::parse(user_id)?,
                        device_id: device_id.into(),
                    }])
                    .await;
                }
                Err(AccountError::UnknownRefreshToken)
            }
            RefreshOutcome::Unknown => Err(AccountError::UnknownRefreshToken),
            RefreshOutcome::Locked => Err(AccountError::Locked),
        }
    }
}
