//! The AWS adapters with one moto gap worked around, for tests only.
//!
//! moto reports every Auto Scaling instance at its launch template's
//! default version (`../shared/reference/moto.md`), where AWS reports the
//! version each was launched from. The model trusts a reported version, so
//! on moto this wrapper drops the per-instance version and the model falls
//! back to the AMI, which the tests give each version its own of. Nothing in
//! the adapters themselves changes.

use std::collections::BTreeMap;

use async_trait::async_trait;
use stepdeploy_aws::AwsAccount;
use stepdeploy_core::model::LaunchTemplateRef;
use stepdeploy_core::ports::*;

/// [`AwsAccount`] with moto's per-instance launch template versions dropped.
pub struct MotoAccount(pub AwsAccount);

#[async_trait]
impl GroupReader for MotoAccount {
    async fn describe_group(&self, name: &str) -> PortResult<GroupDescription> {
        let mut group = self.0.autoscaling.describe_group(name).await?;
        for member in &mut group.instances {
            member.launch_template_version = None;
        }
        Ok(group)
    }
    // moto doesn't implement DescribeInstanceRefreshes (it answers with an HTML 500 page);
    // the adapter's own test is on aws-smithy-mocks.
    async fn active_instance_refresh(&self, _name: &str) -> PortResult<Option<String>> {
        Ok(None)
    }
    async fn scaling_activities(
        &self,
        name: &str,
        since: stepdeploy_core::model::Timestamp,
    ) -> PortResult<Vec<stepdeploy_core::model::ScalingActivity>> {
        self.0.autoscaling.scaling_activities(name, since).await
    }
}

#[async_trait]
impl GroupWriter for MotoAccount {
    async fn update_group(&self, name: &str, update: &GroupUpdate) -> PortResult<()> {
        self.0.autoscaling.update_group(name, update).await
    }
    async fn set_desired_capacity(&self, name: &str, desired: u32) -> PortResult<()> {
        self.0.autoscaling.set_desired_capacity(name, desired).await
    }
    async fn terminate_instance(&self, instance_id: &str, decrement: Decrement) -> PortResult<()> {
        self.0.autoscaling.terminate_instance(instance_id, decrement).await
    }
    async fn enter_standby(&self, group: &str, instance_ids: &[String]) -> PortResult<()> {
        self.0.autoscaling.enter_standby(group, instance_ids).await
    }
    async fn exit_standby(&self, group: &str, instance_ids: &[String]) -> PortResult<()> {
        self.0.autoscaling.exit_standby(group, instance_ids).await
    }
}

#[async_trait]
impl ProcessControl for MotoAccount {
    async fn suspend_processes(&self, group: &str, processes: &[String]) -> PortResult<()> {
        self.0.autoscaling.suspend_processes(group, processes).await
    }
    async fn resume_processes(&self, group: &str, processes: &[String]) -> PortResult<()> {
        self.0.autoscaling.resume_processes(group, processes).await
    }
}

