//! Checker programs, points and subtask groups (issue 22), on real Docker: a testlib checker in C++ built with a
//! small testlib-style header of this test's own (shipped through the checker's `files`) answering with every exit
//! code testlib defines, a Python checker that accepts any valid answer and gives partial points, checkers that are
//! broken (they do not build, crash, hang or answer nonsense), a checker that tries to reach beyond its own sandbox,
//! and groups with a dependency. The fake-runtime twin of these rules is tests/scoring.rs.

mod support;

use std::sync::Arc;

use scrc::domain::{
    Checker, CheckerProgram, Groups, Language, Points, ProgramFile, ProgramPath, Script, Source, Status,
};
use scrc::testing::fixtures;
use support::*;

/// A testlib-style header: the calls a checker makes (`registerTestlibCmd`, `inf`/`ouf`/`ans` with `readWord`,
/// `quitf`, `quitp`, `_pc`) with testlib's messages on stderr and its exit codes (`PC_BASE_EXIT_CODE` 50, as
/// testlib defines it under TESTSYS).
const TESTLIB_H: &str = r#"#pragma once
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
enum TResult { _ok = 0, _wa = 1, _pe = 2, _fail = 3, _dirt = 4, _points = 7, _partially = 16 };
inline TResult _pc(int percent) { return TResult(_partially + percent); }
struct InStream {
    std::ifstream in;
    std::string readWord() { std::string word; in >> word; return word; }
};
InStream inf, ouf, ans;
inline void registerTestlibCmd(int argc, char* argv[]) {
    if (argc < 4) { std::fprintf(stderr, "FAIL usage: checker input output answer\n"); std::exit(3); }
    inf.in.open(argv[1]); ouf.in.open(argv[2]); ans.in.open(argv[3]);
    if (!inf.in || !ouf.in || !ans.in) { std::fprintf(stderr, "FAIL cannot open the files\n"); std::exit(3); }
}
[[noreturn]] inline void quitf(TResult result, const char* format, ...) {
    const char* names[] = {"ok", "wrong answer", "wrong output format", "FAIL", "wrong output format"};
    int code = result >= _partially ? 50 + (result - _partially) : int(result);
    std::fprintf(stderr, "%s ", result >= _partially ? "partially correct" : names[result]);
    va_list args; va_start(args, format); std::vfprintf(stderr, format, args); va_end(args);
    std::fprintf(stderr, "\n");
    std::exit(code);
}
[[noreturn]] inline void quitp(double points, const char* format, ...) {
    std::fprintf(stderr, "points %g ", points);
    va_list args; va_start(args, format); std::vfprintf(stderr, format, args); va_end(args);
    std::fprintf(stderr, "\n");
    std::exit(_points);
}
"#;

/// Does what the answer file says: each exit code testlib defines, and the ways a checker breaks.
const COMMANDED: &str = r#"#include "testlib.h"
#include <csignal>
int main(int argc, char* argv[]) {
    registerTestlibCmd(argc, argv);
    std::string want = ans.readWord(), got = ouf.readWord();
    if (got != want) quitf(_wa, "expected %s, found %s", want.c_str(), got.c_str());
    if (want == "ok") quitf(_ok, "1 word");
    if (want == "wa") quitf(_wa, "told so");
    if (want == "pe") quitf(_pe, "told so");
    if (want == "dirt") quitf(_dirt, "extra data");
    if (want == "points") quitp(0.25, "a quarter");
    if (want == "pc") quitf(_pc(40), "forty percent");
    if (want == "fail") quitf(_fail, "the answer file is broken");
    if (want == "crash") std::raise(SIGSEGV);
    if (want == "hang") { volatile bool spin = true; while (spin) {} }
    if (want == "nonsense") return 42;
    quitf(_fail, "unknown command %s", want.c_str());
}
"#;

fn file(path: &str, content: &str) -> ProgramFile {
    ProgramFile {
        path: ProgramPath::new(path).expect("a valid path"),
        content: content.as_bytes().to_vec(),
    }
}

