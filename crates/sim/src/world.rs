//! The simulated account's state and its clock-driven behaviour.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use stepdeploy_core::model::{LaunchTemplateRef, ScalingActivity, TargetState, Timestamp};
use stepdeploy_core::ports::{ErrorKind, ListenerRule, Parameter, PortError};

use crate::iam::AuthRequest;
use crate::{ApiCall, CommandScript, ExternalEvent, Fault};

/// A duration distribution, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Dist {
    /// Always this long.
    Fixed(f64),
    /// Uniform between the bounds.
    Uniform(f64, f64),
}

impl Dist {
    /// `mean` ± `fraction` (e.g. 90 s ± 20 %).
    pub fn around(mean: f64, fraction: f64) -> Dist {
        Dist::Uniform(mean * (1.0 - fraction), mean * (1.0 + fraction))
    }

    pub(crate) fn sample(&self, rng: &mut ChaCha8Rng) -> i64 {
        let seconds = match *self {
            Dist::Fixed(s) => s,
            Dist::Uniform(lo, hi) if hi > lo => rng.random_range(lo..hi),
            Dist::Uniform(lo, _) => lo,
        };
        seconds.round().max(0.0) as i64
    }

    /// The longest value it can take.
    pub fn max(&self) -> f64 {
        match *self {
            Dist::Fixed(s) => s,
            Dist::Uniform(lo, hi) => lo.max(hi),
        }
    }
}

/// Timing of the simulated account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimSettings {
    /// Launch to InService.
    pub boot_seconds: Dist,
    /// InService to healthy in the target groups.
    pub health_seconds: Dist,
    /// Terminating to Terminated (target group draining).
    pub deregistration_delay_seconds: i64,
    /// CreateImage to available.
    pub image_create_seconds: Dist,
    /// Instance launch to online in SSM.
    pub ssm_online_seconds: Dist,
    /// After InService, an instance that will never be healthy turns `unhealthy` (from `initial`) after this long.
    pub health_check_grace_seconds: i64,
    /// How long after DeregisterImage its snapshots stay `InvalidSnapshot.InUse`.
    #[serde(default)]
    pub snapshot_in_use_seconds: i64,
    /// How long after a launch (or CreateImage) DescribeInstances (DescribeImages) first lists it.
    /// Auto Scaling lists its instances at once; EC2's read APIs are eventually consistent
    /// (<https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html>).
    #[serde(default)]
    pub ec2_listing_lag_seconds: i64,
    /// How long after a termination began DescribeAutoScalingGroups still lists the instance as
    /// it was. AWS documents Auto Scaling listing it Terminating once the call returns
    /// (<https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html>)
    /// but not how soon a read sees it; the planner's look 2 s after the last terminations
    /// (`planner::SETTLE_SECONDS`) must survive a late one. 0 by default.
    #[serde(default)]
    pub asg_termination_listing_lag_seconds: i64,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            boot_seconds: Dist::around(60.0, 0.2),
            health_seconds: Dist::around(30.0, 0.2),
            deregistration_delay_seconds: 30,
            image_create_seconds: Dist::around(300.0, 0.2),
            ssm_online_seconds: Dist::around(45.0, 0.2),
            health_check_grace_seconds: 60,
            ec2_listing_lag_seconds: 0,
            snapshot_in_use_seconds: 0,
            asg_termination_listing_lag_seconds: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Group {
    pub name: String,
    pub min_size: u32,
    pub max_size: u32,
    pub desired_capacity: u32,
    pub launch_template: LaunchTemplateRef,
    pub target_group_arns: Vec<String>,
    pub suspended: BTreeSet<String>,
    pub zones: Vec<String>,
    /// Settings the sim reports but doesn't act on (mixed instances, warm pool...).
    pub features: stepdeploy_core::model::GroupFeatures,
    /// An instance refresh in progress (`id status`).
    pub instance_refresh: Option<String>,
    /// Lifecycle hooks (launch and terminate) hold instances this long in their wait states.
    pub hook_seconds: i64,
    /// Health check type ELB: an instance unhealthy in a target group is replaced.
    pub elb_health_check: bool,
}

