//! The engine with tasks, time, validation and the HTTP invoker.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::TimeZone;
use futures::FutureExt;
use serde_json::{Value, json};
use stepdeploy_asl::invoke::{FunctionError, Handler, HttpFunctions, LambdaTasks, LocalFunctions};
use stepdeploy_asl::{Clock, Definition, DefinitionError, Engine, Execution, NoTasks, Status, VirtualClock};

fn start() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap()
}

fn handler(f: impl Fn(Value) -> Result<Value, FunctionError> + Send + Sync + 'static) -> Handler {
    let f = Arc::new(f);
    Arc::new(move |payload| {
        let f = f.clone();
        async move { f(payload) }.boxed()
    })
}

/// A handler that takes `seconds` of (virtual) time.
fn sleeping_handler(clock: Arc<VirtualClock>, seconds: u64) -> Handler {
    Arc::new(move |_| {
        let clock = clock.clone();
        async move {
            clock.sleep(Duration::from_secs(seconds)).await;
            Ok(json!({}))
        }
        .boxed()
    })
}

async fn run(definition: Value, input: Value, functions: LocalFunctions) -> (Execution, Arc<VirtualClock>) {
    let clock = Arc::new(VirtualClock::starting_at(start()));
    let engine = Engine::new(clock.clone(), Arc::new(LambdaTasks::new(functions)));
    let definition = Definition::from_value(&definition).unwrap_or_else(|e| panic!("{e}"));
    (engine.run(&definition, input, "test").await, clock)
}

#[tokio::test]
async fn lambda_invoke_returns_the_payload_shape_aws_returns() {
    let functions = LocalFunctions::default().with("double", handler(|p| Ok(json!({"n": p["n"].as_i64().unwrap_or(0) * 2}))));
    let definition = json!({
        "StartAt": "Call",
        "States": {"Call": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:double", "Payload.$": "$"},
            "ResultSelector": {"n.$": "$.Payload.n", "status.$": "$.StatusCode"},
            "End": true
        }}
    });
    let (execution, _) = run(definition, json!({"n": 21}), functions).await;
    assert_eq!(execution.status, Status::Succeeded, "{execution:?}");
    assert_eq!(execution.output, Some(json!({"n": 42, "status": 200})));
    let kinds: Vec<&str> = execution.history.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        ["ExecutionStarted", "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited", "ExecutionSucceeded"]
    );
    assert_eq!(execution.transitions, 1);
}

#[tokio::test]
async fn a_function_error_is_retried_with_backoff_in_virtual_time_then_caught() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let functions = LocalFunctions::default().with(
        "flaky",
        handler(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Err(FunctionError::new("Deploy.Throttled", "slow down"))
        }),
    );
    let definition = json!({
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:flaky",
                "Retry": [{"ErrorEquals": ["Deploy.Throttled"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2.0}],
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Recover"}],
                "End": true
            },
            "Recover": {"Type": "Pass", "End": true}
        }
    });
    let (execution, clock) = run(definition, json!({"keep": 1}), functions).await;
    assert_eq!(calls.load(Ordering::SeqCst), 4, "one call and three retries");
    assert_eq!(clock.now() - start(), chrono::Duration::seconds(2 + 4 + 8), "delays of 2, 4 and 8 s passed in virtual time");
    let output = execution.output.unwrap();
    assert_eq!(output["keep"], 1);
    assert_eq!(output["error"]["Error"], "Deploy.Throttled");
    let cause: Value = serde_json::from_str(output["error"]["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause, json!({"errorMessage": "slow down", "errorType": "Deploy.Throttled"}));
}

#[tokio::test]
async fn a_task_past_its_timeout_fails_with_states_timeout_which_task_failed_does_not_catch() {
    let clock = Arc::new(VirtualClock::starting_at(start()));
    let slow = sleeping_handler(clock.clone(), 30);
    let engine = Engine::new(clock, Arc::new(LambdaTasks::new(LocalFunctions::default().with("slow", slow))));
    let definition = Definition::from_value(&json!({
        "StartAt": "Call",
        "States": {"Call": {
            "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:slow", "TimeoutSeconds": 10,
            "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}], "End": true
        }, "Caught": {"Type": "Succeed"}}
    }))
    .unwrap();
    let execution = engine.run(&definition, json!({}), "t").await;
    assert_eq!((execution.status, execution.error.as_deref()), (Status::Failed, Some("States.Timeout")));
}

#[tokio::test]
async fn waits_pass_in_virtual_time_and_stamp_the_context() {
    let definition = json!({
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "Seconds": 3600, "Next": "Stamp"},
            "Stamp": {"Type": "Pass", "Parameters": {"entered.$": "$$.State.EnteredTime", "started.$": "$$.Execution.StartTime"}, "End": true}
        }
    });
    let (execution, clock) = run(definition, json!({}), LocalFunctions::default()).await;
    assert_eq!(clock.now() - start(), chrono::Duration::hours(1));
    assert_eq!(execution.output, Some(json!({"entered": "2026-01-01T01:00:00.000Z", "started": "2026-01-01T00:00:00.000Z"})));
}

