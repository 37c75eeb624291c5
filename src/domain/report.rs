//! Results: one per test, and the run report that aggregates them the way SCRC does.
//!
//! SCRC's aggregation: the first test that is not OK decides the overall status, and the tests after it are not
//! run (`-`) unless the script asked for `run_all_tests`. One exception: an IE in any test makes the report IE,
//! since the script could not be judged whatever the other tests said. The report's top-level stdout, stderr and exit code are
//! those of the last test that produced any, and its duration is the sum of the tests' run times.

use std::time::Duration;

use super::score::{self, Fraction, Group, Groups, Points, Score, Scored};
use super::script::{Language, ScriptId, TestCase};
use super::status::Status;
use super::verdict::{Execution, Exit, Verdict};

/// Bytes of a run's output the result leaves out. The verdict is given on the whole output; the result keeps only
/// the head of each stream once a script's outputs together pass what a result message can carry, says how much it
/// cut, and so a runner never holds more than that per script in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputCut {
    /// Bytes of stdout left out.
    pub stdout: u64,
    /// Bytes of stderr left out.
    pub stderr: u64,
}

/// How much of each test's output a script's result keeps: [`OutputBudget::FLOOR`] of each stream always, and more
/// while the script's budget lasts, first tests first.
#[derive(Debug, Clone, Copy)]
pub struct OutputBudget {
    /// Bytes of output the script's tests may still keep beyond the floor.
    left: usize,
}

impl OutputBudget {
    /// What every stream of every test keeps, budget or not: enough to see what went wrong.
    pub const FLOOR: usize = 4096;

    /// A budget of `bytes` for one script's outputs together.
    pub fn new(bytes: usize) -> Self {
        Self { left: bytes }
    }

    /// Cuts `result`'s output to what the budget allows, and takes what it kept from the budget.
    pub fn keep(&mut self, result: &mut TestResult) {
        let Some(execution) = result.execution.as_mut() else {
            return;
        };
        for (stream, cut) in [
            (&mut execution.stdout, &mut result.cut.stdout),
            (&mut execution.stderr, &mut result.cut.stderr),
        ] {
            let keep = stream.len().min(self.left.max(Self::FLOOR));
            self.left = self.left.saturating_sub(keep);
            *cut += (stream.len() - keep) as u64;
            stream.truncate(keep);
            stream.shrink_to_fit();
        }
    }
}

/// The result of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// The test's number in the result's `tests[]`: the producer's, or the test's 1-based position.
    pub number: u32,
    /// The test's status in the result: OK, WA, TL, ML, RE, OL, IE, or `-` when an earlier test decided the verdict.
    pub status: Status,
    /// The run as the sandbox measured it; `None` when the program did not run. Held whole rather than copied
    /// field by field, so that "did not run" is one state and the measurements cannot disagree with each other.
    pub execution: Option<Execution>,
    /// The test's stdin, echoed back in the result as SCRC does.
    pub input: String,
    /// What the test had to print, echoed back in the result as SCRC does.
    pub expected_output: String,
    /// Why the status was given; empty for OK.
    pub error: String,
    /// What of the output the result leaves out (see [`OutputBudget`]).
    pub cut: OutputCut,
    /// What the test is worth (its `points`, 1 when the producer gave none).
    pub points: Points,
    /// The part of its points it earned: all for OK, a checker's fraction for a partly right answer, else none.
    pub earned: Fraction,
    /// The first line of the checker's message, where a checker program ran for this test.
    pub checker_message: Option<String>,
}

impl TestResult {
    /// A test that ran and was judged.
    pub fn judged(test: &TestCase, execution: Execution, verdict: Verdict) -> Self {
        Self {
            number: test.number,
            status: verdict.status,
            execution: Some(execution),
            input: test.input.clone(),
            expected_output: test.expected_output.clone(),
            error: verdict.detail,
            cut: OutputCut::default(),
            points: test.worth(),
            earned: if verdict.status == Status::Ok {
                Fraction::FULL
            } else {
                Fraction::NONE
            },
            checker_message: None,
        }
    }

    /// A test that was not run because an earlier one decided the verdict.
    pub fn not_run(test: &TestCase) -> Self {
        Self::unrun(test, Status::NotRun, String::new())
    }