impl Group {
    /// One subnet per zone (the group's VPCZoneIdentifier).
    pub fn subnets(&self) -> Vec<String> {
        self.zones.iter().map(|z| format!("subnet-{z}")).collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Inst {
    pub id: String,
    pub group: Option<String>,
    pub image_id: String,
    pub launch_template_id: Option<String>,
    pub launch_template_version: Option<String>,
    pub zone: String,
    pub protected: bool,
    pub tags: BTreeMap<String, String>,
    pub launched_at: Timestamp,
    pub in_service_at: Timestamp,
    /// `None`: never passes health checks.
    pub healthy_at: Option<Timestamp>,
    pub ssm_online_at: Timestamp,
    /// Its type, as launched (what the vCPU quota counts).
    pub instance_type: Option<String>,
    pub terminating_since: Option<Timestamp>,
    pub terminated_at: Option<Timestamp>,
    pub standby: bool,
    /// Deregistered from its target groups at this time (drains, then leaves).
    pub deregistered_at: Option<Timestamp>,
    /// How long draining takes.
    pub drain_seconds: i64,
    /// Auto Scaling's health status is Unhealthy (EC2 status checks failed).
    pub asg_unhealthy: bool,
    /// Its group's lifecycle hooks hold it this long in `Pending:Wait` before InService,
    /// and in `Terminating:Wait` before it terminates.
    pub hook_seconds: i64,
}

impl Inst {
    pub fn standalone(id: &str, image_id: &str, tags: BTreeMap<String, String>, at: Timestamp) -> Inst {
        Inst {
            id: id.to_string(),
            group: None,
            image_id: image_id.to_string(),
            launch_template_id: None,
            launch_template_version: None,
            zone: "us-east-1a".into(),
            protected: false,
            tags,
            launched_at: at,
            in_service_at: at,
            healthy_at: Some(at),
            ssm_online_at: at,
            instance_type: None,
            terminating_since: None,
            terminated_at: None,
            standby: false,
            deregistered_at: None,
            drain_seconds: 0,
            hook_seconds: 0,
            asg_unhealthy: false,
        }
    }

    /// Whether EC2's read APIs list it yet (see [`SimSettings::ec2_listing_lag_seconds`]).
    pub fn listed_by_ec2(&self, now: Timestamp, lag: i64) -> bool {
        now >= self.launched_at.saturating_add(lag)
    }

    /// The lifecycle state DescribeAutoScalingGroups lists for it, or `None` once it no longer
    /// lists it: within `lag` of its termination, the state it had before (see
    /// [`SimSettings::asg_termination_listing_lag_seconds`]).
    pub fn listed_by_auto_scaling(&self, now: Timestamp, lag: i64) -> Option<&'static str> {
        match self.terminating_since {
            Some(since) if now < since.saturating_add(lag) => Some(if self.standby { "Standby" } else { "InService" }),
            _ if self.is_terminated(now) => None,
            _ => Some(self.lifecycle(now)),
        }
    }

    /// SSM's agent on it is registered and reachable (PingStatus `Online`).
    pub fn ssm_online(&self, now: Timestamp) -> bool {
        !self.is_terminated(now) && self.terminating_since.is_none() && self.ssm_online_at <= now
    }

    pub fn is_terminated(&self, now: Timestamp) -> bool {
        self.terminated_at.is_some_and(|t| t <= now)
    }

    /// Pending or InService in its group.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.terminating_since.is_none() && !self.standby && !self.is_terminated(now)
    }

