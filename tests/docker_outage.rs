//! The Docker engine failing under the runner. The engine is reached through a Unix-socket proxy that the test can
//! cut and restore, so the real daemon is never harmed. A cut engine must give IE after bounded retries (never OK
//! or WA), open the circuit breaker, and let the runner recover when the engine comes back. An outage of many
//! cool-downs must cost no more than the scripts in flight when it began: the rest wait in the queue and are judged
//! once the engine is back, by the same runner. A missing image must give IE naming the image.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use scrc::app::{CircuitBreaker, Executor, Judge};
use scrc::domain::{Language, Status};
use scrc::ports::Inbound;
use scrc::testing::{FakePublisher, FakeSource};
use support::*;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Proxy {
    path: PathBuf,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    fn start() -> Self {
        let path = std::env::temp_dir().join(format!("scrc-docker-proxy-{}.sock", unique()));
        let listener = UnixListener::bind(&path).expect("bind the proxy socket");
        let open = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (accepting, tasks) = (Arc::clone(&open), Arc::clone(&links));
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut engine) = UnixStream::connect("/var/run/docker.sock").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                    }
                });
                tasks.lock().await.push(link);
            }
        });
        Self { path, open, links }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Refuses new connections and breaks the open ones: to the runner, the engine is dead.
    async fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn hello() -> scrc::domain::Script {
    script(Language::Python, "print('hello')\n", &[("", "hello\n")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_engine_gives_ie_opens_the_breaker_and_the_runner_recovers() {
    let proxy = Proxy::start();
    let host = proxy.host();
    let Some((judge, config)) = judge(&[
        ("DOCKER_HOST", &host),
        ("RUNNER_BREAKER_THRESHOLD", "2"),
        ("RUNNER_BREAKER_COOL_DOWN", "2s"),
    ])
    .await
    else {
        return;
    };
    assert_eq!(judged(&judge, &hello()).await.status, Status::Ok);

    proxy.cut().await;
    let started = Instant::now();
    let report = judged(&judge, &hello()).await;
    assert_eq!(
        report.status,
        Status::InternalError,
        "an infrastructure failure is never OK or WA: {report:#?}"
    );
    assert!(report.error.contains("unavailable"), "{}", report.error);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "retries are bounded: {:?}",
        started.elapsed()
    );
    assert!(judge.breaker().open_until().is_some(), "the breaker is open");

    proxy.restore();
    judge.breaker().wait_until_allowed().await;
    let report = judged(&judge, &hello()).await;
    assert_eq!(
        report.status,
        Status::Ok,
        "the runner recovers with the engine: {report:#?}"
    );
    assert!(judge.breaker().open_until().is_none(), "a success closes the breaker");
    assert_eq!(busy_leftovers(judge.runtime(), &config.instance).await, (0, 0));
}

/// Polls `condition` every 20 ms until it holds, failing the test after `limit`.
async fn eventually(what: &str, limit: Duration, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The whole runner (executor, judge, breaker, the real Docker runtime through the proxy; the queue and the result
/// topic are the in-memory fakes) with a queue of scripts, and the engine cut for many breaker cool-downs.
///
/// The bound, from the breaker's design: a slot is refilled only after the breaker lets the executor fetch, which
/// is only while it is closed. Once the engine is dead no call succeeds, so the breaker cannot close again before
/// the engine is back; and a slot cannot free up before it opens, because a script becomes IE only after its
/// `RUNNER_RETRY_ATTEMPTS` (3) failed calls, which are at least the `RUNNER_BREAKER_THRESHOLD` (2) in a row that
/// open it, or after waiting out an open breaker. Each cool-down's probe starts a sandbox and removes it (the
/// runtime's own probe), never a script from the queue. So at most the scripts in flight when the engine died become IE, however
/// many cool-downs the outage lasts: at most `RUNNER_MAX_PARALLEL`. A half-open breaker that let fetching resume
/// would take new scripts at every cool-down and burn them as IE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_many_cool_downs_costs_at_most_the_scripts_in_flight() {
    const PARALLEL: usize = 2;
    const SCRIPTS: usize = 12;
    const COOL_DOWN: Duration = Duration::from_millis(500);
    let proxy = Proxy::start();
    let host = proxy.host();
    let config = config(&[
        ("DOCKER_HOST", &host),
        ("RUNNER_MAX_PARALLEL", "2"),
        ("RUNNER_RETRY_ATTEMPTS", "3"),
        ("RUNNER_BREAKER_THRESHOLD", "2"),
        ("RUNNER_BREAKER_COOL_DOWN", "500ms"),
    ]);
    let Some(runtime) = docker_runtime(config.docker.clone()).await else {
        return;
    };
    let cleanup = runtime.cleanup();
    let breaker = Arc::new(CircuitBreaker::new(config.breaker_threshold, config.breaker_cool_down));
    let judge = Judge::new(runtime, config.policy, Arc::clone(&breaker), config.retry);
    let (source, publisher) = (Arc::new(FakeSource::new()), Arc::new(FakePublisher::new()));
    let ids: Vec<String> = (0..SCRIPTS)
        .map(|n| {
            let script = script(
                Language::Python,
                &format!("import time\ntime.sleep(0.3)\nprint('script {n}')\n"),
                &[("", &format!("script {n}\n"))],
            );
            let id = script.id.to_string();
            source.push(Inbound::Script(script));
            id
        })
        .collect();
    let stop = CancellationToken::new();
    let executor = Executor::new(
        Arc::clone(&source),
        Arc::clone(&publisher),
        judge,
        config.executor.clone(),
    );
    let running = tokio::spawn(executor.run(stop.clone()));

    // The runner is judging normally; then the engine dies under the scripts in flight.
    eventually("two scripts judged before the outage", Duration::from_secs(120), || {
        publisher.reports().len() >= 2
    })
    .await;
    proxy.cut().await;
    let cut_at = Instant::now();
    eventually("the breaker opens", Duration::from_secs(60), || {
        breaker.open_until().is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fetched_when_open = source.delivered();
    let mut cool_downs = 0;
    while cut_at.elapsed() < COOL_DOWN * 16 {
        if breaker.open_until().is_some() {
            breaker.wait_until_allowed().await;
            cool_downs += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(cool_downs >= 5, "the outage lasted {cool_downs} cool-downs");
    assert!(!breaker.is_closed(), "no call succeeded while the engine was dead");
    assert_eq!(
        source.delivered(),
        fetched_when_open,
        "no script is taken from the queue while the breaker is open or half-open"
    );
    assert!(
        fetched_when_open - publisher.reports().iter().filter(|r| r.status == Status::Ok).count() <= PARALLEL,
        "only the scripts in flight were taken before the breaker opened"
    );

    // The engine is back: the same runner judges the rest of the queue.
    proxy.restore();
    eventually(
        "every script answered after the outage",
        Duration::from_secs(180),
        || publisher.reports().len() >= SCRIPTS,
    )
    .await;
    assert!(!running.is_finished(), "the runner was not restarted");
    let reports = publisher.reports();
    let mut answered: Vec<&str> = reports.iter().map(|r| r.id.as_str()).collect();
    answered.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(answered, expected, "every script answered exactly once, nothing lost");
    let internal_errors = reports.iter().filter(|r| r.status == Status::InternalError).count();
    assert!(
        internal_errors <= PARALLEL,
        "{internal_errors} scripts became IE; at most the {PARALLEL} in flight may: {reports:#?}"
    );
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.status, Status::Ok | Status::InternalError)),
        "an outage never gives another verdict: {reports:#?}"
    );
    assert_eq!(
        reports.iter().filter(|r| r.status == Status::Ok).count(),
        SCRIPTS - internal_errors
    );
    assert!(breaker.is_closed(), "a success closed the breaker");
    eventually("every offset committed", Duration::from_secs(30), || {
        source.committed(0) == Some(SCRIPTS as i64)
    })
    .await;

    stop.cancel();
    let summary = running.await.expect("the executor ends cleanly");
    assert_eq!(summary.answered, SCRIPTS as u64);
    assert_eq!(summary.abandoned, 0);
    // As the runner ends a run: its idle warm sandboxes and anything still being removed go.
    cleanup.run().await;
    assert_eq!(
        leftovers(&config.instance).await,
        (0, 0),
        "nothing of the runner is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_gives_ie_naming_the_image() {
    let Some((judge, config)) = judge(&[("PYTHON_IMAGE", "scrc-local/no-such-python:0")]).await else {
        return;
    };
    let report = judged(&judge, &hello()).await;
    assert_eq!(report.status, Status::InternalError, "{report:#?}");
    assert!(report.error.contains("scrc-local/no-such-python:0"), "{}", report.error);
    assert!(report.error.contains("missing"), "{}", report.error);
    let other = judged(&judge, &script(Language::C, "int main(void){return 0;}\n", &[("", "")])).await;
    assert_eq!(other.status, Status::Ok, "other languages keep working");
    assert_eq!(busy_leftovers(judge.runtime(), &config.instance).await, (0, 0));
}

/// A build image that lacks its compiler (TypeScript's default is Node.js's official image, without `tsc`) is an
/// internal error naming the image, every time: never a BF that blames the program, and never a cached one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_image_without_its_compiler_gives_ie_not_a_cached_bf() {
    let Some((judge, config)) = judge(&[("TYPESCRIPT_IMAGE", "scrc-local/node:bookworm")]).await else {
        return;
    };
    let program = script(Language::TypeScript, "console.log(1);\n", &[("", "1\n")]);
    for attempt in 0..2 {
        let report = judged(&judge, &program).await;
        assert_eq!(report.status, Status::InternalError, "attempt {attempt}: {report:#?}");
        assert!(report.error.contains("scrc-local/node:bookworm"), "{}", report.error);
        assert!(report.error.contains("exited 127"), "{}", report.error);
    }
    let other = judged(&judge, &script(Language::C, "int main(void){return 0;}\n", &[("", "")])).await;
    assert_eq!(other.status, Status::Ok, "other languages keep working");
    assert_eq!(busy_leftovers(judge.runtime(), &config.instance).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_engine_at_startup_is_a_clear_error() {
    let config = config(&[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
    let error = scrc::adapters::docker::DockerRuntime::start(config.docker)
        .await
        .err()
        .expect("no engine there");
    assert!(error.to_string().contains("unavailable"), "{error}");
}

/// `/readyz` of a whole runner (`scrc run`'s composition root, the embedded broker, the engine through the proxy)
/// turns false when the engine is cut, saying why, while `/healthz` stays true (the runner is alive, only unable
/// to judge); `scrc health`, reading the health file, says the same; and both come back with the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_turns_false_while_the_engine_is_cut() {
    if support::docker_runtime(config(&[]).docker).await.is_none() {
        return;
    }
    let broker = scrc::adapters::kafka::DevBroker::start(&scrc::adapters::kafka::dev_broker::DevTopics {
        scripts: vec!["scripts".into()],
        results: "script-results".into(),
        dead_letters: "scripts-dlq".into(),
        partitions: 1,
        events: None,
    })
    .expect("dev broker");
    let proxy = Proxy::start();
    let host = proxy.host();
    let addr = free_local_addr();
    let brokers = broker.bootstrap_servers();
    let health_file = std::env::temp_dir().join(format!("scrc-readiness-{}.json", unique()));
    let health_path = health_file.display().to_string();
    let config = config(&[
        ("KAFKA_BROKERS", &brokers),
        ("DOCKER_HOST", &host),
        ("RUNNER_HTTP_ADDR", &addr),
        ("RUNNER_HEALTH_FILE", &health_path),
    ]);
    let stop = CancellationToken::new();
    let runner = tokio::spawn(scrc::commands::run(config, stop.clone()));

    let probe = |path: &'static str| {
        let addr = addr.clone();
        async move { http_get(&addr, path).await }
    };
    let wait_for = |path: &'static str, code: u16, limit: Duration| {
        let probe = &probe;
        async move {
            let deadline = Instant::now() + limit;
            loop {
                let answer = probe(path).await;
                if let Some((seen, body)) = &answer
                    && *seen == code
                {
                    return body.clone();
                }
                assert!(
                    Instant::now() < deadline,
                    "{path} not {code} within {limit:?}: {answer:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for("/readyz", 200, Duration::from_secs(60)).await;

    proxy.cut().await;
    // One check interval while ready, plus a check's own timeout.
    let reason = wait_for("/readyz", 503, scrc::health::INTERVAL + Duration::from_secs(10)).await;
    assert!(reason.contains("Docker engine"), "{reason}");
    assert_eq!(probe("/healthz").await.map(|(code, _)| code), Some(200));
    // The file is written right after the in-memory record, in the same check.
    eventually("scrc health says unhealthy", Duration::from_secs(5), || {
        scrc::health::check(&health_file).is_err_and(|reason| reason.contains("Docker engine"))
    })
    .await;

    proxy.restore();
    wait_for("/readyz", 200, Duration::from_secs(15)).await;
    eventually("scrc health says healthy", Duration::from_secs(5), || {
        scrc::health::check(&health_file).is_ok()
    })
    .await;
    stop.cancel();
    runner.await.expect("runner task").expect("runner");
    let _ = std::fs::remove_file(&health_file);
}
