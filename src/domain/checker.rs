//! Output checkers: how a program's output is judged against a test's expected output.
//!
//! A script's checker (`super::script::Checker`) is one of scrc's own comparisons ([`Comparison`]) or a setter's
//! program that follows testlib's convention: it runs as `checker <input> <output> <answer>` and says by its exit code
//! ([`TestlibExit`]) whether the output is right, wrong or partly right, or that it is itself broken.
//!
//! The comparisons form a chain of increasing leniency: whatever `exact` accepts, `lines` accepts; whatever `lines` accepts,
//! `tokens` accepts; and whatever `tokens` accepts, `float` accepts. That holds because all of them agree on what
//! whitespace is (ASCII whitespace, as `u8::is_ascii_whitespace` defines it). Outputs are compared as bytes, so
//! invalid UTF-8 is judged, never rejected.

use std::fmt;

/// The default tolerance of the `float` checker.
pub const DEFAULT_FLOAT_TOLERANCE: f64 = 1e-6;

/// The exit codes of a testlib checker (testlib.h's `OK_EXIT_CODE` and the rest, in their default build).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestlibExit {
    /// 0: the output is right.
    Accepted,
    /// 1: the output is wrong.
    WrongAnswer,
    /// 2, and 4 (testlib's "dirt", trailing garbage) and 8 (unexpected end of file): the output is malformed, a
    /// wrong answer to scrc.
    PresentationError,
    /// 3: the checker found itself broken (`quitf(_fail, …)`): the test cannot be judged.
    Failed,
    /// 7 (`quitp`): partly right, by the fraction its message starts with (`points 0.5`).
    Points,
    /// 50 + n, testlib's partial-credit code: `_pc(n)` in a checker built with `PC_BASE_EXIT_CODE` 50 (testlib's
    /// own under `-DTESTSYS`; its default base, 0, would make `_pc(n)` collide with the codes above): n percent.
    PartialCredit(u8),
}

impl TestlibExit {
    /// The meaning of a checker's exit code; `None` for a code testlib does not give, which is the checker's fault.
    pub fn of(code: i32) -> Option<Self> {
        match code {
            0 => Some(TestlibExit::Accepted),
            1 => Some(TestlibExit::WrongAnswer),
            2 | 4 | 8 => Some(TestlibExit::PresentationError),
            3 => Some(TestlibExit::Failed),
            7 => Some(TestlibExit::Points),
            50..=150 => u8::try_from(code - 50).ok().map(TestlibExit::PartialCredit),
            _ => None,
        }
    }
}

/// What a checker said of one test.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckerVerdict {
    /// The output is right.
    Accepted,
    /// The output is wrong (or malformed).
    Wrong,
    /// The output earns this fraction of the test's points, above 0 and below 1.
    Partial(f64),
}

/// The first line of a checker's message, at most [`CHECKER_MESSAGE_BYTES`]: the test's `checker_message`.
pub fn checker_message(stderr: &[u8]) -> String {
    let line = stderr.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end();
    let end = (0..=line.len().min(CHECKER_MESSAGE_BYTES))
        .rev()
        .find(|&at| line.is_char_boundary(at))
        .unwrap_or(0);
    line[..end].to_owned()
}

/// The longest `checker_message` kept, in bytes.
pub const CHECKER_MESSAGE_BYTES: usize = 512;

/// What a checker that exited with `code` and wrote `message` (its first line) says of the test.
///
/// # Errors
/// [`CheckerFault`] when the checker says it is broken, or says nothing testlib defines.
pub fn read_checker_exit(code: i32, message: &str) -> Result<CheckerVerdict, CheckerFault> {
    if code == 1 && crashed(message) {
        return Err(CheckerFault::Crashed);
    }
    let exit = TestlibExit::of(code).ok_or(CheckerFault::ExitCode(code))?;
    let fraction = match exit {
        TestlibExit::Accepted => return Ok(CheckerVerdict::Accepted),
        TestlibExit::WrongAnswer | TestlibExit::PresentationError => return Ok(CheckerVerdict::Wrong),
        TestlibExit::Failed => return Err(CheckerFault::Failed),
        TestlibExit::Points => points_fraction(message).ok_or(CheckerFault::NoPoints)?,
        TestlibExit::PartialCredit(percent) => f64::from(percent) / 100.0,
    };
    Ok(if fraction >= 1.0 {
        CheckerVerdict::Accepted
    } else if fraction <= 0.0 {
        CheckerVerdict::Wrong
    } else {
        CheckerVerdict::Partial(fraction)
    })
}

