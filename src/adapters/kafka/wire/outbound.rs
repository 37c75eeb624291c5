//! Result messages out: a run report becomes the JSON SCRC consumers read.
//!
//! Results carry every SCRC field under its SCRC name. Additions are optional fields only. Output is raw bytes in
//! the domain; on the wire it becomes a UTF-8 string (invalid sequences replaced by U+FFFD, NUL escaped as
//! `\u0000` by JSON itself), and when the bytes were not valid UTF-8 the exact bytes also travel base64-encoded in
//! `stdout_base64` / `stderr_base64`. A result that would exceed the broker's message size has its largest text
//! fields shortened, marked with `"truncated": true`.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::domain::{GroupResult, OutputCut, RunReport, TestResult};

/// The result message: SCRC's fields first, then scrc's optional additions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultMessage {
    /// The script's id, also the record's key: consumers deduplicate results by it.
    pub id: String,
    /// The overall status code: `OK`, `WA`, `TL`, `ML`, `BF`, `RE`, `OL`, `IE` or `RJ`.
    pub status: String,
    /// The last test's output and the suite's measurements, or the single run's.
    #[serde(flatten)]
    pub output: OutputBlock,
    /// Why the status was given (the deciding test's reason, the RJ or IE cause); empty for OK.
    pub error: String,
    /// One entry per test of the script, in order; left out for a script without tests, as SCRC does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestResultMessage>,
    /// When the result was encoded, in RFC 3339 UTC with milliseconds (`2026-11-22T10:30:00.123Z`).
    pub timestamp: String,
    /// The script's language (an extension); left out when an RJ message named no supported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The runner instance that judged the script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    /// Text fields were shortened to fit the broker's message size.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The points the script earned (an extension): its groups' and its ungrouped tests'; 0 for RJ, BF and IE.
    #[serde(default)]
    pub score: f64,
    /// The points it could have earned: 1 per test unless the tests or groups say otherwise.
    #[serde(default)]
    pub max_score: f64,
    /// Each subtask group's outcome, in the script's order; left out for a script without `groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupMessage>,
}

/// One entry of a result's `groups`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMessage {
    /// The group's name, as the script gave it.
    pub name: String,
    /// `OK` when it earned all its points; else the first status among its tests that is not OK, or `-` when its
    /// tests passed but a group it depends on did not.
    pub status: String,
    /// The points it earned.
    pub score: f64,
    /// Its points.
    pub max_score: f64,
    /// Why it earned less than its points; left out when it earned them all.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// One entry of a result's `tests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResultMessage {
    /// The test's number: the producer's, or its 1-based position.
    pub number: u32,
    /// The test's status code, or `-` when an earlier test decided the verdict and this one did not run.
    pub status: String,
    /// The test's own run; its measurements are `null` or absent when it did not run.
    #[serde(flatten)]
    pub output: OutputBlock,
    /// The test's stdin, echoed back as SCRC does.
    pub input: String,
    /// What the test had to print, echoed back as SCRC does.
    pub expected_output: String,
    /// Why the test's status was given; empty for OK and `-`.
    pub error: String,
    /// The signal that killed the program (an extension), left out when it exited by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// What the test is worth (an extension): its `points`, 1 when the script gave none.
    #[serde(default)]
    pub points: f64,
    /// The points it earned: all for OK, a checker's fraction for a partly right answer, else 0.
    #[serde(default)]
    pub score: f64,
    /// The first line of the checker program's message, where one ran for this test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker_message: Option<String>,
}

/// What a run printed and what it cost, under the same names at the top of a result and in each of its tests.
/// SCRC's fields (`exit_code`, `duration_ms`, `stdout`, `stderr`) are always present, `null` when nothing ran;
/// scrc's additions are left out when unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputBlock {
    /// The program's exit code, 128 plus the signal when a signal killed it; `null` when nothing ran.
    pub exit_code: Option<i32>,
    /// The program's own run time in ms, measured inside the sandbox (a suite's is the sum); `null` when nothing ran.
    pub duration_ms: Option<u64>,
    /// What the program printed on stdout as UTF-8 text, cut at the output limit; invalid bytes become U+FFFD.
    pub stdout: String,
    /// What the program printed on stderr as UTF-8 text (a build's diagnostics for BF); invalid bytes become U+FFFD.
    pub stderr: String,
    /// CPU time in ms from the container's cgroup (an extension); left out when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_time_ms: Option<u64>,
    /// Peak memory in bytes from the container's cgroup (an extension); left out when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<u64>,
    /// The exact stdout bytes, when they were not valid UTF-8 and `stdout` had to replace some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_base64: Option<String>,
    /// The exact stderr bytes, when they were not valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_base64: Option<String>,
    /// Bytes of stdout the report had already left out (see `OutputCut`), said in the text's truncation marker.
    #[serde(skip)]
    pub stdout_cut: u64,
    /// Bytes of stderr the report had already left out.
    #[serde(skip)]
    pub stderr_cut: u64,
}

