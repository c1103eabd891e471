//! SSM on the sim: Run Command and Parameter Store.

use async_trait::async_trait;
use stepdeploy_core::model::Timestamp;
use stepdeploy_core::ports::*;

use super::common::*;
use crate::iam::{AuthRequest, document_arn, ec2_arn, parameter_arn};
use crate::world::{SimCommand, World};
use crate::{CommandScript, Sim};

#[async_trait]
impl CommandRunner for Sim {
    async fn send_command(&self, request: &CommandRequest<'_>) -> PortResult<String> {
        const OP: &str = "SendCommand";
        let (instance_ids, timeout_seconds) = (request.instance_ids, request.timeout_seconds);
        // What the shell runs: the agent sets SSM_revision from the document's ENV_VAR parameter.
        let rendered = request.command.replace(stepdeploy_core::revision::COMMAND_PLACEHOLDER, request.revision);
        let command = rendered.as_str();
        let mut world = self.lock();
        let mut requests = vec![AuthRequest::new("ssm:SendCommand", document_arn(request.document))];
        requests.extend(
            instance_ids.iter().map(|id| AuthRequest::new("ssm:SendCommand", ec2_arn("instance", id)).resource_tags(&world.instance_tags(id))),
        );
        world.call(SSM, OP, requests)?;
        // SendCommand takes at most 50 instance ids
        // (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html).
        if instance_ids.len() > 50 {
            return Err(World::invalid(
                SSM,
                OP,
                "ValidationException",
                format!(
                    "1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to 50 (got {})",
                    instance_ids.len()
                ),
            ));
        }
        let now = world.now;
        for id in instance_ids {
            let online = world.instances.get(id).is_some_and(|i| i.ssm_online(now));
            if !online {
                return Err(World::invalid(SSM, OP, "InvalidInstanceId", format!("Instance {id} is not in a valid state for SSM (not online)")));
            }
        }
        let outcomes = instance_ids
            .iter()
            .map(|id| {
                let script = world
                    .scripts
                    .iter()
                    .rev()
                    .find(|s| command.contains(&s.contains) && s.instance_id.as_ref().is_none_or(|only| only == id))
                    .cloned()
                    .unwrap_or_else(|| {
                        std::sync::Arc::new(CommandScript {
                            contains: String::new(),
                            instance_id: None,
                            exit_code: 0,
                            stdout: String::new(),
                            stderr: String::new(),
                            duration_seconds: 5,
                        })
                    });
                (id.clone(), script)
            })
            .collect();
        let id = format!("{:08x}-0000-4000-8000-{:012x}", world.next_id() as u32, world.next_id() & 0xffff_ffff_ffff);
        world.commands.insert(
            id.clone(),
            SimCommand {
                instance_ids: instance_ids.to_vec(),
                command: command.to_string(),
                sent: request.command.to_string(),
                revision: request.revision.to_string(),
                sent_at: now,
                timeout_seconds: timeout_seconds as i64,
                outcomes,
                document: request.document.to_string(),
                output_log_group: request.output_log_group.map(str::to_string),
                comment: request.comment.chars().take(100).collect(),
            },
        );
        world.respond(SSM, OP)?;
        Ok(id)
    }

    async fn recent_commands(&self, document: &str, since: Timestamp) -> PortResult<Vec<(String, String)>> {
        let mut world = self.lock();
        world.call(SSM, "ListCommands", unscoped("ssm:ListCommands"))?;
        Ok(world
            .commands
            .iter()
            .filter(|(_, c)| c.document == document && c.sent_at >= since)
            .map(|(id, c)| (id.clone(), c.comment.clone()))
            .collect())
    }

