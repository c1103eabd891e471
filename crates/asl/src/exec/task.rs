//! Task states: invoke the resource, record the events, enforce the time limits.

use serde_json::{Value, json};

use chrono::{DateTime, Utc};

use super::run::Run;
use crate::error::{StatesError, names};
use crate::limits::over_payload_quota;
use crate::model::TaskSpec;
use crate::tokens::{PendingTask, TokenAnswer, WAIT_FOR_TASK_TOKEN};

/// A Task's time limits, seconds.
#[derive(Default, Clone, Copy)]
pub(crate) struct TaskLimits {
    /// TimeoutSeconds.
    pub timeout: Option<f64>,
    /// HeartbeatSeconds.
    pub heartbeat: Option<f64>,
}

/// Invokes the Task's resource with its effective parameters. With `token` (a
/// `.waitForTaskToken` resource), the integration's own result only submits the task: its
/// output is what the token's answer says.
pub(crate) async fn invoke(
    run: &Run,
    state: &str,
    spec: &TaskSpec,
    parameters: Value,
    limits: TaskLimits,
    token: Option<&str>,
) -> Result<Value, StatesError> {
    // The input after Parameters, and the task's result, are held to the payload quota too.
    if over_payload_quota(&parameters) {
        return Err(StatesError::data_limit(state));
    }
    run.event("TaskScheduled", json!({"resource": spec.resource, "parameters": parameters}));
    run.event("TaskStarted", json!({"resource": spec.resource}));
    let started = run.clock.now();
    let resource = token.map_or(spec.resource.as_str(), |_| spec.resource.trim_end_matches(WAIT_FOR_TASK_TOKEN));
    // The token can be answered from the moment the task is scheduled, as on AWS: the function
    // it is handed to (or whoever it passes it on to) may answer before returning.
    if let Some(token) = token {
        let parameters = parameters.clone();
        run.tokens.wait(PendingTask {
            token: token.to_string(),
            state: state.to_string(),
            resource: resource.to_string(),
            parameters,
            issued_at: started,
        });
    }
    let mut outcome = run.invoker.invoke_state(state, resource, parameters).await;
    if let Some(token) = token {
        match &outcome {
            Ok(submitted) => {
                run.event("TaskSubmitted", json!({"resource": spec.resource, "output": submitted}));
                outcome = match wait_for_token(run, token, started, limits).await {
                    Some(answer) => answer,
                    None => return Err(timed_out(run, spec, limits, started)),
                };
            }
            // The task failed to start: its token is no one's to answer.
            Err(_) => run.tokens.forget(token),
        }
    }
    let elapsed = (run.clock.now() - started).num_milliseconds() as f64 / 1000.0;
    if limits.timeout.is_some_and(|t| elapsed > t) {
        run.event("TaskTimedOut", json!({"resource": spec.resource}));
        return Err(StatesError { name: names::TIMEOUT.into(), cause: None, from_task: true, from_fail_state: false });
    }
    // Local handlers never send heartbeats: running past HeartbeatSeconds is a missed heartbeat.
    if token.is_none() && limits.heartbeat.is_some_and(|h| elapsed > h) {
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

/// The longest wait between two looks at a pending token: waits start at a second and double.
const MAX_TOKEN_CHECK_SECONDS: f64 = 60.0;

/// Waits for the token's answer on the engine's clock, checking at growing intervals (a wait of
/// a year costs about half a million checks, not thirty million). `None`: TimeoutSeconds or
/// HeartbeatSeconds passed first.
async fn wait_for_token(run: &Run, token: &str, started: DateTime<Utc>, limits: TaskLimits) -> Option<TokenAnswer> {
    let mut step = 1.0f64;
    loop {
        let now = run.clock.now();
        if let Some(answer) = run.tokens.take_answer(token, now) {
            return Some(answer);
        }
        let since = |t: DateTime<Utc>| (now - t).num_milliseconds() as f64 / 1000.0;
        let heartbeat_from = run.tokens.last_heartbeat(token).unwrap_or(started);
        let timeout_left = limits.timeout.map(|t| t - since(started));
        let heartbeat_left = limits.heartbeat.map(|h| h - since(heartbeat_from));
        if timeout_left.is_some_and(|left| left <= 0.0) || heartbeat_left.is_some_and(|left| left <= 0.0) {
            run.tokens.forget(token);
            return None;
        }
        let wait = [Some(step), timeout_left, heartbeat_left].into_iter().flatten().fold(f64::INFINITY, f64::min).max(0.001);
        run.clock.sleep(std::time::Duration::from_secs_f64(wait)).await;
        // On virtual time the sleep returns at once: let whoever answers (another task) run.
        tokio::task::yield_now().await;
        step = (step * 2.0).min(run.tokens.look_every().unwrap_or(MAX_TOKEN_CHECK_SECONDS));
    }
}

/// A token that was never answered in time: States.Timeout past TimeoutSeconds, else
/// States.HeartbeatTimeout.
fn timed_out(run: &Run, spec: &TaskSpec, limits: TaskLimits, started: DateTime<Utc>) -> StatesError {
    let elapsed = (run.clock.now() - started).num_milliseconds() as f64 / 1000.0;
    let name = if limits.timeout.is_some_and(|t| elapsed >= t) { names::TIMEOUT } else { names::HEARTBEAT_TIMEOUT };
    let mut details = json!({"resource": spec.resource});
    if name == names::HEARTBEAT_TIMEOUT {
        details["error"] = json!(names::HEARTBEAT_TIMEOUT);
    }
    run.event("TaskTimedOut", details);
    StatesError { name: name.into(), cause: None, from_task: true, from_fail_state: false }
}
