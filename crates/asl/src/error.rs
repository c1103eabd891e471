//! Errors an execution can observe, named exactly as AWS names them.

/// AWS's error names.
pub mod names {
    /// Matches every catchable error.
    pub const ALL: &str = "States.ALL";
    /// An engine-level failure; never retried or caught.
    pub const RUNTIME: &str = "States.Runtime";
    /// A Task or the execution ran past its timeout.
    pub const TIMEOUT: &str = "States.Timeout";
    /// Any Task failure except a timeout (as a matcher).
    pub const TASK_FAILED: &str = "States.TaskFailed";
    /// A Choice with no match and no Default.
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    /// An intrinsic function failed.
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    /// ResultPath could not be applied.
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    /// A Parallel branch failed.
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    /// More Map iterations failed than tolerated.
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    /// A JSONata expression failed or gave a value of the wrong type.
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
    /// A Task missed its heartbeat.
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    /// A state's data passed the 256 KiB quota; `States.ALL` doesn't match it.
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
}

/// A failure inside an execution, as Retry, Catch and the final status see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatesError {
    /// The error name (`States.Timeout`, or a task's own).
    pub name: String,
    /// The cause, when there is one.
    pub cause: Option<String>,
    /// Raised by a Task (so `States.TaskFailed` matches it).
    pub from_task: bool,
    /// Raised by a Fail state.
    pub from_fail_state: bool,
}

impl StatesError {
    /// An error with a cause.
    pub fn new(name: &str, cause: String) -> StatesError {
        StatesError { name: name.to_string(), cause: Some(cause), from_task: false, from_fail_state: false }
    }

    /// A States.Runtime error, worded as AWS words it.
    pub fn runtime(state: &str, entered_event: u64, detail: &str) -> StatesError {
        StatesError::new(
            names::RUNTIME,
            format!("An error occurred while executing the state '{state}' (entered at the event id #{entered_event}). {detail}"),
        )
    }

    /// States.Runtime is terminal: no Retry or Catch sees it.
    pub fn is_catchable(&self) -> bool {
        self.name != names::RUNTIME
    }

    /// The error for a state whose data passed the payload quota.
    pub fn data_limit(state: &str) -> StatesError {
        StatesError::new(
            names::DATA_LIMIT_EXCEEDED,
            format!("The state/task '{state}' returned a result with a size exceeding the maximum number of bytes service limit."),
        )
    }

    /// Whether an `ErrorEquals` list matches. `States.ALL` doesn't match `States.DataLimitExceeded`,
    /// a terminal error only its own name catches
    /// (<https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html>).
    pub fn matches(&self, error_equals: &[String]) -> bool {
        error_equals.iter().any(|e| {
            e == &self.name
                || (e == names::ALL && self.name != names::DATA_LIMIT_EXCEEDED)
                || (e == names::TASK_FAILED && self.from_task && self.name != names::TIMEOUT)
        })
    }
}
