//! Shared helpers for the tests that need a real Docker engine.
//!
//! Without Docker these tests skip, except under `CI=true`, where a missing engine or missing images fail the
//! test: CI must never pass by skipping.

#![allow(dead_code)]

pub mod contract;

use std::sync::Arc;
use std::time::Duration;

use scrc::adapters::docker::{DockerRuntime, DockerSettings};
use scrc::app::{CircuitBreaker, Judge};
use scrc::config::Config;
use scrc::domain::{Language, RequestedLimits, RunReport, Script};
use scrc::testing::fixtures;
use tokio_util::sync::CancellationToken;

pub use scrc::config::local_images;

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Configuration for tests: the local images, a unique instance id, the `RUNNER_ARTIFACT_CACHE_BYTES` and
/// `RUNNER_DOCKER_RUNTIME` of the test process (so that `scripts/test.sh` can run the Docker suites without the
/// cache, and under gVisor), and any overrides.
pub fn config(overrides: &[(&str, &str)]) -> Config {
    let instance = format!("test-{}-{}", std::process::id(), unique());
    let mut vars = local_images();
    vars.push(("RUNNER_INSTANCE_ID".into(), instance));
    // Tests run several runners in one process: the HTTP listener is off unless a test asks for it.
    vars.push(("RUNNER_HTTP_ADDR".into(), String::new()));
    for name in ["RUNNER_ARTIFACT_CACHE_BYTES", "RUNNER_DOCKER_RUNTIME"] {
        if let Ok(value) = std::env::var(name) {
            vars.push((name.into(), value));
        }
    }
    vars.extend(overrides.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    Config::from_vars(vars).expect("test configuration is valid")
}

/// Whether the sandboxes of `config` run under gVisor (`RUNNER_DOCKER_RUNTIME=runsc`, as scripts/test.sh runs the
/// sandbox suites a third time), where a few facts come from elsewhere or not at all (see the README's gVisor
/// section); each test that allows for it says why.
pub fn under_gvisor(config: &Config) -> bool {
    config.docker.sandbox.hardening.gvisor()
}

/// A C script whose first test tries every way to change its own program in `/box` and prints how many worked
/// ("changed 0" is the only right answer), and whose second test checks the program still runs ("intact").
pub fn tampering_script() -> Script {
    let mut script = script(
        Language::C,
        TAMPERING_C,
        &[("plant\n", "changed 0\n"), ("check\n", "intact\n")],
    );
    script.run_all_tests = true;
    script
}

const TAMPERING_C: &str = "#include <errno.h>\n#include <stdio.h>\n#include <string.h>\n#include <unistd.h>\n\
    #include <fcntl.h>\n#include <sys/stat.h>\n\
    int main(void){char a[16]={0};if(!fgets(a,sizeof a,stdin))return 2;\n\
    if(strncmp(a,\"plant\",5)==0){int changed=0;\n\
    if(unlink(\"/box/prog\")==0)changed++;\n\
    if(open(\"/box/prog\",O_WRONLY|O_TRUNC)>=0)changed++;\n\
    if(chmod(\"/box/prog\",0)==0)changed++;\n\
    if(open(\"/box/new\",O_WRONLY|O_CREAT,0755)>=0)changed++;\n\
    printf(\"changed %d\\n\",changed);return 0;}\n\
    puts(\"intact\");return 0;}\n";

pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    nanos * 1000 + NEXT.fetch_add(1, Ordering::SeqCst)
}

/// Starts the Docker runtime, or returns `None` (skip) when Docker is absent outside CI.
pub async fn docker_runtime(settings: DockerSettings) -> Option<DockerRuntime> {
    match DockerRuntime::start(settings).await {
        Ok(runtime) => Some(runtime),
        Err(error) if !in_ci() => {
            eprintln!("skipping: no Docker engine ({error})");
            None
        }
        Err(error) => panic!("CI=true and the Docker engine is unavailable: {error}"),
    }
}

/// A judge over the real Docker runtime, with the test configuration.
pub async fn judge(overrides: &[(&str, &str)]) -> Option<(Judge<DockerRuntime>, Config)> {
    let config = config(overrides);
    let runtime = docker_runtime(config.docker.clone()).await?;
    let breaker = Arc::new(CircuitBreaker::new(config.breaker_threshold, config.breaker_cool_down));
    Some((Judge::new(runtime, config.policy, breaker, config.retry), config))
}

pub fn script(language: Language, source: &str, tests: &[(&str, &str)]) -> Script {
    fixtures::script(format!("{language}-{}", unique()), language, source, tests)
}

pub fn with_limits(mut script: Script, time_ms: u64, memory_mib: u64) -> Script {
    script.limits = RequestedLimits {
        time: Some(Duration::from_millis(time_ms)),
        memory: Some(memory_mib * 1024 * 1024),
        cpu_time: None,
    };
    script
}

pub async fn judged(judge: &Judge<DockerRuntime>, script: &Script) -> RunReport {
    judge
        .judge(script, &CancellationToken::new())
        .await
        .expect("not cancelled")
}

/// Containers and volumes still labelled with `instance`.
pub async fn leftovers(instance: &str) -> (usize, usize) {
    let engine = scrc::adapters::docker::engine::Engine::connect(None)
        .await
        .expect("Docker is reachable");
    let label = format!("scrc.instance={instance}");
    let containers = engine
        .containers_with_label(&label)
        .await
        .expect("list containers")
        .len();
    let volumes = engine.volumes_with_label(&label).await.expect("list volumes").len();
    (containers, volumes)
}

/// Containers and volumes of `instance` beyond the warm sandboxes waiting idle in its pool. A finished script's
/// containers are removed in the background, so this waits up to 180 s for the count to settle at zero (a gVisor
/// sandbox that held a fork bomb, thousands of host tasks, took over 30 s to tear down on CI's busy machine, and its
/// volume stays in use until then; the runner retries a volume's removal for two minutes).
pub async fn busy_leftovers(runtime: &DockerRuntime, instance: &str) -> (usize, usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let (containers, volumes) = leftovers(instance).await;
        let (idle_containers, idle_volumes) = runtime.idle_sandboxes();
        let busy = (
            containers.saturating_sub(idle_containers),
            volumes.saturating_sub(idle_volumes),
        );
        if busy == (0, 0) || std::time::Instant::now() > deadline {
            return busy;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Asserts the host is as the runner found it: nothing of `instance` left but idle warm sandboxes, and the runner
/// still judges.
pub async fn assert_clean_and_serving(judge: &scrc::app::Judge<DockerRuntime>, instance: &str) {
    assert_eq!(
        busy_leftovers(judge.runtime(), instance).await,
        (0, 0),
        "containers and volumes of {instance} were left behind"
    );
    let probe = script(Language::Python, "print(input())", &[("still here\n", "still here\n")]);
    let report = judged(judge, &probe).await;
    assert_eq!(
        report.status,
        scrc::domain::Status::Ok,
        "the runner stopped serving: {report:?}"
    );
    assert_eq!(busy_leftovers(judge.runtime(), instance).await, (0, 0));
}

/// A loopback address with a port that was free a moment ago, for a runner's `RUNNER_HTTP_ADDR`.
pub fn free_local_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("its address");
    addr.to_string()
}

/// `GET path` from `addr` over HTTP/1.0: the status code and the body; `None` while nothing listens there.
pub async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// The value of one series (`name{labels}` exactly as exposed) in a Prometheus text exposition.
pub fn series(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}
