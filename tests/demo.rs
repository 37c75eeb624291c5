//! `scrc-demo`, the README's main command, run as a user runs it: the binary, one process, every verdict checked.

mod support;

use std::process::Command;

/// Runs `scrc-demo` with `args` and returns its table (stdout), after checking that it passed; `None` without a
/// Docker engine (a failure under `CI=true`).
fn demo(args: &[&str]) -> Option<String> {
    let docker = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !docker {
        assert!(!support::in_ci(), "CI=true and no Docker engine");
        eprintln!("skipping: no Docker engine");
        return None;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_scrc-demo"))
        .args(args)
        .output()
        .expect("run scrc-demo");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");
    Some(stdout)
}

#[test]
fn the_demo_judges_the_whole_library_correctly() {
    let Some(stdout) = demo(&[]) else {
        return;
    };
    assert!(
        stdout.contains("sent 34, mismatched 0, missing 0, conflicting 0: PASSED"),
        "{stdout}"
    );
    // The four problems, each with its status and score: a checker accepting any answer, partial points, a broken
    // checker and subtask groups.
    for (problem, want) in [
        ("subtasks", "WA 21/101"),
        ("partial-points", "WA 2.5/3"),
        ("any-answer", "OK 3/3"),
        ("broken-checker", "IE 0/2"),
    ] {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(problem))
            .unwrap_or_default();
        assert!(row.contains(want) && row.ends_with(" ok"), "{problem}: {row}\n{stdout}");
    }
    for language in ["c ", "cpp", "go", "java", "python"] {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(language))
            .unwrap_or_default();
        assert_eq!(row.matches(" ok").count(), 6, "{language}: {row}");
    }
}

#[test]
fn the_demo_judges_all_twelve_languages_with_the_flag() {
    let Some(stdout) = demo(&["--all-languages"]) else {
        return;
    };
    assert!(
        stdout.contains("sent 76, mismatched 0, missing 0, conflicting 0: PASSED"),
        "{stdout}"
    );
    for language in scrc::domain::Language::ALL {
        let name = format!("{:<10} |", language.as_str());
        let row = stdout.lines().find(|line| line.starts_with(&name)).unwrap_or_default();
        assert_eq!(row.matches(" ok").count(), 6, "{language}: {row}");
    }
}
