//! Account information: `GET /account/whoami`.

use axum::Json;
use ruma::api::client::account::whoami::v3 as whoami;
use serde_json::{Value, json};

use super::{auth::Authenticated, ruma::Ruma};

/// `GET /account/whoami`: the user, device and guest status behind the access token.
/// `is_guest` is always sent (ruma's type omits it when false; clients read it either way).
pub async fn whoami(
    Authenticated(requester): Authenticated,
    _: Ruma<whoami::Request>,
) -> Json<Value> {
    Json(json!({
        "user_id": requester.user_id,
        "device_id": requester.device_id,
        "is_guest": requester.is_guest,
    }))
}
