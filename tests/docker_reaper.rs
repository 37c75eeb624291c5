//! What a runner killed with SIGKILL leaves behind, and who removes it.
//!
//! The killed runner's program still ends at its time limit (the supervisor kills it from inside), and a restarted
//! runner with the same instance id removes the leftovers at startup, then judges the script Kafka redelivers.
//! Another live runner's containers are never touched.

mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use bollard::models::ContainerCreateBody;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use scrc::adapters::docker::engine::Engine;
use scrc::adapters::docker::labels;
use scrc::adapters::kafka::DevBroker;
use scrc::adapters::kafka::dev_broker::DevTopics;
use support::*;

async fn labelled_container(engine: &Engine, instance: &str, expires_in: Duration, expired: bool) -> String {
    let expires = if expired {
        SystemTime::now() - expires_in
    } else {
        SystemTime::now() + expires_in
    };
    let labels = labels::for_warm(instance, expires);
    let body = ContainerCreateBody {
        image: Some("scrc-local/static:bookworm".into()),
        cmd: Some(vec!["/nothing".into()]),
        labels: Some(labels.clone()),
        ..Default::default()
    };
    let name = format!("scrc-reaper-test-{}", unique());
    engine
        .create_container(&name, body)
        .await
        .expect("create a labelled container");
    engine
        .create_volume(&format!("{name}-box"), labels)
        .await
        .expect("create a labelled volume");
    name
}

/// A container labelled as a warm sandbox of `instance`, not expired for an hour, that exits as soon as it starts.
async fn warm_container(engine: &Engine, instance: &str) -> String {
    let body = ContainerCreateBody {
        image: Some("scrc-local/python:bookworm".into()),
        cmd: Some(vec!["python3".into(), "-c".into(), "pass".into()]),
        labels: Some(labels::for_warm(
            instance,
            SystemTime::now() + Duration::from_secs(3600),
        )),
        ..Default::default()
    };
    engine
        .create_container(&format!("scrc-reaper-test-{}", unique()), body)
        .await
        .expect("create a warm-labelled container")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_runner_removes_its_own_and_expired_leftovers_but_not_a_live_neighbours() {
    let config = config(&[]);
    let Some(probe) = docker_runtime(config.docker.clone()).await else {
        return;
    };
    drop(probe);
    let engine = Engine::connect(None).await.expect("Docker");
    let me = config.instance.clone();
    let neighbour = format!("neighbour-{}", unique());
    let stranger = format!("stranger-{}", unique());
    labelled_container(&engine, &me, Duration::from_secs(3600), false).await;
    labelled_container(&engine, &neighbour, Duration::from_secs(3600), false).await;
    labelled_container(&engine, &stranger, Duration::from_secs(60), true).await;
    assert_eq!(leftovers(&me).await, (1, 1));

    let runtime = docker_runtime(config.docker.clone()).await.expect("Docker");
    assert_eq!(
        leftovers(&me).await,
        (0, 0),
        "its own previous run's leftovers are removed"
    );
    assert_eq!(
        leftovers(&stranger).await,
        (0, 0),
        "expired leftovers of a dead runner are removed"
    );
    assert_eq!(
        leftovers(&neighbour).await,
        (1, 1),
        "a live neighbour's containers are untouched"
    );
    drop(runtime);

    // A warm sandbox stops only when the runner driving it closed its stream (it ended or was killed), so a stopped
    // one is removed whoever made it and whatever its expiry; one not started yet belongs to a live runner.
    let dead = format!("dead-{}", unique());
    let stopped = warm_container(&engine, &dead).await;
    engine.start(&stopped).await.expect("start");
    engine
        .wait_stopped(&stopped, Duration::from_secs(30))
        .await
        .expect("it exits");
    let starting = format!("starting-{}", unique());
    let created = warm_container(&engine, &starting).await;
    scrc::adapters::docker::reaper::sweep(&engine, None).await;
    assert_eq!(leftovers(&dead).await, (0, 0), "a stopped warm sandbox is removed");
    assert_eq!(leftovers(&starting).await, (1, 0), "one not started yet is left alone");
    engine.remove_container(&created).await.unwrap();

    for container in engine
        .containers_with_label(&format!("scrc.instance={neighbour}"))
        .await
        .unwrap()
    {
        engine.remove_container(&container.name).await.unwrap();
    }
    for volume in engine
        .volumes_with_label(&format!("scrc.instance={neighbour}"))
        .await
        .unwrap()
    {
        engine.remove_volume(&volume.name).await.unwrap();
    }
}

/// A runner process, killed when dropped so that a failing test leaves none behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a runner whose JSON log goes to `log`.
fn runner(brokers: &str, instance: &str, log: &std::path::Path, extra: &[(&str, &str)]) -> Killed {
    let log = std::fs::File::create(log).expect("a log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_scrc"));
    command
        .arg("run")
        .envs(local_images())
        .env("KAFKA_BROKERS", brokers)
        .env("RUNNER_INSTANCE_ID", instance)
        // Several runners share this host: no metrics listener, which would want the same port.
        .env("RUNNER_HTTP_ADDR", "")
        .env("RUNNER_SHUTDOWN_GRACE", "5s")
        .env("LOG_FORMAT", "json")
        // A killed member holds its partitions until its session times out: keep that short for the test.
        .env("RDKAFKA_SESSION_TIMEOUT_MS", "6000")
        .env("RDKAFKA_HEARTBEAT_INTERVAL_MS", "500")
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(log);
    Killed(command.spawn().expect("start the scrc binary"))
}

