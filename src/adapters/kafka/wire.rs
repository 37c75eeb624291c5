//! SCRC's wire format: script messages in, result messages out.
//!
//! Parsing is total: any bytes become either an [`Inbound`] value or an [`Unreadable`] reason, never a panic. A
//! message that is JSON but wrong (a bad field type, an unknown language, a negative limit) is *readable* and gets
//! an RJ result naming the field and the value; only bytes that are not a JSON object of acceptable size are
//! unreadable and go to the dead-letter topic.
//!
//! Results carry every SCRC field under its SCRC name. Additions are optional fields only. Output is raw bytes in
//! the domain; on the wire it becomes a UTF-8 string (invalid sequences replaced by U+FFFD, NUL escaped as
//! `\u0000` by JSON itself), and when the bytes were not valid UTF-8 the exact bytes also travel base64-encoded in
//! `stdout_base64` / `stderr_base64`. A result that would exceed the broker's message size has its largest text
//! fields shortened, marked with `"truncated": true`.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::{Checker, Language, RequestedLimits, RunReport, Script, ScriptId, Source, TestCase, TestResult};
use crate::ports::Inbound;

/// Where a message came from, for the fallback id `topic:partition:offset`.
#[derive(Debug, Clone, Copy)]
pub struct Coordinates<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Why a message could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unreadable {
    pub reason: String,
    /// The id the message key gives, when it gives one.
    pub id: Option<ScriptId>,
}

/// Classifies a message. `Err` means unreadable: dead-letter it.
///
/// # Errors
/// [`Unreadable`] for a missing payload, a payload over `max_bytes`, invalid JSON or JSON that is not an object.
pub fn parse_message(
    payload: Option<&[u8]>,
    key: Option<&[u8]>,
    at: Coordinates<'_>,
    max_bytes: usize,
) -> Result<Inbound, Unreadable> {
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
    match read_script(&object, &id) {
        Ok(Message::Script(script)) => Ok(Inbound::Script(script)),
        Ok(Message::Done) => Ok(Inbound::Done),
        Err(rejection) => Ok(reject(rejection.reason, rejection.language)),
    }
}

enum Message {
    Script(Script),
    Done,
}

struct Rejection {
    reason: String,
    language: Option<Language>,
}

impl From<String> for Rejection {
    fn from(reason: String) -> Self {
        Self { reason, language: None }
    }
}

fn read_script(object: &Map<String, Value>, id: &ScriptId) -> Result<Message, Rejection> {
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
    let source = optional_string(object, "source")
        .map_err(with_language)?
        .ok_or_else(|| with_language(missing("source")))?;
    let source = Source::new(source).map_err(|e| with_language(e.to_string()))?;
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
    let checker = match optional_string(object, "checker").map_err(with_language)? {
        None => Checker::from_wire("exact", tolerance),
        Some(name) => Checker::from_wire(name, tolerance),
    }
    .map_err(|e| with_language(e.to_string()))?;
    let run_all_tests = match object.get("run_all_tests") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(value) => return Err(with_language(type_error("run_all_tests", "a boolean", value))),
    };
    Ok(Message::Script(Script {
        id: id.clone(),
        language,
        source,
        limits,
        tests,
        checker,
        run_all_tests,
    }))
}