    /// A test left out because its group, or a group its group needs, has already failed (`why` says which).
    pub fn skipped(test: &TestCase, why: String) -> Self {
        Self::unrun(test, Status::NotRun, why)
    }

    /// A test whose run failed for a reason that is not the program's (IE).
    pub fn internal_error(test: &TestCase, error: impl Into<String>) -> Self {
        Self::unrun(test, Status::InternalError, error.into())
    }

    fn unrun(test: &TestCase, status: Status, error: String) -> Self {
        Self {
            number: test.number,
            status,
            execution: None,
            input: test.input.clone(),
            expected_output: test.expected_output.clone(),
            error,
            cut: OutputCut::default(),
            points: test.worth(),
            earned: Fraction::NONE,
            checker_message: None,
        }
    }

    /// What the test earned: its points times the part of them it earned.
    pub fn score(&self) -> Points {
        self.points.times(self.earned.get())
    }

    /// The code a shell would report; `None` when the program did not run.
    pub fn exit_code(&self) -> Option<i32> {
        self.execution.as_ref().map(|execution| execution.exit.code())
    }

    /// The signal that killed the program, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.execution.as_ref()?.exit {
            Exit::Signal(signal) => Some(signal),
            Exit::Code(_) => None,
        }
    }

    /// The program's own run time; `None` when it did not run.
    pub fn duration(&self) -> Option<Duration> {
        self.execution.as_ref().map(|execution| execution.wall_time)
    }

    pub fn cpu_time(&self) -> Option<Duration> {
        self.execution.as_ref()?.cpu_time
    }

    pub fn memory_peak(&self) -> Option<u64> {
        self.execution.as_ref()?.memory_peak
    }

    /// The captured stdout; empty when the program did not run.
    pub fn stdout(&self) -> &[u8] {
        self.execution.as_ref().map_or(&[], |execution| &execution.stdout)
    }

    /// The captured stderr; empty when the program did not run.
    pub fn stderr(&self) -> &[u8] {
        self.execution.as_ref().map_or(&[], |execution| &execution.stderr)
    }
}

/// What to do with the next test, given the results so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Run it.
    Run,
    /// An earlier test decided the verdict (SCRC's `-`), or one could not be judged.
    NotRun,
    /// Its group cannot earn anything any more; the reason names the group.
    Skipped(String),
}

/// Whether the next test should run, given the results so far. An internal error always stops the suite: a
/// broken runner will not judge the remaining tests any better.
pub fn keeps_running(run_all_tests: bool, results: &[TestResult]) -> bool {
    let failed = results.iter().any(|result| result.status != Status::Ok);
    let broken = results.iter().any(|result| result.status == Status::InternalError);
    !broken && (run_all_tests || !failed)
}

/// What to do with `test`. A script that is not scored ([`crate::domain::Script::is_scored`]) keeps SCRC's rule
/// ([`keeps_running`]). A scored one goes on after a failure, since other tests and groups still score, and leaves
/// out (without `run_all_tests`) only the tests of a group that has already earned nothing, or that needs such a group.
pub fn next_test(test: &TestCase, scored: bool, run_all_tests: bool, groups: &Groups, results: &[TestResult]) -> Next {
    if results.iter().any(|result| result.status == Status::InternalError) {
        return Next::NotRun;
    }
    if !scored {
        return if keeps_running(run_all_tests, results) {
            Next::Run
        } else {
            Next::NotRun
        };
    }
    if run_all_tests {
        return Next::Run;
    }
    let Some(group) = groups.of_test(test.number) else {
        return Next::Run;
    };
    // A group's tests that ran and failed: any of them costs a group its dependants (they need it in full), one that
    // earned nothing costs the group itself (a partly right test still leaves it a fraction, the smallest of its tests').
    let failed = |group: &Group, earned_nothing: bool| {
        results.iter().any(|result| {
            group.tests.contains(&result.number)
                && !matches!(result.status, Status::Ok | Status::NotRun)
                && (!earned_nothing || result.earned == Fraction::NONE)
        })
    };
    if failed(group, true) {
        return Next::Skipped(format!("skipped: group {:?} has already failed", group.name));
    }
    if let Some(needed) = groups.needs(group).into_iter().find(|needed| failed(needed, false)) {
        return Next::Skipped(format!(
            "skipped: group {:?} needs group {:?} in full, which it can no longer earn",
            group.name, needed.name
        ));
    }
    Next::Run
}

