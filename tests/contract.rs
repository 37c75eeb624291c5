//! The published contract against what scrc documents and sends: `docs/asyncapi.yaml` parses and every `$ref` in
//! it and in the schemas resolves; every example (README, AsyncAPI document, schemas) validates; every message of
//! the simulator library validates; reports of every kind, encoded by the runner's own wire code, validate; and the
//! schemas' enums and topic names agree with the code. The negative cases show each check can fail. Real results
//! and dead letters from Kafka and Docker are checked by `tests/end_to_end.rs`.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use scrc::adapters::kafka::wire::encode_report;
use scrc::domain::{Comparison, Execution, Exit, Language, RunReport, ScriptId, Status, TestCase, TestResult, Verdict};
use serde_json::{Value, json};
use support::contract::{Contract, Kind};

#[test]
fn the_asyncapi_document_is_version_3_and_every_ref_resolves() {
    let contract = Contract::load();
    let document = &contract.asyncapi;
    assert_eq!(document["asyncapi"], "3.0.0");
    assert_eq!(
        document["info"]["version"],
        env!("CARGO_PKG_VERSION"),
        "the document's version is the runner's"
    );
    let mut checked = 0;
    for (file, value) in documents(&contract) {
        for (location, reference) in refs(value, String::new()) {
            if let Err(error) = resolve(&contract, &file, &reference) {
                panic!("{file} at {location}: $ref {reference:?} does not resolve: {error}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} $refs found: is the walk broken?");

    // An operation may only name messages of its own channel (AsyncAPI 3).
    let operations = document["operations"].as_object().expect("operations");
    for (name, operation) in operations {
        let channel = operation["channel"]["$ref"]
            .as_str()
            .expect("an operation names its channel");
        for message in operation["messages"]
            .as_array()
            .expect("an operation lists its messages")
        {
            let message = message["$ref"].as_str().expect("a message $ref");
            assert!(
                message.starts_with(&format!("{channel}/messages/")),
                "operation {name}: {message} is not a message of {channel}"
            );
        }
    }
    let channels: BTreeSet<&str> = document["channels"]
        .as_object()
        .expect("channels")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        channels,
        BTreeSet::from(["scripts", "results", "deadLetters", "events"])
    );
}

#[test]
fn a_ref_that_leads_nowhere_is_caught() {
    let contract = Contract::load();
    assert!(resolve(&contract, "asyncapi.yaml", "#/components/messages/nothing").is_err());
    assert!(resolve(&contract, "asyncapi.yaml", "schemas/nothing.schema.json").is_err());
    assert!(
        resolve(
            &contract,
            "schemas/result.schema.json",
            "common.schema.json#/$defs/nothing"
        )
        .is_err()
    );
    assert!(
        resolve(
            &contract,
            "schemas/result.schema.json",
            "common.schema.json#/$defs/language"
        )
        .is_ok()
    );
}

#[test]
fn the_topic_defaults_in_the_document_are_the_runners() {
    let contract = Contract::load();
    let kafka = support::config(&[]).kafka;
    let address = |channel: &str| contract.asyncapi["channels"][channel]["address"].clone();
    assert_eq!(address("scripts"), json!(kafka.scripts_topics[0]));
    assert_eq!(address("results"), json!(kafka.results_topic));
    assert_eq!(address("deadLetters"), json!(kafka.dlq_topic));
    assert_eq!(address("events"), Value::Null, "the events topic has no default");
}

#[test]
fn every_schema_is_valid_json_schema_2020_12_and_its_examples_validate() {
    let contract = Contract::load();
    let expected: BTreeSet<&str> = Kind::ALL
        .iter()
        .map(|kind| kind.schema_file())
        .chain(["common.schema.json"])
        .collect();
    let present: BTreeSet<&str> = contract.schemas.keys().map(String::as_str).collect();
    assert_eq!(present, expected, "docs/schemas/ holds exactly the contract's schemas");

    for (name, schema) in contract.schemas.iter() {
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name} declares draft 2020-12"
        );
        if let Err(error) = jsonschema::meta::validate(schema) {
            panic!("{name} is not a valid JSON Schema: {error}");
        }
        let mut examples = 0;
        for (pointer, subschema) in subschemas_with_examples(schema, String::new()) {
            let validator = contract.validator(&json!({"$ref": format!("schemas/{name}#{pointer}")}));
            for (index, example) in subschema["examples"].as_array().into_iter().flatten().enumerate() {
                let violations = support::contract::violations(&validator, example);
                assert!(
                    violations.is_empty(),
                    "{name}#{pointer}/examples/{index} is invalid: {violations:?}"
                );
                examples += 1;
            }
        }
        if name != "common.schema.json" {
            assert!(
                schema["examples"].as_array().is_some_and(|e| !e.is_empty()),
                "{name} has no examples"
            );
        }
        assert!(examples > 0, "{name}: no examples found");
    }
}

