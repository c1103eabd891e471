//! stepdeploy's port adapters on the AWS SDK for Rust: the only crate that
//! links it. Each adapter maps SDK shapes to the core's types and keeps AWS's
//! error code, message and request id (see [`stepdeploy_core::ports::PortError`]).
//!
//! The endpoint, region and credentials follow the SDK's own settings
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles...), so moto works by
//! environment alone.

mod autoscaling;
mod cloudwatch;
mod ec2;
mod elbv2;
mod error;
mod servicequotas;
mod sfn;
mod sns;
mod ssm;

pub use autoscaling::AwsAutoScaling;
pub use cloudwatch::AwsCloudWatch;
pub use ec2::AwsEc2;
pub use elbv2::AwsElbv2;
pub use servicequotas::AwsServiceQuotas;
pub use sfn::AwsSfn;
pub use sns::AwsSns;
pub use ssm::AwsSsm;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Attempts per call in standard retry mode (throttling and 5xx back off).
pub const MAX_ATTEMPTS: u32 = 5;

/// Loads the SDK config the way the AWS CLI does, with standard retries.
pub async fn load_sdk_config(region: Option<String>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    loader.load().await
}

/// Every adapter, sharing one SDK config.
#[derive(Clone, Debug)]
pub struct AwsAccount {
    /// Auto Scaling.
    pub autoscaling: AwsAutoScaling,
    /// EC2.
    pub ec2: AwsEc2,
    /// ELBv2.
    pub elbv2: AwsElbv2,
    /// SSM.
    pub ssm: AwsSsm,
    /// Step Functions.
    pub sfn: AwsSfn,
    /// CloudWatch.
    pub cloudwatch: AwsCloudWatch,
    /// SNS.
    pub sns: AwsSns,
    /// Service Quotas.
    pub servicequotas: AwsServiceQuotas,
}

impl AwsAccount {
    /// Builds the adapters from an SDK config.
    pub fn new(config: &SdkConfig) -> AwsAccount {
        AwsAccount {
            autoscaling: AwsAutoScaling::new(aws_sdk_autoscaling::Client::new(config)),
            ec2: AwsEc2::new(aws_sdk_ec2::Client::new(config)),
            elbv2: AwsElbv2::new(aws_sdk_elasticloadbalancingv2::Client::new(config)),
            ssm: AwsSsm::new(aws_sdk_ssm::Client::new(config)),
            sfn: AwsSfn::new(aws_sdk_sfn::Client::new(config)),
            cloudwatch: AwsCloudWatch::new(aws_sdk_cloudwatch::Client::new(config)),
            sns: AwsSns::new(aws_sdk_sns::Client::new(config)),
            servicequotas: AwsServiceQuotas::new(aws_sdk_servicequotas::Client::new(config)),
        }
    }
}

/// The whole account as one type, so that handlers that need several
/// capabilities take one value. Each method delegates to its service adapter.
mod account {
    use std::collections::BTreeMap;

    use async_trait::async_trait;
    use stepdeploy_core::model::LaunchTemplateRef;
    use stepdeploy_core::ports::*;

    use super::AwsAccount;

    #[async_trait]
    impl GroupReader for AwsAccount {
        async fn describe_group(&self, name: &str) -> PortResult<GroupDescription> {
            self.autoscaling.describe_group(name).await
        }
        async fn active_instance_refresh(&self, name: &str) -> PortResult<Option<String>> {
            self.autoscaling.active_instance_refresh(name).await
        }
        async fn scaling_activities(
            &self,
            name: &str,
            since: stepdeploy_core::model::Timestamp,
        ) -> PortResult<Vec<stepdeploy_core::model::ScalingActivity>> {
            self.autoscaling.scaling_activities(name, since).await
        }
    }

    #[async_trait]
    impl GroupWriter for AwsAccount {
        async fn update_group(&self, name: &str, update: &GroupUpdate) -> PortResult<()> {
            self.autoscaling.update_group(name, update).await
        }
        async fn set_desired_capacity(&self, name: &str, desired: u32) -> PortResult<()> {
            self.autoscaling.set_desired_capacity(name, desired).await
        }
        async fn terminate_instance(&self, instance_id: &str, decrement: Decrement) -> PortResult<()> {
            self.autoscaling.terminate_instance(instance_id, decrement).await
        }
        async fn enter_standby(&self, group: &str, instance_ids: &[String]) -> PortResult<()> {
            self.autoscaling.enter_standby(group, instance_ids).await
        }
        async fn exit_standby(&self, group: &str, instance_ids: &[String]) -> PortResult<()> {
            self.autoscaling.exit_standby(group, instance_ids).await
        }
    }

