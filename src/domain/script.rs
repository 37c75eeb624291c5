//! What a submission is once it has been read: an identified program in one of the supported languages, with the
//! limits it asked for and the test cases it must pass. Every value here is valid by construction, so the layers
//! above never re-check a language name or an empty source.

use std::fmt;
use std::str::FromStr;

use std::sync::Arc;

use super::program::{FileIo, ProgramFile, ProgramPath};

use super::checker::Comparison;
use super::limits::RequestedLimits;
use super::score::{Groups, Points};

/// The identifier a producer gave a submission (or the one derived for it). Results are keyed by it, and consumers
/// deduplicate by it, so it is never empty. It is also short ([`ScriptId::MAX_BYTES`]): it travels as the key of
/// every result and in every log line, and an id of a few hundred KB would make each result unpublishable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScriptId(String);

impl ScriptId {
    /// The longest id accepted, in bytes: room for a UUID, a path-like name or `topic:partition:offset`, far
    /// below anything that could crowd a result out of a Kafka record.
    pub const MAX_BYTES: usize = 256;

    /// Wraps a non-empty identifier of at most [`ScriptId::MAX_BYTES`] bytes.
    ///
    /// # Errors
    /// [`InvalidScriptId`] when `id` is empty or too long.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidScriptId> {
        let id = id.into();
        if id.is_empty() {
            return Err(InvalidScriptId::Empty);
        }
        if id.len() > Self::MAX_BYTES {
            return Err(InvalidScriptId::TooLong {
                length: id.len(),
                limit: Self::MAX_BYTES,
            });
        }
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ScriptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidScriptId {
    #[error("a script id cannot be empty")]
    Empty,
    #[error("a script id is {length} bytes, over the limit of {limit} bytes")]
    TooLong { length: usize, limit: usize },
}

/// Who a submission belongs to, for fair sharing: with `RUNNER_TENANT_MAX_PARALLEL` set, no tenant holds more of an
/// instance's slots than that. Producers choose it, so it is bounded like [`ScriptId`] ([`Tenant::MAX_BYTES`]):
/// the executor keeps one count per tenant it is running, and logs name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(String);

impl Tenant {
    /// The longest tenant accepted, in bytes: room for a customer id, a UUID or an organisation's name, and no
    /// more, since a tenant is only a label to count by.
    pub const MAX_BYTES: usize = 128;

    /// Wraps a non-empty tenant of at most [`Tenant::MAX_BYTES`] bytes.
    ///
    /// # Errors
    /// [`InvalidTenant`] when `tenant` is empty or too long.
    pub fn new(tenant: impl Into<String>) -> Result<Self, InvalidTenant> {
        let tenant = tenant.into();
        if tenant.is_empty() {
            return Err(InvalidTenant::Empty);
        }
        if tenant.len() > Self::MAX_BYTES {
            return Err(InvalidTenant::TooLong {
                length: tenant.len(),
                limit: Self::MAX_BYTES,
            });
        }
        Ok(Self(tenant))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a tenant was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTenant {
    #[error("a tenant cannot be empty")]
    Empty,
    #[error("a tenant is {length} bytes, over the limit of {limit} bytes")]
    TooLong { length: usize, limit: usize },
}

/// The languages scrc runs: SCRC's five, with SCRC's wire names, then seven more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    Python,
    Go,
    C,
    Cpp,
    Java,
    JavaScript,
    Ruby,
    Php,
    Rust,
    TypeScript,
    Kotlin,
    CSharp,
}

impl Language {
    pub const ALL: [Language; 12] = [
        Language::Python,
        Language::Go,
        Language::C,
        Language::Cpp,
        Language::Java,
        Language::JavaScript,
        Language::Ruby,
        Language::Php,
        Language::Rust,
        Language::TypeScript,
        Language::Kotlin,
        Language::CSharp,
    ];

