//! Checker programs, points and subtask groups through the judge, against the fake runtime: how a checker's exit
//! codes become verdicts and scores, when it is not asked at all, and which tests a failed group leaves out. The
//! same rules against real sandboxes are in `docker_checkers.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use scrc::app::{Backoff, CircuitBreaker, Judge, RetryPolicy};
use scrc::domain::{
    Checker, CheckerProgram, Groups, Language, LimitPolicy, Limits, MemoryLimit, Points, RunReport, Script, Source,
    Status, TimeLimit,
};
use scrc::testing::{FakeRuntime, fixtures};
use tokio_util::sync::CancellationToken;

fn judge(runtime: &FakeRuntime) -> Judge<FakeRuntime> {
    let limits = |seconds| Limits {
        time: TimeLimit::new(Duration::from_secs(seconds)).unwrap(),
        memory: MemoryLimit::new(256 << 20).unwrap(),
        cpu_time: None,
    };
    let policy = LimitPolicy {
        default: limits(5),
        max: limits(20),
        min_memory: MemoryLimit::new(6 << 20).unwrap(),
        max_tests: 64,
        checker: limits(10),
    };
    let retry = RetryPolicy {
        attempts: 2,
        backoff: Backoff::new(Duration::from_millis(1), Duration::from_millis(2)),
        breaker_wait: Duration::from_secs(1),
    };
    Judge::new(
        runtime.clone(),
        policy,
        Arc::new(CircuitBreaker::new(5, Duration::from_secs(1))),
        retry,
    )
}

/// A script whose program prints its input, judged by the fake checker program `checker`.
fn checked(checker: &str, tests: &[(&str, &str)]) -> Script {
    let mut script = fixtures::script("s", Language::Python, "echo", tests);
    script.checker = Checker::Program(Arc::new(CheckerProgram {
        language: Language::Cpp,
        source: Source::new(checker).unwrap(),
        files: Vec::new(),
    }));
    script
}

async fn judged(runtime: &FakeRuntime, script: &Script) -> RunReport {
    judge(runtime)
        .judge(script, &CancellationToken::new())
        .await
        .expect("not cancelled")
}

#[tokio::test]
async fn a_checker_that_accepts_any_right_answer_makes_the_test_ok_and_says_why_it_refused_the_rest() {
    let runtime = FakeRuntime::new();
    let report = judged(&runtime, &checked("compare", &[("a\n", "a"), ("b\n", "c\n")])).await;
    assert_eq!(report.tests[0].status, Status::Ok, "{report:#?}");
    assert_eq!(report.tests[1].status, Status::WrongAnswer);
    assert_eq!(report.tests[1].checker_message.as_deref(), Some("wrong answer"));
    assert_eq!(report.status, Status::WrongAnswer);
    assert_eq!((report.score.score.get(), report.score.max_score.get()), (1.0, 2.0));
    assert_eq!(runtime.stats().checks.load(Ordering::SeqCst), 2);
    assert_eq!(
        runtime.stats().released.load(Ordering::SeqCst),
        2,
        "the program and the checker are both released"
    );
}