#[tokio::test]
async fn definition_substitutions_fill_in_resources() {
    let text = r#"{"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": "${EchoArn}", "End": true}}}"#;
    let subs = HashMap::from([("EchoArn".to_string(), "arn:aws:lambda:us-east-1:1:function:echo".to_string())]);
    let definition = Definition::parse(text, &subs).unwrap();
    let engine =
        Engine::new(Arc::new(VirtualClock::starting_at(start())), Arc::new(LambdaTasks::new(LocalFunctions::default().with("echo", handler(Ok)))));
    assert_eq!(engine.run(&definition, json!({"a": 1}), "t").await.output, Some(json!({"a": 1})));
    assert_eq!(Definition::parse(text, &HashMap::new()).unwrap_err(), DefinitionError::Substitution("EchoArn".into()));
}

#[tokio::test]
async fn a_task_without_a_handler_fails_clearly() {
    let engine = Engine::new(Arc::new(VirtualClock::starting_at(start())), Arc::new(NoTasks));
    let definition = Definition::from_value(
        &json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:x", "End": true}}}),
    )
    .unwrap();
    let execution = engine.run(&definition, json!({}), "t").await;
    assert_eq!(execution.error.as_deref(), Some(stepdeploy_asl::NO_TASK_HANDLER));
    assert!(execution.cause.unwrap().contains("function:x"));
}

#[test]
fn validation_reports_every_problem_with_its_state() {
    let definition = json!({
        "StartAt": "First",
        "States": {
            "First": {"Type": "Pass", "Next": "Nowhere"},
            "Orphan": {"Type": "Pass", "End": true},
            "Loop": {"Type": "Wait", "Seconds": 1},
            "Picky": {"Type": "Map", "MaxConcurrency": "1", "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Y"}}}, "End": true},
            "Typo": {"Type": "Pass", "Resultt": 1, "End": true},
            "Calls": {"Type": "Pass", "Parameters": {"a.$": "States.MathAdd(1)", "b": {"c.$": "no-dollar"}}, "End": true},
            "Slow": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "TimeoutSeconds": 5, "HeartbeatSeconds": 10, "End": true}
        }
    });
    let Err(DefinitionError::Invalid(problems)) = Definition::from_value(&definition) else { panic!("should be invalid") };
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let has = |needle: &str| text.iter().any(|t| t.contains(needle));
    assert!(has("States.First: refers to \"Nowhere\", which is not a state"), "{text:#?}");
    assert!(has("States.Orphan: is unreachable from StartAt"), "{text:#?}");
    assert!(has("States.Loop: has neither Next nor End"), "{text:#?}");
    assert!(has("States.Picky.ItemProcessor.States.X: refers to \"Y\""), "{text:#?}");
    assert!(has("States.Typo.Resultt: is not a field of a Pass state"), "{text:#?}");
    assert!(
        has("States.Calls.Parameters.a.$: \"States.MathAdd(1)\" is not a valid intrinsic function call: States.MathAdd takes 2 argument(s), got 1"),
        "{text:#?}"
    );
    assert!(has("States.Calls.Parameters.b.c.$: \"no-dollar\" is not a valid path"), "{text:#?}");
    assert!(has("States.Slow.HeartbeatSeconds: 10 must be below TimeoutSeconds (5)"), "{text:#?}");
}

