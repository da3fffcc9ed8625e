//! Schema conformance: every JSON body the black-box tests receive is validated against the
//! published schema for its endpoint and status.
//!
//! - `/_matrix/client/v3/…` (and `/r0/…`, read as `/v3/…`), `/_matrix/client/versions`,
//!   `/.well-known/matrix/client` and every other path of the spec's Client-Server OpenAPI files
//!   (`$VESTIBULE_SPEC_DIR/data/api/client-server/*.yaml`, by default under
//!   `../shared/matrix-spec`, `$ref`s inlined);
//! - `/_matrix/client/api/v1/…` and `/_matrix/client/v2_alpha/…` (and `/api/v2_alpha/…`, seed
//!   001's basePath, read as `/v2_alpha/…`): the schemas under
//!   `tests/schemas/legacy/`, written from the seed documents and listed in its `index.json`.
//!
//! A status the endpoint's document does not list fails, except: 404/405 `M_UNRECOGNIZED`,
//! 413 `M_TOO_LARGE`, 429 `M_LIMIT_EXCEEDED`, 500, and the allow-list in [`exceptions`]. A path
//! no document describes (`/metrics`, `/`) is only checked, when it is an error, against the
//! standard error body.
//!
//! Without the spec's sources, the spec's schemas can't be checked: the run says so once, in one
//! line on the real standard error (past the test harness's capture), and every other assertion
//! still runs; the legacy schemas are checked as usual.

mod catalog;
mod exceptions;
mod resolve;
mod self_tests;

use std::{
    io::Write,
    sync::{LazyLock, Once},
};

use jsonschema::Validator;
use serde_json::Value;

use self::{
    catalog::{Catalog, Documented, Endpoint, Lookup},
    exceptions::UNDOCUMENTED_ERRORS,
};

/// The compiled schemas, built once per test process.
static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::load);

/// Panics, with the reason, unless `body` (the JSON answer of `status` to `method path`)
/// conforms to its published schema.
pub fn assert_conforms(method: &str, path: &str, status: u16, body: &Value) {
    if let Err(message) = check(method, path, status, body) {
        panic!("schema conformance: {message}\nbody: {body}");
    }
}

/// Checks that `body`, the JSON answer of `status` to `method path`, conforms to its published
/// schema; the error says which endpoint, status and field, and why.
pub fn check(method: &str, path: &str, status: u16, body: &Value) -> Result<(), String> {
    let catalog = &*CATALOG;
    let route = path.split('?').next().unwrap_or(path);
    let route = if let Some(rest) = route.strip_prefix("/_matrix/client/r0/") {
        format!("/_matrix/client/v3/{rest}")
    } else if let Some(rest) = route.strip_prefix("/_matrix/client/api/v2_alpha/") {
        // Seed 001's basePath for the same v2_alpha API.
        format!("/_matrix/client/v2_alpha/{rest}")
    } else {
        route.to_owned()
    };
    let legacy = ["/_matrix/client/api/v1/", "/_matrix/client/v2_alpha/"]
        .iter()
        .any(|prefix| route.starts_with(prefix));
    if !legacy && spec_missing() {
        return Ok(());
    }
    let request = format!("{method} {path} -> {status}");
    match catalog.lookup(method, &route) {
        Lookup::Operation(endpoint) => check_operation(catalog, endpoint, &request, status, body),
        Lookup::OtherMethods(template) => {
            if matches!(status, 404 | 405) && errcode(body) == Some("M_UNRECOGNIZED") {
                standard_error(catalog, body, &request)
            } else {
                Err(format!(
                    "{request}: the spec documents no {method} on {template}, yet the server \
                     answered it with {status} (only 404/405 M_UNRECOGNIZED are expected)"
                ))
            }
        }
        Lookup::Unknown if status >= 400 => standard_error(catalog, body, &request),
        Lookup::Unknown => Ok(()),
    }
}

/// Checks an answer of a documented operation: the allow-list of undocumented errors first (it
/// may override a documented body, as for client authentication errors on UIA endpoints), then
/// the documented status (less the known violations), then the statuses any endpoint may
/// answer.
fn check_operation(
    catalog: &Catalog,
    endpoint: &Endpoint,
    request: &str,
    status: u16,
    body: &Value,
) -> Result<(), String> {
    let code = errcode(body);
    if let Some(allowed) = UNDOCUMENTED_ERRORS
        .iter()
        .find(|allowed| allowed.covers(endpoint, status, code))
    {
        let what = format!("the standard error body (allow-listed: {})", allowed.reason);
        return validate(&catalog.standard_error, body, request, &what);
    }
    let schema_name = format!(
        "{} {} {status} in {}",
        endpoint.method, endpoint.template, endpoint.source
    );
    match endpoint.responses.get(&status) {
        Some(Documented::Schema(validator)) => validate(validator, body, request, &schema_name),
        Some(Documented::Unavailable(reason)) => Err(format!(
            "{request}: the schema of {schema_name} cannot be built: {reason}"
        )),
        Some(Documented::NoBody) if status >= 400 => standard_error(catalog, body, request),
        Some(Documented::NoBody) => Err(format!(
            "{request}: {schema_name} documents no JSON body, yet the server sent one"
        )),
        None => match (status, code) {
            (404 | 405, Some("M_UNRECOGNIZED")) | (413, Some("M_TOO_LARGE")) | (500, _) => {
                standard_error(catalog, body, request)
            }
            (429, Some("M_LIMIT_EXCEEDED")) => validate(
                &catalog.rate_limited,
                body,
                request,
                "the rate-limit error body",
            ),
            _ => Err(format!(
                "{request}: status {status} is undocumented for {} {} (documented: {:?}, in {})",
                endpoint.method,
                endpoint.template,
                endpoint.responses.keys().collect::<Vec<_>>(),
                endpoint.source,
            )),
        },
    }
}

/// Whether the spec's schemas are missing; the first call that finds them missing says so, once
/// per test process, on the real standard error.
pub fn spec_missing() -> bool {
    static NOTICE: Once = Once::new();
    let Some(reason) = &CATALOG.spec_missing else {
        return false;
    };
    NOTICE.call_once(|| {
        // Written to the stream itself, not through `eprintln!`, which the harness captures.
        let _ = writeln!(
            std::io::stderr(),
            "schema conformance: the spec's Client-Server schemas were NOT checked \
             (v3/r0 bodies and the self-tests that need them): {reason}"
        );
    });
    true
}

/// The `errcode` of an error body.
fn errcode(body: &Value) -> Option<&str> {
    body.get("errcode").and_then(Value::as_str)
}

/// Validates `body` against the spec's standard error body.
fn standard_error(catalog: &Catalog, body: &Value, request: &str) -> Result<(), String> {
    let schema = "the standard error body";
    validate(&catalog.standard_error, body, request, schema)
}

/// Validates `body` against `validator` (described as `schema` in the message), listing every
/// violation but those `tolerated` accepts, each with the JSON pointer of the offending field.
fn validate(
    validator: &Validator,
    body: &Value,
    request: &str,
    schema: &str,
) -> Result<(), String> {
    let violations: Vec<String> = validator
        .iter_errors(body)
        .map(|error| format!("  at \"{}\": {error}", error.instance_path()))
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{request}: the body does not match {schema}:\n{}",
            violations.join("\n")
        ))
    }
}
