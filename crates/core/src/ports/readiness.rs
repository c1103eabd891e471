//! What `doctor` and prepare's capacity check read besides the fleet itself: the tags stepdeploy's
//! IAM policies condition on, a target group's timing, SSM's view of the instances, and the
//! account's On-Demand vCPU quota. All read-only.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::PortResult;
use crate::model::LaunchTemplateRef;

/// Tags by key.
pub type Tags = BTreeMap<String, String>;

/// The most ARNs one ELBv2 DescribeTags call takes
/// (<https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTags.html>).
pub const MAX_ELB_TAG_ARNS: usize = 20;

/// Reads the tags stepdeploy's IAM policies check (`aws:ResourceTag/stepdeploy:deployment`).
#[async_trait]
pub trait ResourceTags: Send + Sync {
    /// The Auto Scaling group's tags (DescribeAutoScalingGroups), or `NotFound`.
    async fn group_tags(&self, group: &str) -> PortResult<Tags>;
    /// The launch template's tags (DescribeLaunchTemplates), or `NotFound`.
    async fn launch_template_tags(&self, template: &LaunchTemplateRef) -> PortResult<Tags>;
    /// The tags of target groups and listeners (ELBv2 DescribeTags, [`MAX_ELB_TAG_ARNS`] a call),
    /// by ARN; an unknown ARN is `NotFound`.
    async fn elb_tags(&self, arns: &[String]) -> PortResult<BTreeMap<String, Tags>>;
}

/// How a target group decides health and draining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroupTiming {
    /// Seconds between health checks (`HealthCheckIntervalSeconds`).
    pub interval_seconds: u32,
    /// Consecutive passes before a target is healthy (`HealthyThresholdCount`).
    pub healthy_threshold: u32,
    /// How long a deregistered target drains (`deregistration_delay.timeout_seconds`).
    pub deregistration_delay_seconds: u32,
}

impl TargetGroupTiming {
    /// The soonest a newly registered target can be healthy: every check it must pass, one
    /// interval apart
    /// (<https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html>).
    pub fn seconds_to_healthy(&self) -> u64 {
        u64::from(self.interval_seconds) * u64::from(self.healthy_threshold)
    }
}

/// Reads a target group's health check and draining settings.
#[async_trait]
pub trait TargetGroupSettings: Send + Sync {
    /// DescribeTargetGroups and DescribeTargetGroupAttributes of one target group, or `NotFound`.
    async fn target_group_timing(&self, target_group_arn: &str) -> PortResult<TargetGroupTiming>;
}

/// SSM's `PingStatus` of an instance that runs its agent and can reach it.
pub const SSM_ONLINE: &str = "Online";

/// Reads which instances SSM can manage (what Run Command and bakes need).
#[async_trait]
pub trait ManagedInstances: Send + Sync {
    /// SSM DescribeInstanceInformation of these instances: `PingStatus` by id. An instance
    /// whose agent never registered (no instance profile, no route to SSM) is absent.
    async fn ssm_ping_status(&self, ids: &[String]) -> PortResult<BTreeMap<String, String>>;
}

/// Reads the account's On-Demand vCPU quota and what uses it.
#[async_trait]
pub trait VcpuQuota: Send + Sync {
    /// An instance type's default vCPUs (EC2 DescribeInstanceTypes); `None` for a type EC2 doesn't know.
    async fn instance_vcpus(&self, instance_type: &str) -> PortResult<Option<u32>>;
    /// The applied value of an EC2 quota (Service Quotas GetServiceQuota, service code `ec2`);
    /// `None` where the account has no applied value.
    async fn ec2_quota(&self, quota_code: &str) -> PortResult<Option<f64>>;
    /// The vCPUs in use in a usage class, e.g. `Standard/OnDemand`: the latest Maximum of
    /// CloudWatch's `AWS/Usage` `ResourceCount` over the last 15 minutes; `None` with no data.
    async fn vcpu_usage(&self, usage_class: &str) -> PortResult<Option<f64>>;
}
