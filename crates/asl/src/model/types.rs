//! A parsed state machine: states, their kinds and the fields every state shares.

use serde_json::Value;

use super::language::QueryLanguage;
use crate::choice::ChoiceRule;

/// An optional path field: absent, JSON `null`, or a path.
#[derive(Debug, Clone, PartialEq)]
pub enum PathField {
    /// Not given: the default (`$`).
    Default,
    /// `null`.
    Null,
    /// A path string.
    Path(String),
}

/// A retrier.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    /// Error names it handles.
    pub error_equals: Vec<String>,
    /// First delay, seconds (default 1).
    pub interval_seconds: f64,
    /// Retries (default 3).
    pub max_attempts: u32,
    /// Delay multiplier (default 2.0).
    pub backoff_rate: f64,
    /// Cap on the delay.
    pub max_delay_seconds: Option<f64>,
    /// `FULL` jitter, or none.
    pub full_jitter: bool,
}

/// Default retry interval, seconds.
pub const DEFAULT_INTERVAL_SECONDS: f64 = 1.0;
/// Default retry count.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default backoff multiplier.
pub const DEFAULT_BACKOFF_RATE: f64 = 2.0;

/// A catcher.
#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    /// Error names it handles.
    pub error_equals: Vec<String>,
    /// Where the error output goes (default `$`).
    pub result_path: PathField,
    /// Variables to assign.
    pub assign: Option<Value>,
    /// JSONata output.
    pub output: Option<Value>,
    /// The state to go to.
    pub next: String,
}

/// Fields every state may carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    /// Next state, unless `end`.
    pub next: Option<String>,
    /// Terminal state.
    pub end: bool,
    /// InputPath.
    pub input_path: PathField,
    /// OutputPath.
    pub output_path: PathField,
    /// ResultPath.
    pub result_path: PathField,
    /// Parameters (or Map's ItemSelector).
    pub parameters: Option<Value>,
    /// ResultSelector.
    pub result_selector: Option<Value>,
    /// Assign.
    pub assign: Option<Value>,
    /// JSONata Arguments.
    pub arguments: Option<Value>,
    /// JSONata Output.
    pub output: Option<Value>,
    /// Retriers.
    pub retry: Vec<Retrier>,
    /// Catchers.
    pub catch: Vec<Catcher>,
    /// The effective query language.
    pub query_language: QueryLanguage,
}

/// Wait's duration or deadline.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitFor {
    /// Seconds (a number, or a JSONata expression string).
    Seconds(Value),
    /// A path to seconds.
    SecondsPath(String),
    /// A timestamp (a string, or a JSONata expression).
    Timestamp(Value),
    /// A path to a timestamp.
    TimestampPath(String),
}

/// Map's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MapSpec {
    /// The iteration's machine.
    pub processor: Box<StateMachine>,
    /// ItemsPath (JSONPath).
    pub items_path: PathField,
    /// Items (JSONata).
    pub items: Option<Value>,
    /// MaxConcurrency (0 = unlimited).
    pub max_concurrency: Option<Value>,
    /// MaxConcurrencyPath.
    pub max_concurrency_path: Option<String>,
    /// ToleratedFailureCount.
    pub tolerated_failure_count: Option<Value>,
    /// ToleratedFailurePercentage.
    pub tolerated_failure_percentage: Option<Value>,
    /// ToleratedFailureCountPath.
    pub tolerated_failure_count_path: Option<String>,
    /// ToleratedFailurePercentagePath.
    pub tolerated_failure_percentage_path: Option<String>,
}

/// Task's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The Resource ARN.
    pub resource: String,
    /// TimeoutSeconds (or a JSONata expression).
    pub timeout_seconds: Option<Value>,
    /// TimeoutSecondsPath.
    pub timeout_seconds_path: Option<String>,
    /// HeartbeatSeconds.
    pub heartbeat_seconds: Option<Value>,
    /// HeartbeatSecondsPath.
    pub heartbeat_seconds_path: Option<String>,
}

/// A state's type and its own fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Pass, with its optional Result.
    Pass(Option<Value>),
    /// Task.
    Task(TaskSpec),
    /// Choice.
    Choice {
        /// Rules, in order.
        choices: Vec<ChoiceRule>,
        /// Default next state.
        default: Option<String>,
    },
    /// Wait.
    Wait(WaitFor),
    /// Succeed.
    Succeed,
    /// Fail.
    Fail {
        /// Error (or JSONata).
        error: Option<Value>,
        /// ErrorPath.
        error_path: Option<String>,
        /// Cause (or JSONata).
        cause: Option<Value>,
        /// CausePath.
        cause_path: Option<String>,
    },
    /// Parallel.
    Parallel(Vec<StateMachine>),
    /// Map (inline).
    Map(MapSpec),
}

impl Kind {
    /// The ASL type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Pass(_) => "Pass",
            Kind::Task(_) => "Task",
            Kind::Choice { .. } => "Choice",
            Kind::Wait(_) => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail { .. } => "Fail",
            Kind::Parallel(_) => "Parallel",
            Kind::Map(_) => "Map",
        }
    }
}

/// One state.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Its name.
    pub name: String,
    /// Its name, shared by the history events that mention it.
    pub label: std::sync::Arc<str>,
    /// Type-specific fields.
    pub kind: Kind,
    /// Shared fields.
    pub common: Common,
}

/// A (sub-)machine: the top level, a Parallel branch or a Map processor.
#[derive(Debug, Clone, PartialEq)]
pub struct StateMachine {
    /// StartAt.
    pub start_at: String,
    /// States by name.
    pub states: rustc_hash::FxHashMap<String, State>,
    /// State names in definition order.
    pub order: Vec<String>,
    /// TimeoutSeconds of the whole machine.
    pub timeout_seconds: Option<u64>,
    /// Default query language of its states.
    pub query_language: QueryLanguage,
}

impl StateMachine {
    /// Whether running it can move the clock: a Wait, a Task or a Retry anywhere in it. One
    /// that can't (Pass, Choice, Succeed, Fail only) takes no time, so it needs no lane of its own.
    pub fn can_take_time(&self) -> bool {
        self.states.values().any(|state| {
            !state.common.retry.is_empty()
                || match &state.kind {
                    Kind::Task(_) | Kind::Wait(_) => true,
                    Kind::Parallel(branches) => branches.iter().any(StateMachine::can_take_time),
                    Kind::Map(spec) => spec.processor.can_take_time(),
                    _ => false,
                }
        })
    }
}

/// A definition problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `States.Name.Field`, or `(definition)`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}
