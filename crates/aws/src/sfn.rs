//! Step Functions: whether an execution (the lock's holder) still runs, and answers to a
//! checkpoint's task token.

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::ExecutionStatus;
use stepdeploy_core::ports::{ErrorKind, Executions, PortResult, TaskAnswers};

use crate::error::port_error;

const SERVICE: &str = "states";

/// The Step Functions port on the SDK.
#[derive(Clone, Debug)]
pub struct AwsSfn {
    client: Client,
}

impl AwsSfn {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Executions for AwsSfn {
    async fn execution_running(&self, execution: &str) -> PortResult<Option<bool>> {
        // A local run's id (or anything else) is no execution ARN: nothing to ask.
        if !execution.starts_with("arn:") || !execution.contains(":execution:") {
            return Ok(None);
        }
        match self.client.describe_execution().execution_arn(execution).send().await {
            Ok(out) => Ok(Some(out.status() == &ExecutionStatus::Running)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_execution_does_not_exist()) => Ok(Some(false)),
            Err(e) => Err(port_error(SERVICE, "DescribeExecution", e)),
        }
    }
}

/// A token no task waits for any more is NotFound, whichever way Step Functions says it:
/// `TaskDoesNotExist`, `TaskTimedOut`, or `InvalidToken` for one it can't read
/// (<https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html>).
fn token_gone(mut error: stepdeploy_core::ports::PortError) -> stepdeploy_core::ports::PortError {
    if matches!(error.code.as_deref(), Some("TaskDoesNotExist" | "TaskTimedOut" | "InvalidToken")) {
        error.kind = ErrorKind::NotFound;
    }
    error
}

#[async_trait]
impl TaskAnswers for AwsSfn {
    async fn send_task_success(&self, token: &str, output: &str) -> PortResult<()> {
        self.client
            .send_task_success()
            .task_token(token)
            .output(output)
            .send()
            .await
            .map_err(|e| token_gone(port_error(SERVICE, "SendTaskSuccess", e)))?;
        Ok(())
    }

    async fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> PortResult<()> {
        self.client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map_err(|e| token_gone(port_error(SERVICE, "SendTaskFailure", e)))?;
        Ok(())
    }
}