    /// SCRC's own languages, the first five of [`Language::ALL`].
    pub const SCRC: [Language; 5] = [
        Language::Python,
        Language::Go,
        Language::C,
        Language::Cpp,
        Language::Java,
    ];

    /// The name used on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Go => "go",
            Language::C => "c",
            Language::Cpp => "cpp",
            Language::Java => "java",
            Language::JavaScript => "javascript",
            Language::Ruby => "ruby",
            Language::Php => "php",
            Language::Rust => "rust",
            Language::TypeScript => "typescript",
            Language::Kotlin => "kotlin",
            Language::CSharp => "csharp",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Language {
    type Err = UnknownLanguage;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Language::ALL
            .into_iter()
            .find(|language| language.as_str() == name)
            .ok_or_else(|| UnknownLanguage(name.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown language {0:?}; supported: python, go, c, cpp, java, javascript, ruby, php, rust, typescript, kotlin, csharp"
)]
pub struct UnknownLanguage(pub String);

/// Program text. Never empty or blank: there is nothing to compile or run in a blank source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source(String);

impl Source {
    /// # Errors
    /// [`EmptySource`] when `text` is empty or only whitespace.
    pub fn new(text: impl Into<String>) -> Result<Self, EmptySource> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err(EmptySource);
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("source is empty")]
pub struct EmptySource;

/// One test: what the program reads on stdin and what it must print.
///
/// As in SCRC, an absent expected output means the empty string: the program must print nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// The producer's number for the test, or its 1-based position when the producer gave none.
    pub number: u32,
    /// What the program reads on stdin for this test.
    pub input: String,
    /// What the program must print for this test, as the checker compares it; empty when the producer gave none.
    pub expected_output: String,
    /// The test's `points` (an extension), when the producer gave them.
    pub points: Option<Points>,
}

impl TestCase {
    /// What the test is worth: its `points`, or 1.
    pub fn worth(&self) -> Points {
        self.points.unwrap_or(Points::ONE)
    }
}

/// How a script's tests are judged: the script's `checker`, a comparison's name or a setter's program.
#[derive(Debug, Clone, PartialEq)]
pub enum Checker {
    /// One of scrc's own comparisons (`"checker": "tokens"`).
    Compare(Comparison),
    /// A setter's program (`"checker": {"language", "source", "files"}`), shared by the tests and their retries.
    Program(Arc<CheckerProgram>),
}

impl Checker {
    /// The comparison's name, or `program` for a setter's checker.
    pub fn name(&self) -> &'static str {
        match self {
            Checker::Compare(comparison) => comparison.name(),
            Checker::Program(_) => "program",
        }
    }
}

impl Default for Checker {
    fn default() -> Self {
        Checker::Compare(Comparison::Exact)
    }
}

/// A setter's checker: a program in any of scrc's languages, built once per distinct source (the artifact cache)
/// and run for each test in a sandbox of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckerProgram {
    /// The checker's `language`, which chooses its build and run images.
    pub language: Language,
    /// The checker's `source`: its main file.
    pub source: Source,
    /// The checker's other `files`, such as `testlib.h` beside a C++ checker.
    pub files: Vec<ProgramFile>,
}

impl CheckerProgram {
    /// The checker as a script to build, under the id of the script it judges (for logs): its source is the entry,
    /// saved as its language's usual main file, beside its files.
    pub fn as_script(&self, id: &ScriptId) -> Script {
        Script {
            id: id.clone(),
            language: self.language,
            source: self.source.clone(),
            entry: None,
            files: self.files.clone(),
            io: FileIo::default(),
            limits: RequestedLimits::default(),
            tests: Vec::new(),
            checker: Checker::default(),
            groups: Groups::default(),
            run_all_tests: false,
            tenant: None,
        }
    }
}

/// A submission ready to be judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// The script's `id`, under which its result is published: the message's, else its key or `topic:partition:offset`.
    pub id: ScriptId,
    /// The script's `language`, which chooses the build and run images.
    pub language: Language,
    /// The script's `source`, the program text to build and run: its entry file, whether the producer sent it as
    /// `source` or among its `files`.
    pub source: Source,
    /// Where the source is saved in the program's directory (`entry`, an extension); `None` for the language's
    /// usual main file.
    pub entry: Option<ProgramPath>,
    /// The program's other files (`files`, an extension): headers, modules, data files, a grader stub.
    pub files: Vec<ProgramFile>,
    /// Whether the tests' input and output go through files instead of stdin and stdout (`io`, an extension).
    pub io: FileIo,
    /// What the producer asked for; the runner's policy turns it into enforced [`super::Limits`].
    pub limits: RequestedLimits,
    /// Empty means a single run on empty stdin with no output check, as in SCRC.
    pub tests: Vec<TestCase>,
    /// The script's `checker` (an extension): a comparison of a test's output with the expected one (`exact` if
    /// unset), or a setter's checker program.
    pub checker: Checker,
    /// The script's `groups` (an extension): subtasks that score together.
    pub groups: Groups,
    /// Run every test even after one fails. SCRC stops at the first failure and marks the rest `-`.
    pub run_all_tests: bool,
    /// Who the script belongs to, for fair sharing; `None` for an untagged script, which is never capped.
    pub tenant: Option<Tenant>,
}