/// A stand-in for `cargo lambda watch`: one connection per request, HTTP/1.1.
async fn fake_lambda_endpoint() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 65536];
                let mut read = 0;
                loop {
                    let n = socket.read(&mut buffer[read..]).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    read += n;
                    let text = String::from_utf8_lossy(&buffer[..read]).to_string();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length: usize = text
                            .lines()
                            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                            .unwrap_or(0);
                        if read >= head_end + 4 + length {
                            let path = text.split_whitespace().nth(1).unwrap_or_default().to_string();
                            let (status, body) = if path.contains("/functions/fails/") {
                                ("500 Internal Server Error", FAILS_DOCUMENT.to_string())
                            } else {
                                ("200 OK", text[head_end + 4..head_end + 4 + length].to_string())
                            };
                            let answer = format!(
                                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = socket.write_all(answer.as_bytes()).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

/// What the fake function `fails` returns: keys in its own order, and a stackTrace.
const FAILS_DOCUMENT: &str = r#"{"errorType":"Deploy.Failed","errorMessage":"migration exited 3","stackTrace":["at migrate (migrate.rs:42)"]}"#;

#[tokio::test]
async fn the_http_invoker_drives_a_lambda_invoke_endpoint() {
    let endpoint = fake_lambda_endpoint().await;
    let engine = Engine::new(Arc::new(VirtualClock::starting_at(start())), Arc::new(LambdaTasks::new(HttpFunctions::new(&endpoint))));
    let definition = Definition::from_value(&json!({
        "StartAt": "Echo",
        "States": {
            "Echo": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:echo", "Next": "Fail"},
            "Fail": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "fails", "Payload.$": "$"}, "End": true}
        }
    }))
    .unwrap();
    let execution = engine.run(&definition, json!({"revision": "abc123"}), "t").await;
    assert_eq!(execution.error.as_deref(), Some("Deploy.Failed"), "{execution:?}");
    // The function's error document is the Cause, unchanged: same keys, same order, its stackTrace kept.
    assert_eq!(execution.cause.as_deref(), Some(FAILS_DOCUMENT));
    let echoed = execution.history.iter().find(|e| e.kind == "TaskSucceeded").unwrap();
    assert_eq!(echoed.details["output"], json!({"revision": "abc123"}));

    let closed = Engine::new(Arc::new(VirtualClock::starting_at(start())), Arc::new(LambdaTasks::new(HttpFunctions::new("http://127.0.0.1:9"))));
    let execution = closed.run(&definition, json!({}), "t").await;
    assert_eq!(execution.error.as_deref(), Some("Lambda.SdkClientException"));
}

mod parsers_never_panic {
    use proptest::prelude::*;
    use stepdeploy_asl::{intrinsics, path::Path};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn paths(text in "\\$[\\$a-z0-9.\\[\\]'\"*?@(),:<>=!&| -]{0,24}") {
            let _ = Path::parse(&text);
        }

        #[test]
        fn intrinsic_calls(text in "States\\.[A-Za-z]{0,12}\\([\\$a-z0-9.,'\\\\{}() -]{0,30}") {
            let _ = intrinsics::parse(&text);
        }

        /// Definitions that are valid by construction: the engine runs each to an end without
        /// panicking, within the history quota, one transition per state entered, and the output
        /// of a Succeed is what the last Pass made of the input.
        #[test]
        fn valid_definitions_run_to_an_end(kinds in prop::collection::vec(0u8..4, 1..12), n in 0i64..20) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let count = kinds.len();
            let mut states = serde_json::Map::new();
            for (i, kind) in kinds.iter().enumerate() {
                let name = format!("S{i}");
                let next = if i + 1 < count { serde_json::json!({"Next": format!("S{}", i + 1)}) } else { serde_json::json!({"End": true}) };
                let mut state = match kind {
                    0 => serde_json::json!({"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}}),
                    1 => serde_json::json!({"Type": "Wait", "Seconds": 5}),
                    // A Choice only jumps forward, to the last state, or falls through to the next.
                    2 if i + 1 < count => serde_json::json!({"Type": "Choice",
                        "Choices": [{"Variable": "$.n", "NumericGreaterThan": 10, "Next": format!("S{}", count - 1)}],
                        "Default": format!("S{}", i + 1)}),
                    _ => serde_json::json!({"Type": "Pass"}),
                };
                if state["Type"] != "Choice" {
                    for (k, v) in next.as_object().unwrap() {
                        state[k] = v.clone();
                    }
                }
                states.insert(name, state);
            }
            let definition = serde_json::json!({"StartAt": "S0", "States": states});
            let parsed = stepdeploy_asl::Definition::from_value(&definition);
            prop_assert!(parsed.is_ok(), "{definition}: {:?}", parsed.err().map(|e| e.to_string()));
            let clock = std::sync::Arc::new(stepdeploy_asl::VirtualClock::starting_at(chrono::Utc::now()));
            let engine = stepdeploy_asl::Engine::new(clock, std::sync::Arc::new(stepdeploy_asl::NoTasks));
            let execution = runtime.block_on(engine.run(&parsed.unwrap(), serde_json::json!({"n": n}), "p"));
            prop_assert_eq!(execution.status, stepdeploy_asl::Status::Succeeded, "{}: {:?}", definition, execution.cause);
            let entered = execution.history.iter().filter(|e| e.kind.ends_with("StateEntered")).count() as u64;
            prop_assert_eq!(execution.transitions, entered);
            prop_assert!(execution.history.len() <= stepdeploy_asl::limits::HISTORY_EVENTS_QUOTA);
            // Every Pass on the path added one to n: the output's n is the input's plus those passes.
            let passes_run = execution.history.iter().filter(|e| e.kind == "PassStateEntered")
                .filter(|e| e.state.as_deref().is_some_and(|s| kinds[s[1..].parse::<usize>().unwrap()] == 0)).count() as i64;
            prop_assert_eq!(execution.output.as_ref().and_then(|o| o["n"].as_i64()), Some(n + passes_run));
        }

        #[test]
        fn definitions(value in "\\{\"StartAt\": ?\"[A-Z]\", ?\"States\": ?\\{[{}\\[\\]\",:a-zA-Z0-9$. ]{0,80}") {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&value) {
                let _ = stepdeploy_asl::Definition::from_value(&json);
            }
        }
    }
}

