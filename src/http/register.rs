//! Registration: `POST /register` and `GET /register/available`.

use axum::{Json, extract::State};
use ruma::api::client::account::{
    check_registration_token_validity::v1 as token_validity,
    get_username_availability::v3 as availability,
    register::{RegistrationKind, v3 as register},
};
use serde_json::{Value, json};

use super::{
    auth::ClientIp,
    ruma::{Ruma, RumaResponse},
};
use crate::{
    accounts::{AccountError, Registered, RegistrationInput},
    app::AppState,
    http::error::MatrixError,
};

/// `POST /register`:
/// - refused with 403 `M_FORBIDDEN` when registration is disabled;
/// - `kind=guest` creates a guest account when guest access is enabled (else 403
///   `M_GUEST_ACCESS_FORBIDDEN`), with no UIA, ignoring everything but
///   `initial_device_display_name`;
/// - the username (`M_INVALID_USERNAME`, `M_EXCLUSIVE`, `M_USER_IN_USE`) and the password
///   policy are checked before User-Interactive Authentication, as the spec requires;
/// - then the configured UIA flows; once one is complete the account, device and token are
///   created in one write (`inhibit_login` skips the device and token);
/// - `refresh_token: true` adds a refresh token and an expiring access token.
pub async fn register(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Ruma<register::Request>,
) -> Result<Json<Value>, MatrixError> {
    let Ruma { body, raw } = request;
    let registered = match body.kind {
        RegistrationKind::Guest => {
            app.accounts
                .register_guest(body.initial_device_display_name, ip)
                .await?
        }
        RegistrationKind::User => {
            // ruma reads an absent flag as false; the session remembers only what was sent.
            let given = |flag| raw.json.get(flag).is_some();
            let input = RegistrationInput {
                ip,
                username: body.username,
                password: body.password,
                device_id: body.device_id,
                initial_device_display_name: body.initial_device_display_name,
                inhibit_login: given("inhibit_login").then_some(body.inhibit_login),
                refresh_token: given("refresh_token").then_some(body.refresh_token),
                guest_access_token: body.guest_access_token,
                bind_email: false,
                request: raw.bound(),
            };
            app.accounts.register(input).await?
        }
        _ => return Err(MatrixError::invalid_param("Unknown registration kind")),
    };
    Ok(Json(registered_json(&registered)))
}

/// The body of a successful registration. Built by hand: ruma's response type writes
/// `"device_id": null` under `inhibit_login`, where the spec's `device_id` is a string to be
/// left out.
fn registered_json(registered: &Registered) -> Value {
    let mut response = json!({ "user_id": registered.user_id });
    if let Some(session) = &registered.session {
        response["access_token"] = json!(session.access_token);
        response["device_id"] = json!(session.device_id);
        if let Some(expires_in_ms) = session.expires_in_ms {
            response["expires_in_ms"] = json!(expires_in_ms);
        }
        if let Some(refresh_token) = &session.refresh_token {
            response["refresh_token"] = json!(refresh_token);
        }
    }
    response
}

/// `GET /register/m.login.registration_token/validity` (v1): whether a registration token
/// could be used now; 403 when registration is disabled, as the spec says.
pub async fn registration_token_validity(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Ruma<token_validity::Request>,
) -> Result<RumaResponse<token_validity::Response>, MatrixError> {
    let valid = app
        .accounts
        .registration_token_valid(&request.body.token, ip.as_deref())
        .await
        .map_err(|err| match err {
            AccountError::RegistrationDisabled => {
                MatrixError::forbidden("Registration is not enabled on this homeserver")
            }
            other => other.into(),
        })?;
    Ok(RumaResponse(token_validity::Response::new(valid)))
}

/// `GET /register/available`: whether a username could be registered (400 with the reason
/// when it can't).
pub async fn get_username_availability(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Ruma<availability::Request>,
) -> Result<RumaResponse<availability::Response>, MatrixError> {
    app.accounts
        .username_available(&request.body.username, ip.as_deref())
        .await?;
    Ok(RumaResponse(availability::Response::new(true)))
}
