//! The chaos run (`cargo bench --bench harness -- chaos`, and at CI size the `chaos` integration test): runner
//! processes in one group against tansu, a real group coordinator out of process, while the run SIGKILLs and
//! restarts them and starts a rebalance at the worst moment.
//!
//! 1. **Busy rebalance.** Slow scripts (a sleep well inside a long time limit, so their verdict is certain) fill the
//!    slots. As soon as one runner has every slot busy, one more runner joins; the rebalance must finish while
//!    those slots are still busy (a runner that only polls Kafka with a free slot would hold it up for a whole slow
//!    script). The extra runner is then stopped gracefully: a second rebalance while busy.
//! 2. **Kills.** The submissions go out at once; at seeded points of the drain (after so many results) a seeded
//!    runner, one that is up and owns partitions, is SIGKILLed and, once the group has noticed (the session timeout,
//!    plus a margin for tansu 0.6.0, which reassigns a dead member's partitions only at the next join), restarted
//!    under the same identity, as an orchestrator would. A kill does not wait for an earlier victim's restart, so
//!    several runners, even all of them, may be down at once.
//!
//! The evidence is every record of the results topic, not the first per id: every id must come back, no id with
//! two different verdicts (a repeat with the same verdict is allowed and counted), and no container or volume of
//! any runner instance may be left at the end.

pub mod ledger;
pub mod runner_log;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::load::Draw;
use super::plan::Profile;
use super::processes::{self, Runner, SESSION_TIMEOUT, Tansu, Tools};
use crate::kafka::{self, Received};
use crate::library::{Limits, Scenario, TestSpec};
use ledger::{Conflict, Ledger};
use runner_log::RunnerLog;

/// How big a chaos run is, and its seed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosPlan {
    pub name: &'static str,
    /// Submissions of the kill phase, drawn from the library.
    pub submissions: usize,
    /// SIGKILL and restart events during the kill phase.
    pub kills: usize,
    /// Runner processes in the group (one more joins for the busy rebalance).
    pub runners: usize,
    /// `RUNNER_MAX_PARALLEL` of each runner.
    pub parallelism: usize,
    pub partitions: usize,
    /// How long each slow script of the busy rebalance sleeps (its time limit is 20 s).
    pub slow_sleep: Duration,
    /// Give up waiting for results this long after the kill phase's submissions are sent.
    pub timeout: Duration,
    /// Seeds the mix, the kill points and the choice of each victim among the runners eligible then (which are
    /// eligible depends on timing, so a seed repeats the mix and the points, not always the victims).
    pub seed: u64,
}

impl ChaosPlan {
    /// The integration test's size: a few minutes on 2 cores.
    pub fn ci(seed: u64) -> Self {
        Self {
            name: "ci",
            submissions: 150,
            kills: 5,
            runners: 3,
            parallelism: 2,
            partitions: 12,
            slow_sleep: Duration::from_secs(15),
            timeout: Duration::from_secs(600),
            seed,
        }
    }

    /// The full size: 1,000 submissions, 20 kills.
    pub fn full(seed: u64) -> Self {
        Self {
            name: "full",
            submissions: 1000,
            kills: 20,
            timeout: Duration::from_secs(3600),
            ..Self::ci(seed)
        }
    }

    /// A smaller full run: `factor` of the submissions and kills (at least one kill).
    pub fn scaled(mut self, factor: f64) -> Self {
        self.submissions = ((self.submissions as f64 * factor).round() as usize).max(1);
        self.kills = ((self.kills as f64 * factor).round() as usize).max(1);
        self
    }

    /// Slow scripts sent for the busy rebalance: two per slot, so that every runner's slots can fill.
    fn slow_scripts(&self) -> usize {
        2 * self.runners * self.parallelism
    }
}

/// The seed of `SCRC_CHAOS_SEED` (decimal or `0x` hex), or one from the clock.
pub fn seed_from_env() -> u64 {
    let parse = |text: &str| match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    };
    std::env::var("SCRC_CHAOS_SEED")
        .ok()
        .and_then(|text| parse(text.trim()))
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// One SIGKILL.
#[derive(Debug, Clone, PartialEq)]
pub struct Kill {
    /// Seconds after the kill phase's submissions were sent.
    pub at_seconds: f64,
    pub instance: String,
    /// Scripts the runner had started judging and not published when it died.
    pub in_flight: usize,
    /// Results back (kill phase) when it died.
    pub answered: usize,
}

