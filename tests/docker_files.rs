//! Programs of several files, grader stubs, CPU-time limits and file input and output (issue 23), on real Docker.
//! Every language builds a program of several files in its natural way; a setter's grader stub is just another
//! file; and a program may read its input from a file and write its output to one, which is private to the test.
//! The CPU-time limit has a binary of its own (tests/docker_cpu_time.rs).

mod support;

use scrc::domain::{FileIo, IoName, Language, ProgramFile, ProgramPath, Script, Status};
use support::*;

fn file(path: &str, content: &str) -> ProgramFile {
    ProgramFile {
        path: ProgramPath::new(path).expect("a valid path"),
        content: content.as_bytes().to_vec(),
    }
}

/// `script` with `files` beside its source, saved at `entry` when given.
fn with_files(mut script: Script, entry: Option<&str>, files: &[(&str, &str)]) -> Script {
    script.entry = entry.map(|path| ProgramPath::new(path).expect("a valid entry"));
    script.files = files.iter().map(|(path, content)| file(path, content)).collect();
    script
}

const SUM: [(&str, &str); 2] = [("2 3\n", "5\n"), ("10 -4\n", "6\n")];

/// A language, its entry's source, the entry's path (`None`: the language's usual main file) and the other files.
type SeveralFiles = (
    Language,
    &'static str,
    Option<&'static str>,
    Vec<(&'static str, &'static str)>,
);

/// One program of several files per language, each file needed: a header or module in another file, in a
/// subdirectory where the language allows one.
fn several_files() -> Vec<SeveralFiles> {
    vec![
        (
            Language::C,
            "#include <stdio.h>\n#include \"lib/add.h\"\nint main(void){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",add(a,b));return 0;}\n",
            None,
            vec![
                ("lib/add.h", "long add(long a, long b);\n"),
                (
                    "lib/add.c",
                    "#include \"add.h\"\nlong add(long a, long b){return a+b;}\n",
                ),
            ],
        ),
        (
            Language::Go,
            "package main\nimport \"fmt\"\nfunc main(){var a,b int64;fmt.Scan(&a,&b);fmt.Println(add(a,b))}\n",
            None,
            vec![("add.go", "package main\nfunc add(a, b int64) int64 { return a + b }\n")],
        ),
        (
            Language::Python,
            "from helpers.add import add\na, b = map(int, input().split())\nprint(add(a, b))\n",
            None,
            vec![
                ("helpers/__init__.py", ""),
                ("helpers/add.py", "def add(a, b):\n    return a + b\n"),
            ],
        ),
        (
            Language::JavaScript,
            "const { add } = require('./lib/add.js');\nconst [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\nconsole.log(add(a, b));\n",
            None,
            vec![("lib/add.js", "exports.add = (a, b) => a + b;\n")],
        ),
        (
            Language::TypeScript,
            "import { add } from './add';\nconst [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\nconsole.log(add(a, b));\n",
            // The entry and its module both in a directory: each compiles beside itself, not to the top.
            Some("src/main.ts"),
            vec![(
                "src/add.ts",
                "export function add(a: number, b: number): number { return a + b; }\n",
            )],
        ),
        (
            Language::Ruby,
            "require_relative 'lib/add'\na, b = gets.split.map(&:to_i)\nputs add(a, b)\n",
            None,
            vec![("lib/add.rb", "def add(a, b)\n  a + b\nend\n")],
        ),
        (
            Language::Php,
            "<?php\nrequire __DIR__ . '/lib/add.php';\n[$a, $b] = array_map('intval', explode(' ', trim(fgets(STDIN))));\necho add($a, $b), \"\\n\";\n",
            None,
            vec![("lib/add.php", "<?php\nfunction add($a, $b) { return $a + $b; }\n")],
        ),
        (
            Language::Rust,
            "mod add;\nuse std::io::Read;\nfn main(){let mut s=String::new();std::io::stdin().read_to_string(&mut s).unwrap();let v:Vec<i64>=s.split_whitespace().map(|x|x.parse().unwrap()).collect();println!(\"{}\",add::add(v[0],v[1]));}\n",
            None,
            vec![("add.rs", "pub fn add(a: i64, b: i64) -> i64 { a + b }\n")],
        ),
        (
            Language::Kotlin,
            "fun main() {\n    val (a, b) = readLine()!!.trim().split(\" \").map { it.toLong() }\n    println(add(a, b))\n}\n",
            None,
            vec![("Add.kt", "fun add(a: Long, b: Long): Long = a + b\n")],
        ),
        (
            Language::CSharp,
            "using System;\nclass P{static void Main(){var v=Console.ReadLine().Split(' ');Console.WriteLine(Adder.Add(long.Parse(v[0]),long.Parse(v[1])));}}\n",
            None,
            vec![(
                "Adder.cs",
                "static class Adder { public static long Add(long a, long b) { return a + b; } }\n",
            )],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_language_builds_a_program_of_several_files() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    for (language, source, entry, files) in several_files() {
        let script = with_files(script(language, source, &SUM), entry, &files);
        let report = judged(&judge, &script).await;
        assert_eq!(report.status, Status::Ok, "{language}: {report:#?}");
        // Without the other files the same source does not build, or does not run: they are really used.
        let alone = judged(&judge, &script_of(language, source)).await;
        assert!(
            matches!(alone.status, Status::BuildFailure | Status::RuntimeError),
            "{language} alone: {alone:#?}"
        );
    }
    assert_clean_and_serving(&judge, &config.instance).await;
}