#[tokio::test]
async fn jsonata_tasks_see_their_result_and_catchers_their_error_output() {
    let functions = LocalFunctions::default()
        .with("double", handler(|p| Ok(json!({"n": p["n"].as_i64().unwrap_or(0) * 2}))))
        .with("fails", handler(|_| Err(FunctionError::new("Deploy.Failed", "exit 3"))));
    let definition = json!({
        "QueryLanguage": "JSONata",
        "StartAt": "Double",
        "States": {
            "Double": {
                "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:double",
                "Arguments": {"n": "{% $states.input.value %}"},
                "Assign": {"doubled": "{% $states.result.n %}"},
                "Output": {"was": "{% $states.input.value %}", "now": "{% $states.result.n %}"},
                "Next": "Fail"
            },
            "Fail": {
                "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:fails",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Output": {"error": "{% $states.errorOutput.Error %}", "doubled": "{% $doubled %}"}, "Next": "Done"}],
                "End": true
            },
            "Done": {"Type": "Succeed"}
        }
    });
    let (execution, _) = run(definition, json!({"value": 21}), functions).await;
    assert_eq!(execution.status, Status::Succeeded, "{execution:?}");
    assert_eq!(execution.output, Some(json!({"error": "Deploy.Failed", "doubled": 42})));
}

#[tokio::test]
async fn a_failing_jsonata_expression_names_the_expression_and_field() {
    let definition = json!({
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": {"x": "{% $nope($states.input) %}"}, "End": true}}
    });
    let (execution, _) = run(definition, json!({}), LocalFunctions::default()).await;
    assert_eq!(execution.error.as_deref(), Some("States.QueryEvaluationError"));
    let cause = execution.cause.unwrap();
    assert!(
        cause.contains("The JSONata expression '$nope($states.input)' specified for the field 'Output/x' threw an error during evaluation. T1006"),
        "{cause}"
    );
}

