//! The app layer against hand-written fakes: no Kafka, no Docker. Time is paused, so the sleeps of the fake
//! programs order completions deterministically.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use scrc::adapters::kafka::{Position, RawRecord};
use scrc::app::{Backoff, CircuitBreaker, Executor, ExecutorSettings, Judge, RetryPolicy, StopReason, Summary};
use scrc::domain::{Language, LimitPolicy, Limits, MemoryLimit, Script, ScriptId, Status, TestCase, TimeLimit};
use scrc::ports::{Inbound, Observer, Unreadable};
use scrc::testing::{FakePublisher, FakeRuntime, FakeSource, HeldCounts, fixtures};
use tokio_util::sync::CancellationToken;

const MIB: u64 = 1024 * 1024;

fn policy() -> LimitPolicy {
    LimitPolicy {
        default: Limits {
            time: TimeLimit::new(Duration::from_secs(5)).unwrap(),
            memory: MemoryLimit::new(256 * MIB).unwrap(),
            cpu_time: None,
        },
        max: Limits {
            time: TimeLimit::new(Duration::from_secs(20)).unwrap(),
            memory: MemoryLimit::new(1024 * MIB).unwrap(),
            cpu_time: None,
        },
        min_memory: MemoryLimit::new(6 * MIB).unwrap(),
        max_tests: 8,
        checker: Limits {
            time: TimeLimit::new(Duration::from_secs(10)).unwrap(),
            memory: MemoryLimit::new(256 << 20).unwrap(),
            cpu_time: None,
        },
    }
}

fn settings_for(max_parallel: usize) -> ExecutorSettings {
    ExecutorSettings {
        max_parallel,
        tenant_max_parallel: None,
        lookahead: 4 * max_parallel,
        script_expected: None,
        shutdown_grace: Duration::from_secs(30),
        cleanup_grace: Duration::from_secs(5),
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
        recent_ids: 1000,
        script_deadline: Duration::from_secs(3600),
    }
}

struct Harness {
    source: Arc<FakeSource>,
    publisher: Arc<FakePublisher>,
    runtime: FakeRuntime,
    stop: CancellationToken,
}

impl Harness {
    fn new() -> Self {
        Self {
            source: Arc::new(FakeSource::new()),
            publisher: Arc::new(FakePublisher::new()),
            runtime: FakeRuntime::new(),
            stop: CancellationToken::new(),
        }
    }

    fn executor(&self, settings: ExecutorSettings) -> Executor<FakeSource, FakePublisher, FakeRuntime> {
        let breaker = Arc::new(CircuitBreaker::new(3, Duration::from_secs(1)));
        let retry = RetryPolicy {
            attempts: 3,
            backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(50)),
            breaker_wait: Duration::from_secs(2),
        };
        let judge = Judge::new(self.runtime.clone(), policy(), breaker, retry);
        Executor::new(Arc::clone(&self.source), Arc::clone(&self.publisher), judge, settings)
    }

    async fn run(&self, settings: ExecutorSettings) -> Summary {
        self.executor(settings).run(self.stop.clone()).await
    }
}

fn script(id: &str, source: &str, tests: &[(&str, &str)]) -> Script {
    fixtures::script(id, Language::Python, source, tests)
}

fn status_of(publisher: &FakePublisher, id: &str) -> Status {
    publisher
        .reports()
        .iter()
        .find(|report| report.id.as_str() == id)
        .map(|report| report.status)
        .unwrap_or_else(|| panic!("no report for {id}"))
}

#[tokio::test(start_paused = true)]
async fn the_parallelism_bound_holds_and_no_more_scripts_are_fetched_than_slots() {
    let harness = Harness::new();
    for n in 0..12 {
        harness.source.push(Inbound::Script(script(
            &format!("s{n}"),
            "sleep 100\necho",
            &[("x", "x")],
        )));
    }
    let mut settings = settings_for(3);
    settings.script_expected = Some(12);
    let executor = harness.executor(settings);
    let stop = harness.stop.clone();
    let running = tokio::spawn(executor.run(stop));

    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        harness.source.delivered(),
        3,
        "backpressure: only as many messages as slots are fetched"
    );

    let summary = running.await.unwrap();
    assert_eq!(summary.stop, StopReason::Expected);
    assert_eq!(summary.published.get(&Status::Ok), Some(&12));
    let stats = harness.runtime.stats();
    assert_eq!(
        stats.max_active.load(Ordering::SeqCst),
        3,
        "three scripts ran at once, never more"
    );
    assert_eq!(stats.released.load(Ordering::SeqCst), 12, "every program was released");
    assert_eq!(harness.source.committed(0), Some(12));
}