    #[async_trait]
    impl ProcessControl for AwsAccount {
        async fn suspend_processes(&self, group: &str, processes: &[String]) -> PortResult<()> {
            self.autoscaling.suspend_processes(group, processes).await
        }
        async fn resume_processes(&self, group: &str, processes: &[String]) -> PortResult<()> {
            self.autoscaling.resume_processes(group, processes).await
        }
    }

    #[async_trait]
    impl InstanceReader for AwsAccount {
        async fn describe_instances(&self, ids: &[String]) -> PortResult<Vec<Ec2Instance>> {
            self.ec2.describe_instances(ids).await
        }
        async fn find_instances(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Ec2Instance>> {
            self.ec2.find_instances(tags).await
        }
        async fn instances_using_images(&self, image_ids: &[String]) -> PortResult<Vec<Ec2Instance>> {
            self.ec2.instances_using_images(image_ids).await
        }
    }

    #[async_trait]
    impl TargetRegistration for AwsAccount {
        async fn deregister_targets(&self, target_group_arn: &str, instance_ids: &[String]) -> PortResult<()> {
            self.elbv2.deregister_targets(target_group_arn, instance_ids).await
        }
        async fn register_targets(&self, target_group_arn: &str, instance_ids: &[String]) -> PortResult<()> {
            self.elbv2.register_targets(target_group_arn, instance_ids).await
        }
    }

    #[async_trait]
    impl InstanceLauncher for AwsAccount {
        async fn launch_instance(&self, request: &LaunchRequest) -> PortResult<String> {
            self.ec2.launch_instance(request).await
        }
        async fn terminate_instances(&self, ids: &[String]) -> PortResult<()> {
            self.ec2.terminate_instances(ids).await
        }
    }