#[tokio::test]
async fn a_task_silent_past_its_heartbeat_fails_with_heartbeat_timeout() {
    let clock = Arc::new(VirtualClock::starting_at(start()));
    let slow = sleeping_handler(clock.clone(), 20);
    let engine = Engine::new(clock, Arc::new(LambdaTasks::new(LocalFunctions::default().with("slow", slow))));
    let definition = Definition::from_value(&json!({
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:slow", "TimeoutSeconds": 60, "HeartbeatSeconds": 10, "End": true}}
    }))
    .unwrap();
    let execution = engine.run(&definition, json!({}), "t").await;
    assert_eq!(execution.error.as_deref(), Some("States.HeartbeatTimeout"));
}

#[tokio::test]
async fn retry_delays_are_capped_by_max_delay_and_jitter_stays_below_the_cap() {
    let fails = || handler(|_| Err(FunctionError::new("Busy", "")));
    let retrying = |jitter: &str| {
        json!({"StartAt": "Call", "States": {"Call": {
            "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:busy",
            "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 10, "BackoffRate": 3.0, "MaxAttempts": 4, "MaxDelaySeconds": 25, "JitterStrategy": jitter}],
            "End": true
        }}})
    };
    let (execution, clock) = run(retrying("NONE"), json!({}), LocalFunctions::default().with("busy", fails())).await;
    assert_eq!(execution.error.as_deref(), Some("Busy"));
    assert_eq!(clock.now() - start(), chrono::Duration::seconds(10 + 25 + 25 + 25), "30 s and 90 s are capped at 25 s");
    let (_, clock) = run(retrying("FULL"), json!({}), LocalFunctions::default().with("busy", fails())).await;
    assert!(clock.now() - start() <= chrono::Duration::seconds(85), "full jitter never waits longer than the capped delay");
}

#[tokio::test]
async fn map_tolerates_failures_up_to_its_threshold() {
    let definition = |tolerated: u64| {
        json!({"StartAt": "Each", "States": {"Each": {
            "Type": "Map", "ToleratedFailureCount": tolerated,
            "ItemProcessor": {"StartAt": "Check", "States": {
                "Check": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericGreaterThan": 2, "Next": "Bad"}], "Default": "Good"},
                "Bad": {"Type": "Fail", "Error": "TooBig", "Cause": "over 2"},
                "Good": {"Type": "Pass", "End": true}
            }},
            "End": true
        }}})
    };
    let (execution, _) = run(definition(2), json!([1, 2, 3, 4]), LocalFunctions::default()).await;
    assert_eq!(execution.output, Some(json!([1, 2, {"Error": "TooBig", "Cause": "over 2"}, {"Error": "TooBig", "Cause": "over 2"}])));
    let (execution, _) = run(definition(1), json!([1, 2, 3, 4]), LocalFunctions::default()).await;
    assert_eq!(execution.error.as_deref(), Some("States.ExceedToleratedFailureThreshold"));
}

