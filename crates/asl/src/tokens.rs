//! Task tokens: the `.waitForTaskToken` integration pattern. A Task whose resource ends in
//! `.waitForTaskToken` calls its integration with `$$.Task.Token` available to its Parameters,
//! then waits until someone sends the token's success or failure (SendTaskSuccess,
//! SendTaskFailure), or its TimeoutSeconds or HeartbeatSeconds pass
//! (<https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token>).
//!
//! Locally the answer comes from [`TaskTokens`]: another task calls [`TaskTokens::send_success`]
//! and friends, or a [`Responder`] answers on the engine's clock (an approval after so many
//! virtual seconds, say).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::task::TaskError;

/// The suffix of a resource that waits for its task token.
pub const WAIT_FOR_TASK_TOKEN: &str = ".waitForTaskToken";

/// A Task waiting for its token.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingTask {
    /// The token (`$$.Task.Token`).
    pub token: String,
    /// The Task state's name.
    pub state: String,
    /// Its resource, without the suffix.
    pub resource: String,
    /// The parameters it was called with (they usually carry the token).
    pub parameters: Value,
    /// When the integration was called.
    pub issued_at: DateTime<Utc>,
}

/// How a token is answered: the Task's output, or its error.
pub type TokenAnswer = Result<Value, TaskError>;

/// Answers pending tasks on the engine's clock: called at each check with the task and now.
pub type Responder = Arc<dyn Fn(&PendingTask, DateTime<Utc>) -> Option<TokenAnswer> + Send + Sync>;

/// Why a send was refused, as Step Functions refuses it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No task waits for this token (never issued, already answered, or timed out).
    #[error("TaskDoesNotExist: no task is waiting for the token {0:?}")]
    TaskDoesNotExist(String),
}

#[derive(Default)]
struct Inner {
    issued: u64,
    pending: BTreeMap<String, PendingTask>,
    answers: BTreeMap<String, TokenAnswer>,
    heartbeats: BTreeMap<String, DateTime<Utc>>,
    responder: Option<Responder>,
}

/// The task tokens of an engine's executions.
#[derive(Clone, Default)]
pub struct TaskTokens {
    inner: Arc<Mutex<Inner>>,
    /// The longest wait between two looks at a pending token (`None`: the engine's own).
    look_every: Option<f64>,
}

impl TaskTokens {
    /// The same tokens, a pending one looked at at least every `seconds` of the engine's clock:
    /// an answer sent meanwhile (a relayed alarm, on a simulated account whose clock moves in
    /// jumps) is taken at most that late. AWS delivers it in seconds.
    pub fn looking_every(self, seconds: f64) -> TaskTokens {
        TaskTokens { look_every: Some(seconds.max(0.001)), ..self }
    }

    /// The longest wait between two looks at a pending token, if set.
    pub fn look_every(&self) -> Option<f64> {
        self.look_every
    }

    /// Tokens answered only by sends.
    pub fn new() -> TaskTokens {
        TaskTokens::default()
    }

    /// Tokens also answered by `responder`.
    pub fn with_responder(responder: Responder) -> TaskTokens {
        let tokens = TaskTokens::default();
        tokens.lock().responder = Some(responder);
        tokens
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tasks waiting now.
    pub fn pending(&self) -> Vec<PendingTask> {
        self.lock().pending.values().cloned().collect()
    }

    /// SendTaskSuccess.
    pub fn send_success(&self, token: &str, output: Value) -> Result<(), TokenError> {
        self.answer(token, Ok(output))
    }

    /// SendTaskFailure.
    pub fn send_failure(&self, token: &str, error: &str, cause: Option<&str>) -> Result<(), TokenError> {
        self.answer(token, Err(TaskError { error: error.to_string(), cause: cause.map(str::to_string) }))
    }

    /// SendTaskHeartbeat, at `now`.
    pub fn send_heartbeat(&self, token: &str, now: DateTime<Utc>) -> Result<(), TokenError> {
        let mut inner = self.lock();
        if !inner.pending.contains_key(token) {
            return Err(TokenError::TaskDoesNotExist(token.to_string()));
        }
        inner.heartbeats.insert(token.to_string(), now);
        Ok(())
    }

    fn answer(&self, token: &str, answer: TokenAnswer) -> Result<(), TokenError> {
        let mut inner = self.lock();
        if inner.pending.remove(token).is_none() {
            return Err(TokenError::TaskDoesNotExist(token.to_string()));
        }
        inner.answers.insert(token.to_string(), answer);
        Ok(())
    }

    /// A new token for `state` of `execution`.
    pub(crate) fn issue(&self, execution: &str, state: &str) -> String {
        let mut inner = self.lock();
        inner.issued += 1;
        // Opaque to the workflow, like AWS's; readable in a local run's history.
        let name = execution.rsplit(':').next().unwrap_or(execution);
        format!("local-token-{}-{name}-{}", inner.issued, state.replace(|c: char| !c.is_ascii_alphanumeric(), "-"))
    }

    /// The task now waits (its integration was called).
    pub(crate) fn wait(&self, task: PendingTask) {
        self.lock().pending.insert(task.token.clone(), task);
    }

    /// The token's answer, if one came: sent, or given by the responder at `now`.
    pub(crate) fn take_answer(&self, token: &str, now: DateTime<Utc>) -> Option<TokenAnswer> {
        let (responder, task) = {
            let mut inner = self.lock();
            if let Some(answer) = inner.answers.remove(token) {
                return Some(answer);
            }
            (inner.responder.clone(), inner.pending.get(token).cloned())
        };
        let answer = responder.and_then(|respond| task.and_then(|task| respond(&task, now)))?;
        self.lock().pending.remove(token);
        Some(answer)
    }

    /// The last heartbeat sent for the token, if any.
    pub(crate) fn last_heartbeat(&self, token: &str) -> Option<DateTime<Utc>> {
        self.lock().heartbeats.get(token).copied()
    }

    /// The task stopped waiting (timed out): later sends are refused.
    pub(crate) fn forget(&self, token: &str) {
        let mut inner = self.lock();
        inner.pending.remove(token);
        inner.heartbeats.remove(token);
    }
}
