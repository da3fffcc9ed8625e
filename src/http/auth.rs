//! Request authentication: the access token (header or query) resolved to a [`Requester`],
//! and the client's IP address.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{StatusCode, header, request::Parts},
};

use crate::{accounts::Requester, app::AppState, error::MatrixError};

/// The access token of a request: `Authorization: Bearer …` or the `access_token` query
/// parameter (deprecated by the spec but still accepted, as the seeds use it).
fn access_token(parts: &Parts) -> Result<Option<String>, MatrixError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                MatrixError::new(
                    StatusCode::UNAUTHORIZED,
                    "M_MISSING_TOKEN",
                    "Malformed Authorization header",
                )
            })?;
        return Ok(Some(token.to_owned()));
    }
    let query = parts.uri.query().unwrap_or_default();
    Ok(url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "access_token")
        .map(|(_, token)| token.into_owned()))
}

/// The authenticated caller, required: a request without a valid token is refused.
pub struct Authenticated(pub Requester);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = MatrixError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = access_token(parts)?.ok_or_else(|| {
            MatrixError::new(
                StatusCode::UNAUTHORIZED,
                "M_MISSING_TOKEN",
                "Missing access token",
            )
        })?;
        Ok(Self(state.accounts.authenticate(&token).await?))
    }
}

/// The client's IP address as seen on the connection.
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip().to_string());
        Ok(Self(ip))
    }
}
