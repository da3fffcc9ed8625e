//! Registration: `POST /register` and `GET /register/available`.

use axum::{Json, extract::State, http::StatusCode};
use ruma::{
    OwnedUserId, UserId,
    api::client::account::{
        check_registration_token_validity::v1 as token_validity,
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
    accounts::{DeviceRequest, IssuedSession, Registration, Requester},
    app::AppState,
    http::error::MatrixError,
    identity::SessionCredentials,
    ratelimit::Limit,
    store::{AcceptedTerms, NewThreepid, RegistrationExtras},
    uia::{Action, BoundRequest, Completed, Operation},
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
            guest_access_token: body.guest_access_token,
            bind_email: false,
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
    /// The access token of a guest account to upgrade into this full account.
    pub guest_access_token: Option<String>,
    /// Bind the email proven through an identity server to the new account there (the
    /// v2_alpha `bind_email`, and always for the v1 email stage).
    pub bind_email: bool,
    /// The request, for UIA.
    pub bound: BoundRequest<'a>,
}

/// Registers a full account: checks name and password, runs the configured UIA flows, then
/// creates the account (and its first session, if any) in one write, with the terms accepted
/// and the registration token used. With a `guest_access_token` the guest's own account
/// becomes the full account instead (the spec's guest upgrade: `username` must be the guest's
/// localpart).
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
    let guest = match &request.guest_access_token {
        Some(token) => Some(guest_to_upgrade(app, token, request.username.as_deref()).await?),
        None => None,
    };
    let requested = match (&guest, request.username.as_deref()) {
        (Some(guest), _) => Some(guest.user_id.clone()),
        (None, Some(username)) => Some(app.accounts.check_new_user_id(Some(username)).await?),
        (None, None) => None,
    };
    let password = SecretString::from(
        request
            .password
            .ok_or_else(|| MatrixError::missing_param("Missing parameter: password"))?,
    );
    app.accounts
        .check_new_password(&password, requested.as_deref())?;
    let completed = app
        .uia
        .authenticate(Operation {
            action: Action::Register,
            request: request.bound,
            user: None,
            flows: &app.config.registration.flows,
        })
        .await?;
    let extras = registration_extras(&completed);
    let holds_token = extras.registration_token.is_some();
    let result = match guest {
        Some(guest) => app
            .accounts
            .upgrade_guest(&guest, password, extras, request.login)
            .await
            .map(|session| (guest.user_id, session))
            .map_err(MatrixError::from),
        None => {
            create_account(
                app,
                request.username.as_deref(),
                password,
                extras,
                request.login,
            )
            .await
        }
    };
    if result.is_err()
        && holds_token
        && let Err(err) = app
            .registration_tokens
            .release(&completed.session_hash)
            .await
    {
        tracing::warn!(error = %err, "could not release a registration token reservation");
    }
    if let Ok((user_id, _)) = &result {
        settle_email(app, user_id, &completed, request.bind_email).await;
    }
    result
}

/// After a registration with a proven email: the homeserver's verification session is spent,
/// and an address proven through an identity server is bound there when asked. The account
/// exists by now, so a failure here is logged rather than failing the registration.
pub async fn settle_email(app: &AppState, user_id: &UserId, completed: &Completed, bind: bool) {
    let Some(email) = completed.data.get("m.login.email.identity") else {
        return;
    };
    if let Some(sid) = email.get("sid").and_then(Value::as_str)
        && let Err(err) = app.threepids.forget_session(sid).await
    {
        tracing::warn!(error = %err, "could not delete a used verification session");
    }
    let Some(identity_server) = email.get("identity_server").filter(|_| bind) else {
        return;
    };
    let field = |name| {
        identity_server
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let creds = SessionCredentials {
        id_server: field("id_server"),
        sid: field("sid"),
        client_secret: field("client_secret"),
        id_access_token: None,
    };
    if let Err(err) = app.threepids.bind(user_id, creds).await {
        tracing::warn!(error = %err, %user_id, "could not bind the registration email");
    }
}

/// Creates the account once UIA is complete. The name is checked again: it may have been
/// taken while the client completed UIA (the store's unique constraint decides any race that
/// remains).
pub async fn create_account(
    app: &AppState,
    username: Option<&str>,
    password: SecretString,
    extras: RegistrationExtras,
    login: Option<DeviceRequest>,
) -> Result<(OwnedUserId, Option<IssuedSession>), MatrixError> {
    let user_id = app.accounts.check_new_user_id(username).await?;
    let registration = Registration {
        user_id: user_id.clone(),
        password: Some(password),
        is_guest: false,
        login,
        extras,
    };
    Ok((user_id, app.accounts.register(registration).await?))
}

/// The guest behind `token`, if `username` names that guest's own account.
async fn guest_to_upgrade(
    app: &AppState,
    token: &str,
    username: Option<&str>,
) -> Result<Requester, MatrixError> {
    // An unknown token is 403, not 401: on `/register` a 401 is the UIA challenge.
    let guest = app
        .accounts
        .authenticate(token, None)
        .await
        .map_err(|_| MatrixError::forbidden("Unknown guest_access_token"))?;
    if !guest.is_guest {
        return Err(MatrixError::forbidden(
            "guest_access_token does not belong to a guest account",
        ));
    }
    let username =
        username.ok_or_else(|| MatrixError::missing_param("Missing parameter: username"))?;
    let named = username
        .strip_prefix('@')
        .and_then(|user_id| user_id.split_once(':'))
        .map_or(username, |(localpart, _)| localpart);
    if !named.eq_ignore_ascii_case(guest.user_id.localpart()) {
        return Err(MatrixError::forbidden(
            "A guest account can only be upgraded under its own username",
        ));
    }
    Ok(guest)
}

/// What the completed UIA stages recorded for the new account: the policy versions shown by
/// `m.login.terms` and the token reserved by `m.login.registration_token`.
pub fn registration_extras(completed: &Completed) -> RegistrationExtras {
    let accepted_terms = completed
        .data
        .get("m.login.terms")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            Some(AcceptedTerms {
                policy: entry.get("policy")?.as_str()?.to_owned(),
                version: entry.get("version")?.as_str()?.to_owned(),
            })
        })
        .collect();
    let registration_token = completed
        .data
        .get("m.login.registration_token")
        .and_then(|data| data.get("token"))
        .and_then(Value::as_str)
        .map(|token| (token.to_owned(), completed.session_hash.clone()));
    let threepids = completed
        .data
        .get("m.login.email.identity")
        .and_then(|email| {
            Some(NewThreepid {
                medium: email.get("medium")?.as_str()?.to_owned(),
                address: email.get("address")?.as_str()?.to_owned(),
                validated_at_ms: email.get("validated_at_ms")?.as_i64()?,
            })
        })
        .into_iter()
        .collect();
    RegistrationExtras {
        displayname: None,
        accepted_terms,
        registration_token,
        threepids,
    }
}

/// `GET /register/m.login.registration_token/validity` (v1): whether a registration token
/// could be used now; 403 when registration is disabled, as the spec says.
pub async fn registration_token_validity(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Ruma<token_validity::Request>,
) -> Result<RumaResponse<token_validity::Response>, MatrixError> {
    if !app.config.registration.enabled {
        return Err(MatrixError::forbidden(
            "Registration is not enabled on this homeserver",
        ));
    }
    app.limiter
        .peek(Limit::RegisterPerIp, ip.as_deref())
        .await?;
    let valid = app
        .registration_tokens
        .is_usable(&request.body.token)
        .await?;
    Ok(RumaResponse(token_validity::Response::new(valid)))
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
        extras: RegistrationExtras::default(),
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
