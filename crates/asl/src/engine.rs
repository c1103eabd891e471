//! The engine: runs a definition with a clock and a task invoker.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::clock::{Clock, SystemClock};
use crate::definition::Definition;
use crate::exec;
use crate::execution::{Execution, Status};
use crate::limits::{PAYLOAD_QUOTA_BYTES, execution_name_problem, payload_bytes};
use crate::task::{NoTasks, TaskInvoker};
use crate::tokens::TaskTokens;

/// Runs definitions.
#[derive(Clone)]
pub struct Engine {
    clock: Arc<dyn Clock>,
    invoker: Arc<dyn TaskInvoker>,
    state_machine_name: String,
    region: String,
    account: String,
    tokens: TaskTokens,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(Arc::new(SystemClock), Arc::new(NoTasks))
    }
}

impl Engine {
    /// An engine with this clock and task invoker.
    pub fn new(clock: Arc<dyn Clock>, invoker: Arc<dyn TaskInvoker>) -> Engine {
        Engine {
            clock,
            invoker,
            state_machine_name: "local".into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            tokens: TaskTokens::new(),
        }
    }

    /// Answers `.waitForTaskToken` tasks from these tokens (sends, or their responder).
    pub fn with_task_tokens(mut self, tokens: TaskTokens) -> Engine {
        self.tokens = tokens;
        self
    }

    /// The task tokens its executions wait on: send their answers here.
    pub fn task_tokens(&self) -> &TaskTokens {
        &self.tokens
    }

    /// The state machine's name in context ARNs.
    pub fn with_name(mut self, name: &str) -> Engine {
        self.state_machine_name = name.to_string();
        self
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Runs one execution named `execution_name`.
    ///
    /// Input over the payload quota is refused as StartExecution refuses it (its `input` is at
    /// most 262,144 bytes): no execution starts, and no event is recorded.
    pub async fn run(&self, definition: &Definition, input: Value, execution_name: &str) -> Execution {
        if let Some(problem) = execution_name_problem(execution_name) {
            return Execution {
                status: Status::Failed,
                output: None,
                error: Some("InvalidName".into()),
                cause: Some(format!("Invalid Name: '{execution_name}': it {problem} (no execution was started)")),
                transitions: 0,
                history: Vec::new(),
            };
        }
        let input_bytes = payload_bytes(&input);
        if input_bytes > PAYLOAD_QUOTA_BYTES {
            return Execution {
                status: Status::Failed,
                output: None,
                error: Some("ValidationException".into()),
                cause: Some(format!(
                    "1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to {PAYLOAD_QUOTA_BYTES} (it is {input_bytes} bytes; no execution was started)"
                )),
                transitions: 0,
                history: Vec::new(),
            };
        }
        let arn = |kind: &str, rest: &str| format!("arn:aws:states:{}:{}:{kind}:{rest}", self.region, self.account);
        let state_machine_arn = arn("stateMachine", &self.state_machine_name);
        let run = exec::Run {
            clock: self.clock.clone(),
            invoker: self.invoker.clone(),
            history: Mutex::new(Vec::new()),
            transitions: std::sync::atomic::AtomicU64::new(0),
            execution: json!({
                "Id": arn("execution", &format!("{}:{execution_name}", self.state_machine_name)),
                "Input": input,
                "Name": execution_name,
                "RoleArn": format!("arn:aws:iam::{}:role/stepdeploy-local", self.account),
                "StartTime": self.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "RedriveCount": 0,
            }),
            state_machine: json!({"Id": state_machine_arn, "Name": self.state_machine_name}),
            parsed_paths: Mutex::new(Default::default()),
            parsed_calls: Mutex::new(Default::default()),
            map_failed: Default::default(),
            tokens: self.tokens.clone(),
        };
        exec::execute(run, &definition.machine, input).await
    }
}
