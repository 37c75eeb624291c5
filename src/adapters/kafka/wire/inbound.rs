//! Script messages in: bytes from the `scripts` topic become a script, a done marker, a rejection or a
//! dead-letter reason.
//!
//! Parsing is total: any bytes become either an [`Inbound`] value or an [`Unreadable`] reason, never a panic. A
//! message that is JSON but wrong (a bad field type, an unknown language, a negative limit) is *readable* and gets
//! an RJ result naming the field and the value; only bytes that are not a JSON object of acceptable size are
//! unreadable and go to the dead-letter topic.

use std::time::Duration;

use serde_json::{Map, Value};

use base64::Engine as _;

use crate::domain::program::check_tree;
use crate::domain::{
    Checker, CheckerProgram, Comparison, FileIo, Group, Groups, IoName, Language, Points, ProgramFile, ProgramPath,
    RequestedLimits, Script, ScriptId, Source, Tenant, TestCase,
};
use crate::ports::Inbound;

/// Where a message came from, for the fallback id `topic:partition:offset`.
#[derive(Debug, Clone, Copy)]
pub struct Coordinates<'a> {
    /// The message's topic.
    pub topic: &'a str,
    /// The partition's number in that topic.
    pub partition: i32,
    /// The message's offset in its partition.
    pub offset: i64,
}

/// Why a message could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unreadable {
    /// What was wrong, for the dead-letter record's `scrc-error` header and the RJ result's `error`.
    pub reason: String,
    /// The id the message key gives, when it gives one.
    pub id: Option<ScriptId>,
}

/// What a script message may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    /// The largest payload read (`RUNNER_MAX_MESSAGE_BYTES`); a larger one is unreadable. The program's files,
    /// decoded, must fit it too.
    pub max_bytes: usize,
    /// The most files a program may have, its entry included (`RUNNER_MAX_FILES`).
    pub max_files: usize,
}

/// The Kafka header that names a script's tenant when its payload does not.
pub const TENANT_HEADER: &str = "tenant";

/// Classifies a message. `Err` means unreadable: dead-letter it.
///
/// `tenant_header` is the value of the message's `tenant` header, if it has one: the script's tenant when the
/// payload has no `tenant` field (the field wins when both are present).
///
/// # Errors
/// [`Unreadable`] for a missing payload, a payload over `limits.max_bytes`, invalid JSON or JSON that is not an
/// object.
pub fn parse_message<U>(
    payload: Option<&[u8]>,
    key: Option<&[u8]>,
    tenant_header: Option<&[u8]>,
    at: Coordinates<'_>,
    limits: MessageLimits,
) -> Result<Inbound<U>, Unreadable> {
    let max_bytes = limits.max_bytes;
    let unreadable = |reason: String| Unreadable {
        reason,
        id: key_id(key),
    };
    let Some(payload) = payload else {
        return Err(unreadable("the message has no payload".into()));
    };
    if payload.len() > max_bytes {
        return Err(unreadable(format!(
            "the message is {} bytes, over the limit of {max_bytes} bytes",
            payload.len()
        )));
    }
    let object = match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            return Err(unreadable(format!(
                "the message is JSON but not an object (got {})",
                kind(&other)
            )));
        }
        Err(error) => return Err(unreadable(format!("the message is not valid JSON: {error}"))),
    };
    let id = match object.get("id") {
        Some(Value::String(id)) if !id.is_empty() => ScriptId::new(id.clone()).ok(),
        _ => None,
    }
    .or_else(|| key_id(key))
    .unwrap_or_else(|| coordinates_id(at));

    let reject = |reason: String, language: Option<Language>| Inbound::Rejected {
        id: id.clone(),
        language,
        reason,
    };
    match read_script(&object, &id, tenant_header, limits) {
        Ok(Message::Script(script)) => Ok(Inbound::Script(*script)),
        Ok(Message::Done) => Ok(Inbound::Done),
        Err(rejection) => Ok(reject(rejection.reason, rejection.language)),
    }
}

enum Message {
    /// Boxed: a script is far larger than the marker.
    Script(Box<Script>),
    Done,
}

struct Rejection {
    /// Why the script is rejected, naming the field and the value: the RJ result's `error`.
    reason: String,
    /// The script's language when it was read before the fault, so that the RJ result names it.
    language: Option<Language>,
}

impl From<String> for Rejection {
    fn from(reason: String) -> Self {
        Self { reason, language: None }
    }
}

fn read_script(
    object: &Map<String, Value>,
    id: &ScriptId,
    tenant_header: Option<&[u8]>,
    message: MessageLimits,
) -> Result<Message, Rejection> {
    match optional_string(object, "type")? {
        None | Some("script") => {}
        Some("done") => return Ok(Message::Done),
        Some(other) => return Err(format!("unknown message type {other:?}; expected \"script\" or \"done\"").into()),
    }
    if let Some(value) = object.get("id")
        && !value.is_null()
        && !value.is_string()
    {
        return Err(type_error("id", "a string", value).into());
    }
    if let Some(Value::String(text)) = object.get("id")
        && text.len() > ScriptId::MAX_BYTES
    {
        // The RJ result goes out under the key or the coordinates (see `parse_message`), never under this id.
        return Err(format!(
            "field \"id\" is {} bytes, over the limit of {} bytes",
            text.len(),
            ScriptId::MAX_BYTES
        )
        .into());
    }
    let language_name = optional_string(object, "language")?.ok_or_else(|| missing("language"))?;
    let language: Language = language_name
        .parse()
        .map_err(|e: crate::domain::script::UnknownLanguage| e.to_string())?;
    let with_language = |reason: String| Rejection {
        reason,
        language: Some(language),
    };
    let (source, entry, files) = read_program(object, language, message).map_err(with_language)?;
    let io = read_io(object).map_err(with_language)?;
    let limits = read_limits(object).map_err(with_language)?;
    let tests = read_tests(object).map_err(with_language)?;
    let tolerance = match object.get("float_tolerance") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_f64()
                .ok_or_else(|| with_language(type_error("float_tolerance", "a number", value)))?,
        ),
    };
    let checker = read_checker(object, tolerance, message).map_err(with_language)?;
    let numbers: Vec<u32> = tests.iter().map(|test| test.number).collect();
    let groups = read_groups(object, &numbers).map_err(with_language)?;
    let run_all_tests = match object.get("run_all_tests") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(value) => return Err(with_language(type_error("run_all_tests", "a boolean", value))),
    };
    let tenant = read_tenant(object, tenant_header).map_err(with_language)?;
    Ok(Message::Script(Box::new(Script {
        id: id.clone(),
        language,
        source,
        entry,
        files,
        io,
        limits,
        tests,
        checker,
        groups,
        run_all_tests,
        tenant,
    })))
}

