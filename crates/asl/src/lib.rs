//! A local Amazon States Language engine: the same definitions that run on
//! AWS Step Functions, executed in-process. It knows nothing about what the
//! tasks do: a [`TaskInvoker`] maps each Task's Resource to a handler, and a
//! [`Clock`] decides whether Wait and retry delays pass in real or virtual time.
//!
//! Layout: `model` (parse and validate), `path` (JSONPath, reference paths),
//! `intrinsics` (parsed to an AST), `choice`, `exec` (the driver), `error`.

pub mod choice;
pub mod error;
mod exec;
pub mod graph;
pub mod intrinsics;
pub mod invoke;
pub mod jsonata;
pub mod model;
pub mod nested;
pub mod path;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

pub use error::{StatesError, names};
pub use model::{Problem, StateMachine};

/// Time as the engine sees it.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
    /// Waits (or, in virtual time, moves the clock).
    async fn sleep(&self, duration: Duration);
}

/// Wall-clock time: waits really wait.
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Virtual time: a wait moves the clock at once.
pub struct VirtualClock {
    now: Mutex<DateTime<Utc>>,
}

impl VirtualClock {
    /// A clock starting at `start`.
    pub fn starting_at(start: DateTime<Utc>) -> VirtualClock {
        VirtualClock { now: Mutex::new(start) }
    }

    /// Moves the clock forward.
    pub fn advance(&self, duration: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += chrono::Duration::from_std(duration).unwrap_or_default();
    }
}

#[async_trait]
impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}

/// A Task's failure: the error name and cause Step Functions reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    /// Error name (a Lambda's `errorType`).
    pub error: String,
    /// Cause (a Lambda's `errorMessage`, or the whole error JSON).
    pub cause: Option<String>,
}

/// Runs Task states.
#[async_trait]
pub trait TaskInvoker: Send + Sync {
    /// Invokes `resource` with the Task's effective parameters.
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError>;
}

/// The error name for a Task no invoker handles.
pub const NO_TASK_HANDLER: &str = "Local.NoTaskHandler";

/// An invoker for definitions without tasks: every Task fails clearly.
pub struct NoTasks;

#[async_trait]
impl TaskInvoker for NoTasks {
    async fn invoke(&self, resource: &str, _input: Value) -> Result<Value, TaskError> {
        Err(TaskError { error: NO_TASK_HANDLER.into(), cause: Some(format!("no task handler is configured for the resource {resource}")) })
    }
}

/// An execution's final status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// It succeeded.
    Succeeded,
    /// It failed.
    Failed,
    /// It ran past its TimeoutSeconds.
    TimedOut,
}

/// One history event, with AWS's event type name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// 1-based id.
    pub id: u64,
    /// e.g. `PassStateEntered`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When it happened (virtual or real time).
    pub timestamp: DateTime<Utc>,
    /// The state, for state events.
    pub state: Option<Arc<str>>,
    /// For state events the input (Entered) or output (Exited); otherwise the event's details.
    pub details: Value,
}

/// A finished execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Execution {
    /// Final status.
    pub status: Status,
    /// Output on success.
    pub output: Option<Value>,
    /// Error name on failure.
    pub error: Option<String>,
    /// Cause on failure.
    pub cause: Option<String>,
    /// State transitions (what AWS bills).
    pub transitions: u64,
    /// Every event.
    pub history: Vec<Event>,
}

/// A parsed, validated definition.
#[derive(Debug, Clone)]
pub struct Definition {
    machine: StateMachine,
}

/// Why a definition can't run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    /// Not JSON.
    #[error("the definition is not valid JSON: {0}")]
    Json(String),
    /// A `${Name}` with no substitution.
    #[error("the definition uses ${{{0}}}, which has no DefinitionSubstitutions entry")]
    Substitution(String),
    /// Structural problems, every one.
    #[error("{} problem(s) in the definition:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl Definition {
    /// Parses definition text, first replacing `${Name}` from `substitutions`.
    pub fn parse(text: &str, substitutions: &HashMap<String, String>) -> Result<Definition, DefinitionError> {
        let text = substitute(text, substitutions)?;
        let value: Value = serde_json::from_str(&text).map_err(|e| DefinitionError::Json(e.to_string()))?;
        Definition::from_value(&value)
    }

    /// Validates a definition given as JSON.
    pub fn from_value(value: &Value) -> Result<Definition, DefinitionError> {
        model::parse_definition(value).map(|machine| Definition { machine }).map_err(DefinitionError::Invalid)
    }

    /// The parsed machine.
    pub fn machine(&self) -> &StateMachine {
        &self.machine
    }
}

/// Replaces `${Name}` placeholders (DefinitionSubstitutions).
pub fn substitute(text: &str, substitutions: &HashMap<String, String>) -> Result<String, DefinitionError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        match substitutions.get(name) {
            Some(value) => out.push_str(value),
            None => return Err(DefinitionError::Substitution(name.to_string())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Runs definitions.
#[derive(Clone)]
pub struct Engine {
    clock: Arc<dyn Clock>,
    invoker: Arc<dyn TaskInvoker>,
    state_machine_name: String,
    region: String,
    account: String,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(Arc::new(SystemClock), Arc::new(NoTasks))
    }
}

impl Engine {
    /// An engine with this clock and task invoker.
    pub fn new(clock: Arc<dyn Clock>, invoker: Arc<dyn TaskInvoker>) -> Engine {
        Engine { clock, invoker, state_machine_name: "local".into(), region: "us-east-1".into(), account: "123456789012".into() }
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
    pub async fn run(&self, definition: &Definition, input: Value, execution_name: &str) -> Execution {
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
        };
        exec::execute(run, &definition.machine, input).await
    }
}
