//! The account's Running On-Demand Standard instances quota, in vCPUs: what Auto Scaling's
//! launches and RunInstances meet, and what Service Quotas and `AWS/Usage` report
//! (<https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html>). The sim
//! models this one quota; other families launch without limit.

use stepdeploy_core::quota::on_demand_class;

use crate::world::World;

/// The sim's templates launch this type unless a test says otherwise.
pub const DEFAULT_INSTANCE_TYPE: &str = "t3.small";

/// The instance types the sim knows, with their default vCPUs (as DescribeInstanceTypes reports them).
pub const INSTANCE_VCPUS: &[(&str, u32)] =
    &[("t3.micro", 2), ("t3.small", 2), ("t3.medium", 2), ("m5.large", 2), ("m5.xlarge", 4), ("c5.2xlarge", 8)];

/// The Standard quota's code.
pub const STANDARD_QUOTA: &str = "L-1216C47A";

pub fn vcpus_of(instance_type: &str) -> Option<u32> {
    INSTANCE_VCPUS.iter().find(|(t, _)| *t == instance_type).map(|(_, v)| *v)
}

fn counts_against_standard(instance_type: &str) -> bool {
    on_demand_class(instance_type).is_some_and(|c| c.quota_code == STANDARD_QUOTA)
}

impl World {
    /// vCPUs that running and pending instances of Standard families use now.
    pub fn standard_vcpus_in_use(&self) -> u32 {
        let now = self.now;
        self.instances
            .values()
            .filter(|i| !i.is_terminated(now))
            .filter_map(|i| i.instance_type.as_deref().filter(|t| counts_against_standard(t)).and_then(vcpus_of))
            .sum()
    }

    /// How many of `wanted` instances of `instance_type` the quota lets launch now.
    pub fn launches_within_quota(&self, instance_type: Option<&str>, wanted: u32) -> u32 {
        let (Some(limit), Some(instance_type)) = (self.vcpu_quota, instance_type) else { return wanted };
        let Some(each) = vcpus_of(instance_type).filter(|_| counts_against_standard(instance_type)) else { return wanted };
        let free = (limit - f64::from(self.standard_vcpus_in_use())).max(0.0);
        wanted.min((free / f64::from(each)).floor() as u32)
    }

    /// EC2's message for a launch past the quota (error code `VcpuLimitExceeded`).
    pub fn vcpu_limit_message(&self) -> String {
        format!(
            "You have requested more vCPU capacity than your current vCPU limit of {} allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.",
            self.vcpu_quota.unwrap_or_default()
        )
    }

    /// A failed launch activity; Auto Scaling retries with a back-off: one per 30 s here.
    pub fn record_failed_launch(&mut self, group: &str, message: String) {
        let now = self.now;
        let activities = self.activities.entry(group.to_string()).or_default();
        if activities.last().is_none_or(|a| !a.is_failed_launch() || now - a.started_at >= 30) {
            activities.push(stepdeploy_core::model::ScalingActivity {
                started_at: now,
                status: "Failed".into(),
                description: "Launching a new EC2 instance.  Status Reason: ".to_string() + &message,
                cause: format!("At {now} an instance was started in response to a difference between desired and actual capacity."),
                message: Some(message),
            });
        }
    }
}

/// Test knobs for what `doctor` and the quota check read. None records an API call.
impl crate::Sim {
    /// The account's Running On-Demand Standard instances quota, in vCPUs (`None`: no applied value).
    pub fn set_vcpu_quota(&self, vcpus: Option<f64>) {
        self.lock().vcpu_quota = vcpus;
    }

    /// A target group's health check and draining settings, as DescribeTargetGroups and
    /// DescribeTargetGroupAttributes report them.
    pub fn set_target_group_timing(&self, target_group_arn: &str, timing: stepdeploy_core::ports::TargetGroupTiming) {
        self.lock().target_group_timing.insert(target_group_arn.to_string(), timing);
    }

    /// These instances' SSM agents stop reaching SSM (no route, agent stopped).
    pub fn cut_from_ssm(&self, ids: &[String]) {
        let mut world = self.lock();
        for id in ids {
            if let Some(inst) = world.instances.get_mut(id) {
                inst.ssm_online_at = stepdeploy_core::model::Timestamp::MAX;
            }
        }
    }

    /// Every version of the launch template loses its instance profile: its instances never reach SSM.
    pub fn drop_instance_profile(&self, template_id: &str) {
        if let Some(template) = self.lock().templates.get_mut(template_id) {
            template.versions.values_mut().for_each(|v| v.instance_profile_role = None);
        }
    }
}
