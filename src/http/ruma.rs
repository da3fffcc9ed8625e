//! The only glue between axum and ruma's endpoint types: the [`Ruma`] request extractor, the
//! [`RumaResponse`] wrapper, and [`route`], which mounts a handler on every path ruma's
//! metadata lists for the endpoint (r0 and v3).
//!
//! The extractor parses the JSON body itself before handing it to ruma, so that each kind of
//! bad input gets its own Matrix error: unparseable → `M_NOT_JSON`, not an object or wrong
//! types → `M_BAD_JSON`, a required field absent → `M_MISSING_PARAM`, too big → `M_TOO_LARGE`.

use axum::{
    Router,
    extract::{FromRequest, FromRequestParts, RawPathParams, Request},
    handler::Handler,
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
    routing::{MethodFilter, on},
};
use bytes::BytesMut;
use ruma::api::{
    IncomingRequest, IncomingRequestExt, Metadata, OutgoingResponse, OutgoingResponseExt,
    error::{DeserializationError, FromHttpRequestError},
    path_builder::VersionHistory,
};
use serde_json::Value;

use super::json::{describe_serde_error, parse_object, read_body};
use crate::{http::error::MatrixError, uia::BoundRequest};

/// What body an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// None: whatever is sent is ignored.
    None,
    /// A JSON object; an empty body is `M_NOT_JSON`.
    Object,
    /// A JSON object that clients may leave out (read as `{}`): `DELETE /devices/{deviceId}`,
    /// whose first request, before UIA, clients send without one.
    OptionalObject,
}

/// What an endpoint expects in its body, beyond what ruma's types say.
pub trait Endpoint: IncomingRequest {
    /// The body the endpoint takes.
    const BODY: Body;
    /// Top-level fields that must be present; checked before ruma deserializes, so the error
    /// names the field (and ruma never sees a body it can't handle gracefully).
    const REQUIRED_FIELDS: &'static [&'static str] = &[];
}

/// A parsed ruma request plus what UIA and logging need from the raw request.
pub struct Ruma<T> {
    /// The typed request.
    pub body: T,
    /// The request as sent.
    pub raw: RawRequest,
}

/// What of the raw request outlives parsing: what a UIA session is bound to.
pub struct RawRequest {
    /// The JSON body as sent (`Value::Null` when the endpoint has no body).
    pub json: Value,
    /// The request method.
    pub method: Method,
    /// The request path.
    pub path: String,
}

impl RawRequest {
    /// The request as a UIA session is bound to it.
    pub fn bound(&self) -> BoundRequest<'_> {
        BoundRequest {
            method: self.method.as_str(),
            path: &self.path,
            body: &self.json,
        }
    }
}

impl<T, S> FromRequest<S> for Ruma<T>
where
    T: Endpoint,
    S: Send + Sync,
{
    type Rejection = MatrixError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let path_params = RawPathParams::from_request_parts(&mut parts, state)
            .await
            .map_err(|rejection| MatrixError::invalid_param(rejection.body_text()))?;
        let path_args: Vec<String> = path_params
            .iter()
            .map(|(_, value)| value.to_owned())
            .collect();
        let mut bytes = read_body(Request::from_parts(parts.clone(), body), state).await?;
        if T::BODY == Body::OptionalObject && bytes.iter().all(u8::is_ascii_whitespace) {
            bytes = axum::body::Bytes::from_static(b"{}");
        }
        let json = match T::BODY {
            Body::Object | Body::OptionalObject => parse_object(&bytes, T::REQUIRED_FIELDS)?,
            Body::None => Value::Null,
        };
        if let Some(for_ruma) = with_identifier(&json) {
            bytes = axum::body::Bytes::from(for_ruma.to_string());
        }
        let http_request = axum::http::Request::from_parts(parts.clone(), bytes.as_ref());
        let path_args: Vec<&str> = path_args.iter().map(String::as_str).collect();
        let body =
            T::try_from_http_request(http_request, &path_args).map_err(describe_ruma_error)?;
        let raw = RawRequest {
            json,
            method: parts.method,
            path: parts.uri.path().to_owned(),
        };
        Ok(Self { body, raw })
    }
}