/// Waits until the runner is judging a script, and a little longer so that its program runs.
async fn wait_for_judging(log: &std::path::Path) {
    let started = Instant::now();
    while !std::fs::read_to_string(log).is_ok_and(|text| text.contains("\"judging\"")) {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the runner never started the script"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_sigkill_the_program_still_ends_and_a_restarted_runner_cleans_up_and_redelivers() {
    if docker_runtime(config(&[]).docker).await.is_none() {
        return;
    }
    let broker = DevBroker::start(&DevTopics {
        scripts: vec!["scripts".into()],
        results: "script-results".into(),
        dead_letters: "scripts-dlq".into(),
        partitions: 1,
        events: None,
    })
    .expect("dev broker");
    let brokers = broker.bootstrap_servers();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let message = serde_json::json!({"id": "killed-mid-script", "language": "python",
        "source": "import time\ntime.sleep(60)\n", "limits": {"time_limit_ms": 4000},
        "tests": [{"input": "", "expected_output": ""}]});
    producer
        .send(
            FutureRecord::to("scripts")
                .key("killed-mid-script")
                .payload(&message.to_string()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    let instance = format!("killed-{}", unique());
    let engine = Engine::connect(None).await.unwrap();
    let log = std::env::temp_dir().join(format!("{instance}.log"));
    let mut doomed = runner(&brokers, &instance, &log, &[]);
    wait_for_judging(&log).await;
    doomed.0.kill().expect("SIGKILL the runner");
    doomed.0.wait().unwrap();
    let (containers, volumes) = leftovers(&instance).await;
    assert!(
        containers >= 1 && volumes >= 1,
        "the killed runner could not clean up: {containers} {volumes}"
    );

    // The program ends on its own at its 4 s limit: the supervisor inside kills it, runner or not, and sooner, when
    // the runner's stream closes; idle pooled sandboxes stop the same way.
    let started = Instant::now();
    loop {
        let running = engine
            .containers_with_label(&format!("scrc.instance={instance}"))
            .await
            .unwrap();
        let mut still_running = false;
        for container in running {
            if engine
                .state(&container.name)
                .await
                .map(|s| s.running == Some(true))
                .unwrap_or(false)
            {
                still_running = true;
            }
        }
        if !still_running {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the orphaned program kept running"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut restarted = runner(&brokers, &instance, &log, &[("SCRIPT_EXPECTED", "1")]);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = restarted.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the restarted runner did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        status.success(),
        "the restarted runner exits 0 after SCRIPT_EXPECTED: {status}"
    );
    assert_eq!(leftovers(&instance).await, (0, 0), "nothing of either run is left");

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "kill-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["script-results"]).unwrap();
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a result")
        .expect("a message");
    let result: HashMap<String, serde_json::Value> = serde_json::from_slice(message.payload().unwrap()).unwrap();
    assert_eq!(result["id"], "killed-mid-script");
    assert_eq!(result["status"], "TL", "the redelivered script was judged");
}
