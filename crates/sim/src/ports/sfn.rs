//! Step Functions on the sim: whether an execution still runs.

use async_trait::async_trait;
use stepdeploy_core::ports::*;

use crate::Sim;
use crate::iam::AuthRequest;

#[async_trait]
impl Executions for Sim {
    async fn execution_running(&self, execution: &str) -> PortResult<Option<bool>> {
        if !execution.starts_with("arn:") || !execution.contains(":execution:") {
            return Ok(None);
        }
        let mut world = self.lock();
        world.call("states", "DescribeExecution", vec![AuthRequest::new("states:DescribeExecution", execution.to_string())])?;
        Ok(Some(world.running_executions.contains(execution)))
    }
}
