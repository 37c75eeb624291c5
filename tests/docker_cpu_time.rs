//! The CPU-time limit (issue 23), on real Docker: a test over its CPU time is TL however many threads it spreads
//! over, and a CPU limit alone still ends a program that sleeps. A binary of its own, so that no other suite's
//! sandboxes share the machine's cores while it measures (cargo runs test binaries one after another).

mod support;

use scrc::domain::{Language, Script, Status};
use support::*;

const SUM: [(&str, &str); 2] = [("2 3\n", "5\n"), ("10 -4\n", "6\n")];

fn with_cpu(mut script: Script, wall_ms: Option<u64>, cpu_ms: u64) -> Script {
    script.limits.time = wall_ms.map(std::time::Duration::from_millis);
    script.limits.cpu_time = Some(std::time::Duration::from_millis(cpu_ms));
    script
}

/// Four threads busy at once use CPU time faster than the wall clock passes (up to twice as fast in a sandbox of
/// two CPUs): under a CPU-time limit of half its wall limit the program is TL for its CPU time, before the wall
/// limit, and the result says which limit stopped it. A program that sleeps uses no CPU: a CPU limit alone still
/// ends it, by the wall limit that follows the CPU limit (twice it and a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_time_limit_counts_every_thread_and_a_sleeper_still_ends() {
    let Some((judge, config)) = judge(&[("RUNNER_CPUS", "2")]).await else {
        return;
    };
    let threads = "#include <pthread.h>\nstatic void *spin(void *x){volatile unsigned long i=0;for(;;)i++;return x;}\n\
                   int main(void){pthread_t t[4];for(int i=0;i<4;i++)pthread_create(&t[i],0,spin,0);pthread_join(t[0],0);}\n";
    let report = judged(
        &judge,
        &with_cpu(script(Language::C, threads, &[("", "")]), Some(8000), 4000),
    )
    .await;
    assert_eq!(report.status, Status::TimeLimit, "{report:#?}");
    let test = &report.tests[0];
    assert!(test.error.contains("CPU time limit of 4000 ms"), "{report:#?}");
    let wall = test.duration().expect("it ran");
    let cpu = test.cpu_time().expect("measured");
    assert!(
        wall < std::time::Duration::from_millis(8000),
        "stopped by CPU, not wall: {wall:?}"
    );
    assert!(cpu >= std::time::Duration::from_millis(4000), "{cpu:?}");

    let sleeper = "#include <unistd.h>\nint main(void){sleep(30);return 0;}\n";
    let report = judged(&judge, &with_cpu(script(Language::C, sleeper, &[("", "")]), None, 500)).await;
    assert_eq!(report.status, Status::TimeLimit, "{report:#?}");
    let test = &report.tests[0];
    assert!(
        test.error.contains("time limit of 2000 ms"),
        "the wall limit that follows: {}",
        test.error
    );

    // Workers the kernel reaps (SIGCHLD ignored) are reported by no wait, and each lives too short a time for a
    // look at the live processes to add them up: the sandbox's cgroup counts them all the same.
    let reaped_unseen = "#include <signal.h>\n#include <sys/wait.h>\n#include <unistd.h>\n\
                         int main(void){signal(SIGCHLD,SIG_IGN);for(;;){if(fork()==0){volatile unsigned long i=0;\
                         for(;i<20000000UL;i++);_exit(0);}wait(0);}}\n";
    let report = judged(
        &judge,
        &with_cpu(script(Language::C, reaped_unseen, &[("", "")]), Some(8000), 1000),
    )
    .await;
    assert_eq!(report.status, Status::TimeLimit, "{report:#?}");
    let test = &report.tests[0];
    if under_gvisor(&config) {
        // gVisor's kernel offers its sandbox no cgroup (and a /proc/stat of zeros): what no wait reports escapes
        // the count there, and the wall limit ends the test (see the README's CPU time).
        assert!(test.error.contains("time limit of 8000 ms"), "{report:#?}");
    } else {
        assert!(test.error.contains("CPU time limit of 1000 ms"), "{report:#?}");
        assert!(
            test.duration().expect("it ran") < std::time::Duration::from_millis(8000),
            "{report:#?}"
        );
    }

    // Within both limits: OK, whatever the CPU limit.
    let quick = "#include <stdio.h>\nint main(void){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a+b);}\n";
    let report = judged(&judge, &with_cpu(script(Language::C, quick, &SUM), Some(2000), 1000)).await;
    assert_eq!(report.status, Status::Ok, "{report:#?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}