/// The report does not fit in `max_bytes` even with every text field emptied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the result needs {needed} bytes even when truncated, over the limit of {limit} bytes")]
pub struct ReportTooLarge {
    /// The bytes the shortest form of the result takes.
    pub needed: usize,
    /// The most bytes a result may take (`RUNNER_MAX_RESULT_BYTES`).
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
    let cut = message.output.stdout_cut
        + message.output.stderr_cut
        + message
            .tests
            .iter()
            .map(|test| test.output.stdout_cut + test.output.stderr_cut)
            .sum::<u64>();
    if cut > 0 {
        // Output the report left out: marked in its fields, and the base64 copies of what is left would mislead.
        message.truncated = true;
        drop_base64(&mut message);
    }
    let mut whole = message.clone();
    for (field, cut) in text_fields(&mut whole) {
        shorten(field, usize::MAX, cut);
    }
    let mut encoded = to_json(&whole);
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
        for (field, cut) in text_fields(&mut shortened) {
            shorten(field, cap, cut);
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
    ResultMessage {
        id: report.id.as_str().to_owned(),
        status: report.status.code().to_owned(),
        output: OutputBlock::encode(Run {
            exit_code: report.exit_code,
            duration: report.duration,
            cpu_time: report.cpu_time,
            memory_peak: report.memory_peak,
            stdout: &report.stdout,
            stderr: &report.stderr,
            cut: report.cut,
        }),
        error: report.error.clone(),
        tests: report.tests.iter().map(test_message).collect(),
        timestamp: humantime::format_rfc3339_millis(timestamp).to_string(),
        language: report.language.map(|language| language.as_str().to_owned()),
        runner: (!runner.is_empty()).then(|| runner.to_owned()),
        truncated: false,
        score: report.score.score.get(),
        max_score: report.score.max_score.get(),
        groups: report.score.groups.iter().map(group_message).collect(),
    }
}

fn group_message(group: &GroupResult) -> GroupMessage {
    GroupMessage {
        name: group.name.clone(),
        status: group.status.code().to_owned(),
        score: group.score.get(),
        max_score: group.max_score.get(),
        error: group.error.clone(),
    }
}

fn test_message(test: &TestResult) -> TestResultMessage {
    TestResultMessage {
        number: test.number,
        status: test.status.code().to_owned(),
        output: OutputBlock::encode(Run {
            exit_code: test.exit_code(),
            duration: test.duration(),
            cpu_time: test.cpu_time(),
            memory_peak: test.memory_peak(),
            stdout: test.stdout(),
            stderr: test.stderr(),
            cut: test.cut,
        }),
        input: test.input.clone(),
        expected_output: test.expected_output.clone(),
        error: test.error.clone(),
        signal: test.signal(),
        points: test.points.get(),
        score: test.score().get(),
        checker_message: test.checker_message.clone(),
    }
}

/// The domain's view of one output block, borrowed from a report or a test.
struct Run<'a> {
    /// The exit code a shell would report; `None` when nothing ran.
    exit_code: Option<i32>,
    /// The program's own run time; `None` when nothing ran.
    duration: Option<Duration>,
    /// CPU time, when measured.
    cpu_time: Option<Duration>,
    /// Peak memory in bytes, when measured.
    memory_peak: Option<u64>,
    /// The captured stdout bytes, to encode as text (and base64 when not UTF-8).
    stdout: &'a [u8],
    /// The captured stderr bytes, to encode as text (and base64 when not UTF-8).
    stderr: &'a [u8],
    /// What of them the report had already left out.
    cut: OutputCut,
}

impl OutputBlock {
    fn encode(run: Run<'_>) -> Self {
        let (stdout, stdout_base64) = encode_output(run.stdout);
        let (stderr, stderr_base64) = encode_output(run.stderr);
        Self {
            exit_code: run.exit_code,
            duration_ms: run.duration.map(millis),
            stdout,
            stderr,
            cpu_time_ms: run.cpu_time.map(millis),
            memory_peak_bytes: run.memory_peak,
            stdout_base64,
            stderr_base64,
            stdout_cut: run.cut.stdout,
            stderr_cut: run.cut.stderr,
        }
    }