/// `checker`: a comparison's name (SCRC's and scrc's `exact`, `lines`, `tokens`, `float`), or a setter's program
/// `{"language", "source", "files"}`, read like the script's own program and held to the same limits.
fn read_checker(
    object: &Map<String, Value>,
    tolerance: Option<f64>,
    message: MessageLimits,
) -> Result<Checker, String> {
    let program = match object.get("checker") {
        None | Some(Value::Null) => return Ok(Checker::Compare(comparison("exact", tolerance)?)),
        Some(Value::String(name)) => return Ok(Checker::Compare(comparison(name, tolerance)?)),
        Some(Value::Object(_)) if tolerance.is_some() => {
            return Err("field \"float_tolerance\" is for the float comparison, not a checker program".into());
        }
        Some(Value::Object(program)) => program,
        Some(value) => return Err(type_error("checker", "a string or an object", value)),
    };
    let language_name = optional_string(program, "language")
        .map_err(|e| format!("checker: {e}"))?
        .ok_or_else(|| missing("checker.language"))?;
    let language: Language = language_name
        .parse()
        .map_err(|e: crate::domain::script::UnknownLanguage| format!("checker: {e}"))?;
    let (source, entry, files) = read_program(program, language, message).map_err(|e| format!("checker: {e}"))?;
    if entry.is_some() {
        return Err("field \"checker.entry\" is not supported: the checker's source is its main file".into());
    }
    Ok(Checker::Program(std::sync::Arc::new(CheckerProgram {
        language,
        source,
        files,
    })))
}

fn comparison(name: &str, tolerance: Option<f64>) -> Result<Comparison, String> {
    Comparison::from_wire(name, tolerance).map_err(|e| e.to_string())
}

/// `groups`: `[{"name", "tests": [numbers], "points", "depends_on": [names]}]`, checked against the script's tests.
fn read_groups(object: &Map<String, Value>, tests: &[u32]) -> Result<Groups, String> {
    let groups = match object.get("groups") {
        None | Some(Value::Null) => return Ok(Groups::default()),
        Some(Value::Array(groups)) => groups,
        Some(value) => return Err(type_error("groups", "an array", value)),
    };
    let groups = groups
        .iter()
        .enumerate()
        .map(|(index, group)| read_group(index, group))
        .collect::<Result<Vec<Group>, String>>()?;
    Groups::new(groups, tests).map_err(|e| format!("field \"groups\": {e}"))
}

/// `groups[index]`: `{"name", "tests", "points", "depends_on"}`.
fn read_group(index: usize, group: &Value) -> Result<Group, String> {
    let field = |name: &str| format!("groups[{index}].{name}");
    let Value::Object(group) = group else {
        return Err(type_error(&format!("groups[{index}]"), "an object", group));
    };
    let name = match group.get("name") {
        Some(Value::String(name)) => name.clone(),
        None | Some(Value::Null) => return Err(missing(&field("name"))),
        Some(value) => return Err(type_error(&field("name"), "a string", value)),
    };
    let numbers = match group.get("tests") {
        Some(Value::Array(numbers)) => numbers,
        None | Some(Value::Null) => return Err(missing(&field("tests"))),
        Some(value) => return Err(type_error(&field("tests"), "an array of test numbers", value)),
    };
    let numbers = numbers
        .iter()
        .map(|number| {
            number
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| type_error(&field("tests"), "an array of test numbers", number))
        })
        .collect::<Result<Vec<u32>, String>>()?;
    let depends_on = match group.get("depends_on") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(names)) => names
            .iter()
            .map(|name| match name {
                Value::String(name) => Ok(name.clone()),
                other => Err(type_error(&field("depends_on"), "an array of group names", other)),
            })
            .collect::<Result<Vec<String>, String>>()?,
        Some(value) => return Err(type_error(&field("depends_on"), "an array of group names", value)),
    };
    Ok(Group {
        name,
        tests: numbers,
        points: points(group, &field("points"))?.unwrap_or(Points::ONE),
        depends_on,
    })
}

/// A `points` field: a finite number >= 0, when present.
fn points(object: &Map<String, Value>, path: &str) -> Result<Option<Points>, String> {
    match object.get("points") {
        None | Some(Value::Null) => Ok(None),
        Some(value @ Value::Number(number)) => {
            let number = number.as_f64().ok_or_else(|| type_error(path, "a number", value))?;
            Points::new(number)
                .map(Some)
                .map_err(|e| format!("field \"{path}\": {e}"))
        }
        Some(value) => Err(type_error(path, "a number", value)),
    }
}

/// The script's tenant: the `tenant` field (an scrc extension), else the `tenant` header, else none. Only the one
/// used is checked, so a producer that sets a valid field is not refused for a stale header. A tenant that is
/// there but unusable is refused rather than ignored: dropping it would run the script uncapped, which is exactly
/// what its producer tagged it to avoid.
fn read_tenant(object: &Map<String, Value>, header: Option<&[u8]>) -> Result<Option<Tenant>, String> {
    let rule = || format!("a tenant is 1 to {} bytes of UTF-8", Tenant::MAX_BYTES);
    if let Some(text) = optional_string(object, "tenant")? {
        return Tenant::new(text)
            .map(Some)
            .map_err(|error| format!("field \"tenant\" is invalid: {error}; {}", rule()));
    }
    let Some(header) = header else {
        return Ok(None);
    };
    let text = std::str::from_utf8(header).map_err(|_| format!("header \"tenant\" is not UTF-8; {}", rule()))?;
    Tenant::new(text)
        .map(Some)
        .map_err(|error| format!("header \"tenant\" is invalid: {error}; {}", rule()))
}

fn read_limits(object: &Map<String, Value>) -> Result<RequestedLimits, String> {
    let limits = match object.get("limits") {
        None | Some(Value::Null) => return Ok(RequestedLimits::default()),
        Some(Value::Object(limits)) => limits,
        Some(value) => return Err(type_error("limits", "an object", value)),
    };
    let time = non_negative(limits, "limits.time_limit_ms", "time_limit_ms")?;
    let memory = non_negative(limits, "limits.memory_limit_bytes", "memory_limit_bytes")?;
    let cpu_time = non_negative(limits, "limits.cpu_time_limit_ms", "cpu_time_limit_ms")?;
    Ok(RequestedLimits {
        time: time.filter(|&ms| ms > 0).map(Duration::from_millis),
        memory: memory.filter(|&bytes| bytes > 0),
        cpu_time: cpu_time.filter(|&ms| ms > 0).map(Duration::from_millis),
    })
}

