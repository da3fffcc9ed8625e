//! The caller's third-party identifiers (spec "Adding Account Administrative Contact
//! Information"): adding a proven email address, removing one, and binding addresses at
//! identity servers.

use ruma::UserId;

use super::{AccountError, Accounts, Requester, events::AccountEvent};
use crate::{
    email::EmailPurpose,
    identity::SessionCredentials,
    ratelimit::Limit,
    store::{Conflict, NewThreepid, StoreError},
    threepids::{
        EmailTokenRequest, EmailTokenResponse, ProvenAddress, ThreepidError, UnbindResult,
        canonical_email, check_client_secret, comparable_email,
    },
    uia::{Action, BoundRequest},
};

/// An address this server's verification session proved, to add to the caller's account.
#[derive(Debug, Clone)]
pub struct NewAddress {
    /// The verification session.
    pub sid: String,
    /// The client's secret for it.
    pub client_secret: String,
}

/// A validation session at an identity server, to bind its address to the caller there.
#[derive(Debug, Clone)]
pub struct BindRequest {
    /// The identity server.
    pub id_server: String,
    /// Its session ID.
    pub sid: String,
    /// The client's secret for that session.
    pub client_secret: String,
    /// The client's access token at the identity server (its v2 API), if it has one.
    pub id_access_token: Option<String>,
}

impl BindRequest {
    fn credentials(&self) -> SessionCredentials<'_> {
        SessionCredentials {
            id_server: &self.id_server,
            sid: &self.sid,
            client_secret: &self.client_secret,
            id_access_token: self.id_access_token.as_deref(),
        }
    }
}

/// The seeds' `POST /account/3pid`: an address an identity server validated, attached to the
/// account and, with `bind`, bound there too.
#[derive(Debug, Clone)]
pub struct LegacyAddress {
    /// The identity server's session.
    pub session: BindRequest,
    /// Whether to bind the address at the identity server as well.
    pub bind: bool,
}

impl Accounts {
    /// Starts an email verification, limited per client IP and per recipient so that nobody
    /// can use this server to flood inboxes (a repeated `send_attempt` sends nothing).
    /// `requester` is the account that asked, when the request carried an access token; the
    /// confirmation page names it.
    pub async fn request_email_token(
        &self,
        request: EmailTokenRequest,
        ip: Option<&str>,
        requester: Option<&UserId>,
    ) -> Result<EmailTokenResponse, AccountError> {
        self.limiter.take(Limit::EmailPerIp, ip).await?;
        // Only an address that could be mailed has a bucket (a refused one is answered with
        // its error below): keys stay short, and junk creates none.
        let recipient = canonical_email(&request.email).ok();
        self.limiter
            .take(Limit::EmailPerAddress, recipient.as_deref())
            .await?;
        Ok(self
            .threepids
            .request_email_token(request, requester)
            .await?)
    }

    /// After password UIA, attaches the address a verification session of this server proved
    /// (`M_SESSION_NOT_VALIDATED` before the link was followed, `M_THREEPID_IN_USE` if another
    /// account has it); the session is spent.
    pub async fn add_threepid(
        &self,
        requester: &Requester,
        address: NewAddress,
        request: BoundRequest<'_>,
    ) -> Result<(), AccountError> {
        check_client_secret(&address.client_secret)?;
        self.confirm_password(requester, Action::AddThreepid, request)
            .await?;
        let proven = self
            .threepids
            .proven_by_session(&address.sid, &address.client_secret, EmailPurpose::Add)
            .await?;
        if proven
            .requester
            .as_deref()
            .is_some_and(|asked_by| asked_by != requester.user_id.as_str())
        {
            // The confirmation page told the owner of the address another account's name.
            return Err(ThreepidError::AuthFailed.into());
        }
        let had = self
            .has_address(&requester.user_id, &proven.address)
            .await?;
        // The address is attached and its verification session spent together.
        let threepid = NewThreepid {
            medium: proven.medium.clone(),
            address: proven.address.clone(),
            validated_at_ms: proven.validated_at_ms,
        };
        let mut tx = self.store.begin().await?;
        tx.add_threepid(requester.user_id.as_str(), threepid, self.clock.now_ms())
            .await
            .map_err(|err| match err {
                StoreError::Conflict(Conflict::ThreepidInUse) => AccountError::ThreepidInUse,
                other => other.into(),
            })?;
        tx.delete_validation(&address.sid).await?;
        tx.commit().await?;
        if !had {
            self.report([AccountEvent::EmailAdded {
                user_id: requester.user_id.clone(),
                address: proven.address,
            }])
            .await;
        }
        Ok(())
    }

