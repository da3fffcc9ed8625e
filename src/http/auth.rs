//! Request authentication: the access token (header or query) resolved to a [`Requester`],
//! and the client's IP address.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts, State},
    http::{StatusCode, header, request::Parts},
};

use crate::{
    accounts::{AccountError, Requester},
    app::AppState,
    http::error::MatrixError,
};

/// The access token of a request: `Authorization: Bearer …` or the `access_token` query
/// parameter (deprecated by the spec but still accepted, as the seeds use it).
fn access_token(parts: &Parts) -> Result<Option<String>, MatrixError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(bearer_credentials)
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

/// The credentials of a `Bearer` authorization: the scheme is case-insensitive (RFC 9110
/// §11.1), so `bearer` and `BEARER` are accepted too.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

/// The authenticated caller, required: a request without a valid token is refused, and so is
/// a locked account (401 `M_USER_LOCKED`).
pub struct Authenticated(pub Requester);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = MatrixError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let LockedOrNot(requester) = LockedOrNot::from_request_parts(parts, state).await?;
        if requester.locked {
            return Err(AccountError::Locked.into());
        }
        Ok(Self(requester))
    }
}

/// The authenticated caller even if the account is locked: only logout accepts this, as the
/// spec's account locking requires.
pub struct LockedOrNot(pub Requester);

impl FromRequestParts<AppState> for LockedOrNot {
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
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
        Ok(Self(state.accounts.authenticate(&token, ip).await?))
    }
}

/// An authenticated caller with a full account: guests get 403 `M_GUEST_ACCESS_FORBIDDEN`
/// (endpoints the spec's guest access module does not open to guests).
pub struct FullAccount(pub Requester);

impl FromRequestParts<AppState> for FullAccount {
    type Rejection = MatrixError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(requester) = Authenticated::from_request_parts(parts, state).await?;
        if requester.is_guest {
            return Err(MatrixError::guest_access_forbidden());
        }
        Ok(Self(requester))
    }
}

/// The authenticated caller when the request carries a token, else `None`: for endpoints the
/// spec leaves open to anonymous clients.
pub struct MaybeAuthenticated(pub Option<Requester>);

impl FromRequestParts<AppState> for MaybeAuthenticated {
    type Rejection = MatrixError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if access_token(parts)?.is_none() {
            return Ok(Self(None));
        }
        let Authenticated(requester) = Authenticated::from_request_parts(parts, state).await?;
        Ok(Self(Some(requester)))
    }
}

/// The client's IP address: the connection's peer, or, when that peer is a trusted proxy, the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy. IPv4-mapped IPv6
/// addresses are taken as the IPv4 address they hold, everywhere.
/// [`in_client_network`] works it out once per request; this reads it back.
#[derive(Clone)]
pub struct ClientIp(pub Option<String>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(match parts.extensions.get::<Self>() {
            Some(known) => known.clone(),
            None => Self(resolve_client_ip(parts, state)),
        })
    }
}

/// The client's IP address of a request (see [`ClientIp`]).
fn resolve_client_ip(parts: &Parts, state: &AppState) -> Option<String> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_canonical())?;
    let trusted = &state.config.http.trusted_proxies;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    // Split as bytes, so that one undecodable hop ends the walk there instead of hiding
    // every hop of its header line.
    let hops: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.as_bytes().split(|byte| *byte == b','))
        .map(|hop| std::str::from_utf8(hop).unwrap_or(""))
        .collect();
    // From the nearest hop outwards, for as long as each address is a trusted proxy. A hop
    // that does not parse ends the walk: whatever is left of it may be the client's own
    // writing, so the last address a trusted proxy vouched for is used.
    let mut client = peer;
    for hop in hops.iter().rev() {
        if !is_trusted(&client) {
            break;
        }
        match forwarded_address(hop) {
            Some(ip) => client = ip,
            None => break,
        }
    }
    Some(client.to_string())
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`) or in brackets (`[2001:db8::1]`), IPv4-mapped ones as IPv4.
fn forwarded_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|address| address.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })?;
    Some(ip.to_canonical())
}

/// Works out the request's [`ClientIp`] once, and runs the request as the work of that
/// client's network (see
/// [`with_client_network`](crate::accounts::hash_queue::with_client_network)), so that its
/// password checks wait in that network's line of the hashing queue.
pub async fn in_client_network(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (mut parts, body) = request.into_parts();
    let ip = resolve_client_ip(&parts, &state);
    let network: Arc<str> = ip
        .as_deref()
        .map_or_else(|| "-".to_owned(), |ip| state.limiter.network(ip))
        .into();
    parts.extensions.insert(ClientIp(ip));
    let request = axum::extract::Request::from_parts(parts, body);
    crate::accounts::hash_queue::with_client_network(network, next.run(request)).await
}