/// Whether a checker's first line is its runtime's report of an uncaught error, which exits 1 like testlib's wrong
/// answer: Python's traceback, the JVM's and .NET's unhandled exception, and Node's and Ruby's, which start with the
/// failing line's place in the checker's own file (`/box/main.js:3`). It is the setter's program that speaks here,
/// never the submission's.
fn crashed(message: &str) -> bool {
    const REPORTS: [&str; 4] = [
        "Traceback (most recent call last):",
        "Exception in thread ",
        "Unhandled exception.",
        "Unhandled Exception:",
    ];
    REPORTS.iter().any(|report| message.starts_with(report)) || message.starts_with("/box/")
}

/// The fraction a `points` message gives: testlib's `quitp(0.5, …)` writes `points 0.5 …`; a bare number first
/// is read too. Only a finite number from 0 to 1 counts.
fn points_fraction(message: &str) -> Option<f64> {
    let mut words = message.split_whitespace();
    let first = words.next()?;
    let number = if first == "points" { words.next()? } else { first };
    let fraction: f64 = number.parse().ok()?;
    (fraction.is_finite() && (0.0..=1.0).contains(&fraction)).then_some(fraction)
}

/// Why a checker's answer cannot be used: the test is IE, and the checker is to blame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckerFault {
    #[error("the checker failed (testlib's fail, exit code 3)")]
    Failed,
    #[error("the checker crashed (an uncaught error, exit code 1)")]
    Crashed,
    #[error("the checker exited with code {0}, which testlib does not define")]
    ExitCode(i32),
    #[error("the checker gave partial points (exit code 7) without \"points F\" (F from 0 to 1) first on its message")]
    NoPoints,
}

/// One of scrc's own comparisons of output with expected output.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Comparison {
    /// Byte for byte, as SCRC compares.
    #[default]
    Exact,
    /// Line by line: trailing whitespace on each line and trailing blank lines are ignored, so CRLF equals LF.
    Lines,
    /// Whitespace-separated tokens.
    Tokens,
    /// Tokens, where two numbers match when they differ by at most `tolerance`, absolutely or relative to the
    /// expected value. Non-numeric tokens must match exactly.
    Float { tolerance: f64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComparisonError {
    #[error("unknown checker {0:?}; supported: exact, lines, tokens, float")]
    Unknown(String),
    #[error("float_tolerance must be a finite number >= 0, got {0}")]
    BadTolerance(String),
}

impl Comparison {
    /// Builds a checker from its wire name and the optional `float_tolerance`.
    ///
    /// # Errors
    /// [`ComparisonError`] for an unknown name or a negative or non-finite tolerance.
    pub fn from_wire(name: &str, tolerance: Option<f64>) -> Result<Comparison, ComparisonError> {
        if let Some(tolerance) = tolerance
            && (!tolerance.is_finite() || tolerance < 0.0)
        {
            return Err(ComparisonError::BadTolerance(tolerance.to_string()));
        }
        match name {
            "exact" => Ok(Comparison::Exact),
            "lines" => Ok(Comparison::Lines),
            "tokens" => Ok(Comparison::Tokens),
            "float" => Ok(Comparison::Float {
                tolerance: tolerance.unwrap_or(DEFAULT_FLOAT_TOLERANCE),
            }),
            other => Err(ComparisonError::Unknown(other.to_owned())),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Comparison::Exact => "exact",
            Comparison::Lines => "lines",
            Comparison::Tokens => "tokens",
            Comparison::Float { .. } => "float",
        }
    }

    /// Compares `actual` with `expected`.
    ///
    /// # Errors
    /// A [`Mismatch`] describing the first difference.
    pub fn check(&self, expected: &[u8], actual: &[u8]) -> Result<(), Mismatch> {
        match self {
            Comparison::Exact => check_exact(expected, actual),
            Comparison::Lines => check_lines(expected, actual),
            Comparison::Tokens => check_tokens(expected, actual, |e, a| e == a),
            Comparison::Float { tolerance } => {
                check_tokens(expected, actual, |e, a| e == a || numbers_close(e, a, *tolerance))
            }
        }
    }
}

/// The first place where output and expectation part ways, in words a student can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch(String);

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_exact(expected: &[u8], actual: &[u8]) -> Result<(), Mismatch> {
    if expected == actual {
        return Ok(());
    }
    let at = expected.iter().zip(actual).take_while(|(e, a)| e == a).count();
    let line = 1 + actual[..at].iter().filter(|&&b| b == b'\n').count();
    Err(Mismatch(format!(
        "byte {at} (line {line}): expected {}, got {}",
        excerpt(&expected[at..]),
        excerpt(&actual[at..])
    )))
}

fn check_lines(expected: &[u8], actual: &[u8]) -> Result<(), Mismatch> {
    let expected = normalized_lines(expected);
    let actual = normalized_lines(actual);
    for (index, (e, a)) in expected.iter().zip(&actual).enumerate() {
        if e != a {
            return Err(Mismatch(format!(
                "line {}: expected {}, got {}",
                index + 1,
                excerpt(e),
                excerpt(a)
            )));
        }
    }
    match expected.len().cmp(&actual.len()) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(Mismatch(format!(
            "expected {} lines, got {}: line {} is missing",
            expected.len(),
            actual.len(),
            actual.len() + 1
        ))),
        std::cmp::Ordering::Less => Err(Mismatch(format!(
            "expected {} lines, got {}: line {} is extra",
            expected.len(),
            actual.len(),
            expected.len() + 1
        ))),
    }
}

