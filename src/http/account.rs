//! The caller's account: `GET /account/whoami`, `POST /account/password`,
//! `POST /account/deactivate`.

use axum::{Json, extract::State, http::StatusCode};
use ruma::api::client::account::{
    change_password::v3 as change_password, deactivate::v3 as deactivate, whoami::v3 as whoami,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::{
    auth::{Authenticated, FullAccount, MaybeAuthenticated},
    ruma::Ruma,
};
use crate::{
    accounts::Requester,
    app::AppState,
    http::error::MatrixError,
    uia::{Action, BoundRequest, Operation},
};

/// User-Interactive Authentication in which a logged-in user proves, with their password,
/// that they are who the access token says, before `action`.
pub async fn confirm_password(
    app: &AppState,
    requester: &Requester,
    action: Action,
    bound: BoundRequest<'_>,
) -> Result<(), MatrixError> {
    app.uia
        .authenticate(Operation {
            action,
            request: bound,
            user: Some(&requester.user_id),
            flows: &[vec!["m.login.password".to_owned()]],
        })
        .await?;
    Ok(())
}

/// A password change as any API version submits it.
pub struct PasswordChange<'a> {
    /// The authenticated caller.
    pub requester: &'a Requester,
    /// The new password.
    pub new_password: String,
    /// Whether every other session of the user ends.
    pub logout_devices: bool,
    /// The request, for UIA.
    pub bound: BoundRequest<'a>,
}

/// Changes the caller's password after `m.login.password` UIA: refused with 403 when the
/// configuration disables password changes, `M_WEAK_PASSWORD` before UIA for a password the
/// policy rejects.
pub async fn change_password_after_uia(
    app: &AppState,
    change: PasswordChange<'_>,
) -> Result<(), MatrixError> {
    if !app.config.password.change_enabled {
        return Err(MatrixError::forbidden(
            "Password changes are disabled on this server",
        ));
    }
    let password = SecretString::from(change.new_password);
    app.accounts
        .check_new_password(&password, Some(&change.requester.user_id))?;
    confirm_password(app, change.requester, Action::ChangePassword, change.bound).await?;
    app.accounts
        .change_password(change.requester, password, change.logout_devices)
        .await?;
    Ok(())
}

/// `POST /account/password`:
/// - with an access token, the caller proves their current password through UIA, then the new
///   one replaces it; `logout_devices` (default true) ends every other session;
/// - without one, a forgotten password is reset: UIA `m.login.email.identity` with a session
///   from `/account/password/email/requestToken` names the account, and every session of it
///   ends unless `logout_devices` is false. No account with that address is 404 `M_NOT_FOUND`.
pub async fn change_password(
    State(app): State<AppState>,
    MaybeAuthenticated(requester): MaybeAuthenticated,
    request: Ruma<change_password::Request>,
) -> Result<Json<Value>, MatrixError> {
    let Ruma { body, raw } = request;
    let Some(requester) = requester else {
        reset_password_by_email(&app, body.new_password, body.logout_devices, raw.bound()).await?;
        return Ok(Json(json!({})));
    };
    if requester.is_guest {
        return Err(MatrixError::guest_access_forbidden());
    }
    let change = PasswordChange {
        requester: &requester,
        new_password: body.new_password,
        logout_devices: body.logout_devices,
        bound: raw.bound(),
    };
    change_password_after_uia(&app, change).await?;
    Ok(Json(json!({})))
}

/// Resets the password of the account whose email the UIA session proves.
pub async fn reset_password_by_email(
    app: &AppState,
    new_password: String,
    logout_devices: bool,
    bound: BoundRequest<'_>,
) -> Result<(), MatrixError> {
    if !app.threepids.sends_email() && !app.threepids.identity().has_trusted_servers() {
        // No way to prove an address here: the request simply lacks the access token it needs.
        return Err(MatrixError::new(
            StatusCode::UNAUTHORIZED,
            "M_MISSING_TOKEN",
            "Missing access token (this server neither sends email nor trusts an identity \
             server, so a forgotten password cannot be reset by email)",
        ));
    }
    let completed = app
        .uia
        .authenticate(Operation {
            action: Action::ChangePassword,
            request: bound,
            user: None,
            flows: &[vec!["m.login.email.identity".to_owned()]],
        })
        .await?;
    let email = &completed.data["m.login.email.identity"];
    let address = email["address"].as_str().unwrap_or_default();
    let user_id = app.threepids.email_owner(address).await?.ok_or_else(|| {
        MatrixError::new(
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
            "No account has this email address",
        )
    })?;
    app.accounts
        .reset_password(&user_id, SecretString::from(new_password), logout_devices)
        .await?;
    if let Some(sid) = email["sid"].as_str() {
        app.threepids.forget_session(sid).await?;
    }
    Ok(())
}

/// `GET /account/whoami`: the user, device and guest status behind the access token.
/// `is_guest` is always sent (ruma's type omits it when false; clients read it either way).
pub async fn whoami(
    Authenticated(requester): Authenticated,
    _: Ruma<whoami::Request>,
) -> Json<Value> {
    Json(json!({
        "user_id": requester.user_id,
        "device_id": requester.device_id,
        "is_guest": requester.is_guest,
    }))
}

/// `POST /account/deactivate`: after `m.login.password` UIA the account is deactivated for
/// good: every session ends, logins answer `M_USER_DEACTIVATED`, the user ID is never handed
/// out again, and the profile stops being served (`erase: true` deletes it). Addresses this
/// server bound at identity servers are unbound first: `id_server_unbind_result` is `success`
/// when every unbind succeeded (or there was none), `no-support` when one failed.
pub async fn deactivate(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    request: Ruma<deactivate::Request>,
) -> Result<Json<Value>, MatrixError> {
    confirm_password(&app, &requester, Action::Deactivate, request.raw.bound()).await?;
    let unbound = app.threepids.unbind_all(&requester.user_id).await?;
    app.accounts
        .deactivate(&requester.user_id, request.body.erase)
        .await?;
    Ok(Json(json!({ "id_server_unbind_result": unbound.as_str() })))
}
