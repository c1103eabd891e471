//! Step Functions on the sim: whether an execution still runs, and answers to task tokens.

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

/// SendTaskSuccess and SendTaskFailure take no resource: they are authorized on `*`
/// (<https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html>).
fn answer(sim: &Sim, operation: &'static str, token: &str, answer: crate::TaskAnswer) -> PortResult<()> {
    {
        let mut world = sim.lock();
        world.call("states", operation, vec![AuthRequest::new(&format!("states:{operation}"), "*".to_string())])?;
    }
    let delivered = sim.task_answer_sink().is_some_and(|sink| sink(token, answer));
    if delivered {
        Ok(())
    } else {
        Err(crate::world::World::not_found("states", operation, "TaskDoesNotExist", "Task does not exist anymore".to_string()))
    }
}

#[async_trait]
impl TaskAnswers for Sim {
    async fn send_task_success(&self, token: &str, output: &str) -> PortResult<()> {
        answer(self, "SendTaskSuccess", token, Ok(output.to_string()))
    }

    async fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> PortResult<()> {
        answer(self, "SendTaskFailure", token, Err((error.to_string(), cause.to_string())))
    }
}