#[tokio::test]
async fn a_sync_task_runs_a_child_execution_on_the_same_clock_and_surfaces_its_failure() {
    use stepdeploy_asl::nested::StateMachineTasks;
    let child = json!({"StartAt": "Wait", "States": {
        "Wait": {"Type": "Wait", "Seconds": 30, "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}], "Default": "Boom"},
        "Done": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)", "by.$": "$$.Execution.Id"}, "End": true},
        "Boom": {"Type": "Fail", "Error": "Child.Failed", "Cause": "not ok"}}});
    let parent = |pattern: &str| {
        json!({"StartAt": "Call", "States": {
            "Call": {"Type": "Task", "Resource": format!("arn:aws:states:::states:startExecution{pattern}"),
                     "Parameters": {"StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:child", "Input.$": "$"},
                     "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Failed"}], "End": true},
            "Failed": {"Type": "Pass", "Parameters": {"child.$": "States.StringToJson($.error.Cause)"}, "End": true}}})
    };
    let clock = Arc::new(VirtualClock::starting_at(start()));
    let tasks = StateMachineTasks::new(clock.clone(), Arc::new(NoTasks))
        .with_machine("arn:aws:states:us-east-1:123456789012:stateMachine:child", Definition::from_value(&child).unwrap());
    let engine = Engine::new(clock.clone(), Arc::new(tasks));

    let ok = engine.run(&Definition::from_value(&parent(".sync:2")).unwrap(), json!({"ok": true, "n": 21}), "p1").await;
    assert_eq!(ok.status, Status::Succeeded, "{ok:?}");
    let output = ok.output.unwrap();
    assert_eq!(output["Status"], "SUCCEEDED");
    assert_eq!(output["Output"]["doubled"], 42);
    assert!(output["Output"]["by"].as_str().unwrap().contains(":execution:child:child-"), "{output}");
    assert_eq!(output["StopDate"].as_i64().unwrap() - output["StartDate"].as_i64().unwrap(), 30_000, "the child's Wait ran on the parent's clock");

    let v1 = engine.run(&Definition::from_value(&parent(".sync")).unwrap(), json!({"ok": true, "n": 1}), "p2").await;
    let text = v1.output.unwrap()["Output"].as_str().map(str::to_string).expect(".sync gives the output as a string");
    let child_output: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(child_output["doubled"], 2);
    let second = child_output["by"].as_str().unwrap();
    assert!(second.contains(":execution:child:child-") && second != output["Output"]["by"], "each child execution has a name of its own: {second}");

    let failed = engine.run(&Definition::from_value(&parent(".sync:2")).unwrap(), json!({"ok": false}), "p3").await;
    let child = &failed.output.unwrap()["child"];
    assert_eq!((child["Status"].as_str(), child["Error"].as_str(), child["Cause"].as_str()), (Some("FAILED"), Some("Child.Failed"), Some("not ok")));

    let missing = json!({"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:nope"}, "End": true}}});
    let missing = engine.run(&Definition::from_value(&missing).unwrap(), json!({}), "p4").await;
    assert_eq!(missing.error.as_deref(), Some("StepFunctions.StateMachineDoesNotExistException"));
}

mod quotas {
    //! AWS's payload and history quotas
    //! (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).

    use super::*;
    use stepdeploy_asl::limits::{HISTORY_EVENTS_QUOTA, PAYLOAD_QUOTA_BYTES};

    async fn run(definition: Value, input: Value) -> stepdeploy_asl::Execution {
        let engine = Engine::new(Arc::new(VirtualClock::starting_at(chrono::Utc::now())), Arc::new(stepdeploy_asl::NoTasks));
        engine.run(&Definition::from_value(&definition).unwrap(), input, "quota").await
    }

    fn big(bytes: usize) -> Value {
        json!("x".repeat(bytes))
    }

    #[tokio::test]
    async fn a_state_output_over_256_kib_fails_with_data_limit_exceeded_which_states_all_does_not_catch() {
        let builds = |catch: Value| {
            json!({"StartAt": "Build", "States": {
                "Build": {"Type": "Pass", "Result": big(300 * 1024), "Catch": catch, "Next": "Done"},
                "Done": {"Type": "Succeed"},
                "Caught": {"Type": "Pass", "Result": "caught", "End": true}
            }})
        };
        let uncaught = run(builds(json!([{"ErrorEquals": ["States.ALL"], "Next": "Caught"}])), json!({})).await;
        assert_eq!((uncaught.status, uncaught.error.as_deref()), (Status::Failed, Some("States.DataLimitExceeded")), "{:?}", uncaught.cause);
        assert!(uncaught.cause.unwrap().contains("'Build' returned a result with a size exceeding the maximum number of bytes service limit"));
        // Only its own name catches it.
        let caught = run(builds(json!([{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "Caught"}])), json!({})).await;
        assert_eq!((caught.status, caught.output), (Status::Succeeded, Some(json!("caught"))));
        // Just under the quota passes: the limit is on the JSON's bytes (the string and its two quotes).
        let fits = json!({"StartAt": "Build", "States": {"Build": {"Type": "Pass", "Result": big(PAYLOAD_QUOTA_BYTES - 2), "End": true}}});
        assert_eq!(run(fits, json!({})).await.status, Status::Succeeded);
    }

