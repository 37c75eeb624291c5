//! Prometheus metrics: an [`Observer`] that counts and times what the app tells it, plus gauges sampled from the
//! runner's parts (breaker, sandbox pool, consumer, process) each time `/metrics` is scraped.
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust client: metrics are plain values registered in
//! a registry we own (no global state, so tests run several runners in one process), and label sets are typed
//! structs, so a label can only hold what its type allows. Every label value here comes from a closed set: a
//! language, a status code, a phase, a sandbox state, a configured scripts topic or a partition number; never a
//! script id or a tenant.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::adapters::kafka::consumer::PartitionLag;
use crate::domain::{Language, RunReport, ScriptId};
use crate::ports::Observer;

/// The content type of the exposition: OpenMetrics text, which Prometheus scrapes natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The label for a submission whose language is unknown (a rejected one naming no supported language).
const NO_LANGUAGE: &str = "none";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ScriptLabels {
    /// The script's language, or `none` for a rejected message that named no supported one.
    language: &'static str,
    /// The result's overall status code (`OK`, `WA`, … `RJ`).
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PhaseLabels {
    /// The script's language, or `none` when it is not known.
    language: &'static str,
    /// Which part of a script's life was timed: `queue`, `build`, `run` (per test) or `end_to_end`.
    phase: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    /// `building`, `running` or `idle`: what the counted sandboxes are doing.
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PartitionLabels {
    /// The scripts topic (the priority lane) the partition belongs to.
    topic: String,
    /// The partition's number in that topic.
    partition: i32,
}

type Sampler = Box<dyn Fn(&Metrics) + Send + Sync>;

/// Every metric of a runner, and the registry they are exposed from.
pub struct Metrics {
    /// What `/metrics` encodes: every metric below, registered under its `scrc_` name.
    registry: Registry,
    /// Results published, by language and overall status.
    scripts: Family<ScriptLabels, Counter>,
    /// Messages that could not become scripts and went to the dead-letter topic.
    dead_letters: Counter,
    /// Failed publish attempts (each is retried, or replaced by a smaller record).
    publish_errors: Counter,
    /// Lifecycle events dropped because their queue was full or the broker refused them.
    events_dropped: Counter,
    /// Seconds per phase: queue wait, build, run (per test), and end to end (enqueue to result acknowledged).
    seconds: Family<PhaseLabels, Histogram, fn() -> Histogram>,
    /// Messages being processed now: taken from Kafka, their result not yet acknowledged.
    in_flight: Gauge,
    /// Scripts taken and held back because their tenant is at its cap (`RUNNER_TENANT_MAX_PARALLEL`).
    held_back: Gauge,
    /// 1 while the circuit breaker holds scripts back from a failing engine.
    breaker_open: Gauge,
    /// Sandboxes by state: `building` and `running` for scripts' phases now, `idle` for warm ones waiting.
    sandboxes: Family<StateLabels, Gauge>,
    /// Messages behind the end of each assigned partition, from librdkafka's statistics.
    consumer_lag: Family<PartitionLabels, Gauge>,
    /// The process's resident set, in bytes.
    resident_memory: Gauge,
    /// Read the gauges that are sampled rather than observed, before each scrape.
    samplers: Mutex<Vec<Sampler>>,
}

/// Buckets from 5 ms doubling to about 5.5 minutes: a queue wait, a build or a run all fall inside.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 17))
}

impl Metrics {
    /// The metrics of a runner that judges up to `slots` scripts at once.
    pub fn new(slots: usize) -> Self {
        let mut registry = Registry::default();
        let scripts = Family::<ScriptLabels, Counter>::default();
        registry.register(
            "scrc_scripts",
            "Results published, by language and status",
            scripts.clone(),
        );
        let dead_letters = Counter::default();
        registry.register(
            "scrc_dead_letters",
            "Records published to the dead-letter topic",
            dead_letters.clone(),
        );
        let publish_errors = Counter::default();
        registry.register(
            "scrc_publish_errors",
            "Publish attempts the broker did not acknowledge or refused",
            publish_errors.clone(),
        );
        let events_dropped = Counter::default();
        registry.register(
            "scrc_events_dropped",
            "Lifecycle events dropped (queue full or not delivered)",
            events_dropped.clone(),
        );
        let seconds = Family::<PhaseLabels, Histogram, fn() -> Histogram>::new_with_constructor(seconds_histogram);
        registry.register_with_unit(
            "scrc_script",
            "Time per phase: queue (Kafka timestamp to taken), build, run (one test), end_to_end",
            Unit::Seconds,
            seconds.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("scrc_in_flight", "Messages being processed now", in_flight.clone());
        let held_back = Gauge::default();
        registry.register(
            "scrc_held_back",
            "Scripts taken and held back because their tenant is at its cap",
            held_back.clone(),
        );
        // Fixed for the life of the runner: registered with its value, not kept.
        let slots_gauge = Gauge::<i64>::default();
        slots_gauge.set(i64::try_from(slots).unwrap_or(i64::MAX));
        registry.register("scrc_slots", "Scripts judged at once at most", slots_gauge);
        let breaker_open = Gauge::default();
        registry.register(
            "scrc_breaker_open",
            "1 while the Docker circuit breaker is open or half-open",
            breaker_open.clone(),
        );
        let sandboxes = Family::<StateLabels, Gauge>::default();
        registry.register("scrc_sandboxes", "Sandboxes by state", sandboxes.clone());
        let consumer_lag = Family::<PartitionLabels, Gauge>::default();
        registry.register(
            "scrc_consumer_lag",
            "Messages behind the end of each assigned partition of the scripts topics",
            consumer_lag.clone(),
        );
        let resident_memory = Gauge::default();
        registry.register_with_unit(
            "process_resident_memory",
            "Resident set size of the runner process",
            Unit::Bytes,
            resident_memory.clone(),
        );
        Self {
            registry,
            scripts,
            dead_letters,
            publish_errors,
            events_dropped,
            seconds,
            in_flight,
            held_back,
            breaker_open,
            sandboxes,
            consumer_lag,
            resident_memory,
            samplers: Mutex::new(Vec::new()),
        }
    }

    /// Runs `sampler` before every scrape, to read a gauge from its source.
    pub fn sample(&self, sampler: impl Fn(&Metrics) + Send + Sync + 'static) {
        self.samplers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(sampler));
    }

    pub fn set_breaker_open(&self, open: bool) {
        self.breaker_open.set(i64::from(open));
    }

    pub fn set_idle_sandboxes(&self, idle: usize) {
        self.sandbox(SandboxState::Idle)
            .set(i64::try_from(idle).unwrap_or(i64::MAX));
    }

    /// Replaces the per-partition lag with `lags`: partitions no longer listed (revoked) disappear.
    pub fn set_consumer_lag(&self, lags: &[PartitionLag]) {
        self.consumer_lag.clear();
        for PartitionLag { topic, partition, lag } in lags {
            let labels = PartitionLabels {
                topic: topic.clone(),
                partition: *partition,
            };
            self.consumer_lag.get_or_create(&labels).set(*lag);
        }
    }

    /// Raises the dropped-events counter to `total`, the count its source keeps.
    pub fn set_events_dropped(&self, total: u64) {
        let seen = self.events_dropped.get();
        if total > seen {
            self.events_dropped.inc_by(total - seen);
        }
    }

    /// Samples the gauges and renders every metric in the exposition format.
    pub fn render(&self) -> String {
        for sampler in self.samplers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            sampler(self);
        }
        if let Some(bytes) = resident_bytes() {
            self.resident_memory.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            // Only a writer can fail, and a String never does; say so rather than serve half a page.
            text.clear();
            let _ = writeln!(text, "# cannot encode the metrics: {error}\n# EOF");
        }
        text
    }

    fn phase(&self, language: Option<Language>, phase: &'static str) -> impl std::ops::Deref<Target = Histogram> {
        self.seconds.get_or_create(&PhaseLabels {
            language: language.map_or(NO_LANGUAGE, Language::as_str),
            phase,
        })
    }

    fn sandbox(&self, state: SandboxState) -> impl std::ops::Deref<Target = Gauge> {
        self.sandboxes.get_or_create(&StateLabels { state: state.as_str() })
    }
}

