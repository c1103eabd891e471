//! Step Functions: whether an execution (the lock's holder) still runs.

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::ExecutionStatus;
use stepdeploy_core::ports::{Executions, PortResult};

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