    #[async_trait]
    impl Images for AwsAccount {
        async fn create_image(&self, instance_id: &str, name: &str, tags: &BTreeMap<String, String>) -> PortResult<String> {
            self.ec2.create_image(instance_id, name, tags).await
        }
        async fn describe_images(&self, ids: &[String]) -> PortResult<Vec<Image>> {
            self.ec2.describe_images(ids).await
        }
        async fn find_images(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Image>> {
            self.ec2.find_images(tags).await
        }
        async fn delete_image(&self, image: &Image) -> PortResult<Vec<String>> {
            self.ec2.delete_image(image).await
        }
        async fn find_snapshots(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Snapshot>> {
            self.ec2.find_snapshots(tags).await
        }
        async fn delete_snapshot(&self, snapshot_id: &str) -> PortResult<bool> {
            self.ec2.delete_snapshot(snapshot_id).await
        }
    }

    #[async_trait]
    impl LaunchTemplates for AwsAccount {
        async fn describe_versions(&self, template: &LaunchTemplateRef, versions: &[String]) -> PortResult<Vec<TemplateVersion>> {
            self.ec2.describe_versions(template, versions).await
        }
        async fn create_version(
            &self,
            template: &LaunchTemplateRef,
            source_version: &str,
            image_id: &str,
            description: &str,
        ) -> PortResult<TemplateVersion> {
            self.ec2.create_version(template, source_version, image_id, description).await
        }
        async fn set_default_version(&self, template: &LaunchTemplateRef, version: u64) -> PortResult<()> {
            self.ec2.set_default_version(template, version).await
        }
    }

    #[async_trait]
    impl TargetHealthReader for AwsAccount {
        async fn describe_target_health(&self, target_group_arn: &str) -> PortResult<Vec<TargetHealth>> {
            self.elbv2.describe_target_health(target_group_arn).await
        }
    }

    #[async_trait]
    impl ListenerRules for AwsAccount {
        async fn describe_rules(&self, listener_arn: &str) -> PortResult<Vec<ListenerRule>> {
            self.elbv2.describe_rules(listener_arn).await
        }
        async fn create_rule(&self, listener_arn: &str, priority: u32, rule: &RuleSpec, tags: &BTreeMap<String, String>) -> PortResult<String> {
            self.elbv2.create_rule(listener_arn, priority, rule, tags).await
        }
        async fn delete_rule(&self, rule_arn: &str) -> PortResult<bool> {
            self.elbv2.delete_rule(rule_arn).await
        }
    }

    #[async_trait]
    impl Parameters for AwsAccount {
        async fn get_parameter(&self, name: &str) -> PortResult<Option<Parameter>> {
            self.ssm.get_parameter(name).await
        }
        async fn create_parameter(&self, name: &str, value: &str) -> PortResult<bool> {
            self.ssm.create_parameter(name, value).await
        }
        async fn put_parameter(&self, name: &str, value: &str) -> PortResult<()> {
            self.ssm.put_parameter(name, value).await
        }
        async fn delete_parameter(&self, name: &str) -> PortResult<bool> {
            self.ssm.delete_parameter(name).await
        }
        async fn parameters_under(&self, path: &str) -> PortResult<Vec<Parameter>> {
            self.ssm.parameters_under(path).await
        }
    }

    #[async_trait]
    impl CommandRunner for AwsAccount {
        async fn send_command(&self, request: &CommandRequest<'_>) -> PortResult<String> {
            self.ssm.send_command(request).await
        }
        async fn invocations(&self, command_id: &str, instance_ids: &[String]) -> PortResult<Vec<Invocation>> {
            self.ssm.invocations(command_id, instance_ids).await
        }
        async fn recent_commands(&self, document: &str, since: stepdeploy_core::model::Timestamp) -> PortResult<Vec<(String, String)>> {
            self.ssm.recent_commands(document, since).await
        }
    }

    #[async_trait]
    impl Executions for AwsAccount {
        async fn execution_running(&self, execution: &str) -> PortResult<Option<bool>> {
            self.sfn.execution_running(execution).await
        }
    }

    #[async_trait]
    impl TaskAnswers for AwsAccount {
        async fn send_task_success(&self, token: &str, output: &str) -> PortResult<()> {
            self.sfn.send_task_success(token, output).await
        }
        async fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> PortResult<()> {
            self.sfn.send_task_failure(token, error, cause).await
        }
    }

    #[async_trait]
    impl Notifications for AwsAccount {
        async fn publish(&self, topic_arn: &str, subject: &str, message: &str) -> PortResult<String> {
            self.sns.publish(topic_arn, subject, message).await
        }
    }

    #[async_trait]
    impl Alarms for AwsAccount {
        async fn describe_alarms(&self, names: &[String]) -> PortResult<Vec<AlarmState>> {
            self.cloudwatch.describe_alarms(names).await
        }
    }

    #[async_trait]
    impl ResourceTags for AwsAccount {
        async fn group_tags(&self, group: &str) -> PortResult<Tags> {
            self.autoscaling.group_tags(group).await
        }
        async fn launch_template_tags(&self, template: &LaunchTemplateRef) -> PortResult<Tags> {
            self.ec2.launch_template_tags(template).await
        }
        async fn elb_tags(&self, arns: &[String]) -> PortResult<BTreeMap<String, Tags>> {
            self.elbv2.elb_tags(arns).await
        }
    }

    #[async_trait]
    impl TargetGroupSettings for AwsAccount {
        async fn target_group_timing(&self, target_group_arn: &str) -> PortResult<TargetGroupTiming> {
            self.elbv2.target_group_timing(target_group_arn).await
        }
    }

    #[async_trait]
    impl ManagedInstances for AwsAccount {
        async fn ssm_ping_status(&self, ids: &[String]) -> PortResult<BTreeMap<String, String>> {
            self.ssm.ssm_ping_status(ids).await
        }
    }

    #[async_trait]
    impl VcpuQuota for AwsAccount {
        async fn instance_vcpus(&self, instance_type: &str) -> PortResult<Option<u32>> {
            self.ec2.instance_vcpus(instance_type).await
        }
        async fn ec2_quota(&self, quota_code: &str) -> PortResult<Option<f64>> {
            self.servicequotas.ec2_quota(quota_code).await
        }
        async fn vcpu_usage(&self, usage_class: &str) -> PortResult<Option<f64>> {
            self.cloudwatch.vcpu_usage(usage_class).await
        }
    }
}