#[test]
fn every_example_in_the_asyncapi_document_validates() {
    let contract = Contract::load();
    let messages = contract.asyncapi["components"]["messages"]
        .as_object()
        .expect("components.messages");
    assert_eq!(messages.len(), 5, "script, done, result, deadLetter, event");
    for (name, message) in messages {
        let examples = message["examples"].as_array().map_or(&[][..], Vec::as_slice);
        assert!(!examples.is_empty(), "message {name} has no examples");
        for (index, example) in examples.iter().enumerate() {
            let mut checked = 0;
            for part in ["payload", "headers"] {
                let Some(instance) = example.get(part) else { continue };
                let schema = message
                    .get(part)
                    .unwrap_or_else(|| panic!("message {name}'s example {index} has {part} but the message has none"));
                // A multi-format schema object holds the schema under `schema`; otherwise it is the schema.
                let schema = schema.get("schema").unwrap_or(schema);
                let violations = support::contract::violations(&contract.validator(schema), instance);
                assert!(
                    violations.is_empty(),
                    "message {name}, example {index}, {part}: {violations:?}"
                );
                checked += 1;
            }
            assert!(
                checked > 0,
                "message {name}'s example {index} has neither payload nor headers"
            );
        }
    }
}

/// Every fenced ```json block of the README must be one of the contract's messages, or several one after another
/// (a stream of events), and valid. A block the classifier cannot place fails the test, so a new example cannot
/// escape the check.
#[test]
fn every_json_example_in_the_readme_validates() {
    let contract = Contract::load();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let blocks = json_blocks(&readme);
    let mut kinds = BTreeSet::new();
    for (line, text) in &blocks {
        let values: Vec<Value> = serde_json::Deserializer::from_str(text)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("README.md:{line}: the json block is not JSON: {e}"));
        assert!(!values.is_empty(), "README.md:{line}: an empty json block");
        for value in values {
            let kind = classify(&value).unwrap_or_else(|why| panic!("README.md:{line}: {why}:\n{text}"));
            contract.assert_valid(kind, &value, &format!("README.md:{line}"));
            kinds.insert(kind);
        }
    }
    for kind in [Kind::Script, Kind::Result, Kind::Event] {
        assert!(
            kinds.contains(&kind),
            "the README's {kind:?} examples were not found: {blocks:?}"
        );
    }
}

#[test]
fn readme_blocks_that_are_not_a_message_are_not_classified() {
    assert!(classify(&json!([1, 2])).is_err());
    assert!(classify(&json!({"hello": "world"})).is_err());
    assert!(
        classify(&json!({"source": "x", "scrc-error": "y"})).is_err(),
        "ambiguous"
    );
    assert_eq!(classify(&json!({"type": "done"})), Ok(Kind::Done));
    let blocks = json_blocks("text\n```json\n{\"a\": 1}\n```\n```bash\necho\n```\n```json title\n[]\n```\n");
    assert_eq!(blocks, [(2, "{\"a\": 1}\n".to_owned()), (8, "[]\n".to_owned())]);
}

#[test]
fn every_message_of_the_simulator_library_is_a_valid_script() {
    let contract = Contract::load();
    let library = scrc_simulator::full_library().expect("the simulator library loads");
    assert!(
        library.len() >= 72,
        "at least 12 languages x 6 outcomes, got {}",
        library.len()
    );
    let status = contract.validator(&json!({"$ref": "schemas/common.schema.json#/$defs/scriptStatus"}));
    for scenario in &library {
        let what = format!("simulator {}/{}", scenario.language, scenario.outcome);
        let id = format!("sim-{}-{}", scenario.language, scenario.outcome);
        contract.assert_valid(Kind::Script, &scenario.message(&id), &what);
        contract.assert_valid(
            Kind::Script,
            &scenario.unique("tok-1").message(&id),
            &format!("{what}, unique"),
        );
        assert!(
            status.is_valid(&json!(scenario.expected)),
            "{what} expects {:?}, not a status of the contract",
            scenario.expected
        );
    }
}

