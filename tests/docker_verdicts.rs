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
            assert!(first.duration.is_some() && first.cpu_time.is_some() && first.memory_peak.is_some());
        }
        if expected == Status::TimeLimit {
            let run = report.tests[0].duration.unwrap();
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
