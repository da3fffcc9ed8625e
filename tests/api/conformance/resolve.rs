//! Loading schema documents (YAML or JSON) and inlining their `$ref`s, so that each response
//! schema becomes one self-contained JSON Schema.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value};

/// Keywords that only annotate a schema. Next to a `$ref` they are dropped; anything else next
/// to a `$ref` is kept by combining it with the target in an `allOf`.
const ANNOTATIONS: [&str; 5] = ["description", "title", "example", "examples", "$comment"];

/// Keywords whose value maps names (of properties, definitions…) to schemas: inside these maps
/// a key is a name, never a keyword, so `example` there is a property and is kept.
const NAME_MAPS: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// Reads documents once and inlines `$ref`s found in them.
#[derive(Default)]
pub struct Resolver {
    /// Parsed documents by canonical path; `Err` for files that cannot be read or parsed.
    documents: HashMap<PathBuf, Result<Value, String>>,
}

impl Resolver {
    /// The parsed document at `file` (`.json` as JSON, anything else as YAML).
    pub fn document(&mut self, file: &Path) -> Result<Value, String> {
        let file =
            std::fs::canonicalize(file).map_err(|error| format!("{}: {error}", file.display()))?;
        self.documents
            .entry(file.clone())
            .or_insert_with(|| parse(&file))
            .clone()
    }

    /// `value`, found in `file`, with every `$ref` replaced by its target (recursively, each
    /// target resolved relative to the file it comes from) and OpenAPI-only keywords (`example`,
    /// `examples`, `x-*`) removed. Fails on a missing file or pointer and on a cyclic `$ref`.
    pub fn inline(&mut self, value: &Value, file: &Path) -> Result<Value, String> {
        let file =
            std::fs::canonicalize(file).map_err(|error| format!("{}: {error}", file.display()))?;
        self.inline_within(value, &file, &mut Vec::new())
    }

    /// [`Self::inline`] with the chain of `$ref`s being followed, to detect cycles.
    fn inline_within(
        &mut self,
        value: &Value,
        file: &Path,
        chain: &mut Vec<String>,
    ) -> Result<Value, String> {
        match value {
            Value::Array(items) => items
                .iter()
                .map(|item| self.inline_within(item, file, chain))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Value::Object(object) => match object.get("$ref").and_then(Value::as_str) {
                Some(reference) => self.follow(reference, object, file, chain),
                None => self.inline_object(object, file, chain, false),
            },
            scalar => Ok(scalar.clone()),
        }
    }

    /// Inlines the members of a schema object, or of a name map when `names` is true.
    fn inline_object(
        &mut self,
        object: &Map<String, Value>,
        file: &Path,
        chain: &mut Vec<String>,
        names: bool,
    ) -> Result<Value, String> {
        let mut inlined = Map::new();
        for (key, member) in object {
            if !names && (key == "example" || key == "examples" || key.starts_with("x-")) {
                continue;
            }
            let member = match member {
                Value::Object(map) if !names && NAME_MAPS.contains(&key.as_str()) => {
                    self.inline_object(map, file, chain, true)?
                }
                _ => self.inline_within(member, file, chain)?,
            };
            inlined.insert(key.clone(), member);
        }
        Ok(Value::Object(inlined))
    }

    /// The target of `reference` (written in `file`), inlined, combined with the keywords of
    /// `object` next to the `$ref` that are not mere annotations.
    fn follow(
        &mut self,
        reference: &str,
        object: &Map<String, Value>,
        file: &Path,
        chain: &mut Vec<String>,
    ) -> Result<Value, String> {
        let (relative, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let target_file = if relative.is_empty() {
            file.to_path_buf()
        } else {
            let joined = file.parent().unwrap_or(Path::new(".")).join(relative);
            std::fs::canonicalize(&joined)
                .map_err(|error| format!("`$ref: {reference}` in {}: {error}", file.display()))?
        };
        let document = self
            .document(&target_file)
            .map_err(|error| format!("`$ref: {reference}` in {}: {error}", file.display()))?;
        let target = document
            .pointer(pointer)
            .ok_or_else(|| format!("`$ref: {reference}` in {}: no such pointer", file.display()))?;
        let key = format!("{}#{pointer}", target_file.display());
        if chain.contains(&key) {
            return Err(format!("cyclic `$ref`: {} -> {key}", chain.join(" -> ")));
        }
        chain.push(key);
        let resolved = self.inline_within(target, &target_file, chain);
        chain.pop();
        let resolved = resolved?;
        let siblings: Map<String, Value> = object
            .iter()
            .filter(|(key, _)| *key != "$ref" && !ANNOTATIONS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if siblings.is_empty() {
            return Ok(resolved);
        }
        let Value::Object(mut combined) = self.inline_object(&siblings, file, chain, false)? else {
            unreachable!("an object inlines to an object");
        };
        match combined.get_mut("allOf") {
            Some(Value::Array(all_of)) => all_of.push(resolved),
            _ => {
                combined.insert("allOf".to_owned(), Value::Array(vec![resolved]));
            }
        }
        Ok(Value::Object(combined))
    }
}

/// Parses `file`: JSON for `.json`, YAML otherwise (YAML's integer keys become strings).
fn parse(file: &Path) -> Result<Value, String> {
    let text =
        std::fs::read_to_string(file).map_err(|error| format!("{}: {error}", file.display()))?;
    let parsed = if file
        .extension()
        .is_some_and(|extension| extension == "json")
    {
        serde_json::from_str(&text).map_err(|error| error.to_string())
    } else {
        serde_norway::from_str::<serde_norway::Value>(&text)
            .map_err(|error| error.to_string())
            .and_then(|yaml| serde_json::to_value(yaml).map_err(|error| error.to_string()))
    };
    parsed.map_err(|error| format!("{}: {error}", file.display()))
}
