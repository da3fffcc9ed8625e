//! JSON request bodies without ruma: the shared rules for reading a body and telling the
//! kinds of bad input apart, and the [`JsonBody`] extractor the legacy APIs use.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::StatusCode,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::http::error::MatrixError;

/// Reads the whole body, refusing one over the configured limit with 413 `M_TOO_LARGE`.
pub async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, MatrixError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => MatrixError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "M_TOO_LARGE",
                "Request body is too large",
            ),
            _ => MatrixError::bad_json("Could not read the request body"),
        })
}

/// Parses a body that must be a JSON object holding `required` fields: unparseable or empty
/// is `M_NOT_JSON`, another JSON type is `M_BAD_JSON`, a string holding U+0000 is
/// `M_INVALID_PARAM`, a missing field is `M_MISSING_PARAM`.
pub fn parse_object(bytes: &[u8], required: &[&str]) -> Result<Value, MatrixError> {
    let not_json = || MatrixError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", "Content not JSON");
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(not_json());
    }
    let json: Value = serde_json::from_slice(bytes).map_err(|_| not_json())?;
    let Some(object) = json.as_object() else {
        return Err(MatrixError::bad_json("Request body must be a JSON object"));
    };
    if super::input::holds_nul(&json) {
        return Err(super::input::nul_refused());
    }
    if let Some(missing) = required.iter().find(|field| !object.contains_key(**field)) {
        return Err(MatrixError::missing_param(format!(
            "Missing parameter: {missing}"
        )));
    }
    Ok(json)
}

/// Turns a serde error into `M_MISSING_PARAM` (naming the field) or `M_BAD_JSON`.
pub fn describe_serde_error(err: &serde_json::Error) -> MatrixError {
    let message = err.to_string();
    match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        Some(field) => MatrixError::missing_param(format!("Missing parameter: {field}")),
        None => MatrixError::bad_json(format!("Invalid request body: {message}")),
    }
}

/// A JSON object body deserialized into `T`, with the raw object kept for UIA.
pub struct JsonBody<T> {
    /// The typed body.
    pub body: T,
    /// The body as sent.
    pub json: Value,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = MatrixError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = parse_object(&read_body(request, state).await?, &[])?;
        let body = T::deserialize(&json).map_err(|err| describe_serde_error(&err))?;
        Ok(Self { body, json })
    }
}