/// The verdict on a whole script, published as one result message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The script's id, which keys the result message; consumers deduplicate by it.
    pub id: ScriptId,
    /// `None` only for a message rejected before its language was known.
    pub language: Option<Language>,
    /// The overall `status`: the first non-OK test's (IE if any test is IE), the single run's without tests, or BF or
    /// RJ.
    pub status: Status,
    /// The top-level `exit_code`: the last non-zero code among the tests that ran, else 0; `None` when nothing ran.
    pub exit_code: Option<i32>,
    /// The top-level `stdout`: that of the last test that printed any, as SCRC reports it.
    pub stdout: Vec<u8>,
    /// The top-level `stderr`: that of the last test that printed any, or a build's diagnostics for BF.
    pub stderr: Vec<u8>,
    /// The top-level `duration_ms`: the sum of the tests' own run times; `None` for RJ and BF, where nothing ran.
    pub duration: Option<Duration>,
    /// The top-level `error`: why the status was given (the failing test's reason, the RJ or IE cause); empty for OK.
    pub error: String,
    /// Empty for a script without tests (the field is then left out of the message, as SCRC does).
    pub tests: Vec<TestResult>,
    /// Total CPU time of the run tests, when every one of them was measured.
    pub cpu_time: Option<Duration>,
    /// The largest memory peak among the run tests.
    pub memory_peak: Option<u64>,
    /// What of the top-level output the result leaves out: that of the test it comes from.
    pub cut: OutputCut,
    /// The script's `score` and `max_score`, and its `groups`' (see [`RunReport::scored`]); zero before.
    pub score: Score,
}

impl RunReport {
    /// A script without tests: one run, no output check.
    pub fn single(id: ScriptId, language: Language, execution: Execution, verdict: Verdict) -> Self {
        Self {
            id,
            language: Some(language),
            status: verdict.status,
            exit_code: Some(execution.exit.code()),
            duration: Some(execution.wall_time),
            cpu_time: execution.cpu_time,
            memory_peak: execution.memory_peak,
            stdout: execution.stdout,
            stderr: execution.stderr,
            error: verdict.detail,
            tests: Vec::new(),
            cut: OutputCut::default(),
            score: Score::default(),
        }
    }

    /// Adds up the tests' points under the script's `groups`: the report's score, what it was worth, and each
    /// group's.
    pub fn scored(mut self, groups: &Groups) -> Self {
        let tests: Vec<Scored> = self
            .tests
            .iter()
            .map(|test| Scored {
                number: test.number,
                status: test.status,
                points: test.points,
                fraction: test.earned,
            })
            .collect();
        self.score = score::score(groups, &tests);
        self
    }

    /// Aggregates a suite's results.
    pub fn suite(id: ScriptId, language: Language, tests: Vec<TestResult>) -> Self {
        Self::aggregate(id, Some(language), tests)
    }

