//! Nested executions: `arn:aws:states:::states:startExecution.sync:2` (and
//! `.sync`) Tasks run a local definition to the end on the same clock, as a
//! child execution; every other Task goes to an inner invoker.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::definition::Definition;
use crate::engine::Engine;
use crate::execution::Status;
use crate::task::{TaskError, TaskInvoker};
use crate::tokens::TaskTokens;

/// The Step Functions StartExecution integration's resource.
pub const START_EXECUTION: &str = "arn:aws:states:::states:startExecution";

/// Runs nested executions of known state machines; other Tasks go to `inner`.
#[derive(Clone)]
pub struct StateMachineTasks {
    inner: Arc<dyn TaskInvoker>,
    clock: Arc<dyn Clock>,
    machines: Arc<HashMap<String, (String, Arc<Definition>)>>,
    started: Arc<AtomicU64>,
    tokens: TaskTokens,
}

impl StateMachineTasks {
    /// Nested executions on `clock`; other Tasks on `inner`.
    pub fn new(clock: Arc<dyn Clock>, inner: Arc<dyn TaskInvoker>) -> StateMachineTasks {
        StateMachineTasks { inner, clock, machines: Arc::new(HashMap::new()), started: Arc::new(AtomicU64::new(0)), tokens: TaskTokens::new() }
    }

    /// Nested executions wait on these task tokens: the account's, shared with the parent's engine
    /// (a SendTaskSuccess reaches a token whichever execution issued it).
    pub fn with_task_tokens(mut self, tokens: TaskTokens) -> StateMachineTasks {
        self.tokens = tokens;
        self
    }

    /// Makes `definition` startable as the state machine `arn` (its name is the ARN's last part).
    pub fn with_machine(mut self, arn: &str, definition: Definition) -> StateMachineTasks {
        let name = arn.rsplit(':').next().unwrap_or(arn).to_string();
        Arc::make_mut(&mut self.machines).insert(arn.to_string(), (name, Arc::new(definition)));
        self
    }
}

fn millis(clock: &Arc<dyn Clock>) -> i64 {
    clock.now().timestamp_millis()
}

#[async_trait]
impl TaskInvoker for StateMachineTasks {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let Some(pattern) = resource.strip_prefix(START_EXECUTION) else {
            return self.inner.invoke(resource, input).await;
        };
        let v2 = match pattern {
            ".sync:2" => true,
            ".sync" => false,
            _ => {
                return Err(TaskError {
                    error: "States.Runtime".into(),
                    cause: Some(format!("{resource}: only the .sync and .sync:2 patterns run locally (a child must finish on this clock)")),
                });
            }
        };
        let Some(arn) = input.get("StateMachineArn").and_then(Value::as_str) else {
            return Err(TaskError { error: "States.Runtime".into(), cause: Some(format!("{resource} needs Parameters.StateMachineArn")) });
        };
        let Some((name, definition)) = self.machines.get(arn) else {
            return Err(TaskError {
                error: "StepFunctions.StateMachineDoesNotExistException".into(),
                cause: Some(format!("State Machine Does Not Exist: '{arn}'")),
            });
        };
        let child_input = match input.get("Input") {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(text)) => serde_json::from_str(text)
                .map_err(|e| TaskError { error: "States.Runtime".into(), cause: Some(format!("Input is not JSON: {e}")) })?,
            Some(other) => other.clone(),
        };
        let execution_name = match input.get("Name").and_then(Value::as_str) {
            Some(given) => given.to_string(),
            // AWS names it with a fresh UUID: never the name of an earlier execution (whose ARN
            // a step may use as an idempotency key). The start time and a counter stand in for it.
            None => format!("{name}-{}-{}", millis(&self.clock), self.started.fetch_add(1, Ordering::Relaxed) + 1),
        };
        let engine = Engine::new(self.clock.clone(), Arc::new(self.clone())).with_name(name).with_task_tokens(self.tokens.clone());
        let start_date = millis(&self.clock);
        let execution = engine.run(definition, child_input.clone(), &execution_name).await;
        let as_output = |v: &Value| if v2 { v.clone() } else { Value::String(v.to_string()) };
        let mut described = json!({
            "ExecutionArn": format!("{}:{execution_name}", arn.replacen(":stateMachine:", ":execution:", 1)),
            "Input": as_output(&child_input),
            "InputDetails": {"Included": true},
            "Name": execution_name,
            "StartDate": start_date,
            "StateMachineArn": arn,
            "StopDate": millis(&self.clock),
        });
        match execution.status {
            Status::Succeeded => {
                described["Output"] = as_output(execution.output.as_ref().unwrap_or(&Value::Null));
                described["OutputDetails"] = json!({"Included": true});
                described["Status"] = json!("SUCCEEDED");
                Ok(described)
            }
            status => {
                described["Status"] = json!(if status == Status::TimedOut { "TIMED_OUT" } else { "FAILED" });
                described["Error"] = json!(execution.error);
                described["Cause"] = json!(execution.cause);
                Err(TaskError { error: "States.TaskFailed".into(), cause: Some(described.to_string()) })
            }
        }
    }
}
