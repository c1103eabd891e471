//! Task states: invoke the resource, record the events, enforce the time limits.

use serde_json::{Value, json};

use super::run::Run;
use crate::error::{StatesError, names};
use crate::limits::over_payload_quota;
use crate::model::TaskSpec;

/// A Task's time limits, seconds.
#[derive(Default, Clone, Copy)]
pub(crate) struct TaskLimits {
    /// TimeoutSeconds.
    pub timeout: Option<f64>,
    /// HeartbeatSeconds.
    pub heartbeat: Option<f64>,
}

/// Invokes the Task's resource with its effective parameters.
pub(crate) async fn invoke(run: &Run, state: &str, spec: &TaskSpec, parameters: Value, limits: TaskLimits) -> Result<Value, StatesError> {
    // The input after Parameters, and the task's result, are held to the payload quota too.
    if over_payload_quota(&parameters) {
        return Err(StatesError::data_limit(state));
    }
    run.event("TaskScheduled", json!({"resource": spec.resource, "parameters": parameters}));
    run.event("TaskStarted", json!({"resource": spec.resource}));
    let started = run.clock.now();
    let outcome = run.invoker.invoke_state(state, &spec.resource, parameters).await;
    let elapsed = (run.clock.now() - started).num_milliseconds() as f64 / 1000.0;
    if limits.timeout.is_some_and(|t| elapsed > t) {
        run.event("TaskTimedOut", json!({"resource": spec.resource}));
        return Err(StatesError { name: names::TIMEOUT.into(), cause: None, from_task: true, from_fail_state: false });
    }
    // Local handlers never send heartbeats: running past HeartbeatSeconds is a missed heartbeat.
    if limits.heartbeat.is_some_and(|h| elapsed > h) {
        run.event("TaskTimedOut", json!({"resource": spec.resource, "error": names::HEARTBEAT_TIMEOUT}));
        return Err(StatesError { name: names::HEARTBEAT_TIMEOUT.into(), cause: None, from_task: true, from_fail_state: false });
    }
    match outcome {
        Ok(v) if over_payload_quota(&v) => {
            run.event("TaskFailed", json!({"resource": spec.resource, "error": names::DATA_LIMIT_EXCEEDED}));
            Err(StatesError::data_limit(state))
        }
        Ok(v) => {
            run.event("TaskSucceeded", json!({"resource": spec.resource, "output": v}));
            Ok(v)
        }
        Err(e) => {
            run.event("TaskFailed", json!({"resource": spec.resource, "error": e.error, "cause": e.cause}));
            Err(StatesError { name: e.error, cause: e.cause, from_task: true, from_fail_state: false })
        }
    }
}