    fn aggregate(id: ScriptId, language: Option<Language>, tests: Vec<TestResult>) -> Self {
        let run: Vec<&Execution> = tests.iter().filter_map(|t| t.execution.as_ref()).collect();
        // An IE anywhere decides: it means the script could not be judged, which an earlier failure under
        // `run_all_tests` must not hide. Otherwise the first failure decides, as in SCRC.
        let deciding = tests.iter().find(|t| t.status == Status::InternalError).or_else(|| {
            tests
                .iter()
                .find(|t| t.status != Status::Ok && t.status != Status::NotRun)
        });
        let status = deciding.map_or(Status::Ok, |t| t.status);
        let error = deciding.map_or_else(String::new, |t| format!("test {}: {}", t.number, t.error));
        let exit_code = run
            .iter()
            .rev()
            .map(|execution| execution.exit.code())
            .find(|&code| code != 0)
            .or_else(|| (!run.is_empty()).then_some(0));
        // The last test that printed on a stream gives the top-level copy of it, with what its result cut.
        let last_non_empty = |pick: fn(&TestResult) -> (&[u8], u64)| {
            tests
                .iter()
                .rev()
                .map(pick)
                .find(|(output, _)| !output.is_empty())
                .map_or((Vec::new(), 0), |(output, cut)| (output.to_vec(), cut))
        };
        let (stdout, stdout_cut) = last_non_empty(|test| (test.stdout(), test.cut.stdout));
        let (stderr, stderr_cut) = last_non_empty(|test| (test.stderr(), test.cut.stderr));
        let cpu_time = run.iter().map(|execution| execution.cpu_time).sum::<Option<Duration>>();
        Self {
            id,
            language,
            status,
            exit_code,
            stdout,
            stderr,
            duration: Some(run.iter().map(|execution| execution.wall_time).sum()),
            error,
            cpu_time: if run.is_empty() { None } else { cpu_time },
            memory_peak: run.iter().filter_map(|execution| execution.memory_peak).max(),
            tests,
            cut: OutputCut {
                stdout: stdout_cut,
                stderr: stderr_cut,
            },
            score: Score::default(),
        }
    }

    /// The program did not build: BF, with the compiler's diagnostics on stderr and every test `-`.
    pub fn build_failure(
        id: ScriptId,
        language: Language,
        tests: &[TestCase],
        diagnostics: Vec<u8>,
        error: String,
    ) -> Self {
        Self {
            id,
            language: Some(language),
            status: Status::BuildFailure,
            exit_code: None,
            stdout: Vec::new(),
            stderr: diagnostics,
            duration: None,
            error,
            tests: tests.iter().map(TestResult::not_run).collect(),
            cpu_time: None,
            memory_peak: None,
            cut: OutputCut::default(),
            score: Score::default(),
        }
    }

    /// The message was readable but invalid: nothing ran.
    pub fn rejected(id: ScriptId, language: Option<Language>, reason: String) -> Self {
        Self {
            id,
            language,
            status: Status::Rejected,
            exit_code: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            duration: None,
            error: reason,
            tests: Vec::new(),
            cpu_time: None,
            memory_peak: None,
            cut: OutputCut::default(),
            score: Score::default(),
        }
    }