/// The body with its `m.login.password` UIA stage in the shape ruma's types require, when the
/// client used a deprecated one: the top-level `user`, or `medium` and `address`, become an
/// `identifier`. The UIA stage reads the body as sent; only ruma gets this copy.
fn with_identifier(json: &Value) -> Option<Value> {
    let auth = json.get("auth")?.as_object()?;
    if auth.get("type")?.as_str()? != "m.login.password" || auth.contains_key("identifier") {
        return None;
    }
    let identifier = match (auth.get("user"), auth.get("medium"), auth.get("address")) {
        (Some(user), _, _) => serde_json::json!({ "type": "m.id.user", "user": user }),
        (None, Some(medium), Some(address)) => {
            serde_json::json!({ "type": "m.id.thirdparty", "medium": medium, "address": address })
        }
        _ => return None,
    };
    let mut json = json.clone();
    json["auth"]["identifier"] = identifier;
    Some(json)
}

fn describe_ruma_error(err: FromHttpRequestError) -> MatrixError {
    match err {
        FromHttpRequestError::Deserialization(DeserializationError::Json(err)) => {
            describe_serde_error(&err)
        }
        FromHttpRequestError::Deserialization(err) => {
            let message = err.to_string();
            match message
                .split_once("missing field `")
                .and_then(|(_, rest)| rest.split('`').next())
            {
                Some(field) => MatrixError::missing_param(format!("Missing parameter: {field}")),
                None => MatrixError::invalid_param(format!("Invalid parameter: {message}")),
            }
        }
        FromHttpRequestError::MethodMismatch { .. } => {
            MatrixError::unrecognized(StatusCode::METHOD_NOT_ALLOWED)
        }
        other => MatrixError::bad_json(other.to_string()),
    }
}

/// A ruma response type turned into an HTTP response.
pub struct RumaResponse<T>(pub T);

impl<T: OutgoingResponse> IntoResponse for RumaResponse<T> {
    fn into_response(self) -> Response {
        match self.0.try_into_http_response::<BytesMut>() {
            Ok(response) => response
                .map(|body| axum::body::Body::from(body.freeze()))
                .into_response(),
            Err(err) => {
                MatrixError::internal(format!("serializing response: {err}")).into_response()
            }
        }
    }
}

/// Mounts `handler` on every stable path of endpoint `T`, for `T`'s HTTP method.
pub fn route<T, H, X, S>(router: Router<S>, handler: H) -> Router<S>
where
    T: Metadata<PathBuilder = VersionHistory>,
    H: Handler<X, S>,
    X: 'static,
    S: Clone + Send + Sync + 'static,
{
    let filter = MethodFilter::try_from(T::METHOD).expect("ruma endpoints use standard methods");
    T::PATH_BUILDER
        .stable_paths()
        .fold(router, |router, (_, path)| {
            router.route(path, on(filter, handler.clone()))
        })
}

macro_rules! endpoints {
    ($($endpoint:path => $body:ident, required: [$($field:literal),*];)*) => {
        $(impl Endpoint for $endpoint {
            const BODY: Body = Body::$body;
            const REQUIRED_FIELDS: &'static [&'static str] = &[$($field),*];
        })*
    };
}

endpoints! {
    ruma::api::client::account::register::v3::Request => Object, required: [];
    ruma::api::client::account::get_username_availability::v3::Request => None, required: [];
    ruma::api::client::session::login::v3::Request => Object, required: ["type"];
    ruma::api::client::session::get_login_types::v3::Request => None, required: [];
    ruma::api::client::session::logout::v3::Request => None, required: [];
    ruma::api::client::session::logout_all::v3::Request => None, required: [];
    ruma::api::client::session::refresh_token::v3::Request => Object, required: ["refresh_token"];
    ruma::api::client::account::whoami::v3::Request => None, required: [];
    ruma::api::client::account::change_password::v3::Request => Object, required: ["new_password"];
    ruma::api::client::account::deactivate::v3::Request => Object, required: [];
    ruma::api::client::device::get_devices::v3::Request => None, required: [];
    ruma::api::client::device::get_device::v3::Request => None, required: [];
    ruma::api::client::device::update_device::v3::Request => Object, required: [];
    ruma::api::client::device::delete_device::v3::Request => OptionalObject, required: [];
    ruma::api::client::device::delete_devices::v3::Request => Object, required: ["devices"];
    ruma::api::client::discovery::get_capabilities::v3::Request => None, required: [];
    ruma::api::client::session::get_login_token::v1::Request => Object, required: [];
    ruma::api::client::account::check_registration_token_validity::v1::Request => None, required: [];
}
