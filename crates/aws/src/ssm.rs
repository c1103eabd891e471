//! SSM: Run Command and Parameter Store.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{CommandInvocationStatus, InstanceInformationStringFilter, ParameterType};
use aws_smithy_types::DateTime;
use stepdeploy_core::model::Timestamp;
use stepdeploy_core::ports::{CommandRequest, CommandRunner, CommandStatus, ErrorKind, Invocation, Parameter, Parameters, PortError, PortResult};

use crate::error::{missing, port_error};

const SERVICE: &str = "ssm";

/// SSM comments are at most 100 characters.
const MAX_COMMENT: usize = 100;

/// The SSM ports on the SDK.
#[derive(Clone, Debug)]
pub struct AwsSsm {
    client: Client,
}

/// The most instance ids one DescribeInstanceInformation filter takes here (the API allows
/// more values; this keeps each request small).
const PING_IDS_PER_CALL: usize = 50;

impl AwsSsm {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// SSM's PingStatus of these instances (DescribeInstanceInformation, filtered by id and paged);
    /// an instance SSM never registered is absent.
    pub async fn ssm_ping_status(&self, ids: &[String]) -> PortResult<BTreeMap<String, String>> {
        const OP: &str = "DescribeInstanceInformation";
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(PING_IDS_PER_CALL) {
            let filter = InstanceInformationStringFilter::builder()
                .key("InstanceIds")
                .set_values(Some(chunk.to_vec()))
                .build()
                .map_err(|e| PortError::new(ErrorKind::Invalid, SERVICE, OP, None, e.to_string()))?;
            let mut pages = self.client.describe_instance_information().filters(filter).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| port_error(SERVICE, OP, e))?;
                for info in page.instance_information_list() {
                    if let (Some(id), Some(status)) = (info.instance_id(), info.ping_status()) {
                        out.insert(id.to_string(), status.as_str().to_string());
                    }
                }
            }
        }
        Ok(out)
    }
}

fn status_of(status: Option<&CommandInvocationStatus>) -> CommandStatus {
    match status {
        Some(CommandInvocationStatus::Success) => CommandStatus::Succeeded,
        Some(CommandInvocationStatus::Pending | CommandInvocationStatus::InProgress | CommandInvocationStatus::Delayed) | None => {
            CommandStatus::Running
        }
        Some(_) => CommandStatus::Failed,
    }
}