impl Script {
    /// Whether the script is scored beyond SCRC's pass or fail: it has groups, or a test with its own points. Such a
    /// script goes on after a failed test, since the other tests and groups still score.
    pub fn is_scored(&self) -> bool {
        !self.groups.is_empty() || self.tests.iter().any(|test| test.points.is_some())
    }

    /// A hash of everything that decides the script's verdict (language, source, limits, tests, checker, whether
    /// every test runs), and nothing else: its id and tenant are left out. Two deliveries with one id and one
    /// fingerprint are the same script delivered twice; one id with two fingerprints is an id reused for another
    /// script. The hash is stable within a process, which is as long as the runner remembers it.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.language.hash(&mut hasher);
        self.source.as_str().hash(&mut hasher);
        self.entry.hash(&mut hasher);
        for file in &self.files {
            (&file.path, &file.content).hash(&mut hasher);
        }
        self.io.hash(&mut hasher);
        self.limits.time.hash(&mut hasher);
        self.limits.memory.hash(&mut hasher);
        self.limits.cpu_time.hash(&mut hasher);
        self.run_all_tests.hash(&mut hasher);
        match &self.checker {
            Checker::Compare(comparison) => {
                comparison.name().hash(&mut hasher);
                if let Comparison::Float { tolerance } = comparison {
                    tolerance.to_bits().hash(&mut hasher);
                }
            }
            Checker::Program(program) => {
                (program.language, program.source.as_str()).hash(&mut hasher);
                for file in &program.files {
                    (&file.path, &file.content).hash(&mut hasher);
                }
            }
        }
        self.groups.hash(&mut hasher);
        for test in &self.tests {
            (test.number, &test.input, &test.expected_output, test.points).hash(&mut hasher);
        }
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IoName;