#[async_trait]
impl InstanceReader for MotoAccount {
    async fn describe_instances(&self, ids: &[String]) -> PortResult<Vec<Ec2Instance>> {
        self.0.ec2.describe_instances(ids).await
    }
    async fn find_instances(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Ec2Instance>> {
        self.0.ec2.find_instances(tags).await
    }
    async fn instances_using_images(&self, image_ids: &[String]) -> PortResult<Vec<Ec2Instance>> {
        self.0.ec2.instances_using_images(image_ids).await
    }
}

#[async_trait]
impl TargetRegistration for MotoAccount {
    async fn deregister_targets(&self, target_group_arn: &str, instance_ids: &[String]) -> PortResult<()> {
        self.0.elbv2.deregister_targets(target_group_arn, instance_ids).await
    }
    async fn register_targets(&self, target_group_arn: &str, instance_ids: &[String]) -> PortResult<()> {
        self.0.elbv2.register_targets(target_group_arn, instance_ids).await
    }
}

#[async_trait]
impl InstanceLauncher for MotoAccount {
    async fn launch_instance(&self, request: &LaunchRequest) -> PortResult<String> {
        self.0.ec2.launch_instance(request).await
    }
    async fn terminate_instances(&self, ids: &[String]) -> PortResult<()> {
        self.0.ec2.terminate_instances(ids).await
    }
}

#[async_trait]
impl Images for MotoAccount {
    async fn create_image(&self, instance_id: &str, name: &str, tags: &BTreeMap<String, String>) -> PortResult<String> {
        self.0.ec2.create_image(instance_id, name, tags).await
    }
    async fn describe_images(&self, ids: &[String]) -> PortResult<Vec<Image>> {
        self.0.ec2.describe_images(ids).await
    }
    async fn find_images(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Image>> {
        self.0.ec2.find_images(tags).await
    }
    async fn delete_image(&self, image: &Image) -> PortResult<Vec<String>> {
        self.0.ec2.delete_image(image).await
    }
    async fn find_snapshots(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Snapshot>> {
        self.0.ec2.find_snapshots(tags).await
    }
    async fn delete_snapshot(&self, snapshot_id: &str) -> PortResult<bool> {
        self.0.ec2.delete_snapshot(snapshot_id).await
    }
}

#[async_trait]
impl LaunchTemplates for MotoAccount {
    async fn describe_versions(&self, template: &LaunchTemplateRef, versions: &[String]) -> PortResult<Vec<TemplateVersion>> {
        self.0.ec2.describe_versions(template, versions).await
    }
    async fn create_version(
        &self,
        template: &LaunchTemplateRef,
        source_version: &str,
        image_id: &str,
        description: &str,
    ) -> PortResult<TemplateVersion> {
        self.0.ec2.create_version(template, source_version, image_id, description).await
    }
    async fn set_default_version(&self, template: &LaunchTemplateRef, version: u64) -> PortResult<()> {
        self.0.ec2.set_default_version(template, version).await
    }
}

#[async_trait]
impl TargetHealthReader for MotoAccount {
    async fn describe_target_health(&self, target_group_arn: &str) -> PortResult<Vec<TargetHealth>> {
        self.0.elbv2.describe_target_health(target_group_arn).await
    }
}

#[async_trait]
impl ListenerRules for MotoAccount {
    async fn describe_rules(&self, listener_arn: &str) -> PortResult<Vec<ListenerRule>> {
        self.0.elbv2.describe_rules(listener_arn).await
    }
    async fn create_rule(&self, listener_arn: &str, priority: u32, rule: &RuleSpec, tags: &BTreeMap<String, String>) -> PortResult<String> {
        self.0.elbv2.create_rule(listener_arn, priority, rule, tags).await
    }
    async fn delete_rule(&self, rule_arn: &str) -> PortResult<bool> {
        self.0.elbv2.delete_rule(rule_arn).await
    }
}

#[async_trait]
impl Parameters for MotoAccount {
    async fn get_parameter(&self, name: &str) -> PortResult<Option<Parameter>> {
        self.0.ssm.get_parameter(name).await
    }
    async fn create_parameter(&self, name: &str, value: &str) -> PortResult<bool> {
        self.0.ssm.create_parameter(name, value).await
    }
    async fn put_parameter(&self, name: &str, value: &str) -> PortResult<()> {
        self.0.ssm.put_parameter(name, value).await
    }
    async fn delete_parameter(&self, name: &str) -> PortResult<bool> {
        self.0.ssm.delete_parameter(name).await
    }
    async fn parameters_under(&self, path: &str) -> PortResult<Vec<Parameter>> {
        self.0.ssm.parameters_under(path).await
    }
}

#[async_trait]
impl CommandRunner for MotoAccount {
    async fn send_command(&self, request: &CommandRequest<'_>) -> PortResult<String> {
        self.0.ssm.send_command(request).await
    }
    async fn invocations(&self, command_id: &str, instance_ids: &[String]) -> PortResult<Vec<Invocation>> {
        self.0.ssm.invocations(command_id, instance_ids).await
    }
    async fn recent_commands(&self, document: &str, since: stepdeploy_core::model::Timestamp) -> PortResult<Vec<(String, String)>> {
        self.0.ssm.recent_commands(document, since).await
    }
}

#[async_trait]
impl Executions for MotoAccount {
    async fn execution_running(&self, execution: &str) -> PortResult<Option<bool>> {
        self.0.sfn.execution_running(execution).await
    }
}

#[async_trait]
impl TaskAnswers for MotoAccount {
    async fn send_task_success(&self, token: &str, output: &str) -> PortResult<()> {
        self.0.sfn.send_task_success(token, output).await
    }
    async fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> PortResult<()> {
        self.0.sfn.send_task_failure(token, error, cause).await
    }
}

#[async_trait]
impl Notifications for MotoAccount {
    async fn publish(&self, topic_arn: &str, subject: &str, message: &str) -> PortResult<String> {
        self.0.sns.publish(topic_arn, subject, message).await
    }
}

#[async_trait]
impl Alarms for MotoAccount {
    async fn describe_alarms(&self, names: &[String]) -> PortResult<Vec<AlarmState>> {
        self.0.cloudwatch.describe_alarms(names).await
    }
}

#[async_trait]
impl ResourceTags for MotoAccount {
    async fn group_tags(&self, group: &str) -> PortResult<Tags> {
        self.0.group_tags(group).await
    }
    async fn launch_template_tags(&self, template: &LaunchTemplateRef) -> PortResult<Tags> {
        self.0.launch_template_tags(template).await
    }
    async fn elb_tags(&self, arns: &[String]) -> PortResult<BTreeMap<String, Tags>> {
        self.0.elb_tags(arns).await
    }
}

#[async_trait]
impl TargetGroupSettings for MotoAccount {
    async fn target_group_timing(&self, target_group_arn: &str) -> PortResult<TargetGroupTiming> {
        self.0.target_group_timing(target_group_arn).await
    }
}

#[async_trait]
impl ManagedInstances for MotoAccount {
    async fn ssm_ping_status(&self, ids: &[String]) -> PortResult<BTreeMap<String, String>> {
        self.0.ssm_ping_status(ids).await
    }
}

#[async_trait]
impl VcpuQuota for MotoAccount {
    async fn instance_vcpus(&self, instance_type: &str) -> PortResult<Option<u32>> {
        self.0.instance_vcpus(instance_type).await
    }
    async fn ec2_quota(&self, quota_code: &str) -> PortResult<Option<f64>> {
        self.0.ec2_quota(quota_code).await
    }
    async fn vcpu_usage(&self, usage_class: &str) -> PortResult<Option<f64>> {
        self.0.vcpu_usage(usage_class).await
    }
}
