//! Output checkers: how a program's stdout is compared with a test's expected output.
//!
//! They form a chain of increasing leniency: whatever `exact` accepts, `lines` accepts; whatever `lines` accepts,
//! `tokens` accepts; and whatever `tokens` accepts, `float` accepts. That holds because all of them agree on what
//! whitespace is (ASCII whitespace, as `u8::is_ascii_whitespace` defines it). Outputs are compared as bytes, so
//! invalid UTF-8 is judged, never rejected.

use std::fmt;

/// The default tolerance of the `float` checker.
pub const DEFAULT_FLOAT_TOLERANCE: f64 = 1e-6;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Checker {
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
pub enum CheckerError {
    #[error("unknown checker {0:?}; supported: exact, lines, tokens, float")]
    Unknown(String),
    #[error("float_tolerance must be a finite number >= 0, got {0}")]
    BadTolerance(String),
}

impl Checker {
    /// Builds a checker from its wire name and the optional `float_tolerance`.
    ///
    /// # Errors
    /// [`CheckerError`] for an unknown name or a negative or non-finite tolerance.
    pub fn from_wire(name: &str, tolerance: Option<f64>) -> Result<Checker, CheckerError> {
        if let Some(tolerance) = tolerance
            && (!tolerance.is_finite() || tolerance < 0.0)
        {
            return Err(CheckerError::BadTolerance(tolerance.to_string()));
        }
        match name {
            "exact" => Ok(Checker::Exact),
            "lines" => Ok(Checker::Lines),
            "tokens" => Ok(Checker::Tokens),
            "float" => Ok(Checker::Float {
                tolerance: tolerance.unwrap_or(DEFAULT_FLOAT_TOLERANCE),
            }),
            other => Err(CheckerError::Unknown(other.to_owned())),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Checker::Exact => "exact",
            Checker::Lines => "lines",
            Checker::Tokens => "tokens",
            Checker::Float { .. } => "float",
        }
    }

    /// Compares `actual` with `expected`.
    ///
    /// # Errors
    /// A [`Mismatch`] describing the first difference.
    pub fn check(&self, expected: &[u8], actual: &[u8]) -> Result<(), Mismatch> {
        match self {
            Checker::Exact => check_exact(expected, actual),
            Checker::Lines => check_lines(expected, actual),
            Checker::Tokens => check_tokens(expected, actual, |e, a| e == a),
            Checker::Float { tolerance } => {
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

    fn accepts(checker: Checker, expected: &str, actual: &str) -> bool {
        checker.check(expected.as_bytes(), actual.as_bytes()).is_ok()
    }

    #[test]
    fn exact_compares_bytes() {
        assert!(accepts(Checker::Exact, "5\n", "5\n"));
        assert!(!accepts(Checker::Exact, "5\n", "5"));
        assert!(!accepts(Checker::Exact, "5\n", "5\r\n"));
        let mismatch = Checker::Exact.check(b"a\nb\n", b"a\nc\n").unwrap_err();
        assert_eq!(mismatch.to_string(), "byte 2 (line 2): expected \"b\\n\", got \"c\\n\"");
    }

    #[test]
    fn lines_ignores_trailing_whitespace_crlf_and_trailing_blank_lines() {
        assert!(accepts(Checker::Lines, "1 2\n3\n", "1 2   \r\n3\t\r\n\n\n"));
        assert!(accepts(Checker::Lines, "x", "x\n"));
        assert!(
            !accepts(Checker::Lines, "1 2\n", "1  2\n"),
            "inner whitespace still counts"
        );
        assert!(
            !accepts(Checker::Lines, "a\n", " a\n"),
            "leading whitespace still counts"
        );
        assert!(
            !accepts(Checker::Lines, "a\n\nb\n", "a\nb\n"),
            "inner blank lines still count"
        );
        let mismatch = Checker::Lines.check(b"a\nb\n", b"a\n").unwrap_err();
        assert_eq!(mismatch.to_string(), "expected 2 lines, got 1: line 2 is missing");
    }

    #[test]
    fn tokens_ignores_all_whitespace_layout() {
        assert!(accepts(Checker::Tokens, "1 2 3\n", "1\n2\t\t3"));
        assert!(!accepts(Checker::Tokens, "1 2 3", "1 2"));
        assert!(!accepts(Checker::Tokens, "12", "1 2"));
        let mismatch = Checker::Tokens.check(b"1 2", b"1 3").unwrap_err();
        assert_eq!(mismatch.to_string(), "token 2: expected \"2\", got \"3\"");
    }

    #[test]
    fn float_accepts_numbers_within_absolute_or_relative_tolerance() {
        let checker = Checker::from_wire("float", None).unwrap();
        assert!(accepts(checker, "3.141593", "3.1415926"));
        assert!(accepts(checker, "1000000", "1000000.5"), "relative: 0.5 <= 1e-6 * 1e6");
        assert!(!accepts(checker, "1", "1.01"));
        assert!(!accepts(checker, "yes", "YES"), "words must match exactly");
        assert!(accepts(checker, "nan", "nan"), "identical tokens always match");
        assert!(!accepts(checker, "1", "nan"));
        let loose = Checker::from_wire("float", Some(0.1)).unwrap();
        assert!(accepts(loose, "1", "1.09"));
    }

    #[test]
    fn checker_names_and_tolerances_are_validated() {
        assert_eq!(Checker::from_wire("exact", None), Ok(Checker::Exact));
        assert_eq!(
            Checker::from_wire("diff", None),
            Err(CheckerError::Unknown("diff".into()))
        );
        assert!(matches!(
            Checker::from_wire("float", Some(-1.0)),
            Err(CheckerError::BadTolerance(_))
        ));
        assert!(matches!(
            Checker::from_wire("float", Some(f64::NAN)),
            Err(CheckerError::BadTolerance(_))
        ));
    }

    #[test]
    fn invalid_utf8_and_nul_are_compared_as_bytes() {
        assert!(Checker::Exact.check(b"\xff\x00", b"\xff\x00").is_ok());
        assert!(Checker::Tokens.check(b"\xff", b"\xfe").is_err());
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
            let float = Checker::Float { tolerance: DEFAULT_FLOAT_TOLERANCE };
            if Checker::Exact.check(&expected, &actual).is_ok() {
                prop_assert!(Checker::Lines.check(&expected, &actual).is_ok());
            }
            if Checker::Lines.check(&expected, &actual).is_ok() {
                prop_assert!(Checker::Tokens.check(&expected, &actual).is_ok());
            }
            if Checker::Tokens.check(&expected, &actual).is_ok() {
                prop_assert!(float.check(&expected, &actual).is_ok());
            }
        }

        #[test]
        fn every_checker_accepts_identical_output(output in output()) {
            for checker in [Checker::Exact, Checker::Lines, Checker::Tokens, Checker::Float { tolerance: 0.0 }] {
                prop_assert!(checker.check(&output, &output).is_ok());
            }
        }
    }
}