    /// A truncated result carries no base64 copies: they are the largest fields and only a convenience.
    fn drop_base64(&mut self) {
        self.stdout_base64 = None;
        self.stderr_base64 = None;
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
    message.output.drop_base64();
    for test in &mut message.tests {
        test.output.drop_base64();
    }
}

/// Every text field of a message, with the bytes of it the report had already left out.
fn text_fields(message: &mut ResultMessage) -> Vec<(&mut String, u64)> {
    let mut fields = vec![
        (&mut message.output.stdout, message.output.stdout_cut),
        (&mut message.output.stderr, message.output.stderr_cut),
        (&mut message.error, 0),
    ];
    for test in &mut message.tests {
        fields.extend([
            (&mut test.output.stdout, test.output.stdout_cut),
            (&mut test.output.stderr, test.output.stderr_cut),
            (&mut test.input, 0),
            (&mut test.expected_output, 0),
            (&mut test.error, 0),
        ]);
        if let Some(message) = &mut test.checker_message {
            fields.push((message, 0));
        }
    }
    fields
}

/// Keeps at most `cap` bytes of `text` and marks what is gone, counting the `cut` bytes left out before.
fn shorten(text: &mut String, cap: usize, cut: u64) {
    if text.len() <= cap && cut == 0 {
        return;
    }
    let mut end = cap.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let removed = (text.len() - end) as u64 + cut;
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
    use crate::domain::{Execution, Exit, Language, ScriptId, Status, TestCase, Verdict};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const MAX: usize = 1 << 20;

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
            cpu_exceeded: false,
            output_file_missing: false,
        }
    }

    fn suite_report(stdout: &[u8]) -> RunReport {
        let test = TestCase {
            number: 1,
            input: "2 3\n".into(),
            expected_output: "5\n".into(),
            points: None,
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
        assert_eq!(message.tests[0].output.stdout, "ok\u{0}\u{fffd}\u{fffd} end");
        let exact = base64::engine::general_purpose::STANDARD
            .decode(message.tests[0].output.stdout_base64.as_ref().unwrap())
            .unwrap();
        assert_eq!(exact, raw);
        let valid = encode_report(&suite_report(b"fine\0"), "", SystemTime::UNIX_EPOCH, MAX).unwrap();
        let message: ResultMessage = serde_json::from_slice(&valid).unwrap();
        assert_eq!(message.tests[0].output.stdout_base64, None, "valid UTF-8 needs no copy");
    }

    #[test]
    fn output_the_report_left_out_is_marked_even_when_the_rest_fits() {
        let mut budget = crate::domain::OutputBudget::new(0);
        let mut report = suite_report(&vec![b'y'; 5_000]);
        for test in &mut report.tests {
            budget.keep(test);
        }
        let encoded = encode_report(&report, "", SystemTime::UNIX_EPOCH, 950_000).unwrap();
        let message: ResultMessage = serde_json::from_slice(&encoded).unwrap();
        assert!(message.truncated);
        let stdout = &message.tests[0].output.stdout;
        assert!(
            stdout.ends_with(&format!(
                "…[{} bytes truncated]",
                5_000 - crate::domain::OutputBudget::FLOOR
            )),
            "{}",
            &stdout[stdout.len().saturating_sub(40)..]
        );
    }

    #[test]
    fn oversized_results_are_truncated_to_fit() {
        let huge = vec![b'x'; 3 << 20];
        let encoded = encode_report(&suite_report(&huge), "", SystemTime::UNIX_EPOCH, 100_000).unwrap();
        assert!(encoded.len() <= 100_000, "{} bytes", encoded.len());
        let message: ResultMessage = serde_json::from_slice(&encoded).unwrap();
        assert!(message.truncated);
        assert!(message.tests[0].output.stdout.ends_with("bytes truncated]"));
        assert_eq!(message.tests[0].expected_output, "5\n", "small fields are left alone");
    }

    /// A report exercising every encoding rule: script-level and test-level fields, output that is not UTF-8 (so
    /// with its base64 copy), a killed test, a test that did not run, and a CPU time the sandbox could not measure.
    fn full_report() -> RunReport {
        let case = |number: u32| TestCase {
            number,
            input: format!("in{number}\n"),
            expected_output: format!("out{number}\n"),
            points: None,
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
        .scored(&crate::domain::Groups::default())
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
                    "points": 1.0,
                    "score": 1.0,
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
                    "points": 1.0,
                    "score": 0.0,
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
                    "points": 1.0,
                    "score": 0.0,
                },
            ],
            "timestamp": "1970-01-01T00:00:00.000Z",
            "language": "python",
            "memory_peak_bytes": 2_097_152,
            "stdout_base64": "YmFk/wo=",
            "runner": "runner-1",
            "score": 1.0,
            "max_score": 3.0,
        });
        assert_eq!(serde_json::from_slice::<Value>(&encoded).unwrap(), expected);

        // Over budget: no base64 copies, the long output shortened with its marker, `truncated` set.
        let encoded = encode_report(&full_report(), "", SystemTime::UNIX_EPOCH, 1100).unwrap();
        let shortened = format!("{}…[232 bytes truncated]", "e".repeat(68));
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
            "score": 0.0,
            "max_score": 0.0,
        });
        assert_eq!(serde_json::from_slice::<Value>(&encoded).unwrap(), expected);
    }

    proptest! {

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
}
