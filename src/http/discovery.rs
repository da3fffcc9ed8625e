//! Server discovery: `GET /_matrix/client/versions`, `GET /.well-known/matrix/client` and
//! `GET /capabilities`.

use axum::{Json, extract::State};
use ruma::api::client::discovery::get_capabilities::v3 as capabilities;
use serde_json::{Value, json};

use super::ruma::Ruma;
use crate::{app::AppState, http::auth::Authenticated, http::error::MatrixError};

/// Spec versions whose account and authentication parts Vestibule serves (README lists what
/// of each is still missing).
pub const SUPPORTED_VERSIONS: &[&str] = &["r0.5.0", "r0.6.0", "r0.6.1", "v1.1"];

/// `GET /_matrix/client/versions`: the spec versions this server speaks.
pub async fn versions() -> Json<Value> {
    Json(json!({ "versions": SUPPORTED_VERSIONS, "unstable_features": {} }))
}

/// `GET /.well-known/matrix/client`: where clients find this server.
pub async fn well_known(State(app): State<AppState>) -> Json<Value> {
    Json(json!({ "m.homeserver": { "base_url": app.config.public_baseurl } }))
}

/// `GET /capabilities`: what the authenticated user may do here (see
/// [`Accounts::capabilities`](crate::accounts::Accounts::capabilities)). Profile fields are
/// given both as `m.profile_fields` and as the pre-1.16 `m.set_displayname` /
/// `m.set_avatar_url`; `m.account_moderation` is left out for everyone but server
/// administrators, as the spec asks. Room versions are the business of the homeserver behind
/// Vestibule, so `m.room_versions` is left out (it is optional). Written out here rather than
/// through ruma's type, which leaves out capabilities equal to its defaults.
pub async fn get_capabilities(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    _: Ruma<capabilities::Request>,
) -> Result<Json<Value>, MatrixError> {
    let allowed = app.accounts.capabilities(&requester).await?;
    let defined = [
        ("displayname", allowed.set_displayname),
        ("avatar_url", allowed.set_avatar_url),
    ];
    let mut profile_fields = json!({ "enabled": allowed.profile_fields_enabled() });
    if allowed.custom_profile_fields {
        let disallowed: Vec<&str> = defined
            .iter()
            .filter(|(_, allowed)| !allowed)
            .map(|(name, _)| *name)
            .collect();
        profile_fields["disallowed"] = json!(disallowed);
    } else {
        let allowed: Vec<&str> = defined
            .iter()
            .filter(|(_, allowed)| *allowed)
            .map(|(name, _)| *name)
            .collect();
        profile_fields["allowed"] = json!(allowed);
    }
    let mut capabilities = json!({
        "m.change_password": { "enabled": allowed.change_password },
        "m.set_displayname": { "enabled": allowed.set_displayname },
        "m.set_avatar_url": { "enabled": allowed.set_avatar_url },
        "m.profile_fields": profile_fields,
        "m.3pid_changes": { "enabled": allowed.threepid_changes },
        "m.get_login_token": { "enabled": allowed.get_login_token },
    });
    if allowed.account_moderation {
        capabilities["m.account_moderation"] = json!({ "lock": true, "suspend": true });
    }
    Ok(Json(json!({ "capabilities": capabilities })))
}
