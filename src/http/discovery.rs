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

/// `GET /capabilities`: what the authenticated user may do here, from the configuration and
/// the account: password changes and login tokens (not for guests), profile fields (both as
/// `m.profile_fields` and as the pre-1.16 `m.set_displayname` / `m.set_avatar_url`; guests may
/// only set a display name, suspended users nothing), and `m.3pid_changes` when addresses can
/// be proven (this server sends verification emails, or trusts an identity server); `m.account_moderation` (lock and suspend) for server
/// administrators only, and left out for everyone else, as the spec asks. Room versions are the business of the homeserver
/// behind Vestibule, so `m.room_versions` is left out (it is optional). Written out here rather
/// than through ruma's type, which leaves out capabilities equal to its defaults.
pub async fn get_capabilities(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    _: Ruma<capabilities::Request>,
) -> Result<Json<Value>, MatrixError> {
    let full_account = !requester.is_guest;
    let profile = &app.config.profile;
    let may_edit = !requester.suspended;
    let displayname = may_edit && profile.displayname_changes;
    let avatar_url = may_edit && full_account && profile.avatar_url_changes;
    let custom_fields = may_edit && full_account && profile.custom_fields;
    let can_prove_addresses =
        app.threepids.sends_email() || app.threepids.identity().has_trusted_servers();
    let defined = [("displayname", displayname), ("avatar_url", avatar_url)];
    let mut profile_fields = json!({ "enabled": displayname || avatar_url || custom_fields });
    if custom_fields {
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
        "m.change_password": { "enabled": full_account && app.config.password.change_enabled },
        "m.set_displayname": { "enabled": displayname },
        "m.set_avatar_url": { "enabled": avatar_url },
        "m.profile_fields": profile_fields,
        "m.3pid_changes": { "enabled": full_account && can_prove_addresses },
        "m.get_login_token": {
            "enabled": full_account && app.config.tokens.login_token_enabled,
        },
    });
    if app.accounts.is_admin(&requester.user_id).await? {
        capabilities["m.account_moderation"] = json!({ "lock": true, "suspend": true });
    }
    Ok(Json(json!({ "capabilities": capabilities })))
}
