//! Sessions: `GET/POST /login`, `POST /logout`, `POST /logout/all`.

use axum::extract::State;
use ruma::api::client::{
    session::{
        get_login_token::v1 as get_login_token,
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
    auth::{ClientIp, FullAccount, LockedOrNot},
    ruma::{Ruma, RumaResponse},
};
use crate::{
    accounts::{DeviceRequest, LoginUser},
    app::AppState,
    http::error::MatrixError,
};

/// `GET /login`: the login types this server accepts: passwords, and single-use login tokens
/// (with `get_login_token` when users may generate them).
pub async fn get_login_types(
    State(app): State<AppState>,
    _: Ruma<get_login_types::Request>,
) -> RumaResponse<get_login_types::Response> {
    let password = get_login_types::LoginType::Password(get_login_types::PasswordLoginType::new());
    let mut token = get_login_types::TokenLoginType::new();
    token.get_login_token = app.accounts.issues_login_tokens();
    let token = get_login_types::LoginType::Token(token);
    RumaResponse(get_login_types::Response::new(vec![password, token]))
}

/// `POST /login`:
/// - `m.login.password`: the user is named by an `m.id.user` identifier or the deprecated
///   top-level `user` (a localpart or a full user ID), or by an email address attached to the
///   account (`m.id.thirdparty` with `medium: email`, or the deprecated `medium`/`address`),
///   compared case-insensitively; unknown user and wrong password are the same 403
///   `M_FORBIDDEN`, in the same time;
/// - `m.login.token`: a token from `POST /login/get_token`, good for one login before it
///   expires (else 403 `M_FORBIDDEN`);
/// - a `device_id` the user already has is reused and its previous token invalidated;
/// - a locked account gets 401 `M_USER_LOCKED`; any other login type is 400 `M_UNKNOWN`.
#[allow(deprecated)] // `user` is deprecated by the spec but still sent by clients
pub async fn login(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Ruma<login::Request>,
) -> Result<RumaResponse<login::Response>, MatrixError> {
    let request = request.body;
    let device = DeviceRequest {
        device_id: request.device_id,
        display_name: request.initial_device_display_name,
        ip,
        refresh_token: request.refresh_token,
    };
    let (user_id, session) = match request.login_info {
        LoginInfo::Password(credentials) => {
            let user = match (
                &credentials.identifier,
                &credentials.user,
                &credentials.medium,
            ) {
                (Some(UserIdentifier::Email(email)), _, _) => {
                    LoginUser::Email(email.address.clone())
                }
                (None, _, Some(medium)) if medium == "email" && credentials.address.is_some() => {
                    LoginUser::Email(credentials.address.clone().unwrap_or_default())
                }
                (Some(UserIdentifier::Matrix(identifier)), _, _) => {
                    LoginUser::Name(identifier.user.clone())
                }
                (Some(UserIdentifier::Msisdn(_) | UserIdentifier::PhoneNumber(_)), _, _) => {
                    return Err(MatrixError::unknown(
                        "Phone numbers are not supported: this server validates them only \
                         through an identity server and does not log in with them",
                    ));
                }
                (Some(_), _, _) => {
                    return Err(MatrixError::unknown("Unsupported identifier type"));
                }
                (None, Some(user), _) => LoginUser::Name(user.clone()),
                (None, None, _) => {
                    return Err(MatrixError::missing_param("Missing parameter: identifier"));
                }
            };
            app.accounts
                .login_with_password(user, SecretString::from(credentials.password), device)
                .await?
        }
        LoginInfo::Token(token) => app.accounts.login_with_token(&token.token, device).await?,
        _ => return Err(MatrixError::unknown("Bad login type")),
    };
    let mut response = login::Response::new(user_id, session.access_token, session.device_id);
    response.home_server = Some(app.accounts.server_name().to_owned());
    response.expires_in = session.expires_in_ms.map(Duration::from_millis);
    response.refresh_token = session.refresh_token;
    Ok(RumaResponse(response))
}

/// `POST /refresh`: exchanges a refresh token for a new access token and refresh token; the
/// old refresh token is accepted again only for `tokens.refresh_grace_secs`. An unknown one is
/// 401 `M_UNKNOWN_TOKEN` with `soft_logout: false`, and so is a spent one, which also deletes
/// its device (the session is gone, so the client must not keep its state).
pub async fn refresh(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Ruma<refresh::Request>,
) -> Result<RumaResponse<refresh::Response>, MatrixError> {
    let session = app
        .accounts
        .refresh(&request.body.refresh_token, true, ip.as_deref())
        .await?;
    let mut response = refresh::Response::new(session.access_token);
    response.refresh_token = session.refresh_token;
    response.expires_in_ms = session.expires_in_ms.map(Duration::from_millis);
    Ok(RumaResponse(response))
}

/// `POST /login/get_token` (v1): after password UIA (asked every time, as the spec requires),
/// a single-use login token for another device of the caller; 400 `M_UNKNOWN` when the
/// configuration disables it, as the capability then says.
pub async fn get_login_token(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    request: Ruma<get_login_token::Request>,
) -> Result<RumaResponse<get_login_token::Response>, MatrixError> {
    let (token, lifetime_ms) = app
        .accounts
        .get_login_token(&requester, request.raw.bound())
        .await?;
    let lifetime = Duration::from_millis(u64::try_from(lifetime_ms).unwrap_or(u64::MAX));
    Ok(RumaResponse(get_login_token::Response::new(
        lifetime, token,
    )))
}

/// `POST /logout`: invalidates the access token and deletes its device (allowed on a locked
/// account, as the spec requires).
pub async fn logout(
    State(app): State<AppState>,
    LockedOrNot(requester): LockedOrNot,
    _: Ruma<logout::Request>,
) -> Result<RumaResponse<logout::Response>, MatrixError> {
    app.accounts.logout(&requester).await?;
    Ok(RumaResponse(logout::Response::new()))
}

/// `POST /logout/all`: invalidates every access token of the user and deletes every device
/// (allowed on a locked account).
pub async fn logout_all(
    State(app): State<AppState>,
    LockedOrNot(requester): LockedOrNot,
    _: Ruma<logout_all::Request>,
) -> Result<RumaResponse<logout_all::Response>, MatrixError> {
    app.accounts.logout_all(&requester.user_id).await?;
    Ok(RumaResponse(logout_all::Response::new()))
}
