//! Benchmark plans: which cases to run, how long, and how often.
//!
//! The method is SCRC's: each case runs `runs` times; each run has a warm-up (sent, not counted), a measurement
//! window (only submissions *sent* in it count) and a cool-down (no new sends; completions of window submissions
//! still count). Cases are identified by (replicas, parallelism, profile) and measured once per plan even when
//! several matrices use them.

use std::time::Duration;

/// A load mix: how often each language and each outcome is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// SCRC's heavy-load language weights (Python 1.2, Java 1.1, Go 1.0, C and C++ 0.9), outcomes uniform.
    Baseline,
    /// Baseline with time-limit programs weighted 2.5 times, as SCRC's timeout-impact benchmark.
    TimeoutHeavy,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Baseline => "baseline",
            Profile::TimeoutHeavy => "timeout-heavy",
        }
    }

    pub fn weight(self, language: &str, outcome: &str) -> f64 {
        let language_weight = match language {
            "python" => 1.2,
            "java" => 1.1,
            "go" => 1.0,
            _ => 0.9,
        };
        let outcome_weight = match (self, outcome) {
            (Profile::TimeoutHeavy, "tl") => 2.5,
            _ => 1.0,
        };
        language_weight * outcome_weight
    }
}

/// How hard a case pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Load {
    /// Twice as many submissions outstanding as there are slots: the runners never wait for work. For throughput.
    Saturating,
    /// As many outstanding as slots: no queue, so latency is the runner's own. For latency per language.
    Paced,
}

/// One configuration to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Case {
    pub replicas: usize,
    pub parallelism: usize,
    pub profile: Profile,
    pub load: Load,
}

impl Case {
    pub fn name(&self) -> String {
        let load = match self.load {
            Load::Saturating => "",
            Load::Paced => "-paced",
        };
        format!("r{}-p{}-{}{load}", self.replicas, self.parallelism, self.profile.name())
    }

    /// Submissions kept outstanding.
    pub fn outstanding(&self) -> usize {
        let slots = self.replicas * self.parallelism;
        match self.load {
            Load::Saturating => 2 * slots,
            Load::Paced => slots,
        }
        .max(1)
    }

    fn saturating(replicas: usize, parallelism: usize, profile: Profile) -> Self {
        Self {
            replicas,
            parallelism,
            profile,
            load: Load::Saturating,
        }
    }
}

/// The school burst: every student submits twice (a first attempt and a fix), all at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    pub students: usize,
    pub replicas: usize,
    pub parallelism: usize,
    /// Give up waiting for results after this long.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub runs: usize,
    pub warmup: Duration,
    pub window: Duration,
    pub cooldown: Duration,
    /// The measurement window of the paced latency case: long enough to go round the whole library.
    pub latency_window: Duration,
    /// Single runner throughput against `RUNNER_MAX_PARALLEL`.
    pub throughput_parallelism: Vec<usize>,
    /// Runner replicas by parallelism.
    pub scaling_replicas: Vec<usize>,
    pub scaling_parallelism: Vec<usize>,
    /// The configuration of the latency, language-share and timeout-impact cases.
    pub reference: (usize, usize),
    pub burst: Burst,
}

impl Plan {
    /// Finishes in under five minutes on a 2-core machine.
    pub fn quick() -> Self {
        Self {
            name: "quick".into(),
            runs: 1,
            warmup: Duration::from_secs(5),
            window: Duration::from_secs(20),
            cooldown: Duration::from_secs(10),
            latency_window: Duration::from_secs(40),
            throughput_parallelism: vec![1, 2, 4],
            scaling_replicas: vec![1, 2],
            scaling_parallelism: vec![2],
            reference: (1, 2),
            burst: Burst {
                students: 30,
                replicas: 1,
                parallelism: 4,
                timeout: Duration::from_secs(300),
            },
        }
    }

