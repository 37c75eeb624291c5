//! Times each phase of the sandbox lifecycle for each language on this machine: container creation, start, the
//! compiler's run, the program's run, stop, the archive transfers, and removal. Each script is a small sum
//! program with three tests, built and judged `SCRC_BENCH_ITERATIONS` times (default 5) after one warm-up.
//!
//!     cargo bench --bench phases
//!
//! Needs Docker and the images of `scripts/build-images.sh` (or whatever `*_IMAGE` variables point at).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scrc::adapters::docker::DockerRuntime;
use scrc::adapters::docker::sandbox::{Phase, PhaseObserver};
use scrc::app::{CircuitBreaker, Judge};
use scrc::config::Config;
use scrc::domain::{Checker, Language, RequestedLimits, Script, ScriptId, Source, Status, TestCase};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Recorder {
    samples: Mutex<BTreeMap<Phase, Vec<Duration>>>,
}

impl PhaseObserver for Recorder {
    fn observe(&self, phase: Phase, duration: Duration) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.entry(phase).or_default().push(duration);
    }
}

impl Recorder {
    fn take(&self) -> BTreeMap<Phase, Vec<Duration>> {
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn program(language: Language) -> &'static str {
    match language {
        Language::Python => "a, b = map(int, input().split())\nprint(a + b)\n",
        Language::C => {
            "#include <stdio.h>\nint main(void){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a+b);return 0;}\n"
        }
        Language::Cpp => "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<\"\\n\";}\n",
        Language::Go => "package main\nimport \"fmt\"\nfunc main(){var a,b int64;fmt.Scan(&a,&b);fmt.Println(a+b)}\n",
        Language::Java => {
            "import java.util.*;\npublic class Main{public static void main(String[] a){Scanner s=new Scanner(System.in);long x=s.nextLong(),y=s.nextLong();System.out.println(x+y);}}\n"
        }
    }
}

fn script(language: Language, n: usize) -> Script {
    Script {
        id: ScriptId::new(format!("bench-{language}-{n}")).expect("non-empty"),
        language,
        source: Source::new(program(language)).expect("non-empty"),
        limits: RequestedLimits::default(),
        tests: [("2 3\n", "5\n"), ("10 20\n", "30\n"), ("-1 1\n", "0\n")]
            .iter()
            .enumerate()
            .map(|(i, (input, expected))| TestCase {
                number: i as u32 + 1,
                input: (*input).into(),
                expected_output: (*expected).into(),
            })
            .collect(),
        checker: Checker::Exact,
        run_all_tests: false,
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn main() {
    let iterations: usize = std::env::var("SCRC_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        // Local images first, the environment on top: `PYTHON_IMAGE=python:3.12-alpine cargo bench` still works.
        let mut vars = scrc::config::local_images();
        vars.push(("RUNNER_INSTANCE_ID".into(), format!("bench-{}", std::process::id())));
        vars.extend(std::env::vars());
        let config = match Config::from_vars(vars) {
            Ok(config) => config,
            Err(error) => return eprintln!("bench: {error}"),
        };
        let recorder = Arc::new(Recorder::default());
        let observer: Arc<dyn PhaseObserver> = recorder.clone();
        let docker = match DockerRuntime::start_observed(config.docker.clone(), Some(observer)).await {
            Ok(docker) => docker,
            Err(error) => return eprintln!("bench: skipped, no Docker engine: {error}"),
        };
        let breaker = Arc::new(CircuitBreaker::new(config.breaker_threshold, config.breaker_cool_down));
        let judge = Judge::new(docker, config.policy, breaker, config.retry);
        let phases = [
            Phase::Create,
            Phase::Start,
            Phase::Compile,
            Phase::Run,
            Phase::Stop,
            Phase::Transfer,
            Phase::Remove,
        ];

        println!(
            "Median milliseconds per phase, {iterations} scripts of 3 tests per language (1 build + 3 runs each)."
        );
        println!("create/start/stop/remove are per container; compile and run are the supervisor's own measure.\n");
        print!("| language |");
        for phase in phases {
            print!(" {} |", phase.name());
        }
        println!(" script total |");
        println!("|---|{}---|", "---|".repeat(phases.len()));
        for language in Language::ALL {
            let warm_up = judge.judge(&script(language, 0), &CancellationToken::new()).await;
            if !matches!(&warm_up, Ok(report) if report.status == Status::Ok) {
                eprintln!("bench: {language} did not judge OK: {warm_up:?}");
                continue;
            }
            recorder.take();
            let mut totals = Vec::new();
            for n in 1..=iterations {
                let started = Instant::now();
                let report = judge.judge(&script(language, n), &CancellationToken::new()).await;
                totals.push(started.elapsed());
                assert!(
                    matches!(report, Ok(ref r) if r.status == Status::Ok),
                    "{language}: {report:?}"
                );
            }
            let mut samples = recorder.take();
            print!("| {language} |");
            for phase in phases {
                let ms = median(samples.entry(phase).or_default()).as_secs_f64() * 1000.0;
                print!(" {ms:.1} |");
            }
            println!(" {:.0} |", median(&mut totals).as_secs_f64() * 1000.0);
        }
    });
}
