//! Profiles: `GET /profile/{userId}` and `GET/PUT/DELETE /profile/{userId}/{keyName}` (the
//! spec's generic field API, which covers `displayname` and `avatar_url`), on r0 and v3.

use axum::{
    Json, Router,
    extract::{Path, State, rejection::PathRejection},
    routing::get,
};
use ruma::{OwnedUserId, UserId};
use serde_json::{Map, Value, json};

use super::{
    auth::{Authenticated, MaybeAuthenticated},
    json::JsonBody,
};
use crate::{
    accounts::{AccountError, ProfileField},
    app::AppState,
    http::error::MatrixError,
};

/// The profile routes on every prefix that serves them.
pub fn routes() -> Router<AppState> {
    ["r0", "v3"]
        .into_iter()
        .fold(Router::new(), |router, version| {
            router
                .route(
                    &format!("/_matrix/client/{version}/profile/{{user_id}}"),
                    get(get_profile),
                )
                .route(
                    &format!("/_matrix/client/{version}/profile/{{user_id}}/{{field}}"),
                    get(get_profile_field)
                        .put(set_profile_field)
                        .delete(delete_profile_field),
                )
        })
}

/// The user ID of a profile to read; a malformed one names no user (404 `M_NOT_FOUND`, the
/// status the spec gives for a user without a profile).
fn profile_owner(user_id: &str) -> Result<OwnedUserId, MatrixError> {
    UserId::parse(user_id).map_err(|_| AccountError::NoSuchUser.into())
}

/// The user ID of a profile to change; a malformed one is not the caller's (403 `M_FORBIDDEN`).
fn own_profile(user_id: &str) -> Result<OwnedUserId, MatrixError> {
    UserId::parse(user_id)
        .map_err(|_| AccountError::Forbidden("You may only change your own profile").into())
}

/// `GET /profile/{userId}`: every field of an active user's profile (anyone may look, with or
/// without an access token); 404 `M_NOT_FOUND` for an unknown or deactivated user.
async fn get_profile(
    State(app): State<AppState>,
    _: MaybeAuthenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Map<String, Value>>, MatrixError> {
    let Path(user_id) = path?;
    Ok(Json(app.accounts.profile(&profile_owner(&user_id)?).await?))
}

/// `GET /profile/{userId}/{keyName}`: one field, as `{keyName: value}`; 404 when the user or
/// the field does not exist.
async fn get_profile_field(
    State(app): State<AppState>,
    _: MaybeAuthenticated,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, MatrixError> {
    let Path((user_id, field)) = path?;
    let field = ProfileField::parse(&field)?;
    let value = app
        .accounts
        .profile_field(&profile_owner(&user_id)?, field)
        .await?;
    Ok(Json(json!({ field.as_str(): value })))
}

/// `PUT /profile/{userId}/{keyName}`: sets a field of the caller's own profile. The body is an
/// object holding the field (`M_MISSING_PARAM` without it, except that a missing or null
/// `displayname` or `avatar_url` clears it, as before v1.16); `displayname` must be a string and
/// `avatar_url` an MXC URI (`M_INVALID_PARAM`); the whole profile stays under 64 KiB
/// (`M_PROFILE_TOO_LARGE`). Others' profiles and fields the configuration locks are 403
/// `M_FORBIDDEN`; a suspended account gets 403 `M_USER_SUSPENDED`.
async fn set_profile_field(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    path: Result<Path<(String, String)>, PathRejection>,
    JsonBody { body, .. }: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, MatrixError> {
    let Path((user_id, field)) = path?;
    let field = ProfileField::parse(&field)?;
    let value = match body.get(field.as_str()) {
        // Before v1.16 (the versions advertised), a missing or null display name or avatar
        // clears it, and clients still send that.
        None | Some(Value::Null) if field.is_predefined() => None,
        Some(value) => Some(value),
        None => {
            return Err(MatrixError::missing_param(format!(
                "Missing parameter: {}",
                field.as_str()
            )));
        }
    };
    app.accounts
        .set_profile_field(&requester, &own_profile(&user_id)?, field, value)
        .await?;
    Ok(Json(json!({})))
}

/// `DELETE /profile/{userId}/{keyName}`: removes a field of the caller's own profile, under
/// the same rules as setting it.
async fn delete_profile_field(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, MatrixError> {
    let Path((user_id, field)) = path?;
    let field = ProfileField::parse(&field)?;
    app.accounts
        .set_profile_field(&requester, &own_profile(&user_id)?, field, None)
        .await?;
    Ok(Json(json!({})))
}
