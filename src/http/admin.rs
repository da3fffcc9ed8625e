//! Server administration (spec "Server administration"): `GET/PUT /v1/admin/lock/{userId}`,
//! `GET/PUT /v1/admin/suspend/{userId}` and `GET /admin/whois/{userId}`. Administrators are
//! made with `vestibule user grant-admin`.

use axum::{
    Json, Router,
    extract::{Path, State, rejection::PathRejection},
    routing::get,
};
use ruma::OwnedUserId;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{auth::Authenticated, json::JsonBody};
use crate::{accounts::Restriction, app::AppState, http::error::MatrixError};

/// The admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/_matrix/client/v1/admin/lock/{user_id}",
            get(get_lock).put(put_lock),
        )
        .route(
            "/_matrix/client/v1/admin/suspend/{user_id}",
            get(get_suspend).put(put_suspend),
        )
        .route("/_matrix/client/v3/admin/whois/{user_id}", get(whois))
        .route("/_matrix/client/r0/admin/whois/{user_id}", get(whois))
}

/// The user a path names: a malformed ID or another server's user is 400 `M_INVALID_PARAM`.
fn target(
    app: &AppState,
    path: Result<Path<String>, PathRejection>,
) -> Result<OwnedUserId, MatrixError> {
    let Path(user_id) = path?;
    Ok(app.accounts.local_user(&user_id)?)
}

/// `GET /v1/admin/lock/{userId}`: whether the account is locked.
async fn get_lock(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = target(&app, path)?;
    let locked = app
        .accounts
        .restriction(&requester, &user_id, Restriction::Locked)
        .await?;
    Ok(Json(json!({ "locked": locked })))
}

/// The body of `PUT /v1/admin/lock/{userId}`.
#[derive(Deserialize)]
struct LockBody {
    locked: bool,
}

/// `PUT /v1/admin/lock/{userId}`: locks or unlocks the account.
async fn put_lock(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    path: Result<Path<String>, PathRejection>,
    JsonBody { body, .. }: JsonBody<LockBody>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = target(&app, path)?;
    app.accounts
        .moderate(&requester, &user_id, Restriction::Locked, body.locked)
        .await?;
    Ok(Json(json!({ "locked": body.locked })))
}

/// `GET /v1/admin/suspend/{userId}`: whether the account is suspended.
async fn get_suspend(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = target(&app, path)?;
    let suspended = app
        .accounts
        .restriction(&requester, &user_id, Restriction::Suspended)
        .await?;
    Ok(Json(json!({ "suspended": suspended })))
}

/// The body of `PUT /v1/admin/suspend/{userId}`.
#[derive(Deserialize)]
struct SuspendBody {
    suspended: bool,
}

/// `PUT /v1/admin/suspend/{userId}`: suspends or unsuspends the account.
async fn put_suspend(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    path: Result<Path<String>, PathRejection>,
    JsonBody { body, .. }: JsonBody<SuspendBody>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = target(&app, path)?;
    app.accounts
        .moderate(&requester, &user_id, Restriction::Suspended, body.suspended)
        .await?;
    Ok(Json(json!({ "suspended": body.suspended })))
}

/// `GET /admin/whois/{userId}`: a user's devices and their last connection (IP and time), for
/// administrators and for the user themselves.
async fn whois(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = target(&app, path)?;
    let devices: Map<String, Value> = app
        .accounts
        .whois(&requester, &user_id)
        .await?
        .into_iter()
        .map(|device| {
            let mut connection = Map::new();
            if let Some(ip) = device.last_seen_ip {
                connection.insert("ip".into(), ip.into());
            }
            if let Some(ts) = device.last_seen_ts {
                connection.insert("last_seen".into(), ts.into());
            }
            let session = json!({ "sessions": [{ "connections": [connection] }] });
            (device.device_id.to_string(), session)
        })
        .collect();
    Ok(Json(json!({ "user_id": user_id, "devices": devices })))
}