    #[tokio::test]
    async fn execution_input_over_the_quota_is_refused_before_anything_runs() {
        let definition = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
        let refused = run(definition, json!({"blob": big(PAYLOAD_QUOTA_BYTES)})).await;
        assert_eq!((refused.status, refused.error.as_deref()), (Status::Failed, Some("ValidationException")));
        assert!(refused.history.is_empty(), "no execution started");
    }

    #[tokio::test]
    async fn a_loop_that_would_pass_25000_history_events_fails_there() {
        // Each turn: Pass (2 events) and Choice (2 events); it would run 10,000 turns.
        let definition = json!({"StartAt": "Count", "States": {
            "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "More"},
            "More": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThan": 10000, "Next": "Count"}], "Default": "Done"},
            "Done": {"Type": "Succeed"}
        }});
        let execution = run(definition, json!({"n": 0})).await;
        assert_eq!((execution.status, execution.error.as_deref()), (Status::Failed, Some("States.Runtime")), "{:?}", execution.cause);
        assert!(execution.cause.unwrap().contains("maximum number of history events (25000)"));
        assert!(
            execution.history.len() <= HISTORY_EVENTS_QUOTA && execution.history.len() > HISTORY_EVENTS_QUOTA - 10,
            "{} events",
            execution.history.len()
        );
        assert_eq!(execution.history.last().map(|e| e.kind), Some("ExecutionFailed"));
    }

    #[tokio::test]
    async fn execution_names_are_checked_as_start_execution_checks_them() {
        let definition = Definition::from_value(&json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}})).unwrap();
        let engine = Engine::new(Arc::new(VirtualClock::starting_at(chrono::Utc::now())), Arc::new(stepdeploy_asl::NoTasks));
        for bad in ["", "has space", "semi;colon", "slash/y", &"x".repeat(81)] {
            let refused = engine.run(&definition, json!({}), bad).await;
            assert_eq!(refused.error.as_deref(), Some("InvalidName"), "{bad:?}");
            assert!(refused.history.is_empty());
        }
        for good in ["staging-serial-20261130T101500", &"x".repeat(80), "a_b.c-d"] {
            assert_eq!(engine.run(&definition, json!({}), good).await.status, Status::Succeeded, "{good:?}");
        }
    }

    #[tokio::test]
    async fn no_execution_outlives_a_year_however_long_it_waits() {
        let definition = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 400 * 24 * 3600, "End": true}}});
        let execution = run(definition, json!({})).await;
        assert_eq!((execution.status, execution.error.as_deref()), (Status::TimedOut, Some("States.Timeout")));
        let within = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 300 * 24 * 3600, "End": true}}});
        assert_eq!(run(within, json!({})).await.status, Status::Succeeded);
    }

    #[test]
    fn a_map_max_concurrency_must_be_a_non_negative_integer() {
        let map = |max: Value| {
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": max,
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}})
        };
        for bad in [json!(-1), json!(1.5), json!("2")] {
            let problems = Definition::from_value(&map(bad.clone())).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(problems.contains("MaxConcurrency") && problems.contains("non-negative integer"), "{bad}: {problems}");
        }
        for good in [json!(0), json!(40)] {
            assert!(Definition::from_value(&map(good.clone())).is_ok(), "{good}");
        }
    }

    #[tokio::test]
    async fn a_task_result_over_the_quota_is_not_retried_by_states_all() {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let huge = handler(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(big(300 * 1024))
        });
        let engine = Engine::new(
            Arc::new(VirtualClock::starting_at(chrono::Utc::now())),
            Arc::new(LambdaTasks::new(LocalFunctions::default().with("huge", huge))),
        );
        let definition = Definition::from_value(&json!({"StartAt": "Call", "States": {"Call": {
            "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:huge",
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}], "End": true
        }}}))
        .unwrap();
        let execution = engine.run(&definition, json!({}), "t").await;
        assert_eq!((execution.status, execution.error.as_deref()), (Status::Failed, Some("States.DataLimitExceeded")));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "States.ALL doesn't retry it");
    }
}

