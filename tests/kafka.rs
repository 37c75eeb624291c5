//! The Kafka adapters against librdkafka's mock cluster: a real Kafka-protocol broker on localhost TCP, in
//! process. The runtime is the fake one, so these tests are about delivery, not sandboxing. Each test has its own
//! cluster, topics and group.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use scrc::adapters::kafka::dev_broker::DevTopics;
use scrc::adapters::kafka::wire::ResultMessage;
use scrc::adapters::kafka::{DevBroker, KafkaPublisher, KafkaSettings, KafkaSource};
use scrc::app::{Backoff, CircuitBreaker, Executor, ExecutorSettings, Judge, RetryPolicy, Summary};
use scrc::domain::{Execution, LimitPolicy, Limits, MemoryLimit, Script, TimeLimit};
use scrc::ports::{CheckFiles, Preparation, Runtime, RuntimeError};
use scrc::testing::FakeRuntime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 6;
const WAIT: Duration = Duration::from_secs(60);

fn topics() -> DevTopics {
    DevTopics {
        scripts: vec!["scripts".into()],
        results: "script-results".into(),
        dead_letters: "scripts-dlq".into(),
        partitions: PARTITIONS,
        events: None,
    }
}

fn kafka_settings(broker: &DevBroker, instance: &str, max_parallel: usize) -> KafkaSettings {
    KafkaSettings {
        brokers: broker.bootstrap_servers(),
        scripts_topics: vec!["scripts".into()],
        lane_policy: scrc::adapters::kafka::LanePolicy::Strict,
        group_id: "runners".into(),
        results_topic: "script-results".into(),
        dlq_topic: "scripts-dlq".into(),
        client_id: instance.into(),
        properties: vec![
            ("session.timeout.ms".into(), "6000".into()),
            ("heartbeat.interval.ms".into(), "500".into()),
        ],
        max_message_bytes: 64 * 1024,
        max_files: 64,
        max_result_bytes: 950_000,
        max_poll_interval: Duration::from_secs(300),
        max_parallel,
        hold_per_lane: max_parallel,
    }
}

fn policy() -> LimitPolicy {
    LimitPolicy {
        default: Limits {
            time: TimeLimit::new(Duration::from_secs(5)).unwrap(),
            memory: MemoryLimit::new(256 << 20).unwrap(),
            cpu_time: None,
        },
        max: Limits {
            time: TimeLimit::new(Duration::from_secs(20)).unwrap(),
            memory: MemoryLimit::new(1 << 30).unwrap(),
            cpu_time: None,
        },
        min_memory: MemoryLimit::new(6 << 20).unwrap(),
        max_tests: 16,
        checker: Limits {
            time: TimeLimit::new(Duration::from_secs(10)).unwrap(),
            memory: MemoryLimit::new(256 << 20).unwrap(),
            cpu_time: None,
        },
    }
}

struct Runner {
    stop: CancellationToken,
    handle: JoinHandle<Summary>,
}

impl Runner {
    fn start<R: Runtime>(broker: &DevBroker, instance: &str, max_parallel: usize, runtime: R) -> Self {
        Self::start_with(kafka_settings(broker, instance, max_parallel), runtime)
    }

    fn start_with<R: Runtime>(settings: KafkaSettings, runtime: R) -> Self {
        Self::start_fair(settings, runtime, None)
    }

    /// A runner on which no tenant judges more than `tenant_max_parallel` scripts at once.
    fn start_fair<R: Runtime>(settings: KafkaSettings, runtime: R, tenant_max_parallel: Option<usize>) -> Self {
        let max_parallel = settings.max_parallel;
        let source = Arc::new(KafkaSource::connect(&settings).unwrap());
        let publisher = Arc::new(KafkaPublisher::connect(&settings).unwrap());
        let retry = RetryPolicy {
            attempts: 3,
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(200)),
            breaker_wait: Duration::from_secs(10),
        };
        let judge = Judge::new(
            runtime,
            policy(),
            Arc::new(CircuitBreaker::new(5, Duration::from_secs(5))),
            retry,
        );
        let executor_settings = ExecutorSettings {
            max_parallel,
            tenant_max_parallel,
            lookahead: 4 * max_parallel,
            script_expected: None,
            shutdown_grace: Duration::from_secs(10),
            cleanup_grace: Duration::from_secs(5),
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_millis(500)),
            recent_ids: 1000,
            script_deadline: Duration::from_secs(120),
        };
        let stop = CancellationToken::new();
        let executor = Executor::new(source, publisher, judge, executor_settings);
        let handle = tokio::spawn(executor.run(stop.clone()));
        Self { stop, handle }
    }

    async fn stop(self) -> Summary {
        self.stop.cancel();
        self.handle.await.unwrap()
    }
}

async fn produce(broker: &DevBroker, topic: &str, key: Option<&str>, payload: &[u8], headers: Option<OwnedHeaders>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        // Room for the message-size tests, which send records near the runner's 1 MiB limit.
        .set("message.max.bytes", "2000000")
        .create()
        .unwrap();
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).payload(payload);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(headers) = headers {
        record = record.headers(headers);
    }
    producer.send(record, Duration::from_secs(10)).await.unwrap();
}

