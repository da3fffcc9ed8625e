//! The caller's account: `GET /account/whoami`, `POST /account/password`,
//! `POST /account/deactivate`.

use axum::{Json, extract::State};
use ruma::api::client::account::{
    change_password::v3 as change_password, deactivate::v3 as deactivate, whoami::v3 as whoami,
};
use serde_json::{Value, json};

use super::{
    auth::{Authenticated, FullAccount, MaybeAuthenticated},
    ruma::Ruma,
};
use crate::{accounts::PasswordChange, app::AppState, http::error::MatrixError};

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
    match requester {
        None => {
            app.accounts
                .reset_password_by_email(body.new_password, body.logout_devices, raw.bound())
                .await?;
        }
        Some(requester) => {
            let change = PasswordChange {
                requester: &requester,
                new_password: body.new_password,
                logout_devices: body.logout_devices,
                request: raw.bound(),
            };
            app.accounts.change_password(change).await?;
        }
    }
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
/// out again, and the profile stops being served (`erase: true` deletes it). Addresses this
/// server bound at identity servers are unbound first: `id_server_unbind_result` is `success`
/// when every unbind succeeded (or there was none), `no-support` when one failed.
pub async fn deactivate(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    request: Ruma<deactivate::Request>,
) -> Result<Json<Value>, MatrixError> {
    let unbound = app
        .accounts
        .deactivate(&requester, request.body.erase, request.raw.bound())
        .await?;
    Ok(Json(json!({ "id_server_unbind_result": unbound.as_str() })))
}
