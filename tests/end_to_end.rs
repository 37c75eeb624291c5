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
        scripts: vec!["scripts".into()],
        results: "script-results".into(),
        dead_letters: "scripts-dlq".into(),
        partitions: 3,
        events: None,
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
    let distinct = |records: &[Value]| {
        records
            .iter()
            .filter_map(|record| record["id"].as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    read_keyed(brokers, "script-results", |records| distinct(records) >= count)
        .await
        .into_iter()
        .map(|value| (value["id"].as_str().unwrap_or_default().to_owned(), value))
        .collect()
}

/// Reads the JSON records of `topic` from its start until `enough` says so, or fails after a minute; each is
/// checked to be keyed by its `id`.
async fn read_keyed(brokers: &str, topic: &str, enough: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("e2e-reader-{}", unique()))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut records = Vec::new();
    let started = Instant::now();
    while !enough(&records) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} records of {topic}: {records:?}",
            records.len()
        );
        if let Ok(Ok(message)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            let value: Value = serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON record");
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            assert_eq!(
                value["id"].as_str(),
                Some(key.as_str()),
                "{topic} is keyed by script id"
            );
            records.push(value);
        }
    }
    records
}

/// A runner with its HTTP listener and lifecycle events on: after a few scripts, `/metrics` counts exactly what
/// was judged (results by language and status, the dead letter, the build and run phases), `/healthz` and
/// `/readyz` answer, and the events topic holds each script's accepted, building, running and finished events in
/// order, keyed by id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_and_events_follow_what_was_judged() {
    if support::docker_runtime(config(&[]).docker).await.is_none() {
        return;
    }
    let broker = DevBroker::start(&DevTopics {
        scripts: vec!["scripts".into()],
        results: "script-results".into(),
        dead_letters: "scripts-dlq".into(),
        partitions: 2,
        events: None,
    })
    .expect("dev broker");
    let brokers = broker.bootstrap_servers();
    let addr = free_local_addr();
    let config = config(&[
        ("KAFKA_BROKERS", &brokers),
        ("RUNNER_MAX_PARALLEL", "2"),
        ("RUNNER_HTTP_ADDR", &addr),
        ("KAFKA_EVENTS_TOPIC", "script-events"),
    ]);
    let messages: [(&str, String); 4] = [
        (
            "m-ok",
            json!({"id": "m-ok", "language": "python", "source": "print(input())",
                "tests": [{"input": "a\n", "expected_output": "a\n"}, {"input": "b\n", "expected_output": "b\n"}]})
            .to_string(),
        ),
        (
            "m-wa",
            json!({"id": "m-wa", "language": "python", "source": "print('no')",
                "tests": [{"input": "", "expected_output": "yes\n"}]})
            .to_string(),
        ),
        (
            "m-rj",
            json!({"id": "m-rj", "language": "cobol", "source": "DISPLAY 'HI'."}).to_string(),
        ),
        ("m-bad", "this is not JSON".to_owned()),
    ];
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    for (key, payload) in &messages {
        producer
            .send(
                FutureRecord::to("scripts").key(*key).payload(payload),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
    }

    let stop = CancellationToken::new();
    let runner = tokio::spawn(scrc::commands::run(config.clone(), stop.clone()));
    let results = read_results(&brokers, messages.len()).await;
    let status = |id: &str| results[id]["status"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        (status("m-ok"), status("m-wa"), status("m-rj"), status("m-bad")),
        ("OK".into(), "WA".into(), "RJ".into(), "RJ".into())
    );

    // The counters move when the runner has the broker's acknowledgement, which the results reader may beat: wait
    // (at most 10 s) until nothing is in flight and every script is counted, then check everything at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let (code, metrics) = http_get(&addr, "/metrics").await.expect("the runner serves /metrics");
        assert_eq!(code, 200);
        let settled = series(&metrics, "scrc_in_flight") == Some(0.0)
            && series(
                &metrics,
                "scrc_script_seconds_count{language=\"python\",phase=\"end_to_end\"}",
            ) == Some(2.0)
            && series(&metrics, "scrc_scripts_total{language=\"none\",status=\"RJ\"}") == Some(2.0);
        if settled || Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let value = |name: &str| series(&metrics, name).unwrap_or_else(|| panic!("no {name} in:\n{metrics}"));
    assert_eq!(value("scrc_scripts_total{language=\"python\",status=\"OK\"}"), 1.0);
    assert_eq!(value("scrc_scripts_total{language=\"python\",status=\"WA\"}"), 1.0);
    assert_eq!(
        value("scrc_scripts_total{language=\"none\",status=\"RJ\"}"),
        2.0,
        "cobol and the unreadable message"
    );
    assert_eq!(value("scrc_dead_letters_total"), 1.0);
    assert_eq!(value("scrc_publish_errors_total"), 0.0);
    assert_eq!(value("scrc_slots"), 2.0);
    assert_eq!(value("scrc_in_flight"), 0.0);
    assert_eq!(value("scrc_held_back"), 0.0, "no tenant cap, nothing held back");
    assert_eq!(value("scrc_breaker_open"), 0.0);
    assert_eq!(value("scrc_events_dropped_total"), 0.0);
    assert_eq!(
        value("scrc_script_seconds_count{language=\"python\",phase=\"build\"}"),
        2.0
    );
    assert_eq!(
        value("scrc_script_seconds_count{language=\"python\",phase=\"run\"}"),
        3.0,
        "two tests of m-ok, one of m-wa"
    );
    assert_eq!(
        value("scrc_script_seconds_count{language=\"python\",phase=\"queue\"}"),
        2.0
    );
    assert_eq!(
        value("scrc_script_seconds_count{language=\"python\",phase=\"end_to_end\"}"),
        2.0
    );
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(!metrics.contains("m-ok"), "a script id never becomes a label value");
    assert_eq!(http_get(&addr, "/healthz").await.map(|(code, _)| code), Some(200));
    // The lag comes from librdkafka's statistics, every 5 s: both partitions are this runner's, and fully read.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, metrics) = http_get(&addr, "/metrics").await.expect("the runner serves /metrics");
        let lag = |partition: &str| {
            series(
                &metrics,
                &format!("scrc_consumer_lag{{topic=\"scripts\",partition=\"{partition}\"}}"),
            )
        };
        if lag("0") == Some(0.0) && lag("1") == Some(0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "no lag of 0 for both partitions:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http_get(&addr, "/readyz").await.expect("the runner serves /readyz");
        if ready.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {}", ready.1);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let events = read_events(&brokers, 5 + 4 + 2 + 1).await;
    stop.cancel();
    runner.await.expect("runner task").expect("runner");
    let kinds = |id: &str| -> Vec<String> {
        events
            .iter()
            .filter(|event| event["id"] == id)
            .map(|event| match event["event"].as_str().unwrap_or_default() {
                "running" => format!("running {}", event["test"]),
                "finished" => format!("finished {}", event["status"].as_str().unwrap_or_default()),
                other => other.to_owned(),
            })
            .collect()
    };
    assert_eq!(
        kinds("m-ok"),
        ["accepted", "building", "running 1", "running 2", "finished OK"]
    );
    assert_eq!(kinds("m-wa"), ["accepted", "building", "running 1", "finished WA"]);
    assert_eq!(kinds("m-rj"), ["accepted", "finished RJ"]);
    assert_eq!(
        kinds("m-bad"),
        ["finished RJ"],
        "an unreadable message is never accepted"
    );
    let contract = Contract::load();
    for event in &events {
        contract.assert_valid(Kind::Event, event, &format!("the real event {event}"));
        let fields: Vec<&str> = event.as_object().expect("object").keys().map(String::as_str).collect();
        for field in &fields {
            assert!(
                ["id", "event", "runner", "timestamp", "test", "status"].contains(field),
                "no other fields: {event}"
            );
        }
        assert_eq!(event["runner"], config.instance.as_str());
        let timestamp = event["timestamp"].as_str().expect("timestamp");
        assert!(
            timestamp.ends_with('Z') && timestamp.len() == "2026-11-26T18:30:00.123Z".len(),
            "RFC 3339 UTC with milliseconds: {timestamp}"
        );
    }
}

/// Reads `count` lifecycle events, or fails after a minute; each is checked to be keyed by its id.
async fn read_events(brokers: &str, count: usize) -> Vec<Value> {
    read_keyed(brokers, "script-events", |events| events.len() >= count).await
}