fn script_json(id: &str, source: &str) -> Vec<u8> {
    serde_json::json!({
        "id": id,
        "language": "python",
        "source": source,
        "tests": [{"number": 1, "input": "hi\n", "expected_output": "hi\n"}]
    })
    .to_string()
    .into_bytes()
}

async fn produce_scripts(broker: &DevBroker, ids: &[String], source: &str) {
    for id in ids {
        produce(broker, "scripts", Some(id), &script_json(id, source), None).await;
    }
}

/// Reads `topic` from the start until `done` says enough, or fails after `WAIT`.
async fn read_until(
    broker: &DevBroker,
    topic: &str,
    mut done: impl FnMut(&[(Option<Vec<u8>>, Vec<u8>, Vec<(String, Vec<u8>)>)]) -> bool,
) -> Vec<(Option<Vec<u8>>, Vec<u8>, Vec<(String, Vec<u8>)>)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", format!("reader-{topic}-{}", rand_suffix()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut records = Vec::new();
    let started = Instant::now();
    while !done(&records) {
        assert!(
            started.elapsed() < WAIT,
            "timed out reading {topic}: {} records",
            records.len()
        );
        if let Ok(Ok(message)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|header| (header.key.to_owned(), header.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            records.push((
                message.key().map(<[u8]>::to_vec),
                message.payload().unwrap_or_default().to_vec(),
                headers,
            ));
        }
    }
    records
}

async fn read_results(broker: &DevBroker, count: usize) -> Vec<ResultMessage> {
    let wanted = count;
    read_until(broker, "script-results", |records| {
        let ids: BTreeSet<&[u8]> = records.iter().filter_map(|r| r.0.as_deref()).collect();
        ids.len() >= wanted
    })
    .await
    .into_iter()
    .map(|(_, payload, _)| serde_json::from_slice(&payload).unwrap())
    .collect()
}

/// The partitions of the scripts topic, as the broker lists them.
fn scripts_partitions(consumer: &BaseConsumer) -> Vec<i32> {
    let metadata = consumer
        .fetch_metadata(Some("scripts"), Duration::from_secs(10))
        .unwrap();
    metadata.topics()[0].partitions().iter().map(|p| p.id()).collect()
}

/// The committed position of every scripts partition for the runners' group.
async fn committed(broker: &DevBroker) -> BTreeMap<i32, i64> {
    let brokers = broker.bootstrap_servers();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "runners")
            .create()
            .unwrap();
        let mut partitions = TopicPartitionList::new();
        for partition in scripts_partitions(&consumer) {
            partitions.add_partition("scripts", partition);
        }
        let committed = consumer.committed_offsets(partitions, Duration::from_secs(10)).unwrap();
        committed
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(offset) => offset,
                    _ => 0,
                };
                (e.partition(), offset)
            })
            .collect()
    })
    .await
    .unwrap()
}

/// The oldest offset the broker still keeps and the end offset of every scripts partition.
async fn watermarks(broker: &DevBroker) -> BTreeMap<i32, (i64, i64)> {
    let brokers = broker.bootstrap_servers();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
        scripts_partitions(&consumer)
            .into_iter()
            .map(|partition| {
                let marks = consumer
                    .fetch_watermarks("scripts", partition, Duration::from_secs(10))
                    .unwrap();
                (partition, marks)
            })
            .collect()
    })
    .await
    .unwrap()
}

