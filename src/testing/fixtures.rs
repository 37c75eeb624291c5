//! Scripts and programs the tests and the benchmarks share: the sum of two integers in every language, and a
//! script built from a source and its tests.

use crate::domain::{
    Checker, FileIo, Group, Groups, Language, Points, RequestedLimits, RunReport, Script, ScriptId, Source, Status,
    Tenant, TestCase,
};

/// Three tests of a sum program.
pub const SUM_TESTS: [(&str, &str); 3] = [("2 3\n", "5\n"), ("10 20\n", "30\n"), ("-1 1\n", "0\n")];

/// A program that reads two integers and prints their sum, in `language`.
pub fn sum_program(language: Language) -> &'static str {
    match language {
        Language::Python => "a, b = map(int, input().split())\nprint(a + b)\n",
        Language::C => {
            "#include <stdio.h>\nint main(void){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a+b);return 0;}\n"
        }
        Language::Cpp => "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<\"\\n\";}\n",
        Language::Go => "package main\nimport \"fmt\"\nfunc main(){var a,b int64;fmt.Scan(&a,&b);fmt.Println(a+b)}\n",
        Language::Java => {
            "import java.util.*;\npublic class Main{public static void main(String[] a){Scanner s=new Scanner(System.in);\
             long x=s.nextLong(),y=s.nextLong();System.out.println(x+y);}}\n"
        }
        Language::JavaScript => {
            "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\nconsole.log(a + b);\n"
        }
        Language::Ruby => "a, b = gets.split.map(&:to_i)\nputs a + b\n",
        Language::Php => {
            "<?php\n[$a, $b] = array_map('intval', explode(' ', trim(fgets(STDIN))));\necho $a + $b, \"\\n\";\n"
        }
        Language::Rust => {
            "use std::io::Read;\nfn main(){let mut s=String::new();std::io::stdin().read_to_string(&mut s).unwrap();\
             let v:Vec<i64>=s.split_whitespace().map(|x|x.parse().unwrap()).collect();println!(\"{}\",v[0]+v[1]);}\n"
        }
        Language::TypeScript => {
            "const data: string = require('fs').readFileSync(0, 'utf8');\nconst [a, b] = data.trim().split(/\\s+/).map(Number);\nconsole.log(a + b);\n"
        }
        Language::Kotlin => {
            "fun main() {\n    val (a, b) = readLine()!!.trim().split(\" \").map { it.toLong() }\n    println(a + b)\n}\n"
        }
        Language::CSharp => {
            "using System;\nusing System.Linq;\nclass P{static void Main(){var v=Console.ReadLine().Split(' ').Select(long.Parse).ToArray();Console.WriteLine(v[0]+v[1]);}}\n"
        }
    }
}

/// A script of `language` with default limits, an exact checker, and `tests` as (input, expected output) pairs,
/// numbered from 1.
///
/// # Panics
/// On an empty id or source: fixtures are written by hand.
pub fn script(id: impl Into<String>, language: Language, source: &str, tests: &[(&str, &str)]) -> Script {
    Script {
        id: ScriptId::new(id.into()).expect("a fixture's id is not empty"),
        language,
        source: Source::new(source).expect("a fixture's source is not empty"),
        entry: None,
        files: Vec::new(),
        io: FileIo::default(),
        limits: RequestedLimits::default(),
        tests: tests
            .iter()
            .zip(1..)
            .map(|((input, expected), number)| TestCase {
                number,
                input: (*input).to_owned(),
                expected_output: (*expected).to_owned(),
                points: None,
            })
            .collect(),
        checker: Checker::default(),
        groups: Groups::default(),
        run_all_tests: false,
        tenant: None,
    }
}

/// `script` tagged with `tenant`, for the fair-sharing tests.
///
/// # Panics
/// On an empty or over-long tenant: fixtures are written by hand.
pub fn with_tenant(mut script: Script, tenant: &str) -> Script {
    script.tenant = Some(Tenant::new(tenant).expect("a fixture's tenant is valid"));
    script
}

/// A subtask group of `points` over the tests numbered `tests`, needing the groups named in `depends_on`.
///
/// # Panics
/// When `points` is not a valid number of points: a fixture's mistake.
pub fn group(name: &str, tests: &[u32], points: f64, depends_on: &[&str]) -> Group {
    Group {
        name: name.into(),
        tests: tests.to_vec(),
        points: Points::new(points).expect("valid points"),
        depends_on: depends_on.iter().map(|&name| name.to_owned()).collect(),
    }
}

/// Each group of `report` as its name, status and score, for comparing in one assertion.
pub fn group_outcomes(report: &RunReport) -> Vec<(&str, Status, f64)> {
    report
        .score
        .groups
        .iter()
        .map(|group| (group.name.as_str(), group.status, group.score.get()))
        .collect()
}
