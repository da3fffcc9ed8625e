//! Server discovery: `GET /_matrix/client/versions`, `GET /.well-known/matrix/client` and
//! `GET /capabilities`.

use axum::{Json, extract::State};
use ruma::api::client::discovery::get_capabilities::v3::{self as capabilities, Capabilities};
use serde_json::{Value, json};

use super::ruma::{Ruma, RumaResponse};
use crate::{app::AppState, error::MatrixError, http::auth::Authenticated};

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

/// `GET /capabilities`: what the authenticated user may do here, from the configuration.
/// Profile and third-party-identifier changes are not served, so they are reported disabled
/// (with the pre-1.16 capabilities too, which the advertised versions use).
#[allow(deprecated)]
pub async fn get_capabilities(
    State(app): State<AppState>,
    Authenticated(_): Authenticated,
    _: Ruma<capabilities::Request>,
) -> Result<RumaResponse<capabilities::Response>, MatrixError> {
    let mut capabilities = Capabilities::new();
    capabilities.change_password.enabled = app.config.password.change_enabled;
    capabilities.set_displayname.enabled = false;
    capabilities.set_avatar_url.enabled = false;
    capabilities.thirdparty_id_changes.enabled = false;
    capabilities.get_login_token.enabled = false;
    Ok(RumaResponse(capabilities::Response::new(capabilities)))
}