#[tokio::test]
async fn every_testlib_exit_code_has_its_verdict() {
    let cases: [(&str, Status, f64, &str); 9] = [
        ("exit 0\nwarn ok 1 number", Status::Ok, 1.0, "ok 1 number"),
        (
            "exit 1\nwarn wrong answer 1st numbers differ",
            Status::WrongAnswer,
            0.0,
            "wrong answer 1st numbers differ",
        ),
        (
            "exit 2\nwarn wrong output format",
            Status::WrongAnswer,
            0.0,
            "wrong output format",
        ),
        ("exit 4\nwarn extra data", Status::WrongAnswer, 0.0, "extra data"),
        (
            "exit 7\nwarn points 0.25 a quarter",
            Status::WrongAnswer,
            0.25,
            "points 0.25 a quarter",
        ),
        (
            "exit 90\nwarn partially correct",
            Status::WrongAnswer,
            0.4,
            "partially correct",
        ),
        (
            "exit 3\nwarn FAIL answer file is broken",
            Status::InternalError,
            0.0,
            "FAIL answer file is broken",
        ),
        ("exit 7\nwarn half right", Status::InternalError, 0.0, "half right"),
        ("exit 42", Status::InternalError, 0.0, ""),
    ];
    for (checker, status, earned, message) in cases {
        let mut script = checked(checker, &[("1\n", "1\n")]);
        script.tests[0].points = Some(Points::new(4.0).unwrap());
        let report = judged(&FakeRuntime::new(), &script).await;
        let test = &report.tests[0];
        assert_eq!(test.status, status, "{checker}: {test:#?}");
        assert_eq!(report.score.score.get(), 4.0 * earned, "{checker}");
        assert_eq!(report.score.max_score.get(), 4.0);
        assert_eq!(test.checker_message.as_deref(), Some(message), "{checker}");
        if status == Status::InternalError {
            assert!(
                test.error.starts_with("the checker is at fault: "),
                "{checker}: {}",
                test.error
            );
            assert_eq!(
                report.status,
                Status::InternalError,
                "never WA or OK for a broken checker"
            );
        }
    }
}