fn script_of(language: Language, source: &str) -> Script {
    script(language, source, &SUM)
}

/// A setter's grader stub and the student's function, merged by the platform into one program: in C++ the grader
/// holds `main` and the student's file the function it calls, declared in the setter's header; in Java the grader's
/// class is the entry and calls the student's class, and the student's source is just another file; in Kotlin the
/// entry's `main` runs even when the student's file declares one too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grader_stub_calls_the_students_function() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let grader_cpp = "#include <iostream>\n#include \"solution.h\"\nint main(){long long a,b;std::cin>>a>>b;std::cout<<solve(a,b)<<\"\\n\";}\n";
    let student_cpp = "#include \"solution.h\"\nlong long solve(long long a, long long b){return a+b;}\n";
    let cpp = with_files(
        script(Language::Cpp, student_cpp, &SUM),
        Some("solution.cpp"),
        &[
            ("grader.cpp", grader_cpp),
            ("solution.h", "long long solve(long long a, long long b);\n"),
        ],
    );
    let report = judged(&judge, &cpp).await;
    assert_eq!(report.status, Status::Ok, "{report:#?}");

    let grader_java = "import java.util.*;\npublic class Main{public static void main(String[] x){Scanner s=new Scanner(System.in);System.out.println(Solution.solve(s.nextLong(),s.nextLong()));}}\n";
    let student_java = "public class Solution{static long solve(long a,long b){return a+b;}}\n";
    let mut java = script(Language::Java, grader_java, &SUM);
    java.entry = Some(ProgramPath::new("Main.java").expect("a valid entry"));
    java.files = vec![file("Solution.java", student_java)];
    let report = judged(&judge, &java).await;
    assert_eq!(report.status, Status::Ok, "{report:#?}");

    // A student's `Solution` whose `solve` is wrong: the grader's output is wrong, so WA.
    java.files = vec![file("Solution.java", &student_java.replace("a+b", "a-b"))];
    let report = judged(&judge, &java).await;
    assert_eq!(report.status, Status::WrongAnswer, "{report:#?}");

    // Kotlin: the student's file has a `main` of its own too (left from testing it), and the grader's, the entry's,
    // is the one run.
    let grader_kotlin = "fun main() {\n    val (a, b) = readLine()!!.trim().split(\" \").map { it.toLong() }\n    println(solve(a, b))\n}\n";
    let student_kotlin = "fun solve(a: Long, b: Long): Long = a + b\nfun main(args: Array<String>) { println(\"the student's main\") }\n";
    let kotlin = with_files(
        script(Language::Kotlin, grader_kotlin, &SUM),
        Some("grader.kt"),
        &[("student.kt", student_kotlin)],
    );
    let report = judged(&judge, &kotlin).await;
    assert_eq!(report.status, Status::Ok, "{report:#?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// Java in a package, a class per file: the entry's class runs in its package.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_java_project_in_a_package_runs_its_entry() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let app = "package com.example;\nimport java.util.*;\npublic class App{public static void main(String[] x){Scanner s=new Scanner(System.in);System.out.println(com.example.util.Adder.add(s.nextLong(),s.nextLong()));}}\n";
    let adder = "package com.example.util;\npublic class Adder{public static long add(long a,long b){return a+b;}}\n";
    let mut java = script(Language::Java, app, &SUM);
    java.entry = Some(ProgramPath::new("com/example/App.java").expect("a valid entry"));
    java.files = vec![file("com/example/util/Adder.java", adder)];
    let report = judged(&judge, &java).await;
    assert_eq!(report.status, Status::Ok, "{report:#?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// A data file beside the program, sent as base64: binary bytes arrive as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_data_file_arrives_byte_for_byte_and_stays_read_only() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let bytes: Vec<u8> = (0..=255u8).collect();
    let source = "import hashlib, os\ndata = open('/box/table.bin', 'rb').read()\nprint(len(data), hashlib.sha256(data).hexdigest()[:16])\n\
                  try:\n    open('/box/table.bin', 'wb').write(b'x')\n    print('changed')\nexcept OSError:\n    print('read-only')\n";
    let digest = {
        use sha2::Digest as _;
        let hex: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        hex[..16].to_owned()
    };
    let expected = format!("256 {digest}\nread-only\n");
    let mut script = script(Language::Python, source, &[("", &expected), ("", &expected)]);
    script.files = vec![ProgramFile {
        path: ProgramPath::new("table.bin").expect("a valid path"),
        content: bytes,
    }];
    let report = judged(&judge, &script).await;
    assert_eq!(report.status, Status::Ok, "{report:#?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

fn io(input: Option<&str>, output: Option<&str>) -> FileIo {
    FileIo {
        input_file: input.map(|name| IoName::new(name).expect("a valid name")),
        output_file: output.map(|name| IoName::new(name).expect("a valid name")),
    }
}

/// Input from a file, output to one, either alone or both: each combination gets the test's input where the
/// program reads it and the output where it writes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_input_and_output_in_every_combination() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let cases = [
        (
            io(Some("input.txt"), None),
            "a, b = map(int, open('input.txt').read().split())\nprint(a + b)\n",
        ),
        (
            io(None, Some("output.txt")),
            "a, b = map(int, input().split())\nopen('output.txt', 'w').write(f'{a + b}\\n')\nprint('to stdout, not checked')\n",
        ),
        (
            io(Some("in"), Some("out")),
            "a, b = map(int, open('in').read().split())\nopen('out', 'w').write(f'{a + b}\\n')\n",
        ),
    ];
    for (io, source) in cases {
        let mut script = script(Language::Python, source, &SUM);
        script.io = io.clone();
        let report = judged(&judge, &script).await;
        assert_eq!(report.status, Status::Ok, "{io:?}: {report:#?}");
    }
    // In C too, with the file names relative to the working directory.
    let c = "#include <stdio.h>\nint main(void){long a,b;FILE*i=fopen(\"input.txt\",\"r\");FILE*o=fopen(\"output.txt\",\"w\");\
             if(!i||!o)return 3;fscanf(i,\"%ld %ld\",&a,&b);fprintf(o,\"%ld\\n\",a+b);return 0;}\n";
    let mut script = script(Language::C, c, &SUM);
    script.io = io(Some("input.txt"), Some("output.txt"));
    let report = judged(&judge, &script).await;
    assert_eq!(report.status, Status::Ok, "{report:#?}");
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// The output file judged as the output: none written is WA saying so (not RE, the program exited 0); more than
/// the output limit is OL; a link to another file is no output file (the supervisor never follows it); and a file
/// written by test 1 is gone for test 2, under the output file's name too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_output_file_is_the_tests_own_and_is_held_to_the_rules_of_stdout() {
    let Some((judge, config)) = judge(&[("RUNNER_OUTPUT_LIMIT", "4096")]).await else {
        return;
    };
    let run = |source: &str, tests: &[(&str, &str)], all: bool| {
        let mut script = script(Language::Python, source, tests);
        script.io = io(None, Some("output.txt"));
        script.run_all_tests = all;
        script
    };
    let none = judged(&judge, &run("print(5)\n", &[("", "5\n")], false)).await;
    assert_eq!(none.status, Status::WrongAnswer, "{none:#?}");
    assert!(
        none.tests[0].error.contains("no output file"),
        "{}",
        none.tests[0].error
    );

    let big = judged(
        &judge,
        &run("open('output.txt', 'w').write('x' * 5000)\n", &[("", "")], false),
    )
    .await;
    assert_eq!(big.status, Status::OutputLimit, "{big:#?}");

    let link = judged(
        &judge,
        &run(
            "import os\nos.symlink('/etc/passwd', 'output.txt')\n",
            &[("", "")],
            false,
        ),
    )
    .await;
    assert_eq!(link.status, Status::WrongAnswer, "{link:#?}");
    assert!(
        link.tests[0].stdout().is_empty(),
        "nothing of the link's target is read"
    );

    // Test 1 leaves test 2's answer in the output file and in another file; test 2 writes nothing.
    let source = "import os, sys\nif sys.stdin.read().strip() == 'first':\n    open('output.txt', 'w').write('second\\n')\n\
                  \x20   open('note', 'w').write('x')\nelse:\n    print(sorted(os.listdir('.')))\n";
    let carried = judged(
        &judge,
        &run(source, &[("first", "second\n"), ("second", "second\n")], true),
    )
    .await;
    assert_eq!(carried.tests[0].status, Status::Ok, "{carried:#?}");
    assert_eq!(carried.tests[1].status, Status::WrongAnswer, "{carried:#?}");
    assert!(
        carried.tests[1].error.contains("no output file"),
        "{}",
        carried.tests[1].error
    );
    assert_clean_and_serving(&judge, &config.instance).await;
}

/// A program of several files sent twice is built once: the second build comes from the artifact cache, its key
/// covering every file's path and bytes, and a change to any one file is a new build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_of_several_files_is_built_once_and_any_file_changes_its_key() {
    let Some((judge, config)) = judge(&[]).await else {
        return;
    };
    let Some(cache) = judge.runtime().artifact_cache() else {
        assert!(!in_ci() || std::env::var("RUNNER_ARTIFACT_CACHE_BYTES").is_ok_and(|v| v == "0"));
        return;
    };
    let (language, source, entry, files) = several_files().remove(0);
    let first = with_files(script(language, source, &SUM), entry, &files);
    let before = cache.stats();
    assert_eq!(judged(&judge, &first).await.status, Status::Ok);
    assert_eq!(judged(&judge, &first).await.status, Status::Ok);
    let after = cache.stats();
    assert_eq!(after.hits - before.hits, 1, "the second is a hit: {after:?}");
    let mut changed = first.clone();
    changed.files[1].content = b"#include \"add.h\"\nlong add(long a, long b){return b+a;}\n".to_vec();
    assert_eq!(judged(&judge, &changed).await.status, Status::Ok);
    assert_eq!(
        cache.stats().misses - after.misses,
        1,
        "another file's bytes: another build"
    );
    assert_clean_and_serving(&judge, &config.instance).await;
}
