//! How Task states reach their handlers: the [`TaskInvoker`] port.

use async_trait::async_trait;
use serde_json::Value;

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

    /// Invokes the Task state `state`'s `resource`: what the engine calls. Invokers that answer
    /// by state (mocked responses) override it; the rest go by resource.
    async fn invoke_state(&self, state: &str, resource: &str, input: Value) -> Result<Value, TaskError> {
        let _ = state;
        self.invoke(resource, input).await
    }
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
