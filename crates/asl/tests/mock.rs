//! Mocked runs in AWS Step Functions Local's mock configuration format.
//!
//! `fixtures/mock/` holds the example of AWS's documentation of the format
//! (sfn-local-mock-cfg-file: its `MockConfigFile.json` as published, and the
//! `LambdaSQSIntegration` state machine of sfn-local-test-sm-exec, rewritten).

use std::sync::Arc;

use serde_json::{Value, json};
use stepdeploy_asl::mock::MockConfig;
use stepdeploy_asl::{Definition, Engine, Execution, NoTasks, Status, VirtualClock};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/mock/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn run_case(config: &str, machine: &str, definition: &Value, case: &str, input: Value) -> Result<(Execution, i64), String> {
    let definition = Definition::from_value(definition).map_err(|e| e.to_string())?;
    let config = MockConfig::parse(config)?;
    let tasks = config.test_case(machine, case, definition.machine(), Arc::new(NoTasks))?;
    let start = chrono::Utc::now();
    let clock = Arc::new(VirtualClock::starting_at(start));
    let engine = Engine::new(clock.clone(), Arc::new(tasks));
    let execution = engine.run(&definition, input, "mocked").await;
    let elapsed = (stepdeploy_asl::Clock::now(clock.as_ref()) - start).num_seconds();
    Ok((execution, elapsed))
}

fn scheduled(execution: &Execution, state: &str) -> usize {
    let mut current = None;
    let mut n = 0;
    for event in &execution.history {
        if event.kind == "TaskStateEntered" {
            current = event.state.as_deref().map(str::to_string);
        }
        if event.kind == "TaskScheduled" && current.as_deref() == Some(state) {
            n += 1;
        }
    }
    n
}

fn doc_definition() -> Value {
    serde_json::from_str(&fixture("LambdaSQSIntegration.asl.json")).unwrap()
}

#[tokio::test]
async fn the_documentations_happy_path_returns_the_mocked_responses() {
    let (execution, _) =
        run_case(&fixture("MockConfigFile.json"), "LambdaSQSIntegration", &doc_definition(), "HappyPath", json!({"a": 1})).await.unwrap();
    assert_eq!(execution.status, Status::Succeeded, "{:?}", execution.cause);
    assert_eq!(
        execution.output,
        Some(json!({"MD5OfMessageBody": "3bcb6e8e-7h85-4375-b0bc-1a59812c6e51", "MessageId": "3bcb6e8e-8b51-4375-b0bc-1a59812c6e51"}))
    );
    assert_eq!((scheduled(&execution, "LambdaState"), scheduled(&execution, "SQSState")), (1, 1));
}

#[tokio::test]
async fn the_documentations_retry_path_throws_by_invocation_index_and_the_retrier_runs() {
    // Invocation 0 throws ResourceNotReady, 1-2 throw Timeout, 3 returns: three retries, backing off 2, 4 and 8 s.
    let (execution, elapsed) =
        run_case(&fixture("MockConfigFile.json"), "LambdaSQSIntegration", &doc_definition(), "RetryPath", json!({})).await.unwrap();
    assert_eq!(execution.status, Status::Succeeded, "{:?}", execution.cause);
    assert_eq!(scheduled(&execution, "LambdaState"), 4);
    assert_eq!(elapsed, 2 + 4 + 8, "the retries' back-off ran on the virtual clock");
    let failed: Vec<&str> = execution.history.iter().filter(|e| e.kind == "TaskFailed").filter_map(|e| e.details["error"].as_str()).collect();
    assert_eq!(failed, ["Lambda.ResourceNotReadyException", "Lambda.TimeoutException", "Lambda.TimeoutException"]);
}

#[tokio::test]
async fn the_documentations_hybrid_path_sends_unmocked_states_to_the_invoker_underneath() {
    let (execution, _) = run_case(&fixture("MockConfigFile.json"), "LambdaSQSIntegration", &doc_definition(), "HybridPath", json!({})).await.unwrap();
    assert_eq!(execution.error.as_deref(), Some(stepdeploy_asl::NO_TASK_HANDLER), "the SQS state reached the (empty) invoker underneath");
    assert!(execution.cause.clone().unwrap_or_default().contains("arn:aws:states:::sqs:sendMessage"));
    assert_eq!(scheduled(&execution, "LambdaState"), 1);
}