/// How the rebalance started while a runner's slots were all busy went.
#[derive(Debug, Clone, PartialEq)]
pub struct BusyRebalance {
    /// The runner whose every slot was busy with a slow script.
    pub busy_instance: String,
    /// Runners with every slot busy when the new one joined.
    pub busy_runners: usize,
    /// From starting the new runner to its first assigned partition.
    pub seconds: f64,
    /// Whether the busy runner's slow scripts were all still running when the rebalance finished.
    pub while_busy: bool,
}

/// What a chaos run found.
#[derive(Debug, Clone)]
pub struct ChaosReport {
    pub plan: ChaosPlan,
    /// Every id sent: the kill phase's plus the slow scripts.
    pub sent: usize,
    pub records: usize,
    /// Records beyond the first for an id, with the same verdict.
    pub duplicates: usize,
    /// Ids that came back with two or more different verdicts.
    pub conflicts: Vec<Conflict>,
    /// Ids that never came back.
    pub lost: Vec<String>,
    /// Ids whose verdict is not the library's (id, expected, got): reported, not a failure of the delivery path.
    pub unexpected: Vec<(String, String, String)>,
    pub kills: Vec<Kill>,
    pub rebalance: Option<BusyRebalance>,
    /// From the kill phase's sends to its last first result.
    pub drain_seconds: f64,
    /// Containers and volumes left per runner instance.
    pub leftovers: Vec<(String, usize, usize)>,
    /// Instances whose final graceful stop did not exit 0 (with what happened).
    pub unclean_exits: Vec<(String, String)>,
    pub duration_seconds: f64,
}

impl ChaosReport {
    /// Everything that makes the run a failure; empty when it passed.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.lost.is_empty() {
            problems.push(format!(
                "{} id(s) never came back: {:?}",
                self.lost.len(),
                first(&self.lost)
            ));
        }
        for conflict in &self.conflicts {
            problems.push(format!(
                "{} came back with different verdicts {:?}",
                conflict.id, conflict.verdicts
            ));
        }
        for (instance, containers, volumes) in &self.leftovers {
            if (*containers, *volumes) != (0, 0) {
                problems.push(format!(
                    "{instance} left {containers} container(s) and {volumes} volume(s)"
                ));
            }
        }
        match &self.rebalance {
            None => problems.push("the busy rebalance never happened".into()),
            Some(rebalance) if !rebalance.while_busy => problems.push(format!(
                "the rebalance waited for the busy slots of {}: {:.1} s",
                rebalance.busy_instance, rebalance.seconds
            )),
            Some(_) => {}
        }
        if self.kills.len() < self.plan.kills {
            problems.push(format!(
                "only {} of {} kills happened",
                self.kills.len(),
                self.plan.kills
            ));
        }
        for (instance, exit) in &self.unclean_exits {
            problems.push(format!("{instance} did not stop cleanly: {exit}"));
        }
        problems
    }

    /// The summary the harness writes and the test prints.
    pub fn summary(&self) -> Value {
        json!({
            "plan": self.plan.name,
            "seed": format!("{:#x}", self.plan.seed),
            "runners": self.plan.runners,
            "parallelism": self.plan.parallelism,
            "partitions": self.plan.partitions,
            "submissions": self.plan.submissions,
            "slow_scripts": self.plan.slow_scripts(),
            "sent": self.sent,
            "kills": self.kills.len(),
            "records": self.records,
            "duplicates": self.duplicates,
            "duplicates_with_different_verdicts": self.conflicts.len(),
            "lost": self.lost.len(),
            "unexpected_verdicts": self.unexpected.len(),
            "drain_seconds": self.drain_seconds,
            "busy_rebalance_seconds": self.rebalance.as_ref().map(|r| r.seconds),
            "busy_rebalance_while_busy": self.rebalance.as_ref().map(|r| r.while_busy),
            "busy_runners_at_rebalance": self.rebalance.as_ref().map(|r| r.busy_runners),
            "leftover_containers": self.leftovers.iter().map(|l| l.1).sum::<usize>(),
            "leftover_volumes": self.leftovers.iter().map(|l| l.2).sum::<usize>(),
            "duration_seconds": self.duration_seconds,
            "problems": self.problems(),
            "conflicts": self.conflicts.iter().map(|c| json!({"id": c.id, "verdicts": c.verdicts})).collect::<Vec<_>>(),
            "lost_ids": first(&self.lost),
            "unexpected": self.unexpected.iter().take(20).map(|(id, expected, got)| json!({"id": id, "expected": expected, "got": got})).collect::<Vec<_>>(),
            "kill_events": self.kills.iter().map(|k| json!({"at_seconds": k.at_seconds, "instance": k.instance, "in_flight": k.in_flight, "answered": k.answered})).collect::<Vec<_>>(),
        })
    }
}

