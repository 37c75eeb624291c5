//! The Compose smoke test: the broker and two runners from `docker-compose.yml` with the local override, the
//! simulator for one iteration against them (it exits non-zero on any wrong, missing or conflicting verdict), then
//! everything torn down, leaving no container, network or volume of the project and no sandbox.
//!
//! Needs Docker, Compose (`docker compose` or `docker-compose`) and the images of `scripts/build-deploy-images.sh`;
//! skips without them, except under `CI=true`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Output};

fn compose_tool() -> Option<Vec<&'static str>> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if works("docker", &["compose", "version"]) {
        Some(vec!["docker", "compose"])
    } else if works("docker-compose", &["version"]) {
        Some(vec!["docker-compose"])
    } else {
        None
    }
}

fn docker_lines(args: &[&str]) -> Vec<String> {
    let output = Command::new("docker").args(args).output().expect("docker runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

struct Project {
    tool: Vec<&'static str>,
    name: String,
    docker_gid: String,
}

impl Project {
    fn run(&self, args: &[&str]) -> Output {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut command = Command::new(self.tool[0]);
        command
            .args(&self.tool[1..])
            .args([
                "-p",
                &self.name,
                "-f",
                "docker-compose.yml",
                "-f",
                "docker-compose.local.yml",
            ])
            .args(["--profile", "multi-runner", "--profile", "load-generator"])
            .args(args)
            .current_dir(root)
            .env("DOCKER_GID", &self.docker_gid)
            .env("SIMULATOR_GROUP", format!("smoke-{}", self.name));
        command.output().expect("compose runs")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v", "--remove-orphans", "--timeout", "60"]);
    }
}

/// The `monitoring` profile is valid Compose on top of both files, and its Prometheus scrapes the runners where
/// they listen. (Its images come from a registry, so on a machine without one only the scrc side can run.)
#[test]
fn the_monitoring_profile_is_valid_and_scrapes_the_runners() {
    let Some(tool) = compose_tool() else {
        assert!(!support::in_ci(), "CI=true and no Compose tool");
        eprintln!("skipping: no docker compose");
        return;
    };
    let root = env!("CARGO_MANIFEST_DIR");
    for files in [
        &["docker-compose.yml"][..],
        &["docker-compose.yml", "docker-compose.local.yml"],
    ] {
        let mut command = Command::new(tool[0]);
        command.args(&tool[1..]).current_dir(root);
        for file in files {
            command.args(["-f", file]);
        }
        let output = command
            .args(["--profile", "multi-runner", "--profile", "monitoring", "config"])
            .output()
            .expect("compose runs");
        let config = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "compose config {files:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for expected in ["prometheus:", "grafana:", "RUNNER_HTTP_ADDR: 0.0.0.0:9464"] {
            assert!(
                config.contains(expected),
                "{expected} missing from {files:?}:\n{config}"
            );
        }
    }
    let prometheus = std::fs::read_to_string(format!("{root}/monitoring/prometheus.yml")).expect("prometheus.yml");
    assert!(
        prometheus.contains("names: [scrc]") && prometheus.contains("port: 9464"),
        "Prometheus finds every replica of the scrc service on the metrics port:\n{prometheus}"
    );
}

#[test]
fn compose_brings_up_a_broker_and_two_runners_that_judge_the_library() {
    let Some(tool) = compose_tool() else {
        assert!(!support::in_ci(), "CI=true and no Compose tool");
        eprintln!("skipping: no docker compose");
        return;
    };
    let images_present = Command::new("docker")
        .args(["image", "inspect", "scrc:local", "scrc-local/tansu:0.6.0"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !images_present {
        assert!(
            !support::in_ci(),
            "CI=true but the deployment images are missing: run scripts/build-deploy-images.sh"
        );
        eprintln!("skipping: deployment images missing (scripts/build-deploy-images.sh builds them)");
        return;
    }
    let docker_gid = docker_lines(&[
        "run",
        "--rm",
        "-v",
        "/var/run/docker.sock:/s",
        "scrc-local/runtime:trixie",
        "stat",
        "-c",
        "%g",
        "/s",
    ])
    .pop()
    .expect("the socket's group id");
    let project = Project {
        tool,
        name: format!("scrcsmoke{}", support::unique()),
        docker_gid,
    };

    let up = project.run(&["up", "-d", "--no-build", "--scale", "scrc=2", "kafka", "topics", "scrc"]);
    assert!(
        up.status.success(),
        "compose up failed:\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let simulated = project.run(&["run", "--rm", "--no-deps", "simulator"]);
    let stdout = String::from_utf8_lossy(&simulated.stdout);
    let logs = project.run(&["logs", "--no-color", "scrc"]);
    assert!(
        simulated.status.success(),
        "the simulator found wrong verdicts:\n{stdout}\n{}\nrunner logs:\n{}",
        String::from_utf8_lossy(&simulated.stderr),
        String::from_utf8_lossy(&logs.stdout)
    );
    assert!(
        stdout.contains("sent 30, mismatched 0, missing 0, conflicting 0: PASSED"),
        "{stdout}"
    );
    // The engine runs a container's first health check an interval after its start, and the library can be judged
    // before that (both runners still "health: starting" at 14 s): wait up to a minute for their checks to report.
    let list_runners = || {
        docker_lines(&[
            "ps",
            "--filter",
            &format!("label=com.docker.compose.project={}", project.name),
            "--filter",
            "label=com.docker.compose.service=scrc",
            "--format",
            "{{.Names}} {{.Status}}",
        ])
    };
    let checking = std::time::Instant::now();
    let mut runners = list_runners();
    while runners.iter().any(|r| r.contains("health: starting")) && checking.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_secs(1));
        runners = list_runners();
    }
    assert_eq!(runners.len(), 2, "two runners: {runners:?}");
    assert!(
        runners.iter().all(|r| r.contains("(healthy)")),
        "the runners report healthy: {runners:?}"
    );

    // Stopped first and on their own, so that their logs can say why if they leave a sandbox behind.
    let stopping = std::time::Instant::now();
    let stop = project.run(&["stop", "--timeout", "60", "scrc"]);
    let stop_seconds = stopping.elapsed().as_secs_f64();
    let stop_logs = project.run(&["logs", "--no-color", "--tail", "40", "scrc"]);
    assert!(stop.status.success(), "compose stop failed");
    let down = project.run(&["down", "-v", "--remove-orphans", "--timeout", "60"]);
    assert!(
        down.status.success(),
        "compose down failed:\n{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let label = format!("label=com.docker.compose.project={}", project.name);
    assert!(
        docker_lines(&["ps", "-a", "--filter", &label, "-q"]).is_empty(),
        "containers left"
    );
    assert!(
        docker_lines(&["network", "ls", "--filter", &label, "-q"]).is_empty(),
        "networks left"
    );
    assert!(
        docker_lines(&["volume", "ls", "--filter", &label, "-q"]).is_empty(),
        "volumes left"
    );
    let left = docker_lines(&[
        "ps",
        "-a",
        "--filter",
        "label=scrc.managed",
        "--format",
        "{{.Names}} {{.Status}} {{.Label \"scrc.instance\"}}",
    ]);
    assert!(
        left.is_empty(),
        "sandbox containers left: {left:?}\nthe runners stopped in {stop_seconds:.1} s; their last words:\n{}",
        String::from_utf8_lossy(&stop_logs.stdout)
    );
}