#[tokio::test]
async fn a_failure_path_exhausts_the_retrier_and_is_caught_with_the_mocked_error_and_result_path() {
    let config = json!({
        "StateMachines": {"Deploy": {"TestCases": {"MigrationKeepsFailing": {"Migrate": "Fails"}}}},
        "MockedResponses": {"Fails": {"0-3": {"Throw": {"Error": "StepDeploy.CommandFailed", "Cause": "exit 3"}}}}
    });
    let definition = json!({"StartAt": "Migrate", "States": {
        "Migrate": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:command",
            "Retry": [{"ErrorEquals": ["StepDeploy.CommandFailed"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}],
            "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Failed"}], "End": true},
        "Failed": {"Type": "Pass", "End": true}
    }});
    let (execution, elapsed) =
        run_case(&config.to_string(), "Deploy", &definition, "MigrationKeepsFailing", json!({"env": "staging"})).await.unwrap();
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(execution.output, Some(json!({"env": "staging", "error": {"Error": "StepDeploy.CommandFailed", "Cause": "exit 3"}})));
    assert_eq!((scheduled(&execution, "Migrate"), elapsed), (3, 2), "one call and two retries, a second apart");
}

#[tokio::test]
async fn a_mocked_result_goes_through_result_selector_and_result_path() {
    let config = json!({
        "StateMachines": {"M": {"TestCases": {"T": {"Call": "Answer"}}}},
        "MockedResponses": {"Answer": {"0": {"Return": {"Payload": {"version": 7}, "StatusCode": 200}}}}
    });
    let definition = json!({"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "f"}, "ResultSelector": {"version.$": "$.Payload.version"}, "ResultPath": "$.got", "End": true}}});
    let (execution, _) = run_case(&config.to_string(), "M", &definition, "T", json!({"keep": true})).await.unwrap();
    assert_eq!(execution.output, Some(json!({"keep": true, "got": {"version": 7}})));
}

#[tokio::test]
async fn unknown_names_and_bad_entries_are_clear_errors_naming_them() {
    let config = fixture("MockConfigFile.json");
    let definition = doc_definition();
    let error = |machine: &'static str, case: &'static str| {
        let (config, definition) = (config.clone(), definition.clone());
        async move { run_case(&config, machine, &definition, case, json!({})).await.err().unwrap_or_default() }
    };
    let unknown_case = error("LambdaSQSIntegration", "SadPath").await;
    assert!(unknown_case.contains("\"SadPath\"") && unknown_case.contains("HappyPath, HybridPath, RetryPath"), "{unknown_case}");
    let unknown_machine = error("Other", "HappyPath").await;
    assert!(unknown_machine.contains("\"Other\"") && unknown_machine.contains("LambdaSQSIntegration"), "{unknown_machine}");

    let bad_state = json!({"StateMachines": {"LambdaSQSIntegration": {"TestCases": {"T": {"NoSuchState": "R"}}}}, "MockedResponses": {"R": {"0": {"Return": 1}}}});
    let message = run_case(&bad_state.to_string(), "LambdaSQSIntegration", &definition, "T", json!({})).await.err().unwrap_or_default();
    assert!(message.contains("\"NoSuchState\" is not a Task state") && message.contains("LambdaState, SQSState"), "{message}");
    for (config, expected) in [
        (json!({"StateMachines": {}, "MockedResponses": {"R": {"x": {"Return": 1}}}}), "MockedResponses.R.x: \"x\" is not an invocation index"),
        (json!({"StateMachines": {}, "MockedResponses": {"R": {"0": {"Return": 1, "Throw": {"Error": "E"}}}}}), "exactly one of Return and Throw"),
        (json!({"StateMachines": {}, "MockedResponses": {"R": {"0-2": {"Return": 1}, "1": {"Return": 2}}}}), "overlap"),
        (json!({"StateMachines": {"M": {"TestCases": {"T": {"S": "Missing"}}}}, "MockedResponses": {}}), "\"Missing\" is not in MockedResponses"),
    ] {
        let message = MockConfig::parse(&config.to_string()).err().unwrap_or_default();
        assert!(message.contains(expected), "{expected}: {message}");
    }
}