    /// SCRC's full method: three runs per case, a minute of warm-up and cool-down, four-minute windows, and the
    /// whole school (250 students submitting twice: 500 submissions at once). Hours on a small machine.
    pub fn full() -> Self {
        Self {
            name: "full".into(),
            runs: 3,
            warmup: Duration::from_secs(60),
            window: Duration::from_secs(240),
            cooldown: Duration::from_secs(60),
            latency_window: Duration::from_secs(300),
            throughput_parallelism: vec![1, 2, 4, 6, 8, 12, 16],
            scaling_replicas: vec![1, 2, 3],
            scaling_parallelism: vec![4, 6, 8, 12],
            reference: (1, 4),
            burst: Burst {
                students: 250,
                replicas: 1,
                parallelism: 4,
                timeout: Duration::from_secs(1800),
            },
        }
    }

    /// Looks a plan up by name.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "quick" => Some(Self::quick()),
            "full" => Some(Self::full()),
            _ => None,
        }
    }

    /// The same plan with its warm-up, windows and burst scaled by `factor` (CI runs the quick plan at 0.3). The
    /// cool-down keeps at least 10 s: it is there for the window's last submissions to finish, and they take as
    /// long as they take.
    pub fn scaled(mut self, factor: f64) -> Self {
        let scale = |d: Duration| Duration::from_secs_f64((d.as_secs_f64() * factor).max(1.0));
        self.warmup = scale(self.warmup);
        self.window = scale(self.window);
        self.cooldown = scale(self.cooldown).max(Duration::from_secs(10).min(self.cooldown));
        self.latency_window = scale(self.latency_window);
        self.burst.students = ((self.burst.students as f64 * factor).ceil() as usize).max(2);
        self.name = format!("{}-x{factor}", self.name);
        self
    }

    /// Every distinct case the plan measures, in the order they run.
    pub fn cases(&self) -> Vec<Case> {
        let mut cases = Vec::new();
        let mut add = |case: Case| {
            if !cases.contains(&case) {
                cases.push(case);
            }
        };
        for &parallelism in &self.throughput_parallelism {
            add(Case::saturating(1, parallelism, Profile::Baseline));
        }
        for &replicas in &self.scaling_replicas {
            for &parallelism in &self.scaling_parallelism {
                add(Case::saturating(replicas, parallelism, Profile::Baseline));
            }
        }
        let (replicas, parallelism) = self.reference;
        for profile in [Profile::Baseline, Profile::TimeoutHeavy] {
            add(Case::saturating(replicas, parallelism, profile));
        }
        add(self.latency_case());
        cases
    }

    /// The measurement window of `case`.
    pub fn window_of(&self, case: &Case) -> Duration {
        match case.load {
            Load::Saturating => self.window,
            Load::Paced => self.latency_window,
        }
    }

    /// The case latency per language and outcome is measured on: the reference configuration, paced.
    pub fn latency_case(&self) -> Case {
        let (replicas, parallelism) = self.reference;
        Case {
            replicas,
            parallelism,
            profile: Profile::Baseline,
            load: Load::Paced,
        }
    }

    /// The saturating baseline case at the reference configuration.
    pub fn reference_case(&self) -> Case {
        let (replicas, parallelism) = self.reference;
        Case::saturating(replicas, parallelism, Profile::Baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_cases_are_measured_once() {
        let cases = Plan::quick().cases();
        let names: Vec<String> = cases.iter().map(Case::name).collect();
        assert_eq!(
            names,
            [
                "r1-p1-baseline",
                "r1-p2-baseline",
                "r1-p4-baseline",
                "r2-p2-baseline",
                "r1-p2-timeout-heavy",
                "r1-p2-baseline-paced"
            ]
        );
    }

    #[test]
    fn the_quick_plan_fits_in_five_minutes_of_measuring() {
        let plan = Plan::quick();
        let measuring: Duration = plan
            .cases()
            .iter()
            .map(|case| (plan.warmup + plan.window_of(case) + plan.cooldown) * plan.runs as u32)
            .sum();
        assert!(
            measuring <= Duration::from_secs(240),
            "{measuring:?} leaves too little for the burst"
        );
    }

    #[test]
    fn scaling_shrinks_windows_and_the_burst() {
        let plan = Plan::quick().scaled(0.3);
        assert_eq!(plan.window, Duration::from_secs(6));
        assert_eq!(plan.burst.students, 9);
        assert_eq!(plan.cooldown, Duration::from_secs(10), "the cool-down keeps its floor");
    }
}
