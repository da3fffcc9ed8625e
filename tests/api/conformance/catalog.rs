//! The published response schemas, compiled: every (method, path template, status) of the
//! Client-Server API's OpenAPI files, and of the legacy index under `tests/schemas/legacy/`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use jsonschema::Validator;
use serde_json::Value;

use super::resolve::Resolver;

/// The root of the Matrix specification's sources: `VESTIBULE_SPEC_DIR`, by default
/// `../shared/matrix-spec` beside the crate.
pub fn spec_root() -> PathBuf {
    std::env::var_os("VESTIBULE_SPEC_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/matrix-spec"),
        PathBuf::from,
    )
}

/// The Client-Server API's OpenAPI files (`*.yaml`, each with its own base path).
fn spec_dir() -> PathBuf {
    spec_root().join("data/api/client-server")
}

/// The legacy schemas and their index (`index.json`).
fn legacy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/legacy")
}

/// What the published documents say about one status of one endpoint.
pub enum Documented {
    /// A JSON body, described by this schema.
    Schema(Box<Validator>),
    /// The status, without a JSON body.
    NoBody,
    /// A JSON body whose schema could not be built (e.g. a `$ref` to a file not vendored).
    Unavailable(String),
}

/// One documented operation: a method on a path template.
pub struct Endpoint {
    /// Upper-case HTTP method.
    pub method: String,
    /// The full path template, e.g. `/_matrix/client/v3/profile/{userId}`.
    pub template: String,
    /// The document the operation comes from.
    pub source: String,
    /// Whether the operation accepts an access token (and so may answer the client
    /// authentication errors).
    pub takes_token: bool,
    /// The documented statuses.
    pub responses: BTreeMap<u16, Documented>,
}

impl Endpoint {
    /// How specifically the template matches `path`: `None` when it does not, otherwise one
    /// flag per segment (`true` for a literal), so that a greater value is a better match.
    fn specificity(&self, path: &str) -> Option<Vec<bool>> {
        let template: Vec<&str> = self.template.split('/').collect();
        let concrete: Vec<&str> = path.split('/').collect();
        if template.len() != concrete.len() {
            return None;
        }
        template
            .iter()
            .zip(&concrete)
            .map(|(pattern, segment)| {
                if pattern.starts_with('{') && pattern.ends_with('}') {
                    (!segment.is_empty()).then_some(false)
                } else {
                    (pattern == segment).then_some(true)
                }
            })
            .collect()
    }
}

/// What the catalog knows about a concrete request.
pub enum Lookup<'a> {
    /// The operation documented for this method and path.
    Operation(&'a Endpoint),
    /// The path is documented, as this template, but not for this method.
    OtherMethods(&'a str),
    /// No document describes this path.
    Unknown,
}

/// Every compiled response schema.
pub struct Catalog {
    /// All documented operations.
    endpoints: Vec<Endpoint>,
    /// The spec's standard error body (`definitions/errors/error.yaml`), or the legacy one when
    /// the spec is not there.
    pub standard_error: Validator,
    /// The spec's rate-limit error body (`definitions/errors/rate_limited.yaml`), or the legacy
    /// error body when the spec is not there.
    pub rate_limited: Validator,
    /// Why the spec's own schemas were not loaded, if they were not: its directory is missing.
    pub spec_missing: Option<String>,
}

impl Catalog {
    /// Reads and compiles the spec's OpenAPI files and the legacy index. Panics if a document
    /// cannot be read at all; a single schema that cannot be built is recorded as
    /// [`Documented::Unavailable`] and only fails the tests that meet it.
    pub fn load() -> Self {
        let mut resolver = Resolver::default();
        let mut endpoints = legacy_endpoints(&mut resolver);
        if !spec_dir().is_dir() {
            let legacy_error = legacy_dir().join("error.json");
            return Self {
                endpoints,
                standard_error: compile_file(&mut resolver, &legacy_error),
                rate_limited: compile_file(&mut resolver, &legacy_error),
                spec_missing: Some(format!(
                    "{} is not there (set VESTIBULE_SPEC_DIR to a checkout of \
                     github.com/matrix-org/matrix-spec)",
                    spec_dir().display()
                )),
            };
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(spec_dir())
            .unwrap_or_else(|error| panic!("reading {}: {error}", spec_dir().display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "yaml")
            })
            .collect();
        files.sort();
        for file in &files {
            endpoints.extend(openapi_endpoints(&mut resolver, file));
        }
        let errors = spec_dir().join("definitions/errors");
        Self {
            endpoints,
            standard_error: compile_file(&mut resolver, &errors.join("error.yaml")),
            rate_limited: compile_file(&mut resolver, &errors.join("rate_limited.yaml")),
            spec_missing: None,
        }
    }

    /// The operation documented for `method` on `path` (a path without query string, with
    /// `/r0/` already mapped to `/v3/`). The most specific template wins: a literal segment
    /// beats a parameter, from left to right.
    pub fn lookup(&self, method: &str, path: &str) -> Lookup<'_> {
        let best = |same_method: bool| {
            self.endpoints
                .iter()
                .filter(|endpoint| !same_method || endpoint.method == method)
                .filter_map(|endpoint| Some((endpoint.specificity(path)?, endpoint)))
                .max_by(|(left, _), (right, _)| left.cmp(right))
                .map(|(_, endpoint)| endpoint)
        };
        if let Some(endpoint) = best(true) {
            Lookup::Operation(endpoint)
        } else if let Some(endpoint) = best(false) {
            Lookup::OtherMethods(&endpoint.template)
        } else {
            Lookup::Unknown
        }
    }
}