/// The program: `source`, `files` beside or instead of it, and `entry`. The entry ends up as the script's source
/// and the rest as its files: `source` is the entry, saved at `entry` or the language's usual main file; without
/// `source`, the entry is the file of `files` at `entry`, or at the language's usual main file, and must be text.
/// The whole is a tree of at most `RUNNER_MAX_FILES` files and the message's size in decoded bytes.
fn read_program(
    object: &Map<String, Value>,
    language: Language,
    message: MessageLimits,
) -> Result<(Source, Option<ProgramPath>, Vec<ProgramFile>), String> {
    let source = optional_string(object, "source")?;
    let entry = optional_string(object, "entry")?
        .map(|path| ProgramPath::new(path).map_err(|e| format!("field \"entry\": {e}")))
        .transpose()?;
    let mut files = read_files(object)?;
    let (source, entry) = match source {
        Some(text) => (text.to_owned(), entry),
        None if files.is_empty() => return Err(format!("{}, or \"files\"", missing("source"))),
        None => {
            let path = match entry {
                Some(path) => path,
                None => ProgramPath::new(language.default_main()).map_err(|e| e.to_string())?,
            };
            let at = files.iter().position(|file| file.path == path).ok_or_else(|| {
                format!(
                    "the entry {:?} is not among \"files\": name the program's main file with \"entry\"",
                    path.as_str()
                )
            })?;
            let file = files.remove(at);
            let text = String::from_utf8(file.content)
                .map_err(|_| format!("the entry {:?} is not UTF-8 text", path.as_str()))?;
            (text, Some(path))
        }
    };
    let source = Source::new(source).map_err(|e| e.to_string())?;
    // Where the build will save the source, so that no other file takes its path.
    let saved = ProgramPath::new(language.saved_as(entry.as_ref(), source.as_str()))
        .map_err(|e| format!("the source's file: {e}"))?;
    let tree = std::iter::once((&saved, source.as_str().len()))
        .chain(files.iter().map(|file| (&file.path, file.content.len())));
    check_tree(tree, message.max_files, message.max_bytes).map_err(|e| format!("field \"files\": {e}"))?;
    Ok((source, entry, files))
}

/// `files`: `[{"path", "content", "encoding": "text" | "base64"}]`, each path checked and each content decoded.
fn read_files(object: &Map<String, Value>) -> Result<Vec<ProgramFile>, String> {
    let files = match object.get("files") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(files)) => files,
        Some(value) => return Err(type_error("files", "an array", value)),
    };
    files
        .iter()
        .enumerate()
        .map(|(index, file)| {
            let field = |name: &str| format!("files[{index}].{name}");
            let Value::Object(file) = file else {
                return Err(type_error(&format!("files[{index}]"), "an object", file));
            };
            let path = match file.get("path") {
                Some(Value::String(path)) => path,
                None | Some(Value::Null) => return Err(missing(&field("path"))),
                Some(value) => return Err(type_error(&field("path"), "a string", value)),
            };
            let path = ProgramPath::new(path.clone()).map_err(|e| format!("field \"{}\": {e}", field("path")))?;
            let content = text(file, "content", &field("content"))?;
            let content = match optional_string(file, "encoding").map_err(|_| {
                let sent = file.get("encoding").unwrap_or(&Value::Null);
                type_error(&field("encoding"), "\"text\" or \"base64\"", sent)
            })? {
                None | Some("text") => content.into_bytes(),
                Some("base64") => base64::engine::general_purpose::STANDARD
                    .decode(content.as_bytes())
                    .map_err(|e| format!("field \"{}\" is not valid base64: {e}", field("content")))?,
                Some(other) => {
                    return Err(format!(
                        "field \"{}\" must be \"text\" or \"base64\", got {other:?}",
                        field("encoding")
                    ));
                }
            };
            Ok(ProgramFile { path, content })
        })
        .collect()
}

/// `io`: `{"input_file", "output_file"}`, each a file name in the program's working directory, either alone.
fn read_io(object: &Map<String, Value>) -> Result<FileIo, String> {
    let io = match object.get("io") {
        None | Some(Value::Null) => return Ok(FileIo::default()),
        Some(Value::Object(io)) => io,
        Some(value) => return Err(type_error("io", "an object", value)),
    };
    let name = |field: &str| -> Result<Option<IoName>, String> {
        match io.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(name)) => IoName::new(name.clone())
                .map(Some)
                .map_err(|e| format!("field \"io.{field}\": {e}")),
            Some(value) => Err(type_error(&format!("io.{field}"), "a string", value)),
        }
    };
    let (input_file, output_file) = (name("input_file")?, name("output_file")?);
    if let (Some(input), Some(output)) = (&input_file, &output_file)
        && input == output
    {
        // The input file is the test's own; read back as its output, a program doing nothing would echo its input.
        return Err(format!(
            "fields \"io.input_file\" and \"io.output_file\" are both {input:?}: they must differ"
        ));
    }
    Ok(FileIo {
        input_file,
        output_file,
    })
}

fn read_tests(object: &Map<String, Value>) -> Result<Vec<TestCase>, String> {
    let tests = match object.get("tests") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tests)) => tests,
        Some(value) => return Err(type_error("tests", "an array", value)),
    };
    tests
        .iter()
        .enumerate()
        .map(|(index, test)| {
            let Value::Object(test) = test else {
                return Err(type_error(&format!("tests[{index}]"), "an object", test));
            };
            let field = |name: &str| format!("tests[{index}].{name}");
            let number = match test.get("number") {
                None | Some(Value::Null) => None,
                Some(value) => Some(
                    value
                        .as_i64()
                        .ok_or_else(|| type_error(&field("number"), "an integer", value))?,
                ),
            };
            let number = match number {
                Some(n) if n > 0 => {
                    u32::try_from(n).map_err(|_| format!("field \"{}\" is out of range: {n}", field("number")))?
                }
                _ => u32::try_from(index + 1).map_err(|_| "too many tests".to_owned())?,
            };
            Ok(TestCase {
                number,
                input: text(test, "input", &field("input"))?,
                expected_output: text(test, "expected_output", &field("expected_output"))?,
                points: points(test, &field("points"))?,
            })
        })
        .collect()
}

fn optional_string<'a>(object: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(value) => Err(type_error(name, "a string", value)),
    }
}

fn text(object: &Map<String, Value>, name: &str, path: &str) -> Result<String, String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(value) => Err(type_error(path, "a string", value)),
    }
}

fn non_negative(object: &Map<String, Value>, path: &str, name: &str) -> Result<Option<u64>, String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => {
            if let Some(value) = number.as_u64() {
                Ok(Some(value))
            } else if number.as_i64().is_some() || number.as_f64().is_some_and(|v| v < 0.0) {
                Err(format!("field \"{path}\" must not be negative, got {number}"))
            } else {
                Err(format!("field \"{path}\" must be an integer, got {number}"))
            }
        }
        Some(value) => Err(type_error(path, "a non-negative integer", value)),
    }
}