fn check_tokens(expected: &[u8], actual: &[u8], same: impl Fn(&[u8], &[u8]) -> bool) -> Result<(), Mismatch> {
    let mut expected_tokens = tokens(expected);
    let mut actual_tokens = tokens(actual);
    let mut index = 1usize;
    loop {
        match (expected_tokens.next(), actual_tokens.next()) {
            (None, None) => return Ok(()),
            (Some(e), Some(a)) if same(e, a) => index += 1,
            (Some(e), Some(a)) => {
                return Err(Mismatch(format!(
                    "token {index}: expected {}, got {}",
                    excerpt(e),
                    excerpt(a)
                )));
            }
            (Some(e), None) => {
                return Err(Mismatch(format!(
                    "token {index}: expected {}, got end of output",
                    excerpt(e)
                )));
            }
            (None, Some(a)) => {
                return Err(Mismatch(format!(
                    "token {index}: expected end of output, got {}",
                    excerpt(a)
                )));
            }
        }
    }
}

/// Lines without their trailing whitespace, without the trailing blank lines.
fn normalized_lines(output: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = output.split(|&b| b == b'\n').map(trim_end).collect();
    while lines.last().is_some_and(|line| line.is_empty()) {
        lines.pop();
    }
    lines
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    &line[..end]
}

fn tokens(output: &[u8]) -> impl Iterator<Item = &[u8]> {
    output
        .split(|b| b.is_ascii_whitespace())
        .filter(|token| !token.is_empty())
}

fn numbers_close(expected: &[u8], actual: &[u8], tolerance: f64) -> bool {
    let (Some(e), Some(a)) = (parse_number(expected), parse_number(actual)) else {
        return false;
    };
    let difference = (e - a).abs();
    difference <= tolerance || difference <= tolerance * e.abs()
}

fn parse_number(token: &[u8]) -> Option<f64> {
    let value: f64 = std::str::from_utf8(token).ok()?.parse().ok()?;
    value.is_finite().then_some(value)
}