fn read_limits(object: &Map<String, Value>) -> Result<RequestedLimits, String> {
    let limits = match object.get("limits") {
        None | Some(Value::Null) => return Ok(RequestedLimits::default()),
        Some(Value::Object(limits)) => limits,
        Some(value) => return Err(type_error("limits", "an object", value)),
    };
    let time = non_negative(limits, "limits.time_limit_ms", "time_limit_ms")?;
    let memory = non_negative(limits, "limits.memory_limit_bytes", "memory_limit_bytes")?;
    Ok(RequestedLimits {
        time: time.filter(|&ms| ms > 0).map(Duration::from_millis),
        memory: memory.filter(|&bytes| bytes > 0),
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

/// A script message as SCRC producers write it. Used by tests and tools to produce messages; the runner itself
/// parses with [`parse_message`] for field-by-field errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptMessage {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub language: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsMessage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub float_tolerance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_all_tests: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsMessage {
    #[serde(default)]
    pub time_limit_ms: i64,
    #[serde(default)]
    pub memory_limit_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestMessage {
    #[serde(default)]
    pub number: i64,
    #[serde(default)]
    pub input: String,
    #[serde(default)]
    pub expected_output: String,
}

/// The result message: SCRC's fields first, then scrc's optional additions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultMessage {
    pub id: String,
    pub status: String,
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub duration_ms: Option<u64>,
    pub error: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestResultMessage>,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_time_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_base64: Option<String>,
    /// The runner instance that judged the script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    /// Text fields were shortened to fit the broker's message size.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResultMessage {
    pub number: u32,
    pub status: String,
    pub exit_code: Option<i32>,
    pub duration_ms: Option<u64>,
    pub stdout: String,
    pub stderr: String,
    pub input: String,
    pub expected_output: String,
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_time_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_base64: Option<String>,
}

/// The report does not fit in `max_bytes` even with every text field emptied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the result needs {needed} bytes even when truncated, over the limit of {limit} bytes")]
pub struct ReportTooLarge {
    pub needed: usize,
    pub limit: usize,
}

/// Encodes a report as a result message of at most `max_bytes` bytes, shortening text fields when needed.
///
/// # Errors
/// [`ReportTooLarge`] when even the shortest form is over `max_bytes`.
pub fn encode_report(
    report: &RunReport,
    runner: &str,
    timestamp: SystemTime,
    max_bytes: usize,
) -> Result<Vec<u8>, ReportTooLarge> {
    let mut message = result_message(report, runner, timestamp);
    let mut encoded = to_json(&message);
    if encoded.len() <= max_bytes {
        return Ok(encoded);
    }
    message.truncated = true;
    drop_base64(&mut message);
    // Halve the room for each text field until the message fits. The loop ends: at cap 0 every text field is
    // reduced to its marker.
    let mut cap = max_bytes / 2;
    loop {
        let mut shortened = message.clone();
        for field in text_fields(&mut shortened) {
            shorten(field, cap);
        }
        encoded = to_json(&shortened);
        if encoded.len() <= max_bytes {
            return Ok(encoded);
        }
        if cap == 0 {
            return Err(ReportTooLarge {
                needed: encoded.len(),
                limit: max_bytes,
            });
        }
        cap /= 2;
    }
}

fn result_message(report: &RunReport, runner: &str, timestamp: SystemTime) -> ResultMessage {
    let (stdout, stdout_base64) = encode_output(&report.stdout);
    let (stderr, stderr_base64) = encode_output(&report.stderr);
    ResultMessage {
        id: report.id.as_str().to_owned(),
        status: report.status.code().to_owned(),
        exit_code: report.exit_code,
        stdout,
        stderr,
        duration_ms: report.duration.map(millis),
        error: report.error.clone(),
        tests: report.tests.iter().map(test_message).collect(),
        timestamp: humantime::format_rfc3339_millis(timestamp).to_string(),
        language: report.language.map(|language| language.as_str().to_owned()),
        cpu_time_ms: report.cpu_time.map(millis),
        memory_peak_bytes: report.memory_peak,
        stdout_base64,
        stderr_base64,
        runner: (!runner.is_empty()).then(|| runner.to_owned()),
        truncated: false,
    }
}

fn test_message(test: &TestResult) -> TestResultMessage {
    let (stdout, stdout_base64) = encode_output(&test.stdout);
    let (stderr, stderr_base64) = encode_output(&test.stderr);
    TestResultMessage {
        number: test.number,
        status: test.status.code().to_owned(),
        exit_code: test.exit_code,
        duration_ms: test.duration.map(millis),
        stdout,
        stderr,
        input: test.input.clone(),
        expected_output: test.expected_output.clone(),
        error: test.error.clone(),
        signal: test.signal,
        cpu_time_ms: test.cpu_time.map(millis),
        memory_peak_bytes: test.memory_peak,
        stdout_base64,
        stderr_base64,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Output as text, plus its exact bytes in base64 when the text had to replace invalid UTF-8.
fn encode_output(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), None),
        Err(_) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    }
}

fn drop_base64(message: &mut ResultMessage) {
    message.stdout_base64 = None;
    message.stderr_base64 = None;
    for test in &mut message.tests {
        test.stdout_base64 = None;
        test.stderr_base64 = None;
    }
}

fn text_fields(message: &mut ResultMessage) -> Vec<&mut String> {
    let mut fields = vec![&mut message.stdout, &mut message.stderr, &mut message.error];
    for test in &mut message.tests {
        fields.extend([
            &mut test.stdout,
            &mut test.stderr,
            &mut test.input,
            &mut test.expected_output,
            &mut test.error,
        ]);
    }
    fields
}

fn shorten(text: &mut String, cap: usize) {
    if text.len() <= cap {
        return;
    }
    let removed = text.len() - cap;
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("…[{removed} bytes truncated]"));
}

