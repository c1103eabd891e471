//! Auto Scaling: groups, capacity, termination and processes.

use async_trait::async_trait;
use aws_sdk_autoscaling::Client;
use aws_sdk_autoscaling::types::{AutoScalingGroup, LaunchTemplateSpecification};
use stepdeploy_core::model::{GroupFeatures, GroupSettings, LaunchTemplateRef, Lifecycle, ScalingActivity, Timestamp};
use stepdeploy_core::ports::{
    Decrement, ErrorKind, GroupDescription, GroupMember, GroupReader, GroupUpdate, GroupWriter, PortError, PortResult, ProcessControl,
};

use crate::error::{missing, port_error};

const SERVICE: &str = "autoscaling";

/// The Auto Scaling ports on the SDK.
#[derive(Clone, Debug)]
pub struct AwsAutoScaling {
    client: Client,
}

impl AwsAutoScaling {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The group's tags, from DescribeAutoScalingGroups; `NotFound` for no such group.
    pub async fn group_tags(&self, name: &str) -> PortResult<std::collections::BTreeMap<String, String>> {
        let group = self.find_group(name).await?;
        Ok(group.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect())
    }

    /// DescribeAutoScalingGroups of one group; `NotFound` for no such group.
    async fn find_group(&self, name: &str) -> PortResult<AutoScalingGroup> {
        let out =
            self.client.describe_auto_scaling_groups().auto_scaling_group_names(name).send().await.map_err(|e| port_error(SERVICE, DESCRIBE, e))?;
        out.auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
            .cloned()
            .ok_or_else(|| PortError::new(ErrorKind::NotFound, SERVICE, DESCRIBE, None, format!("Auto Scaling group {name:?} not found")))
    }
}

const DESCRIBE: &str = "DescribeAutoScalingGroups";

fn to_u32(value: Option<i32>, operation: &'static str, field: &str) -> PortResult<u32> {
    value.and_then(|v| u32::try_from(v).ok()).ok_or_else(|| missing(SERVICE, operation, field))
}

fn template_ref(spec: &LaunchTemplateSpecification) -> LaunchTemplateRef {
    LaunchTemplateRef {
        id: spec.launch_template_id().map(str::to_string),
        name: spec.launch_template_name().map(str::to_string),
        version: spec.version().map(str::to_string),
    }
}

#[async_trait]
impl GroupReader for AwsAutoScaling {
    async fn describe_group(&self, name: &str) -> PortResult<GroupDescription> {
        const OP: &str = DESCRIBE;
        let group = self.find_group(name).await?;
        let mut instances = Vec::new();
        for i in group.instances() {
            instances.push(GroupMember {
                id: i.instance_id().ok_or_else(|| missing(SERVICE, OP, "InstanceId"))?.to_string(),
                lifecycle: Lifecycle::parse(i.lifecycle_state().map(|s| s.as_str()).unwrap_or_default()),
                healthy: i.health_status() == Some("Healthy"),
                launch_template_id: i.launch_template().and_then(|t| t.launch_template_id()).map(str::to_string),
                launch_template_version: i.launch_template().and_then(|t| t.version()).map(str::to_string),
                availability_zone: i.availability_zone().unwrap_or_default().to_string(),
                protected_from_scale_in: i.protected_from_scale_in().unwrap_or(false),
            });
        }
        Ok(GroupDescription {
            settings: GroupSettings {
                name: name.to_string(),
                min_size: to_u32(group.min_size(), OP, "MinSize")?,
                max_size: to_u32(group.max_size(), OP, "MaxSize")?,
                desired_capacity: to_u32(group.desired_capacity(), OP, "DesiredCapacity")?,
                suspended_processes: group.suspended_processes().iter().filter_map(|p| p.process_name()).map(str::to_string).collect(),
                launch_template: group
                    .launch_template()
                    .or_else(|| group.mixed_instances_policy().and_then(|m| m.launch_template()).and_then(|t| t.launch_template_specification()))
                    .map(template_ref),
                target_group_arns: group.target_group_arns().to_vec(),
                subnet_ids: group
                    .vpc_zone_identifier()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                features: GroupFeatures {
                    // A real policy always has its LaunchTemplate (required:
                    // https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_MixedInstancesPolicy.html);
                    // an empty one (moto's CloudFormation writes `{}`) is no policy.
                    mixed_instances_policy: group.mixed_instances_policy().is_some_and(|m| m.launch_template().is_some()),
                    warm_pool: group.warm_pool_configuration().is_some(),
                    desired_capacity_type: group.desired_capacity_type().map(str::to_string),
                    launch_configuration: group.launch_configuration_name().map(str::to_string),
                },
            },
            instances,
        })
    }

