//! The `.waitForTaskToken` integration on the local engine: the token reaches the Task's
//! Parameters as `$$.Task.Token` (JSONata: `$states.context.Task.Token`), the Task waits on the
//! engine's clock until the token is answered, and TimeoutSeconds and HeartbeatSeconds end the
//! wait as on AWS (https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token).

use std::sync::{Arc, Mutex};

use chrono::TimeZone;
use futures::FutureExt;
use serde_json::{Value, json};
use stepdeploy_asl::invoke::{LambdaTasks, LocalFunctions};
use stepdeploy_asl::tokens::{PendingTask, TaskTokens, TokenError};
use stepdeploy_asl::{Clock, Definition, Engine, Execution, Status, TaskError, VirtualClock};

fn start() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap()
}

/// A Lambda `notify` that records the payloads it was sent (the token among them).
fn notify(seen: Arc<Mutex<Vec<Value>>>) -> LocalFunctions {
    LocalFunctions::default().with(
        "notify",
        Arc::new(move |payload| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(payload);
                Ok(json!({"sent": true}))
            }
            .boxed()
        }),
    )
}

fn approval(limits: Value) -> Value {
    let mut task = json!({
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "notify", "Payload": {"token.$": "$$.Task.Token", "step.$": "$.step"}},
        "ResultPath": "$.approval", "End": true,
        "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.rejected", "Next": "WasRejected"}]
    });
    for (k, v) in limits.as_object().unwrap() {
        task[k] = v.clone();
    }
    json!({"StartAt": "Approve", "States": {"Approve": task, "WasRejected": {"Type": "Pass", "End": true}}})
}

async fn run(definition: Value, tokens: TaskTokens, seen: Arc<Mutex<Vec<Value>>>) -> (Execution, i64) {
    let clock = Arc::new(VirtualClock::starting_at(start()));
    let engine = Engine::new(clock.clone(), Arc::new(LambdaTasks::new(notify(seen)))).with_task_tokens(tokens);
    let definition = Definition::from_value(&definition).unwrap_or_else(|e| panic!("{e}"));
    let execution = engine.run(&definition, json!({"step": "checkpoint 50%"}), "deploy-1").await;
    (execution, (clock.now() - start()).num_seconds())
}

/// Answers every pending task `after` seconds after it was issued, with `answer`.
fn answer_after(after: i64, answer: impl Fn(&PendingTask) -> Result<Value, TaskError> + Send + Sync + 'static) -> TaskTokens {
    TaskTokens::with_responder(Arc::new(move |task: &PendingTask, now| ((now - task.issued_at).num_seconds() >= after).then(|| answer(task))))
}

#[tokio::test]
async fn the_token_reaches_the_parameters_and_the_answer_is_the_tasks_output() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tokens = answer_after(300, |task| Ok(json!({"approved_by": "ops", "token_was": task.token})));
    let (execution, seconds) = run(approval(json!({})), tokens, seen.clone()).await;
    assert_eq!(execution.status, Status::Succeeded, "{:?}", execution.cause);
    let payload = seen.lock().unwrap()[0].clone();
    let token = payload["token"].as_str().expect("the Lambda got $$.Task.Token").to_string();
    assert_eq!(payload["step"], "checkpoint 50%");
    assert_eq!(execution.output.unwrap()["approval"], json!({"approved_by": "ops", "token_was": token}));
    // Answered at 300 s; the engine looks at growing intervals of at most 60 s.
    assert!((300..=360).contains(&seconds), "took {seconds} s");
    let kinds: Vec<&str> = execution.history.iter().map(|e| e.kind).filter(|k| k.starts_with("Task")).collect();
    assert_eq!(kinds, ["TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded", "TaskStateExited"]);
}

#[tokio::test]
async fn a_failure_sent_for_the_token_fails_the_task_with_its_error_and_cause() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tokens = answer_after(10, |_| Err(TaskError { error: "Rejected".into(), cause: Some("error rate too high at 50%".into()) }));
    let (execution, _) = run(approval(json!({})), tokens, seen).await;
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(execution.output.unwrap()["rejected"], json!({"Error": "Rejected", "Cause": "error rate too high at 50%"}));
}