/// Reports of every shape the runner produces, through the runner's own encoder: the closed result schema then
/// catches a field the encoder adds that the contract does not publish.
#[test]
fn reports_of_every_kind_encode_to_valid_results() {
    let contract = Contract::load();
    let id = || ScriptId::new("contract-1").expect("a valid id");
    let test = |number: u32| TestCase {
        number,
        input: "2 3\n".into(),
        expected_output: "5\n".into(),
        points: None,
    };
    let ran = |exit: Exit, stdout: &[u8], status: Status| {
        let execution = Execution {
            exit,
            wall_time: Duration::from_millis(12),
            cpu_time: Some(Duration::from_millis(9)),
            memory_peak: Some(3 << 20),
            stdout: stdout.to_vec(),
            stderr: b"warning\n".to_vec(),
            timed_out: status == Status::TimeLimit,
            memory_exceeded: status == Status::MemoryLimit,
            stalled_at_memory_limit: false,
            output_exceeded: status == Status::OutputLimit,
            cpu_exceeded: false,
            output_file_missing: false,
        };
        let detail = if status == Status::Ok { "" } else { "because" };
        (
            execution,
            Verdict {
                status,
                detail: detail.into(),
            },
        )
    };

    let mut reports = Vec::new();
    for status in Status::ALL {
        if matches!(status, Status::NotRun | Status::BuildFailure | Status::Rejected) {
            continue; // built below: they do not come from running a program
        }
        let exit = match status {
            Status::RuntimeError => Exit::Signal(11),
            _ => Exit::Code(0),
        };
        let (execution, verdict) = ran(exit, b"5\n", status);
        reports.push(RunReport::single(id(), Language::C, execution.clone(), verdict.clone()));
        let mut tests = vec![TestResult::judged(&test(1), execution, verdict)];
        tests.push(TestResult::not_run(&test(2)));
        reports.push(RunReport::suite(id(), Language::Python, tests));
    }
    reports.push(RunReport::build_failure(
        id(),
        Language::Cpp,
        &[test(1), test(2)],
        b"main.cpp:1: error".to_vec(),
        "compilation failed with exit code 1".into(),
    ));
    reports.push(RunReport::rejected(id(), None, "unknown language \"cobol\"".into()));
    reports.push(RunReport::rejected(
        id(),
        Some(Language::Java),
        "source is empty".into(),
    ));
    reports.push(RunReport::internal_error(
        id(),
        None,
        "docker is down".into(),
        Vec::new(),
    ));
    let (execution, verdict) = ran(Exit::Code(0), b"ok\x00\xff\xfe", Status::WrongAnswer);
    let invalid_utf8 = RunReport::suite(
        id(),
        Language::Go,
        vec![TestResult::judged(&test(1), execution, verdict)],
    );
    reports.push(invalid_utf8.clone());

    for report in &reports {
        let encoded = encode_report(report, "host-1", SystemTime::now(), 1 << 20).expect("fits");
        let value: Value = serde_json::from_slice(&encoded).expect("a result is JSON");
        contract.assert_valid(Kind::Result, &value, &format!("the encoded {} report", report.status));
    }
    let encoded = encode_report(&invalid_utf8, "host-1", SystemTime::now(), 1 << 20).expect("fits");
    let value: Value = serde_json::from_slice(&encoded).expect("JSON");
    assert!(
        value["tests"][0]["stdout_base64"].is_string(),
        "the base64 copy was checked"
    );

    let (execution, verdict) = ran(Exit::Code(0), &vec![b'x'; 50_000], Status::Ok);
    let huge = RunReport::single(id(), Language::C, execution, verdict);
    let encoded = encode_report(&huge, "", SystemTime::now(), 10_000).expect("fits once truncated");
    let value: Value = serde_json::from_slice(&encoded).expect("JSON");
    assert_eq!(value["truncated"], true);
    assert!(value.get("runner").is_none(), "no runner name, no field");
    contract.assert_valid(Kind::Result, &value, "a truncated result");
}

