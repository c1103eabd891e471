//! The fleet model: a point-in-time snapshot of one Auto Scaling group.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch (real or virtual).
pub type Timestamp = i64;

/// An Auto Scaling lifecycle state, spelled as AWS spells it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Lifecycle {
    /// `Pending`, `Pending:Wait`, `Pending:Proceed`: booting.
    Pending,
    /// `InService`.
    InService,
    /// `Terminating*` and `Terminated`: on its way out.
    Terminating,
    /// `EnteringStandby`: leaving its target groups (draining) on the way to Standby; it can't
    /// be brought back until it is in Standby.
    EnteringStandby,
    /// `Standby`: kept by the group, running, out of service and outside desired capacity.
    Standby,
    /// `Detaching`, `Detached`: leaving the group.
    Detaching,
    /// Anything else (warm pools and future states): never counted as capacity.
    Other(String),
}

impl From<String> for Lifecycle {
    fn from(s: String) -> Self {
        Lifecycle::parse(&s)
    }
}

impl From<Lifecycle> for String {
    fn from(l: Lifecycle) -> Self {
        match l {
            Lifecycle::Pending => "Pending".into(),
            Lifecycle::InService => "InService".into(),
            Lifecycle::Terminating => "Terminating".into(),
            Lifecycle::EnteringStandby => "EnteringStandby".into(),
            Lifecycle::Standby => "Standby".into(),
            Lifecycle::Detaching => "Detaching".into(),
            Lifecycle::Other(s) => s,
        }
    }
}

impl Lifecycle {
    /// Maps an AWS `LifecycleState` string.
    pub fn parse(s: &str) -> Lifecycle {
        match s {
            "Pending" | "Pending:Wait" | "Pending:Proceed" => Lifecycle::Pending,
            "InService" => Lifecycle::InService,
            "Terminating" | "Terminating:Wait" | "Terminating:Proceed" | "Terminated" => Lifecycle::Terminating,
            "EnteringStandby" => Lifecycle::EnteringStandby,
            "Standby" => Lifecycle::Standby,
            "Detaching" | "Detached" => Lifecycle::Detaching,
            other => Lifecycle::Other(other.to_string()),
        }
    }

    /// Booting or serving: the instances a rollout counts and replaces.
    pub fn is_live(&self) -> bool {
        matches!(self, Lifecycle::Pending | Lifecycle::InService)
    }

    /// In Standby or on its way there: out of service, outside desired capacity.
    pub fn is_standby(&self) -> bool {
        matches!(self, Lifecycle::EnteringStandby | Lifecycle::Standby)
    }
}

/// A target's state in one target group, as ELBv2 reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    /// Registering, first checks not passed yet.
    Initial,
    /// Passing health checks.
    Healthy,
    /// Failing health checks.
    Unhealthy,
    /// Not in use (e.g. stopped, or the AZ is not enabled).
    Unused,
    /// Deregistering.
    Draining,
    /// Health checks disabled.
    Unavailable,
}

impl TargetState {
    /// Maps an ELBv2 `TargetHealthStateEnum` string.
    pub fn parse(s: &str) -> Option<TargetState> {
        Some(match s {
            "initial" => TargetState::Initial,
            "healthy" => TargetState::Healthy,
            "unhealthy" | "unhealthy.draining" => TargetState::Unhealthy,
            "unused" => TargetState::Unused,
            "draining" => TargetState::Draining,
            "unavailable" => TargetState::Unavailable,
            _ => return None,
        })
    }
}

/// Which launch template (and version) a group or instance uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LaunchTemplateRef {
    /// `lt-...`, when known.
    pub id: Option<String>,
    /// The template's name, when known.
    pub name: Option<String>,
    /// A number, `$Latest` or `$Default`.
    pub version: Option<String>,
}

impl LaunchTemplateRef {
    /// A reference from the config's `launch_template` string (`lt-...` is an id).
    pub fn from_config(value: &str) -> LaunchTemplateRef {
        if value.starts_with("lt-") {
            LaunchTemplateRef { id: Some(value.to_string()), ..Default::default() }
        } else {
            LaunchTemplateRef { name: Some(value.to_string()), ..Default::default() }
        }
    }

    /// The same template at another version.
    pub fn at_version(&self, version: &str) -> LaunchTemplateRef {
        LaunchTemplateRef { version: Some(version.to_string()), ..self.clone() }
    }
}

/// One instance of the group, joined from Auto Scaling, EC2 and ELBv2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// `i-...`.
    pub id: String,
    /// Auto Scaling lifecycle.
    pub lifecycle: Lifecycle,
    /// Auto Scaling's own health status (`Healthy` is true).
    pub asg_healthy: bool,
    /// State per target group ARN; a group it is not registered in is absent.
    pub target_health: BTreeMap<String, TargetState>,
    /// The AMI it runs.
    pub image_id: Option<String>,
    /// The `stepdeploy:revision` tag, when the image carried one.
    pub revision: Option<String>,
    /// The launch template Auto Scaling launched it from (`lt-...`), when it says.
    #[serde(default)]
    pub launch_template_id: Option<String>,
    /// The launch template version Auto Scaling launched it from, when it says.
    pub launch_template_version: Option<String>,
    /// EC2 launch time.
    pub launched_at: Option<Timestamp>,
    /// Availability zone.
    pub availability_zone: String,
    /// Scale-in protection.
    pub protected_from_scale_in: bool,
}