#[derive(Debug, Clone, Copy)]
enum SandboxState {
    Building,
    Running,
    Idle,
}

impl SandboxState {
    fn as_str(self) -> &'static str {
        match self {
            SandboxState::Building => "building",
            SandboxState::Running => "running",
            SandboxState::Idle => "idle",
        }
    }
}

impl Observer for Metrics {
    fn accepted(&self, _id: &ScriptId, language: Option<Language>, waited: Option<Duration>) {
        if let Some(waited) = waited {
            self.phase(language, "queue").observe(waited.as_secs_f64());
        }
    }

    fn building(&self, _id: &ScriptId, _language: Language) {
        self.sandbox(SandboxState::Building).inc();
    }

    fn built(&self, language: Language, took: Duration) {
        self.sandbox(SandboxState::Building).dec();
        self.phase(Some(language), "build").observe(took.as_secs_f64());
    }

    fn running(&self, _id: &ScriptId, _language: Language, _test: u32) {
        self.sandbox(SandboxState::Running).inc();
    }

    fn ran(&self, language: Language, took: Duration) {
        self.sandbox(SandboxState::Running).dec();
        self.phase(Some(language), "run").observe(took.as_secs_f64());
    }

    fn finished(&self, report: &RunReport, took: Duration) {
        self.scripts
            .get_or_create(&ScriptLabels {
                language: report.language.map_or(NO_LANGUAGE, Language::as_str),
                status: report.status.code(),
            })
            .inc();
        self.phase(report.language, "end_to_end").observe(took.as_secs_f64());
    }

    fn set_aside(&self) {
        self.dead_letters.inc();
    }

    fn publish_failed(&self) {
        self.publish_errors.inc();
    }