    #[test]
    fn the_fingerprint_follows_what_decides_the_verdict_and_nothing_else() {
        let script = crate::testing::fixtures::script("a", Language::Python, "print(1)", &[("", "1\n")]);
        let mut renamed = script.clone();
        renamed.id = ScriptId::new("b").unwrap();
        renamed.tenant = Some(Tenant::new("class-1").unwrap());
        assert_eq!(
            script.fingerprint(),
            renamed.fingerprint(),
            "id and tenant are not the script"
        );
        let mut changed = script.clone();
        changed.source = Source::new("print(2)").unwrap();
        assert_ne!(script.fingerprint(), changed.fingerprint());
        let mut all = script.clone();
        all.run_all_tests = true;
        assert_ne!(script.fingerprint(), all.fingerprint());
        let mut helper = script.clone();
        helper.files.push(ProgramFile {
            path: ProgramPath::new("helper.py").unwrap(),
            content: b"X = 1\n".to_vec(),
        });
        assert_ne!(script.fingerprint(), helper.fingerprint());
        let mut filed = script.clone();
        filed.io.output_file = Some(IoName::new("out.txt").unwrap());
        assert_ne!(script.fingerprint(), filed.fingerprint());
        let mut cpu = script.clone();
        cpu.limits.cpu_time = Some(std::time::Duration::from_secs(1));
        assert_ne!(script.fingerprint(), cpu.fingerprint());
        let mut checked = script.clone();
        checked.checker = Checker::Compare(Comparison::Float { tolerance: 1e-6 });
        let mut looser = script.clone();
        looser.checker = Checker::Compare(Comparison::Float { tolerance: 1e-3 });
        assert_ne!(checked.fingerprint(), looser.fingerprint());
        let mut program = script.clone();
        program.checker = Checker::Program(Arc::new(CheckerProgram {
            language: Language::Python,
            source: Source::new("exit(0)").unwrap(),
            files: Vec::new(),
        }));
        let mut other_program = program.clone();
        other_program.checker = Checker::Program(Arc::new(CheckerProgram {
            language: Language::Python,
            source: Source::new("exit(1)").unwrap(),
            files: Vec::new(),
        }));
        assert_ne!(program.fingerprint(), other_program.fingerprint());
        let mut worth = script.clone();
        worth.tests[0].points = Some(Points::new(5.0).unwrap());
        assert_ne!(script.fingerprint(), worth.fingerprint());
    }

    #[test]
    fn language_names_round_trip() {
        for language in Language::ALL {
            assert_eq!(language.as_str().parse::<Language>(), Ok(language));
        }
    }

    #[test]
    fn unknown_language_names_the_value() {
        let error = "cobol".parse::<Language>().unwrap_err();
        assert_eq!(error, UnknownLanguage("cobol".into()));
        assert!(error.to_string().contains("\"cobol\""));
        assert!(
            "Python".parse::<Language>().is_err(),
            "names are case-sensitive, as in SCRC"
        );
    }

    #[test]
    fn blank_source_is_rejected() {
        assert_eq!(Source::new(""), Err(EmptySource));
        assert_eq!(Source::new(" \n\t"), Err(EmptySource));
        assert_eq!(Source::new("x").map(|s| s.as_str().to_owned()), Ok("x".to_owned()));
    }

    #[test]
    fn empty_id_is_rejected() {
        assert_eq!(ScriptId::new(""), Err(InvalidScriptId::Empty));
        assert_eq!(ScriptId::new("a").map(|id| id.to_string()), Ok("a".to_owned()));
    }

    #[test]
    fn tenants_are_non_empty_and_bounded_naming_the_limit() {
        assert_eq!(Tenant::new(""), Err(InvalidTenant::Empty));
        assert_eq!(Tenant::new("acme").map(|t| t.to_string()), Ok("acme".to_owned()));
        assert!(Tenant::new("t".repeat(Tenant::MAX_BYTES)).is_ok());
        let error = Tenant::new("t".repeat(Tenant::MAX_BYTES + 1)).unwrap_err();
        assert_eq!(
            error,
            InvalidTenant::TooLong {
                length: 129,
                limit: 128
            }
        );
        assert_eq!(error.to_string(), "a tenant is 129 bytes, over the limit of 128 bytes");
    }

    #[test]
    fn ids_over_the_limit_are_rejected_naming_the_limit() {
        assert!(ScriptId::new("x".repeat(ScriptId::MAX_BYTES)).is_ok());
        let error = ScriptId::new("x".repeat(ScriptId::MAX_BYTES + 1)).unwrap_err();
        assert_eq!(
            error,
            InvalidScriptId::TooLong {
                length: 257,
                limit: 256
            }
        );
        assert_eq!(
            error.to_string(),
            "a script id is 257 bytes, over the limit of 256 bytes"
        );
    }
}
