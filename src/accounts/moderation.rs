//! The end of an account and the operator's hold on it: deactivation, locking, suspension,
//! the administrator role and what administrators may look up.

use ruma::{OwnedUserId, UserId};

use super::{AccountError, Accounts, Device, Requester, events::AccountEvent};
use crate::{
    store,
    threepids::UnbindResult,
    uia::{Action, BoundRequest},
};

/// An operator's restriction on an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// Locked: every request but logout is refused with `M_USER_LOCKED`.
    Locked,
    /// Suspended: reading goes on, changes are refused with `M_USER_SUSPENDED`.
    Suspended,
}

impl Restriction {
    fn stored(self) -> store::Restriction {
        match self {
            Self::Locked => store::Restriction::Locked,
            Self::Suspended => store::Restriction::Suspended,
        }
    }

    fn event(self, user_id: &UserId, active: bool) -> AccountEvent {
        let user_id = user_id.to_owned();
        match self {
            Self::Locked => AccountEvent::Locked {
                user_id,
                locked: active,
            },
            Self::Suspended => AccountEvent::Suspended {
                user_id,
                suspended: active,
            },
        }
    }
}

impl Accounts {
    /// After password UIA, deactivates the caller's account for good (see
    /// [`Accounts::close_account`]).
    pub async fn deactivate(
        &self,
        requester: &Requester,
        erase: bool,
        request: BoundRequest<'_>,
    ) -> Result<UnbindResult, AccountError> {
        self.confirm_password(requester, Action::Deactivate, request)
            .await?;
        self.close_account(&requester.user_id, erase).await
    }

    /// Deactivates an account (the user's own request after UIA, or the operator's): addresses
    /// this server bound at identity servers are unbound first, then every session ends, logins
    /// answer `M_USER_DEACTIVATED`, the user ID is never handed out again, and the profile stops
    /// being served (`erase` deletes it). The result says whether every unbind succeeded.
    pub async fn close_account(
        &self,
        user_id: &UserId,
        erase: bool,
    ) -> Result<UnbindResult, AccountError> {
        let unbound = self.threepids.unbind_all(user_id).await?;
        if !self
            .store
            .deactivate_user(user_id.as_str(), self.clock.now_ms(), erase)
            .await?
        {
            return Err(AccountError::NoSuchUser);
        }
        self.report([AccountEvent::Deactivated {
            user_id: user_id.to_owned(),
            erased: erase,
        }])
        .await;
        Ok(unbound)
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
        let mut tx = self.store.begin().await?;
        let account = tx
            .find_user(user_id.as_str())
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        let in_force = match restriction {
            Restriction::Locked => account.locked,
            Restriction::Suspended => account.suspended,
        };
        if in_force == active {
            // Nothing changes, so nothing is reported.
            return Ok(());
        }
        tx.set_restriction(
            user_id.as_str(),
            restriction.stored(),
            active,
            self.clock.now_ms(),
        )
        .await?;
        tx.commit().await?;
        self.report([restriction.event(user_id, active)]).await;
        Ok(())
    }

    /// An administrator applies or lifts a restriction (the admin API); anyone else is refused.
    pub async fn moderate(
        &self,
        administrator: &Requester,
        user_id: &UserId,
        restriction: Restriction,
        active: bool,
    ) -> Result<(), AccountError> {
        self.require_admin(administrator).await?;
        self.set_restriction(user_id, restriction, active).await
    }

    /// Whether a restriction is in force on an existing account, for an administrator.
    pub async fn restriction(
        &self,
        administrator: &Requester,
        user_id: &UserId,
        restriction: Restriction,
    ) -> Result<bool, AccountError> {
        self.require_admin(administrator).await?;
        let user = self
            .store
            .find_user(user_id.as_str())
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        Ok(match restriction {
            Restriction::Locked => user.locked,
            Restriction::Suspended => user.suspended,
        })
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

    /// A user's devices and their last connection, for administrators and for the user
    /// themselves.
    pub async fn whois(
        &self,
        requester: &Requester,
        user_id: &UserId,
    ) -> Result<Vec<Device>, AccountError> {
        if user_id != requester.user_id {
            self.require_admin(requester).await?;
        }
        if self.store.find_user(user_id.as_str()).await?.is_none() {
            return Err(AccountError::NoSuchUser);
        }
        self.devices(user_id).await
    }

    /// A user of this server named by a full user ID: a malformed ID or another server's user
    /// is refused.
    pub fn local_user(&self, user_id: &str) -> Result<OwnedUserId, AccountError> {
        let parsed = UserId::parse(user_id)
            .map_err(|_| AccountError::InvalidParam(format!("{user_id:?} is not a user ID")))?;
        if parsed.server_name() != self.server_name() {
            return Err(AccountError::InvalidParam(
                "The user does not belong to this server".into(),
            ));
        }
        Ok(parsed)
    }

    /// Refuses anyone but a server administrator.
    async fn require_admin(&self, requester: &Requester) -> Result<(), AccountError> {
        if self.is_admin(&requester.user_id).await? {
            Ok(())
        } else {
            Err(AccountError::Forbidden(
                "Only server administrators may do this",
            ))
        }
    }
}
