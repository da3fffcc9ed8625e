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
/// is `M_NOT_JSON`, a repeated key or another JSON type is `M_BAD_JSON`, a string holding
/// U+0000 is `M_INVALID_PARAM`, a missing field is `M_MISSING_PARAM`.
pub fn parse_object(bytes: &[u8], required: &[&str]) -> Result<Value, MatrixError> {
    let not_json = || MatrixError::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", "Content not JSON");
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(not_json());
    }
    let StrictJson(json) = serde_json::from_slice(bytes).map_err(|err| {
        let message = err.to_string();
        if let Some(key) = message.strip_prefix(REPEATED_KEY) {
            // serde_json would keep the last value silently, while a proxy or WAF in front may
            // act on the first: one body, two meanings. Typed endpoints refuse this too.
            let key = key.split(" at line").next().unwrap_or(key);
            MatrixError::bad_json(format!("duplicate field `{key}`"))
        } else if message.starts_with(HOLDS_NUL) {
            super::input::nul_refused()
        } else {
            not_json()
        }
    })?;
    let Some(object) = json.as_object() else {
        return Err(MatrixError::bad_json("Request body must be a JSON object"));
    };
    if let Some(missing) = required.iter().find(|field| !object.contains_key(**field)) {
        return Err(MatrixError::missing_param(format!(
            "Missing parameter: {missing}"
        )));
    }
    Ok(json)
}

/// The error [`StrictJson`] fails with on a repeated key, followed by the key.
const REPEATED_KEY: &str = "repeated key: ";
/// The error [`StrictJson`] fails with on a string holding U+0000.
const HOLDS_NUL: &str = "string holds U+0000";

/// A JSON document read in one pass into a [`Value`], refusing what `Value` would accept
/// silently: an object that repeats a key (serde_json keeps the last one) and U+0000 in a
/// string or key (which the databases can't store).
struct StrictJson(Value);

impl<'de> Deserialize<'de> for StrictJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictJsonVisitor)
    }
}

struct StrictJsonVisitor;

/// A string, unless it holds U+0000.
fn strict_string<E: de::Error>(text: String) -> Result<String, E> {
    if text.contains('\0') {
        Err(E::custom(HOLDS_NUL))
    } else {
        Ok(text)
    }
}

impl<'de> Visitor<'de> for StrictJsonVisitor {
    type Value = StrictJson;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::Bool(value)))
    }
    fn visit_i64<E>(self, value: i64) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::from(value)))
    }
    fn visit_u64<E>(self, value: u64) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::from(value)))
    }
    fn visit_f64<E>(self, value: f64) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::from(value)))
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<StrictJson, E> {
        self.visit_string(value.to_owned())
    }
    fn visit_string<E: de::Error>(self, value: String) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::String(strict_string(value)?)))
    }
    fn visit_unit<E>(self) -> Result<StrictJson, E> {
        Ok(StrictJson(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<StrictJson, A::Error> {
        let mut values = Vec::new();
        while let Some(StrictJson(item)) = items.next_element()? {
            values.push(item);
        }
        Ok(StrictJson(Value::Array(values)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<StrictJson, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = fields.next_key::<String>()? {
            let key = strict_string(key)?;
            let StrictJson(value) = fields.next_value()?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("{REPEATED_KEY}{key}")));
            }
            object.insert(key, value);
        }
        Ok(StrictJson(Value::Object(object)))
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