fn missing(name: &str) -> String {
    format!("field \"{name}\" is required")
}

fn type_error(path: &str, expected: &str, got: &Value) -> String {
    let shown = match got {
        Value::String(text) => format!("{:?}", text.chars().take(40).collect::<String>()),
        Value::Array(_) | Value::Object(_) => kind(got).to_owned(),
        other => other.to_string(),
    };
    format!("field \"{path}\" must be {expected}, got {shown}")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn key_id(key: Option<&[u8]>) -> Option<ScriptId> {
    key.and_then(|key| std::str::from_utf8(key).ok())
        .and_then(|key| ScriptId::new(key).ok())
}

/// `topic:partition:offset`. A topic name may be 249 bytes, so it is shortened when the whole would be over
/// [`ScriptId::MAX_BYTES`]; the partition and offset, which make the id unique within the topic, are always kept.
fn coordinates_id(at: Coordinates<'_>) -> ScriptId {
    let suffix = format!(":{}:{}", at.partition, at.offset);
    let room = ScriptId::MAX_BYTES.saturating_sub(suffix.len());
    let end = (0..=room.min(at.topic.len()))
        .rev()
        .find(|&i| at.topic.is_char_boundary(i))
        .unwrap_or(0);
    ScriptId::new(format!("{}{suffix}", &at.topic[..end]))
        .unwrap_or_else(|_| unreachable!("the suffix is never empty and the whole fits by construction"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Serialize;

    const MAX: MessageLimits = MessageLimits {
        max_bytes: 1 << 20,
        max_files: 64,
    };

    fn at() -> Coordinates<'static> {
        Coordinates {
            topic: "scripts",
            partition: 2,
            offset: 41,
        }
    }

    /// The parser as the tests use it: no source form of an unreadable message is needed here.
    fn parse_message(
        payload: Option<&[u8]>,
        key: Option<&[u8]>,
        tenant_header: Option<&[u8]>,
        at: Coordinates<'_>,
        limits: MessageLimits,
    ) -> Result<Inbound<()>, Unreadable> {
        super::parse_message(payload, key, tenant_header, at, limits)
    }

    fn parse(json: &str) -> Result<Inbound<()>, Unreadable> {
        parse_message(Some(json.as_bytes()), None, None, at(), MAX)
    }

    fn rejection(json: &str) -> String {
        match parse(json) {
            Ok(Inbound::Rejected { reason, .. }) => reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn scrc_example_message_parses() {
        let json = r#"{"type":"script","id":"submission-456","language":"c",
            "source":"int main(){}","limits":{"time_limit_ms":2000,"memory_limit_bytes":67108864},
            "tests":[{"number":1,"input":"2 3\n","expected_output":"5\n"},{"input":"x"}]}"#;
        let Ok(Inbound::Script(script)) = parse(json) else {
            panic!()
        };
        assert_eq!(script.id.as_str(), "submission-456");
        assert_eq!(script.language, Language::C);
        assert_eq!(script.limits.time, Some(Duration::from_millis(2000)));
        assert_eq!(script.limits.memory, Some(67108864));
        assert_eq!(script.tests[0].expected_output, "5\n");
        assert_eq!(script.tests[1].number, 2, "absent numbers become index + 1");
        assert_eq!(
            script.tests[1].expected_output, "",
            "absent expected output is empty, as in SCRC"
        );
        assert_eq!(script.checker, Checker::default());
        assert!(!script.run_all_tests);
    }

    fn script(json: &str) -> Script {
        match parse(json) {
            Ok(Inbound::Script(script)) => script,
            other => panic!("expected a script, got {other:?}"),
        }
    }

    #[test]
    fn files_go_beside_the_source_and_the_entry_becomes_the_source() {
        let beside = script(
            r#"{"language":"c","source":"int main(){}","files":[
                {"path":"lib/util.h","content":"int f(void);"},
                {"path":"data.bin","content":"AAEC/w==","encoding":"base64"}]}"#,
        );
        assert_eq!(beside.source.as_str(), "int main(){}");
        assert_eq!(beside.entry, None, "saved as the language's usual main file");
        assert_eq!(beside.files.len(), 2);
        assert_eq!(beside.files[0].path.as_str(), "lib/util.h");
        assert_eq!(beside.files[1].content, [0, 1, 2, 255], "base64 decoded");

        let instead = script(
            r#"{"language":"java","entry":"com/x/App.java","files":[
                {"path":"com/x/App.java","content":"package com.x; public class App {}"},
                {"path":"com/x/Util.java","content":"package com.x; class Util {}"}]}"#,
        );
        assert_eq!(instead.source.as_str(), "package com.x; public class App {}");
        assert_eq!(instead.entry.as_ref().map(ProgramPath::as_str), Some("com/x/App.java"));
        assert_eq!(instead.files.len(), 1, "the entry left the files for the source");

        let default_entry = script(
            r#"{"language":"python","files":[{"path":"main.py","content":"print(1)"},{"path":"m.py","content":""}]}"#,
        );
        assert_eq!(default_entry.source.as_str(), "print(1)");
        assert_eq!(default_entry.entry.as_ref().map(ProgramPath::as_str), Some("main.py"));

        let saved_at = script(
            r#"{"language":"cpp","source":"int main(){}","entry":"solution.cpp","files":[{"path":"grader.cpp","content":"x"}]}"#,
        );
        assert_eq!(saved_at.entry.as_ref().map(ProgramPath::as_str), Some("solution.cpp"));
    }

    #[test]
    fn every_rule_of_a_programs_files_is_an_rj_naming_it() {
        let cases = [
            (r#""files":[{"path":"../x","content":""}]"#, "files[0].path", "'..'"),
            (
                r#""files":[{"path":"/etc/x","content":""}]"#,
                "files[0].path",
                "not relative",
            ),
            (
                r#""files":[{"path":"a/../../x","content":""}]"#,
                "files[0].path",
                "'..'",
            ),
            (r#""files":[{"path":"a\u0000b","content":""}]"#, "files[0].path", "NUL"),
            (
                r#""files":[{"path":"prog","content":""}]"#,
                "files[0].path",
                "scrc's own",
            ),
            (
                r#""files":[{"path":"x","content":""},{"path":"x","content":""}]"#,
                "files",
                "two files have the path \"x\"",
            ),
            (
                r#""files":[{"path":"main.py","content":""}]"#,
                "files",
                "two files have the path \"main.py\"",
            ),
            (
                r#""files":[{"path":"a","content":""},{"path":"a/b","content":""}]"#,
                "files",
                "needs it to be a directory",
            ),
            (
                r#""files":[{"path":"x","content":"!!","encoding":"base64"}]"#,
                "files[0].content",
                "not valid base64",
            ),
            (
                r#""files":[{"path":"x","content":"","encoding":"gzip"}]"#,
                "files[0].encoding",
                "\"gzip\"",
            ),
            (r#""files":[{"content":""}]"#, "files[0].path", "required"),
            (r#""files":"x""#, "files", "an array"),
            (r#""entry":"../main.py""#, "entry", "'..'"),
        ];
        for (fields, field, rule) in cases {
            let json = format!(r#"{{"language":"python","source":"print(1)",{fields}}}"#);
            let reason = rejection(&json);
            assert!(reason.contains(field) && reason.contains(rule), "{fields}: {reason}");
        }
        let missing_entry = rejection(r#"{"language":"python","files":[{"path":"lib.py","content":""}]}"#);
        assert!(
            missing_entry.contains("\"main.py\" is not among \"files\""),
            "{missing_entry}"
        );
        let named_missing =
            rejection(r#"{"language":"python","entry":"app.py","files":[{"path":"lib.py","content":""}]}"#);
        assert!(named_missing.contains("\"app.py\" is not among"), "{named_missing}");
        let binary_entry =
            rejection(r#"{"language":"python","files":[{"path":"main.py","content":"/w==","encoding":"base64"}]}"#);
        assert!(binary_entry.contains("not UTF-8"), "{binary_entry}");
        let nothing = rejection(r#"{"language":"python"}"#);
        assert!(nothing.contains("\"source\" is required, or \"files\""), "{nothing}");
    }

    #[test]
    fn a_checker_is_a_comparisons_name_or_a_program_of_its_own_files() {
        let named = script(r#"{"language":"python","source":"x","checker":"tokens"}"#);
        assert_eq!(named.checker, Checker::Compare(Comparison::Tokens));
        let program = script(
            r##"{"language":"python","source":"x","checker":{"language":"cpp",
                "source":"#include \"testlib.h\"\nint main(){}","files":[{"path":"testlib.h","content":"//"}]}}"##,
        );
        let Checker::Program(checker) = &program.checker else {
            panic!("a program: {:?}", program.checker)
        };
        assert_eq!(checker.language, Language::Cpp);
        assert!(checker.source.as_str().starts_with("#include"));
        assert_eq!(checker.files[0].path.as_str(), "testlib.h");
        assert_eq!(program.files, [], "the checker's files are not the program's");
    }

    #[test]
    fn every_rule_of_checkers_points_and_groups_is_an_rj_naming_it() {
        let tests = r#""tests":[{"number":1},{"number":2},{"number":3}]"#;
        let cases = [
            (
                r#""checker":{"language":"cobol","source":"x"}"#,
                "unknown language \"cobol\"",
            ),
            (r#""checker":{"source":"x"}"#, "field \"checker.language\" is required"),
            (r#""checker":7"#, "field \"checker\" must be a string or an object"),
            (r#""checker":"diff""#, "unknown checker \"diff\""),
            (
                r#""checker":{"language":"cpp","source":"x","files":[{"path":"/etc/testlib.h","content":""}]}"#,
                "checker: field \"files[0].path\": path \"/etc/testlib.h\" is not relative",
            ),
            (
                r#""checker":{"language":"cpp","source":"x","files":[{"path":"../testlib.h","content":""}]}"#,
                "checker: field \"files[0].path\": path \"../testlib.h\" has an empty, '.' or '..' component",
            ),
            (
                r#""checker":{"language":"cpp","source":"x","files":[{"path":"a.h","content":""},{"path":"a.h","content":""}]}"#,
                "checker: field \"files\": two files have the path \"a.h\"",
            ),
            (
                r#""checker":{"language":"cpp","source":"x","entry":"check.cpp"}"#,
                "\"checker.entry\" is not supported",
            ),
            (
                r#""groups":[{"name":"a","tests":[4]}]"#,
                "group \"a\" names test 4, which the script does not have",
            ),
            (
                r#""groups":[{"name":"a","tests":[1]},{"name":"b","tests":[1,2]}]"#,
                "test 1 is in groups \"a\" and \"b\"",
            ),
            (
                r#""groups":[{"name":"a","tests":[1],"depends_on":["b"]},{"name":"b","tests":[2],"depends_on":["a"]}]"#,
                "field \"groups\": groups depend on each other in a cycle: a -> b -> a",
            ),
            (
                r#""groups":[{"name":"a","tests":[1],"depends_on":["z"]}]"#,
                "group \"a\" depends on \"z\", which is not a group of the script",
            ),
            (
                r#""groups":[{"name":"a","tests":[1],"points":-5}]"#,
                "field \"groups[0].points\": points must be a number from 0 to 1e9, got -5",
            ),
            (
                r#""groups":[{"name":"a","tests":["1"]}]"#,
                "field \"groups[0].tests\" must be an array of test numbers",
            ),
            (r#""groups":[{"tests":[1]}]"#, "field \"groups[0].name\" is required"),
            (r#""groups":{"a":[1]}"#, "field \"groups\" must be an array"),
            (
                r#""checker":{"language":"python","source":"x"},"float_tolerance":0.1"#,
                "\"float_tolerance\" is for the float comparison",
            ),
        ];
        for (fields, rule) in cases {
            let json = format!(r#"{{"language":"python","source":"print(1)",{tests},{fields}}}"#);
            let reason = rejection(&json);
            assert!(reason.contains(rule), "{fields}: {reason}");
        }
        let negative = rejection(r#"{"language":"python","source":"x","tests":[{"points":-1}]}"#);
        assert_eq!(
            negative,
            "field \"tests[0].points\": points must be a number from 0 to 1e9, got -1"
        );
        let text = rejection(r#"{"language":"python","source":"x","tests":[{"points":"2"}]}"#);
        assert_eq!(text, "field \"tests[0].points\" must be a number, got \"2\"");
        let checker_files = |count: usize| {
            let list: Vec<String> = (0..count)
                .map(|i| format!(r#"{{"path":"f{i}.h","content":""}}"#))
                .collect();
            format!(
                r#"{{"language":"python","source":"x","checker":{{"language":"cpp","source":"x","files":[{}]}}}}"#,
                list.join(",")
            )
        };
        assert!(matches!(parse(&checker_files(63)), Ok(Inbound::Script(_))));
        let too_many = rejection(&checker_files(64));
        assert!(too_many.starts_with("checker: field \"files\": 65 files"), "{too_many}");
    }

    #[test]
    fn tests_carry_points_and_groups_their_numbers() {
        let scored = script(
            r#"{"language":"python","source":"x","tests":[{"number":3,"points":2.5},{"number":7}],
                "groups":[{"name":"all","tests":[3,7],"points":40,"depends_on":[]}]}"#,
        );
        assert_eq!(scored.tests[0].points, Some(Points::new(2.5).unwrap()));
        assert_eq!(scored.tests[1].points, None);
        let group = scored.groups.iter().next().expect("one group");
        assert_eq!(
            (group.name.as_str(), group.tests.as_slice(), group.points.get()),
            ("all", &[3, 7][..], 40.0)
        );
        assert!(scored.is_scored());
        assert!(!script(r#"{"language":"python","source":"x","tests":[{}]}"#).is_scored());
    }

    #[test]
    fn a_programs_files_are_bounded_in_number() {
        let files = |count: usize| {
            let list: Vec<String> = (0..count)
                .map(|i| format!(r#"{{"path":"f{i}","content":""}}"#))
                .collect();
            format!(
                r#"{{"language":"python","source":"print(1)","files":[{}]}}"#,
                list.join(",")
            )
        };
        let limits = MessageLimits {
            max_bytes: 1 << 20,
            max_files: 4,
        };
        let parse_with = |json: &str| parse_message(Some(json.as_bytes()), None, None, at(), limits);
        assert!(
            matches!(parse_with(&files(3)), Ok(Inbound::Script(_))),
            "3 files and the source: 4"
        );
        let Ok(Inbound::Rejected { reason, .. }) = parse_with(&files(4)) else {
            panic!("five files are refused");
        };
        assert!(
            reason.contains("5 files, over the limit of 4 (RUNNER_MAX_FILES)"),
            "{reason}"
        );
        // Decoded files never outgrow the message they came in (text and base64 both shrink): the decoded bound
        // (`check_tree`, tested in the domain) holds for every message that is read at all.
    }

    #[test]
    fn io_names_files_in_the_working_directory() {
        let both =
            script(r#"{"language":"python","source":"x","io":{"input_file":"input.txt","output_file":"output.txt"}}"#);
        assert_eq!(both.io.input_file.as_ref().map(IoName::as_str), Some("input.txt"));
        assert_eq!(both.io.output_file.as_ref().map(IoName::as_str), Some("output.txt"));
        let alone = script(r#"{"language":"python","source":"x","io":{"output_file":"out"}}"#);
        assert_eq!(alone.io.input_file, None);
        for (io, rule) in [
            (r#"{"input_file":"../x"}"#, "io.input_file"),
            (r#"{"output_file":"a/b"}"#, "io.output_file"),
            (r#"{"output_file":""}"#, "io.output_file"),
            (r#"{"input_file":3}"#, "io.input_file"),
            (r#"{"input_file":"same","output_file":"same"}"#, "io.output_file"),
            (r#""x""#, "\"io\" must be an object"),
        ] {
            let reason = rejection(&format!(r#"{{"language":"python","source":"x","io":{io}}}"#));
            assert!(reason.contains(rule), "{io}: {reason}");
        }
    }

    #[test]
    fn a_cpu_time_limit_is_read_beside_the_wall_limit() {
        let limited = script(r#"{"language":"c","source":"x","limits":{"cpu_time_limit_ms":1500}}"#);
        assert_eq!(limited.limits.cpu_time, Some(Duration::from_millis(1500)));
        assert_eq!(limited.limits.time, None);
        let reason = rejection(r#"{"language":"c","source":"x","limits":{"cpu_time_limit_ms":-1}}"#);
        assert!(
            reason.contains("limits.cpu_time_limit_ms") && reason.contains("negative"),
            "{reason}"
        );
        let reason = rejection(r#"{"language":"c","source":"x","limits":{"cpu_time_limit_ms":"1s"}}"#);
        assert!(reason.contains("limits.cpu_time_limit_ms"), "{reason}");
    }

    #[test]
    fn minimal_message_takes_defaults_and_zero_limits_mean_default() {
        let Ok(Inbound::Script(script)) =
            parse(r#"{"language":"python","source":"print(1)","limits":{"time_limit_ms":0}}"#)
        else {
            panic!()
        };
        assert_eq!(
            script.id.as_str(),
            "scripts:2:41",
            "no id and no key: topic:partition:offset"
        );
        assert_eq!(script.limits, RequestedLimits::default());
        assert!(script.tests.is_empty());
    }

    #[test]
    fn id_falls_back_to_the_key() {
        let parsed = parse_message(
            Some(br#"{"language":"go","source":"x"}"#),
            Some(b"k-1"),
            None,
            at(),
            MAX,
        );
        let Ok(Inbound::Script(script)) = parsed else { panic!() };
        assert_eq!(script.id.as_str(), "k-1");
        let parsed = parse_message(
            Some(br#"{"id":"","language":"go","source":"x"}"#),
            Some(b"k-2"),
            None,
            at(),
            MAX,
        );
        let Ok(Inbound::Script(script)) = parsed else { panic!() };
        assert_eq!(script.id.as_str(), "k-2", "an empty id counts as absent, as in SCRC");
    }

    fn with_header(json: &str, header: Option<&[u8]>) -> Result<Inbound<()>, Unreadable> {
        parse_message(Some(json.as_bytes()), None, header, at(), MAX)
    }

    fn tenant_of(parsed: Result<Inbound<()>, Unreadable>) -> Option<String> {
        match parsed {
            Ok(Inbound::Script(script)) => script.tenant.map(|tenant| tenant.to_string()),
            other => panic!("expected a script, got {other:?}"),
        }
    }

    fn rejected_for(parsed: Result<Inbound<()>, Unreadable>) -> String {
        match parsed {
            Ok(Inbound::Rejected { reason, language, .. }) => {
                assert_eq!(language, Some(Language::Go), "the rejection keeps the language");
                reason
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    const GO: &str = r#"{"language":"go","source":"x"}"#;

    #[test]
    fn a_script_without_tenant_field_or_header_has_none() {
        assert_eq!(tenant_of(with_header(GO, None)), None);
        assert_eq!(
            tenant_of(with_header(r#"{"language":"go","source":"x","tenant":null}"#, None)),
            None,
            "null means absent, as for every optional field"
        );
    }

    #[test]
    fn the_tenant_comes_from_the_field_or_else_the_header() {
        let json = r#"{"language":"go","source":"x","tenant":"acme"}"#;
        assert_eq!(tenant_of(with_header(json, None)).as_deref(), Some("acme"));
        assert_eq!(tenant_of(with_header(GO, Some(b"globex"))).as_deref(), Some("globex"));
        assert_eq!(
            tenant_of(with_header(json, Some(b"globex"))).as_deref(),
            Some("acme"),
            "the field wins over the header"
        );
        assert_eq!(
            tenant_of(with_header(json, Some(b""))).as_deref(),
            Some("acme"),
            "a header the field overrides is not checked"
        );
        let longest = "t".repeat(128);
        let json = format!(r#"{{"language":"go","source":"x","tenant":"{longest}"}}"#);
        assert_eq!(tenant_of(with_header(&json, None)), Some(longest));
    }

    #[test]
    fn an_invalid_tenant_field_is_rejected_naming_the_rule() {
        let reason = rejected_for(with_header(
            r#"{"language":"go","source":"x","tenant":""}"#,
            Some(b"globex"),
        ));
        assert_eq!(
            reason,
            "field \"tenant\" is invalid: a tenant cannot be empty; a tenant is 1 to 128 bytes of UTF-8"
        );
        let long = "t".repeat(129);
        let reason = rejected_for(with_header(
            &format!(r#"{{"language":"go","source":"x","tenant":"{long}"}}"#),
            None,
        ));
        assert_eq!(
            reason,
            "field \"tenant\" is invalid: a tenant is 129 bytes, over the limit of 128 bytes; \
             a tenant is 1 to 128 bytes of UTF-8"
        );
        let reason = rejected_for(with_header(r#"{"language":"go","source":"x","tenant":7}"#, None));
        assert_eq!(reason, "field \"tenant\" must be a string, got 7");
    }

    #[test]
    fn an_invalid_tenant_header_is_rejected_naming_the_rule() {
        assert_eq!(
            rejected_for(with_header(GO, Some(b""))),
            "header \"tenant\" is invalid: a tenant cannot be empty; a tenant is 1 to 128 bytes of UTF-8"
        );
        assert_eq!(
            rejected_for(with_header(GO, Some(&[b'h'; 129]))),
            "header \"tenant\" is invalid: a tenant is 129 bytes, over the limit of 128 bytes; \
             a tenant is 1 to 128 bytes of UTF-8"
        );
        assert_eq!(
            rejected_for(with_header(GO, Some(&[0xff, 0xfe]))),
            "header \"tenant\" is not UTF-8; a tenant is 1 to 128 bytes of UTF-8"
        );
    }

    #[test]
    fn a_done_message_ignores_the_tenant_header() {
        assert_eq!(with_header(r#"{"type":"done"}"#, Some(&[0xff])), Ok(Inbound::Done));
    }

    #[test]
    fn done_messages_are_recognised() {
        assert_eq!(parse(r#"{"type":"done"}"#), Ok(Inbound::Done));
    }

    #[test]
    fn invalid_fields_are_rejected_with_the_field_and_value() {
        assert!(rejection(r#"{"language":"cobol","source":"x"}"#).contains("unknown language \"cobol\""));
        assert!(rejection(r#"{"language":"c"}"#).contains("field \"source\" is required"));
        assert!(rejection(r#"{"source":"x"}"#).contains("field \"language\" is required"));
        assert!(rejection(r#"{"language":"c","source":"  "}"#).contains("source is empty"));
        assert_eq!(
            rejection(r#"{"language":"c","source":"x","limits":{"time_limit_ms":-5}}"#),
            "field \"limits.time_limit_ms\" must not be negative, got -5"
        );
        assert_eq!(
            rejection(r#"{"language":"c","source":"x","limits":{"memory_limit_bytes":"64m"}}"#),
            "field \"limits.memory_limit_bytes\" must be a non-negative integer, got \"64m\""
        );
        assert_eq!(
            rejection(r#"{"language":"c","source":"x","limits":{"time_limit_ms":1.5}}"#),
            "field \"limits.time_limit_ms\" must be an integer, got 1.5"
        );
        assert_eq!(
            rejection(r#"{"language":5,"source":"x"}"#),
            "field \"language\" must be a string, got 5"
        );
        assert_eq!(
            rejection(r#"{"language":"c","source":"x","tests":[{"input":7}]}"#),
            "field \"tests[0].input\" must be a string, got 7"
        );
        assert_eq!(
            rejection(r#"{"language":"c","source":"x","tests":{}}"#),
            "field \"tests\" must be an array, got an object"
        );
        assert!(rejection(r#"{"type":"exec","language":"c","source":"x"}"#).contains("unknown message type \"exec\""));
        assert!(rejection(r#"{"language":"c","source":"x","checker":"diff"}"#).contains("unknown checker"));
        assert!(rejection(r#"{"id":7,"language":"c","source":"x"}"#).contains("field \"id\" must be a string"));
    }

    #[test]
    fn an_id_over_the_limit_is_rejected_naming_the_limit_under_a_usable_id() {
        let huge = "i".repeat(300_000);
        let json = format!(r#"{{"id":"{huge}","language":"c","source":"x"}}"#);
        let parsed = parse_message(Some(json.as_bytes()), Some(b"key-9"), None, at(), MAX);
        let Ok(Inbound::Rejected { id, reason, .. }) = parsed else {
            panic!("expected a rejection")
        };
        assert_eq!(reason, "field \"id\" is 300000 bytes, over the limit of 256 bytes");
        assert_eq!(id.as_str(), "key-9", "the RJ result goes out under the key");
        let Ok(Inbound::Rejected { id, .. }) = parse(&json) else {
            panic!("expected a rejection")
        };
        assert_eq!(id.as_str(), "scripts:2:41", "or under the coordinates");

        let longest = "i".repeat(256);
        let json = format!(r#"{{"id":"{longest}","language":"c","source":"x"}}"#);
        let Ok(Inbound::Script(script)) = parse(&json) else {
            panic!("256 bytes is within the limit")
        };
        assert_eq!(script.id.as_str(), longest);
    }

    #[test]
    fn a_key_over_the_limit_never_becomes_an_id() {
        let key = vec![b'k'; 1000];
        let parsed = parse_message(Some(br#"{"language":"go","source":"x"}"#), Some(&key), None, at(), MAX);
        let Ok(Inbound::Script(script)) = parsed else { panic!() };
        assert_eq!(script.id.as_str(), "scripts:2:41");
        let error = parse_message(Some(b"{oops"), Some(&key), None, at(), MAX).unwrap_err();
        assert_eq!(error.id, None, "no RJ result under an id that could never be published");
    }

    #[test]
    fn a_coordinates_id_of_a_long_topic_name_still_fits() {
        let topic = "t".repeat(249);
        let at = Coordinates {
            topic: &topic,
            partition: i32::MAX,
            offset: i64::MAX,
        };
        let Ok(Inbound::Script(script)) =
            parse_message(Some(br#"{"language":"go","source":"x"}"#), None, None, at, MAX)
        else {
            panic!()
        };
        assert!(script.id.as_str().len() <= ScriptId::MAX_BYTES);
        assert!(script.id.as_str().ends_with(":2147483647:9223372036854775807"));
    }

    #[test]
    fn rejections_keep_the_id_and_the_language_when_known() {
        let parsed = parse(r#"{"id":"r1","language":"java","source":""}"#);
        let Ok(Inbound::Rejected { id, language, .. }) = parsed else {
            panic!()
        };
        assert_eq!(id.as_str(), "r1");
        assert_eq!(language, Some(Language::Java));
    }

    #[test]
    fn unreadable_messages_say_why_and_take_the_id_from_the_key() {
        let error = parse_message(Some(b"{oops"), Some(b"key-7"), None, at(), MAX).unwrap_err();
        assert!(
            error.reason.starts_with("the message is not valid JSON"),
            "{}",
            error.reason
        );
        assert_eq!(error.id.map(|id| id.to_string()), Some("key-7".into()));

        let error = parse_message(Some(b"[1,2]"), None, None, at(), MAX).unwrap_err();
        assert_eq!(error.reason, "the message is JSON but not an object (got an array)");
        assert_eq!(error.id, None);

        let error = parse_message(
            Some(&[b' '; 11]),
            None,
            None,
            at(),
            MessageLimits { max_bytes: 10, ..MAX },
        )
        .unwrap_err();
        assert_eq!(error.reason, "the message is 11 bytes, over the limit of 10 bytes");

        let error = parse_message(None, None, None, at(), MAX).unwrap_err();
        assert_eq!(error.reason, "the message has no payload");
    }

    /// A script message as SCRC producers write it, for the round-trip proptest to generate: the runner itself
    /// never deserializes into a struct, it reads field by field to name the bad field in its rejection.
    #[derive(Debug, Clone, Serialize)]
    struct ScriptMessage {
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        language: String,
        source: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        limits: Option<LimitsMessage>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tests: Vec<TestMessage>,
        #[serde(skip_serializing_if = "Option::is_none")]
        checker: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        float_tolerance: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        run_all_tests: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    }

    /// The `limits` object of a [`ScriptMessage`]; signed, so that a generator could send negative limits.
    #[derive(Debug, Clone, Serialize)]
    struct LimitsMessage {
        time_limit_ms: i64,
        memory_limit_bytes: i64,
    }

    /// One entry of a [`ScriptMessage`]'s `tests`; a number of 0 or less stands for an absent one.
    #[derive(Debug, Clone, Serialize)]
    struct TestMessage {
        number: i64,
        input: String,
        expected_output: String,
    }

    fn script_message() -> impl Strategy<Value = ScriptMessage> {
        let text = "\\PC{0,30}";
        (
            proptest::option::of("[a-zA-Z0-9_.:-]{1,20}"),
            prop_oneof![Just("python"), Just("go"), Just("c"), Just("cpp"), Just("java")],
            "[a-z(){};\\n ]{0,20}[a-z]",
            proptest::option::of((0i64..100_000, 0i64..(1 << 32))),
            proptest::collection::vec((-3i64..50, text, text), 0..5),
            proptest::option::of(prop_oneof![Just("exact"), Just("lines"), Just("tokens"), Just("float")]),
            proptest::option::of(any::<bool>()),
            proptest::option::of("[a-zA-Z0-9_.-]{1,20}"),
        )
            .prop_map(
                |(id, language, source, limits, tests, checker, run_all_tests, tenant)| ScriptMessage {
                    kind: None,
                    id,
                    language: language.to_owned(),
                    source,
                    limits: limits.map(|(time_limit_ms, memory_limit_bytes)| LimitsMessage {
                        time_limit_ms,
                        memory_limit_bytes,
                    }),
                    tests: tests
                        .into_iter()
                        .map(|(number, input, expected_output)| TestMessage {
                            number,
                            input,
                            expected_output,
                        })
                        .collect(),
                    checker: checker.map(str::to_owned),
                    float_tolerance: None,
                    run_all_tests,
                    tenant,
                },
            )
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(
            payload in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256)),
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
            tenant in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
            max in 0usize..300,
        ) {
            let _ = parse_message(payload.as_deref(), key.as_deref(), tenant.as_deref(), at(), MessageLimits { max_bytes: max, ..MAX });
        }

        #[test]
        fn parsing_arbitrary_json_values_never_panics(value in arbitrary_json()) {
            let bytes = serde_json::to_vec(&value).unwrap();
            let _ = parse_message(Some(&bytes), None, None, at(), MAX);
        }

        #[test]
        fn a_script_message_survives_a_serialize_parse_round_trip(message in script_message()) {
            let bytes = serde_json::to_vec(&message).unwrap();
            let Ok(Inbound::Script(script)) = parse_message(Some(&bytes), None, None, at(), MAX) else {
                return Err(TestCaseError::fail(format!("did not parse: {}", String::from_utf8_lossy(&bytes))));
            };
            let expected_id = message.id.clone().unwrap_or_else(|| "scripts:2:41".into());
            prop_assert_eq!(script.id.as_str(), expected_id.as_str());
            prop_assert_eq!(script.language.as_str(), message.language.as_str());
            prop_assert_eq!(script.source.as_str(), message.source.as_str());
            prop_assert_eq!(script.checker.name(), message.checker.as_deref().unwrap_or("exact"));
            prop_assert_eq!(script.run_all_tests, message.run_all_tests.unwrap_or(false));
            prop_assert_eq!(script.tenant.as_ref().map(|t| t.as_str()), message.tenant.as_deref());
            let limits = message.limits.clone().unwrap_or(LimitsMessage { time_limit_ms: 0, memory_limit_bytes: 0 });
            prop_assert_eq!(script.limits.time.map(|t| t.as_millis() as i64).unwrap_or(0), limits.time_limit_ms);
            prop_assert_eq!(script.limits.memory.map(|m| m as i64).unwrap_or(0), limits.memory_limit_bytes);
            prop_assert_eq!(script.tests.len(), message.tests.len());
            for (index, (parsed, sent)) in script.tests.iter().zip(&message.tests).enumerate() {
                let number = if sent.number > 0 { sent.number } else { index as i64 + 1 };
                prop_assert_eq!(i64::from(parsed.number), number);
                prop_assert_eq!(&parsed.input, &sent.input);
                prop_assert_eq!(&parsed.expected_output, &sent.expected_output);
            }
        }
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            prop_oneof![
                Just("python"),
                Just("c"),
                Just("done"),
                Just("script"),
                Just("float"),
                Just("x")
            ]
            .prop_map(Value::from),
            "\\PC{0,10}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(
                    (
                        prop_oneof![
                            Just("type".to_owned()),
                            Just("id".to_owned()),
                            Just("language".to_owned()),
                            Just("source".to_owned()),
                            Just("limits".to_owned()),
                            Just("time_limit_ms".to_owned()),
                            Just("memory_limit_bytes".to_owned()),
                            Just("tests".to_owned()),
                            Just("number".to_owned()),
                            Just("input".to_owned()),
                            Just("checker".to_owned()),
                            Just("float_tolerance".to_owned()),
                            Just("run_all_tests".to_owned()),
                            Just("tenant".to_owned()),
                        ],
                        inner
                    ),
                    0..6
                )
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }
}