    pub fn lifecycle(&self, now: Timestamp) -> &'static str {
        if self.is_terminated(now) {
            "Terminated"
        } else if let Some(since) = self.terminating_since {
            if now < since + self.hook_seconds { "Terminating:Wait" } else { "Terminating" }
        } else if self.standby {
            // Draining out of its target groups first.
            if self.deregistered_at.is_some_and(|at| now < at + self.drain_seconds) { "EnteringStandby" } else { "Standby" }
        } else if now >= self.in_service_at {
            "InService"
        } else if now >= self.in_service_at - self.hook_seconds {
            "Pending:Wait"
        } else {
            "Pending"
        }
    }

    pub fn ec2_state(&self, now: Timestamp) -> &'static str {
        if self.is_terminated(now) {
            "terminated"
        } else if self.terminating_since.is_some() {
            "shutting-down"
        } else if now >= self.in_service_at.min(self.launched_at + 10) {
            "running"
        } else {
            "pending"
        }
    }

    /// The instance's state in its group's target groups; `None` when not registered.
    pub fn target_state(&self, now: Timestamp, grace: i64) -> Option<TargetState> {
        if self.is_terminated(now) || now < self.in_service_at {
            return None;
        }
        if self.standby {
            return self.deregistered_at.is_some_and(|at| now < at + self.drain_seconds).then_some(TargetState::Draining);
        }
        if self.terminating_since.is_some() {
            return Some(TargetState::Draining);
        }
        if let Some(at) = self.deregistered_at {
            return (now < at + self.drain_seconds).then_some(TargetState::Draining);
        }
        match self.healthy_at {
            Some(at) if at <= now => Some(TargetState::Healthy),
            None if now >= self.in_service_at + grace => Some(TargetState::Unhealthy),
            _ => Some(TargetState::Initial),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TemplateVersionData {
    pub image_id: String,
    pub instance_tags: BTreeMap<String, String>,
    pub description: String,
    /// What RunInstances checks besides the template and image (see `iam`).
    pub security_groups: Vec<String>,
    /// The instance profile's role, passed to EC2 at launch: without one, SSM never sees the instance.
    pub instance_profile_role: Option<String>,
    /// The instance type it launches (what the vCPU quota counts).
    pub instance_type: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Template {
    pub name: String,
    pub versions: BTreeMap<u64, TemplateVersionData>,
    pub default_version: u64,
}

impl Template {
    pub fn resolve(&self, version: &str) -> Option<u64> {
        match version {
            "$Latest" => self.versions.keys().next_back().copied(),
            "$Default" => Some(self.default_version),
            number => number.parse().ok().filter(|v| self.versions.contains_key(v)),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SimImage {
    pub name: String,
    /// `None`: never becomes available.
    pub available_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub tags: BTreeMap<String, String>,
    pub snapshot_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SimCommand {
    pub instance_ids: Vec<String>,
    /// As the shell runs it (the revision in place of `$SSM_revision`).
    pub command: String,
    /// As sent: the text never holds the revision.
    pub sent: String,
    /// The document's ENV_VAR parameter.
    pub revision: String,
    pub sent_at: Timestamp,
    pub timeout_seconds: i64,
    pub outcomes: BTreeMap<String, std::sync::Arc<CommandScript>>,
    pub document: String,
    pub comment: String,
    /// Where the agent sends the whole output (CloudWatchOutputConfig).
    pub output_log_group: Option<String>,
}

pub(crate) struct World {
    pub now: Timestamp,
    pub rng: ChaCha8Rng,
    pub settings: SimSettings,
    pub groups: BTreeMap<String, Group>,
    pub instances: BTreeMap<String, Inst>,
    pub templates: BTreeMap<String, Template>,
    pub images: BTreeMap<String, SimImage>,
    pub snapshots: BTreeMap<String, BTreeMap<String, String>>,
    pub target_groups: BTreeSet<String>,
    pub listeners: BTreeMap<String, Vec<ListenerRule>>,
    pub parameters: BTreeMap<String, Parameter>,
    pub commands: BTreeMap<String, SimCommand>,
    pub scripts: Vec<std::sync::Arc<CommandScript>>,
    pub faults: Vec<Fault>,
    pub events: Vec<(Timestamp, ExternalEvent)>,
    pub calls: Vec<ApiCall>,
    /// The step making calls now (the function name), for the IAM test.
    pub principal: Option<String>,
    /// Invocation errors Lambda will report for a function: (function, errorType, times).
    pub lambda_faults: Vec<(String, String, u32)>,
    /// How many TerminateInstanceInAutoScalingGroup calls find Auto Scaling already terminating the instance.
    pub termination_races: u32,
    /// Tags of groups, launch templates, target groups, listeners and rules, by ARN.
    pub resource_tags: BTreeMap<String, BTreeMap<String, String>>,
    pub unhealthy_images: BTreeSet<String>,
    pub images_never_available: bool,
    /// RunInstances idempotency tokens and the instance each made.
    pub client_tokens: BTreeMap<String, String>,
    /// When each snapshot was started.
    pub snapshot_created: BTreeMap<String, Timestamp>,
    /// Snapshots EC2 reports in use until then (after their image was deregistered).
    pub snapshot_in_use_until: BTreeMap<String, Timestamp>,
    /// Step Functions executions that are running (others have ended or never existed).
    pub running_executions: BTreeSet<String>,
    /// Auto Scaling activities by group, oldest first.
    pub activities: BTreeMap<String, Vec<ScalingActivity>>,
    /// Launches of this AMI by Auto Scaling fail with this status message.
    pub failing_launches: Option<(String, String)>,
    /// CloudWatch alarms by name.
    pub alarms: BTreeMap<String, stepdeploy_core::ports::AlarmState>,
    /// Alarms that go into ALARM when an AMI serves enough traffic.
    pub alarm_triggers: Vec<crate::AlarmTrigger>,
    /// Alarms that go into ALARM once a lock parameter records a paused rollout: (alarm, reason).
    pub alarms_at_pause: Vec<(String, String)>,
    /// Alarm state changes not yet delivered (EventBridge's alarm state change events).
    pub alarm_changes: Vec<stepdeploy_core::ports::AlarmState>,
    /// SNS topics by ARN, with what was published to each.
    pub topics: BTreeMap<String, Vec<crate::ports::sns::Published>>,
    /// The account's Running On-Demand Standard instances quota, in vCPUs (`None`: no applied value).
    pub vcpu_quota: Option<f64>,
    /// Target group health check and draining settings, where a test set them (else the defaults).
    pub target_group_timing: BTreeMap<String, stepdeploy_core::ports::TargetGroupTiming>,
    pub counter: u64,
}

/// What [`World::state_view`] renders: everything but the call log and the RNG.
#[derive(Serialize)]
pub(crate) struct StateView<'a> {
    now: Timestamp,
    groups: &'a BTreeMap<String, Group>,
    instances: &'a BTreeMap<String, Inst>,
    templates: &'a BTreeMap<String, Template>,
    images: &'a BTreeMap<String, SimImage>,
    snapshots: &'a BTreeMap<String, BTreeMap<String, String>>,
    listeners: &'a BTreeMap<String, Vec<ListenerRule>>,
    parameters: &'a BTreeMap<String, Parameter>,
    commands: &'a BTreeMap<String, SimCommand>,
}

impl World {
    pub fn new(seed: u64, settings: SimSettings) -> World {
        use rand::SeedableRng;
        World {
            now: crate::EPOCH,
            rng: ChaCha8Rng::seed_from_u64(seed),
            settings,
            groups: BTreeMap::new(),
            instances: BTreeMap::new(),
            templates: BTreeMap::new(),
            images: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            target_groups: BTreeSet::new(),
            listeners: BTreeMap::new(),
            parameters: BTreeMap::new(),
            commands: BTreeMap::new(),
            scripts: Vec::new(),
            faults: Vec::new(),
            events: Vec::new(),
            calls: Vec::new(),
            principal: None,
            lambda_faults: Vec::new(),
            termination_races: 0,
            resource_tags: BTreeMap::new(),
            unhealthy_images: BTreeSet::new(),
            images_never_available: false,
            client_tokens: BTreeMap::new(),
            snapshot_created: BTreeMap::new(),
            snapshot_in_use_until: BTreeMap::new(),
            running_executions: BTreeSet::new(),
            activities: BTreeMap::new(),
            failing_launches: None,
            alarms: BTreeMap::new(),
            alarm_triggers: Vec::new(),
            alarm_changes: Vec::new(),
            alarms_at_pause: Vec::new(),
            topics: BTreeMap::new(),
            vcpu_quota: None,
            target_group_timing: BTreeMap::new(),
            counter: 0,
        }
    }

    pub fn state_view(&self) -> StateView<'_> {
        StateView {
            now: self.now,
            groups: &self.groups,
            instances: &self.instances,
            templates: &self.templates,
            images: &self.images,
            snapshots: &self.snapshots,
            listeners: &self.listeners,
            parameters: &self.parameters,
            commands: &self.commands,
        }
    }

    /// The key a group (by name), launch template (by id) or ELB resource (by ARN) has in `resource_tags`.
    pub fn resource_key(&self, resource: &str) -> String {
        if resource.starts_with("arn:") {
            resource.to_string()
        } else if resource.starts_with("lt-") {
            crate::iam::ec2_arn("launch-template", resource)
        } else {
            crate::iam::group_arn(resource)
        }
    }

    /// The tags of a group, launch template, target group, listener or rule.
    pub fn tags_of(&self, resource: &str) -> BTreeMap<String, String> {
        self.resource_tags.get(&self.resource_key(resource)).cloned().unwrap_or_default()
    }

    /// An instance's tags (none for an unknown one).
    pub fn instance_tags(&self, id: &str) -> BTreeMap<String, String> {
        self.instances.get(id).map(|i| i.tags.clone()).unwrap_or_default()
    }

    pub fn next_id(&mut self) -> u64 {
        self.counter += 1;
        // Spread ids so they look like AWS's, yet stay deterministic.
        self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 4
    }

    pub fn new_instance_id(&mut self) -> String {
        format!("i-{:017x}", self.next_id())
    }

    /// Records a call and applies any injected fault to it.
    ///
    /// `requests` are what AWS authorizes for it (see [`crate::iam`]), recorded with the principal making it.
    pub fn call(&mut self, service: &'static str, operation: &'static str, requests: Vec<AuthRequest>) -> Result<(), PortError> {
        let fault = self.faults.iter_mut().find(|f| f.remaining > 0 && !f.lost_response && (f.operation == operation || f.operation == "*"));
        // A fault may first let `skip` matching calls through (the n-th call of a run fails).
        let fault = fault.and_then(|f| {
            if f.skip > 0 {
                f.skip -= 1;
                None
            } else {
                Some(f)
            }
        });
        let error = fault.map(|f| {
            f.remaining -= 1;
            PortError::new(f.kind, service, operation, Some(&f.code), format!("injected fault: {}", f.code))
        });
        self.calls.push(ApiCall {
            at: self.now,
            service: service.to_string(),
            operation: operation.to_string(),
            faulted: error.is_some(),
            principal: self.principal.clone(),
            requests,
        });
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// After an operation took effect: the error of a lost-response fault on it, if one is due.
    pub fn respond(&mut self, service: &'static str, operation: &'static str) -> Result<(), PortError> {
        let Some(fault) = self.faults.iter_mut().find(|f| f.remaining > 0 && f.lost_response && f.operation == operation) else {
            return Ok(());
        };
        // The call stays recorded as not faulted: it took effect.
        fault.remaining -= 1;
        Err(PortError::new(fault.kind, service, operation, Some(&fault.code), format!("injected fault: {} (the call took effect)", fault.code)))
    }

    pub fn advance(&mut self, seconds: i64) {
        let until = self.now + seconds;
        while let Some(&(at, _)) = self.events.first() {
            if at > until {
                break;
            }
            let (at, event) = self.events.remove(0);
            self.now = self.now.max(at);
            self.apply_event(event);
            self.reconcile_all();
        }
        self.now = until;
        self.reconcile_all();
        self.fire_alarms();
    }

    pub fn begin_termination(&mut self, id: &str) {
        let now = self.now;
        let delay = self.settings.deregistration_delay_seconds;
        if let Some(inst) = self.instances.get_mut(id)
            && inst.terminating_since.is_none()
        {
            inst.terminating_since = Some(now);
            // Only instances registered in a target group drain.
            let drains = inst.group.is_some() && now >= inst.in_service_at && !inst.standby;
            inst.terminated_at = Some(now + inst.hook_seconds + if drains { delay } else { 0 });
        }
    }

    pub fn resolve_template(&self, reference: &LaunchTemplateRef) -> Option<(u64, TemplateVersionData)> {
        let template = self.find_template(reference)?;
        let version = template.resolve(reference.version.as_deref().unwrap_or("$Default"))?;
        Some((version, template.versions.get(&version)?.clone()))
    }

    pub fn find_template_id(&self, reference: &LaunchTemplateRef) -> Option<String> {
        if let Some(id) = &reference.id {
            return self.templates.contains_key(id).then(|| id.clone());
        }
        let name = reference.name.as_deref()?;
        self.templates.iter().find(|(_, t)| t.name == name).map(|(id, _)| id.clone())
    }

    pub fn find_template(&self, reference: &LaunchTemplateRef) -> Option<&Template> {
        self.find_template_id(reference).and_then(|id| self.templates.get(&id))
    }

    pub fn healthy_in_group(&self, group: &str) -> Vec<String> {
        let now = self.now;
        let Some(g) = self.groups.get(group) else {
            return Vec::new();
        };
        self.instances
            .values()
            .filter(|i| i.group.as_deref() == Some(group) && i.lifecycle(now) == "InService")
            .filter(|i| {
                !g.target_group_arns.is_empty() && i.target_state(now, self.settings.health_check_grace_seconds) == Some(TargetState::Healthy)
            })
            .map(|i| i.id.clone())
            .collect()
    }

    pub fn not_found(service: &'static str, operation: &'static str, code: &str, what: String) -> PortError {
        PortError::new(ErrorKind::NotFound, service, operation, Some(code), what)
    }

    pub fn invalid(service: &'static str, operation: &'static str, code: &str, what: String) -> PortError {
        PortError::new(ErrorKind::Invalid, service, operation, Some(code), what)
    }

    /// `TargetGroupNotFound` unless the target group exists.
    pub fn target_group_exists(&self, operation: &'static str, arn: &str) -> Result<(), PortError> {
        if self.target_groups.contains(arn) {
            return Ok(());
        }
        Err(World::not_found("elbv2", operation, "TargetGroupNotFound", format!("Target groups '{arn}' not found")))
    }
}
