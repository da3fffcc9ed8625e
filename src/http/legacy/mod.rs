//! The seeds' APIs on their original prefixes, as thin adapters over the same domain calls as
//! the current API: v1 login and registration (`/_matrix/client/api/v1`), and v2_alpha
//! registration and token refresh (`/_matrix/client/v2_alpha`, and also on seed 001's own
//! `basePath`, `/_matrix/client/api/v2_alpha`, where its example is written).

use axum::{
    Json, Router,
    extract::State,
    http::{Method, Uri},
    routing::{get, post},
};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

mod v1_register;

use super::{
    auth::{ClientIp, MaybeAuthenticated},
    json::JsonBody,
    threepid,
};
use crate::{
    accounts::{
        AccountError, DeviceRequest, IssuedSession, LoginUser, PasswordChange, RegistrationInput,
    },
    app::AppState,
    http::error::MatrixError,
    uia::BoundRequest,
};

/// The login type of the v1 APIs.
const PASSWORD: &str = "m.login.password";
/// Prefix of the v1 API.
const V1: &str = "/_matrix/client/api/v1";
/// Prefix of the v2_alpha API.
const V2_ALPHA: &str = "/_matrix/client/v2_alpha";
/// Seed 001's `basePath` for the same v2_alpha registration API (its prose says `V2_ALPHA`).
const V2_ALPHA_API: &str = "/_matrix/client/api/v2_alpha";

/// The legacy routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{V1}/login"), get(v1_login_flows).post(v1_login))
        .route(
            &format!("{V1}/register"),
            get(v1_register::flows).post(v1_register::submit),
        )
        .route(&format!("{V2_ALPHA}/register"), post(v2_register))
        .route(&format!("{V2_ALPHA}/tokenrefresh"), post(v2_token_refresh))
        .route(&format!("{V2_ALPHA_API}/register"), post(v2_register))
        .route(
            &format!("{V2_ALPHA_API}/tokenrefresh"),
            post(v2_token_refresh),
        )
        .route(
            &format!("{V2_ALPHA}/account/password"),
            post(v2_change_password),
        )
        .route(
            &format!("{V2_ALPHA}/account/3pid"),
            get(threepid::list_threepids).post(threepid::add_via_identity_server),
        )
}