#[tokio::test]
async fn a_program_that_fails_on_its_own_is_judged_without_the_checker() {
    let runtime = FakeRuntime::new();
    let mut script = checked("compare", &[("1\n", "1\n"), ("2\n", "2\n"), ("3\n", "3\n")]);
    script.source = Source::new("echo\nexit 3").unwrap();
    script.run_all_tests = true;
    let report = judged(&runtime, &script).await;
    assert!(report.tests.iter().all(|test| test.status == Status::RuntimeError));
    assert!(report.tests.iter().all(|test| test.checker_message.is_none()));
    assert_eq!(runtime.stats().checks.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_checker_that_does_not_build_is_ie_naming_the_checker_and_a_program_that_does_not_is_bf() {
    let runtime = FakeRuntime::new();
    let report = judged(&runtime, &checked("build-fail checker.cpp:1: error", &[("1\n", "1\n")])).await;
    assert_eq!(report.status, Status::InternalError);
    assert!(
        report.error.starts_with("the checker does not build"),
        "{}",
        report.error
    );
    assert!(report.error.contains("checker.cpp:1: error"), "{}", report.error);
    assert_eq!(report.tests[0].status, Status::NotRun);

    let mut script = checked("build-fail checker.cpp:1: error", &[("1\n", "1\n")]);
    script.source = Source::new("build-fail main.py:1: error").unwrap();
    let report = judged(&runtime, &script).await;
    assert_eq!(
        report.status,
        Status::BuildFailure,
        "the program's own failure comes first"
    );
    assert_eq!(
        runtime.stats().active.load(Ordering::SeqCst),
        0,
        "nothing is left built"
    );
}

#[tokio::test]
async fn an_scrc_shaped_script_is_worth_one_point_a_test_and_stops_at_its_first_failure() {
    let script = fixtures::script(
        "s",
        Language::Python,
        "echo",
        &[("a\n", "a\n"), ("b\n", "x\n"), ("c\n", "c\n")],
    );
    let report = judged(&FakeRuntime::new(), &script).await;
    assert_eq!(report.status, Status::WrongAnswer);
    assert_eq!(report.tests[2].status, Status::NotRun);
    assert_eq!((report.score.score.get(), report.score.max_score.get()), (1.0, 3.0));
    assert!(report.score.groups.is_empty());
}

#[tokio::test]
async fn a_scored_script_goes_on_after_a_failure_and_skips_only_what_a_failed_group_cannot_earn() {
    let runtime = FakeRuntime::new();
    // Tests 1-2 "easy" (test 2 fails), 3-4 "hard" needing "easy", 5 "other", 6 alone (fails), 7 alone.
    let tests = [
        ("1\n", "1\n"),
        ("2\n", "wrong\n"),
        ("3\n", "3\n"),
        ("4\n", "4\n"),
        ("5\n", "5\n"),
        ("6\n", "wrong\n"),
        ("7\n", "7\n"),
    ];
    let mut script = fixtures::script("s", Language::Python, "echo", &tests);
    script.groups = Groups::new(
        vec![
            fixtures::group("easy", &[1, 2], 20.0, &[]),
            fixtures::group("hard", &[3, 4], 30.0, &["easy"]),
            fixtures::group("other", &[5], 40.0, &[]),
        ],
        &[1, 2, 3, 4, 5, 6, 7],
    )
    .unwrap();
    let report = judged(&runtime, &script).await;
    let statuses: Vec<Status> = report.tests.iter().map(|test| test.status).collect();
    assert_eq!(
        statuses,
        [
            Status::Ok,
            Status::WrongAnswer,
            Status::NotRun,
            Status::NotRun,
            Status::Ok,
            Status::WrongAnswer,
            Status::Ok
        ]
    );
    assert!(
        report.tests[2].error.contains("needs group \"easy\""),
        "{}",
        report.tests[2].error
    );
    assert_eq!(
        runtime.stats().runs.load(Ordering::SeqCst),
        5,
        "the skipped tests never ran"
    );
    assert_eq!(
        report.status,
        Status::WrongAnswer,
        "the first failure still decides, as in SCRC"
    );
    assert_eq!(
        report.error,
        "test 2: wrong answer (exact): byte 0 (line 1): expected \"wrong\\n\", got \"2\\n\""
    );
    assert_eq!((report.score.score.get(), report.score.max_score.get()), (41.0, 92.0));
    assert_eq!(
        fixtures::group_outcomes(&report),
        [
            ("easy", Status::WrongAnswer, 0.0),
            ("hard", Status::NotRun, 0.0),
            ("other", Status::Ok, 40.0)
        ]
    );

    // With run_all_tests every test runs, and the scores are the same.
    script.run_all_tests = true;
    let runtime = FakeRuntime::new();
    let report = judged(&runtime, &script).await;
    assert_eq!(runtime.stats().runs.load(Ordering::SeqCst), 7);
    assert_eq!(report.score.score.get(), 41.0);
    assert_eq!(
        report.score.groups[1].status,
        Status::NotRun,
        "its tests passed, its dependency did not"
    );
}

#[tokio::test]
async fn points_alone_make_a_script_scored() {
    let mut script = fixtures::script("s", Language::Python, "echo", &[("a\n", "x\n"), ("b\n", "b\n")]);
    script.tests[1].points = Some(Points::new(2.5).unwrap());
    let report = judged(&FakeRuntime::new(), &script).await;
    assert_eq!(
        report.tests[1].status,
        Status::Ok,
        "a scored script goes on after test 1"
    );
    assert_eq!((report.score.score.get(), report.score.max_score.get()), (2.5, 3.5));
}

#[tokio::test]
async fn a_test_run_while_the_one_before_was_checked_is_discarded_when_that_check_ends_the_suite() {
    let runtime = FakeRuntime::new();
    let report = judged(
        &runtime,
        &checked("compare", &[("a\n", "x\n"), ("b\n", "b\n"), ("c\n", "c\n")]),
    )
    .await;
    let statuses: Vec<Status> = report.tests.iter().map(|test| test.status).collect();
    assert_eq!(statuses, [Status::WrongAnswer, Status::NotRun, Status::NotRun]);
    assert_eq!(
        runtime.stats().runs.load(Ordering::SeqCst),
        2,
        "test 2 ran beside test 1's check, and its run was dropped"
    );
    assert_eq!(runtime.stats().checks.load(Ordering::SeqCst), 1);
    assert!(
        report.tests[1].execution.is_none(),
        "nothing of the dropped run is reported"
    );
}
