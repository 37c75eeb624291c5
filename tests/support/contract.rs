//! The published contract, loaded for tests: the JSON Schemas in `docs/schemas/` and the AsyncAPI document
//! `docs/asyncapi.yaml`, with validators that resolve `$ref`s between the files without touching the network or
//! the disk beyond `docs/`.
//!
//! The files are served under the fixed base `file:///scrc/docs/` rather than their real path, so a `$ref` means the
//! same wherever the repository is checked out, and one that leaves `docs/schemas/` fails to resolve.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde_json::{Value, json};

/// Where the documents are served from, for `$ref` resolution.
pub const BASE: &str = "file:///scrc/docs/";

/// The messages of the contract, each with its schema file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Script,
    Done,
    Result,
    DeadLetterHeaders,
    Event,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Script,
        Kind::Done,
        Kind::Result,
        Kind::DeadLetterHeaders,
        Kind::Event,
    ];

    pub fn schema_file(self) -> &'static str {
        match self {
            Kind::Script => "script.schema.json",
            Kind::Done => "done.schema.json",
            Kind::Result => "result.schema.json",
            Kind::DeadLetterHeaders => "dead-letter-headers.schema.json",
            Kind::Event => "event.schema.json",
        }
    }
}

pub struct Contract {
    /// Every `docs/schemas/*.schema.json`, by file name.
    pub schemas: Arc<BTreeMap<String, Value>>,
    /// `docs/asyncapi.yaml`, read as YAML into JSON values.
    pub asyncapi: Value,
    validators: BTreeMap<Kind, Validator>,
}

pub fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
}

impl Contract {
    /// Loads and compiles the contract; panics with the file and the reason when any part of it is broken.
    pub fn load() -> Contract {
        let dir = docs_dir().join("schemas");
        let mut schemas = BTreeMap::new();
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a readable directory entry").path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.ends_with(".schema.json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
            let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
            schemas.insert(name.to_owned(), schema);
        }
        let path = docs_dir().join("asyncapi.yaml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let asyncapi: Value =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("docs/asyncapi.yaml is not valid YAML: {e}"));
        let schemas = Arc::new(schemas);
        let mut contract = Contract {
            schemas,
            asyncapi,
            validators: BTreeMap::new(),
        };
        for kind in Kind::ALL {
            let validator = contract.validator(&json!({"$ref": format!("schemas/{}", kind.schema_file())}));
            contract.validators.insert(kind, validator);
        }
        contract
    }

    /// A validator for `schema`, resolved as if it stood in `docs/` (so `schemas/x.schema.json#/...` refers to a
    /// schema file). Panics when the schema does not compile or a `$ref` does not resolve.
    pub fn validator(&self, schema: &Value) -> Validator {
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_base_uri(format!("{BASE}asyncapi.yaml"))
            .with_retriever(Schemas(Arc::clone(&self.schemas)))
            .should_validate_formats(true)
            .build(schema)
            .unwrap_or_else(|e| panic!("the schema {schema} does not compile: {e}"))
    }

    /// Why `instance` is not a valid `kind`, one line per violation; empty when it is valid.
    pub fn violations(&self, kind: Kind, instance: &Value) -> Vec<String> {
        violations(&self.validators[&kind], instance)
    }

    /// Panics, naming `what` and every violation, unless `instance` is a valid `kind`.
    pub fn assert_valid(&self, kind: Kind, instance: &Value, what: &str) {
        let violations = self.violations(kind, instance);
        assert!(
            violations.is_empty(),
            "{what} is not a valid {kind:?} ({}):\n  {}\n{instance:#}",
            kind.schema_file(),
            violations.join("\n  ")
        );
    }

    /// Panics unless `instance` is an invalid `kind`: the negative cases that show the check can fail.
    pub fn assert_invalid(&self, kind: Kind, instance: &Value, what: &str) {
        assert!(
            !self.violations(kind, instance).is_empty(),
            "{what} passed as a valid {kind:?} but must not:\n{instance:#}"
        );
    }
}

pub fn violations(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|error| format!("at {:?}: {error}", error.instance_path().to_string()))
        .collect()
}

/// A Kafka record's headers as the JSON object the dead-letter schema describes: name to UTF-8 text (lossy), or
/// null for a header without a value.
pub fn headers_as_json<'a>(headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Value {
    let object = headers
        .into_iter()
        .map(|(name, value)| {
            let value = value.map_or(Value::Null, |bytes| {
                Value::String(String::from_utf8_lossy(bytes).into_owned())
            });
            (name.to_owned(), value)
        })
        .collect();
    Value::Object(object)
}

/// Serves the schema files under [`BASE`]`schemas/`, and nothing else.
struct Schemas(Arc<BTreeMap<String, Value>>);

impl Retrieve for Schemas {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        let name = uri
            .strip_prefix(BASE)
            .and_then(|rest| rest.strip_prefix("schemas/"))
            .ok_or_else(|| format!("{uri} is outside docs/schemas/"))?;
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| format!("docs/schemas/{name} does not exist").into())
    }
}
