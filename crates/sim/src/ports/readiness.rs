//! What `doctor` and prepare's quota check read, on the sim: tags, target group timing, SSM's
//! view of the instances, the vCPU quota and its use.

use std::collections::BTreeMap;

use async_trait::async_trait;
use stepdeploy_core::model::LaunchTemplateRef;
use stepdeploy_core::ports::*;

use super::common::*;
use crate::Sim;
use crate::iam::{ACCOUNT, AuthRequest, REGION};
use crate::quota::{STANDARD_QUOTA, vcpus_of};
use crate::world::World;

#[async_trait]
impl ResourceTags for Sim {
    async fn group_tags(&self, group: &str) -> PortResult<Tags> {
        const OP: &str = "DescribeAutoScalingGroups";
        let mut world = self.lock();
        world.call(ASG, OP, unscoped("autoscaling:DescribeAutoScalingGroups"))?;
        if !world.groups.contains_key(group) {
            return Err(World::not_found(ASG, OP, "ValidationError", format!("AutoScalingGroup name not found - {group}")));
        }
        Ok(world.tags_of(group))
    }

    async fn launch_template_tags(&self, template: &LaunchTemplateRef) -> PortResult<Tags> {
        const OP: &str = "DescribeLaunchTemplates";
        let mut world = self.lock();
        world.call(EC2, OP, unscoped("ec2:DescribeLaunchTemplates"))?;
        let id = world
            .find_template_id(template)
            .ok_or_else(|| World::not_found(EC2, OP, "InvalidLaunchTemplateId.NotFound", format!("launch template {template:?} does not exist")))?;
        Ok(world.tags_of(&id))
    }

    async fn elb_tags(&self, arns: &[String]) -> PortResult<BTreeMap<String, Tags>> {
        const OP: &str = "DescribeTags";
        let mut world = self.lock();
        world.call(ELB, OP, unscoped("elasticloadbalancing:DescribeTags"))?;
        if arns.len() > MAX_ELB_TAG_ARNS {
            return Err(World::invalid(ELB, OP, "ValidationError", format!("ResourceArns: at most {MAX_ELB_TAG_ARNS} ({})", arns.len())));
        }
        let mut out = BTreeMap::new();
        for arn in arns {
            let (exists, code) = if arn.contains(":listener/") {
                (world.listeners.contains_key(arn), "ListenerNotFound")
            } else {
                (world.target_groups.contains(arn), "TargetGroupNotFound")
            };
            if !exists {
                return Err(World::not_found(ELB, OP, code, format!("'{arn}' not found")));
            }
            out.insert(arn.clone(), world.tags_of(arn));
        }
        Ok(out)
    }
}

#[async_trait]
impl TargetGroupSettings for Sim {
    async fn target_group_timing(&self, target_group_arn: &str) -> PortResult<TargetGroupTiming> {
        let mut world = self.lock();
        world.call(ELB, "DescribeTargetGroups", unscoped("elasticloadbalancing:DescribeTargetGroups"))?;
        world.target_group_exists("DescribeTargetGroups", target_group_arn)?;
        world.call(ELB, "DescribeTargetGroupAttributes", unscoped("elasticloadbalancing:DescribeTargetGroupAttributes"))?;
        // Unless a test set them: checks 10 s apart, healthy after 3 (the sim's health time is
        // about 30 s), and the drain the sim acts out.
        let drain = u32::try_from(world.settings.deregistration_delay_seconds).unwrap_or(0);
        let default = TargetGroupTiming { interval_seconds: 10, healthy_threshold: 3, deregistration_delay_seconds: drain };
        Ok(world.target_group_timing.get(target_group_arn).copied().unwrap_or(default))
    }
}

#[async_trait]
impl ManagedInstances for Sim {
    async fn ssm_ping_status(&self, ids: &[String]) -> PortResult<BTreeMap<String, String>> {
        let mut world = self.lock();
        world.call(SSM, "DescribeInstanceInformation", unscoped("ssm:DescribeInstanceInformation"))?;
        let now = world.now;
        // An agent not (yet) registered, or cut off, is not listed as Online; the sim lists only those that are.
        Ok(ids
            .iter()
            .filter(|id| world.instances.get(*id).is_some_and(|i| i.ssm_online(now)))
            .map(|id| (id.clone(), SSM_ONLINE.to_string()))
            .collect())
    }
}

#[async_trait]
impl VcpuQuota for Sim {
    async fn instance_vcpus(&self, instance_type: &str) -> PortResult<Option<u32>> {
        let mut world = self.lock();
        world.call(EC2, "DescribeInstanceTypes", unscoped("ec2:DescribeInstanceTypes"))?;
        Ok(vcpus_of(instance_type))
    }

    async fn ec2_quota(&self, quota_code: &str) -> PortResult<Option<f64>> {
        let mut world = self.lock();
        let arn = format!("arn:aws:servicequotas:{REGION}:{ACCOUNT}:ec2/{quota_code}");
        world.call("servicequotas", "GetServiceQuota", vec![AuthRequest::new("servicequotas:GetServiceQuota", arn)])?;
        Ok(world.vcpu_quota.filter(|_| quota_code == STANDARD_QUOTA))
    }

    async fn vcpu_usage(&self, usage_class: &str) -> PortResult<Option<f64>> {
        let mut world = self.lock();
        world.call("cloudwatch", "GetMetricStatistics", unscoped("cloudwatch:GetMetricStatistics"))?;
        Ok((usage_class == "Standard/OnDemand").then(|| f64::from(world.standard_vcpus_in_use())))
    }
}