mod aws_recorded_behaviours {
    //! Classes of behaviour where the engine disagreed with AWS-recorded executions (#15 part 3).

    use super::*;

    async fn run(definition: Value, input: Value) -> Execution {
        let engine = Engine::new(Arc::new(VirtualClock::starting_at(start())), Arc::new(NoTasks));
        engine.run(&Definition::from_value(&definition).unwrap(), input, "t").await
    }

    #[tokio::test]
    async fn a_fail_states_error_path_and_cause_path_take_intrinsic_functions() {
        let definition = json!({"StartAt": "F", "States": {"F": {
            "Type": "Fail",
            "ErrorPath": "States.Format('Deploy.{}', $.kind)",
            "CausePath": "States.Format('{} of {} failed', $.what, States.ArrayLength($.items))"
        }}});
        let execution = run(definition, json!({"kind": "Failed", "what": "migration", "items": [1, 2]})).await;
        assert_eq!((execution.error.as_deref(), execution.cause.as_deref()), (Some("Deploy.Failed"), Some("migration of 2 failed")));
        // Plain paths still work.
        let plain = json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}}});
        let execution = run(plain, json!({"e": "E", "c": "C"})).await;
        assert_eq!((execution.error.as_deref(), execution.cause.as_deref()), (Some("E"), Some("C")));
    }

    #[tokio::test]
    async fn a_jsonata_expression_is_exactly_a_string_from_open_to_close_delimiter_and_anything_else_is_literal() {
        let definition = json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
            "P": {"Type": "Pass", "Assign": {"spaced": " {% 1 + 1 %}", "exact": "{% 1 + 1 %}"},
                  "Output": {"exact": "{% 2 + 2 %}", "leading": " {% 2 + 2 %}", "trailing": "{% 2 + 2 %} ", "nested": {"list": ["{% 3 %}", "{% 3 %}\n"]}},
                  "Next": "Q"},
            "Q": {"Type": "Pass", "Output": {"spaced": "{% $spaced %}", "exact": "{% $exact %}", "before": "{% $states.input %}"}, "End": true}
        }});
        let execution = run(definition, json!({})).await;
        assert_eq!(execution.status, Status::Succeeded, "{:?}", execution.cause);
        let output = execution.output.unwrap();
        assert_eq!(output["spaced"], " {% 1 + 1 %}", "a literal in Assign");
        assert_eq!(output["exact"], 2);
        let before = &output["before"];
        assert_eq!(before["exact"], 4);
        assert_eq!((before["leading"].as_str(), before["trailing"].as_str()), (Some(" {% 2 + 2 %}"), Some("{% 2 + 2 %} ")));
        assert_eq!(before["nested"]["list"], json!([3, "{% 3 %}\n"]));
    }

    #[tokio::test]
    async fn a_string_value_quoted_in_a_runtime_cause_is_not_quoted_twice() {
        let map = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$.max",
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}});
        let execution = run(map, json!({"max": "abc", "items": [1]})).await;
        let cause = execution.cause.unwrap_or_default();
        assert!(cause.ends_with(r#"The MaxConcurrencyPath field refers to value "abc" which is not a valid integer: $.max"#), "{cause}");
        // Other values appear as JSON (as in the recorded case with {}).
        let execution = run(
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$.max",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}}),
            json!({"max": {}, "items": [1]}),
        )
        .await;
        assert!(execution.cause.unwrap_or_default().contains(r#"refers to value "{}" which"#));
        // A TimeoutSecondsPath that isn't a positive integer fails the same way instead of being ignored.
        let task = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:x",
            "TimeoutSecondsPath": "$.t", "End": true}}});
        let execution = run(task, json!({"t": "soon"})).await;
        assert_eq!(execution.error.as_deref(), Some("States.Runtime"));
        assert!(
            execution.cause.unwrap_or_default().contains(r#"The TimeoutSecondsPath field refers to value "soon" which is not a valid integer: $.t"#)
        );
    }
}