    fn in_flight(&self, started: bool) {
        if started {
            self.in_flight.inc();
        } else {
            self.in_flight.dec();
        }
    }

    fn held_back(&self, scripts: usize) {
        self.held_back.set(i64::try_from(scripts).unwrap_or(i64::MAX));
    }
}

/// The process's resident set size, from `/proc/self/status` (`VmRSS`, in kB); `None` off Linux.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counters_and_phases_follow_what_the_app_observes() {
        let metrics = Metrics::new(3);
        let id = ScriptId::new("s1").unwrap();
        metrics.accepted(&id, Some(Language::C), Some(Duration::from_millis(20)));
        metrics.building(&id, Language::C);
        metrics.built(Language::C, Duration::from_millis(300));
        metrics.running(&id, Language::C, 1);
        let text = metrics.render();
        assert_eq!(value(&text, "scrc_sandboxes{state=\"running\"}"), Some(1.0));
        metrics.ran(Language::C, Duration::from_millis(10));
        let report = RunReport::rejected(id.clone(), None, "cobol".into());
        metrics.finished(&report, Duration::from_secs(1));
        metrics.set_aside();
        metrics.publish_failed();
        metrics.publish_failed();
        let lag = |topic: &str, partition, lag| PartitionLag {
            topic: topic.into(),
            partition,
            lag,
        };
        metrics.set_consumer_lag(&[lag("scripts", 0, 4), lag("scripts", 1, 9), lag("batch", 0, 2)]);
        metrics.set_consumer_lag(&[lag("scripts", 0, 4), lag("scripts", 2, 0), lag("batch", 0, 3)]);
        metrics.set_events_dropped(7);
        metrics.set_breaker_open(true);
        metrics.held_back(5);
        metrics.held_back(2);

        let text = metrics.render();
        assert_eq!(
            value(&text, "scrc_scripts_total{language=\"none\",status=\"RJ\"}"),
            Some(1.0)
        );
        assert_eq!(value(&text, "scrc_dead_letters_total"), Some(1.0));
        assert_eq!(value(&text, "scrc_publish_errors_total"), Some(2.0));
        assert_eq!(value(&text, "scrc_events_dropped_total"), Some(7.0));
        assert_eq!(value(&text, "scrc_slots"), Some(3.0));
        assert_eq!(value(&text, "scrc_breaker_open"), Some(1.0));
        assert_eq!(value(&text, "scrc_held_back"), Some(2.0));
        assert_eq!(value(&text, "scrc_sandboxes{state=\"running\"}"), Some(0.0));
        assert_eq!(
            value(&text, "scrc_consumer_lag{topic=\"scripts\",partition=\"0\"}"),
            Some(4.0)
        );
        assert_eq!(
            value(&text, "scrc_consumer_lag{topic=\"batch\",partition=\"0\"}"),
            Some(3.0)
        );
        assert_eq!(
            value(&text, "scrc_consumer_lag{topic=\"scripts\",partition=\"1\"}"),
            None,
            "a revoked partition goes"
        );
        assert_eq!(
            value(&text, "scrc_script_seconds_count{language=\"c\",phase=\"build\"}"),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "scrc_script_seconds_count{language=\"c\",phase=\"queue\"}"),
            Some(1.0)
        );
        assert!(value(&text, "process_resident_memory_bytes").is_some_and(|bytes| bytes > 0.0));
        assert!(text.ends_with("# EOF\n"));
    }

    /// Every metric the Grafana dashboard queries is one the runner exposes, so a renamed metric cannot leave a
    /// panel silently empty.
    #[test]
    fn the_dashboard_queries_only_metrics_the_runner_exposes() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../monitoring/grafana/dashboards/scrc.json")).unwrap();
        let metrics = Metrics::new(1);
        let id = ScriptId::new("s").unwrap();
        metrics.accepted(&id, Some(Language::Python), Some(Duration::from_millis(1)));
        metrics.built(Language::Python, Duration::from_millis(1));
        metrics.ran(Language::Python, Duration::from_millis(1));
        metrics.finished(&RunReport::rejected(id, None, "x".into()), Duration::from_millis(1));
        metrics.set_consumer_lag(&[PartitionLag {
            topic: "scripts".into(),
            partition: 0,
            lag: 1,
        }]);
        metrics.set_idle_sandboxes(1);
        let exposed = metrics.render();
        let panels = dashboard["panels"].as_array().unwrap();
        assert!(panels.len() >= 10, "{} panels", panels.len());
        let mut queried = 0;
        for panel in panels {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let names = expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|word| word.starts_with("scrc_") || word.starts_with("process_"));
                for name in names {
                    queried += 1;
                    assert!(
                        exposed.lines().any(|line| line
                            .strip_prefix(name)
                            .is_some_and(|rest| rest.starts_with(['{', ' ', '_']))),
                        "panel {:?} queries {name}, which the runner does not expose",
                        panel["title"]
                    );
                }
            }
        }
        assert!(queried > 10);
    }
}