    /// The runner could not judge the script (IE). `tests` holds whatever was decided before the failure.
    pub fn internal_error(id: ScriptId, language: Option<Language>, error: String, tests: Vec<TestResult>) -> Self {
        let mut report = Self::aggregate(id, language, tests);
        report.status = Status::InternalError;
        report.error = error;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(number: u32) -> TestCase {
        TestCase {
            number,
            input: format!("in{number}"),
            expected_output: format!("out{number}"),
            points: None,
        }
    }

    fn ran(number: u32, status: Status, exit: i32, stdout: &str, millis: u64) -> TestResult {
        let execution = Execution {
            exit: Exit::Code(exit),
            wall_time: Duration::from_millis(millis),
            cpu_time: Some(Duration::from_millis(millis / 2)),
            memory_peak: Some(u64::from(number) * 1000),
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            timed_out: false,
            memory_exceeded: false,
            stalled_at_memory_limit: false,
            output_exceeded: false,
            cpu_exceeded: false,
            output_file_missing: false,
        };
        let detail = if status == Status::Ok { "" } else { "because" };
        TestResult::judged(
            &case(number),
            execution,
            Verdict {
                status,
                detail: detail.into(),
            },
        )
    }

    fn id() -> ScriptId {
        ScriptId::new("s1").unwrap()
    }

    #[test]
    fn a_scripts_outputs_together_keep_the_budget_and_every_stream_its_floor() {
        let mut budget = OutputBudget::new(10_000);
        let big = "x".repeat(8_000);
        let mut results: Vec<TestResult> = (1..=4).map(|n| ran(n, Status::Ok, 0, &big, 1)).collect();
        for result in &mut results {
            budget.keep(result);
        }
        let kept: Vec<usize> = results.iter().map(|r| r.stdout().len()).collect();
        assert_eq!(
            kept,
            [8_000, OutputBudget::FLOOR, OutputBudget::FLOOR, OutputBudget::FLOOR]
        );
        let cut: Vec<u64> = results.iter().map(|r| r.cut.stdout).collect();
        assert_eq!(cut, [0, 3_904, 3_904, 3_904]);
        let report = RunReport::suite(ScriptId::new("s").unwrap(), Language::C, results);
        assert_eq!(
            report.stdout.len(),
            OutputBudget::FLOOR,
            "the top-level copy is the last test's, as kept"
        );
        assert_eq!(report.cut.stdout, 3_904);
    }

    #[test]
    fn all_ok_suite_is_ok_with_summed_duration_and_last_output() {
        let report = RunReport::suite(
            id(),
            Language::C,
            vec![ran(1, Status::Ok, 0, "a", 10), ran(2, Status::Ok, 0, "b", 20)],
        );
        assert_eq!(report.status, Status::Ok);
        assert_eq!(report.duration, Some(Duration::from_millis(30)));
        assert_eq!(report.cpu_time, Some(Duration::from_millis(15)));
        assert_eq!(report.memory_peak, Some(2000));
        assert_eq!(report.stdout, b"b");
        assert_eq!(report.exit_code, Some(0));
        assert_eq!(report.error, "");
    }

    #[test]
    fn first_failure_decides_and_later_tests_are_not_run() {
        let mut results = vec![ran(1, Status::Ok, 0, "a", 10), ran(2, Status::WrongAnswer, 0, "x", 10)];
        assert!(!keeps_running(false, &results));
        results.push(TestResult::not_run(&case(3)));
        let report = RunReport::suite(id(), Language::C, results);
        assert_eq!(report.status, Status::WrongAnswer);
        assert_eq!(report.error, "test 2: because");
        assert_eq!(report.tests[2].status, Status::NotRun);
        assert_eq!(report.tests[2].exit_code(), None);
        assert_eq!(report.tests[2].duration(), None);
        assert_eq!(report.tests[2].input, "in3");
        assert_eq!(report.duration, Some(Duration::from_millis(20)));
    }

    #[test]
    fn run_all_tests_keeps_going_and_the_first_failure_still_decides() {
        let results = vec![
            ran(1, Status::RuntimeError, 2, "", 10),
            ran(2, Status::WrongAnswer, 0, "", 10),
        ];
        assert!(keeps_running(true, &results));
        let report = RunReport::suite(id(), Language::C, results);
        assert_eq!(report.status, Status::RuntimeError);
        assert_eq!(
            report.exit_code,
            Some(2),
            "the last non-zero exit code, as SCRC reports"
        );
    }

    #[test]
    fn under_run_all_tests_an_internal_error_after_a_wrong_answer_decides() {
        // The suite stops at the IE, but the WA came first: the report must still say we could not judge.
        let results = vec![
            ran(1, Status::WrongAnswer, 0, "x", 10),
            TestResult::internal_error(&case(2), "docker is down"),
            TestResult::not_run(&case(3)),
        ];
        let report = RunReport::suite(id(), Language::C, results);
        assert_eq!(report.status, Status::InternalError);
        assert_eq!(report.error, "test 2: docker is down");
        assert_eq!(
            report.tests[0].status,
            Status::WrongAnswer,
            "each test keeps its own verdict"
        );
    }

    #[test]
    fn internal_error_stops_even_run_all_tests() {
        let results = vec![TestResult::internal_error(&case(1), "docker is down")];
        assert!(!keeps_running(true, &results));
        let report = RunReport::suite(id(), Language::C, results);
        assert_eq!(report.status, Status::InternalError);
        assert_eq!(report.duration, Some(Duration::ZERO));
        assert_eq!(report.exit_code, None);
        assert_eq!(report.cpu_time, None);
    }

    #[test]
    fn build_failure_marks_every_test_not_run() {
        let report = RunReport::build_failure(
            id(),
            Language::Cpp,
            &[case(1), case(2)],
            b"main.cpp:1: error".to_vec(),
            "compilation failed".into(),
        );
        assert_eq!(report.status, Status::BuildFailure);
        assert_eq!(report.stderr, b"main.cpp:1: error");
        assert!(report.tests.iter().all(|t| t.status == Status::NotRun));
    }
}
