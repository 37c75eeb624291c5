//! End to end through the embedded Kafka-protocol broker and the real Docker runtime, via the same composition
//! root `scrc run` uses: SCRC script messages in, SCRC result messages out. Every result and dead-letter record
//! read back is checked against the published contract (`docs/schemas/`).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use scrc::adapters::kafka::DevBroker;
use scrc::adapters::kafka::dev_broker::DevTopics;
use scrc::app::StopReason;
use serde_json::{Value, json};
use support::contract::{Contract, Kind, headers_as_json};
use support::*;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scrc_messages_in_scrc_results_out() {
    if support::docker_runtime(config(&[]).docker).await.is_none() {
        return;
    }
    let broker = DevBroker::start(&DevTopics {
        scripts: "scripts".into(),
        results: "script-results".into(),
        dead_letters: "scripts-dlq".into(),
        partitions: 3,
    })
    .expect("dev broker");
    let brokers = broker.bootstrap_servers();
    let config = config(&[
        ("KAFKA_BROKERS", &brokers),
        ("RUNNER_MAX_PARALLEL", "2"),
        ("SCRIPT_EXPECTED", "7"),
    ]);

    let messages = [
        (
            "e2e-c",
            json!({"type": "script", "id": "e2e-c", "language": "c",
            "source": "#include <stdio.h>\nint main(){int a,b;scanf(\"%d %d\",&a,&b);printf(\"%d\\n\",a+b);return 0;}",
            "tests": [{"number": 1, "input": "2 3\n", "expected_output": "5\n"},
                      {"number": 2, "input": "10 20\n", "expected_output": "30\n"}]}),
        ),
        (
            "e2e-py-min",
            json!({"language": "python", "source": "print('Hello, World!')"}),
        ),
        (
            "e2e-go-limits",
            json!({"id": "e2e-go-limits", "language": "go",
            "source": "package main\n\nimport \"fmt\"\n\nfunc main() {\n    fmt.Println(\"Hello, World!\")\n}",
            "limits": {"time_limit_ms": 2000, "memory_limit_bytes": 67108864}}),
        ),
        (
            "e2e-java-tl",
            json!({"id": "e2e-java-tl", "language": "java",
            "source": "public class Main{public static void main(String[] a){while(true){}}}",
            "limits": {"time_limit_ms": 1000},
            "tests": [{"input": "", "expected_output": ""}, {"input": "", "expected_output": ""}]}),
        ),
        (
            "e2e-cpp-bf",
            json!({"id": "e2e-cpp-bf", "language": "cpp", "source": "int main( {"}),
        ),
        (
            "e2e-rj",
            json!({"id": "e2e-rj", "language": "cobol", "source": "DISPLAY 'HI'."}),
        ),
    ];
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    for (key, message) in &messages {
        let payload = message.to_string();
        producer
            .send(
                FutureRecord::to("scripts").key(*key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
    }
    // Not JSON: dead-lettered with its key and header, and an RJ result under the id its key gives.
    let unreadable = FutureRecord::to("scripts")
        .key("e2e-dlq")
        .payload("{oops")
        .headers(OwnedHeaders::new().insert(Header {
            key: "trace-id",
            value: Some("4bf92f3577b34da6"),
        }));
    producer
        .send(unreadable, Duration::from_secs(10))
        .await
        .expect("produce");

    let stop = CancellationToken::new();
    let summary = tokio::time::timeout(Duration::from_secs(180), scrc::commands::run(config.clone(), stop))
        .await
        .expect("the runner finished its SCRIPT_EXPECTED scripts in time")
        .expect("the runner ran");
    assert_eq!(summary.stop, StopReason::Expected);

    let results = read_results(&brokers, messages.len() + 1).await;
    let contract = Contract::load();
    for (id, result) in &results {
        contract.assert_valid(Kind::Result, result, &format!("the real result of {id}"));
    }
    let status = |id: &str| results[id]["status"].as_str().unwrap_or_default().to_owned();
    assert_eq!(status("e2e-c"), "OK");
    assert_eq!(status("e2e-py-min"), "OK", "an id-less message takes its key as id");
    assert_eq!(status("e2e-go-limits"), "OK");
    assert_eq!(status("e2e-java-tl"), "TL");
    assert_eq!(status("e2e-cpp-bf"), "BF");
    assert_eq!(status("e2e-rj"), "RJ");

    let c = &results["e2e-c"];
    for field in [
        "id",
        "status",
        "exit_code",
        "stdout",
        "stderr",
        "duration_ms",
        "error",
        "tests",
        "timestamp",
    ] {
        assert!(c.get(field).is_some(), "SCRC field {field} missing: {c}");
    }
    assert_eq!(c["tests"][1]["stdout"], "30\n");
    assert_eq!(c["tests"][1]["expected_output"], "30\n");
    assert_eq!(c["stdout"], "30\n", "top-level stdout is the last test's, as in SCRC");
    assert!(c["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(results["e2e-py-min"]["stdout"], "Hello, World!\n");
    assert!(
        results["e2e-py-min"].get("tests").is_none(),
        "no tests: no tests field, as in SCRC"
    );
    assert_eq!(results["e2e-java-tl"]["tests"][1]["status"], "-");
    assert!(results["e2e-cpp-bf"]["stderr"].as_str().unwrap().contains("error"));
    assert!(results["e2e-rj"]["error"].as_str().unwrap().contains("cobol"));
    assert_eq!(
        results["e2e-dlq"]["status"], "RJ",
        "an unreadable message keyed by an id gets RJ"
    );

    let (key, payload, headers) = read_dead_letter(&brokers).await;
    contract.assert_valid(
        Kind::DeadLetterHeaders,
        &headers,
        "the real dead-letter record's headers",
    );
    assert_eq!(key.as_deref(), Some(&b"e2e-dlq"[..]), "the original key");
    assert_eq!(payload.as_deref(), Some(&b"{oops"[..]), "the original bytes");
    assert_eq!(headers["trace-id"], "4bf92f3577b34da6", "the original header");
    assert_eq!(headers["scrc-original-size"], "5");
    assert_eq!(leftovers(&config.instance).await, (0, 0));
}

/// The one record of the dead-letter topic: key, value and headers (as the contract's JSON object).
async fn read_dead_letter(brokers: &str) -> (Option<Vec<u8>>, Option<Vec<u8>>, Value) {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("e2e-dlq-reader-{}", unique()))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["scripts-dlq"]).expect("subscribe");
    let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
        .await
        .expect("a dead-letter record within 60 s")
        .expect("a readable dead-letter record");
    let headers = message
        .headers()
        .map(|headers| headers_as_json(headers.iter().map(|header| (header.key, header.value))))
        .unwrap_or_else(|| json!({}));
    (
        message.key().map(<[u8]>::to_vec),
        message.payload().map(<[u8]>::to_vec),
        headers,
    )
}

async fn read_results(brokers: &str, count: usize) -> BTreeMap<String, Value> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("e2e-reader-{}", unique()))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["script-results"]).expect("subscribe");
    let mut results = BTreeMap::new();
    let started = Instant::now();
    while results.len() < count {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} results: {results:?}",
            results.len()
        );
        if let Ok(Ok(message)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            let value: Value = serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON result");
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            assert_eq!(
                value["id"].as_str(),
                Some(key.as_str()),
                "results are keyed by script id"
            );
            results.insert(key, value);
        }
    }
    results
}