fn first(ids: &[String]) -> Vec<&String> {
    ids.iter().take(20).collect()
}

/// Runs `plan`: starts tansu and the runners (logs under `logs`), drives both phases, stops everything and counts
/// what is left.
///
/// # Errors
/// When tansu, a runner or a Kafka client cannot be started. Lost ids, conflicts and leftovers are not errors: they
/// are in the report.
pub async fn run(plan: &ChaosPlan, tools: &Tools, logs: &Path) -> anyhow::Result<ChaosReport> {
    std::fs::create_dir_all(logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tag = format!("chaos-{started_unix:x}-{:x}", plan.seed & 0xffff);
    eprintln!(
        "chaos: plan {} seed {:#x} ({} submissions, {} kills); tag {tag}",
        plan.name, plan.seed, plan.submissions, plan.kills
    );
    let broker = Tansu::start(tools, plan.partitions, &format!("scrc.chaos={tag}")).await?;
    let mut run = Run::new(plan, tools, logs, &tag, &broker.brokers)?;
    let outcome = run.drive().await;
    let report = run.finish(outcome).await;
    broker.stop().await;
    report
}

/// A runner instance of the run: its identity, its log and the process serving it now.
struct Member {
    instance: String,
    log_path: PathBuf,
    log: RunnerLog,
    process: Option<Runner>,
    /// When a killed process is restarted (once the group has noticed it is gone); `None` while a process runs.
    restart_at: Option<Instant>,
}

impl Member {
    fn start(tools: &Tools, brokers: &str, parallelism: usize, instance: String, logs: &Path) -> anyhow::Result<Self> {
        let log_path = logs.join(format!("{instance}.log"));
        let mut member = Self {
            log: RunnerLog::new(&log_path),
            log_path,
            instance,
            process: None,
            restart_at: None,
        };
        member.restart(tools, brokers, parallelism)?;
        Ok(member)
    }

    /// Starts a process under this identity. The log is appended to, so a killed run's log is kept.
    fn restart(&mut self, tools: &Tools, brokers: &str, parallelism: usize) -> anyhow::Result<()> {
        self.restart_at = None;
        self.log.restarted();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("cannot open {}", self.log_path.display()))?;
        self.process = Some(Runner::spawn(tools, brokers, parallelism, &self.instance, log, &[])?);
        Ok(())
    }
}

/// The state of one chaos run.
struct Run<'a> {
    plan: &'a ChaosPlan,
    tools: &'a Tools,
    logs: &'a Path,
    tag: &'a str,
    brokers: &'a str,
    members: Vec<Member>,
    /// The runner that joins for the busy rebalance, stopping gracefully in the background afterwards.
    extra: Option<(String, tokio::task::JoinHandle<Option<std::process::ExitStatus>>)>,
    ledger: Ledger,
    results: mpsc::UnboundedReceiver<Received>,
    stop_reading: CancellationToken,
    draw: Draw,
    /// The library's verdict for every kill-phase id.
    expected: BTreeMap<String, String>,
    kills: Vec<Kill>,
    rebalance: Option<BusyRebalance>,
    drain_seconds: f64,
    clock: Instant,
}

impl<'a> Run<'a> {
    fn new(
        plan: &'a ChaosPlan,
        tools: &'a Tools,
        logs: &'a Path,
        tag: &'a str,
        brokers: &'a str,
    ) -> anyhow::Result<Self> {
        let stop_reading = CancellationToken::new();
        let results = kafka::results(
            brokers,
            "script-results",
            &format!("{tag}-reader"),
            Duration::from_millis(200),
            stop_reading.clone(),
        )?;
        Ok(Self {
            plan,
            tools,
            logs,
            tag,
            brokers,
            members: Vec::new(),
            extra: None,
            ledger: Ledger::default(),
            results,
            stop_reading,
            draw: Draw::new(plan.seed),
            expected: BTreeMap::new(),
            kills: Vec::new(),
            rebalance: None,
            drain_seconds: 0.0,
            clock: Instant::now(),
        })
    }

