//! Parallel branches and Map iterations run concurrently in virtual time, as they do on AWS:
//! a state takes as long as its longest branch (or, for a Map, its lanes at MaxConcurrency),
//! not the sum. AWS: "the Parallel state ... branches are executed in parallel" and "If any
//! branch fails ... the entire Parallel state fails and all of its branches are stopped"
//! (https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html); MaxConcurrency
//! is "the upper bound on the number of Map state iterations that can run in parallel"
//! (https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html).

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use futures::FutureExt;
use serde_json::{Value, json};
use stepdeploy_asl::invoke::{LambdaTasks, LocalFunctions};
use stepdeploy_asl::{Clock, Definition, Engine, Execution, Status, VirtualClock};

fn start() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap()
}

/// Runs `definition` and returns the execution and how many virtual seconds it took.
async fn run(definition: Value, input: Value, functions: impl FnOnce(Arc<VirtualClock>) -> LocalFunctions) -> (Execution, i64) {
    let clock = Arc::new(VirtualClock::starting_at(start()));
    let engine = Engine::new(clock.clone(), Arc::new(LambdaTasks::new(functions(clock.clone()))));
    let definition = Definition::from_value(&definition).unwrap_or_else(|e| panic!("{e}"));
    let execution = engine.run(&definition, input, "test").await;
    (execution, (clock.now() - start()).num_seconds())
}

fn no_functions(_: Arc<VirtualClock>) -> LocalFunctions {
    LocalFunctions::default()
}

fn wait_then(seconds: u64, then: Value) -> Value {
    json!({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": seconds, "Next": "Then"}, "Then": then}})
}

fn parallel(branches: Vec<Value>) -> Value {
    json!({"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "Branches": branches, "End": true}}})
}

#[tokio::test]
async fn a_parallel_takes_as_long_as_its_longest_branch() {
    let pass = json!({"Type": "Pass", "End": true});
    let (execution, seconds) = run(parallel(vec![wait_then(60, pass.clone()), wait_then(45, pass)]), json!({"x": 1}), no_functions).await;
    assert_eq!(execution.status, Status::Succeeded, "{:?}", execution.cause);
    assert_eq!(execution.output, Some(json!([{"x": 1}, {"x": 1}])));
    assert_eq!(seconds, 60, "max(60, 45), not 60 + 45");
}

#[tokio::test]
async fn branch_events_interleave_in_time_and_stay_numbered_in_order() {
    // A: Pass at 10 s and at 30 s; B: Pass at 15 s. AWS's history is in time order.
    let branch_a = json!({"StartAt": "W1", "States": {
        "W1": {"Type": "Wait", "Seconds": 10, "Next": "A1"},
        "A1": {"Type": "Pass", "Next": "W2"},
        "W2": {"Type": "Wait", "Seconds": 20, "Next": "A2"},
        "A2": {"Type": "Pass", "End": true}}});
    let branch_b = wait_then(15, json!({"Type": "Pass", "End": true}));
    let (execution, seconds) = run(parallel(vec![branch_a, branch_b]), json!({}), no_functions).await;
    assert_eq!(seconds, 30);
    let passes: Vec<(String, i64)> = execution
        .history
        .iter()
        .filter(|e| e.kind == "PassStateEntered")
        .map(|e| (e.state.as_deref().unwrap_or("").to_string(), (e.timestamp - start()).num_seconds()))
        .collect();
    assert_eq!(passes, vec![("A1".into(), 10), ("Then".into(), 15), ("A2".into(), 30)]);
    let ids: Vec<u64> = execution.history.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=execution.history.len() as u64).collect::<Vec<_>>());
    assert!(execution.history.windows(2).all(|w| w[0].timestamp <= w[1].timestamp), "history out of time order");
}

#[tokio::test]
async fn the_first_branch_to_fail_in_time_fails_the_parallel_with_its_own_error_then() {
    let slow = wait_then(60, json!({"Type": "Fail", "Error": "Slow", "Cause": "after a minute"}));
    let fast = wait_then(10, json!({"Type": "Fail", "Error": "Fast", "Cause": "after ten seconds"}));
    let (execution, seconds) = run(parallel(vec![slow, fast]), json!({}), no_functions).await;
    assert_eq!(execution.status, Status::Failed);
    assert_eq!((execution.error.as_deref(), execution.cause.as_deref()), (Some("Fast"), Some("after ten seconds")));
    assert_eq!(seconds, 10, "the other branch is stopped when one fails");
    let late: Vec<&str> = execution.history.iter().filter(|e| (e.timestamp - start()).num_seconds() > 10).map(|e| e.kind).collect();
    assert!(late.is_empty(), "events after the failure: {late:?}");
    assert!(execution.history.iter().any(|e| e.kind == "ParallelStateFailed"));
}

fn map_of_waits(seconds: u64, concurrency: Value) -> Value {
    json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "MaxConcurrency": concurrency,
        "ItemProcessor": {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": seconds, "End": true}}},
        "End": true}}})
}