/// A short, quoted, escaped view of the start of some output.
fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    if bytes.is_empty() {
        return "end of output".to_owned();
    }
    let shown = &bytes[..bytes.len().min(MAX)];
    let text: String = shown.escape_ascii().to_string();
    if bytes.len() > MAX {
        format!("\"{text}...\"")
    } else {
        format!("\"{text}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn testlib_exit_codes_read_as_testlib_defines_them() {
        assert_eq!(read_checker_exit(0, "ok"), Ok(CheckerVerdict::Accepted));
        for code in [1, 2, 4, 8] {
            assert_eq!(read_checker_exit(code, "wrong"), Ok(CheckerVerdict::Wrong), "{code}");
        }
        assert_eq!(read_checker_exit(3, "FAIL bad answer file"), Err(CheckerFault::Failed));
        for crash in [
            "Traceback (most recent call last):",
            "Exception in thread \"main\" java.lang.NumberFormatException: For input string: \"x\"",
            "Unhandled exception. System.FormatException: bad",
            "/box/main.js:3",
            "/box/main.rb:2:in `<main>': boom (RuntimeError)",
        ] {
            assert_eq!(read_checker_exit(1, crash), Err(CheckerFault::Crashed), "{crash}");
        }
        assert_eq!(
            read_checker_exit(1, "wrong answer expected 3, found Traceback"),
            Ok(CheckerVerdict::Wrong),
            "only a report's first words, at the start"
        );
        assert_eq!(
            read_checker_exit(7, "points 0.25 a quarter"),
            Ok(CheckerVerdict::Partial(0.25))
        );
        assert_eq!(
            read_checker_exit(7, "0.5"),
            Ok(CheckerVerdict::Partial(0.5)),
            "a bare number first"
        );
        assert_eq!(read_checker_exit(7, "points 1"), Ok(CheckerVerdict::Accepted));
        assert_eq!(read_checker_exit(7, "points 0"), Ok(CheckerVerdict::Wrong));
        for nonsense in [
            "points 1.5",
            "points -0.1",
            "points NaN",
            "points inf",
            "half right",
            "",
        ] {
            assert_eq!(
                read_checker_exit(7, nonsense),
                Err(CheckerFault::NoPoints),
                "{nonsense:?}"
            );
        }
        assert_eq!(
            read_checker_exit(90, ""),
            Ok(CheckerVerdict::Partial(0.4)),
            "testlib's _pc(40)"
        );
        assert_eq!(read_checker_exit(150, ""), Ok(CheckerVerdict::Accepted));
        assert_eq!(read_checker_exit(151, ""), Err(CheckerFault::ExitCode(151)));
        for code in [5, 6, 9, 42, 255, -1] {
            assert_eq!(read_checker_exit(code, ""), Err(CheckerFault::ExitCode(code)), "{code}");
        }
    }

    #[test]
    fn a_checkers_message_is_its_first_line_capped_on_a_character() {
        assert_eq!(
            checker_message(b"wrong answer 1st differs\nmore\n"),
            "wrong answer 1st differs"
        );
        assert_eq!(checker_message(b"ok  \r\n"), "ok");
        assert_eq!(checker_message(b""), "");
        assert_eq!(checker_message(b"\xff ok"), "\u{fffd} ok");
        let long = "é".repeat(CHECKER_MESSAGE_BYTES);
        let kept = checker_message(long.as_bytes());
        assert!(kept.len() <= CHECKER_MESSAGE_BYTES && kept.len() >= CHECKER_MESSAGE_BYTES - 1);
        assert!(kept.chars().all(|c| c == 'é'));
    }

    fn accepts(checker: Comparison, expected: &str, actual: &str) -> bool {
        checker.check(expected.as_bytes(), actual.as_bytes()).is_ok()
    }

    #[test]
    fn exact_compares_bytes() {
        assert!(accepts(Comparison::Exact, "5\n", "5\n"));
        assert!(!accepts(Comparison::Exact, "5\n", "5"));
        assert!(!accepts(Comparison::Exact, "5\n", "5\r\n"));
        let mismatch = Comparison::Exact.check(b"a\nb\n", b"a\nc\n").unwrap_err();
        assert_eq!(mismatch.to_string(), "byte 2 (line 2): expected \"b\\n\", got \"c\\n\"");
    }

    #[test]
    fn lines_ignores_trailing_whitespace_crlf_and_trailing_blank_lines() {
        assert!(accepts(Comparison::Lines, "1 2\n3\n", "1 2   \r\n3\t\r\n\n\n"));
        assert!(accepts(Comparison::Lines, "x", "x\n"));
        assert!(
            !accepts(Comparison::Lines, "1 2\n", "1  2\n"),
            "inner whitespace still counts"
        );
        assert!(
            !accepts(Comparison::Lines, "a\n", " a\n"),
            "leading whitespace still counts"
        );
        assert!(
            !accepts(Comparison::Lines, "a\n\nb\n", "a\nb\n"),
            "inner blank lines still count"
        );
        let mismatch = Comparison::Lines.check(b"a\nb\n", b"a\n").unwrap_err();
        assert_eq!(mismatch.to_string(), "expected 2 lines, got 1: line 2 is missing");
    }

    #[test]
    fn tokens_ignores_all_whitespace_layout() {
        assert!(accepts(Comparison::Tokens, "1 2 3\n", "1\n2\t\t3"));
        assert!(!accepts(Comparison::Tokens, "1 2 3", "1 2"));
        assert!(!accepts(Comparison::Tokens, "12", "1 2"));
        let mismatch = Comparison::Tokens.check(b"1 2", b"1 3").unwrap_err();
        assert_eq!(mismatch.to_string(), "token 2: expected \"2\", got \"3\"");
    }

    #[test]
    fn float_accepts_numbers_within_absolute_or_relative_tolerance() {
        let checker = Comparison::from_wire("float", None).unwrap();
        assert!(accepts(checker, "3.141593", "3.1415926"));
        assert!(accepts(checker, "1000000", "1000000.5"), "relative: 0.5 <= 1e-6 * 1e6");
        assert!(!accepts(checker, "1", "1.01"));
        assert!(!accepts(checker, "yes", "YES"), "words must match exactly");
        assert!(accepts(checker, "nan", "nan"), "identical tokens always match");
        assert!(!accepts(checker, "1", "nan"));
        let loose = Comparison::from_wire("float", Some(0.1)).unwrap();
        assert!(accepts(loose, "1", "1.09"));
    }

    #[test]
    fn checker_names_and_tolerances_are_validated() {
        assert_eq!(Comparison::from_wire("exact", None), Ok(Comparison::Exact));
        assert_eq!(
            Comparison::from_wire("diff", None),
            Err(ComparisonError::Unknown("diff".into()))
        );
        assert!(matches!(
            Comparison::from_wire("float", Some(-1.0)),
            Err(ComparisonError::BadTolerance(_))
        ));
        assert!(matches!(
            Comparison::from_wire("float", Some(f64::NAN)),
            Err(ComparisonError::BadTolerance(_))
        ));
    }

    #[test]
    fn invalid_utf8_and_nul_are_compared_as_bytes() {
        assert!(Comparison::Exact.check(b"\xff\x00", b"\xff\x00").is_ok());
        assert!(Comparison::Tokens.check(b"\xff", b"\xfe").is_err());
    }

    /// Outputs built from a small alphabet heavy in whitespace, so that near-misses are common.
    fn output() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b' '),
                Just(b'\n'),
                Just(b'\r'),
                Just(b'\t'),
                Just(b'\x0b'),
                Just(b'\x0c'),
                Just(b'1'),
                Just(b'.'),
                Just(b'a'),
                any::<u8>()
            ],
            0..40,
        )
    }

    /// Pairs where the second is a whitespace-perturbed copy of the first, so the lenient checkers get exercised.
    fn similar_pair() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
        (output(), proptest::collection::vec(any::<(u8, u8)>(), 0..6)).prop_map(|(base, edits)| {
            let mut other = base.clone();
            for (position, kind) in edits {
                let at = if other.is_empty() {
                    0
                } else {
                    position as usize % (other.len() + 1)
                };
                match kind % 4 {
                    0 => other.insert(at, b' '),
                    1 => other.insert(at, b'\n'),
                    2 => other.push(b' '),
                    _ => other.extend_from_slice(b"\r\n"),
                }
            }
            (base, other)
        })
    }

    proptest! {
        #[test]
        fn exact_implies_lines_implies_tokens_implies_float(
            (expected, actual) in prop_oneof![similar_pair(), (output(), output())]
        ) {
            let float = Comparison::Float { tolerance: DEFAULT_FLOAT_TOLERANCE };
            if Comparison::Exact.check(&expected, &actual).is_ok() {
                prop_assert!(Comparison::Lines.check(&expected, &actual).is_ok());
            }
            if Comparison::Lines.check(&expected, &actual).is_ok() {
                prop_assert!(Comparison::Tokens.check(&expected, &actual).is_ok());
            }
            if Comparison::Tokens.check(&expected, &actual).is_ok() {
                prop_assert!(float.check(&expected, &actual).is_ok());
            }
        }

        #[test]
        fn every_checker_accepts_identical_output(output in output()) {
            for checker in [Comparison::Exact, Comparison::Lines, Comparison::Tokens, Comparison::Float { tolerance: 0.0 }] {
                prop_assert!(checker.check(&output, &output).is_ok());
            }
        }
    }
}