#[tokio::test]
async fn an_unanswered_token_times_out_at_timeout_seconds_and_refuses_late_answers() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tokens = TaskTokens::new();
    let (execution, seconds) = run(approval(json!({"TimeoutSeconds": 600})), tokens.clone(), seen.clone()).await;
    assert_eq!((execution.status, execution.error.as_deref()), (Status::Failed, Some("States.Timeout")));
    assert_eq!(seconds, 600, "exactly at TimeoutSeconds");
    let token = seen.lock().unwrap()[0]["token"].as_str().unwrap().to_string();
    assert_eq!(tokens.send_success(&token, json!({})), Err(TokenError::TaskDoesNotExist(token.clone())));
    assert!(tokens.pending().is_empty());
}

#[tokio::test]
async fn a_task_without_a_heartbeat_within_heartbeat_seconds_fails_with_heartbeat_timeout() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (execution, seconds) = run(approval(json!({"HeartbeatSeconds": 120, "TimeoutSeconds": 3600})), TaskTokens::new(), seen).await;
    assert_eq!(execution.error.as_deref(), Some("States.HeartbeatTimeout"));
    assert_eq!(seconds, 120);
}

#[tokio::test]
async fn another_task_can_answer_while_the_execution_waits() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tokens = TaskTokens::new();
    let sender = tokens.clone();
    // An operator's `approve`: it finds the pending task and sends its success.
    let approver = tokio::spawn(async move {
        loop {
            if let Some(task) = sender.pending().first() {
                sender.send_success(&task.token, json!({"approved": true})).unwrap();
                return task.state.clone();
            }
            tokio::task::yield_now().await;
        }
    });
    let (execution, _) = run(approval(json!({"TimeoutSeconds": 86_400})), tokens.clone(), seen).await;
    assert_eq!(approver.await.unwrap(), "Approve");
    assert_eq!(execution.output.unwrap()["approval"], json!({"approved": true}));
    assert_eq!(tokens.send_failure("local-token-unknown", "X", None), Err(TokenError::TaskDoesNotExist("local-token-unknown".into())));
}

#[tokio::test]
async fn jsonata_tasks_see_the_token_in_states_context() {
    let definition = json!({"QueryLanguage": "JSONata", "StartAt": "Approve", "States": {"Approve": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Arguments": {"FunctionName": "notify", "Payload": {"token": "{% $states.context.Task.Token %}"}},
        "Output": "{% $states.result %}", "End": true}}});
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (execution, _) = run(definition, answer_after(5, |task| Ok(json!({"ok": task.token.clone()}))), seen.clone()).await;
    assert_eq!(execution.status, Status::Succeeded, "{:?}", execution.cause);
    let token = seen.lock().unwrap()[0]["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("local-token-"), "{token}");
    assert_eq!(execution.output, Some(json!({"ok": token})));
}

#[tokio::test]
async fn a_token_answered_before_its_function_returns_is_honoured_as_on_aws() {
    // The function hands the token on, and the answer comes back before the function returns.
    let tokens = TaskTokens::new();
    let answering = tokens.clone();
    let functions = LocalFunctions::default().with(
        "notify",
        Arc::new(move |payload: Value| {
            let answering = answering.clone();
            async move {
                let token = payload["token"].as_str().unwrap_or_default().to_string();
                answering.send_success(&token, json!({"approved": "at once"})).map_err(|e| stepdeploy_asl::invoke::FunctionError {
                    error_type: "Refused".into(),
                    error_message: e.to_string(),
                    document: None,
                })?;
                Ok(json!({"sent": true}))
            }
            .boxed()
        }),
    );
    let clock = Arc::new(VirtualClock::starting_at(start()));
    let engine = Engine::new(clock.clone(), Arc::new(LambdaTasks::new(functions))).with_task_tokens(tokens);
    let definition = Definition::from_value(&approval(json!({"TimeoutSeconds": 3600}))).unwrap_or_else(|e| panic!("{e}"));
    let execution = engine.run(&definition, json!({"step": "checkpoint 50%"}), "deploy-1").await;
    assert_eq!(execution.status, Status::Succeeded, "{:?} {:?}", execution.error, execution.cause);
    assert_eq!(execution.output.as_ref().map(|o| o["approval"].clone()), Some(json!({"approved": "at once"})));
    assert_eq!((clock.now() - start()).num_seconds(), 0, "no wait: the answer was already there");
}