#[tokio::test]
async fn a_map_runs_max_concurrency_iterations_at_a_time() {
    let items = json!([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // 10 iterations of 10 s: 2 at a time is 5 rounds; unlimited (0) is one round; 3 at a time is 4.
    for (concurrency, expected) in [(2, 50), (0, 10), (3, 40), (1, 100)] {
        let (execution, seconds) = run(map_of_waits(10, json!(concurrency)), items.clone(), no_functions).await;
        assert_eq!(execution.output, Some(items.clone()), "MaxConcurrency {concurrency}");
        assert_eq!(seconds, expected, "MaxConcurrency {concurrency}");
    }
}

#[tokio::test]
async fn max_concurrency_path_sets_the_lanes_too() {
    let definition = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$.lanes",
        "ItemProcessor": {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 7, "End": true}}},
        "End": true}}});
    let (_, seconds) = run(definition, json!({"items": [1, 2, 3, 4, 5, 6], "lanes": 4}), no_functions).await;
    assert_eq!(seconds, 14, "6 iterations, 4 at a time: two rounds of 7 s");
}

#[tokio::test]
async fn lambda_tasks_in_iterations_overlap_too() {
    let definition = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "MaxConcurrency": 5,
        "ItemProcessor": {"StartAt": "Call", "States": {"Call": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "slow", "Payload.$": "$"}, "OutputPath": "$.Payload", "End": true}}},
        "End": true}}});
    let functions = |clock: Arc<VirtualClock>| {
        LocalFunctions::default().with(
            "slow",
            Arc::new(move |payload| {
                let clock = clock.clone();
                async move {
                    clock.sleep(Duration::from_secs(100)).await;
                    Ok(payload)
                }
                .boxed()
            }),
        )
    };
    let (execution, seconds) = run(definition, json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), functions).await;
    assert_eq!(execution.output, Some(json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])), "{:?}", execution.cause);
    assert_eq!(seconds, 200, "10 calls of 100 s, 5 at a time");
}

#[tokio::test]
async fn a_failing_iteration_fails_the_map_at_its_time_and_later_iterations_never_start() {
    // One lane: item 0 takes 10 s, item 1 fails at 20 s, item 2 would start at 20 s.
    let definition = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "MaxConcurrency": 1,
        "ItemProcessor": {"StartAt": "Wait", "States": {
            "Wait": {"Type": "Wait", "Seconds": 10, "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 1, "Next": "Bad"}], "Default": "Good"},
            "Bad": {"Type": "Fail", "Error": "BadItem", "Cause": "item 1"},
            "Good": {"Type": "Pass", "End": true}}},
        "End": true}}});
    let (execution, seconds) = run(definition, json!([0, 1, 2]), no_functions).await;
    assert_eq!(execution.error.as_deref(), Some("BadItem"));
    assert_eq!(seconds, 20);
    let started = execution.history.iter().filter(|e| e.kind == "MapIterationStarted").count();
    assert_eq!(started, 2, "item 2 never starts");
    assert!(execution.history.iter().any(|e| e.kind == "MapStateFailed"));
}

#[tokio::test]
async fn a_tolerant_map_runs_every_iteration_concurrently_and_counts_failures() {
    let definition = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ToleratedFailureCount": 1,
        "ItemProcessor": {"StartAt": "Wait", "States": {
            "Wait": {"Type": "Wait", "SecondsPath": "$", "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 5, "Next": "Bad"}], "Default": "Good"},
            "Bad": {"Type": "Fail", "Error": "Five", "Cause": "five"},
            "Good": {"Type": "Pass", "End": true}}},
        "End": true}}});
    let (execution, seconds) = run(definition, json!([30, 5, 20]), no_functions).await;
    assert_eq!(execution.output, Some(json!([30, {"Error": "Five", "Cause": "five"}, 20])), "{:?}", execution.cause);
    assert_eq!(seconds, 30);
}

#[tokio::test]
async fn a_jsonata_map_runs_max_concurrency_iterations_at_a_time_too() {
    let definition = |concurrency: Value| {
        json!({"QueryLanguage": "JSONata", "StartAt": "Each", "States": {"Each": {
            "Type": "Map", "Items": "{% $states.input.items %}", "MaxConcurrency": concurrency,
            "ItemProcessor": {"StartAt": "Wait", "States": {
                "Wait": {"Type": "Wait", "Seconds": 10, "Next": "Check"},
                "Check": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input = 99 %}", "Next": "Bad"}], "Default": "Good"},
                "Bad": {"Type": "Fail", "Error": "NinetyNine", "Cause": "item 99"},
                "Good": {"Type": "Pass", "End": true}}},
            "End": true}}})
    };
    let items = json!({"items": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]});
    let (execution, seconds) = run(definition(json!(2)), items.clone(), no_functions).await;
    assert_eq!(execution.output, Some(items["items"].clone()), "{:?}", execution.cause);
    assert_eq!(seconds, 50, "10 iterations of 10 s, 2 at a time");
    let (_, seconds) = run(definition(json!("{% 5 %}")), items, no_functions).await;
    assert_eq!(seconds, 20, "MaxConcurrency as a JSONata expression");
    // One lane: item 99 fails at 20 s; the third never starts.
    let (execution, seconds) = run(definition(json!(1)), json!({"items": [0, 99, 2]}), no_functions).await;
    assert_eq!((execution.error.as_deref(), seconds), (Some("NinetyNine"), 20));
    assert_eq!(execution.history.iter().filter(|e| e.kind == "MapIterationStarted").count(), 2);
}