/// An Auto Scaling group's settings, as DescribeAutoScalingGroups reports
/// them: the part that the ports' [`GroupDescription`](crate::ports::GroupDescription)
/// and a [`GroupSnapshot`] share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSettings {
    /// Group name.
    pub name: String,
    /// Minimum size.
    pub min_size: u32,
    /// Maximum size.
    pub max_size: u32,
    /// Desired capacity.
    pub desired_capacity: u32,
    /// Suspended process names.
    pub suspended_processes: Vec<String>,
    /// The group's launch template, if it uses one.
    pub launch_template: Option<LaunchTemplateRef>,
    /// Attached target groups.
    pub target_group_arns: Vec<String>,
    /// The subnets it launches in (its `VPCZoneIdentifier`).
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    /// Settings a rollout must know about before it changes anything.
    #[serde(default)]
    pub features: GroupFeatures,
}

/// Group settings that change what a rollout may do, as DescribeAutoScalingGroups reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupFeatures {
    /// It has a `MixedInstancesPolicy` (overrides, Spot split, weights).
    #[serde(default)]
    pub mixed_instances_policy: bool,
    /// It has a warm pool.
    #[serde(default)]
    pub warm_pool: bool,
    /// `units`, `vcpu` or `memory-mib`, when set.
    #[serde(default)]
    pub desired_capacity_type: Option<String>,
    /// The launch configuration it uses instead of a launch template, if any.
    #[serde(default)]
    pub launch_configuration: Option<String>,
}

/// A group at one moment: its settings, and its instances as Auto Scaling,
/// EC2 and ELBv2 see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    /// The group's settings (at the same JSON level as the instances).
    #[serde(flatten)]
    pub settings: GroupSettings,
    /// Members.
    pub instances: Vec<Instance>,
    /// When it was read.
    pub taken_at: Timestamp,
    /// Auto Scaling's recent activities (DescribeScalingActivities), newest first, where a step read them.
    #[serde(default)]
    pub activities: Vec<ScalingActivity>,
}

/// One Auto Scaling activity: a launch or termination, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingActivity {
    /// When it started.
    pub started_at: Timestamp,
    /// `Successful`, `Failed`, `InProgress`, `Cancelled`...
    pub status: String,
    /// e.g. `Launching a new EC2 instance: i-0123...`.
    pub description: String,
    /// Why Auto Scaling did it.
    #[serde(default)]
    pub cause: String,
    /// What went wrong, for a failed one.
    #[serde(default)]
    pub message: Option<String>,
}

impl ScalingActivity {
    /// A launch that failed (bad AMI, no capacity, instance quota, a bad template...).
    pub fn is_failed_launch(&self) -> bool {
        self.status == "Failed" && self.description.starts_with("Launching")
    }

    /// A termination because the instance failed its health checks (Auto Scaling replaces it).
    pub fn is_health_replacement(&self) -> bool {
        self.description.starts_with("Terminating") && self.cause.contains("health check")
    }
}

/// The version a rollout drives the group to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The launch template (`lt-...`), when known.
    #[serde(default)]
    pub template_id: Option<String>,
    /// The launch template version new instances get.
    pub launch_template_version: String,
    /// That version's AMI: the fallback where Auto Scaling reports no version.
    pub image_id: String,
}

/// How an instance relates to a rollout's target version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionMatch {
    /// It runs the target version.
    Target,
    /// It runs another version (or another template).
    Other,
    /// Nothing says yet: no version from Auto Scaling, and EC2 doesn't list it yet.
    Unknown,
}

impl Target {
    /// Which version `instance` runs, relative to this one.
    ///
    /// The per-instance launch template and version that
    /// DescribeAutoScalingGroups reports decide: a version may change user
    /// data, instance type or security groups and keep the AMI. The AMI is
    /// the fallback only where Auto Scaling reports no numbered version.
    /// An instance that EC2 does not list yet (DescribeInstances lags Auto
    /// Scaling, see "Eventual consistency" in the EC2 API reference,
    /// <https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html>)
    /// and that has no version is `Unknown`, never "old".
    pub fn compare(&self, instance: &Instance) -> VersionMatch {
        let other_template = matches!((&self.template_id, &instance.launch_template_id), (Some(a), Some(b)) if a != b);
        if other_template {
            return VersionMatch::Other;
        }
        if let Some(version) = instance.launch_template_version.as_deref().filter(|v| v.parse::<u64>().is_ok()) {
            return if version == self.launch_template_version { VersionMatch::Target } else { VersionMatch::Other };
        }
        match instance.image_id.as_deref() {
            Some(image) if image == self.image_id => VersionMatch::Target,
            Some(_) => VersionMatch::Other,
            None => VersionMatch::Unknown,
        }
    }
}
