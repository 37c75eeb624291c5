//! Hostile and broken programs from `ADVERSARIAL.md`, on real Docker. Each test asserts the verdict and the host
//! afterwards: nothing labelled with the runner's instance is left, and the runner still judges a normal script.
//! Cases that could disturb neighbours also run a benign script at the same time and check it.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime};

use scrc::adapters::kafka::wire::{ResultMessage, encode_report};
use scrc::domain::{Language, Status};
use support::*;

async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

/// What a program that forks until the PID limit may get. TL or RE, as ADVERSARIAL.md says, and ML too: under
/// cgroup v1 the kernel memory of every fork that fails at the PID limit (task structures, kernel stacks) is
/// charged to the container, churning through tens of MiB while user memory stays at a few KiB, and at a 64 MiB
/// limit the kernel OOM-kills the container. That is a real OOM kill, and an OOM kill is ML.
fn contained_fork_storm(status: Status) -> bool {
    matches!(status, Status::TimeLimit | Status::RuntimeError | Status::MemoryLimit)
}

fn benign() -> scrc::domain::Script {
    script(
        Language::C,
        "#include <stdio.h>\nint main(void){puts(\"calm\");return 0;}\n",
        &[("", "calm\n")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_01_fork_bomb_is_contained_and_the_host_can_still_fork() {
    let Some((judge, config)) = judge(&[("RUNNER_MAX_PARALLEL", "2")]).await else {
        return;
    };
    let bomb = with_limits(
        script(
            Language::C,
            "#include <unistd.h>\nint main(void){for(;;)fork();}\n",
            &[("", "")],
        ),
        1000,
        64,
    );
    let (bombed, neighbour) = both(judged(&judge, &bomb), judged(&judge, &benign())).await;
    assert!(contained_fork_storm(bombed.status), "{bombed:#?}");
    assert_eq!(
        neighbour.status,
        Status::Ok,
        "a script running beside the bomb is unaffected"
    );
    let forked = std::process::Command::new("true")
        .status()
        .expect("the host can still fork");
    assert!(forked.success());
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_03_busy_loop_is_tl() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let busy = with_limits(
        script(Language::Python, "while True:\n    pass\n", &[("", "")]),
        1000,
        64,
    );
    let report = judged(&judge, &busy).await;
    assert_eq!(report.status, Status::TimeLimit);
    let cpu = report.tests[0].cpu_time().unwrap();
    assert!(cpu > Duration::from_millis(50), "a busy loop burns its CPU: {cpu:?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_04_sleeping_forever_is_tl_by_wall_clock() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let sleeper = with_limits(
        script(Language::Python, "import time\ntime.sleep(10**6)\n", &[("", "")]),
        1000,
        64,
    );
    let started = Instant::now();
    let report = judged(&judge, &sleeper).await;
    assert_eq!(report.status, Status::TimeLimit);
    let test = &report.tests[0];
    assert!(
        test.duration().unwrap() >= Duration::from_millis(1000)
            && test.duration().unwrap() < Duration::from_millis(1500)
    );
    assert!(
        test.cpu_time().unwrap() < Duration::from_millis(300),
        "it slept: {:?}",
        test.cpu_time()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the runner did not wait on it"
    );
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_06_infinite_stdout_is_ol_with_bounded_memory() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let flood = script(Language::Python, "while True:\n    print('x' * 1000)\n", &[("", "")]);
    let (flooded, neighbour) = both(judged(&judge, &flood), judged(&judge, &benign())).await;
    assert_eq!(flooded.status, Status::OutputLimit, "{:?}", flooded.error);
    assert_eq!(
        flooded.tests[0].stdout().len(),
        config.docker.sandbox.output_limit,
        "the runner kept exactly the cap"
    );
    assert_eq!(neighbour.status, Status::Ok);
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_07_infinite_stderr_is_ol() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let flood = script(
        Language::Python,
        "import sys\nwhile True:\n    sys.stderr.write('e' * 1000)\n",
        &[("", "")],
    );
    let report = judged(&judge, &flood).await;
    assert_eq!(report.status, Status::OutputLimit);
    assert!(report.tests[0].stderr().len() <= config.docker.sandbox.output_limit);
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_08_right_answer_then_flood_is_ol_not_ok() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let cheat = script(
        Language::C,
        "#include <stdio.h>\nint main(void){puts(\"5\");fflush(stdout);for(;;)puts(\"flood\");}\n",
        &[("", "5\n")],
    );
    let report = judged(&judge, &cheat).await;
    assert_eq!(report.status, Status::OutputLimit);
    assert!(report.tests[0].stdout().starts_with(b"5\n"));
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_10_allocating_past_the_limit_is_ml_in_every_language() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    // Each keeps what it allocates and touches it, so that it really holds its memory: the kernel's OOM kill, or a
    // runtime's own heap reached with the memory to show (case 25 says why the words alone do not count).
    let hogs = [
        (
            Language::C,
            "#include <stdlib.h>\nint main(void){volatile char*p=malloc(256L<<20);for(long i=0;i<(256L<<20);i+=4096)p[i]=1;return 0;}\n",
        ),
        (
            Language::Cpp,
            "#include <vector>\n#include <cstdio>\nint main(){std::vector<char> v(256<<20,'x');std::printf(\"%d\\n\",v[v.size()/2]);}\n",
        ),
        (
            Language::Go,
            "package main\nfunc main(){b:=make([]byte,256<<20);for i:=range b{b[i]=1};println(b[7])}\n",
        ),
        (
            Language::Java,
            "import java.util.*;\npublic class Main{public static void main(String[] a){List<long[]> l=new ArrayList<>();\n\
             while(true){long[] x=new long[1<<17];java.util.Arrays.fill(x,1);l.add(x);}}}\n",
        ),
        (
            Language::Python,
            "chunks = []\nwhile True:\n    chunks.append(bytearray(b'x' * (8 << 20)))\n",
        ),
        (
            Language::JavaScript,
            "const keep = [];\nwhile (true) keep.push(new Array(1 << 16).fill(keep.length));\n",
        ),
        (Language::Ruby, "keep = []\nloop { keep << 'a' * (8 << 20) }\n"),
        (
            Language::Php,
            "<?php\n$keep = [];\nwhile (true) { $keep[] = str_repeat('x', 1 << 20); }\n",
        ),
        (
            Language::Rust,
            "fn main(){let v=vec![1u8;256<<20];println!(\"{}\",v[v.len()/2]);}\n",
        ),
        (
            Language::TypeScript,
            "const keep: number[][] = [];\nwhile (true) keep.push(new Array(1 << 16).fill(keep.length));\n",
        ),
        (
            Language::Kotlin,
            "fun main() {\n    val keep = ArrayList<LongArray>()\n    while (true) keep.add(LongArray(1 shl 17) { 1L })\n}\n",
        ),
        (
            Language::CSharp,
            "class P{static void Main(){var keep=new System.Collections.Generic.List<long[]>();\n\
             while(true){var x=new long[1<<17];for(int i=0;i<x.Length;i+=512)x[i]=1;keep.Add(x);}}}\n",
        ),
    ];
    for (language, source) in hogs {
        let report = judged(&judge, &with_limits(script(language, source, &[("", "")]), 5000, 64)).await;
        assert_eq!(report.status, Status::MemoryLimit, "{language}: {report:#?}");
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_13_network_connections_fail_and_no_packet_leaves() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let listener = TcpListener::bind("0.0.0.0:0").expect("bind a host port");
    listener.set_nonblocking(true).expect("non-blocking listener");
    let port = listener.local_addr().unwrap().port();
    let source = format!(
        "import socket\nfor host in ['172.17.0.1', '10.0.2.2', '1.1.1.1']:\n    try:\n        \
         socket.create_connection((host, {port}), timeout=1)\n        print('connected', host)\n    \
         except OSError as e:\n        print('blocked', host, e.errno)\nsocket.getaddrinfo('example.com', 80)\n"
    );
    let report = judged(&judge, &script(Language::Python, &source, &[("", "")])).await;
    assert_eq!(
        report.status,
        Status::RuntimeError,
        "name resolution fails too: {report:#?}"
    );
    let stdout = String::from_utf8_lossy(report.tests[0].stdout());
    assert!(!stdout.contains("connected"), "{stdout}");
    assert_eq!(stdout.matches("blocked").count(), 3, "{stdout}");
    assert!(listener.accept().is_err(), "a connection reached the host");
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_14_host_files_are_not_visible() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let source = "import os\n\
        for path in ['/etc/shadow', '/var/run/docker.sock', '/run/docker.sock', '/proc/1/root/etc/hostname',\n\
                     '/proc/1/environ', '/proc/1/mem', '/root/.bashrc', '/var/lib/docker']:\n\
        \x20   try:\n\
        \x20       with open(path, 'rb') as f:\n\
        \x20           data = f.read(64)\n\
        \x20       print('READ' if data.strip(b'\\0') else 'denied', path, len(data))\n\
        \x20   except OSError as e:\n\
        \x20       print('denied', path, e.errno)\n\
        print(open('/etc/shadow').read())\n";
    let report = judged(&judge, &script(Language::Python, source, &[("", "")])).await;
    assert_eq!(report.status, Status::RuntimeError, "{report:#?}");
    let stdout = String::from_utf8_lossy(report.tests[0].stdout());
    assert!(
        !stdout.contains("READ"),
        "something of the host was readable:\n{stdout}"
    );
    assert_eq!(stdout.matches("denied").count(), 8, "{stdout}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_15_files_left_in_tmp_are_gone_for_the_next_test_and_script() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let source = "import os\n\
        marker = '/tmp/marker'\n\
        print('found' if os.path.exists(marker) else 'clean')\n\
        open(marker, 'w').write('left behind')\n\
        for target in ['/box/planted', '/planted']:\n\
        \x20   try:\n\
        \x20       open(target, 'w').write('x')\n\
        \x20       print('wrote', target)\n\
        \x20   except OSError:\n\
        \x20       pass\n";
    let suite = [("", "clean\n"), ("", "clean\n"), ("", "clean\n")];
    for _ in 0..2 {
        let report = judged(&judge, &script(Language::Python, source, &suite)).await;
        assert_eq!(report.status, Status::Ok, "{report:#?}");
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_17_compile_bombs_are_bf_within_the_compile_limits() {
    let Some((judge, config)) = judge(&[
        ("RUNNER_COMPILE_TIME_LIMIT", "8s"),
        ("RUNNER_COMPILE_MEMORY_LIMIT", "536870912"),
    ])
    .await
    else {
        return;
    };
    let bombs = [
        (
            Language::C,
            "#include \"/dev/zero\"\nint main(void){return 0;}\n",
            "memory",
        ),
        (
            Language::C,
            "#include __FILE__\nint main(void){return 0;}\n",
            "exit code",
        ),
        (
            Language::Cpp,
            "constexpr long spin(){long x=0;for(long i=0;i<200000;++i)for(long j=0;j<200000;++j)x+=i^j;return x;}\n\
             static_assert(spin()!=1,\"\");\nint main(){}\n",
            "",
        ),
    ];
    for (language, source, reason) in bombs {
        let started = Instant::now();
        let report = judged(&judge, &script(language, source, &[("", "")])).await;
        assert_eq!(report.status, Status::BuildFailure, "{language}: {report:#?}");
        assert!(report.error.contains(reason), "{language}: {}", report.error);
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "bounded by the compile limits: {:?}",
            started.elapsed()
        );
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_19_nul_invalid_utf8_and_megabyte_lines_give_valid_json() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let source = "#include <stdio.h>\nint main(void){fwrite(\"a\\0b\\xff\\xfe\\n\",1,6,stdout);\
                  for(int i=0;i<900000;i++)putchar('x');putchar('\\n');return 0;}\n";
    let report = judged(&judge, &script(Language::C, source, &[("", "a\n")])).await;
    assert_eq!(report.status, Status::WrongAnswer);
    let stdout = report.tests[0].stdout();
    assert_eq!(&stdout[..6], b"a\0b\xff\xfe\n");
    assert_eq!(stdout.len(), 6 + 900_001);
    let encoded = encode_report(&report, "test", SystemTime::now(), 950_000).expect("fits");
    assert!(encoded.len() <= 950_000);
    let message: ResultMessage = serde_json::from_slice(&encoded).expect("valid JSON");
    assert!(message.tests[0].output.stdout.starts_with("a\u{0}b\u{fffd}\u{fffd}\n"));
    assert!(
        message.truncated,
        "the megabyte line was shortened to fit the broker's message size"
    );

    let binary = "#include <stdio.h>\nint main(void){fwrite(\"a\\0b\\xff\\xfe\\n\",1,6,stdout);return 0;}\n";
    let report = judged(&judge, &script(Language::C, binary, &[("", "a\n")])).await;
    assert_eq!(report.status, Status::WrongAnswer);
    let encoded = encode_report(&report, "test", SystemTime::now(), 950_000).expect("fits");
    let message: ResultMessage = serde_json::from_slice(&encoded).expect("valid JSON");
    assert_eq!(message.tests[0].output.stdout, "a\u{0}b\u{fffd}\u{fffd}\n");
    assert_eq!(
        message.tests[0].output.stdout_base64.as_deref(),
        Some("YQBi//4K"),
        "the exact bytes travel too"
    );
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_20_megabytes_of_unread_stdin_do_not_block_the_runner() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let input = "x".repeat(8 << 20);
    let started = Instant::now();
    let report = judged(
        &judge,
        &script(
            Language::Python,
            "print('ignored my input')\n",
            &[(&input, "ignored my input\n")],
        ),
    )
    .await;
    assert_eq!(report.status, Status::Ok, "{:?}", report.error);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_02_setsid_daemons_do_not_survive_their_test() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let source = "import subprocess\nsubprocess.Popen(['sleep', '1000'], start_new_session=True)\nprint('done')\n";
    let started = Instant::now();
    let report = judged(&judge, &script(Language::Python, source, &[("", "done\n")])).await;
    assert_eq!(report.status, Status::Ok, "{report:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the runner did not wait for the daemon"
    );
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_05_ignoring_sigterm_and_stopping_the_parent_is_still_tl() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    // The parent is the supervisor, whose uid the test does not share: the kills are refused (see case_28), and
    // the program carries on.
    let source = "import os, signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
                  for sig in (signal.SIGSTOP, signal.SIGKILL):\n    try:\n        os.kill(os.getppid(), sig)\n\
                  \x20   except PermissionError:\n        pass\nwhile True:\n    pass\n";
    let report = judged(
        &judge,
        &with_limits(script(Language::Python, source, &[("", "")]), 1000, 64),
    )
    .await;
    assert_eq!(report.status, Status::TimeLimit, "{report:#?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_09_a_huge_file_is_re_or_ml_and_host_disk_is_unchanged() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let free_before = free_disk_bytes();
    let source = "#include <stdio.h>\nint main(void){FILE*f=fopen(\"/tmp/big\",\"w\");static char b[65536];\
                  for(;;){if(fwrite(b,1,sizeof b,f)!=sizeof b||fflush(f))return 1;}}\n";
    let report = judged(&judge, &with_limits(script(Language::C, source, &[("", "")]), 5000, 64)).await;
    assert!(
        matches!(report.status, Status::RuntimeError | Status::MemoryLimit),
        "{report:#?}"
    );
    let lost = free_before.saturating_sub(free_disk_bytes());
    assert!(lost < 32 << 20, "host disk shrank by {lost} bytes");
    assert_clean_and_serving(&judge, &config.instance).await;
}

fn free_disk_bytes() -> u64 {
    let output = std::process::Command::new("df")
        .args(["--output=avail", "-B1", "/var/lib/docker"])
        .output()
        .expect("df runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_11_and_12_stack_overflow_and_non_zero_exit_are_re() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let overflow = "int f(int n){volatile int pad[64];pad[0]=n;return f(n+1)+pad[0];}\nint main(void){return f(0);}\n";
    let report = judged(&judge, &script(Language::C, overflow, &[("", "")])).await;
    assert_eq!(report.status, Status::RuntimeError, "{report:#?}");
    assert_eq!(report.tests[0].signal(), Some(11), "SIGSEGV");
    let right_but_failing = "#include <stdio.h>\nint main(void){puts(\"5\");return 3;}\n";
    let report = judged(&judge, &script(Language::C, right_but_failing, &[("", "5\n")])).await;
    assert_eq!(
        report.status,
        Status::RuntimeError,
        "right output, non-zero exit: {report:#?}"
    );
    assert_eq!(report.tests[0].exit_code(), Some(3));
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_16_privileged_operations_are_blocked() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let source = "#include <stdio.h>\n#include <unistd.h>\n#include <sys/mount.h>\n\
                  int main(void){\
                  puts(setuid(0)==0?\"setuid allowed\":\"setuid blocked\");\
                  puts(sethostname(\"x\",1)==0?\"sethostname allowed\":\"sethostname blocked\");\
                  puts(mount(\"none\",\"/tmp\",\"tmpfs\",0,0)==0?\"mount allowed\":\"mount blocked\");\
                  puts(chroot(\"/tmp\")==0?\"chroot allowed\":\"chroot blocked\");return 0;}\n";
    let expected = "setuid blocked\nsethostname blocked\nmount blocked\nchroot blocked\n";
    let report = judged(&judge, &script(Language::C, source, &[("", expected)])).await;
    assert_eq!(
        report.status,
        Status::Ok,
        "{}",
        String::from_utf8_lossy(report.tests[0].stdout())
    );
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_21_zombies_up_to_the_pid_limit_do_not_affect_the_next_script() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let source = "#include <unistd.h>\nint main(void){for(;;){if(fork()==0)_exit(0);}}\n";
    let report = judged(&judge, &with_limits(script(Language::C, source, &[("", "")]), 1000, 64)).await;
    assert!(contained_fork_storm(report.status), "{report:#?}");
    let next = judged(&judge, &benign()).await;
    assert_eq!(next.status, Status::Ok);
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// Case 1 in each language scrc added to SCRC's: a program that starts copies of itself until the PID limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_01_fork_storms_are_contained_in_every_added_language() {
    let Some((judge, config)) = judge(&[("RUNNER_MAX_PARALLEL", "2")]).await else {
        return;
    };
    let storms = [
        (
            Language::JavaScript,
            "const { spawn } = require('child_process');\nfor (;;) { try { spawn(process.execPath, [__filename]); } catch (e) {} }\n",
        ),
        (Language::Ruby, "loop { fork rescue nil }\n"),
        // Silenced: each failed fork is a warning on stderr, and a flood of them would end it as OL first.
        (Language::Php, "<?php\nwhile (true) { @pcntl_fork(); }\n"),
        (
            Language::Rust,
            "use std::process::Command;\nfn main(){loop{let _=Command::new(\"/proc/self/exe\").spawn();}}\n",
        ),
        (
            Language::TypeScript,
            "const { spawn } = require('child_process');\nfor (;;) { try { spawn(process.execPath, [__filename]); } catch (e) {} }\n",
        ),
        (
            Language::Kotlin,
            "fun main() {\n    while (true) {\n        try { ProcessBuilder(\"/proc/self/exe\", \"-Xmx16m\", \"-jar\", \"/box/prog.jar\").start() } catch (e: Exception) {}\n    }\n}\n",
        ),
        (
            Language::CSharp,
            "class P{static void Main(){while(true){try{System.Diagnostics.Process.Start(\"/proc/self/exe\",\"/box/prog.exe\");}catch(System.Exception){}}}}\n",
        ),
    ];
    for (language, source) in storms {
        let storm = with_limits(script(language, source, &[("", "")]), 1000, 64);
        let (stormed, neighbour) = both(judged(&judge, &storm), judged(&judge, &benign())).await;
        assert!(contained_fork_storm(stormed.status), "{language}: {stormed:#?}");
        // An RE must be the storm meeting the PID limit, not a storm that never began (no pcntl in PHP, no fork in
        // Ruby, no such executable).
        let said = String::from_utf8_lossy(&stormed.stderr);
        for never_began in ["undefined function", "NotImplementedError", "No such file"] {
            assert!(!said.contains(never_began), "{language}: the storm never began: {said}");
        }
        assert_eq!(
            neighbour.status,
            Status::Ok,
            "{language}: the script beside it is unaffected"
        );
    }
    let forked = std::process::Command::new("true")
        .status()
        .expect("the host can still fork");
    assert!(forked.success());
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// Case 6 in each added language: printing without end is OL, and the runner keeps exactly its cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_06_floods_are_ol_in_every_added_language() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let floods = [
        (
            Language::JavaScript,
            "const line = 'x'.repeat(1000);\nfor (;;) console.log(line);\n",
        ),
        (Language::Ruby, "line = 'x' * 1000\nloop { puts line }\n"),
        (
            Language::Php,
            "<?php\n$line = str_repeat('x', 1000);\nwhile (true) echo $line, \"\\n\";\n",
        ),
        (
            Language::Rust,
            "fn main(){let line=\"x\".repeat(1000);loop{println!(\"{}\",line);}}\n",
        ),
        (
            Language::TypeScript,
            "const line: string = 'x'.repeat(1000);\nfor (;;) console.log(line);\n",
        ),
        (
            Language::Kotlin,
            "fun main() {\n    val line = \"x\".repeat(1000)\n    while (true) println(line)\n}\n",
        ),
        (
            Language::CSharp,
            "class P{static void Main(){var line=new string('x',1000);while(true){System.Console.WriteLine(line);}}}\n",
        ),
    ];
    for (language, source) in floods {
        let report = judged(&judge, &script(language, source, &[("", "")])).await;
        assert_eq!(report.status, Status::OutputLimit, "{language}: {report:#?}");
        assert_eq!(
            report.tests[0].stdout().len(),
            config.docker.sandbox.output_limit,
            "{language}: the runner kept exactly the cap"
        );
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// Case 11 in each added language: unbounded recursion is RE, from the language's own stack check (RangeError,
/// SystemStackError, Rust's guard page, StackOverflowError, StackOverflowException) or a SIGSEGV. PHP 8.2 has no
/// stack check, and its own calls keep their frames on the heap: plain recursion ends at `memory_limit`, which
/// is PHP's out-of-memory failure and so ML; recursion through a built-in (`array_map`) grows the C stack and is
/// a SIGSEGV, RE. The limit is the default 256 MiB: at 64 MiB the JVM's thread stack (a quarter of the limit, see
/// java.rs) on top of the JVM itself does not fit, and a JVM overflowing it is OOM-killed first, ML.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_11_stack_overflow_in_every_added_language() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let recursions = [
        (
            Language::JavaScript,
            "function f(n) { return f(n + 1) + 1; }\nconsole.log(f(0));\n",
            Status::RuntimeError,
        ),
        (
            Language::Ruby,
            "def f(n)\n  f(n + 1) + 1\nend\nputs f(0)\n",
            Status::RuntimeError,
        ),
        (
            Language::Php,
            "<?php\nfunction f($n) { return array_map('f', [$n + 1]); }\nf(0);\n",
            Status::RuntimeError,
        ),
        (
            Language::Php,
            "<?php\nfunction f($n) { return f($n + 1) + 1; }\necho f(0);\n",
            Status::MemoryLimit,
        ),
        (
            Language::Rust,
            "fn f(n:u64,pad:&mut [u8;512])->u64{pad[(n%512) as usize]=n as u8;let mut next=[0u8;512];\
             f(n+1,&mut next)+next[7] as u64+pad[3] as u64}\nfn main(){let mut pad=[0u8;512];println!(\"{}\",f(0,&mut pad));}\n",
            Status::RuntimeError,
        ),
        (
            Language::TypeScript,
            "function f(n: number): number { return f(n + 1) + 1; }\nconsole.log(f(0));\n",
            Status::RuntimeError,
        ),
        (
            Language::Kotlin,
            "fun f(n: Int): Int = f(n + 1) + 1\n\nfun main() {\n    println(f(0))\n}\n",
            Status::RuntimeError,
        ),
        (
            Language::CSharp,
            "class P{static int F(int n){return F(n+1)+1;}static void Main(){System.Console.WriteLine(F(0));}}\n",
            Status::RuntimeError,
        ),
    ];
    // Under gVisor a JVM fills its stack in about 3 s of CPU (2.82 s for Kotlin on CI's machine, TL at 3 s): it gets
    // 10 s there, which a recursion that never overflowed would still exceed.
    let limit = if under_gvisor(&config) { 10_000 } else { 3000 };
    for (language, source, expected) in recursions {
        let report = judged(&judge, &with_limits(script(language, source, &[("", "")]), limit, 256)).await;
        assert_eq!(report.status, expected, "{language} {source:?}: {report:#?}");
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// A C source of exactly 4,096 bytes whose binary carries `pad` bytes of `.data`, and which prints its binary's
/// size and how many entries its program directory holds.
fn padded_c(pad: u64) -> String {
    let body = format!(
        "#include <dirent.h>\n#include <stdio.h>\n#include <string.h>\n#include <sys/stat.h>\n\
         __asm__(\".pushsection .data\\n.space {pad}\\n.popsection\\n\");\n\
         int main(void){{struct stat s;if(stat(\"/box/prog\",&s)!=0)return 1;int n=0;DIR*d=opendir(\"/box\");\
         struct dirent*e;while(d&&(e=readdir(d)))if(strcmp(e->d_name,\".\")&&strcmp(e->d_name,\"..\"))n++;\
         printf(\"%lld %d\\n\",(long long)s.st_size,n);return 0;}}\n"
    );
    let filler = 4096 - body.len() - "/**/\n".len();
    format!("{body}/*{}*/\n", "x".repeat(filler))
}

/// The bytes a gathered program tree of `main.c` (4,096 bytes) and `prog` (`binary` bytes) takes in the
/// supervisor's reply after its errno: per file a kind byte, mode, mtime, the path's length and the path, the
/// contents' length and the contents.
fn tree_bytes(binary: u64) -> u64 {
    let entry = |path: &str, contents: u64| 1 + 4 + 8 + 4 + path.len() as u64 + 4 + contents;
    entry("main.c", 4096) + entry("prog", binary)
}

/// Case 26 (issue 26, finding 1): a program tree just at and just over the artifact limit once its names and
/// metadata count. Just over is BF "program too large" at once: no retry, no circuit breaker, and the runner
/// keeps judging. Just at fits and runs. Before the fix, the supervisor counted only the contents, and the reply
/// of either overran the runner's frame limit (both the default 64 MiB): the build was retried as a transient
/// sandbox failure, IE, and two such scripts opened the breaker for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_26_a_program_tree_over_the_artifact_limit_is_bf_too_large_and_never_a_retry() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let limit = config.docker.sandbox.artifact_limit as u64;
    assert_eq!(limit, 64 * 1024 * 1024, "the default, as in the report");
    assert_eq!(padded_c(0).len(), 4096);
    let measure = async |pad: u64| {
        let report = judged(&judge, &script(Language::C, &padded_c(pad), &[])).await;
        assert_eq!(
            report.status,
            Status::Ok,
            "a tree within the limit runs (pad {pad}): {report:#?}"
        );
        let said = String::from_utf8_lossy(&report.stdout).into_owned();
        let mut words = said.split_whitespace().map(|w| w.parse::<u64>().expect("a number"));
        let (binary, entries) = (words.next().expect("a size"), words.next().expect("a count"));
        assert_eq!(entries, 2, "the build leaves main.c and prog alone: {said}");
        binary
    };
    // The binary grows with the padding, up to the alignment of what the linker puts after it.
    let base = measure(limit / 2).await - limit / 2;
    let mut pad = limit - tree_bytes(0) - base - 256;
    let mut binary = measure(pad).await;
    for _ in 0..4 {
        let room = limit - tree_bytes(binary);
        if room < 64 {
            break;
        }
        pad += room - 32;
        binary = measure(pad).await;
    }
    let under = tree_bytes(binary);
    eprintln!(
        "a tree of {under} bytes against the limit of {limit}; the next is {} bytes over",
        under + (limit - under) + 1 - limit
    );
    assert!(
        under <= limit && under > limit - 64,
        "a tree just within the limit: {under} of {limit}"
    );

    let over = judged(
        &judge,
        &script(Language::C, &padded_c(pad + (limit - under) + 1), &[("", "")]),
    )
    .await;
    assert_eq!(over.status, Status::BuildFailure, "{over:#?}");
    assert!(over.error.contains("too large"), "{}", over.error);
    assert!(
        judge.breaker().is_closed(),
        "a program's own size is never an engine failure"
    );
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// ADVERSARIAL.md 23 (issue 26, finding 3): per-user kernel counters are per sandbox. One script holds every
/// inotify instance its user may have and over a thousand pipes (past `fs.pipe-user-pages-soft`, where the kernel
/// gives that user's new pipes one page instead of sixteen); a script judged beside it still gets an inotify
/// instance and a full-size pipe. Before each sandbox had a uid of its own, both ran as 65534 and the second got
/// neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_23_a_sandbox_exhausting_its_users_counters_leaves_other_sandboxes_theirs() {
    let Some((judge, config)) = judge(&[("RUNNER_MAX_PARALLEL", "2")]).await else {
        return;
    };
    let hog = with_limits(
        script(
            Language::C,
            "#include <stdio.h>\n#include <sys/inotify.h>\n#include <unistd.h>\n\
             int main(void){int n=0;while(inotify_init1(0)>=0)n++;int p=0;\n\
             for(int child=0;child<10;child++){if(fork()==0){int fds[2];for(int i=0;i<110&&pipe(fds)==0;i++);\n\
             sleep(6);return 0;}}int fds[2];while(pipe(fds)==0)p++;\n\
             printf(\"held %d\\n\",n>=100);fflush(stdout);sleep(6);return 0;}\n",
            &[("", "held 1\n")],
        ),
        10_000,
        64,
    );
    let neighbour = with_limits(
        script(
            Language::C,
            "#define _GNU_SOURCE\n#include <fcntl.h>\n#include <stdio.h>\n#include <sys/inotify.h>\n#include <unistd.h>\n\
             int main(void){sleep(3);int fd=inotify_init1(0);int fds[2];int size=-1;\n\
             if(pipe(fds)==0)size=fcntl(fds[0],F_GETPIPE_SZ);printf(\"inotify %d pipe %d\\n\",fd>=0,size);return 0;}\n",
            &[("", "inotify 1 pipe 65536\n")],
        ),
        10_000,
        64,
    );
    let (hogged, beside) = both(judged(&judge, &hog), judged(&judge, &neighbour)).await;
    assert_eq!(hogged.status, Status::Ok, "{hogged:#?}");
    assert_eq!(beside.status, Status::Ok, "{beside:#?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// ADVERSARIAL.md 25 (issue 26, finding 4): a program that prints a runtime's out-of-memory words and exits 1
/// without running out of memory is RE, not ML. Verdicts come from facts the program cannot forge: the kernel's OOM
/// kill, or, for a runtime that enforces a heap of its own (the JVM, V8, PHP, Mono), its report with the memory peak
/// to show for it. Before, the words alone made ML.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_25_out_of_memory_words_without_the_memory_are_re() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let forgeries = [
        (
            Language::Python,
            "import sys\nsys.stderr.write('Traceback (most recent call last):\\nMemoryError\\nKilled\\n')\nsys.exit(1)\n",
        ),
        (
            Language::Java,
            "public class Main { public static void main(String[] a) {\n\
             System.err.println(\"Exception in thread \\\"main\\\" java.lang.OutOfMemoryError: Java heap space\");\n\
             System.exit(1); } }\n",
        ),
        (
            Language::JavaScript,
            "process.stderr.write('FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\\n');\n\
             process.exit(1);\n",
        ),
        (
            Language::Php,
            "<?php\nfwrite(STDERR, \"PHP Fatal error:  Allowed memory size of 1024 bytes exhausted\\n\");\nexit(1);\n",
        ),
        (
            Language::Cpp,
            "#include <cstdio>\nint main(){std::fputs(\"terminate called after throwing an instance of 'std::bad_alloc'\\n\",stderr);return 1;}\n",
        ),
    ];
    for (language, source) in forgeries {
        let report = judged(&judge, &with_limits(script(language, source, &[("", "")]), 5000, 256)).await;
        assert_eq!(report.status, Status::RuntimeError, "{language}: {report:#?}");
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// Issue 26, finding 4: a program's read-only data counts against its memory. A C program whose binary carries 60 MiB
/// of initialised data and reads all of it: under a 64 MiB limit its files alone leave no room, ML; under 128 MiB it
/// runs, and its memory peak counts the files. Before, a separate run container only mapped the program volume's
/// pages, charged to the build container that was gone, and the 60 MiB cost the test nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_programs_own_data_counts_against_its_memory_limit() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let table = "#include <stdio.h>\n#define N (60<<20)\nstatic const unsigned char table[N]={1,[N-1]=2};\n\
                 int main(void){unsigned long sum=0;for(long i=0;i<N;i+=4096)sum+=table[i];\
                 printf(\"%lu\\n\",sum+table[N-1]);return 0;}\n";
    let tight = judged(
        &judge,
        &with_limits(script(Language::C, table, &[("", "3\n")]), 5000, 64),
    )
    .await;
    assert_eq!(tight.status, Status::MemoryLimit, "{tight:#?}");
    let roomy = judged(
        &judge,
        &with_limits(script(Language::C, table, &[("", "3\n")]), 5000, 128),
    )
    .await;
    assert_eq!(roomy.status, Status::Ok, "{roomy:#?}");
    let peak = roomy.tests[0].memory_peak().expect("measured");
    assert!(peak >= 60 << 20, "the peak counts the program's files: {peak}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// A C program that tries each call the strict filter refuses and prints how each went: its errno's name, or
/// "allowed".
const SYSCALL_PROBE: &str = r#"#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>
static void report(const char *call, long result) {
    printf("%s %s\n", call, result >= 0 ? "allowed" : errno == EPERM ? "EPERM" : errno == ENOSYS ? "ENOSYS" : "other");
}
int main(void) {
    report("ptrace", syscall(SYS_ptrace, 0, 0, 0, 0));
    report("process_vm_readv", syscall(SYS_process_vm_readv, getpid(), NULL, 0, NULL, 0, 0));
    report("keyctl", syscall(SYS_keyctl, 0, -1, 0));
    report("bpf", syscall(SYS_bpf, 0, NULL, 0));
    report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, 0));
    report("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL));
    report("unshare", syscall(SYS_unshare, CLONE_NEWUSER));
    report("clone_newuser", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL));
    report("mount", syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, NULL));
    report("clone3", syscall(SYS_clone3, NULL, 0));
    report("personality", syscall(SYS_personality, READ_IMPLIES_EXEC));
    return 0;
}
"#;

/// Issue 26, item 6: builds and tests run under the supervisor's own syscall filter on top of the engine's profile
/// (`RUNNER_SECCOMP=strict`, the default). Every call on its list is refused, whatever the engine's profile says:
/// with the engine's default profile alone (`RUNNER_SECCOMP=default`), Docker 20.10's profile lets a program ptrace
/// itself and set up io_uring (whose kernel side has been a steady source of privilege escalations), which the
/// strict filter refuses. The rest of the list the engine's default profile refuses itself, and this checks it too. The verdict suites run
/// under the default, so every language still builds and runs under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_27_the_strict_syscall_filter_refuses_what_no_judged_program_needs() {
    let refused = "ptrace EPERM\nprocess_vm_readv EPERM\nkeyctl EPERM\nbpf EPERM\nperf_event_open EPERM\n\
                   userfaultfd EPERM\nio_uring_setup EPERM\nunshare EPERM\nclone_newuser EPERM\nmount EPERM\n\
                   clone3 ENOSYS\npersonality EPERM\n";
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let strict = judged(&judge, &script(Language::C, SYSCALL_PROBE, &[("", refused)])).await;
    assert_eq!(
        strict.status,
        Status::Ok,
        "{}",
        String::from_utf8_lossy(strict.tests[0].stdout())
    );
    assert_clean_and_serving(&judge, &config.instance).await;

    let Some((engine_judge, config)) = support::judge(&[("RUNNER_SECCOMP", "default")]).await else {
        return;
    };
    let engine = judged(&engine_judge, &script(Language::C, SYSCALL_PROBE, &[("", refused)])).await;
    let printed = String::from_utf8_lossy(engine.tests[0].stdout()).into_owned();
    assert_eq!(engine.status, Status::WrongAnswer, "{printed}");
    if under_gvisor(&config) {
        // gVisor applies no engine profile (its own kernel is the boundary), and lets unshare through.
        assert!(
            printed.contains("unshare allowed"),
            "gVisor without the filter: {printed}"
        );
    } else {
        // io_uring_setup gets as far as reading its (missing) parameters: the call itself is let through.
        for allowed in ["ptrace allowed", "io_uring_setup other"] {
            assert!(printed.contains(allowed), "the engine's profile alone: {printed}");
        }
        for line in refused
            .lines()
            .filter(|line| !line.starts_with("ptrace") && !line.starts_with("io_uring"))
        {
            assert!(
                printed.contains(line),
                "Docker's default profile refuses {line:?}: {printed}"
            );
        }
    }
    assert_clean_and_serving(&engine_judge, &config.instance).await;
}

/// A C program that tries to reach its supervisor, PID 1: signal it, and open what `/proc/1` holds (its streams to
/// the runner, its environment, its memory map). It prints how each went.
const SUPERVISOR_PROBE: &str = r#"#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static void report(const char *what, int result) {
    printf("%s %s\n", what, result >= 0 ? "allowed" : errno == EPERM || errno == EACCES ? "denied" : "other");
}
int main(void) {
    report("kill-STOP", kill(1, SIGSTOP));
    report("kill-TERM", kill(1, SIGTERM));
    report("kill-KILL", kill(1, SIGKILL));
    report("write-fd-1", open("/proc/1/fd/1", O_WRONLY));
    report("read-fd-0", open("/proc/1/fd/0", O_RDONLY));
    /* Blank is as good as denied: the guard blanks its own environment, which gVisor lets any uid read. */
    int environ = open("/proc/1/environ", O_RDONLY);
    char data[64] = {0};
    ssize_t got = environ >= 0 ? read(environ, data, sizeof data) : -1;
    int blank = 1;
    for (ssize_t i = 0; i < got; i++) blank = blank && data[i] == 0;
    printf("environ %s\n", environ < 0 || blank ? "denied" : "allowed");
    report("maps", open("/proc/1/maps", O_RDONLY));
    return 0;
}
"#;

/// The supervisor is out of a test's reach by plain permissions: it runs as root with a few capabilities and the
/// test as the sandbox's own uid with none (`guard/user.h`), so a test can neither signal it nor open anything
/// under `/proc/1`. Before, both ran as the sandbox's uid: under runc the kernel's protection of PID 1 and of a
/// non-dumpable process was all there was (the kills "succeeded" and were ignored), and under gVisor, which has
/// neither, a test could stop the supervisor or write forged replies to `/proc/1/fd/1`. Run under both runtimes by
/// scripts/test.sh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_28_a_test_cannot_reach_its_supervisor() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    // gVisor lets any uid open /proc/1/maps (addresses only: /proc/1/mem stays closed).
    let maps = if under_gvisor(&config) { "allowed" } else { "denied" };
    let denied = format!(
        "kill-STOP denied\nkill-TERM denied\nkill-KILL denied\nwrite-fd-1 denied\nread-fd-0 denied\n\
         environ denied\nmaps {maps}\n"
    );
    let report = judged(
        &judge,
        &script(Language::C, SUPERVISOR_PROBE, &[("", &denied), ("", &denied)]),
    )
    .await;
    assert_eq!(
        report.status,
        Status::Ok,
        "{}",
        String::from_utf8_lossy(report.tests[0].stdout())
    );
    assert_clean_and_serving(&judge, &config.instance).await;
}