#[test]
fn the_schemas_enums_are_the_codes() {
    let contract = Contract::load();
    let common = &contract.schemas["common.schema.json"]["$defs"];
    let strings = |value: &Value| -> BTreeSet<String> {
        value
            .as_array()
            .expect("an enum")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let languages: BTreeSet<String> = Language::ALL.iter().map(|l| l.as_str().to_owned()).collect();
    assert_eq!(
        strings(&common["language"]["enum"]),
        languages,
        "docs/schemas/common.schema.json#/$defs/language lists the languages of scrc::domain::Language"
    );
    let statuses: BTreeSet<String> = Status::ALL.iter().map(|s| s.code().to_owned()).collect();
    assert_eq!(strings(&common["status"]["enum"]), statuses);

    let checkers = strings(&contract.schemas["script.schema.json"]["properties"]["checker"]["oneOf"][0]["enum"]);
    assert_eq!(checkers.len(), 4);
    for name in &checkers {
        assert_eq!(
            Comparison::from_wire(name, None).map(|c| c.name()),
            Ok(name.as_str()),
            "the runner knows the checker {name}"
        );
    }
}

#[test]
fn a_result_with_an_unknown_status_or_without_id_is_invalid() {
    let contract = Contract::load();
    let result = json!({
        "id": "r1", "status": "OK", "exit_code": 0, "stdout": "", "stderr": "", "duration_ms": 1, "error": "",
        "timestamp": "2026-11-22T10:30:00.123Z"
    });
    contract.assert_valid(Kind::Result, &result, "the baseline result");
    let invalid = |value: Value, what: &str| contract.assert_invalid(Kind::Result, &value, what);
    invalid(edited(&result, "status", json!("XX")), "an unknown status");
    invalid(edited(&result, "status", json!("ok")), "a lower-case status");
    invalid(edited(&result, "status", json!("-")), "a script status of -");
    invalid(without(&result, "id"), "a result without id");
    invalid(
        without(&result, "exit_code"),
        "a result without exit_code (null when nothing ran)",
    );
    invalid(
        edited(&result, "verdict", json!("OK")),
        "a field the contract does not publish",
    );
    invalid(
        edited(&result, "timestamp", json!("2026-11-22T10:30:00Z")),
        "a timestamp without milliseconds",
    );
    invalid(
        edited(&result, "truncated", json!(false)),
        "truncated: false (left out instead)",
    );
    invalid(edited(&result, "language", json!("cobol")), "an unknown language");
    invalid(
        edited(&result, "stdout_base64", json!("not base64!")),
        "base64 that is not",
    );
    invalid(
        edited(&result, "tests", json!([])),
        "an empty tests array (left out instead)",
    );
}

#[test]
fn a_script_without_language_or_program_is_invalid_and_one_without_id_is_not() {
    let contract = Contract::load();
    let script = json!({"language": "python", "source": "print(1)"});
    // SCRC's minimal message: the id comes from the key, then from `topic:partition:offset`.
    contract.assert_valid(Kind::Script, &script, "an id-less script");
    contract.assert_valid(Kind::Script, &edited(&script, "id", json!("")), "an empty id");
    contract.assert_valid(Kind::Script, &edited(&script, "limits", json!(null)), "null limits");
    let invalid = |value: Value, what: &str| contract.assert_invalid(Kind::Script, &value, what);
    invalid(without(&script, "language"), "a script without language");
    invalid(without(&script, "source"), "a script without source or files");
    let files = json!([{"path": "main.py", "content": "print(1)"}, {"path": "lib/util.py", "content": ""}]);
    contract.assert_valid(
        Kind::Script,
        &edited(&without(&script, "source"), "files", files),
        "files instead of source",
    );
    for path in [
        "../x",
        "/etc/x",
        "a/../../x",
        "a//b",
        "prog",
        "prog.exe/x",
        ".scrc-x",
        "a\\b",
        "",
    ] {
        let files = json!([{"path": path, "content": ""}]);
        invalid(edited(&script, "files", files), &format!("a file at {path:?}"));
    }
    invalid(
        edited(&script, "files", json!([{"path": "x", "encoding": "gzip"}])),
        "an unknown encoding",
    );
    invalid(
        edited(&script, "io", json!({"output_file": "a/b"})),
        "an output file in a directory",
    );
    invalid(
        edited(&script, "io", json!({"input_file": ".."})),
        "an input file named ..",
    );
    invalid(
        edited(&script, "limits", json!({"cpu_time_limit_ms": -1})),
        "a negative CPU limit",
    );
    invalid(edited(&script, "id", json!(7)), "a numeric id");
    invalid(edited(&script, "id", json!("i".repeat(257))), "an id over 256 bytes");
    invalid(edited(&script, "language", json!("Python")), "a capitalised language");
    invalid(edited(&script, "source", json!(" \n\t")), "a blank source");
    invalid(edited(&script, "type", json!("exec")), "an unknown type");
    invalid(
        edited(&script, "limits", json!({"time_limit_ms": -5})),
        "a negative limit",
    );
    invalid(
        edited(&script, "limits", json!({"time_limit_ms": 1.5})),
        "a fractional limit",
    );
    invalid(edited(&script, "tests", json!([{"input": 7}])), "a numeric input");
    invalid(edited(&script, "tests", json!({})), "tests that are not an array");
    invalid(edited(&script, "checker", json!("diff")), "an unknown checker");
    invalid(edited(&script, "float_tolerance", json!(-1)), "a negative tolerance");
    contract.assert_invalid(Kind::Done, &json!({"type": "script"}), "done with another type");
}

#[test]
fn an_event_with_a_field_of_another_event_is_invalid() {
    let contract = Contract::load();
    let running = json!({"id": "e1", "event": "running", "runner": "host-1", "timestamp": "2026-11-22T10:30:00.101Z",
                         "test": 1});
    contract.assert_valid(Kind::Event, &running, "the baseline event");
    let invalid = |value: Value, what: &str| contract.assert_invalid(Kind::Event, &value, what);
    invalid(without(&running, "test"), "running without test");
    invalid(edited(&running, "event", json!("accepted")), "accepted with a test");
    invalid(edited(&running, "test", json!(0)), "test 0");
    invalid(edited(&running, "status", json!("OK")), "running with a status");
    invalid(edited(&running, "event", json!("started")), "an unknown event");
    invalid(edited(&running, "extra", json!(1)), "another field");
    let finished = edited(&without(&running, "test"), "event", json!("finished"));
    invalid(finished.clone(), "finished without status");
    invalid(edited(&finished, "status", json!("-")), "finished with -");
    contract.assert_valid(
        Kind::Event,
        &edited(&finished, "status", json!("TL")),
        "finished with TL",
    );
}

#[test]
fn dead_letter_headers_without_scrcs_or_with_a_malformed_one_are_invalid() {
    let contract = Contract::load();
    let headers = json!({"scrc-error": "the message is not valid JSON", "scrc-origin": "scripts:2:41",
                         "scrc-runner": "host-1", "scrc-original-size": "5", "trace": null});
    contract.assert_valid(Kind::DeadLetterHeaders, &headers, "the baseline headers");
    let invalid = |value: Value, what: &str| contract.assert_invalid(Kind::DeadLetterHeaders, &value, what);
    invalid(without(&headers, "scrc-error"), "headers without scrc-error");
    invalid(without(&headers, "scrc-origin"), "headers without scrc-origin");
    invalid(
        edited(&headers, "scrc-original-size", json!("12a")),
        "a size that is not a number",
    );
    invalid(
        edited(&headers, "scrc-origin", json!("scripts")),
        "an origin without partition and offset",
    );
}

/// `value` with `field` set to `to`.
fn edited(value: &Value, field: &str, to: Value) -> Value {
    let mut value = value.clone();
    value[field] = to;
    value
}

/// `value` without `field`.
fn without(value: &Value, field: &str) -> Value {
    let mut value = value.clone();
    if let Value::Object(object) = &mut value {
        object.remove(field);
    }
    value
}

/// Which message a README example is, from the fields only that message has. `Err` when no message, or more
/// than one, claims it.
fn classify(value: &Value) -> Result<Kind, String> {
    let Value::Object(object) = value else {
        return Err("a json block that is not an object cannot be a message".into());
    };
    let has = |field: &str| object.contains_key(field);
    let mut claims = Vec::new();
    if has("source") || has("files") {
        claims.push(Kind::Script);
    }
    if object.get("type") == Some(&json!("done")) {
        claims.push(Kind::Done);
    }
    if has("status") && has("timestamp") && !has("event") {
        claims.push(Kind::Result);
    }
    if has("event") {
        claims.push(Kind::Event);
    }
    if object.keys().any(|name| name.starts_with("scrc-")) {
        claims.push(Kind::DeadLetterHeaders);
    }
    match claims[..] {
        [kind] => Ok(kind),
        [] => Err(
            "a json block that is none of the contract's messages (script, done, result, event, dead-letter \
                   headers); make it one, or fence it as something other than json"
                .into(),
        ),
        _ => Err(format!("a json block that could be any of {claims:?}")),
    }
}

/// The fenced blocks whose info string starts with `json`, with the line number of their opening fence.
fn json_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    // Inside a block: its opening line, and its text when it is a json block.
    let mut inside: Option<(usize, Option<String>)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (inside.take(), fence) {
            (None, Some(info)) => {
                let json = info.split_whitespace().next() == Some("json");
                inside = Some((index + 1, json.then(String::new)));
            }
            (None, None) => {}
            (Some((start, text)), Some(_)) => blocks.extend(text.map(|text| (start, text))),
            (Some((start, mut text)), None) => {
                if let Some(text) = &mut text {
                    text.push_str(line);
                    text.push('\n');
                }
                inside = Some((start, text));
            }
        }
    }
    blocks
}

