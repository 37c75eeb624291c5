//! Times each phase of the sandbox lifecycle for each language on this machine, on both sandbox paths side by side
//! in one run: the fresh path (container creation, start, the compiler's run, the program's run, stop, the archive
//! transfers and removal, per container) and the warm path (taking a pre-started pair from the pool, putting the
//! source in, the compiler's run and the program's run; starting and removing containers happens off the script's
//! path). Each script is a small sum program with three tests, built and judged `SCRC_BENCH_ITERATIONS` times
//! (default 5) after one warm-up, on an otherwise idle runner.
//!
//!     cargo bench --bench phases
//!     RUNNER_SANDBOX=warm cargo bench --bench phases     # one path only
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

/// Per language: the median time of each phase, and of a whole script.
type Medians = BTreeMap<Language, (BTreeMap<Phase, Duration>, Duration)>;

const PHASES: [Phase; 7] = [
    Phase::Create,
    Phase::Start,
    Phase::Compile,
    Phase::Run,
    Phase::Stop,
    Phase::Transfer,
    Phase::Remove,
];

async fn measure(mode: &str, iterations: usize) -> Option<Medians> {
    // Local images first, the environment on top: `PYTHON_IMAGE=python:3.12-alpine cargo bench` still works.
    let mut vars = scrc::config::local_images();
    vars.push((
        "RUNNER_INSTANCE_ID".into(),
        format!("bench-{mode}-{}", std::process::id()),
    ));
    vars.extend(std::env::vars());
    vars.push(("RUNNER_SANDBOX".into(), mode.into()));
    let config = match Config::from_vars(vars) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("bench: {error}");
            return None;
        }
    };
    let recorder = Arc::new(Recorder::default());
    let observer: Arc<dyn PhaseObserver> = recorder.clone();
    let docker = match DockerRuntime::start_observed(config.docker.clone(), Some(observer)).await {
        Ok(docker) => docker,
        Err(error) => {
            eprintln!("bench: skipped, no Docker engine: {error}");
            return None;
        }
    };
    docker.prime();
    let breaker = Arc::new(CircuitBreaker::new(config.breaker_threshold, config.breaker_cool_down));
    let judge = Judge::new(docker, config.policy, breaker, config.retry);
    let mut medians = Medians::new();
    for language in Language::ALL {
        let warm_up = judge.judge(&script(language, 0), &CancellationToken::new()).await;
        if !matches!(&warm_up, Ok(report) if report.status == Status::Ok) {
            eprintln!("bench: {language} did not judge OK: {warm_up:?}");
            continue;
        }
        let mut totals = Vec::new();
        let mut samples = BTreeMap::new();
        for n in 1..=iterations {
            // An idle runner: the pool has refilled and removals have finished before the next script arrives.
            tokio::time::sleep(Duration::from_millis(500)).await;
            recorder.take();
            let started = Instant::now();
            let report = judge.judge(&script(language, n), &CancellationToken::new()).await;
            totals.push(started.elapsed());
            assert!(
                matches!(report, Ok(ref r) if r.status == Status::Ok),
                "{mode} {language}: {report:?}"
            );
            for (phase, durations) in recorder.take() {
                samples.entry(phase).or_insert_with(Vec::new).extend(durations);
            }
        }
        let phases = PHASES
            .iter()
            .map(|phase| (*phase, median(samples.entry(*phase).or_default())))
            .collect();
        medians.insert(language, (phases, median(&mut totals)));
    }
    judge.runtime().cleanup().run().await;
    Some(medians)
}

fn print_table(mode: &str, medians: &Medians) {
    println!("\n{mode} path: median milliseconds per phase and per script (3 tests).");
    print!("| language |");
    for phase in PHASES {
        print!(" {} |", phase.name());
    }
    println!(" script total |");
    println!("|---|{}---|", "---|".repeat(PHASES.len()));
    for (language, (phases, total)) in medians {
        print!("| {language} |");
        for phase in PHASES {
            print!(" {:.1} |", phases[&phase].as_secs_f64() * 1000.0);
        }
        println!(" {:.0} |", total.as_secs_f64() * 1000.0);
    }
}

fn main() {
    let iterations: usize = std::env::var("SCRC_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let modes: Vec<String> = match std::env::var("RUNNER_SANDBOX") {
        Ok(mode) if !mode.is_empty() => vec![mode],
        _ => vec!["fresh".into(), "warm".into()],
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        println!("{iterations} scripts of 3 tests per language and path, one at a time, after one warm-up.");
        println!("Fresh: create/start/stop/remove are per container (1 build + 3 runs). Warm: create is taking a");
        println!(
            "started pair from the pool, transfer is putting the source in. Compile and run are the supervisor's."
        );
        let mut results = Vec::new();
        for mode in &modes {
            if let Some(medians) = measure(mode, iterations).await {
                print_table(mode, &medians);
                results.push((mode.clone(), medians));
            }
        }
        if let [(_, fresh), (_, warm)] = results.as_slice() {
            println!("\nPer script, warm against fresh, in one run:");
            println!("| language | fresh ms | warm ms | warm / fresh |");
            println!("|---|---|---|---|");
            for (language, (_, fresh_total)) in fresh {
                if let Some((_, warm_total)) = warm.get(language) {
                    println!(
                        "| {language} | {:.0} | {:.0} | {:.2} |",
                        fresh_total.as_secs_f64() * 1000.0,
                        warm_total.as_secs_f64() * 1000.0,
                        warm_total.as_secs_f64() / fresh_total.as_secs_f64()
                    );
                }
            }
        }
    });
}