#[async_trait]
impl CommandRunner for AwsSsm {
    async fn send_command(&self, request: &CommandRequest<'_>) -> PortResult<String> {
        const OP: &str = "SendCommand";
        let comment: String = request.comment.chars().take(MAX_COMMENT).collect();
        let out = self
            .client
            .send_command()
            .document_name(request.document)
            .set_instance_ids(Some(request.instance_ids.to_vec()))
            .parameters("commands", vec![request.command.to_string()])
            // An ENV_VAR parameter of the document: the revision never becomes script text.
            .parameters("revision", vec![request.revision.to_string()])
            .parameters("executionTimeout", vec![request.timeout_seconds.to_string()])
            .comment(comment)
            .set_cloud_watch_output_config(request.output_log_group.map(|group| {
                aws_sdk_ssm::types::CloudWatchOutputConfig::builder().cloud_watch_log_group_name(group).cloud_watch_output_enabled(true).build()
            }))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, OP, e))?;
        out.command().and_then(|c| c.command_id()).map(str::to_string).ok_or_else(|| missing(SERVICE, OP, "CommandId"))
    }

    async fn recent_commands(&self, document: &str, since: Timestamp) -> PortResult<Vec<(String, String)>> {
        use aws_sdk_ssm::types::{CommandFilter, CommandFilterKey};
        let after = DateTime::from_secs(since).fmt(aws_smithy_types::date_time::Format::DateTime).map_err(|e| {
            stepdeploy_core::ports::PortError::new(stepdeploy_core::ports::ErrorKind::Invalid, SERVICE, "ListCommands", None, e.to_string())
        })?;
        let filters = vec![
            CommandFilter::builder()
                .key(CommandFilterKey::DocumentName)
                .value(document)
                .build()
                .map_err(|e| missing(SERVICE, "ListCommands", &e.to_string()))?,
            CommandFilter::builder()
                .key(CommandFilterKey::InvokedAfter)
                .value(after)
                .build()
                .map_err(|e| missing(SERVICE, "ListCommands", &e.to_string()))?,
        ];
        let mut pages = self.client.list_commands().set_filters(Some(filters)).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error(SERVICE, "ListCommands", e))?;
            for command in page.commands() {
                if let Some(id) = command.command_id() {
                    out.push((id.to_string(), command.comment().unwrap_or_default().to_string()));
                }
            }
        }
        Ok(out)
    }

    async fn invocations(&self, command_id: &str, instance_ids: &[String]) -> PortResult<Vec<Invocation>> {
        let mut out = Vec::new();
        for instance_id in instance_ids {
            let result = self.client.get_command_invocation().command_id(command_id).instance_id(instance_id).send().await;
            let invocation = match result {
                Ok(o) => {
                    let status = status_of(o.status());
                    Invocation {
                        command_id: command_id.to_string(),
                        instance_id: instance_id.clone(),
                        status,
                        status_detail: o.status_details().unwrap_or_default().to_string(),
                        exit_code: (status != CommandStatus::Running).then_some(o.response_code()),
                        stdout: o.standard_output_content().unwrap_or_default().to_string(),
                        stderr: o.standard_error_content().unwrap_or_default().to_string(),
                    }
                }
                // Right after SendCommand the invocation may not exist yet (eventual consistency).
                Err(e) if e.as_service_error().is_some_and(|s| s.is_invocation_does_not_exist()) => Invocation {
                    command_id: command_id.to_string(),
                    instance_id: instance_id.clone(),
                    status: CommandStatus::Running,
                    status_detail: "Pending".into(),
                    exit_code: None,
                    stdout: String::new(),
                    stderr: String::new(),
                },
                Err(e) => return Err(port_error(SERVICE, "GetCommandInvocation", e)),
            };
            out.push(invocation);
        }
        Ok(out)
    }
}

#[async_trait]
impl Parameters for AwsSsm {
    async fn get_parameter(&self, name: &str) -> PortResult<Option<Parameter>> {
        match self.client.get_parameter().name(name).send().await {
            Ok(out) => {
                let p = out.parameter().ok_or_else(|| missing(SERVICE, "GetParameter", "Parameter"))?;
                Ok(Some(Parameter {
                    name: name.to_string(),
                    value: p.value().unwrap_or_default().to_string(),
                    version: p.version(),
                    modified_at: p.last_modified_date().map(DateTime::secs),
                }))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_parameter_not_found()) => Ok(None),
            Err(e) => Err(port_error(SERVICE, "GetParameter", e)),
        }
    }

    async fn create_parameter(&self, name: &str, value: &str) -> PortResult<bool> {
        let result = self.client.put_parameter().name(name).value(value).r#type(ParameterType::String).overwrite(false).send().await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_parameter_already_exists()) => Ok(false),
            Err(e) => Err(port_error(SERVICE, "PutParameter", e)),
        }
    }

    async fn put_parameter(&self, name: &str, value: &str) -> PortResult<()> {
        self.client
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "PutParameter", e))?;
        Ok(())
    }

    async fn delete_parameter(&self, name: &str) -> PortResult<bool> {
        match self.client.delete_parameter().name(name).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_parameter_not_found()) => Ok(false),
            Err(e) => Err(port_error(SERVICE, "DeleteParameter", e)),
        }
    }

    async fn parameters_under(&self, path: &str) -> PortResult<Vec<Parameter>> {
        let mut pages = self.client.get_parameters_by_path().path(path.trim_end_matches('/')).recursive(true).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error(SERVICE, "GetParametersByPath", e))?;
            for p in page.parameters() {
                out.push(Parameter {
                    name: p.name().unwrap_or_default().to_string(),
                    value: p.value().unwrap_or_default().to_string(),
                    version: p.version(),
                    modified_at: p.last_modified_date().map(DateTime::secs),
                });
            }
        }
        Ok(out)
    }
}