/// A v1 submission: a `type` plus that type's keys.
#[derive(Deserialize)]
struct V1Submission {
    #[serde(rename = "type")]
    login_type: Option<String>,
    user: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl V1Submission {
    /// The `m.login.password` keys, or the seed's errors: another type is "Bad login type",
    /// missing keys are "Missing JSON keys". Seed 002's login takes no `type` at all (its
    /// example is `{"username": …, "password": …}`), so none means `m.login.password`.
    fn password_keys(self) -> Result<(Option<String>, String), MatrixError> {
        match self.login_type.as_deref() {
            None | Some(PASSWORD) => {}
            Some(_) => return Err(MatrixError::unknown("Bad login type")),
        }
        let password = self
            .password
            .ok_or_else(|| MatrixError::missing_param("Missing JSON keys"))?;
        Ok((self.user.or(self.username), password))
    }
}

/// The v1 success body: user, token and server name.
fn v1_session(app: &AppState, user_id: &ruma::UserId, session: IssuedSession) -> Json<Value> {
    Json(json!({
        "user_id": user_id,
        "access_token": session.access_token,
        "home_server": app.accounts.server_name(),
        "device_id": session.device_id,
    }))
}

/// `GET /api/v1/login`: the login flows.
async fn v1_login_flows() -> Json<Value> {
    Json(json!({ "flows": [{ "type": PASSWORD }] }))
}

/// `POST /api/v1/login`: `m.login.password` with `user` (or `username`) as a localpart or user
/// ID; bad credentials are 403 `M_FORBIDDEN`. The token works on every prefix.
async fn v1_login(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody { body, .. }: JsonBody<V1Submission>,
) -> Result<Json<Value>, MatrixError> {
    let (user, password) = body.password_keys()?;
    let user = user.ok_or_else(|| MatrixError::missing_param("Missing JSON keys"))?;
    let device = DeviceRequest {
        ip,
        ..DeviceRequest::default()
    };
    let (user_id, session) = app
        .accounts
        .login_with_password(LoginUser::Name(user), SecretString::from(password), device)
        .await?;
    Ok(v1_session(&app, &user_id, session))
}

/// The v2_alpha registration body.
#[derive(Deserialize)]
struct V2Registration {
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    bind_email: bool,
}

/// `POST /v2_alpha/register`: `username`, `password` (required) through the configured UIA
/// flows; returns `user_id`, `access_token`, `home_server` and a `refresh_token`.
async fn v2_register(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    uri: Uri,
    JsonBody { body, json }: JsonBody<V2Registration>,
) -> Result<Json<Value>, MatrixError> {
    let input = RegistrationInput {
        ip,
        username: body.username,
        password: body.password,
        device_id: None,
        initial_device_display_name: None,
        inhibit_login: Some(false),
        refresh_token: Some(true),
        guest_access_token: None,
        bind_email: body.bind_email,
        request: BoundRequest {
            method: Method::POST.as_str(),
            path: uri.path(),
            body: &json,
        },
    };
    let registered = app.accounts.register(input).await?;
    let user_id = registered.user_id;
    let session = registered
        .session
        .ok_or_else(|| MatrixError::internal("no session"))?;
    let refresh_token = session.refresh_token.clone();
    let Json(mut response) = v1_session(&app, &user_id, session);
    response["refresh_token"] = json!(refresh_token);
    Ok(Json(response))
}

/// The v2_alpha token refresh body.
#[derive(Deserialize)]
struct V2TokenRefresh {
    refresh_token: String,
}

/// `POST /v2_alpha/tokenrefresh`: a new access token and refresh token; the presented refresh
/// token stops working at once, and an unknown or spent one is 403 `M_FORBIDDEN` (a spent one
/// also deletes its device, as on `/v3/refresh`).
async fn v2_token_refresh(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody { body, .. }: JsonBody<V2TokenRefresh>,
) -> Result<Json<Value>, MatrixError> {
    let session = match app
        .accounts
        .refresh(&body.refresh_token, false, ip.as_deref())
        .await
    {
        Err(AccountError::UnknownRefreshToken) => {
            // The v2_alpha API predates soft logout: an unusable refresh token was a plain 403.
            return Err(MatrixError::forbidden("Did not recognize refresh token"));
        }
        result => result?,
    };
    Ok(Json(
        json!({ "access_token": session.access_token, "refresh_token": session.refresh_token }),
    ))
}

/// The v2_alpha password change body.
#[derive(Deserialize)]
struct V2PasswordChange {
    new_password: String,
}

/// `POST /v2_alpha/account/password`: `new_password` through UIA, returning `{}`. With an
/// access token the flow is `m.login.password` and every other session of the user ends; without
/// one it is `m.login.email.identity` (a forgotten password), and an address no account has is
/// 404 `M_NOT_FOUND`, as seed 001 says.
async fn v2_change_password(
    State(app): State<AppState>,
    MaybeAuthenticated(requester): MaybeAuthenticated,
    uri: Uri,
    JsonBody { body, json }: JsonBody<V2PasswordChange>,
) -> Result<Json<Value>, MatrixError> {
    let bound = BoundRequest {
        method: Method::POST.as_str(),
        path: uri.path(),
        body: &json,
    };
    match requester {
        None => {
            app.accounts
                .reset_password_by_email(body.new_password, true, bound)
                .await?;
        }
        Some(requester) => {
            let change = PasswordChange {
                requester: &requester,
                new_password: body.new_password,
                logout_devices: true,
                request: bound,
            };
            app.accounts.change_password(change).await?;
        }
    }
    Ok(Json(json!({})))
}
