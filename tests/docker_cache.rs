//! The artifact cache on real Docker (`RUNNER_ARTIFACT_CACHE_BYTES`, on by default): a program seen before is not
//! compiled again, gets the same verdicts as when it was, and is as immutable to its tests as a freshly built one;
//! a compile error comes back with its diagnostics; with the cache off nothing is kept.

mod support;

use scrc::adapters::docker::DockerRuntime;
use scrc::adapters::docker::artifacts::CacheStats;
use scrc::app::Judge;
use scrc::domain::{Language, Status};
use scrc::testing::fixtures::sum_program;
use support::*;

/// The cache's counters, or `None` when the cache is off.
fn stats(judge: &Judge<DockerRuntime>) -> Option<CacheStats> {
    judge.runtime().artifact_cache_stats()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_language_is_compiled_once_and_judged_the_same_from_the_cache() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let languages = [
        Language::Python,
        Language::C,
        Language::Cpp,
        Language::Go,
        Language::Java,
    ];
    for language in languages {
        let first = judged(&judge, &script(language, sum_program(language), &[("1 2\n", "3\n")])).await;
        assert_eq!(first.status, Status::Ok, "{language}: {first:#?}");
        // The same program with other tests: one right, one wrong.
        let tests = [("40 2\n", "42\n"), ("2 2\n", "5\n")];
        let again = judged(&judge, &script(language, sum_program(language), &tests)).await;
        assert_eq!(again.status, Status::WrongAnswer, "{language}: {again:#?}");
        assert_eq!(again.tests[0].status, Status::Ok, "{language}: {again:#?}");
        assert_eq!(again.tests[1].stdout(), b"4\n", "{language}: the program's own answer");
    }
    let stats = stats(&judge).expect("the cache is on by default");
    assert_eq!((stats.misses, stats.stored, stats.hits), (5, 5, 5), "{stats:?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compile_error_comes_back_from_the_cache_with_its_diagnostics() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let broken = "#include <stdio.h>\nint main(void){ printf(\"%d\\n\", missing); }\n";
    let first = judged(&judge, &script(Language::C, broken, &[("", "")])).await;
    let again = judged(&judge, &script(Language::C, broken, &[("", "")])).await;
    for report in [&first, &again] {
        assert_eq!(report.status, Status::BuildFailure, "{report:#?}");
        assert!(
            String::from_utf8_lossy(&report.stderr).contains("missing"),
            "the compiler's diagnostics: {report:#?}"
        );
    }
    assert_eq!((&first.stderr, &first.error), (&again.stderr, &again.error));
    let stats = stats(&judge).expect("the cache is on by default");
    assert_eq!((stats.misses, stats.hits), (1, 1), "{stats:?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_program_is_as_immutable_to_its_tests_as_a_built_one() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    // Built, then twice from the cache: each run tries to change the program, and the next finds it intact.
    for round in 0..3 {
        let report = judged(&judge, &tampering_script()).await;
        assert_eq!(report.status, Status::Ok, "round {round}: {report:#?}");
    }
    let stats = stats(&judge).expect("the cache is on by default");
    assert_eq!((stats.misses, stats.hits), (1, 2), "{stats:?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_off_every_script_is_compiled() {
    let Some((judge, config)) = judge(&[("RUNNER_ARTIFACT_CACHE_BYTES", "0")]).await else {
        return;
    };
    for _ in 0..2 {
        let report = judged(
            &judge,
            &script(Language::C, sum_program(Language::C), &[("1 2\n", "3\n")]),
        )
        .await;
        assert_eq!(report.status, Status::Ok, "{report:#?}");
    }
    assert_eq!(stats(&judge), None);
    assert_clean_and_serving(&judge, &config.instance).await;
}