/// The contract's documents, by path under `docs/`.
fn documents(contract: &Contract) -> Vec<(String, &Value)> {
    let mut documents = vec![("asyncapi.yaml".to_owned(), &contract.asyncapi)];
    documents.extend(
        contract
            .schemas
            .iter()
            .map(|(name, schema)| (format!("schemas/{name}"), schema)),
    );
    documents
}

/// Every `$ref` in `value`, with the JSON pointer of the object holding it.
fn refs(value: &Value, at: String) -> Vec<(String, String)> {
    match value {
        Value::Object(object) => object
            .iter()
            .flat_map(|(key, child)| match (key.as_str(), child) {
                ("$ref", Value::String(reference)) => vec![(at.clone(), reference.clone())],
                _ => refs(child, format!("{at}/{}", escape(key))),
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(index, child)| refs(child, format!("{at}/{index}")))
            .collect(),
        _ => Vec::new(),
    }
}

/// The JSON pointers of the (sub)schemas in `schema` that carry an `examples` array.
fn subschemas_with_examples(schema: &Value, at: String) -> Vec<(String, &Value)> {
    let mut found = Vec::new();
    if let Value::Object(object) = schema {
        if object.get("examples").is_some_and(Value::is_array) {
            found.push((at.clone(), schema));
        }
        for (key, child) in object {
            if key != "examples" && key != "enum" && key != "const" {
                found.extend(subschemas_with_examples(child, format!("{at}/{}", escape(key))));
            }
        }
    } else if let Value::Array(items) = schema {
        for (index, child) in items.iter().enumerate() {
            found.extend(subschemas_with_examples(child, format!("{at}/{index}")));
        }
    }
    found
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Resolves `reference`, written in the document at `file` (a path under `docs/`), to the value it points at.
fn resolve<'a>(contract: &'a Contract, file: &str, reference: &str) -> Result<&'a Value, String> {
    let (target, pointer) = reference.split_once('#').unwrap_or((reference, ""));
    let target = if target.is_empty() {
        file.to_owned()
    } else {
        match file.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{target}"),
            None => target.to_owned(),
        }
    };
    let document = if target == "asyncapi.yaml" {
        &contract.asyncapi
    } else {
        let name = target
            .strip_prefix("schemas/")
            .ok_or_else(|| format!("{target} is not a document of the contract"))?;
        contract
            .schemas
            .get(name)
            .ok_or_else(|| format!("docs/{target} does not exist"))?
    };
    document
        .pointer(pointer)
        .ok_or_else(|| format!("docs/{target} has nothing at {pointer:?}"))
}
