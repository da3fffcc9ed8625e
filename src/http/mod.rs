//! The HTTP surface: every route on every prefix, and the layers around them.

pub mod account;
pub mod admin;
pub mod auth;
pub mod devices;
pub mod discovery;
pub mod error;
mod input;
pub mod json;
pub mod legacy;
pub mod metrics;
mod pages;
pub mod profile;
pub mod register;
pub mod ruma;
pub mod session;
pub mod threepid;

use std::time::Duration;

use ::ruma::api::client::{
    account::{
        change_password, check_registration_token_validity, deactivate, get_username_availability,
        register as register_endpoint, whoami,
    },
    device::{delete_device, delete_devices, get_device, get_devices, update_device},
    discovery::get_capabilities,
    session::{get_login_token, get_login_types, login, logout, logout_all, refresh_token},
};
use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{Method, StatusCode, header},
    middleware,
    response::IntoResponse,
    routing::get,
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{Any, CorsLayer},
    trace::TraceLayer,
};

use self::ruma::route;
use crate::{app::AppState, http::error::MatrixError};

/// The complete router for `state`.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.http.max_body_bytes;
    let mut router = Router::new()
        .route("/_matrix/client/versions", get(discovery::versions))
        .route("/.well-known/matrix/client", get(discovery::well_known))
        .merge(legacy::routes())
        .merge(profile::routes())
        .merge(admin::routes())
        .merge(threepid::routes());
    router = route::<register_endpoint::v3::Request, _, _, _>(router, register::register);
    router = route::<get_username_availability::v3::Request, _, _, _>(
        router,
        register::get_username_availability,
    );
    router = route::<check_registration_token_validity::v1::Request, _, _, _>(
        router,
        register::registration_token_validity,
    );
    router = route::<get_login_types::v3::Request, _, _, _>(router, session::get_login_types);
    router = route::<get_login_token::v1::Request, _, _, _>(router, session::get_login_token);
    router = route::<login::v3::Request, _, _, _>(router, session::login);
    router = route::<logout::v3::Request, _, _, _>(router, session::logout);
    router = route::<logout_all::v3::Request, _, _, _>(router, session::logout_all);
    router = route::<refresh_token::v3::Request, _, _, _>(router, session::refresh);
    router = route::<whoami::v3::Request, _, _, _>(router, account::whoami);
    router = route::<change_password::v3::Request, _, _, _>(router, account::change_password);
    router = route::<deactivate::v3::Request, _, _, _>(router, account::deactivate);
    router = route::<get_devices::v3::Request, _, _, _>(router, devices::get_devices);
    router = route::<get_device::v3::Request, _, _, _>(router, devices::get_device);
    router = route::<update_device::v3::Request, _, _, _>(router, devices::update_device);
    router = route::<delete_device::v3::Request, _, _, _>(router, devices::delete_device);
    router = route::<delete_devices::v3::Request, _, _, _>(router, devices::delete_devices);
    router = route::<get_capabilities::v3::Request, _, _, _>(router, discovery::get_capabilities);
    router
        .fallback(|| async { MatrixError::unrecognized(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async {
            MatrixError::unrecognized(StatusCode::METHOD_NOT_ALLOWED)
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::in_client_network,
        ))
        .layer(middleware::from_fn(input::refuse_nul_in_uri))
        .layer(middleware::from_fn(metrics::record))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(cors())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(CatchPanicLayer::custom(|_| {
            MatrixError::internal("handler panicked").into_response()
        }))
        .with_state(state)
}

/// CORS as the spec's "Web Browser Clients" section asks: any origin, the methods and
/// headers clients use.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::HeaderName::from_static("x-requested-with"),
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
        ])
        .max_age(Duration::from_secs(24 * 3600))
}

/// The tracing span of a request: method and path only, never the query string, which may
/// carry an `access_token`.
fn request_span(request: &Request) -> tracing::Span {
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
}