    async fn drive(&mut self) -> anyhow::Result<()> {
        for index in 0..self.plan.runners {
            let instance = format!("{}-r{index}", self.tag);
            self.members.push(Member::start(
                self.tools,
                self.brokers,
                self.plan.parallelism,
                instance,
                self.logs,
            )?);
        }
        self.settle().await?;
        self.busy_rebalance().await?;
        self.kill_phase().await
    }

    /// Waits until the runners together own every partition, so that the load meets a formed group.
    async fn settle(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let owned: std::collections::BTreeSet<i32> = self
                .members
                .iter_mut()
                .flat_map(|member| {
                    member.log.refresh();
                    member.log.owned.clone()
                })
                .collect();
            let everyone = self.members.iter().all(|member| !member.log.owned.is_empty());
            if everyone && owned.len() == self.plan.partitions {
                eprintln!("chaos: group settled ({:.0} s)", self.clock.elapsed().as_secs_f64());
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "the runners never shared the {} partitions (own {owned:?}); see {}",
                    self.plan.partitions,
                    self.logs.display()
                );
            }
            self.pump(Duration::from_millis(200)).await;
        }
    }

    /// Fills the slots with slow scripts and, once some runner has every slot busy, starts one more runner and times
    /// the rebalance. Then stops that runner gracefully in the background (a second rebalance while busy).
    async fn busy_rebalance(&mut self) -> anyhow::Result<()> {
        let producer = kafka::producer(self.brokers)?;
        let slow = slow_scenario(self.plan.slow_sleep);
        let ids: Vec<String> = (0..self.plan.slow_scripts())
            .map(|n| format!("{}-slow-{n}", self.tag))
            .collect();
        for id in &ids {
            self.ledger.sent(id);
            kafka::send(&producer, "scripts", id, &slow.message(id).to_string()).await?;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        let (busy, busy_runners) = loop {
            let mut full = Vec::new();
            for member in &mut self.members {
                member.log.refresh();
                let slow_now: Vec<String> = member
                    .log
                    .judging
                    .iter()
                    .filter(|id| ids.contains(id) && !self.ledger.is_answered(id))
                    .cloned()
                    .collect();
                if slow_now.len() >= self.plan.parallelism {
                    full.push((member.instance.clone(), slow_now));
                }
            }
            if let Some(first) = full.first() {
                break (first.clone(), full.len());
            }
            if Instant::now() > deadline {
                anyhow::bail!("no runner ever had every slot busy; see {}", self.logs.display());
            }
            self.pump(Duration::from_millis(100)).await;
        };
        let instance = format!("{}-r{}", self.tag, self.plan.runners);
        let mut extra = Member::start(self.tools, self.brokers, self.plan.parallelism, instance, self.logs)?;
        let joined = Instant::now();
        let deadline = joined + Duration::from_secs(120);
        loop {
            extra.log.refresh();
            if !extra.log.owned.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!("the extra runner {} never got a partition", extra.instance);
            }
            self.pump(Duration::from_millis(50)).await;
        }
        let done = Instant::now();
        // The reader sees a result a moment after it is published; a result seen before the assignment was seen
        // was certainly published before the rebalance finished.
        self.pump(Duration::from_millis(500)).await;
        let freed = busy
            .1
            .iter()
            .filter_map(|id| self.ledger.first_seen(id))
            .any(|seen| seen <= done);
        let rebalance = BusyRebalance {
            busy_instance: busy.0,
            busy_runners,
            seconds: done.duration_since(joined).as_secs_f64(),
            while_busy: !freed,
        };
        eprintln!(
            "chaos: busy rebalance: {} had all {} slots busy ({} such runner(s)); the new runner owned partitions after {:.1} s{}",
            rebalance.busy_instance,
            self.plan.parallelism,
            rebalance.busy_runners,
            rebalance.seconds,
            if rebalance.while_busy {
                ""
            } else {
                ", after a slot had freed"
            }
        );
        self.rebalance = Some(rebalance);
        if let Some(process) = extra.process.take() {
            self.extra = Some((extra.instance, tokio::spawn(process.stop())));
        }
        Ok(())
    }

    /// Sends the submissions at once and kills a runner at each seeded point of the drain, restarting it once the
    /// group has noticed. Returns when every id sent has come back, or at the timeout.
    async fn kill_phase(&mut self) -> anyhow::Result<()> {
        let library = crate::library()?;
        let weights: Vec<f64> = library
            .iter()
            .map(|s| Profile::Baseline.weight(&s.language, &s.outcome))
            .collect();
        let submissions: Vec<(String, &Scenario)> = (0..self.plan.submissions)
            .map(|n| {
                let scenario = &library[self.draw.weighted(&weights)];
                (
                    format!("{}-{n}-{}-{}", self.tag, scenario.language, scenario.outcome),
                    scenario,
                )
            })
            .collect();
        let mut points: Vec<usize> = (0..self.plan.kills)
            .map(|_| ((0.05 + 0.8 * self.draw.next_f64()) * self.plan.submissions as f64) as usize)
            .collect();
        points.sort_unstable();

        let producer = kafka::producer(self.brokers)?;
        for (id, scenario) in &submissions {
            self.ledger.sent(id);
            self.expected.insert(id.clone(), scenario.expected.clone());
        }
        let sends = submissions.iter().map(|(id, scenario)| {
            let producer = producer.clone();
            async move { kafka::send(&producer, "scripts", id, &scenario.message(id).to_string()).await }
        });
        let sent = Instant::now();
        for outcome in futures::future::join_all(sends).await {
            outcome?;
        }
        eprintln!(
            "chaos: {} submissions sent ({:.0} s); kills after {points:?} results",
            submissions.len(),
            self.clock.elapsed().as_secs_f64()
        );

        let deadline = sent + self.plan.timeout;
        let mut points = points.into_iter().peekable();
        while !self.ledger.complete() && Instant::now() < deadline {
            self.pump(Duration::from_millis(200)).await;
            self.restart_due(Instant::now())?;
            let answered = self.answered_in_kill_phase();
            if points.peek().is_some_and(|point| *point <= answered)
                && let Some(victim) = self.victim()
            {
                points.next();
                self.kill(victim, sent, answered).await;
            }
        }
        if let Some(last) = self.members.iter().filter_map(|member| member.restart_at).max() {
            tokio::time::sleep_until(last.into()).await;
            self.restart_due(last)?;
        }
        // A runner restarted a moment ago may not handle SIGTERM yet, nor have swept its killed run's sandboxes:
        // let the group form again before the graceful stop. A group that does not form is left to the report
        // (lost ids, unclean exits, leftovers), which says more than this error would.
        if let Err(error) = self.settle().await {
            eprintln!("chaos: {error:#}");
        }
        let last = self
            .expected
            .keys()
            .filter_map(|id| self.ledger.first_seen(id))
            .max()
            .unwrap_or(sent);
        self.drain_seconds = last.duration_since(sent).as_secs_f64();
        eprintln!(
            "chaos: {} of {} back after {:.0} s",
            self.ledger.answered(),
            self.ledger.lost().len() + self.ledger.answered(),
            self.drain_seconds
        );
        Ok(())
    }

    /// Restarts every killed runner whose restart is due at `now`.
    fn restart_due(&mut self, now: Instant) -> anyhow::Result<()> {
        for member in &mut self.members {
            if member.restart_at.is_some_and(|at| at <= now) {
                member.restart(self.tools, self.brokers, self.plan.parallelism)?;
            }
        }
        Ok(())
    }

    /// A seeded choice among the runners that are up and own partitions, or `None` while there is none (every
    /// runner is down or still joining).
    fn victim(&mut self) -> Option<usize> {
        let candidates: Vec<usize> = self
            .members
            .iter_mut()
            .enumerate()
            .filter_map(|(index, member)| {
                member.log.refresh();
                (member.process.is_some() && !member.log.owned.is_empty()).then_some(index)
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let pick = (self.draw.next_f64() * candidates.len() as f64) as usize % candidates.len();
        Some(candidates[pick])
    }

    fn answered_in_kill_phase(&self) -> usize {
        self.expected.keys().filter(|id| self.ledger.is_answered(id)).count()
    }

    async fn kill(&mut self, victim: usize, sent: Instant, answered: usize) {
        let member = &mut self.members[victim];
        member.log.refresh();
        let in_flight = member.log.judging.len();
        if let Some(process) = member.process.as_mut() {
            process.kill().await;
        }
        member.process = None;
        member.restart_at = Some(Instant::now() + SESSION_TIMEOUT + Duration::from_secs(3));
        let kill = Kill {
            at_seconds: sent.elapsed().as_secs_f64(),
            instance: member.instance.clone(),
            in_flight,
            answered,
        };
        eprintln!(
            "chaos: SIGKILL {} at {:.1} s with {} script(s) in flight ({} results back)",
            kill.instance, kill.at_seconds, kill.in_flight, kill.answered
        );
        self.kills.push(kill);
    }

    /// Moves the results that arrived into the ledger, waiting up to `wait` for the first.
    async fn pump(&mut self, wait: Duration) {
        let first = tokio::time::timeout(wait, self.results.recv()).await;
        if let Ok(Some(received)) = first {
            self.ledger.record(&received.id, &received.status, received.at);
        }
        while let Ok(received) = self.results.try_recv() {
            self.ledger.record(&received.id, &received.status, received.at);
        }
    }

    /// Stops every runner gracefully, reads the last records, counts what is left and writes the report. A failed
    /// `outcome` is returned as the error once everything is stopped.
    async fn finish(mut self, outcome: anyhow::Result<()>) -> anyhow::Result<ChaosReport> {
        let mut unclean_exits = Vec::new();
        let stops = self
            .members
            .iter_mut()
            .filter_map(|member| Some((member.instance.clone(), member.process.take()?)))
            .map(|(instance, process)| async move { (instance, process.stop().await) });
        let mut stopped = futures::future::join_all(stops).await;
        if let Some((instance, stopping)) = self.extra.take() {
            stopped.push((instance, stopping.await.ok().flatten()));
        }
        for (instance, status) in stopped {
            match status {
                Some(status) if status.success() => {}
                Some(status) => unclean_exits.push((instance, status.to_string())),
                None => unclean_exits.push((instance, "killed after the 40 s grace".into())),
            }
        }
        // Records published in the last moments (a drain at shutdown) still count.
        let settle = Instant::now() + Duration::from_secs(3);
        while Instant::now() < settle {
            self.pump(Duration::from_millis(200)).await;
        }
        self.stop_reading.cancel();
        outcome?;

        let mut instances: Vec<String> = self.members.iter().map(|m| m.instance.clone()).collect();
        instances.push(format!("{}-r{}", self.tag, self.plan.runners));
        let mut leftovers = Vec::new();
        for instance in instances {
            let (containers, volumes) = processes::leftovers(&instance).await?;
            leftovers.push((instance, containers, volumes));
        }
        let unexpected = self
            .expected
            .iter()
            .filter_map(|(id, expected)| {
                let got = self.ledger.verdict(id)?;
                (got != expected).then(|| (id.clone(), expected.clone(), got.to_owned()))
            })
            .collect();
        let conflicts = self.ledger.conflicts();
        Ok(ChaosReport {
            plan: self.plan.clone(),
            sent: self.expected.len() + self.plan.slow_scripts(),
            records: self.ledger.records(),
            duplicates: self.ledger.duplicates(),
            conflicts,
            lost: self.ledger.lost(),
            unexpected,
            kills: self.kills,
            rebalance: self.rebalance,
            drain_seconds: self.drain_seconds,
            leftovers,
            unclean_exits,
            duration_seconds: self.clock.elapsed().as_secs_f64(),
        })
    }
}

/// A Python program that sleeps `sleep` and then answers right: a slow script whose verdict (OK) is certain, since
/// its time limit (20 s, the runner's default maximum) leaves a wide margin.
fn slow_scenario(sleep: Duration) -> Scenario {
    Scenario {
        language: "python".into(),
        outcome: "ok".into(),
        expected: "OK".into(),
        source: format!(
            "import time\ntime.sleep({})\na, b = map(int, input().split())\nprint(a + b)\n",
            sleep.as_secs_f64()
        ),
        limits: Limits {
            time_limit_ms: 20_000,
            memory_limit_bytes: 64 * 1024 * 1024,
        },
        tests: vec![TestSpec {
            input: "2 3\n".into(),
            expected_output: "5\n".into(),
            points: None,
        }],
        extra: serde_json::Map::new(),
        score: None,
    }
}

/// Writes `chaos_summary.json` and `chaos_summary.csv` (one `metric,value` row per figure) under `out`.
///
/// # Errors
/// When a file cannot be written.
pub fn write_summary(report: &ChaosReport, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut summary = report.summary();
    summary["machine"] = super::output::machine();
    std::fs::write(out.join("chaos_summary.json"), serde_json::to_vec_pretty(&summary)?)?;
    let mut csv = String::from("metric,value\n");
    if let Value::Object(fields) = &summary {
        for (name, value) in fields {
            if !value.is_array() && !value.is_object() {
                csv.push_str(&format!("{name},{}\n", value.to_string().trim_matches('"')));
            }
        }
    }
    std::fs::write(out.join("chaos_summary.csv"), csv)?;
    Ok(())
}
