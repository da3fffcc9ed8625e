//! Sessions: `GET/POST /login`, `POST /logout`, `POST /logout/all`.

use axum::extract::State;
use ruma::api::client::{
    session::{
        get_login_types::v3 as get_login_types,
        login::v3::{self as login, LoginInfo},
        logout::v3 as logout,
        logout_all::v3 as logout_all,
        refresh_token::v3 as refresh,
    },
    uiaa::UserIdentifier,
};
use secrecy::SecretString;
use std::time::Duration;

use super::{
    auth::{Authenticated, ClientIp},
    ruma::{Ruma, RumaResponse},
};
use crate::{accounts::DeviceRequest, app::AppState, error::MatrixError, ratelimit::Limit};

/// `GET /login`: the login types this server accepts.
pub async fn get_login_types(
    _: Ruma<get_login_types::Request>,
) -> RumaResponse<get_login_types::Response> {
    let password = get_login_types::LoginType::Password(get_login_types::PasswordLoginType::new());
    RumaResponse(get_login_types::Response::new(vec![password]))
}

/// `POST /login` with `m.login.password`:
/// - the user is named by an `m.id.user` identifier or the deprecated top-level `user`, as a
///   localpart or a full user ID;
/// - unknown user and wrong password are the same 403 `M_FORBIDDEN`, in the same time;
/// - a `device_id` the user already has is reused and its previous token invalidated;
/// - any other login type is 400 `M_UNKNOWN`.
#[allow(deprecated)] // `user` is deprecated by the spec but still sent by clients
pub async fn login(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Ruma<login::Request>,
) -> Result<RumaResponse<login::Response>, MatrixError> {
    let request = request.body;
    let LoginInfo::Password(credentials) = request.login_info else {
        return Err(MatrixError::unknown("Bad login type"));
    };
    let user = match (&credentials.identifier, &credentials.user) {
        (Some(UserIdentifier::Matrix(identifier)), _) => identifier.user.clone(),
        (Some(_), _) => return Err(MatrixError::unknown("Unsupported identifier type")),
        (None, Some(user)) => user.clone(),
        (None, None) => return Err(MatrixError::missing_param("Missing parameter: identifier")),
    };
    let device = DeviceRequest {
        device_id: request.device_id,
        display_name: request.initial_device_display_name,
        ip,
        refresh_token: request.refresh_token,
    };
    let (user_id, session) = app
        .accounts
        .login_with_password(&user, SecretString::from(credentials.password), device)
        .await?;
    let mut response = login::Response::new(user_id, session.access_token, session.device_id);
    response.home_server = Some(app.accounts.server_name().to_owned());
    response.expires_in = session.expires_in_ms.map(Duration::from_millis);
    response.refresh_token = session.refresh_token;
    Ok(RumaResponse(response))
}

/// `POST /refresh`: exchanges a refresh token for a new access token and refresh token; the
/// old refresh token is accepted again only until the new tokens are first used, and an
/// unknown or spent one is 401 `M_UNKNOWN_TOKEN` with `soft_logout: false`.
pub async fn refresh(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Ruma<refresh::Request>,
) -> Result<RumaResponse<refresh::Response>, MatrixError> {
    app.limiter.take(Limit::RefreshPerIp, ip.as_deref()).await?;
    let session = app
        .accounts
        .refresh(&request.body.refresh_token, true)
        .await?;
    let mut response = refresh::Response::new(session.access_token);
    response.refresh_token = session.refresh_token;
    response.expires_in_ms = session.expires_in_ms.map(Duration::from_millis);
    Ok(RumaResponse(response))
}

/// `POST /logout`: invalidates the access token and deletes its device.
pub async fn logout(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    _: Ruma<logout::Request>,
) -> Result<RumaResponse<logout::Response>, MatrixError> {
    app.accounts.logout(&requester).await?;
    Ok(RumaResponse(logout::Response::new()))
}

/// `POST /logout/all`: invalidates every access token of the user and deletes every device.
pub async fn logout_all(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    _: Ruma<logout_all::Request>,
) -> Result<RumaResponse<logout_all::Response>, MatrixError> {
    app.accounts.logout_all(&requester.user_id).await?;
    Ok(RumaResponse(logout_all::Response::new()))
}
