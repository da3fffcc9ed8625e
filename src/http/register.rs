//! Registration: `POST /register` and `GET /register/available`.

use axum::{extract::State, http::StatusCode};
use ruma::api::client::account::{
    get_username_availability::v3 as availability,
    register::{RegistrationKind, v3 as register},
};
use secrecy::SecretString;

use super::{
    auth::ClientIp,
    ruma::{Ruma, RumaResponse},
};
use crate::{
    accounts::{DeviceRequest, Registration},
    app::AppState,
    error::MatrixError,
    uia::{Action, Operation},
};

/// `POST /register`:
/// - refused with 403 `M_FORBIDDEN` when registration is disabled;
/// - `kind=guest` creates a guest account when guest access is enabled (else 403
///   `M_GUEST_ACCESS_FORBIDDEN`), with no UIA;
/// - the username (`M_INVALID_USERNAME`, `M_EXCLUSIVE`, `M_USER_IN_USE`) and the password
///   policy are checked before User-Interactive Authentication, as the spec requires;
/// - then the configured UIA flows; once one is complete the account, device and token are
///   created in one write (`inhibit_login` skips the device and token).
pub async fn register(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Ruma<register::Request>,
) -> Result<RumaResponse<register::Response>, MatrixError> {
    let Ruma {
        body,
        json,
        method,
        path,
    } = request;
    let is_guest = match body.kind {
        RegistrationKind::Guest => true,
        RegistrationKind::User => false,
        _ => return Err(MatrixError::invalid_param("Unknown registration kind")),
    };
    if is_guest && !app.config.registration.guest_access {
        return Err(MatrixError::new(
            StatusCode::FORBIDDEN,
            "M_GUEST_ACCESS_FORBIDDEN",
            "Guest access is disabled",
        ));
    }
    if !is_guest && !app.config.registration.enabled {
        return Err(MatrixError::forbidden("Registration has been disabled"));
    }
    let device = DeviceRequest {
        device_id: body.device_id,
        display_name: body.initial_device_display_name,
        ip,
    };
    let login = (!body.inhibit_login).then_some(device);

    let (user_id, password) = if is_guest {
        (app.accounts.check_new_user_id(None).await?, None)
    } else {
        if let Some(username) = body.username.as_deref() {
            app.accounts.check_new_user_id(Some(username)).await?;
        }
        let password = SecretString::from(
            body.password
                .ok_or_else(|| MatrixError::missing_param("Missing parameter: password"))?,
        );
        app.accounts.check_new_password(&password)?;
        app.uia
            .authenticate(Operation {
                action: Action::Register,
                method: method.as_str(),
                path: &path,
                body: &json,
                user: None,
                flows: &app.config.registration.flows,
            })
            .await?;
        // Checked again: the name may have been taken while the client completed UIA (the
        // store's unique constraint still decides any race that remains).
        (
            app.accounts
                .check_new_user_id(body.username.as_deref())
                .await?,
            Some(password),
        )
    };

    let session = app
        .accounts
        .register(Registration {
            user_id: user_id.clone(),
            password,
            is_guest,
            login,
        })
        .await?;
    let mut response = register::Response::new(user_id);
    if let Some(session) = session {
        response.access_token = Some(session.access_token);
        response.device_id = Some(session.device_id);
        response.expires_in = session.expires_in_ms.map(std::time::Duration::from_millis);
    }
    Ok(RumaResponse(response))
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
