//! Registration: `POST /register` and `GET /register/available`.

use axum::{Json, extract::State, http::StatusCode};
use ruma::{
    OwnedUserId,
    api::client::account::{
        get_username_availability::v3 as availability,
        register::{RegistrationKind, v3 as register},
    },
};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::{
    auth::ClientIp,
    ruma::{Ruma, RumaResponse},
};
use crate::{
    accounts::{DeviceRequest, IssuedSession, Registration},
    app::AppState,
    error::MatrixError,
    ratelimit::Limit,
    uia::{Action, BoundRequest, Operation},
};

/// `POST /register`:
/// - refused with 403 `M_FORBIDDEN` when registration is disabled;
/// - `kind=guest` creates a guest account when guest access is enabled (else 403
///   `M_GUEST_ACCESS_FORBIDDEN`), with no UIA;
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
    let bound = raw.bound();
    let is_guest = match body.kind {
        RegistrationKind::Guest => true,
        RegistrationKind::User => false,
        _ => return Err(MatrixError::invalid_param("Unknown registration kind")),
    };
    let device = DeviceRequest {
        device_id: body.device_id,
        display_name: body.initial_device_display_name,
        ip,
        refresh_token: body.refresh_token,
    };
    let (user_id, session) = if is_guest {
        app.limiter
            .take(Limit::RegisterPerIp, device.ip.as_deref())
            .await?;
        register_guest(&app, (!body.inhibit_login).then_some(device)).await?
    } else {
        let request = RegistrationRequest {
            ip: device.ip.clone(),
            username: body.username,
            password: body.password,
            login: (!body.inhibit_login).then_some(device),
            bound,
        };
        register_user(&app, request).await?
    };
    // Built by hand: ruma's response type writes `"device_id": null` under `inhibit_login`,
    // where the spec's `device_id` is a string to be left out.
    let mut response = json!({ "user_id": user_id });
    if let Some(session) = session {
        response["access_token"] = json!(session.access_token);
        response["device_id"] = json!(session.device_id);
        if let Some(expires_in_ms) = session.expires_in_ms {
            response["expires_in_ms"] = json!(expires_in_ms);
        }
        if let Some(refresh_token) = session.refresh_token {
            response["refresh_token"] = json!(refresh_token);
        }
    }
    Ok(Json(response))
}

/// A user registration as any API version submits it.
pub struct RegistrationRequest<'a> {
    /// The requested username (localpart or user ID); generated when absent.
    pub username: Option<String>,
    /// The password; required.
    pub password: Option<String>,
    /// The first device, unless login is inhibited.
    pub login: Option<DeviceRequest>,
    /// The client's IP address, for the registration rate limit.
    pub ip: Option<String>,
    /// The request, for UIA.
    pub bound: BoundRequest<'a>,
}

/// Registers a full account: checks name and password, runs the configured UIA flows, then
/// creates the account (and its first session, if any) in one write.
pub async fn register_user(
    app: &AppState,
    request: RegistrationRequest<'_>,
) -> Result<(OwnedUserId, Option<IssuedSession>), MatrixError> {
    if !app.config.registration.enabled {
        return Err(MatrixError::forbidden("Registration has been disabled"));
    }
    app.limiter
        .take(Limit::RegisterPerIp, request.ip.as_deref())
        .await?;
    let requested = match request.username.as_deref() {
        Some(username) => Some(app.accounts.check_new_user_id(Some(username)).await?),
        None => None,
    };
    let password = SecretString::from(
        request
            .password
            .ok_or_else(|| MatrixError::missing_param("Missing parameter: password"))?,
    );
    app.accounts
        .check_new_password(&password, requested.as_deref())?;
    app.uia
        .authenticate(Operation {
            action: Action::Register,
            request: request.bound,
            user: None,
            flows: &app.config.registration.flows,
        })
        .await?;
    // Checked again: the name may have been taken while the client completed UIA (the
    // store's unique constraint still decides any race that remains).
    let user_id = app
        .accounts
        .check_new_user_id(request.username.as_deref())
        .await?;
    let registration = Registration {
        user_id: user_id.clone(),
        password: Some(password),
        is_guest: false,
        login: request.login,
    };
    Ok((user_id, app.accounts.register(registration).await?))
}

/// Registers a guest account (no password, no UIA) when guest access is enabled.
async fn register_guest(
    app: &AppState,
    login: Option<DeviceRequest>,
) -> Result<(OwnedUserId, Option<IssuedSession>), MatrixError> {
    if !app.config.registration.guest_access {
        return Err(MatrixError::new(
            StatusCode::FORBIDDEN,
            "M_GUEST_ACCESS_FORBIDDEN",
            "Guest access is disabled",
        ));
    }
    let user_id = app.accounts.check_new_user_id(None).await?;
    let registration = Registration {
        user_id: user_id.clone(),
        password: None,
        is_guest: true,
        login,
    };
    Ok((user_id, app.accounts.register(registration).await?))
}

/// `GET /register/available`: whether a username could be registered (400 with the reason
/// when it can't).
pub async fn get_username_availability(
    State(app): State<AppState>,
    request: Ruma<availability::Request>,
) -> Result<RumaResponse<availability::Response>, MatrixError> {
    if !app.config.registration.enabled {
        return Err(MatrixError::forbidden("Registration has been disabled"));
    }
    app.accounts
        .check_new_user_id(Some(&request.body.username))
        .await?;
    Ok(RumaResponse(availability::Response::new(true)))
}
