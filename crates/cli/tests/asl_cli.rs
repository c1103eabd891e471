//! `stepdeploy asl run` and `asl validate`, run as an operator would.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn stepdeploy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stepdeploy")).args(args).output().expect("stepdeploy runs")
}

fn write(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

fn last_json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "exactly one line: {stdout}");
    serde_json::from_str(stdout.trim()).unwrap()
}

#[test]
fn run_prints_one_json_object_and_exits_by_status() {
    let dir = tempfile::tempdir().unwrap();
    let ok = write(
        dir.path(),
        "ok.asl.json",
        &json!({"StartAt": "Wait", "States": {
            "Wait": {"Type": "Wait", "Seconds": 86400, "Next": "Greet"},
            "Greet": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('hello {}', $.name)"}, "End": true}
        }}),
    );
    let out = stepdeploy(&["asl", "run", &ok, "--input", r#"{"name": "ops"}"#, "--virtual-time", "--output", "json"]);
    assert!(out.status.success());
    // Events: ExecutionStarted, Wait entered and exited, Pass entered and exited, ExecutionSucceeded.
    // The largest payload is the Pass state's output event, {"greeting":"hello ops"}.
    let expected_payload = r#"{"greeting":"hello ops"}"#.len();
    assert_eq!(
        last_json(&out),
        json!({"status": "SUCCEEDED", "output": {"greeting": "hello ops"}, "error": null, "cause": null, "transitions": 2, "history_events": 6, "max_payload_bytes": expected_payload})
    );

    let fail =
        write(dir.path(), "fail.asl.json", &json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Deploy.Failed", "Cause": "no"}}}));
    let out = stepdeploy(&["asl", "run", &fail, "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let result = last_json(&out);
    assert_eq!((result["status"].as_str(), result["error"].as_str(), result["cause"].as_str()), (Some("FAILED"), Some("Deploy.Failed"), Some("no")));
}

#[test]
fn input_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let def = write(dir.path(), "d.asl.json", &json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}));
    let input = write(dir.path(), "input.json", &json!({"environment": "staging"}));
    let out = stepdeploy(&["asl", "run", &def, "--input-file", &input, "--output", "json"]);
    assert_eq!(last_json(&out)["output"], json!({"environment": "staging"}));
}

#[test]
fn an_invalid_definition_or_input_exits_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.asl.json", &json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}));
    let out = stepdeploy(&["asl", "run", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("States.A: refers to \"B\", which is not a state"));

    let good = write(dir.path(), "good.asl.json", &json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}));
    let out = stepdeploy(&["asl", "run", &good, "--input", "{not json", "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--input: not valid JSON"));
    assert_eq!(last_json(&out)["status"], "INVALID");

    let out = stepdeploy(&["asl", "validate", &good, &bad]);
    assert_eq!(out.status.code(), Some(2));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("good.asl.json: ok (1 states)") && report.contains("bad.asl.json: 1 problem(s)"), "{report}");
    let out = stepdeploy(&["asl", "validate", &good, &bad, "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let report = last_json(&out);
    assert_eq!(report["valid"], false);
    assert_eq!((report["files"][0]["ok"].as_bool(), report["files"][1]["ok"].as_bool()), (Some(true), Some(false)));
    assert!(report["files"][1]["error"].as_str().unwrap().contains("refers to \"B\""));
}

#[test]
fn validate_accepts_definition_substitution_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let def = dir.path().join("t.asl.json");
    std::fs::write(&def, r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "${PrepareFunctionArn}", "End": true}}}"#).unwrap();
    let out = stepdeploy(&["asl", "validate", def.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn run_with_a_mock_config_answers_tasks_from_its_test_case() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../asl/tests/fixtures/mock");
    let definition = format!("{fixtures}/LambdaSQSIntegration.asl.json");
    let config = format!("{fixtures}/MockConfigFile.json");
    // The state machine's name defaults to the definition file's stem.
    let out = stepdeploy(&["asl", "run", &definition, "--mock-config", &config, "--test-case", "RetryPath", "--virtual-time", "--output", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(last_json(&out)["output"]["MessageId"], "3bcb6e8e-8b51-4375-b0bc-1a59812c6e51");

    let out = stepdeploy(&["asl", "run", &definition, "--mock-config", &config, "--test-case", "SadPath", "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let cause = last_json(&out)["cause"].as_str().unwrap_or_default().to_string();
    assert!(cause.contains("test case \"SadPath\" is not a test case of LambdaSQSIntegration"), "{cause}");
    let out =
        stepdeploy(&["asl", "run", &definition, "--mock-config", &config, "--test-case", "HappyPath", "--state-machine", "Nope", "--output", "json"]);
    assert!(last_json(&out)["cause"].as_str().unwrap_or_default().contains("state machine \"Nope\""));
    // --test-case without --mock-config is refused by the argument parser.
    assert_eq!(stepdeploy(&["asl", "run", &definition, "--test-case", "HappyPath"]).status.code(), Some(2));
}

#[test]
fn task_tokens_are_answered_by_the_task_token_flag_on_the_engines_clock() {
    let dir = tempfile::tempdir().unwrap();
    let definition = write(
        dir.path(),
        "approve.asl.json",
        &json!({"StartAt": "Approve", "States": {
            "Approve": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
                        "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:approvals", "Message.$": "$$.Task.Token"},
                        "TimeoutSeconds": 3600, "End": true}}}),
    );
    let out = stepdeploy(&[
        "asl",
        "run",
        &definition,
        "--virtual-time",
        "--task-token",
        "success:{\"approved\":true}",
        "--task-token-after",
        "120",
        "--output",
        "json",
    ]);
    assert_eq!((out.status.code(), last_json(&out)["output"].clone()), (Some(0), json!({"approved": true})));
    let out = stepdeploy(&["asl", "run", &definition, "--virtual-time", "--task-token", "failure:Rejected:too many 5xx", "--output", "json"]);
    let result = last_json(&out);
    assert_eq!((out.status.code(), result["error"].as_str(), result["cause"].as_str()), (Some(1), Some("Rejected"), Some("too many 5xx")));
    // Unanswered: the Task's TimeoutSeconds ends the wait (the publish has no handler either).
    let out = stepdeploy(&["asl", "run", &definition, "--virtual-time", "--task-token", "success", "--task-token-after", "7200", "--output", "json"]);
    assert_eq!(last_json(&out)["error"], "States.Timeout");
    let out = stepdeploy(&["asl", "run", &definition, "--task-token", "maybe"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--task-token: \"maybe\" is not an answer"));
}
