//! The simulator's Kafka side: it is an ordinary client of the runner, producing SCRC script messages and reading
//! SCRC result messages, exactly as an online judge's backend would.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A result as read off the results topic.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub status: String,
    /// The result's `score` and `max_score`, when it has them (scrc's results do; SCRC's do not).
    pub score: Option<[f64; 2]>,
    pub runner: Option<String>,
    pub at: Instant,
    /// The whole result message, for the consumer log.
    pub payload: String,
}

#[derive(Deserialize)]
struct ResultFields {
    id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    runner: Option<String>,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    max_score: Option<f64>,
}

/// An idempotent producer for script messages.
///
/// # Errors
/// When the client cannot be created.
pub fn producer(broker: &str) -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .create()?)
}

/// Sends one script message keyed by its id.
///
/// # Errors
/// When the broker does not acknowledge it.
pub async fn send(producer: &FutureProducer, topic: &str, id: &str, payload: &str) -> anyhow::Result<()> {
    producer
        .send(
            FutureRecord::to(topic).key(id).payload(payload),
            Duration::from_secs(30),
        )
        .await
        .map(|_| ())
        .map_err(|(error, _)| anyhow::anyhow!("cannot send {id}: {error}"))
}

/// Sends one script message on `scripts` and waits up to 180 s for its result among `results` (others are passed
/// over): the benchmark plans' idle latency, send to result. Returns the latency.
///
/// # Errors
/// When the send is not acknowledged, no result comes in time, the reader stopped, or the result is not OK.
pub async fn judged_ok(
    producer: &FutureProducer,
    results: &mut mpsc::UnboundedReceiver<Received>,
    id: &str,
    payload: &str,
) -> anyhow::Result<Duration> {
    use anyhow::Context as _;
    let sent = Instant::now();
    send(producer, "scripts", id, payload).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let received = tokio::time::timeout_at(deadline, results.recv())
            .await
            .with_context(|| format!("no result for {id}"))?
            .context("the result reader stopped")?;
        if received.id == id {
            anyhow::ensure!(received.status == "OK", "{id} got {}", received.status);
            return Ok(received.at.duration_since(sent));
        }
    }
}

/// Reads results from `topic` in consumer group `group` (from the earliest offset the group has not consumed)
/// until `stop` fires, and forwards each one.
///
/// # Errors
/// When the consumer cannot be created or subscribed.
pub fn results(
    broker: &str,
    topic: &str,
    group: &str,
    poll_timeout: Duration,
    stop: CancellationToken,
) -> anyhow::Result<mpsc::UnboundedReceiver<Received>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        // Real Kafka answers a waiting fetch as soon as data arrives; the embedded mock broker waits the whole
        // fetch.wait.max.ms (500 ms by default), which would show up in every measured latency.
        .set("fetch.wait.max.ms", "10")
        .create()?;
    consumer.subscribe(&[topic])?;
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return,
                message = tokio::time::timeout(poll_timeout, consumer.recv()) => message,
            };
            let Ok(Ok(message)) = message else { continue };
            let payload = String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
            let Ok(fields) = serde_json::from_str::<ResultFields>(&payload) else {
                tracing::warn!(offset = message.offset(), "ignoring a result that is not SCRC JSON");
                continue;
            };
            let received = Received {
                id: fields.id,
                status: fields.status,
                score: fields.score.zip(fields.max_score).map(|(score, max)| [score, max]),
                runner: fields.runner,
                at: Instant::now(),
                payload,
            };
            if sender.send(received).is_err() {
                return;
            }
        }
    });
    Ok(receiver)
}