    /// Attaches the address an identity server validated (403 `M_THREEPID_AUTH_FAILED` when it
    /// does not vouch for the session) and, when asked, binds it there too.
    pub async fn add_via_identity_server(
        &self,
        requester: &Requester,
        legacy: LegacyAddress,
    ) -> Result<(), AccountError> {
        let session = &legacy.session;
        check_client_secret(&session.client_secret)?;
        let validated = self
            .threepids
            .proven_by_identity_server(session.credentials())
            .await?;
        if validated.medium != "email" {
            return Err(AccountError::MediumNotSupported);
        }
        let proven = ProvenAddress {
            medium: validated.medium,
            address: comparable_email(&validated.address),
            validated_at_ms: validated.validated_at_ms,
            sid: None,
            requester: None,
        };
        let had = self
            .has_address(&requester.user_id, &proven.address)
            .await?;
        self.threepids.attach(&requester.user_id, &proven).await?;
        if !had {
            self.report([AccountEvent::EmailAdded {
                user_id: requester.user_id.clone(),
                address: proven.address,
            }])
            .await;
        }
        if legacy.bind {
            self.threepids
                .bind(&requester.user_id, session.credentials())
                .await?;
        }
        Ok(())
    }

    /// Whether the user already has this (canonical) email address.
    async fn has_address(
        &self,
        user_id: &ruma::UserId,
        address: &str,
    ) -> Result<bool, AccountError> {
        Ok(self
            .threepids
            .list(user_id)
            .await?
            .iter()
            .any(|threepid| threepid.medium == "email" && threepid.address == address))
    }

    /// Detaches an address from the caller's account (one it does not have is a success too)
    /// and unbinds it from the identity servers this server bound it at, or from `id_server`.
    /// Refused while suspended, as the spec recommends.
    pub async fn delete_threepid(
        &self,
        requester: &Requester,
        medium: &str,
        address: &str,
        id_server: Option<&str>,
    ) -> Result<UnbindResult, AccountError> {
        if requester.suspended {
            return Err(AccountError::Suspended);
        }
        let (removed, unbound) = self
            .threepids
            .detach(&requester.user_id, medium, address, id_server)
            .await?;
        if removed {
            self.report([AccountEvent::EmailRemoved {
                user_id: requester.user_id.clone(),
                address: comparable_email(address),
            }])
            .await;
        }
        Ok(unbound)
    }

    /// Removes the caller's bindings of an address at identity servers (at `id_server`, which
    /// must be trusted, or wherever this server bound it), keeping it on the account.
    pub async fn unbind_threepid(
        &self,
        requester: &Requester,
        medium: &str,
        address: &str,
        id_server: Option<&str>,
    ) -> Result<UnbindResult, AccountError> {
        if let Some(id_server) = id_server
            && !self.threepids.identity().is_trusted(id_server)
        {
            return Err(ThreepidError::NotTrusted(format!(
                "identity server {id_server:?} is not trusted by this homeserver"
            ))
            .into());
        }
        Ok(self
            .threepids
            .unbind(&requester.user_id, medium, address, id_server)
            .await?)
    }

    /// Binds the address an identity server validated to the caller there; the address is not
    /// added to the account. An untrusted server is `M_SERVER_NOT_TRUSTED`.
    pub async fn bind_threepid(
        &self,
        requester: &Requester,
        bind: BindRequest,
    ) -> Result<(), AccountError> {
        check_client_secret(&bind.client_secret)?;
        Ok(self
            .threepids
            .bind(&requester.user_id, bind.credentials())
            .await?)
    }
}