fn checker(language: Language, source: &str, files: &[(&str, &str)]) -> Checker {
    Checker::Program(Arc::new(CheckerProgram {
        language,
        source: Source::new(source).expect("a source"),
        files: files.iter().map(|(path, content)| file(path, content)).collect(),
    }))
}

fn commanded() -> Checker {
    checker(Language::Cpp, COMMANDED, &[("testlib.h", TESTLIB_H)])
}

/// A Python program that prints its input, judged by `checker`, one test per command.
fn echoing(checker: Checker, commands: &[&str]) -> Script {
    let tests: Vec<(String, String)> = commands
        .iter()
        .map(|command| (format!("{command}\n"), format!("{command}\n")))
        .collect();
    let tests: Vec<(&str, &str)> = tests.iter().map(|(i, o)| (i.as_str(), o.as_str())).collect();
    let mut script = script(Language::Python, "print(input())", &tests);
    script.checker = checker;
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_testlib_checker_in_cpp_answers_with_every_exit_code_and_is_built_once() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let commands = ["ok", "wa", "pe", "dirt", "points", "pc", "fail"];
    let mut script = echoing(commanded(), &commands);
    script.run_all_tests = true;
    for test in &mut script.tests {
        test.points = Some(Points::new(10.0).unwrap());
    }
    let report = judged(&judge, &script).await;
    let seen: Vec<(Status, f64, &str)> = report
        .tests
        .iter()
        .map(|test| {
            (
                test.status,
                test.score().get(),
                test.checker_message.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Status::Ok, 10.0, "ok 1 word"),
            (Status::WrongAnswer, 0.0, "wrong answer told so"),
            (Status::WrongAnswer, 0.0, "wrong output format told so"),
            (Status::WrongAnswer, 0.0, "wrong output format extra data"),
            (Status::WrongAnswer, 2.5, "points 0.25 a quarter"),
            (Status::WrongAnswer, 4.0, "partially correct forty percent"),
            (Status::InternalError, 0.0, "FAIL the answer file is broken"),
        ],
        "{report:#?}"
    );
    assert_eq!(
        report.status,
        Status::InternalError,
        "a failing checker is never WA or OK"
    );
    assert!(
        report
            .error
            .contains("the checker is at fault: the checker failed (testlib's fail, exit code 3)"),
        "{}",
        report.error
    );
    assert_eq!((report.score.score.get(), report.score.max_score.get()), (16.5, 70.0));

    // Another script of the same problem: the checker (and this program, the same again) come from the artifact
    // cache, where it is on.
    let before = judge.runtime().artifact_cache_stats();
    let again = judged(&judge, &echoing(commanded(), &["ok"])).await;
    assert_eq!(again.status, Status::Ok, "{again:#?}");
    if let (Some(before), Some(after)) = (before, judge.runtime().artifact_cache_stats()) {
        assert!(
            after.hits > before.hits,
            "no build came from the cache: {before:?} -> {after:?}"
        );
        assert_eq!(
            after.misses, before.misses,
            "something was built again: {before:?} -> {after:?}"
        );
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_checker_is_ie_naming_the_checker_never_the_programs_verdict() {
    let Some((judge, config)) = judge(&[("RUNNER_CHECKER_TIME_LIMIT", "2s")]).await else {
        return;
    };
    for (command, why) in [
        ("crash", "it was killed by signal 11"),
        ("hang", "it exceeded its time limit of 2000 ms"),
        (
            "nonsense",
            "the checker exited with code 42, which testlib does not define",
        ),
    ] {
        let report = judged(&judge, &echoing(commanded(), &[command, "ok"])).await;
        assert_eq!(report.status, Status::InternalError, "{command}: {report:#?}");
        assert_eq!(report.tests[0].status, Status::InternalError, "{command}");
        assert!(
            report.tests[0]
                .error
                .starts_with(&format!("the checker is at fault: {why}")),
            "{command}: {}",
            report.tests[0].error
        );
        assert_eq!(
            report.tests[1].status,
            Status::NotRun,
            "{command}: a broken checker judges nothing more"
        );
    }
    let report = judged(&judge, &echoing(checker(Language::Cpp, "int main( {", &[]), &["ok"])).await;
    assert_eq!(report.status, Status::InternalError, "{report:#?}");
    assert!(
        report.error.starts_with("the checker does not build"),
        "{}",
        report.error
    );
    assert!(report.error.contains("error"), "the compiler's words: {}", report.error);
    // The program's own failure needs no checker: RE, not the checker's IE.
    let mut crashing = echoing(commanded(), &["ok"]);
    crashing.source = Source::new("raise SystemExit(3)").unwrap();
    let report = judged(&judge, &crashing).await;
    assert_eq!(report.status, Status::RuntimeError, "{report:#?}");
    assert_eq!(report.tests[0].checker_message, None);
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// A Python checker for "print two non-negative numbers that add up to n": any such pair is right, a pair one
/// over is worth half the points.
const ANY_PAIR: &str = r#"import sys
n = int(open(sys.argv[1]).read())
try:
    a, b = map(int, open(sys.argv[2]).read().split())
except ValueError:
    print("wrong output format: expected two integers", file=sys.stderr)
    sys.exit(2)
if a >= 0 and b >= 0 and a + b == n:
    print(f"ok {a} + {b} = {n}", file=sys.stderr)
    sys.exit(0)
if a + b == n + 1:
    print(f"points 0.5 {a} + {b} is one over", file=sys.stderr)
    sys.exit(7)
print(f"wrong answer {a} + {b} != {n}", file=sys.stderr)
sys.exit(1)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_checker_accepts_any_valid_answer_and_groups_score_with_their_dependency() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    // The program answers n=1..6 its own way: right for 1, 2, 4, 5 (two different right pairs), one over for 3,
    // wrong for 6. Groups: "small" = 1, 2 (30 points); "medium" = 3, 4 needs "small" (30); "large" = 5, 6 needs
    // "medium" (40). Test 7 (n=7) is alone and right. Test 3 is partly right: "medium" still runs test 4 (its score
    // is the smaller fraction), but "large", which needs "medium" in full, can earn nothing and is skipped.
    let program =
        "n = int(input())\nprint({1: '0 1', 2: '2 0', 3: '2 2', 4: '1 3', 5: '5 0', 6: '9 9'}.get(n, f'{n} 0'))\n";
    let inputs: Vec<String> = (1..=7).map(|n| format!("{n}\n")).collect();
    let tests: Vec<(&str, &str)> = inputs.iter().map(|input| (input.as_str(), "")).collect();
    let mut script = script(Language::Python, program, &tests);
    script.checker = checker(Language::Python, ANY_PAIR, &[]);
    script.groups = Groups::new(
        vec![
            fixtures::group("small", &[1, 2], 30.0, &[]),
            fixtures::group("medium", &[3, 4], 30.0, &["small"]),
            fixtures::group("large", &[5, 6], 40.0, &["medium"]),
        ],
        &[1, 2, 3, 4, 5, 6, 7],
    )
    .unwrap();
    let report = judged(&judge, &script).await;
    let statuses: Vec<Status> = report.tests.iter().map(|test| test.status).collect();
    assert_eq!(
        statuses,
        [
            Status::Ok,
            Status::Ok,
            Status::WrongAnswer,
            Status::Ok,
            Status::NotRun,
            Status::NotRun,
            Status::Ok
        ],
        "{report:#?}"
    );
    assert_eq!(
        report.tests[2].score().get(),
        0.5,
        "a partly right answer earns its fraction"
    );
    assert_eq!(
        report.tests[2].checker_message.as_deref(),
        Some("points 0.5 2 + 2 is one over")
    );
    assert!(
        report.tests[4].error.contains("needs group \"medium\" in full"),
        "{}",
        report.tests[4].error
    );
    assert_eq!(
        fixtures::group_outcomes(&report),
        [
            ("small", Status::Ok, 30.0),
            ("medium", Status::WrongAnswer, 15.0),
            ("large", Status::NotRun, 0.0)
        ]
    );
    assert_eq!((report.score.score.get(), report.score.max_score.get()), (46.0, 101.0));
    assert_eq!(
        report.status,
        Status::WrongAnswer,
        "the first failing test decides, as in SCRC"
    );

    // With run_all_tests every test runs, and test 6's wrong answer has the checker's word.
    script.run_all_tests = true;
    let report = judged(&judge, &script).await;
    assert_eq!(report.tests[5].status, Status::WrongAnswer, "{report:#?}");
    assert_eq!(
        report.tests[5].checker_message.as_deref(),
        Some("wrong answer 9 + 9 != 6")
    );
    assert_eq!(report.score.score.get(), 46.0, "the same score");
    script.run_all_tests = false;

    // Test 2 wrong: "small" fails, so "medium" and "large" (which needs it through "medium") are skipped; test 7
    // still runs and scores.
    script.source = Source::new("n = int(input())\nprint('0 0' if n == 2 else f'{n} 0')\n").unwrap();
    let report = judged(&judge, &script).await;
    let statuses: Vec<Status> = report.tests.iter().map(|test| test.status).collect();
    assert_eq!(
        statuses,
        [
            Status::Ok,
            Status::WrongAnswer,
            Status::NotRun,
            Status::NotRun,
            Status::NotRun,
            Status::NotRun,
            Status::Ok
        ],
        "{report:#?}"
    );
    assert!(
        report.tests[4].error.contains("needs group \"small\""),
        "{}",
        report.tests[4].error
    );
    assert_eq!(report.score.score.get(), 1.0);
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// A checker that tries to leave its sandbox: to write a verdict where the program runs, to read the program, the
/// host's secrets or another test's files, and to reach the engine. It accepts the (wrong) output only if one of
/// them worked.
const ESCAPING: &str = r#"import os, socket, sys
reached = []
def tried(what, attempt):
    try:
        attempt()
        reached.append(what)
    except Exception:
        pass
tried("wrote /box/verdict", lambda: open("/box/verdict", "w").write("ok"))
tried("read /etc/shadow", lambda: open("/etc/shadow").read())
tried("changed the output it was given", lambda: open("/tmp/output.txt", "a").write("ok"))
def engine():
    s = socket.socket(socket.AF_UNIX)
    s.connect("/var/run/docker.sock")
tried("reached the engine", engine)
def program():
    for pid in os.listdir("/proc"):
        if pid.isdigit() and b"main.py" in open(f"/proc/{pid}/cmdline", "rb").read() and pid != str(os.getpid()):
            return
    raise LookupError
tried("saw the program's process", program)
def source():
    # Put together at run time, so that neither the checker's source nor its bytecode holds the program's mark.
    mark = "-".join(["STUDENT", "MARKER"]).encode()
    for root, _, files in os.walk("/"):
        if root.startswith(("/proc", "/sys", "/usr", "/dev")):
            continue
        for name in files:
            path = os.path.join(root, name)
            try:
                if mark in open(path, "rb").read(1 << 16):
                    reached.append("read the program's source at " + path)
                    return
            except OSError:
                pass
source()
if reached:
    print("ok " + ", ".join(reached), file=sys.stderr)
    sys.exit(0)
print("wrong answer every attempt was refused", file=sys.stderr)
sys.exit(1)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checker_cannot_write_into_the_programs_sandbox_or_read_beyond_its_three_files() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    // The program's output is wrong, so only a checker that reached something would accept it; it lists its own
    // directory, where a verdict written from outside would show.
    let program = "# STUDENT-MARKER\nimport os\nprint('wrong')\nprint(sorted(os.listdir('/box')))\n";
    let mut script = script(Language::Python, program, &[("1\n", "right\n"), ("2\n", "right\n")]);
    script.checker = checker(Language::Python, ESCAPING, &[]);
    script.run_all_tests = true;
    let report = judged(&judge, &script).await;
    for test in &report.tests {
        assert_eq!(test.status, Status::WrongAnswer, "{report:#?}");
        assert_eq!(
            test.checker_message.as_deref(),
            Some("wrong answer every attempt was refused")
        );
        let listed = String::from_utf8_lossy(test.stdout());
        assert!(
            !listed.contains("verdict"),
            "the program's directory gained a file: {listed}"
        );
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}
