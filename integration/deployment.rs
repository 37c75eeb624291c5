//! The deployment as users run it, on this machine: an out-of-process Kafka-protocol broker (tansu, in a container
//! started by testcontainers), real `scrc run` processes, the real Docker runtime, and the simulator checking
//! every verdict. Needs the images of `scripts/build-deploy-images.sh`; without them (or without Docker) the tests
//! skip, except under `CI=true`, where they fail.
//!
//! The tests share the machine's two cores, so they run one at a time.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use scrc::adapters::docker::engine::Engine;
use scrc::adapters::kafka::admin::create_topics;
use scrc_simulator::{SimulationReport, SimulatorConfig};
use testcontainers::core::IntoContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const TANSU: (&str, &str) = ("scrc-local/tansu", "0.6.0");

/// The runners' `session.timeout.ms`: how long the group keeps a member that stopped heartbeating.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// A tansu broker in a container, keeping its data in SQLite so that it survives a restart.
struct Broker {
    container: ContainerAsync<GenericImage>,
    brokers: String,
    port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

async fn image_present(name: &str, tag: &str) -> bool {
    let Ok(engine) = Engine::connect(None).await else {
        return false;
    };
    engine.image_exists(&format!("{name}:{tag}")).await.unwrap_or(false)
}

/// Skips (returns false) when Docker or the deployment images are missing, except in CI.
async fn prerequisites() -> bool {
    if !image_present(TANSU.0, TANSU.1).await {
        assert!(
            !support::in_ci(),
            "CI=true but {}:{} is missing: run scripts/build-deploy-images.sh",
            TANSU.0,
            TANSU.1
        );
        eprintln!(
            "skipping: no {}:{} (scripts/build-deploy-images.sh builds it)",
            TANSU.0, TANSU.1
        );
        return false;
    }
    true
}

impl Broker {
    async fn start(partitions: i32) -> Self {
        let port = free_port();
        let container = GenericImage::new(TANSU.0, TANSU.1)
            .with_mapped_port(port, 9092.tcp())
            .with_cmd([
                "broker".to_owned(),
                "--storage-engine".to_owned(),
                "sqlite://tansu.db".to_owned(),
                "--advertised-listener-url".to_owned(),
                format!("tcp://localhost:{port}"),
            ])
            .start()
            .await
            .expect("start tansu");
        let broker = Self {
            container,
            brokers: format!("localhost:{port}"),
            port,
        };
        broker.wait_until_listening().await;
        let config = support::config(&[("KAFKA_BROKERS", &broker.brokers)]);
        create_topics(&config.kafka, None, partitions, 1, Duration::from_secs(60))
            .await
            .expect("create topics on tansu");
        broker
    }