async fn wait_for_commits(broker: &DevBroker, total: i64) -> BTreeMap<i32, i64> {
    let started = Instant::now();
    loop {
        let committed = committed(broker).await;
        if committed.values().sum::<i64>() >= total {
            return committed;
        }
        assert!(
            started.elapsed() < WAIT,
            "commits stuck at {committed:?}, want {total} in all"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}-{n}")).collect()
}

/// The partitions of `topic` as the broker reports them; `None` while it does not know the topic.
fn partitions_of(broker: &DevBroker, topic: &str) -> Option<usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("allow.auto.create.topics", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let found = metadata.topics().iter().find(|t| t.name() == topic)?;
    found.error().is_none().then(|| found.partitions().len())
}

/// `scrc dev-broker` with `KAFKA_EVENTS_TOPIC` set makes the events topic with the others, as `scrc create-topics`
/// does, so that a consumer subscribing before the first event finds it (and without it, makes none).
#[test]
fn the_dev_broker_makes_the_events_topic_when_one_is_configured() {
    let without = DevBroker::start(&topics()).unwrap();
    assert_eq!(partitions_of(&without, "scrc-events"), None);
    assert_eq!(partitions_of(&without, "scripts"), Some(PARTITIONS as usize));
    let with = DevBroker::start(&DevTopics {
        events: Some("scrc-events".into()),
        ..topics()
    })
    .unwrap();
    assert_eq!(partitions_of(&with, "scrc-events"), Some(PARTITIONS as usize));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n_scripts_give_n_results_and_every_offset_is_committed() {
    let broker = DevBroker::start(&topics()).unwrap();
    let sent = ids("n", 40);
    produce_scripts(&broker, &sent, "echo").await;
    let runner = Runner::start(&broker, "runner-a", 4, FakeRuntime::new());

    let results = read_results(&broker, sent.len()).await;
    let returned: BTreeSet<String> = results.iter().map(|r| r.id.clone()).collect();
    assert_eq!(returned, sent.iter().cloned().collect());
    assert!(results.iter().all(|r| r.status == "OK"), "{results:?}");
    assert!(results.iter().all(|r| r.timestamp.ends_with('Z') && r.tests.len() == 1));

    let committed = wait_for_commits(&broker, sent.len() as i64).await;
    assert_eq!(committed.values().sum::<i64>(), 40);
    let summary = runner.stop().await;
    assert_eq!(summary.abandoned, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_message_goes_to_the_dead_letter_topic_and_the_next_one_is_processed() {
    let broker = DevBroker::start(&topics()).unwrap();
    let headers = OwnedHeaders::new().insert(Header {
        key: "trace-id",
        value: Some("t-1"),
    });
    produce(
        &broker,
        "scripts",
        Some("poison-1"),
        b"{this is not json",
        Some(headers),
    )
    .await;
    produce(
        &broker,
        "scripts",
        Some("poison-1"),
        &script_json("after-poison", "echo"),
        None,
    )
    .await;
    let runner = Runner::start(&broker, "runner-a", 1, FakeRuntime::new());

    let dead = read_until(&broker, "scripts-dlq", |records| !records.is_empty()).await;
    let (key, payload, headers) = &dead[0];
    assert_eq!(key.as_deref(), Some(&b"poison-1"[..]), "the original key is kept");
    assert_eq!(payload, b"{this is not json", "the original bytes are kept");
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(
        header("trace-id").as_deref(),
        Some("t-1"),
        "the original headers are kept"
    );
    assert!(header("scrc-error").unwrap().contains("not valid JSON"));
    assert!(header("scrc-origin").unwrap().starts_with("scripts:"));

    let results = read_results(&broker, 2).await;
    let by_id: BTreeMap<&str, &str> = results.iter().map(|r| (r.id.as_str(), r.status.as_str())).collect();
    assert_eq!(
        by_id.get("poison-1"),
        Some(&"RJ"),
        "the key gives an id, so an RJ result is published too"
    );
    assert_eq!(by_id.get("after-poison"), Some(&"OK"));
    wait_for_commits(&broker, 2).await;
    runner.stop().await;
}

/// A runtime that never finishes building: the script stays in flight until the runner dies.
#[derive(Default, Clone)]
struct HangingRuntime {
    taken: Arc<AtomicBool>,
}

impl Runtime for HangingRuntime {
    type Program = ();

    async fn prepare(
        &self,
        _script: &Script,
        _limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<Preparation<()>, RuntimeError> {
        self.taken.store(true, Ordering::SeqCst);
        cancel.cancelled().await;
        Err(RuntimeError::Cancelled)
    }

    async fn run(&self, _: &(), _: &[u8], _: &CancellationToken) -> Result<Execution, RuntimeError> {
        Err(RuntimeError::Cancelled)
    }

    async fn check(&self, _: &(), _: CheckFiles<'_>, _: &CancellationToken) -> Result<Execution, RuntimeError> {
        Err(RuntimeError::Cancelled)
    }

    async fn probe(&self, _: &CancellationToken) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn release(&self, _: ()) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_dropped_without_committing_leads_to_redelivery_and_a_result() {
    let broker = DevBroker::start(&topics()).unwrap();
    produce_scripts(&broker, &ids("orphan", 1), "echo").await;

    let hanging = HangingRuntime::default();
    let doomed = Runner::start(&broker, "runner-doomed", 1, hanging.clone());
    let started = Instant::now();
    while !hanging.taken.load(Ordering::SeqCst) {
        assert!(started.elapsed() < WAIT, "the first instance never took the script");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!doomed.handle.is_finished());
    // Kill it mid-script: the task is dropped, nothing is published or committed.
    doomed.handle.abort();
    assert!(doomed.handle.await.unwrap_err().is_cancelled());
    assert_eq!(committed(&broker).await.values().sum::<i64>(), 0);

    let survivor = Runner::start(&broker, "runner-survivor", 1, FakeRuntime::new());
    let results = read_results(&broker, 1).await;
    assert_eq!(results[0].id, "orphan-0");
    assert_eq!(results[0].status, "OK");
    assert_eq!(results[0].runner.as_deref(), Some("runner-survivor"));
    wait_for_commits(&broker, 1).await;
    survivor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_in_one_group_split_the_partitions_and_every_id_comes_back() {
    let broker = DevBroker::start(&topics()).unwrap();
    let sent = ids("split", 60);
    let first = Runner::start(&broker, "runner-1", 2, FakeRuntime::new());
    let second = Runner::start(&broker, "runner-2", 2, FakeRuntime::new());
    tokio::time::sleep(Duration::from_secs(4)).await;
    produce_scripts(&broker, &sent, "sleep 50\necho").await;

    let results = read_results(&broker, sent.len()).await;
    let returned: BTreeSet<String> = results.iter().map(|r| r.id.clone()).collect();
    assert_eq!(returned, sent.iter().cloned().collect(), "every id comes back");
    let mut verdicts: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for result in &results {
        verdicts.entry(&result.id).or_default().insert(&result.status);
    }
    assert!(
        verdicts.values().all(|v| v.len() == 1),
        "a duplicate never changes the verdict"
    );
    let runners: BTreeSet<&str> = results.iter().filter_map(|r| r.runner.as_deref()).collect();
    assert_eq!(
        runners,
        BTreeSet::from(["runner-1", "runner-2"]),
        "both instances took a share"
    );
    wait_for_commits(&broker, sent.len() as i64).await;
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_produce_errors_injected_no_offset_is_stored_for_an_unpublished_result() {
    let broker = DevBroker::start(&topics()).unwrap();
    produce_scripts(&broker, &ids("blocked", 1), "echo").await;
    broker.cluster().request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 500],
    );
    let runner = Runner::start(&broker, "runner-a", 1, FakeRuntime::new());

    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        committed(&broker).await.values().sum::<i64>(),
        0,
        "the result was refused by the broker, so the script's offset must not be committed"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    let early = read_until(&broker, "script-results", |records| {
        !records.is_empty() || Instant::now() > deadline
    })
    .await;
    assert!(
        early.is_empty(),
        "no result may get through while produce requests fail"
    );

    broker.cluster().clear_request_errors(RDKafkaApiKey::Produce);
    let results = read_results(&broker, 1).await;
    assert_eq!(results[0].id, "blocked-0");
    assert_eq!(results[0].status, "OK");
    wait_for_commits(&broker, 1).await;
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreadable_message_just_under_the_size_limit_is_dead_lettered_shortened_and_committed() {
    let broker = DevBroker::start(&topics()).unwrap();
    let mut settings = kafka_settings(&broker, "runner-a", 1);
    settings.max_message_bytes = 1 << 20;
    // Not JSON, 1 KiB under the runner's limit: copied whole with its key and headers, the dead-letter record
    // would be over the producer's message.max.bytes (1,000,000).
    let payload = vec![b'x'; (1 << 20) - 1024];
    let headers = OwnedHeaders::new().insert(Header {
        key: "trace-id",
        value: Some("t-1"),
    });
    produce(&broker, "scripts", Some("big-1"), &payload, Some(headers)).await;
    produce(
        &broker,
        "scripts",
        Some("big-1"),
        &script_json("after-big", "echo"),
        None,
    )
    .await;
    let runner = Runner::start_with(settings, FakeRuntime::new());

    let dead = read_until(&broker, "scripts-dlq", |records| !records.is_empty()).await;
    let (key, kept, headers) = &dead[0];
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(key.as_deref(), Some(&b"big-1"[..]), "the key is kept");
    assert!(
        kept.len() < payload.len() && !kept.is_empty(),
        "{} bytes kept",
        kept.len()
    );
    assert!(payload.starts_with(kept), "what is kept is the start of the payload");
    assert_eq!(header("trace-id").as_deref(), Some("t-1"));
    assert!(header("scrc-error").unwrap().contains("not valid JSON"));
    assert!(header("scrc-origin").unwrap().starts_with("scripts:"));
    assert_eq!(header("scrc-original-size"), Some(payload.len().to_string()));
    assert!(
        header("scrc-truncated")
            .unwrap()
            .contains(&format!("{} of {} bytes", kept.len(), payload.len())),
        "{:?}",
        header("scrc-truncated")
    );

    let results = read_results(&broker, 2).await;
    assert!(results.iter().any(|r| r.id == "after-big" && r.status == "OK"));
    wait_for_commits(&broker, 2).await;
    runner.stop().await;
}

/// Adds a header whose name is the raw `name` bytes. rdkafka's `OwnedHeaders::insert` takes the name as `&str`,
/// but other clients may send any bytes; librdkafka itself accepts them.
fn with_raw_header(headers: OwnedHeaders, name: &[u8], value: &[u8]) -> OwnedHeaders {
    // rdkafka 0.39's `BorrowedHeaders` is the native `rd_kafka_headers_t` behind a reference.
    let native = std::ptr::from_ref(headers.as_borrowed())
        .cast::<rdkafka::bindings::rd_kafka_headers_t>()
        .cast_mut();
    // SAFETY: `native` is the live, writable header list `headers` owns; librdkafka copies name and value.
    let error = unsafe {
        rdkafka::bindings::rd_kafka_header_add(
            native,
            name.as_ptr().cast(),
            name.len() as isize,
            value.as_ptr().cast(),
            value.len() as isize,
        )
    };
    assert_eq!(error, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR);
    headers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_header_name_that_is_not_utf8_is_dead_lettered_without_a_panic() {
    let broker = DevBroker::start(&topics()).unwrap();
    let headers = with_raw_header(
        OwnedHeaders::new().insert(Header {
            key: "trace-id",
            value: Some("t-1"),
        }),
        b"bad\xff\xfename",
        b"v",
    );
    produce(&broker, "scripts", Some("bad-header-1"), b"{not json", Some(headers)).await;
    produce(&broker, "scripts", None, &script_json("after-bad-header", "echo"), None).await;
    let runner = Runner::start(&broker, "runner-a", 1, FakeRuntime::new());

    let dead = read_until(&broker, "scripts-dlq", |records| !records.is_empty()).await;
    let (key, payload, headers) = &dead[0];
    assert_eq!(key.as_deref(), Some(&b"bad-header-1"[..]));
    assert_eq!(payload, b"{not json");
    let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
    assert!(names.contains(&"trace-id"), "{names:?}");
    assert!(
        names.contains(&"bad\u{fffd}\u{fffd}name"),
        "the name is kept, its invalid bytes replaced: {names:?}"
    );

    let results = read_results(&broker, 2).await;
    let by_id: BTreeMap<&str, &str> = results.iter().map(|r| (r.id.as_str(), r.status.as_str())).collect();
    assert_eq!(by_id.get("bad-header-1"), Some(&"RJ"));
    assert_eq!(by_id.get("after-bad-header"), Some(&"OK"), "the runner is still up");
    wait_for_commits(&broker, 2).await;
    let summary = runner.stop().await;
    assert_eq!(summary.set_aside, 1);
}

/// Polls a plain group member built from the runner's own consumer settings until it owns a partition.
async fn wait_for_assignment(consumer: &StreamConsumer, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        // Polling serves the group protocol; the messages themselves do not matter here.
        let _ = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await;
        if consumer.assignment().is_ok_and(|owned| owned.count() > 0) {
            return Some(started.elapsed());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_joining_while_every_slot_is_busy_gets_its_partitions_without_waiting_for_the_script() {
    let broker = DevBroker::start(&topics()).unwrap();
    produce_scripts(&broker, &ids("long", 4), "sleep 60000\necho").await;
    let runtime = FakeRuntime::new();
    let busy = Runner::start(&broker, "runner-busy", 1, runtime.clone());
    let started = Instant::now();
    while runtime.stats().active.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < WAIT, "the runner never took a script");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its only slot now holds a script that runs for a minute.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let joiner: StreamConsumer = kafka_settings(&broker, "joiner", 1).consumer_config().create().unwrap();
    joiner.subscribe(&["scripts"]).unwrap();
    let joined = wait_for_assignment(&joiner, Duration::from_secs(30)).await;
    // The mock cluster itself takes about 10 s for a cooperative rebalance (two rounds), busy runner or not. A
    // runner that does not poll while busy holds the rebalance up until the mock throws it out of the group (the
    // joiner then owns every partition), and a real broker for up to max.poll.interval.ms.
    assert!(
        joined.is_some_and(|took| took < Duration::from_secs(20)),
        "the rebalance must not wait for the busy runner's 60 s script: joined after {joined:?}"
    );
    let owned = joiner.assignment().map(|owned| owned.count()).unwrap_or_default();
    assert!(
        owned < PARTITIONS as usize,
        "the busy runner took part in the rebalance and kept a share, rather than being thrown out of the \
         group: the joiner owns {owned} of {PARTITIONS} partitions"
    );
    assert!(!busy.handle.is_finished(), "the busy runner is still up");
    busy.handle.abort();
}

/// librdkafka keeps the application's pause on a partition across its revocation and a later assignment. A runner
/// whose slots are all busy pauses its assignment; a rebalance then moves a paused partition to another member; the
/// runner resumes what it owns once a slot frees; when the partition comes back (the other member leaves, is killed,
/// or the broker restarts and the group forms again), it must deliver again rather than stay paused for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_revoked_while_paused_delivers_again_when_it_comes_back() {
    let broker = DevBroker::start(&topics()).unwrap();
    // One slot: the long script fills it and the short one behind it (same key, same partition) is held, which
    // pauses the whole assignment.
    produce(
        &broker,
        "scripts",
        Some("same"),
        &script_json("long", "sleep 30000\necho"),
        None,
    )
    .await;
    produce(&broker, "scripts", Some("same"), &script_json("behind", "echo"), None).await;
    let runtime = FakeRuntime::new();
    let runner = Runner::start(&broker, "runner-paused", 1, runtime.clone());
    let started = Instant::now();
    while runtime.stats().active.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < WAIT, "the runner never took a script");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Another member takes some of the paused partitions while the slot is busy.
    let joiner: StreamConsumer = kafka_settings(&broker, "joiner", 1).consumer_config().create().unwrap();
    joiner.subscribe(&["scripts"]).unwrap();
    let joined = wait_for_assignment(&joiner, Duration::from_secs(25)).await;
    assert!(joined.is_some(), "the joiner never got a partition");
    assert_eq!(
        runtime.stats().active.load(Ordering::SeqCst),
        1,
        "the partitions moved while the runner was still busy and paused"
    );

    // The long script ends; the runner resumes what it owns now. Then the joiner leaves and its partitions return.
    while runtime.stats().active.load(Ordering::SeqCst) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(50),
            "the long script never ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    joiner.unsubscribe();
    drop(joiner);

    // Twelve keys reach every partition but with a chance of 6 x 2^-12, so some land on those that came back.
    let after = ids("after", 12);
    produce_scripts(&broker, &after, "echo").await;
    let results = read_results(&broker, after.len() + 2).await;
    let returned: BTreeSet<String> = results.iter().map(|r| r.id.clone()).collect();
    for id in after.iter().map(String::as_str).chain(["long", "behind"]) {
        assert!(returned.contains(id), "{id} never came back: {returned:?}");
    }
    runner.stop().await;
}

/// librdkafka's mock cluster, which `scrc dev-broker` and `scrc-demo` run, keeps only about the newest 5 MiB of each
/// partition and drops older batches, read or not. What it dropped before the runner came is gone: the runner starts
/// at the oldest message kept, answers each kept message once and commits to the end. A test that counts what it
/// sent rather than what was kept miscounts; the fuzz test did, and looked like message loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dev_broker_keeps_about_5_mib_per_partition_and_the_runner_answers_each_message_kept() {
    const SENT: i64 = 100;
    let broker = DevBroker::start(&topics()).unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("message.max.bytes", "2000000")
        .create()
        .unwrap();
    // 7 MB in one partition, each message over the runner's 64 KiB limit and so dead-lettered.
    let payload = vec![b' '; 70_000];
    for _ in 0..SENT {
        let record: FutureRecord<'_, str, [u8]> = FutureRecord::to("scripts").partition(0).payload(&payload);
        producer.send(record, Duration::from_secs(10)).await.unwrap();
    }
    let (oldest, end) = watermarks(&broker).await[&0];
    assert_eq!(end, SENT);
    assert!(
        oldest > 0 && (end - oldest) * 70_000 <= 6 << 20,
        "the mock cluster keeps about 5 MiB: offsets {oldest}..{end} of 70 kB messages are kept"
    );

    let runner = Runner::start(&broker, "runner-kept", 4, FakeRuntime::new());
    let committed = wait_for_commits(&broker, SENT).await;
    assert_eq!(committed[&0], SENT, "committed to the end");
    let summary = runner.stop().await;
    assert_eq!(
        summary.answered,
        (end - oldest) as u64,
        "each kept message answered once: {summary:?}"
    );
    assert_eq!(summary.set_aside, summary.answered);
}

/// A small deterministic generator (xorshift64*), so that a failing fuzz run can be repeated from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One fuzzed message: key, payload and raw headers.
struct Fuzzed {
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
}

fn odd_value(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    match rng.below(12) {
        0 => json!(null),
        1 => json!(true),
        2 => json!(-1),
        3 => json!(i64::MIN),
        4 => json!(u64::MAX),
        5 => json!(1e308),
        6 => json!(-0.5),
        7 => json!("x".repeat(rng.below(3000))),
        8 => json!([1, "two", null, {"three": 3}]),
        9 => json!({"nested": {"deeper": [[[]]]}}),
        10 => json!(""),
        _ => json!("\u{0}\u{fffd}\u{1f600}"),
    }
}

/// A valid script (the fake runtime's `echo`), then one mutation of it. Never a `done` message, which would stop
/// the runner.
fn fuzzed(rng: &mut Rng, n: usize) -> Fuzzed {
    let language = ["python", "go", "c", "cpp", "java"][rng.below(5)];
    let mut script = serde_json::json!({
        "id": format!("fuzz-{n}"),
        "language": language,
        "source": "echo",
        "limits": {"time_limit_ms": 1000, "memory_limit_bytes": 67_108_864},
        "tests": [{"number": 1, "input": "1\n", "expected_output": "1\n"}],
    });
    let mut message = Fuzzed {
        key: Some(format!("fuzz-{n}").into_bytes()),
        payload: Vec::new(),
        headers: Vec::new(),
    };
    let fields = [
        "id",
        "language",
        "source",
        "limits",
        "tests",
        "checker",
        "float_tolerance",
        "run_all_tests",
        "type",
    ];
    match rng.below(12) {
        // Odd field types, at the top or inside the limits and tests.
        0 => script[fields[rng.below(fields.len())]] = odd_value(rng),
        1 => script["limits"][["time_limit_ms", "memory_limit_bytes"][rng.below(2)]] = odd_value(rng),
        2 => script["tests"][0][["number", "input", "expected_output"][rng.below(3)]] = odd_value(rng),
        // Deep nesting, past serde_json's recursion limit or just under it.
        3 => {
            let depth = [100, 127, 129, 5000][rng.below(4)];
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            script["tests"] = serde_json::from_str(&nested).unwrap_or(serde_json::Value::Null);
            if depth > 127 {
                message.payload =
                    format!(r#"{{"id":"fuzz-{n}","language":"c","source":"echo","tests":{nested}}}"#).into_bytes();
            }
        }
        // Huge ids, over the 256-byte cap and over the message size limit.
        4 => script["id"] = serde_json::json!("i".repeat([257, 10_000, 70_000][rng.below(3)])),
        // Many tests, over the runner's maximum.
        5 => script["tests"] = serde_json::json!(vec![serde_json::json!({"input": "", "expected_output": ""}); 40]),
        _ => {}
    }
    if message.payload.is_empty() {
        message.payload = script.to_string().into_bytes();
    }
    match rng.below(10) {
        // Truncation.
        0 => {
            let at = rng.below(message.payload.len());
            message.payload.truncate(at);
        }
        // Byte flips.
        1 => {
            for _ in 0..=rng.below(8) {
                let at = rng.below(message.payload.len());
                message.payload[at] ^= 1 << rng.below(8);
            }
        }
        // Invalid UTF-8 inside a string.
        2 => {
            let at = message.payload.len() / 2;
            message.payload.splice(at..at, [0xff, 0xfe, 0xc0, 0x80]);
        }
        // Oversize: past the runner's 64 KiB message limit.
        3 => message.payload.extend(std::iter::repeat_n(b' ', 70_000)),
        _ => {}
    }
    match rng.below(8) {
        0 => message.key = None,
        1 => message.key = Some(vec![0xff, 0x00, 0xfe, b'k']),
        2 => message.key = Some(vec![b'k'; 5_000]),
        3 => message.headers.push((b"bad\xff\xfename".to_vec(), b"v".to_vec())),
        4 => message.headers.push((b"trace".to_vec(), vec![0xff; 100])),
        _ => {}
    }
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fuzzed_messages_are_each_answered_committed_and_the_runner_stays_up() {
    const MESSAGES: usize = 3000;
    const SEED: u64 = 0x5eed_5c2c;
    // The mock cluster keeps only about the newest 5 MiB of each partition and drops older batches beyond it. The
    // corpus is about 29 MB (a tenth of it over the 64 KiB message limit), and partitioned by key the few fixed
    // fuzzed keys piled over 5 MiB on one or two partitions, so that hundreds of messages were gone before the
    // runner started. Spread round robin over twice the usual partitions, each holds about 2.4 MB.
    const FUZZ_PARTITIONS: usize = 2 * PARTITIONS as usize;
    let started = Instant::now();
    let broker = DevBroker::start(&DevTopics {
        partitions: FUZZ_PARTITIONS as i32,
        events: None,
        ..topics()
    })
    .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("message.max.bytes", "2000000")
        .set("linger.ms", "20")
        .create()
        .unwrap();
    let mut rng = Rng(SEED);
    let messages: Vec<Fuzzed> = (0..MESSAGES).map(|n| fuzzed(&mut rng, n)).collect();
    let numbered: Vec<(usize, &Fuzzed)> = messages.iter().enumerate().collect();
    for chunk in numbered.chunks(500) {
        let sends = chunk.iter().map(|&(n, message)| {
            let mut headers = OwnedHeaders::new();
            for (name, value) in &message.headers {
                headers = with_raw_header(headers, name, value);
            }
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to("scripts")
                .partition((n % FUZZ_PARTITIONS) as i32)
                .payload(message.payload.as_slice())
                .headers(headers);
            if let Some(key) = &message.key {
                record = record.key(key.as_slice());
            }
            producer.send(record, Duration::from_secs(30))
        });
        for sent in futures::future::join_all(sends).await {
            sent.unwrap();
        }
    }
    produce(
        &broker,
        "scripts",
        Some("fuzz-final"),
        &script_json("fuzz-final", "echo"),
        None,
    )
    .await;
    let total = MESSAGES + 1;
    let kept = watermarks(&broker).await;
    assert!(
        kept.values().all(|&(oldest, _)| oldest == 0)
            && kept.values().map(|&(_, end)| end).sum::<i64>() == total as i64,
        "the mock cluster dropped messages before the runner started, which would be counted as sent but \
         never answered: (oldest kept, end) by partition {kept:?}"
    );

    let runner = Runner::start(&broker, "runner-fuzz", 8, FakeRuntime::new());
    let committed = wait_for_commits(&broker, total as i64).await;
    let ends: BTreeMap<i32, i64> = kept.iter().map(|(&partition, &(_, end))| (partition, end)).collect();
    assert_eq!(committed, ends, "every offset is committed");
    assert!(!runner.handle.is_finished(), "the runner is still up");

    let results = read_until(&broker, "script-results", |records| {
        records
            .iter()
            .any(|(key, _, _)| key.as_deref() == Some(&b"fuzz-final"[..]))
    })
    .await;
    let last: ResultMessage = results
        .iter()
        .rev()
        .find(|(key, _, _)| key.as_deref() == Some(&b"fuzz-final"[..]))
        .and_then(|(_, payload, _)| serde_json::from_slice(payload).ok())
        .expect("the valid script sent last gets a result");
    assert_eq!(last.status, "OK", "{last:?}");

    let summary = runner.stop().await;
    assert_eq!(summary.stop, scrc::app::StopReason::Requested);
    assert_eq!(summary.abandoned, 0);
    assert_eq!(
        summary.unanswered, 0,
        "every message got a result or a dead letter: {summary:?}"
    );
    assert_eq!(
        summary.answered, total as u64,
        "each message is answered exactly once, by a result, a dead letter or both: {summary:?}"
    );
    eprintln!(
        "fuzz: {total} messages (seed {SEED:#x}) in {:.1} s: {summary:?}",
        started.elapsed().as_secs_f64()
    );
}

/// The priority lanes' topics: interactive first.
const LANES: [&str; 2] = ["scripts-interactive", "scripts-batch"];

/// How long each script of a burst runs: the "one script's time" an interactive script may wait for a slot.
const SCRIPT_TIME: Duration = Duration::from_millis(1500);

/// Sends `id` on `topic` and returns how long its result took to be published, by the result's own timestamp.
async fn latency_of(
    broker: &DevBroker,
    topic: &str,
    id: &str,
    source: &str,
    headers: Option<OwnedHeaders>,
) -> Duration {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .unwrap();
    let payload = script_json(id, source);
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(id).payload(&payload);
    if let Some(headers) = headers {
        record = record.headers(headers);
    }
    let sent = std::time::SystemTime::now();
    producer.send(record, Duration::from_secs(10)).await.unwrap();
    let wanted = id.as_bytes().to_vec();
    let records = read_until(broker, "script-results", |records| {
        records.iter().any(|record| record.0.as_deref() == Some(&wanted[..]))
    })
    .await;
    let result: ResultMessage = records
        .iter()
        .find(|record| record.0.as_deref() == Some(&wanted[..]))
        .map(|record| serde_json::from_slice(&record.1).unwrap())
        .unwrap();
    let published = humantime::parse_rfc3339(&result.timestamp).unwrap();
    published.duration_since(sent).unwrap_or_default()
}

/// Waits until `slots` scripts are being judged at once, the rest of what was sent waiting behind them.
async fn busy(runtime: &FakeRuntime, slots: usize) {
    let started = Instant::now();
    while runtime.stats().active.load(Ordering::SeqCst) < slots {
        assert!(
            started.elapsed() < WAIT,
            "the runner never got {slots} scripts to judge"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And the consumer has had time to receive and hold what the partitions have for it.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// A broker with both lanes' topics.
fn lane_broker() -> DevBroker {
    DevBroker::start(&DevTopics {
        scripts: LANES.iter().map(|&topic| topic.to_owned()).collect(),
        ..topics()
    })
    .unwrap()
}

fn lane_settings(broker: &DevBroker, instance: &str, max_parallel: usize) -> KafkaSettings {
    let mut settings = kafka_settings(broker, instance, max_parallel);
    settings.scripts_topics = LANES.iter().map(|&topic| topic.to_owned()).collect();
    // The mock cluster answers an idle fetch only when the wait expires: keep it short, as real Kafka would be.
    settings.properties.push(("fetch.wait.max.ms".into(), "10".into()));
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interactive_script_waits_for_one_slot_not_for_a_burst_on_the_batch_lane() {
    let broker = lane_broker();
    let burst = ids("batch", 16);
    let sleep = format!("sleep {}\necho", SCRIPT_TIME.as_millis());
    for id in &burst {
        produce(&broker, LANES[1], Some(id), &script_json(id, &sleep), None).await;
    }
    let runtime = FakeRuntime::new();
    let runner = Runner::start_with(lane_settings(&broker, "runner-lanes", 2), runtime.clone());
    busy(&runtime, 2).await;

    let waited = latency_of(&broker, LANES[0], "interactive", "echo", None).await;
    assert!(
        waited < SCRIPT_TIME + Duration::from_millis(700),
        "the interactive script took {waited:?}: more than one batch script's time ({SCRIPT_TIME:?})"
    );
    let results = read_results(&broker, burst.len() + 1).await;
    assert!(results.iter().all(|r| r.status == "OK"), "{results:?}");
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_lanes_are_judged_and_committed_and_a_new_runner_judges_nothing_again() {
    let broker = lane_broker();
    let interactive = ids("i", 12);
    let batch = ids("b", 12);
    for (topic, sent) in [(LANES[0], &interactive), (LANES[1], &batch)] {
        for id in sent {
            produce(&broker, topic, Some(id), &script_json(id, "echo"), None).await;
        }
    }
    let runtime = FakeRuntime::new();
    let runner = Runner::start_with(lane_settings(&broker, "runner-a", 3), runtime.clone());
    let results = read_results(&broker, 24).await;
    assert!(results.iter().all(|r| r.status == "OK"), "{results:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let summary = runner.stop().await;
    assert_eq!(summary.answered, 24);

    // Everything was committed on both topics: a fresh member of the group finds nothing to judge.
    let again = FakeRuntime::new();
    let runner = Runner::start_with(lane_settings(&broker, "runner-b", 3), again.clone());
    tokio::time::sleep(Duration::from_secs(8)).await;
    runner.stop().await;
    assert_eq!(
        again.stats().runs.load(Ordering::SeqCst),
        0,
        "a committed script was judged again"
    );
}

fn tenant_header(tenant: &str) -> OwnedHeaders {
    OwnedHeaders::new().insert(Header {
        key: "tenant",
        value: Some(tenant),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenants_flood_and_a_batch_burst_delay_another_tenants_interactive_script_by_one_script_at_most() {
    let broker = lane_broker();
    let sleep = format!("sleep {}\necho", SCRIPT_TIME.as_millis());
    // A re-judge on the batch lane, and one class flooding the interactive lane, all sent before the runner starts.
    let burst = ids("rejudge", 8);
    for id in &burst {
        produce(&broker, LANES[1], Some(id), &script_json(id, &sleep), None).await;
    }
    let flood = ids("class-a", 6);
    for id in &flood {
        let headers = tenant_header("class-a");
        produce(&broker, LANES[0], Some(id), &script_json(id, &sleep), Some(headers)).await;
    }
    let runtime = FakeRuntime::new();
    let mut settings = lane_settings(&broker, "runner-fair", 2);
    // As the configuration sizes it: the slots and the lookahead (4 per slot), so that reading through the flood
    // never pauses the interactive lane, which would hide class b's script until it resumed.
    settings.hold_per_lane = 2 + 4 * 2;
    let runner = Runner::start_fair(settings, runtime.clone(), Some(1));
    busy(&runtime, 2).await;

    let waited = latency_of(&broker, LANES[0], "student", "echo", Some(tenant_header("class-b"))).await;
    assert!(
        waited < SCRIPT_TIME + Duration::from_millis(700),
        "class b's script took {waited:?}: more than one script's time ({SCRIPT_TIME:?}) behind class a's flood and \
         the batch lane's burst"
    );
    let results = read_results(&broker, burst.len() + flood.len() + 1).await;
    assert!(results.iter().all(|r| r.status == "OK"), "{results:?}");
    runner.stop().await;
}