fn to_json(message: &ResultMessage) -> Vec<u8> {
    // Serializing plain strings and numbers cannot fail.
    serde_json::to_vec(message).unwrap_or_else(|_| unreachable!("a result message always serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Execution, Exit, Status, Verdict};
    use proptest::prelude::*;
    use serde_json::json;

    const MAX: usize = 1 << 20;

    fn at() -> Coordinates<'static> {
        Coordinates {
            topic: "scripts",
            partition: 2,
            offset: 41,
        }
    }

    fn parse(json: &str) -> Result<Inbound, Unreadable> {
        parse_message(Some(json.as_bytes()), None, at(), MAX)
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
        assert_eq!(script.checker, Checker::Exact);
        assert!(!script.run_all_tests);
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
        let parsed = parse_message(Some(br#"{"language":"go","source":"x"}"#), Some(b"k-1"), at(), MAX);
        let Ok(Inbound::Script(script)) = parsed else { panic!() };
        assert_eq!(script.id.as_str(), "k-1");
        let parsed = parse_message(
            Some(br#"{"id":"","language":"go","source":"x"}"#),
            Some(b"k-2"),
            at(),
            MAX,
        );
        let Ok(Inbound::Script(script)) = parsed else { panic!() };
        assert_eq!(script.id.as_str(), "k-2", "an empty id counts as absent, as in SCRC");
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
        let parsed = parse_message(Some(json.as_bytes()), Some(b"key-9"), at(), MAX);
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
        let parsed = parse_message(Some(br#"{"language":"go","source":"x"}"#), Some(&key), at(), MAX);
        let Ok(Inbound::Script(script)) = parsed else { panic!() };
        assert_eq!(script.id.as_str(), "scripts:2:41");
        let error = parse_message(Some(b"{oops"), Some(&key), at(), MAX).unwrap_err();
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
        let Ok(Inbound::Script(script)) = parse_message(Some(br#"{"language":"go","source":"x"}"#), None, at, MAX)
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
        let error = parse_message(Some(b"{oops"), Some(b"key-7"), at(), MAX).unwrap_err();
        assert!(
            error.reason.starts_with("the message is not valid JSON"),
            "{}",
            error.reason
        );
        assert_eq!(error.id.map(|id| id.to_string()), Some("key-7".into()));

        let error = parse_message(Some(b"[1,2]"), None, at(), MAX).unwrap_err();
        assert_eq!(error.reason, "the message is JSON but not an object (got an array)");
        assert_eq!(error.id, None);

        let error = parse_message(Some(&[b' '; 11]), None, at(), 10).unwrap_err();
        assert_eq!(error.reason, "the message is 11 bytes, over the limit of 10 bytes");

        let error = parse_message(None, None, at(), MAX).unwrap_err();
        assert_eq!(error.reason, "the message has no payload");
    }

    fn execution(stdout: &[u8]) -> Execution {
        Execution {
            exit: Exit::Code(0),
            wall_time: Duration::from_millis(45),
            cpu_time: Some(Duration::from_millis(40)),
            memory_peak: Some(1 << 20),
            stdout: stdout.to_vec(),
            stderr: Vec::new(),
            timed_out: false,
            memory_exceeded: false,
            stalled_at_memory_limit: false,
            output_exceeded: false,
        }
    }

    fn suite_report(stdout: &[u8]) -> RunReport {
        let test = TestCase {
            number: 1,
            input: "2 3\n".into(),
            expected_output: "5\n".into(),
        };
        let verdict = Verdict {
            status: Status::Ok,
            detail: String::new(),
        };
        RunReport::suite(
            ScriptId::new("submission-456").unwrap(),
            Language::C,
            vec![TestResult::judged(&test, execution(stdout), verdict)],
        )
    }

    #[test]
    fn results_carry_every_scrc_field() {
        let encoded = encode_report(&suite_report(b"5\n"), "runner-1", SystemTime::UNIX_EPOCH, MAX).unwrap();
        let value: Value = serde_json::from_slice(&encoded).unwrap();
        for field in [
            "id",
            "status",
            "exit_code",
            "stdout",
            "stderr",
            "duration_ms",
            "error",
            "tests",
            "timestamp",
        ] {
            assert!(value.get(field).is_some(), "missing {field}");
        }
        for field in [
            "number",
            "status",
            "exit_code",
            "duration_ms",
            "stdout",
            "stderr",
            "input",
            "expected_output",
            "error",
        ] {
            assert!(value["tests"][0].get(field).is_some(), "missing tests[].{field}");
        }
        assert_eq!(value["status"], "OK");
        assert_eq!(value["tests"][0]["duration_ms"], 45);
        assert_eq!(value["tests"][0]["cpu_time_ms"], 40);
        assert_eq!(value["timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(value["runner"], "runner-1");
    }

    #[test]
    fn invalid_utf8_and_nul_give_valid_json_and_the_exact_bytes() {
        let raw = b"ok\x00\xff\xfe end";
        let encoded = encode_report(&suite_report(raw), "", SystemTime::UNIX_EPOCH, MAX).unwrap();
        let message: ResultMessage = serde_json::from_slice(&encoded).unwrap();
        assert_eq!(message.tests[0].stdout, "ok\u{0}\u{fffd}\u{fffd} end");
        let exact = base64::engine::general_purpose::STANDARD
            .decode(message.tests[0].stdout_base64.as_ref().unwrap())
            .unwrap();
        assert_eq!(exact, raw);
        let valid = encode_report(&suite_report(b"fine\0"), "", SystemTime::UNIX_EPOCH, MAX).unwrap();
        let message: ResultMessage = serde_json::from_slice(&valid).unwrap();
        assert_eq!(message.tests[0].stdout_base64, None, "valid UTF-8 needs no copy");
    }

    #[test]
    fn oversized_results_are_truncated_to_fit() {
        let huge = vec![b'x'; 3 << 20];
        let encoded = encode_report(&suite_report(&huge), "", SystemTime::UNIX_EPOCH, 100_000).unwrap();
        assert!(encoded.len() <= 100_000, "{} bytes", encoded.len());
        let message: ResultMessage = serde_json::from_slice(&encoded).unwrap();
        assert!(message.truncated);
        assert!(message.tests[0].stdout.ends_with("bytes truncated]"));
        assert_eq!(message.tests[0].expected_output, "5\n", "small fields are left alone");
    }

    /// A report exercising every encoding rule: script-level and test-level fields, output that is not UTF-8 (so
    /// with its base64 copy), a killed test, a test that did not run, and a CPU time the sandbox could not measure.
    fn full_report() -> RunReport {
        let case = |number: u32| TestCase {
            number,
            input: format!("in{number}\n"),
            expected_output: format!("out{number}\n"),
        };
        let ok = Verdict {
            status: Status::Ok,
            detail: String::new(),
        };
        let crashed = Verdict {
            status: Status::RuntimeError,
            detail: "killed by signal 11 (SIGSEGV)".into(),
        };
        let unmeasured = Execution {
            cpu_time: None,
            stderr: b"warn\n".to_vec(),
            ..execution(b"bad\xff\n")
        };
        let killed = Execution {
            exit: Exit::Signal(11),
            wall_time: Duration::from_millis(7),
            memory_peak: Some(2 << 20),
            stderr: vec![b'e'; 300],
            ..execution(b"")
        };
        RunReport::suite(
            ScriptId::new("full-1").unwrap(),
            Language::Python,
            vec![
                TestResult::judged(&case(1), unmeasured, ok),
                TestResult::judged(&case(2), killed, crashed),
                TestResult::not_run(&case(3)),
            ],
        )
    }

    /// The JSON is a compatibility contract (docs/schemas, README): this pins every field's name, value, presence
    /// and omission, so that a change to how results are encoded cannot change what consumers receive.
    #[test]
    fn the_encoded_json_of_a_full_report_is_exactly_the_contract() {
        let errors = "e".repeat(300);
        let encoded = encode_report(&full_report(), "runner-1", SystemTime::UNIX_EPOCH, MAX).unwrap();
        let expected = json!({
            "id": "full-1",
            "status": "RE",
            "exit_code": 139,
            "stdout": "bad\u{fffd}\n",
            "stderr": errors,
            "duration_ms": 52,
            "error": "test 2: killed by signal 11 (SIGSEGV)",
            "tests": [
                {
                    "number": 1,
                    "status": "OK",
                    "exit_code": 0,
                    "duration_ms": 45,
                    "stdout": "bad\u{fffd}\n",
                    "stderr": "warn\n",
                    "input": "in1\n",
                    "expected_output": "out1\n",
                    "error": "",
                    "memory_peak_bytes": 1_048_576,
                    "stdout_base64": "YmFk/wo=",
                },
                {
                    "number": 2,
                    "status": "RE",
                    "exit_code": 139,
                    "duration_ms": 7,
                    "stdout": "",
                    "stderr": errors,
                    "input": "in2\n",
                    "expected_output": "out2\n",
                    "error": "killed by signal 11 (SIGSEGV)",
                    "signal": 11,
                    "cpu_time_ms": 40,
                    "memory_peak_bytes": 2_097_152,
                },
                {
                    "number": 3,
                    "status": "-",
                    "exit_code": null,
                    "duration_ms": null,
                    "stdout": "",
                    "stderr": "",
                    "input": "in3\n",
                    "expected_output": "out3\n",
                    "error": "",
                },
            ],
            "timestamp": "1970-01-01T00:00:00.000Z",
            "language": "python",
            "memory_peak_bytes": 2_097_152,
            "stdout_base64": "YmFk/wo=",
            "runner": "runner-1",
        });
        assert_eq!(serde_json::from_slice::<Value>(&encoded).unwrap(), expected);

        // Over budget: no base64 copies, the long output shortened with its marker, `truncated` set.
        let encoded = encode_report(&full_report(), "", SystemTime::UNIX_EPOCH, 1000).unwrap();
        let shortened = format!("{}…[238 bytes truncated]", "e".repeat(62));
        let mut expected = expected;
        expected["stderr"] = json!(shortened);
        expected["tests"][1]["stderr"] = json!(shortened);
        expected["tests"][0].as_object_mut().unwrap().remove("stdout_base64");
        let top = expected.as_object_mut().unwrap();
        top.remove("stdout_base64");
        top.remove("runner");
        expected["truncated"] = json!(true);
        assert_eq!(serde_json::from_slice::<Value>(&encoded).unwrap(), expected);

        // Nothing ran: the measurements are null or left out, and so are the language and the tests.
        let rejected = RunReport::rejected(ScriptId::new("r-1").unwrap(), None, "unknown language".into());
        let encoded = encode_report(&rejected, "", SystemTime::UNIX_EPOCH, MAX).unwrap();
        let expected = json!({
            "id": "r-1",
            "status": "RJ",
            "exit_code": null,
            "stdout": "",
            "stderr": "",
            "duration_ms": null,
            "error": "unknown language",
            "timestamp": "1970-01-01T00:00:00.000Z",
        });
        assert_eq!(serde_json::from_slice::<Value>(&encoded).unwrap(), expected);
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
        )
            .prop_map(
                |(id, language, source, limits, tests, checker, run_all_tests)| ScriptMessage {
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
                },
            )
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(
            payload in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256)),
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
            max in 0usize..300,
        ) {
            let _ = parse_message(payload.as_deref(), key.as_deref(), at(), max);
        }

        #[test]
        fn parsing_arbitrary_json_values_never_panics(value in arbitrary_json()) {
            let bytes = serde_json::to_vec(&value).unwrap();
            let _ = parse_message(Some(&bytes), None, at(), MAX);
        }

        #[test]
        fn a_script_message_survives_a_serialize_parse_round_trip(message in script_message()) {
            let bytes = serde_json::to_vec(&message).unwrap();
            let Ok(Inbound::Script(script)) = parse_message(Some(&bytes), None, at(), MAX) else {
                return Err(TestCaseError::fail(format!("did not parse: {}", String::from_utf8_lossy(&bytes))));
            };
            let expected_id = message.id.clone().unwrap_or_else(|| "scripts:2:41".into());
            prop_assert_eq!(script.id.as_str(), expected_id.as_str());
            prop_assert_eq!(script.language.as_str(), message.language.as_str());
            prop_assert_eq!(script.source.as_str(), message.source.as_str());
            prop_assert_eq!(script.checker.name(), message.checker.as_deref().unwrap_or("exact"));
            prop_assert_eq!(script.run_all_tests, message.run_all_tests.unwrap_or(false));
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

        #[test]
        fn any_report_encodes_to_valid_json_within_budget(
            stdout in proptest::collection::vec(any::<u8>(), 0..2000),
            budget in 0usize..5000,
        ) {
            match encode_report(&suite_report(&stdout), "r", SystemTime::UNIX_EPOCH, budget) {
                Ok(encoded) => {
                    prop_assert!(encoded.len() <= budget, "{} > {}", encoded.len(), budget);
                    prop_assert!(serde_json::from_slice::<ResultMessage>(&encoded).is_ok());
                }
                Err(too_large) => {
                    prop_assert!(too_large.needed > budget);
                    prop_assert!(budget < 1000, "a one-test report always fits in 1000 bytes");
                }
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