    async fn invocations(&self, command_id: &str, instance_ids: &[String]) -> PortResult<Vec<Invocation>> {
        const OP: &str = "GetCommandInvocation";
        let mut world = self.lock();
        let mut out = Vec::new();
        for id in instance_ids {
            world.call(SSM, OP, unscoped("ssm:GetCommandInvocation"))?;
            let now = world.now;
            let command = world
                .commands
                .get(command_id)
                .ok_or_else(|| World::not_found(SSM, OP, "InvalidCommandId", format!("command {command_id} not found")))?;
            let script = command
                .outcomes
                .get(id)
                .ok_or_else(|| World::not_found(SSM, OP, "InvocationDoesNotExist", format!("no invocation of {command_id} on {id}")))?;
            let timed_out = script.duration_seconds > command.timeout_seconds;
            let ends = command.sent_at + script.duration_seconds.min(command.timeout_seconds);
            let (status, detail, exit_code) = if now < ends {
                (CommandStatus::Running, "InProgress", None)
            } else if timed_out {
                (CommandStatus::Failed, "TimedOut", Some(-1))
            } else if script.exit_code == 0 {
                (CommandStatus::Succeeded, "Success", Some(0))
            } else {
                (CommandStatus::Failed, "Failed", Some(script.exit_code))
            };
            let done = status != CommandStatus::Running;
            // GetCommandInvocation returns the first 24,000 characters of each stream.
            let head = |text: &str| text.chars().take(SSM_OUTPUT_HEAD).collect::<String>();
            out.push(Invocation {
                command_id: command_id.to_string(),
                instance_id: id.clone(),
                status,
                status_detail: detail.to_string(),
                exit_code,
                stdout: if done { head(&script.stdout) } else { String::new() },
                stderr: if done { head(&script.stderr) } else { String::new() },
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl Parameters for Sim {
    async fn get_parameter(&self, name: &str) -> PortResult<Option<Parameter>> {
        let mut world = self.lock();
        world.call(SSM, "GetParameter", vec![AuthRequest::new("ssm:GetParameter", parameter_arn(name))])?;
        Ok(world.parameters.get(name).cloned())
    }

    async fn create_parameter(&self, name: &str, value: &str) -> PortResult<bool> {
        let mut world = self.lock();
        world.call(SSM, "PutParameter", vec![AuthRequest::new("ssm:PutParameter", parameter_arn(name))])?;
        if world.parameters.contains_key(name) {
            return Ok(false);
        }
        let now = world.now;
        world.parameters.insert(name.to_string(), Parameter { name: name.to_string(), value: value.to_string(), version: 1, modified_at: Some(now) });
        Ok(true)
    }

    async fn put_parameter(&self, name: &str, value: &str) -> PortResult<()> {
        let mut world = self.lock();
        world.call(SSM, "PutParameter", vec![AuthRequest::new("ssm:PutParameter", parameter_arn(name))])?;
        let now = world.now;
        let version = world.parameters.get(name).map_or(1, |p| p.version + 1);
        world.parameters.insert(name.to_string(), Parameter { name: name.to_string(), value: value.to_string(), version, modified_at: Some(now) });
        Ok(())
    }

    async fn delete_parameter(&self, name: &str) -> PortResult<bool> {
        let mut world = self.lock();
        world.call(SSM, "DeleteParameter", vec![AuthRequest::new("ssm:DeleteParameter", parameter_arn(name))])?;
        Ok(world.parameters.remove(name).is_some())
    }

    async fn parameters_under(&self, path: &str) -> PortResult<Vec<Parameter>> {
        let mut world = self.lock();
        // Authorized on the path itself, as a parameter ARN
        // (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParametersByPath.html).
        let path = path.trim_end_matches('/');
        // Each page is one call (at most 10 parameters).
        let prefix = format!("{path}/");
        let found: Vec<Parameter> = world.parameters.values().filter(|p| p.name.starts_with(&prefix)).cloned().collect();
        for _ in 0..found.len().div_ceil(10).max(1) {
            world.call(SSM, "GetParametersByPath", vec![AuthRequest::new("ssm:GetParametersByPath", parameter_arn(path))])?;
        }
        Ok(found)
    }
}
