//! JSON request bodies without ruma: the shared rules for reading a body and telling the
//! kinds of bad input apart, and the [`JsonBody`] extractor the legacy APIs use.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::StatusCode,
};
use serde::{
    Deserialize, Deserializer,
    de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor},
};
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
/// is `M_NOT_JSON`, another JSON type or a repeated key is `M_BAD_JSON`, a string holding
/// U+0000 is `M_INVALID_PARAM`, a missing field is `M_MISSING_PARAM`.
pub fn parse_object(bytes: &[u8], required: &[&str]) -> Result<Value, MatrixError> {
    let not_json = || MatrixError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", "Content not JSON");
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(not_json());
    }
    let json: Value = serde_json::from_slice(bytes).map_err(|_| not_json())?;
    if let Some(key) = repeated_key(bytes) {
        // serde_json would keep the last value silently, while a proxy or WAF in front may act
        // on the first: one body, two meanings. Typed endpoints refuse this too.
        return Err(MatrixError::bad_json(format!("duplicate field `{key}`")));
    }
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

/// The first key some object of the JSON document `bytes` repeats, if any.
fn repeated_key(bytes: &[u8]) -> Option<String> {
    let err = serde_json::from_slice::<UniqueKeys>(bytes).err()?;
    let message = err.to_string();
    let key = message.strip_prefix(REPEATED_KEY)?;
    Some(key.split(" at line").next().unwrap_or(key).to_owned())
}

/// The message [`UniqueKeys`] fails with, followed by the key.
const REPEATED_KEY: &str = "repeated key: ";

/// A JSON document checked for objects that repeat a key; nothing is kept.
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<UniqueKeys, A::Error> {
        while items.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = fields.next_key::<String>()? {
            fields.next_value::<UniqueKeys>()?;
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("{REPEATED_KEY}{key}")));
            }
        }
        Ok(UniqueKeys)
    }
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