/// The operations of one OpenAPI 3.1 file, their paths prefixed with the file's base path.
fn openapi_endpoints(resolver: &mut Resolver, file: &Path) -> Vec<Endpoint> {
    let document = resolver
        .document(file)
        .unwrap_or_else(|error| panic!("spec file: {error}"));
    let base = base_path(&document)
        .unwrap_or_else(|| panic!("{}: no `servers[0]` base path", file.display()));
    let source = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut endpoints = Vec::new();
    let paths = document["paths"].as_object().cloned().unwrap_or_default();
    for (path, item) in &paths {
        let Some(operations) = item.as_object() else {
            continue;
        };
        for (method, operation) in operations {
            if !HTTP_METHODS.contains(&method.as_str()) {
                continue;
            }
            let mut responses = BTreeMap::new();
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                let Ok(status) = status.parse::<u16>() else {
                    continue;
                };
                responses.insert(status, openapi_response(resolver, file, response));
            }
            endpoints.push(Endpoint {
                method: method.to_ascii_uppercase(),
                template: format!("{base}{path}"),
                source: source.clone(),
                takes_token: takes_token(&operation["security"]),
                responses,
            });
        }
    }
    endpoints
}

/// The operation keys of an OpenAPI path item.
const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The base path of `servers[0]`: its URL with the variables' defaults, without scheme and
/// host (`https://localhost:8008/_matrix/client/v3` → `/_matrix/client/v3`).
fn base_path(document: &Value) -> Option<String> {
    let server = document.get("servers")?.get(0)?;
    let mut url = server.get("url")?.as_str()?.to_owned();
    for (name, variable) in server["variables"].as_object().into_iter().flatten() {
        let default = variable.get("default")?.as_str()?;
        url = url.replace(&format!("{{{name}}}"), default);
    }
    let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    Some(
        after_scheme
            .find('/')
            .map_or_else(String::new, |slash| after_scheme[slash..].to_owned()),
    )
}

/// Whether an operation's `security` requirements include an access token.
fn takes_token(security: &Value) -> bool {
    security
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .any(|requirement| {
            requirement
                .keys()
                .any(|scheme| scheme.starts_with("accessToken"))
        })
}

/// One OpenAPI response object (possibly a `$ref`) as a compiled schema.
fn openapi_response(resolver: &mut Resolver, file: &Path, response: &Value) -> Documented {
    let response = match resolver.inline(response, file) {
        Ok(response) => response,
        Err(error) => return Documented::Unavailable(error),
    };
    match response.pointer("/content/application~1json/schema") {
        Some(schema) => compile(schema),
        None => Documented::NoBody,
    }
}

/// Compiles a self-contained schema as JSON Schema 2020-12.
fn compile(schema: &Value) -> Documented {
    match jsonschema::draft202012::new(schema) {
        Ok(validator) => Documented::Schema(Box::new(validator)),
        Err(error) => Documented::Unavailable(format!("schema does not compile: {error}")),
    }
}

/// Compiles the schema document `file`, which must work.
fn compile_file(resolver: &mut Resolver, file: &Path) -> Validator {
    let schema = resolver
        .document(file)
        .and_then(|document| resolver.inline(&document, file))
        .unwrap_or_else(|error| panic!("schema {}: {error}", file.display()));
    jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|error| panic!("schema {}: {error}", file.display()))
}

/// The operations of `tests/schemas/legacy/index.json`: a list of
/// `{"method", "path", "takes_token", "source", "responses": {"STATUS": "schema file"}}`.
fn legacy_endpoints(resolver: &mut Resolver) -> Vec<Endpoint> {
    let index_file = legacy_dir().join("index.json");
    let index = resolver
        .document(&index_file)
        .unwrap_or_else(|error| panic!("legacy index: {error}"));
    let entries = index.as_array().expect("the legacy index is an array");
    entries
        .iter()
        .map(|entry| {
            let field = |name: &str| {
                entry[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("legacy index entry without `{name}`: {entry}"))
                    .to_owned()
            };
            let responses = entry["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, schema_file)| {
                    let status = status.parse().expect("legacy status is a number");
                    let schema_file = legacy_dir().join(schema_file.as_str().expect("file name"));
                    let validator = compile_file(resolver, &schema_file);
                    (status, Documented::Schema(Box::new(validator)))
                })
                .collect();
            Endpoint {
                method: field("method"),
                template: field("path"),
                source: format!("tests/schemas/legacy/index.json ({})", field("source")),
                takes_token: entry["takes_token"].as_bool().unwrap_or(false),
                responses,
            }
        })
        .collect()
}
