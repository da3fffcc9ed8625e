//! The caller's account: `GET /account/whoami`, `POST /account/password`,
//! `POST /account/deactivate`.

use axum::{Json, extract::State};
use ruma::api::client::account::{
    change_password::v3 as change_password, deactivate::v3 as deactivate, whoami::v3 as whoami,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::{
    auth::{Authenticated, FullAccount},
    ruma::Ruma,
};
use crate::{
    accounts::Requester,
    app::AppState,
    error::MatrixError,
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

/// `POST /account/password`: the caller proves their current password through UIA, then the
/// new one replaces it; `logout_devices` (default true) ends every other session. (Resetting a
/// forgotten password by email, without an access token, comes with email support.)
pub async fn change_password(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    request: Ruma<change_password::Request>,
) -> Result<Json<Value>, MatrixError> {
    let Ruma { body, raw } = request;
    let change = PasswordChange {
        requester: &requester,
        new_password: body.new_password,
        logout_devices: body.logout_devices,
        bound: raw.bound(),
    };
    change_password_after_uia(&app, change).await?;
    Ok(Json(json!({})))
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
/// out again, and the profile stops being served (`erase: true` deletes it). No third-party
/// identifiers are bound yet, so `id_server_unbind_result` is `no-support`, as the spec says
/// for a server that could not unbind anything.
pub async fn deactivate(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    request: Ruma<deactivate::Request>,
) -> Result<Json<Value>, MatrixError> {
    confirm_password(&app, &requester, Action::Deactivate, request.raw.bound()).await?;
    app.accounts
        .deactivate(&requester.user_id, request.body.erase)
        .await?;
    Ok(Json(json!({ "id_server_unbind_result": "no-support" })))
}
