//! The verdict matrix on real Docker: for every language, a program for each of OK, WA, TL, ML, BF and RE, run as
//! multi-test suites so that aggregation (`-` after the deciding test) shows too.

mod support;

use scrc::domain::{Language, Status};
use support::*;

/// A language's programs: (outcome, source). Each reads two integers and should print their sum.
struct Programs {
    language: Language,
    ok: &'static str,
    wa: &'static str,
    tl: &'static str,
    ml: &'static str,
    bf: &'static str,
    re: &'static str,
}

const TESTS: [(&str, &str); 3] = [("2 3\n", "5\n"), ("10 20\n", "30\n"), ("-1 1\n", "0\n")];

async fn matrix(programs: Programs) {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let language = programs.language;
    let cases = [
        (Status::Ok, programs.ok),
        (Status::WrongAnswer, programs.wa),
        (Status::TimeLimit, programs.tl),
        (Status::MemoryLimit, programs.ml),
        (Status::BuildFailure, programs.bf),
        (Status::RuntimeError, programs.re),
    ];
    for (expected, source) in cases {
        let script = with_limits(script(language, source, &TESTS), 1500, 64);
        let report = judged(&judge, &script).await;
        let tests: Vec<Status> = report.tests.iter().map(|t| t.status).collect();
        if under_gvisor(&config) && expected == Status::MemoryLimit && report.status == Status::RuntimeError {
            // Under gVisor the supervisor knows a test's memory only by sampling it (every 2 ms and at each wake), and
            // a JVM that fills its heap and exits at once can be gone before the next look (CI's run saw a Java peak
            // of 17 MB for a 32 MiB heap). Its words without the memory are RE, as they must be (finding 4); the
            // runtime must still have reported its heap full, and nothing else is allowed.
            let stderr = String::from_utf8_lossy(report.tests[0].stderr());
            assert!(
                ["OutOfMemory", "out of memory", "Out of memory", "memory size of"]
                    .iter()
                    .any(|words| stderr.contains(words)),
                "{language} {expected}: {report:#?}"
            );
            continue;
        }
        assert_eq!(report.status, expected, "{language} {expected}: {report:#?}");
        match expected {
            Status::Ok => assert_eq!(tests, [Status::Ok; 3]),
            Status::BuildFailure => {
                assert_eq!(tests, [Status::NotRun; 3]);
                assert!(
                    !report.stderr.is_empty(),
                    "{language}: compiler diagnostics are in the result"
                );
            }
            Status::WrongAnswer => {
                assert_eq!(
                    tests,
                    [Status::Ok, Status::WrongAnswer, Status::NotRun],
                    "{language}: {report:#?}"
                )
            }
            _ => assert_eq!(
                tests,
                [expected, Status::NotRun, Status::NotRun],
                "{language}: {report:#?}"
            ),
        }
        if expected != Status::BuildFailure {
            let first = &report.tests[0];
            // A sandbox the kernel killed whole for memory (every ML under gVisor) takes the CPU time with it.
            let cpu_known = first.cpu_time().is_some() || expected == Status::MemoryLimit;
            assert!(
                first.duration().is_some() && cpu_known && first.memory_peak().is_some(),
                "{language} {expected}: {report:#?}"
            );
        }
        if expected == Status::TimeLimit {
            let run = report.tests[0].duration().unwrap();
            assert!(
                run.as_millis() >= 1500 && run.as_millis() < 2500,
                "{language}: TL run time {run:?}"
            );
        }
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_verdicts() {
    matrix(Programs {
        language: Language::Python,
        ok: "a, b = map(int, input().split())\nprint(a + b)\n",
        wa: "a, b = map(int, input().split())\nprint(a + b if a == 2 else a - b)\n",
        tl: "while True:\n    pass\n",
        ml: "chunks = []\nwhile True:\n    chunks.append(bytearray(b'x' * (16 << 20)))\n",
        bf: "a, b = map(int, input().split()\nprint(a + b)\n",
        re: "a, b = map(int, input().split())\nprint(a // (b - b))\n",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_verdicts() {
    matrix(Programs {
        language: Language::C,
        ok: "#include <stdio.h>\nint main(void){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a+b);return 0;}\n",
        wa: "#include <stdio.h>\nint main(void){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a==2?a+b:a-b);return 0;}\n",
        tl: "int main(void){volatile unsigned long i=0;for(;;)i++;}\n",
        ml: "#include <stdlib.h>\n#include <string.h>\nint main(void){for(;;){char*p=malloc(16<<20);if(!p)return 3;memset(p,1,16<<20);}}\n",
        bf: "#include <stdio.h>\nint main(void){printf(\"%d\\n\", 1)\n}\n",
        re: "int main(void){volatile int *p=0;*p=1;return 0;}\n",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpp_verdicts() {
    matrix(Programs {
        language: Language::Cpp,
        ok: "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<\"\\n\";}\n",
        wa: "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<(a==2?a+b:a-b)<<\"\\n\";}\n",
        tl: "int main(){volatile unsigned long i=0;for(;;)i++;}\n",
        ml: "#include <vector>\n#include <cstdio>\nint main(){std::vector<std::vector<char>> v;for(;;)v.emplace_back(16<<20,'x');}\n",
        bf: "#include <iostream>\nint main(){std::cout << undeclared << std::endl;}\n",
        re: "#include <stdexcept>\nint main(){throw std::runtime_error(\"boom\");}\n",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_verdicts() {
    matrix(Programs {
        language: Language::Go,
        ok: "package main\nimport \"fmt\"\nfunc main(){var a,b int64;fmt.Scan(&a,&b);fmt.Println(a+b)}\n",
        wa: "package main\nimport \"fmt\"\nfunc main(){var a,b int64;fmt.Scan(&a,&b);if a==2{fmt.Println(a+b)}else{fmt.Println(a-b)}}\n",
        tl: "package main\nfunc main(){i:=0;for{i++}}\n",
        ml: "package main\nvar keep [][]byte\nfunc main(){for{b:=make([]byte,16<<20);for i:=range b{b[i]=1};keep=append(keep,b)}}\n",
        bf: "package main\nimport \"fmt\"\nfunc main(){x := 1}\n",
        re: "package main\nfunc main(){panic(\"boom\")}\n",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_verdicts() {
    matrix(Programs {
        language: Language::Java,
        ok: "import java.util.*;\npublic class Main{public static void main(String[] a){Scanner s=new Scanner(System.in);long x=s.nextLong(),y=s.nextLong();System.out.println(x+y);}}\n",
        wa: "import java.util.*;\npublic class Main{public static void main(String[] a){Scanner s=new Scanner(System.in);long x=s.nextLong(),y=s.nextLong();System.out.println(x==2?x+y:x-y);}}\n",
        tl: "public class Main{public static void main(String[] a){long i=0;while(true){i++;}}}\n",
        ml: "import java.util.*;\npublic class Main{public static void main(String[] a){List<long[]> l=new ArrayList<>();while(true){l.add(new long[1<<20]);}}}\n",
        bf: "public class Main{public static void main(String[] a){System.out.println(1)}}\n",
        re: "public class Main{public static void main(String[] a){throw new IllegalStateException(\"boom\");}}\n",
    })
    .await;
}

// A program stalled at its memory limit. Under a tight limit a program whose working set does not fit, but whose
// code and data are file-backed, is not OOM-killed: the kernel evicts its file pages to stay under the limit, and
// the program reads them back, evicts others, and so on until the time limit. It did not fit, so it is ML, with an
// error that says it was stopped at its time limit while using all its memory. A program that merely fills memory
// the kernel cannot evict (a file in /tmp) and then loops is not stalled: TL.

/// The `error` of a run stopped at its time limit while it was thrashing at its memory limit.
fn assert_stalled_at_the_memory_limit(report: &scrc::domain::RunReport, what: &str) {
    assert_eq!(report.status, Status::MemoryLimit, "{what}: {report:#?}");
    assert_eq!(report.tests[0].status, Status::MemoryLimit, "{what}: {report:#?}");
    let error = &report.tests[0].error;
    assert!(
        error.contains("time limit") && error.contains("memory"),
        "{what}: the error says it was stopped at its time limit using all its memory: {error:?}"
    );
}

/// SCRC's own simulator case: a correct Java program under a 16 MiB limit. The JVM does not fit (its heap alone
/// is 8 MiB) and, rather than being OOM-killed, re-reads its own evicted code until the time limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_at_16_mib_is_ml() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let sum = "import java.util.*;\npublic class Main{public static void main(String[] a){Scanner s=new Scanner(System.in);long x=s.nextLong(),y=s.nextLong();System.out.println(x+y);}}\n";
    if under_gvisor(&config) {
        // gVisor's sandbox gets 24 MiB beside the program for its own kernel, and within that room a JVM with an
        // 8 MiB heap starts and runs; gVisor's count of the program's memory is too coarse to hold it to 16 MiB
        // (see the README's gVisor section). The one verdict of SCRC's simulator that differs under gVisor. Its
        // collector runs near its heap's end there, a second of CPU time or more a test on a busy machine (CI
        // measured 3.9 s in 2 s of wall time), so the limit here is room for that: the verdict is what is asserted.
        let report = judged(&judge, &with_limits(script(Language::Java, sum, &TESTS), 8000, 16)).await;
        assert_eq!(report.status, Status::Ok, "{report:#?}");
        assert_clean_and_serving(&judge, &config.instance).await;
        return;
    }
    let report = judged(&judge, &with_limits(script(Language::Java, sum, &TESTS), 2000, 16)).await;
    assert_eq!(report.status, Status::MemoryLimit, "{report:#?}");
    assert_eq!(
        report.tests.iter().map(|t| t.status).collect::<Vec<_>>(),
        [Status::MemoryLimit, Status::NotRun, Status::NotRun],
        "{report:#?}"
    );
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// A Python program whose file-backed working set (the image's libraries, mapped and read page by page) is 2.5
/// times its limit. It first drops those files' pages from the page cache so that they are charged to it when it
/// reads them, whoever read them before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_thrashing_its_mapped_files_is_ml() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let thrash = r#"import mmap, os
maps, total = [], 0
for folder in ('/usr/lib/x86_64-linux-gnu', '/usr/bin'):
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        try:
            if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) < 65536:
                continue
            with open(path, 'rb') as f:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                maps.append(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
        except (OSError, ValueError):
            continue
        total += len(maps[-1])
        if total > 40 << 20:
            break
    if total > 40 << 20:
        break
print(total >> 20, 'MiB mapped', flush=True)
while True:
    for m in maps:
        for i in range(0, len(m), 4096):
            m[i]
"#;
    let report = judged(
        &judge,
        &with_limits(script(Language::Python, thrash, &[("", "")]), 3000, 16),
    )
    .await;
    if under_gvisor(&config) {
        // gVisor's kernel has no refault counter to tell thrashing from slowness: the time limit stops it, and TL
        // is all the facts there support.
        assert_eq!(report.status, Status::TimeLimit, "{report:#?}");
    } else {
        assert_stalled_at_the_memory_limit(&report, "python mapping 40 MiB under 16 MiB");
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// Memory the kernel cannot evict (a 10 MiB file in the /tmp tmpfs, under a 16 MiB limit) and then a loop: the
/// program stands near its limit but is not stalled by it, so it is TL. So is a plain loop in little memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_tmp_or_a_small_loop_stays_tl() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let fill_then_loop = r#"chunk = b'x' * (1 << 20)
with open('/tmp/fill', 'wb') as f:
    for _ in range(10):
        f.write(chunk)
        f.flush()
del chunk
print('filled', flush=True)
while True:
    pass
"#;
    let cases = [
        (Language::Python, fill_then_loop, 16),
        (Language::Python, "while True:\n    pass\n", 16),
        (
            Language::C,
            "int main(void){volatile unsigned long i=0;for(;;)i++;}\n",
            16,
        ),
    ];
    for (language, source, memory) in cases {
        let report = judged(
            &judge,
            &with_limits(script(language, source, &[("", "")]), 1000, memory),
        )
        .await;
        assert_eq!(report.status, Status::TimeLimit, "{language} {source:?}: {report:#?}");
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_verdicts() {
    matrix(Programs {
        language: Language::JavaScript,
        ok: "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\nconsole.log(a + b);\n",
        wa: "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\nconsole.log(a === 2 ? a + b : a - b);\n",
        tl: "for (;;) {}\n",
        ml: "const keep = [];\nfor (;;) keep.push(new Array(1 << 20).fill(1.5));\n",
        bf: "const x = (1 + ;\nconsole.log(x);\n",
        re: "const o = null;\nconsole.log(o.x);\n",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ruby_verdicts() {
    matrix(Programs {
        language: Language::Ruby,
        ok: "a, b = gets.split.map(&:to_i)\nputs a + b\n",
        wa: "a, b = gets.split.map(&:to_i)\nputs a == 2 ? a + b : a - b\n",
        tl: "loop {}\n",
        ml: "keep = []\nloop { keep << ('x' * (16 << 20)) }\n",
        bf: "a = (1 +\nputs a\n",
        re: "a, b = gets.split.map(&:to_i)\nputs a / (b - b)\n",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_verdicts() {
    matrix(Programs {
        language: Language::Php,
        ok: "<?php\n[$a, $b] = array_map('intval', explode(' ', trim(fgets(STDIN))));\necho $a + $b, \"\\n\";\n",
        wa: "<?php\n[$a, $b] = array_map('intval', explode(' ', trim(fgets(STDIN))));\necho $a == 2 ? $a + $b : $a - $b, \"\\n\";\n",
        tl: "<?php\nwhile (true) {}\n",
        ml: "<?php\n$keep = [];\nwhile (true) { $keep[] = str_repeat('x', 16 << 20); }\n",
        bf: "<?php\n$x = 1\necho $x;\n",
        re: "<?php\n[$a, $b] = array_map('intval', explode(' ', trim(fgets(STDIN))));\necho intdiv($a, $b - $b), \"\\n\";\n",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_verdicts() {
    matrix(Programs {
        language: Language::Rust,
        ok: "use std::io::Read;\nfn main(){let mut s=String::new();std::io::stdin().read_to_string(&mut s).unwrap();let v:Vec<i64>=s.split_whitespace().map(|x|x.parse().unwrap()).collect();println!(\"{}\",v[0]+v[1]);}\n",
        wa: "use std::io::Read;\nfn main(){let mut s=String::new();std::io::stdin().read_to_string(&mut s).unwrap();let v:Vec<i64>=s.split_whitespace().map(|x|x.parse().unwrap()).collect();println!(\"{}\",if v[0]==2{v[0]+v[1]}else{v[0]-v[1]});}\n",
        tl: "fn main(){let mut i:u64=0;loop{unsafe{std::ptr::write_volatile(&mut i,i+1);}}}\n",
        ml: "fn main(){let mut keep:Vec<Vec<u8>>=Vec::new();loop{keep.push(vec![1u8;16<<20]);}}\n",
        bf: "fn main(){let x: i32 = \"s\";println!(\"{}\", x);}\n",
        re: "fn main(){let n:i32=String::new().parse().unwrap();println!(\"{}\",n);}\n",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_verdicts() {
    matrix(Programs {
        language: Language::TypeScript,
        ok: "const data: string = require('fs').readFileSync(0, 'utf8');\nconst [a, b] = data.trim().split(/\\s+/).map(Number);\nconsole.log(a + b);\n",
        wa: "const data: string = require('fs').readFileSync(0, 'utf8');\nconst [a, b] = data.trim().split(/\\s+/).map(Number);\nconsole.log(a === 2 ? a + b : a - b);\n",
        tl: "let i: number = 0;\nfor (;;) { i++; }\n",
        ml: "const keep: number[][] = [];\nfor (;;) keep.push(new Array<number>(1 << 20).fill(1.5));\n",
        bf: "const x: number = \"not a number\";\nconsole.log(x);\n",
        re: "const o: any = null;\nconsole.log(o.x);\n",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kotlin_verdicts() {
    matrix(Programs {
        language: Language::Kotlin,
        ok: "fun main() {\n    val (a, b) = readLine()!!.trim().split(\" \").map { it.toLong() }\n    println(a + b)\n}\n",
        wa: "fun main() {\n    val (a, b) = readLine()!!.trim().split(\" \").map { it.toLong() }\n    println(if (a == 2L) a + b else a - b)\n}\n",
        tl: "fun main() {\n    var i = 0L\n    while (true) { i++ }\n}\n",
        ml: "fun main() {\n    val keep = ArrayList<LongArray>()\n    while (true) keep.add(LongArray(1 shl 20))\n}\n",
        bf: "fun main() {\n    val x: Int = \"s\"\n    println(x)\n}\n",
        re: "fun main() {\n    throw IllegalStateException(\"boom\")\n}\n",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csharp_verdicts() {
    matrix(Programs {
        language: Language::CSharp,
        ok: "using System;\nusing System.Linq;\nclass P{static void Main(){var v=Console.ReadLine().Split(' ').Select(long.Parse).ToArray();Console.WriteLine(v[0]+v[1]);}}\n",
        wa: "using System;\nusing System.Linq;\nclass P{static void Main(){var v=Console.ReadLine().Split(' ').Select(long.Parse).ToArray();Console.WriteLine(v[0]==2?v[0]+v[1]:v[0]-v[1]);}}\n",
        tl: "class P{static void Main(){long i=0;while(true){i++;}}}\n",
        // Mono maps a large array's pages untouched: the program writes to them, so that it holds the memory its
        // heap counts (a runtime's own out-of-memory report counts only with the memory to show, see OwnHeap).
        ml: "using System.Collections.Generic;\nclass P{static void Main(){var keep=new List<long[]>();while(true){var x=new long[1<<20];for(int i=0;i<x.Length;i+=512)x[i]=1;keep.Add(x);}}}\n",
        bf: "class P{static void Main(){int x=\"s\";System.Console.WriteLine(x);}}\n",
        re: "class P{static void Main(){throw new System.InvalidOperationException(\"boom\");}}\n",
    })
    .await;
}