#[tokio::test(start_paused = true)]
async fn commits_stay_contiguous_when_later_offsets_finish_first() {
    let harness = Harness::new();
    for (n, millis) in [40, 10, 30, 20].iter().enumerate() {
        harness.source.push(Inbound::Script(script(
            &format!("s{n}"),
            &format!("sleep {millis}"),
            &[],
        )));
    }
    let mut settings = settings_for(4);
    settings.script_expected = Some(4);
    harness.run(settings).await;
    assert_eq!(
        harness.source.commits(),
        [(0, 1, 4)],
        "offsets 1..3 finish before 0, so nothing is committed until 0 is done"
    );

    let harness = Harness::new();
    for (n, millis) in [10, 40, 20, 30].iter().enumerate() {
        harness.source.push(Inbound::Script(script(
            &format!("s{n}"),
            &format!("sleep {millis}"),
            &[],
        )));
    }
    let mut settings = settings_for(4);
    settings.script_expected = Some(4);
    harness.run(settings).await;
    assert_eq!(harness.source.commits(), [(0, 1, 1), (0, 1, 4)]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_in_flight_work_and_leaves_the_abandoned_script_uncommitted() {
    let harness = Harness::new();
    harness.source.push(Inbound::Script(script("quick", "sleep 50", &[])));
    harness
        .source
        .push(Inbound::Script(script("endless", "sleep 100000", &[])));
    harness
        .source
        .push(Inbound::Script(script("never-fetched", "echo", &[])));
    let mut settings = settings_for(2);
    settings.shutdown_grace = Duration::from_millis(500);
    let executor = harness.executor(settings);
    let stop = harness.stop.clone();
    let running = tokio::spawn(executor.run(stop));

    tokio::time::sleep(Duration::from_millis(10)).await;
    harness.stop.cancel();
    let summary = running.await.unwrap();

    assert_eq!(summary.stop, StopReason::Requested);
    assert_eq!(summary.abandoned, 1);
    let reports = harness.publisher.reports();
    assert_eq!(
        reports.len(),
        1,
        "only the script that finished within the grace period is published"
    );
    assert_eq!(reports[0].id.as_str(), "quick");
    assert_eq!(
        harness.source.commits(),
        [(0, 1, 1)],
        "the abandoned offset 1 is not committed"
    );
    assert!(
        harness.source.is_closed(),
        "the source is closed: final commit and leave the group"
    );
    let stats = harness.runtime.stats();
    assert_eq!(
        stats.released.load(Ordering::SeqCst),
        stats.prepared.load(Ordering::SeqCst),
        "the abandoned script's sandbox was released"
    );
    assert_eq!(
        harness.source.delivered(),
        2,
        "nothing is fetched after shutdown starts"
    );
}

#[tokio::test(start_paused = true)]
async fn a_done_message_finishes_in_flight_work_and_stops() {
    let harness = Harness::new();
    harness.source.push(Inbound::Script(script("before", "sleep 30", &[])));
    harness.source.push(Inbound::Done);
    harness.source.push(Inbound::Script(script("after", "echo", &[])));
    let summary = harness.run(settings_for(4)).await;
    assert_eq!(summary.stop, StopReason::Done);
    assert_eq!(status_of(&harness.publisher, "before"), Status::Ok);
    assert_eq!(
        harness.publisher.reports().len(),
        1,
        "the script after `done` is left for another instance"
    );
    assert_eq!(
        harness.source.committed(0),
        Some(2),
        "the done message itself is committed"
    );
}

#[tokio::test(start_paused = true)]
async fn verdicts_flow_through_from_the_runtime() {
    let harness = Harness::new();
    let cases = [
        ("ok", "echo", Status::Ok),
        ("wa", "print nope", Status::WrongAnswer),
        ("tl", "timeout", Status::TimeLimit),
        ("ml", "oom", Status::MemoryLimit),
        ("ol", "flood", Status::OutputLimit),
        ("re", "echo\nexit 3", Status::RuntimeError),
        ("bf", "build-fail main.c:1: error", Status::BuildFailure),
    ];
    for (id, source, _) in cases {
        harness
            .source
            .push(Inbound::Script(script(id, source, &[("7\n", "7\n"), ("8\n", "8\n")])));
    }
    let mut settings = settings_for(2);
    settings.script_expected = Some(cases.len() as u64);
    harness.run(settings).await;
    for (id, _, expected) in cases {
        assert_eq!(status_of(&harness.publisher, id), expected, "{id}");
    }
    let reports = harness.publisher.reports();
    let wa = reports.iter().find(|r| r.id.as_str() == "wa").unwrap();
    assert_eq!(wa.tests[0].status, Status::WrongAnswer);
    assert_eq!(wa.tests[1].status, Status::NotRun, "later tests get `-`");
    let bf = reports.iter().find(|r| r.id.as_str() == "bf").unwrap();
    assert_eq!(bf.stderr, b"main.c:1: error");
}

#[tokio::test(start_paused = true)]
async fn run_all_tests_runs_every_test() {
    let harness = Harness::new();
    let mut all = script("all", "print 1", &[("", "1\n"), ("", "2\n"), ("", "1\n")]);
    all.run_all_tests = true;
    harness.source.push(Inbound::Script(all));
    let mut settings = settings_for(1);
    settings.script_expected = Some(1);
    harness.run(settings).await;
    let report = &harness.publisher.reports()[0];
    let statuses: Vec<Status> = report.tests.iter().map(|t| t.status).collect();
    assert_eq!(statuses, [Status::Ok, Status::WrongAnswer, Status::Ok]);
    assert_eq!(report.status, Status::WrongAnswer);
}

#[tokio::test(start_paused = true)]
async fn rejected_and_unreadable_messages_get_results_and_dead_letters_and_the_offset_moves_on() {
    let harness = Harness::new();
    harness.source.push(Inbound::Rejected {
        id: ScriptId::new("bad-lang").unwrap(),
        language: None,
        reason: "unknown language \"rust\"".into(),
    });
    let letter = |id: Option<&str>| Unreadable {
        reason: "not JSON".into(),
        id: id.map(|id| ScriptId::new(id).unwrap()),
        raw: RawRecord {
            origin: "scripts:0:1".into(),
            payload: Some(b"{oops".to_vec()),
            key: id.map(|id| id.as_bytes().to_vec()),
            headers: vec![("trace".into(), Some(b"abc".to_vec()))],
        },
    };
    harness.source.push(Inbound::Unreadable(letter(Some("keyed"))));
    harness.source.push(Inbound::Unreadable(letter(None)));
    let mut too_many = script("too-many", "echo", &[]);
    too_many.tests = (1..=9)
        .map(|number| TestCase {
            number,
            input: String::new(),
            expected_output: String::new(),
            points: None,
        })
        .collect();
    harness.source.push(Inbound::Script(too_many));
    harness
        .source
        .push(Inbound::Script(script("fine", "echo", &[("a", "a")])));
    let mut settings = settings_for(1);
    settings.script_expected = Some(5);
    let summary = harness.run(settings).await;

    assert_eq!(status_of(&harness.publisher, "bad-lang"), Status::Rejected);
    assert_eq!(status_of(&harness.publisher, "keyed"), Status::Rejected);
    assert_eq!(status_of(&harness.publisher, "too-many"), Status::Rejected);
    assert_eq!(status_of(&harness.publisher, "fine"), Status::Ok);
    assert_eq!(harness.publisher.dead_letters().len(), 2);
    assert_eq!(
        harness.publisher.dead_letters()[0].headers.len(),
        1,
        "original headers are kept"
    );
    assert_eq!(summary.set_aside, 2);
    assert_eq!(
        summary.published.values().sum::<u64>() + summary.set_aside,
        6,
        "the unreadable message that names its id counts as a result and a dead letter"
    );
    assert_eq!(summary.answered, 5, "but as one message answered");
    assert_eq!(harness.source.committed(0), Some(5));
}

#[tokio::test(start_paused = true)]
async fn an_unacknowledged_result_is_retried_and_its_offset_waits_for_the_acknowledgement() {
    let harness = Harness::new();
    harness.publisher.fail_next(4);
    harness
        .source
        .push(Inbound::Script(script("retry-me", "echo", &[("a", "a")])));
    let mut settings = settings_for(1);
    settings.script_expected = Some(1);
    let executor = harness.executor(settings);
    let running = tokio::spawn(executor.run(harness.stop.clone()));

    tokio::time::sleep(Duration::from_millis(15)).await;
    assert!(harness.publisher.attempts() >= 1);
    assert!(harness.publisher.reports().is_empty());
    assert_eq!(
        harness.source.committed(0),
        None,
        "nothing is committed before the broker acknowledges"
    );

    running.await.unwrap();
    assert_eq!(harness.publisher.attempts(), 5);
    assert_eq!(status_of(&harness.publisher, "retry-me"), Status::Ok);
    assert_eq!(harness.source.committed(0), Some(1));
}

#[tokio::test(start_paused = true)]
async fn infrastructure_failures_are_retried_then_reported_as_ie_never_ok_or_wa() {
    let harness = Harness::new();
    harness
        .source
        .push(Inbound::Script(script("flaky", "flaky 2\necho", &[("a", "a")])));
    harness
        .source
        .push(Inbound::Script(script("broken", "broken", &[("a", "a")])));
    let mut settings = settings_for(1);
    settings.script_expected = Some(2);
    harness.run(settings).await;
    assert_eq!(
        status_of(&harness.publisher, "flaky"),
        Status::Ok,
        "two hiccups are absorbed by retries"
    );
    let reports = harness.publisher.reports();
    let broken = reports.iter().find(|r| r.id.as_str() == "broken").unwrap();
    assert_eq!(broken.status, Status::InternalError);
    assert!(broken.error.contains("fake engine is broken"), "{}", broken.error);
    assert_eq!(broken.tests[0].status, Status::NotRun);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_stops_fetching_so_the_queue_is_not_burnt() {
    let harness = Harness::new();
    for n in 0..5 {
        harness
            .source
            .push(Inbound::Script(script(&format!("b{n}"), "broken", &[])));
    }
    let executor = harness.executor(settings_for(1));
    let running = tokio::spawn(executor.run(harness.stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The first script burns 3 attempts and opens the breaker (threshold 3); the executor then waits instead of
    // fetching the rest.
    assert_eq!(harness.publisher.reports().len(), 1);
    assert_eq!(harness.source.delivered(), 1);
    harness.stop.cancel();
    running.await.unwrap();
    assert_eq!(
        harness.source.committed(0),
        Some(1),
        "the untouched scripts stay in the queue"
    );
}

#[tokio::test(start_paused = true)]
async fn a_script_past_the_per_script_deadline_is_stopped_and_reported_ie() {
    let harness = Harness::new();
    harness
        .source
        .push(Inbound::Script(script("slow", "sleep 100000", &[("", "")])));
    let mut settings = settings_for(1);
    settings.script_expected = Some(1);
    // Shorter than the shutdown grace, which starts as soon as SCRIPT_EXPECTED is reached.
    settings.script_deadline = Duration::from_secs(20);
    harness.run(settings).await;
    let report = &harness.publisher.reports()[0];
    assert_eq!(report.status, Status::InternalError);
    assert!(report.error.contains("deadline of 20 s"), "{}", report.error);
    assert_eq!(
        harness.source.committed(0),
        Some(1),
        "a reported script is committed like any other"
    );
    let stats = harness.runtime.stats();
    assert_eq!(stats.released.load(Ordering::SeqCst), 1, "its sandbox was released");
}

#[tokio::test(start_paused = true)]
async fn a_reused_id_with_different_content_is_rejected_but_a_redelivery_is_answered_again() {
    let harness = Harness::new();
    harness
        .source
        .push(Inbound::Script(script("same", "echo", &[("a", "a")])));
    harness
        .source
        .push(Inbound::Script(script("same", "echo", &[("a", "a")])));
    harness
        .source
        .push(Inbound::Script(script("same", "print other", &[("a", "a")])));
    let mut settings = settings_for(1);
    settings.script_expected = Some(3);
    harness.run(settings).await;
    let statuses: Vec<Status> = harness.publisher.reports().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Status::Ok, Status::Ok, Status::Rejected]);
    assert!(harness.publisher.reports()[2].error.contains("duplicate id"));
}

#[tokio::test(start_paused = true)]
async fn a_dead_letter_the_broker_refuses_as_too_large_still_goes_out_and_the_offset_moves_on() {
    let harness = Harness::new();
    // The broker takes nothing over 1,000 bytes; the unreadable message alone is 4,000.
    harness.publisher.limit_record_bytes(1000);
    harness.source.push(Inbound::Unreadable(Unreadable {
        reason: "the message is not valid JSON".into(),
        id: None,
        raw: RawRecord {
            origin: "scripts:0:0".into(),
            payload: Some(vec![b'{'; 4000]),
            key: Some(b"k".to_vec()),
            headers: vec![("trace".into(), Some(b"abc".to_vec()))],
        },
    }));
    harness
        .source
        .push(Inbound::Script(script("after", "echo", &[("a", "a")])));
    let mut settings = settings_for(1);
    settings.script_expected = Some(2);
    let summary = harness.run(settings).await;

    let letters = harness.publisher.dead_letters();
    assert_eq!(letters.len(), 1, "the unreadable message is still dead-lettered");
    assert_eq!(letters[0].origin, "scripts:0:0", "the origin survives");
    assert_eq!(letters[0].payload, None, "the content that did not fit is left out");
    assert!(letters[0].reason.contains("not valid JSON"), "{}", letters[0].reason);
    assert!(letters[0].reason.contains("4000 bytes"), "{}", letters[0].reason);
    assert_eq!(summary.set_aside, 1);
    assert_eq!(status_of(&harness.publisher, "after"), Status::Ok);
    assert_eq!(
        harness.source.committed(0),
        Some(2),
        "the dead-lettered offset finished, so everything after it is committed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_record_that_fits_nowhere_still_finishes_its_offset() {
    let harness = Harness::new();
    // Not even the bare reason fits: the message is logged and given up rather than blocking the partition.
    harness.publisher.limit_record_bytes(10);
    harness.source.push(Inbound::Unreadable(Unreadable {
        reason: "the message is not valid JSON".into(),
        id: None,
        raw: RawRecord {
            origin: "scripts:0:0".into(),
            payload: Some(vec![b'{'; 100]),
            key: None,
            headers: Vec::new(),
        },
    }));
    let mut settings = settings_for(1);
    settings.script_expected = Some(1);
    harness.run(settings).await;
    assert!(
        harness.publisher.attempts() <= 3,
        "{} attempts",
        harness.publisher.attempts()
    );
    assert_eq!(harness.source.committed(0), Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_result_the_broker_refuses_forever_ends_in_a_dead_letter_and_the_offset_moves_on() {
    let harness = Harness::new();
    // Neither the report nor its IE replacement (same id) can ever be published.
    harness.publisher.refuse_reports_for("stuck");
    harness
        .source
        .push(Inbound::Script(script("stuck", "echo", &[("a", "a")])));
    harness
        .source
        .push(Inbound::Script(script("after", "echo", &[("a", "a")])));
    let mut settings = settings_for(1);
    settings.script_expected = Some(2);
    let summary = harness.run(settings).await;

    let letters = harness.publisher.dead_letters();
    assert_eq!(
        letters.len(),
        1,
        "the unpublishable result ends in the dead-letter topic"
    );
    assert_eq!(letters[0].key.as_deref(), Some(&b"stuck"[..]), "keyed by the script id");
    assert!(
        letters[0].reason.contains("result") && letters[0].reason.contains("could not be published"),
        "{}",
        letters[0].reason
    );
    assert!(letters[0].reason.len() < 300, "a short reason: {}", letters[0].reason);
    assert_eq!(letters[0].origin, "scripts:0:0");
    assert!(
        harness.publisher.attempts() <= 5,
        "bounded: report, IE, dead letter, then the next script ({} attempts)",
        harness.publisher.attempts()
    );
    assert_eq!(summary.set_aside, 1);
    assert_eq!(status_of(&harness.publisher, "after"), Status::Ok);
    assert_eq!(harness.source.committed(0), Some(2));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_script_task_is_reported_ie_and_its_offset_finishes() {
    let harness = Harness::new();
    harness
        .source
        .push(Inbound::Script(script("boom", "echo\npanic", &[("a", "a")])));
    harness
        .source
        .push(Inbound::Script(script("after", "echo", &[("a", "a")])));
    let mut settings = settings_for(2);
    settings.script_expected = Some(2);
    let summary = harness.run(settings).await;

    let reports = harness.publisher.reports();
    let boom = reports
        .iter()
        .find(|r| r.id.as_str() == "boom")
        .expect("the panicking script gets a result");
    assert_eq!(boom.status, Status::InternalError);
    assert!(boom.error.contains("fake runtime told to panic"), "{}", boom.error);
    assert_eq!(status_of(&harness.publisher, "after"), Status::Ok);
    assert_eq!(summary.abandoned, 0);
    assert_eq!(summary.published.get(&Status::InternalError), Some(&1));
    assert_eq!(
        harness.source.committed(0),
        Some(2),
        "the panicked offset finished, so the partition moves on"
    );
}

#[tokio::test(start_paused = true)]
async fn a_final_commit_that_hangs_cannot_hold_up_shutdown() {
    let harness = Harness::new();
    harness.source.hang_on_close();
    harness.source.push(Inbound::Script(script("quick", "echo", &[])));
    harness
        .source
        .push(Inbound::Script(script("endless", "sleep 100000", &[])));
    let mut settings = settings_for(2);
    settings.shutdown_grace = Duration::from_secs(2);
    settings.cleanup_grace = Duration::from_secs(5);
    let running = tokio::spawn(harness.executor(settings.clone()).run(harness.stop.clone()));
    tokio::time::sleep(Duration::from_millis(10)).await;

    let stopping = tokio::time::Instant::now();
    harness.stop.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(600), running)
        .await
        .expect("the executor returns although the final commit hangs")
        .unwrap();
    let took = stopping.elapsed();
    assert!(
        took <= settings.shutdown_grace + settings.cleanup_grace * 2,
        "shutdown took {took:?}, over grace + 2 x cleanup"
    );
    assert_eq!(
        settings.longest_shutdown(),
        settings.shutdown_grace + settings.cleanup_grace * 2
    );
    assert_eq!(summary.abandoned, 1);
    assert_eq!(status_of(&harness.publisher, "quick"), Status::Ok);
}

#[tokio::test(start_paused = true)]
async fn a_long_engine_outage_costs_only_the_in_flight_scripts_and_one_probe_reopens_fetching() {
    let harness = Harness::new();
    harness.runtime.set_engine_down(true);
    for n in 0..10 {
        harness.source.push(Inbound::Script(script(
            &format!("o{n}"),
            "sleep 100\necho",
            &[("a", "a")],
        )));
    }
    let running = tokio::spawn(harness.executor(settings_for(2)).run(harness.stop.clone()));

    // Sixty cool-downs of the harness's breaker (1 s each).
    tokio::time::sleep(Duration::from_secs(10)).await;
    let stats = harness.runtime.stats();
    let calls = || stats.probes.load(Ordering::SeqCst) + stats.prepare_calls.load(Ordering::SeqCst);
    let calls_before = calls();
    tokio::time::sleep(Duration::from_secs(50)).await;
    let probes = calls() - calls_before;
    assert!(
        (40..=51).contains(&probes),
        "one probe per cool-down while the engine is down, not a burst: {probes} calls in 50 s"
    );
    assert_eq!(
        stats.prepare_calls.load(Ordering::SeqCst),
        2 * 3,
        "the two scripts in flight were tried their three attempts each; every probe asked the runtime itself"
    );
    assert_eq!(
        harness.source.delivered(),
        2,
        "only the two scripts in flight when the engine died were fetched; the rest wait in the queue"
    );
    let reports = harness.publisher.reports();
    assert_eq!(reports.len(), 2, "{reports:#?}");
    assert!(reports.iter().all(|r| r.status == Status::InternalError));

    harness.runtime.set_engine_down(false);
    let reports = tokio::time::timeout(Duration::from_secs(30), harness.publisher.wait_for_reports(10))
        .await
        .expect("after the engine comes back, one successful probe reopens fetching");
    for n in 2..10 {
        assert_eq!(status_of(&harness.publisher, &format!("o{n}")), Status::Ok);
    }
    assert_eq!(reports.len(), 10);
    harness.stop.cancel();
    running.await.unwrap();
    assert_eq!(harness.source.committed(0), Some(10));
    let stats = harness.runtime.stats();
    assert_eq!(
        stats.released.load(Ordering::SeqCst),
        stats.prepared.load(Ordering::SeqCst),
        "every program built was released"
    );
}

/// Issue 26, finding 1: two submissions whose builds failed the same way on every try opened the breaker, and its
/// probe then rebuilt one of them, failed, and opened the breaker again, for as long as anyone watched; a benign
/// script behind them got no result. The probe asks the runtime itself, never a script.
#[tokio::test(start_paused = true)]
async fn scripts_that_fail_on_every_try_cannot_keep_the_breaker_open() {
    let harness = Harness::new();
    for id in ["poison-1", "poison-2"] {
        harness
            .source
            .push(Inbound::Script(script(id, "broken", &[("a", "a")])));
    }
    harness
        .source
        .push(Inbound::Script(script("benign", "echo", &[("a", "a")])));
    let running = tokio::spawn(harness.executor(settings_for(2)).run(harness.stop.clone()));
    tokio::time::timeout(Duration::from_secs(30), harness.publisher.wait_for_reports(3))
        .await
        .expect("the benign script is judged within a few cool-downs");
    assert_eq!(status_of(&harness.publisher, "poison-1"), Status::InternalError);
    assert_eq!(status_of(&harness.publisher, "poison-2"), Status::InternalError);
    assert_eq!(status_of(&harness.publisher, "benign"), Status::Ok);
    let stats = harness.runtime.stats();
    assert!(
        stats.probes.load(Ordering::SeqCst) >= 1,
        "the breaker opened and a probe of the runtime closed it"
    );
    assert_eq!(
        stats.prepare_calls.load(Ordering::SeqCst),
        3 + 3 + 1,
        "each poison was tried its three attempts and never again; the benign script was built once"
    );
    harness.stop.cancel();
    running.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_missing_image_does_not_turn_its_languages_queue_into_ie_at_full_speed() {
    let harness = Harness::new();
    harness.runtime.remove_image(Language::Python);
    for n in 0..6 {
        harness
            .source
            .push(Inbound::Script(script(&format!("py{n}"), "echo", &[("a", "a")])));
    }
    let mut c = script("c-after", "echo", &[("a", "a")]);
    c.language = Language::C;
    harness.source.push(Inbound::Script(c));
    let running = tokio::spawn(harness.executor(settings_for(2)).run(harness.stop.clone()));

    tokio::time::sleep(Duration::from_secs(1)).await;
    let early = harness.publisher.reports();
    assert!(
        early.len() <= 2,
        "at most the scripts already in flight fail at once: {} reports after 1 s",
        early.len()
    );
    assert!(
        early
            .iter()
            .all(|r| r.status == Status::InternalError && r.error.contains("fake/python"))
    );

    tokio::time::sleep(Duration::from_secs(19)).await;
    let ie = harness.publisher.reports().len();
    assert!(
        (3..=4).contains(&ie),
        "the image is re-checked at a bounded rate, one script at a time: {ie} IE in 20 s"
    );

    harness.runtime.restore_image(Language::Python);
    tokio::time::timeout(Duration::from_secs(120), harness.publisher.wait_for_reports(7))
        .await
        .expect("once the image is back, the rest of the queue is judged");
    let reports = harness.publisher.reports();
    let ok = reports.iter().filter(|r| r.status == Status::Ok).count();
    assert_eq!(ok, 7 - ie, "every script after the image came back is OK: {reports:#?}");
    assert_eq!(status_of(&harness.publisher, "c-after"), Status::Ok);
    harness.stop.cancel();
    running.await.unwrap();
    assert_eq!(harness.source.committed(0), Some(7));
}

#[tokio::test(start_paused = true)]
async fn a_script_delivered_twice_is_judged_once_and_gets_the_same_report_twice() {
    let harness = Harness::new();
    let twice = script("twice", "sleep 10\necho", &[("a", "a"), ("b", "b")]);
    harness.source.push(Inbound::Script(twice.clone()));
    // The redelivery a rebalance causes: the same offset again, under the partition's next generation.
    harness.source.push_at(
        Position {
            lane: 0,
            partition: 0,
            offset: 0,
            generation: 2,
        },
        Inbound::Script(twice),
    );
    let mut settings = settings_for(1);
    settings.script_expected = Some(2);
    harness.run(settings).await;

    assert_eq!(
        harness.runtime.stats().prepare_calls.load(Ordering::SeqCst),
        1,
        "the second delivery is answered from the report already produced"
    );
    let reports = harness.publisher.reports();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].status, Status::Ok);
    assert_eq!(reports[0], reports[1], "both deliveries get the identical report");
    assert_eq!(harness.source.commits(), [(0, 1, 1), (0, 2, 1)]);
}

#[tokio::test(start_paused = true)]
async fn a_script_delivered_again_while_being_judged_waits_for_that_report() {
    let harness = Harness::new();
    let twice = script("overlap", "sleep 1000\necho", &[("a", "a")]);
    harness.source.push(Inbound::Script(twice.clone()));
    harness.source.push_at(
        Position {
            lane: 0,
            partition: 0,
            offset: 0,
            generation: 2,
        },
        Inbound::Script(twice),
    );
    let mut settings = settings_for(2);
    settings.script_expected = Some(2);
    harness.run(settings).await;

    assert_eq!(harness.runtime.stats().prepare_calls.load(Ordering::SeqCst), 1);
    let reports = harness.publisher.reports();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0], reports[1]);
}

// Fair sharing between tenants (`RUNNER_TENANT_MAX_PARALLEL`). The fake programs sleep, so with paused time each
// script holds its slot for a known time and the tests can look at the executor in between.

fn tagged(id: &str, tenant: &str, source: &str) -> Script {
    fixtures::with_tenant(script(id, source, &[]), tenant)
}

/// Queues `count` scripts of tenant `big`, `flood0` onwards, each running `program`.
fn flood(source: &FakeSource, count: usize, program: &str) {
    for n in 0..count {
        source.push(Inbound::Script(tagged(&format!("flood{n}"), "big", program)));
    }
}

/// `settings_for(max_parallel)` with every tenant capped at `cap` and up to `lookahead` scripts held back.
fn capped(max_parallel: usize, cap: usize, lookahead: usize) -> ExecutorSettings {
    ExecutorSettings {
        tenant_max_parallel: Some(cap),
        lookahead,
        ..settings_for(max_parallel)
    }
}

fn has_report(publisher: &FakePublisher, id: &str) -> bool {
    publisher.reports().iter().any(|report| report.id.as_str() == id)
}

#[tokio::test(start_paused = true)]
async fn another_tenants_script_behind_a_flood_runs_while_the_flood_is_still_running() {
    let harness = Harness::new();
    flood(&harness.source, 10, "sleep 100");
    harness
        .source
        .push(Inbound::Script(tagged("small", "small", "sleep 10")));
    let mut settings = capped(2, 1, 16);
    settings.script_expected = Some(11);
    let running = tokio::spawn(harness.executor(settings).run(harness.stop.clone()));

    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        has_report(&harness.publisher, "small"),
        "the other tenant's script ran at once: {:?}",
        harness.publisher.reports()
    );
    assert!(
        !has_report(&harness.publisher, "flood0"),
        "while the flood's first script was still running"
    );
    assert_eq!(
        harness.source.delivered(),
        11,
        "the flood's tail was held back to reach it"
    );

    let summary = running.await.unwrap();
    assert_eq!(summary.stop, StopReason::Expected);
    assert_eq!(
        summary.published.get(&Status::Ok),
        Some(&11),
        "every script got its result"
    );
    assert_eq!(summary.abandoned, 0);
    let stats = harness.runtime.stats();
    assert_eq!(
        stats.max_active.load(Ordering::SeqCst),
        2,
        "the flood's one slot and the other tenant's"
    );
    assert_eq!(harness.source.committed(0), Some(11));
}

#[tokio::test(start_paused = true)]
async fn the_commit_never_passes_a_held_back_delivery() {
    let harness = Harness::new();
    flood(&harness.source, 10, "sleep 100");
    harness
        .source
        .push(Inbound::Script(tagged("small", "small", "sleep 10")));
    let mut settings = capped(2, 1, 16);
    settings.script_expected = Some(11);
    let running = tokio::spawn(harness.executor(settings).run(harness.stop.clone()));

    // Every 5 ms until the end: the committed position never passes the oldest offset without its result. The
    // flood's scripts are at offsets 0..10, held back and judged in order, so that is the first without a report.
    let mut steps = 0;
    let mut commits_seen = 0;
    while !running.is_finished() {
        let committed = harness.source.committed(0).unwrap_or(0);
        let oldest_unfinished = (0..10)
            .find(|n| !has_report(&harness.publisher, &format!("flood{n}")))
            .unwrap_or(11);
        assert!(
            committed <= oldest_unfinished,
            "step {steps}: committed {committed} passes offset {oldest_unfinished}, which is not judged yet"
        );
        commits_seen = harness.source.commits().len();
        steps += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.await.unwrap();
    assert!(steps > 100, "the run was sampled throughout ({steps} steps)");
    assert!(
        commits_seen >= 9,
        "the commit moved step by step: {commits_seen} commits"
    );
    assert_eq!(
        harness.source.committed(0),
        Some(11),
        "and ends one past the last, the early finisher included"
    );
    assert_eq!(harness.source.outstanding(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_instance_never_takes_more_than_max_parallel_plus_lookahead_ahead_of_its_commit() {
    let harness = Harness::new();
    // Another tenant holds a slot for the whole flood, so the flood has one slot and the rest piles up.
    harness
        .source
        .push(Inbound::Script(tagged("long", "other", "sleep 100000")));
    flood(&harness.source, 60, "sleep 100");
    let (max_parallel, lookahead) = (3, 5);
    let running = tokio::spawn(
        harness
            .executor(capped(max_parallel, 1, lookahead))
            .run(harness.stop.clone()),
    );

    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        harness.source.delivered(),
        1 + 1 + lookahead,
        "the long script, the flood's running one, and a full held-back queue: no more is fetched"
    );
    tokio::time::timeout(Duration::from_secs(60), harness.publisher.wait_for_reports(60))
        .await
        .expect("the whole flood is judged, one at a time");
    assert!(
        harness.source.most_outstanding() <= max_parallel + lookahead,
        "{} deliveries were out at once, over {max_parallel} + {lookahead}",
        harness.source.most_outstanding()
    );
    assert_eq!(
        harness.source.most_outstanding(),
        1 + 1 + lookahead,
        "the held-back queue was used up to its bound"
    );
    assert_eq!(
        harness.source.committed(0),
        None,
        "the long script at offset 0 holds the commit"
    );
    harness.stop.cancel();
    running.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn done_after_a_flood_judges_every_held_back_script_before_stopping() {
    let harness = Harness::new();
    flood(&harness.source, 6, "sleep 100");
    harness.source.push(Inbound::Done);
    let summary = harness.run(capped(2, 1, 8)).await;

    assert_eq!(summary.stop, StopReason::Done);
    assert_eq!(summary.abandoned, 0);
    assert_eq!(summary.published.get(&Status::Ok), Some(&6));
    for n in 0..6 {
        assert_eq!(status_of(&harness.publisher, &format!("flood{n}")), Status::Ok);
    }
    assert_eq!(
        harness.runtime.stats().max_active.load(Ordering::SeqCst),
        1,
        "the drain keeps the tenant's cap"
    );
    assert_eq!(harness.source.committed(0), Some(7), "the done message included");
}

#[tokio::test(start_paused = true)]
async fn the_held_back_count_rises_with_a_flood_and_is_zero_once_the_drain_has_judged_it() {
    let harness = Harness::new();
    flood(&harness.source, 6, "sleep 100");
    harness.source.push(Inbound::Done);
    let counts = Arc::new(HeldCounts::default());
    let summary = harness
        .executor(capped(2, 1, 8))
        .with_observer(Arc::clone(&counts) as Arc<dyn Observer>)
        .run(harness.stop.clone())
        .await;

    assert_eq!(summary.published.get(&Status::Ok), Some(&6));
    assert_eq!(
        counts.seen(),
        [1, 2, 3, 4, 5, 4, 3, 2, 1, 0],
        "five held back behind the first, then started one by one"
    );
}

#[tokio::test(start_paused = true)]
async fn script_expected_counts_held_back_scripts_and_the_drain_judges_them() {
    let harness = Harness::new();
    flood(&harness.source, 6, "sleep 100");
    let mut settings = capped(2, 1, 8);
    settings.script_expected = Some(4);
    let summary = harness.run(settings).await;

    assert_eq!(summary.stop, StopReason::Expected);
    assert_eq!(
        harness.source.delivered(),
        4,
        "one running and three held back make four taken"
    );
    assert_eq!(summary.published.get(&Status::Ok), Some(&4));
    assert_eq!(harness.source.committed(0), Some(4));
}

#[tokio::test(start_paused = true)]
async fn a_requested_stop_leaves_held_back_scripts_unacknowledged_and_counts_them_abandoned() {
    let harness = Harness::new();
    flood(&harness.source, 5, "sleep 1000");
    let running = tokio::spawn(harness.executor(capped(2, 1, 8)).run(harness.stop.clone()));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(harness.source.delivered(), 5, "one running, four held back");
    harness.stop.cancel();
    let summary = running.await.unwrap();

    assert_eq!(summary.stop, StopReason::Requested);
    assert_eq!(summary.abandoned, 4, "the four held back were never started");
    let reports = harness.publisher.reports();
    assert_eq!(reports.len(), 1, "only the running script finished: {reports:?}");
    assert_eq!(reports[0].id.as_str(), "flood0");
    assert_eq!(harness.runtime.stats().prepare_calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        harness.source.committed(0),
        Some(1),
        "the commit stops below the held-back ones"
    );
    assert_eq!(harness.source.outstanding(), 4, "and they stay unacknowledged");
    assert!(harness.source.is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_held_back_script_of_a_revoked_partition_is_left_to_its_new_owner() {
    let harness = Harness::new();
    flood(&harness.source, 3, "sleep 1000");
    let running = tokio::spawn(harness.executor(capped(2, 1, 8)).run(harness.stop.clone()));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(harness.source.delivered(), 3, "one running, two held back");
    // A rebalance gives the partition to another instance, which reads it again from its last commit.
    harness.source.revoke(0, 1);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    harness.stop.cancel();
    let summary = running.await.unwrap();

    assert_eq!(
        harness.runtime.stats().prepare_calls.load(Ordering::SeqCst),
        1,
        "the held-back scripts were not judged here as well as by the new owner"
    );
    assert_eq!(summary.abandoned, 2);
    assert_eq!(harness.source.outstanding(), 0, "and they are off the source's books");
    assert_eq!(
        harness.source.committed(0),
        None,
        "a revoked assignment commits nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_held_back_script_does_not_overtake_a_script_waiting_on_an_earlier_lane() {
    let harness = Harness::new();
    let batch = |offset, script| {
        let position = Position {
            lane: 1,
            partition: 0,
            offset,
            generation: 1,
        };
        harness.source.push_at(position, Inbound::Script(script));
    };
    // On the batch lane: course a's two scripts (the second held back at the cap of 1) and course b's long one.
    batch(0, tagged("a0", "course-a", "sleep 100\necho"));
    batch(1, tagged("a1", "course-a", "sleep 100\necho"));
    batch(2, tagged("b0", "course-b", "sleep 1000\necho"));
    let running = tokio::spawn(harness.executor(capped(2, 1, 8)).run(harness.stop.clone()));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(harness.source.delivered(), 3, "a0 and b0 running, a1 held back");
    // A student's script arrives on the interactive lane while both slots are busy.
    harness
        .source
        .push(Inbound::Script(tagged("student", "class-b", "echo")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    harness.stop.cancel();
    running.await.unwrap();

    let order: Vec<String> = harness.publisher.reports().iter().map(|r| r.id.to_string()).collect();
    let position = |id: &str| order.iter().position(|done| done == id);
    assert!(
        position("student").is_some() && position("student") < position("a1"),
        "when a0's slot freed, a1 was startable but the student's script waited ahead of it: {order:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_cap_or_without_tenants_nothing_is_held_back() {
    // Tagged scripts, no cap: the flood takes both slots and the other tenant waits, as before fair sharing.
    let harness = Harness::new();
    flood(&harness.source, 4, "sleep 100");
    harness
        .source
        .push(Inbound::Script(tagged("small", "small", "sleep 10")));
    let running = tokio::spawn(harness.executor(settings_for(2)).run(harness.stop.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        harness.source.delivered(),
        2,
        "only as many messages as slots are fetched"
    );
    assert!(!has_report(&harness.publisher, "small"));
    harness.publisher.wait_for_reports(5).await;
    harness.stop.cancel();
    let summary = running.await.unwrap();
    assert_eq!(summary.abandoned, 0);
    assert_eq!(harness.runtime.stats().max_active.load(Ordering::SeqCst), 2);

    // A cap, untagged scripts: never capped, they take both slots.
    let harness = Harness::new();
    for n in 0..4 {
        harness
            .source
            .push(Inbound::Script(script(&format!("plain{n}"), "sleep 100", &[])));
    }
    let running = tokio::spawn(harness.executor(capped(2, 1, 8)).run(harness.stop.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(harness.source.delivered(), 2, "nothing is held back");
    assert_eq!(harness.runtime.stats().max_active.load(Ordering::SeqCst), 2);
    harness.publisher.wait_for_reports(4).await;
    harness.stop.cancel();
    let summary = running.await.unwrap();
    assert_eq!(summary.abandoned, 0);
    assert_eq!(harness.source.committed(0), Some(4));
}

#[tokio::test(start_paused = true)]
async fn a_held_back_script_starts_when_its_tenant_frees_even_while_the_topic_is_idle() {
    let harness = Harness::new();
    flood(&harness.source, 3, "sleep 100");
    // Nothing more arrives: the slot that held the flood's tail back is waiting on the source.
    let running = tokio::spawn(harness.executor(capped(2, 1, 8)).run(harness.stop.clone()));
    tokio::time::timeout(Duration::from_secs(5), harness.publisher.wait_for_reports(3))
        .await
        .expect("each held-back script starts when the one before it finishes, without a new message");
    assert_eq!(harness.source.committed(0), Some(3));

    // The fetch that was waiting all along is still the one that gets the next message.
    harness.source.push(Inbound::Script(tagged("late", "big", "echo")));
    tokio::time::timeout(Duration::from_secs(5), harness.publisher.wait_for_reports(4))
        .await
        .expect("a message arriving later is still fetched");
    harness.stop.cancel();
    let summary = running.await.unwrap();
    assert_eq!(summary.abandoned, 0);
    assert_eq!(harness.source.committed(0), Some(4));
}