    async fn wait_until_listening(&self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "tansu never listened");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn restart(&self, down_for: Duration) {
        self.container.stop().await.expect("stop tansu");
        tokio::time::sleep(down_for).await;
        self.container.start().await.expect("start tansu again");
        self.wait_until_listening().await;
    }
}

/// A runner process. Killed when dropped, so a failing test leaves no runner behind.
struct Runner {
    child: Child,
    instance: String,
    log: PathBuf,
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Runner {
    fn start(brokers: &str, instance: &str, parallelism: usize) -> Self {
        // Appended to, so that a restart under the same identity keeps the killed run's log.
        let log = std::env::temp_dir().join(format!("{instance}.log"));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("runner log");
        let child = Command::new(env!("CARGO_BIN_EXE_scrc"))
            .arg("run")
            .envs(support::local_images())
            .env("KAFKA_BROKERS", brokers)
            .env("RUNNER_INSTANCE_ID", instance)
            // Several runners share this host: no metrics listener, which would want the same port.
            .env("RUNNER_HTTP_ADDR", "")
            .env("RUNNER_MAX_PARALLEL", parallelism.to_string())
            .env("RUNNER_SHUTDOWN_GRACE", "10s")
            .env("RDKAFKA_SESSION_TIMEOUT_MS", SESSION_TIMEOUT.as_millis().to_string())
            .env("RDKAFKA_HEARTBEAT_INTERVAL_MS", "500")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start scrc run");
        Self {
            child,
            instance: instance.to_owned(),
            log,
        }
    }

    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: the graceful path, which must exit 0.
    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "{} exited {status}; see {}",
                    self.instance,
                    self.log.display()
                );
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} did not stop",
                self.instance
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn simulator(brokers: &str) -> SimulatorConfig {
    SimulatorConfig::load(
        [
            ("KAFKA_BROKER".to_owned(), brokers.to_owned()),
            ("KAFKA_CONSUMER_GROUP".to_owned(), format!("sim-{}", support::unique())),
            ("SCRIPT_ITERATIONS".to_owned(), "1".to_owned()),
            ("RESULT_WAIT_TIMEOUT_SECONDS".to_owned(), "300".to_owned()),
            (
                "RESULT_CONSUMER_LOG_PATH".to_owned(),
                std::env::temp_dir()
                    .join(format!("sim-{}.log", support::unique()))
                    .display()
                    .to_string(),
            ),
        ],
        &[],
    )
    .expect("simulator configuration")
}

async fn simulate(brokers: &str) -> SimulationReport {
    let library = scrc_simulator::library().expect("library");
    scrc_simulator::run(&simulator(brokers), &library, CancellationToken::new())
        .await
        .expect("the simulator ran")
}

fn assert_passed(report: &SimulationReport) {
    assert!(report.passed(), "{}", report.validation.table());
    assert_eq!(report.sent, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_through_an_out_of_process_broker_and_the_real_docker_runtime() {
    let _serial = ONE_AT_A_TIME.lock().await;
    if !prerequisites().await {
        return;
    }
    let broker = Broker::start(6).await;
    let runner = Runner::start(&broker.brokers, &format!("deploy-e2e-{}", support::unique()), 2);
    let report = simulate(&broker.brokers).await;
    assert_passed(&report);
    let instance = runner.instance.clone();
    runner.stop();
    assert_eq!(support::leftovers(&instance).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_runner_processes_in_one_group_split_a_topic_of_six_partitions() {
    let _serial = ONE_AT_A_TIME.lock().await;
    if !prerequisites().await {
        return;
    }
    let broker = Broker::start(6).await;
    let runners: Vec<Runner> = (0..3)
        .map(|n| Runner::start(&broker.brokers, &format!("deploy-split-{n}-{}", support::unique()), 1))
        .collect();
    // Let all three join before the load arrives, so the group has settled on its split.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let report = simulate(&broker.brokers).await;
    assert_passed(&report);
    let served: BTreeMap<&str, usize> = report
        .runners
        .iter()
        .map(|(runner, count)| (runner.as_str(), *count))
        .collect();
    for runner in &runners {
        assert!(
            served.get(runner.instance.as_str()).copied().unwrap_or(0) > 0,
            "{} served nothing: {served:?}",
            runner.instance
        );
    }
    for runner in runners {
        let instance = runner.instance.clone();
        runner.stop();
        assert_eq!(support::leftovers(&instance).await, (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runner_killed_mid_script_loses_nothing_and_leaves_no_sandbox() {
    let _serial = ONE_AT_A_TIME.lock().await;
    if !prerequisites().await {
        return;
    }
    let broker = Broker::start(6).await;
    let doomed_id = format!("deploy-killed-{}", support::unique());
    let mut doomed = Runner::start(&broker.brokers, &doomed_id, 1);
    let survivor = Runner::start(&broker.brokers, &format!("deploy-survivor-{}", support::unique()), 1);
    tokio::time::sleep(Duration::from_secs(8)).await;

    let brokers = broker.brokers.clone();
    let simulation = tokio::spawn(async move { simulate(&brokers).await });
    // The runner logs "judging" as a script starts; a second later its build is done and a test runs (on either
    // sandbox path: a warm runner's containers are started before any script, so they say nothing of one).
    let started = Instant::now();
    while !std::fs::read_to_string(&doomed.log).is_ok_and(|log| log.contains("\"judging\"")) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the doomed runner never started a script"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    doomed.kill();
    // Its orchestrator restarts it under the same identity once the group has noticed the death, and the restart
    // removes what the killed run left. The wait is for tansu 0.6.0: when a live member's heartbeat is what finds a
    // member past its session timeout, tansu drops the dead member but keeps the group formed with the old
    // assignment, so the dead member's partitions belong to nobody until the next join. Apache Kafka rebalances on
    // the expiry itself; restarting only after it makes the restart's join the repair on both brokers.
    tokio::time::sleep(SESSION_TIMEOUT + Duration::from_secs(3)).await;
    let restarted = Runner::start(&broker.brokers, &doomed_id, 1);

    let report = simulation.await.expect("simulation task");
    assert_passed(&report);
    restarted.stop();
    let survivor_id = survivor.instance.clone();
    survivor.stop();
    assert_eq!(
        support::leftovers(&doomed_id).await,
        (0, 0),
        "the killed runner's sandboxes are gone"
    );
    assert_eq!(support::leftovers(&survivor_id).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_restart_mid_run_loses_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    if !prerequisites().await {
        return;
    }
    let broker = Broker::start(6).await;
    let runner = Runner::start(&broker.brokers, &format!("deploy-restart-{}", support::unique()), 2);
    tokio::time::sleep(Duration::from_secs(5)).await;

    let brokers = broker.brokers.clone();
    let simulation = tokio::spawn(async move { simulate(&brokers).await });
    tokio::time::sleep(Duration::from_secs(12)).await;
    broker.restart(Duration::from_secs(5)).await;

    let report = simulation.await.expect("simulation task");
    assert_passed(&report);
    let instance = runner.instance.clone();
    runner.stop();
    assert_eq!(support::leftovers(&instance).await, (0, 0));
}