    async fn scaling_activities(&self, name: &str, since: Timestamp) -> PortResult<Vec<ScalingActivity>> {
        const OP: &str = "DescribeScalingActivities";
        // Newest first; one page of 50 covers a poll interval of a rollout's activity.
        let out = self
            .client
            .describe_scaling_activities()
            .auto_scaling_group_name(name)
            .max_records(50)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, OP, e))?;
        Ok(out
            .activities()
            .iter()
            .filter_map(|a| {
                let started_at = a.start_time()?.secs();
                (started_at >= since).then(|| ScalingActivity {
                    started_at,
                    status: a.status_code().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    description: a.description().unwrap_or_default().to_string(),
                    cause: a.cause().unwrap_or_default().to_string(),
                    message: a.status_message().map(str::to_string),
                })
            })
            .collect())
    }

    async fn active_instance_refresh(&self, name: &str) -> PortResult<Option<String>> {
        const OP: &str = "DescribeInstanceRefreshes";
        // The newest refreshes come first; one page holds any that is still running.
        let out = self.client.describe_instance_refreshes().auto_scaling_group_name(name).send().await.map_err(|e| port_error(SERVICE, OP, e))?;
        let active = out.instance_refreshes().iter().find(|r| {
            use aws_sdk_autoscaling::types::InstanceRefreshStatus as S;
            matches!(r.status(), Some(S::Pending | S::InProgress | S::Cancelling | S::RollbackInProgress | S::Baking))
        });
        Ok(active.map(|r| format!("{} {}", r.instance_refresh_id().unwrap_or("?"), r.status().map(|s| s.as_str()).unwrap_or_default())))
    }
}

fn to_i32(value: Option<u32>) -> Option<i32> {
    value.map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

#[async_trait]
impl GroupWriter for AwsAutoScaling {
    async fn update_group(&self, name: &str, update: &GroupUpdate) -> PortResult<()> {
        let template = update.launch_template.as_ref().map(|t| {
            LaunchTemplateSpecification::builder()
                .set_launch_template_id(t.id.clone())
                // AWS takes an id or a name, not both.
                .set_launch_template_name(if t.id.is_some() { None } else { t.name.clone() })
                .set_version(t.version.clone())
                .build()
        });
        self.client
            .update_auto_scaling_group()
            .auto_scaling_group_name(name)
            .set_min_size(to_i32(update.min_size))
            .set_max_size(to_i32(update.max_size))
            .set_desired_capacity(to_i32(update.desired_capacity))
            .set_launch_template(template)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "UpdateAutoScalingGroup", e))?;
        Ok(())
    }

    async fn set_desired_capacity(&self, name: &str, desired: u32) -> PortResult<()> {
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(name)
            .desired_capacity(i32::try_from(desired).unwrap_or(i32::MAX))
            .honor_cooldown(false)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "SetDesiredCapacity", e))?;
        Ok(())
    }

    async fn terminate_instance(&self, instance_id: &str, decrement: Decrement) -> PortResult<()> {
        self.client
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance_id)
            .should_decrement_desired_capacity(decrement.0)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "TerminateInstanceInAutoScalingGroup", e))?;
        Ok(())
    }

    async fn enter_standby(&self, group: &str, instance_ids: &[String]) -> PortResult<()> {
        self.client
            .enter_standby()
            .auto_scaling_group_name(group)
            .set_instance_ids(Some(instance_ids.to_vec()))
            // Without the decrement Auto Scaling would launch a replacement for each.
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "EnterStandby", e))?;
        Ok(())
    }

    async fn exit_standby(&self, group: &str, instance_ids: &[String]) -> PortResult<()> {
        self.client
            .exit_standby()
            .auto_scaling_group_name(group)
            .set_instance_ids(Some(instance_ids.to_vec()))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "ExitStandby", e))?;
        Ok(())
    }
}

#[async_trait]
impl ProcessControl for AwsAutoScaling {
    async fn suspend_processes(&self, group: &str, processes: &[String]) -> PortResult<()> {
        if processes.is_empty() {
            return Ok(());
        }
        self.client
            .suspend_processes()
            .auto_scaling_group_name(group)
            .set_scaling_processes(Some(processes.to_vec()))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "SuspendProcesses", e))?;
        Ok(())
    }

    async fn resume_processes(&self, group: &str, processes: &[String]) -> PortResult<()> {
        if processes.is_empty() {
            return Ok(());
        }
        self.client
            .resume_processes()
            .auto_scaling_group_name(group)
            .set_scaling_processes(Some(processes.to_vec()))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "ResumeProcesses", e))?;
        Ok(())
    }
}
