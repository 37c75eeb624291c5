//! Throughput of the pipeline itself: scripts through Kafka and back with the fake runtime, so that only the
//! consumer, the executor, the producer and the commits are measured. One runner instance drains a pre-filled
//! topic on the embedded broker; parallelism 1 and 8 run side by side in one invocation, so their ratio is
//! measured under the same machine conditions.
//!
//!     cargo bench --bench pipeline            (SCRC_BENCH_SCRIPTS, default 5000)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use scrc::adapters::kafka::dev_broker::DevTopics;
use scrc::adapters::kafka::{DevBroker, KafkaPublisher, KafkaSettings, KafkaSource};
use scrc::app::{Backoff, CircuitBreaker, Executor, ExecutorSettings, Judge, RetryPolicy};
use scrc::domain::{LimitPolicy, Limits, MemoryLimit, TimeLimit};
use scrc::testing::FakeRuntime;
use tokio_util::sync::CancellationToken;

async fn measure(scripts: usize, max_parallel: usize) -> f64 {
    let broker = DevBroker::start(&DevTopics {
        scripts: vec!["scripts".into()],
        results: "script-results".into(),
        dead_letters: "scripts-dlq".into(),
        partitions: 6,
        events: None,
    })
    .expect("dev broker");
    let brokers = broker.bootstrap_servers();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let sends = (0..scripts).map(|n| {
        let producer = producer.clone();
        async move {
            let id = format!("p-{n}");
            let payload = serde_json::json!({"id": id, "language": "python", "source": "echo",
                "tests": [{"input": "hi\n", "expected_output": "hi\n"}]})
            .to_string();
            producer
                .send(
                    FutureRecord::to("scripts").key(&id).payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .expect("produce");
        }
    });
    futures::future::join_all(sends).await;

    let settings = KafkaSettings {
        brokers: brokers.clone(),
        scripts_topics: vec!["scripts".into()],
        lane_policy: scrc::adapters::kafka::LanePolicy::Strict,
        group_id: "bench".into(),
        results_topic: "script-results".into(),
        dlq_topic: "scripts-dlq".into(),
        client_id: "bench".into(),
        properties: Vec::new(),
        max_message_bytes: 1 << 20,
        max_files: 64,
        max_result_bytes: 950_000,
        max_poll_interval: Duration::from_secs(300),
        max_parallel,
        hold_per_lane: max_parallel,
    };
    let limits = Limits {
        time: TimeLimit::new(Duration::from_secs(5)).expect("positive"),
        memory: MemoryLimit::new(256 << 20).expect("positive"),
        cpu_time: None,
    };
    let policy = LimitPolicy {
        default: limits,
        max: limits,
        min_memory: MemoryLimit::new(6 << 20).expect("positive"),
        max_tests: 128,
        checker: limits,
    };
    let retry = RetryPolicy {
        attempts: 3,
        backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(1)),
        breaker_wait: Duration::from_secs(10),
    };
    let judge = Judge::new(
        FakeRuntime::new(),
        policy,
        Arc::new(CircuitBreaker::new(5, Duration::from_secs(5))),
        retry,
    );
    let executor = Executor::new(
        Arc::new(KafkaSource::connect(&settings).expect("consumer")),
        Arc::new(KafkaPublisher::connect(&settings).expect("producer")),
        judge,
        ExecutorSettings {
            max_parallel,
            tenant_max_parallel: None,
            lookahead: 4 * max_parallel,
            script_expected: Some(scripts as u64),
            shutdown_grace: Duration::from_secs(30),
            cleanup_grace: Duration::from_secs(5),
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(1)),
            recent_ids: 65_536,
            script_deadline: Duration::from_secs(600),
        },
    );
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "bench-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["script-results"]).expect("subscribe");

    let started = Instant::now();
    let runner = tokio::spawn(executor.run(CancellationToken::new()));
    let mut seen = HashSet::new();
    while seen.len() < scripts {
        let message = consumer.recv().await.expect("result");
        seen.insert(message.key().unwrap_or_default().to_vec());
    }
    let elapsed = started.elapsed();
    runner.await.expect("runner");
    scripts as f64 / elapsed.as_secs_f64()
}

fn main() {
    let scripts: usize = std::env::var("SCRC_BENCH_SCRIPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        println!("Pipeline throughput, fake runtime, one instance, {scripts} scripts drained from a pre-filled topic:");
        let mut rates = Vec::new();
        for max_parallel in [1, 8] {
            let rate = measure(scripts, max_parallel).await;
            println!("  RUNNER_MAX_PARALLEL={max_parallel}: {rate:.0} scripts/s");
            rates.push(rate);
        }
        println!("  ratio parallel 8 / parallel 1: {:.2}", rates[1] / rates[0]);
    });
}
