//! A simulated AWS account on a virtual clock: Auto Scaling, EC2, ELBv2 and
//! SSM, enough for stepdeploy's workflows. Deterministic from a seed.
//!
//! It is the test double for everything above the adapters. State is never
//! advanced by a call's side effect alone: instances boot, turn healthy,
//! drain and images become available as [`Sim::advance`] moves the clock.
//! Every port call is recorded (see [`Sim::calls`]) and can be made to fail
//! with [`Sim::inject_fault`].

mod alarms;
pub mod demo;
mod events;
pub mod iam;
mod ports;
mod quota;
mod scaling;
mod standby;
mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use stepdeploy_core::model::{LaunchTemplateRef, Timestamp};
use stepdeploy_core::ports::{ErrorKind, Parameter};

pub use alarms::AlarmTrigger;
pub use events::ExternalEvent;
pub use ports::cloudwatch::alarm_arn;
pub use ports::sns::Published;
pub use world::{Dist, SimSettings};
use world::{Group, Inst, SimImage, Template, TemplateVersionData, World};

/// The virtual clock's start: 2026-01-01T00:00:00Z.
pub const EPOCH: Timestamp = 1_767_225_600;

/// One recorded API call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCall {
    /// Virtual time of the call.
    pub at: Timestamp,
    /// e.g. `autoscaling`.
    pub service: String,
    /// e.g. `SetDesiredCapacity`.
    pub operation: String,
    /// Whether an injected fault failed it.
    pub faulted: bool,
    /// The step that made it (its function name), when one was set.
    #[serde(default)]
    pub principal: Option<String>,
    /// What AWS authorizes for it, the checks made on the caller's behalf included.
    #[serde(default)]
    pub requests: Vec<iam::AuthRequest>,
}

/// An error to inject into calls of one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Operation name, e.g. `SetDesiredCapacity` (`*` for any).
    pub operation: String,
    /// Failure class.
    pub kind: ErrorKind,
    /// AWS error code returned.
    pub code: String,
    /// How many calls fail before the operation recovers.
    pub remaining: u32,
    /// The call takes effect and only its response is lost (a timeout after AWS acted).
    /// Honoured by the operations whose repetition matters: SuspendProcesses and SendCommand.
    #[serde(default)]
    pub lost_response: bool,
    /// Matching calls let through before the fault starts (so the n-th call of a run fails).
    #[serde(default)]
    pub skip: u32,
}

impl Fault {
    /// `times` throttling errors on `operation`.
    pub fn throttle(operation: &str, times: u32) -> Fault {
        Fault {
            operation: operation.to_string(),
            kind: ErrorKind::Throttled,
            code: "Throttling".into(),
            remaining: times,
            lost_response: false,
            skip: 0,
        }
    }

    /// `times` transient 5xx errors on `operation`.
    pub fn unavailable(operation: &str, times: u32) -> Fault {
        Fault {
            operation: operation.to_string(),
            kind: ErrorKind::Transient,
            code: "ServiceUnavailable".into(),
            remaining: times,
            lost_response: false,
            skip: 0,
        }
    }

    /// `times` calls of `operation` that take effect but whose response never arrives (a client timeout).
    pub fn lost_response(operation: &str, times: u32) -> Fault {
        Fault {
            operation: operation.to_string(),
            kind: ErrorKind::Transient,
            code: "RequestTimeout".into(),
            remaining: times,
            lost_response: true,
            skip: 0,
        }
    }
}

/// What a scripted SSM command does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandScript {
    /// Applies to commands containing this text.
    pub contains: String,
    /// Only on this instance, if set.
    pub instance_id: Option<String>,
    /// Exit code.
    pub exit_code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Run time.
    pub duration_seconds: i64,
}

/// A new group's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// Name.
    pub name: String,
    /// Minimum size.
    pub min_size: u32,
    /// Maximum size.
    pub max_size: u32,
    /// Desired capacity (launched healthy at once).
    pub desired_capacity: u32,
    /// Launch template id.
    pub launch_template_id: String,
    /// Version (a number, `$Latest` or `$Default`).
    pub version: String,
    /// Target groups.
    pub target_group_arns: Vec<String>,
}

/// The simulated account. Cloning shares the same account.
#[derive(Clone)]
pub struct Sim {
    world: Arc<Mutex<World>>,
    /// Where SendTaskSuccess and SendTaskFailure go: the engine running the executions (a local
    /// run wires it); without one, no task waits for any token.
    task_answers: Arc<Mutex<Option<TaskAnswerSink>>>,
}

/// A task token's answer, as the sim hands it to the engine: the output, or error and cause.
pub type TaskAnswer = Result<String, (String, String)>;

/// Delivers a token's answer; `false` when no task waits for that token.
pub type TaskAnswerSink = Arc<dyn Fn(&str, TaskAnswer) -> bool + Send + Sync>;

impl Sim {
    /// A new empty account at [`EPOCH`].
    pub fn new(seed: u64, settings: SimSettings) -> Sim {
        Sim { world: Arc::new(Mutex::new(World::new(seed, settings))), task_answers: Arc::new(Mutex::new(None)) }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves a consistent-enough world for a test report.
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The virtual time.
    pub fn now(&self) -> Timestamp {
        self.lock().now
    }

    /// Moves the clock forward, applying scheduled events on the way.
    pub fn advance(&self, seconds: i64) {
        self.lock().advance(seconds.max(0));
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.lock().calls.clone()
    }

    /// Calls per operation.
    pub fn call_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for call in &self.lock().calls {
            *counts.entry(call.operation.clone()).or_default() += 1;
        }
        counts
    }

    /// Makes future calls of an operation fail.
    /// Attributes the calls that follow to `step` (a function name), or to nobody.
    pub fn set_principal(&self, step: Option<&str>) {
        self.lock().principal = step.map(str::to_string);
    }

    /// Tags a group (by name), launch template (by id), target group,
    /// listener or rule (by ARN); tags are what IAM conditions see.
    pub fn tag_resource(&self, resource: &str, tags: BTreeMap<String, String>) {
        let mut world = self.lock();
        let key = world.resource_key(resource);
        world.resource_tags.entry(key).or_default().extend(tags);
    }

    /// An SSM parameter's value, read without an API call (what a test or the local operator sees).
    pub fn parameter_value(&self, name: &str) -> Option<String> {
        self.lock().parameters.get(name).map(|p| p.value.clone())
    }

    /// Writes an SSM parameter without an API call (set-up, like `stepdeploy config push` before a run).
    pub fn put_parameter_directly(&self, name: &str, value: &str) {
        let mut world = self.lock();
        let now = world.now;
        let version = world.parameters.get(name).map_or(1, |p| p.version + 1);
        world.parameters.insert(name.to_string(), Parameter { name: name.to_string(), value: value.to_string(), version, modified_at: Some(now) });
    }

    /// Makes the next `times` invocations of the step function `function`
    /// fail in Lambda itself with `error_type` (e.g. `Sandbox.Timedout`), before the step runs.
    /// With `error_type` `after:<error>` the step runs first (its calls take effect) and Lambda
    /// then reports the error, as for an invocation that timed out after doing its work.
    pub fn inject_lambda_fault(&self, function: &str, error_type: &str, times: u32) {
        self.lock().lambda_faults.push((function.to_string(), error_type.to_string(), times));
    }

    /// The error Lambda reports for this invocation of `function`, if one was injected (and counts it).
    pub fn take_lambda_fault(&self, function: &str) -> Option<String> {
        let mut world = self.lock();
        let fault = world.lambda_faults.iter_mut().find(|(f, _, times)| f == function && *times > 0)?;
        fault.2 -= 1;
        Some(fault.1.clone())
    }

    /// Makes the next `times` TerminateInstanceInAutoScalingGroup calls race
    /// Auto Scaling: it begins terminating the instance (a health
    /// replacement) just before the call arrives, which AWS then rejects.
    pub fn race_terminations(&self, times: u32) {
        self.lock().termination_races += times;
    }

    /// A launch template version's security groups (what a new version copies from its source).
    pub fn template_security_groups(&self, template_id: &str, version: u64) -> Option<Vec<String>> {
        self.lock().templates.get(template_id)?.versions.get(&version).map(|v| v.security_groups.clone())
    }

    /// Changes a launch template version's security groups (set-up: a version made by hand).
    pub fn set_template_security_groups(&self, template_id: &str, version: u64, groups: &[&str]) {
        if let Some(v) = self.lock().templates.get_mut(template_id).and_then(|t| t.versions.get_mut(&version)) {
            v.security_groups = groups.iter().map(|g| g.to_string()).collect();
        }
    }

    pub fn inject_fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Scripts the outcome of matching SSM commands (the last match wins).
    pub fn script_command(&self, script: CommandScript) {
        self.lock().scripts.push(std::sync::Arc::new(script));
    }

    /// Instances launched from this AMI never pass health checks.
    pub fn make_image_unhealthy(&self, image_id: &str) {
        self.lock().unhealthy_images.insert(image_id.to_string());
    }

    /// Images created from now on never become available.
    pub fn make_images_never_available(&self) {
        self.lock().images_never_available = true;
    }

    /// EC2's read APIs list instances and images this long after they were made (see [`SimSettings::ec2_listing_lag_seconds`]).
    pub fn set_ec2_listing_lag(&self, seconds: i64) {
        self.lock().settings.ec2_listing_lag_seconds = seconds;
    }

    /// DescribeAutoScalingGroups lists an instance as it was (InService, or Standby) this long
    /// after its termination began (see [`SimSettings::asg_termination_listing_lag_seconds`]).
    pub fn set_asg_termination_listing_lag(&self, seconds: i64) {
        self.lock().settings.asg_termination_listing_lag_seconds = seconds;
    }

    /// Tags images, snapshots or instances without an API call (set-up: tags
    /// someone else put there); stepdeploy itself tags only what it creates.
    pub fn tag_ec2_resources(&self, resource_ids: &[&str], tags: &BTreeMap<String, String>) {
        let mut world = self.lock();
        for id in resource_ids {
            if let Some(image) = world.images.get_mut(*id) {
                image.tags.extend(tags.clone());
            } else if let Some(snapshot) = world.snapshots.get_mut(*id) {
                snapshot.extend(tags.clone());
            } else if let Some(instance) = world.instances.get_mut(*id) {
                instance.tags.extend(tags.clone());
            }
        }
    }

    /// Removes a tag from an image or instance (as if something else made it). Records no API call.
    pub fn remove_tag(&self, resource_id: &str, key: &str) {
        let mut world = self.lock();
        if let Some(image) = world.images.get_mut(resource_id) {
            image.tags.remove(key);
        }
        if let Some(instance) = world.instances.get_mut(resource_id) {
            instance.tags.remove(key);
        }
    }

    /// The command lines SSM accepted, in the order sent. Records no API call.
    /// The commands sent as SendCommand carried them: script text and revision parameter, apart.
    pub fn commands_as_sent(&self) -> Vec<(String, String)> {
        let world = self.lock();
        let mut sent: Vec<(i64, String, String, String)> =
            world.commands.iter().map(|(id, c)| (c.sent_at, id.clone(), c.sent.clone(), c.revision.clone())).collect();
        sent.sort();
        sent.into_iter().map(|(_, _, text, revision)| (text, revision)).collect()
    }

    pub fn commands_sent(&self) -> Vec<String> {
        let world = self.lock();
        let mut sent: Vec<(i64, String, String)> = world.commands.iter().map(|(id, c)| (c.sent_at, id.clone(), c.command.clone())).collect();
        sent.sort();
        sent.into_iter().map(|(_, _, command)| command).collect()
    }

    /// Each command's CloudWatch Logs group for its whole output, in the order sent. Records no API call.
    pub fn command_log_groups(&self) -> Vec<Option<String>> {
        let world = self.lock();
        let mut sent: Vec<(i64, String, Option<String>)> =
            world.commands.iter().map(|(id, c)| (c.sent_at, id.clone(), c.output_log_group.clone())).collect();
        sent.sort();
        sent.into_iter().map(|(_, _, group)| group).collect()
    }

    /// A snapshot's tags, if it exists. Records no API call.
    pub fn snapshot_tags(&self, snapshot_id: &str) -> Option<BTreeMap<String, String>> {
        self.lock().snapshots.get(snapshot_id).cloned()
    }

    /// Registers an existing AMI.
    pub fn register_image(&self, image_id: &str, tags: BTreeMap<String, String>) {
        let mut world = self.lock();
        let now = world.now;
        world.images.insert(
            image_id.to_string(),
            SimImage { name: image_id.to_string(), available_at: Some(now), created_at: now, tags, snapshot_ids: Vec::new() },
        );
    }

    /// A target group; returns its ARN.
    pub fn create_target_group(&self, name: &str) -> String {
        let mut world = self.lock();
        let arn = format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/{:016x}", world.next_id());
        world.target_groups.insert(arn.clone());
        arn
    }

    /// A listener with only its default rule; returns its ARN.
    pub fn create_listener(&self, load_balancer: &str) -> String {
        let mut world = self.lock();
        let id = world.next_id();
        let arn = format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/{load_balancer}/{id:016x}/{id:016x}");
        world.listeners.insert(arn.clone(), Vec::new());
        arn
    }

    /// A launch template whose version 1 (the default) uses `image_id`; returns its id.
    pub fn create_launch_template(&self, name: &str, image_id: &str, instance_tags: BTreeMap<String, String>) -> String {
        let mut world = self.lock();
        let id = format!("lt-{:017x}", world.next_id());
        let version = TemplateVersionData {
            image_id: image_id.to_string(),
            instance_tags,
            description: String::new(),
            security_groups: vec![format!("sg-{name}")],
            instance_profile_role: Some(format!("{name}-instance")),
            instance_type: Some(crate::quota::DEFAULT_INSTANCE_TYPE.to_string()),
        };
        world.templates.insert(id.clone(), Template { name: name.to_string(), versions: BTreeMap::from([(1, version)]), default_version: 1 });
        id
    }

    /// A group whose `desired_capacity` instances are already InService and healthy.
    pub fn create_group(&self, spec: GroupSpec) {
        let mut world = self.lock();
        let name = world.templates.get(&spec.launch_template_id).map(|t| t.name.clone());
        world.groups.insert(
            spec.name.clone(),
            Group {
                name: spec.name.clone(),
                min_size: spec.min_size,
                max_size: spec.max_size,
                desired_capacity: spec.desired_capacity,
                launch_template: LaunchTemplateRef { id: Some(spec.launch_template_id.clone()), name, version: Some(spec.version.clone()) },
                target_group_arns: spec.target_group_arns.clone(),
                suspended: BTreeSet::new(),
                zones: vec!["us-east-1a".into(), "us-east-1b".into(), "us-east-1c".into()],
                features: Default::default(),
                instance_refresh: None,
                hook_seconds: 0,
                elb_health_check: false,
            },
        );
        let launched = world.reconcile_group(&spec.name);
        // The starting fleet has been up for a while.
        let past = world.now - 3600;
        for id in launched {
            if let Some(inst) = world.instances.get_mut(&id) {
                inst.launched_at = past;
                inst.in_service_at = past;
                inst.healthy_at = inst.healthy_at.map(|_| past);
                inst.ssm_online_at = past;
            }
        }
    }

    /// Creates a worker instance (not in any group) carrying these tags; returns its id.
    pub fn create_worker(&self, image_id: &str, tags: BTreeMap<String, String>) -> String {
        let mut world = self.lock();
        let id = world.new_instance_id();
        let now = world.now;
        world.instances.insert(id.clone(), Inst::standalone(&id, image_id, tags, now - 3600));
        id
    }

    /// Instances of a group that are InService, Auto Scaling healthy and
    /// healthy in every target group, now. Records no API call.
    pub fn healthy_in_group(&self, group: &str) -> Vec<String> {
        self.lock().healthy_in_group(group)
    }

    /// Live (Pending or InService) instances of a group with their AMI. Records no API call.
    pub fn live_in_group(&self, group: &str) -> Vec<(String, String)> {
        let world = self.lock();
        let now = world.now;
        world.instances.values().filter(|i| i.group.as_deref() == Some(group) && i.is_live(now)).map(|i| (i.id.clone(), i.image_id.clone())).collect()
    }

    /// The sim's hidden truth about the group's instances launched at or after `since`, in launch
    /// order: when each launched, and when it was (or would have been) healthy in its target
    /// groups (`None`: never). For a benchmark's oracle only: nothing AWS reports carries it, and
    /// the planner never sees it. Records no API call.
    pub fn launch_truth(&self, group: &str, since: Timestamp) -> Vec<(Timestamp, Option<Timestamp>)> {
        let world = self.lock();
        let mut launched: Vec<(Timestamp, Option<Timestamp>, String)> = world
            .instances
            .values()
            .filter(|i| i.group.as_deref() == Some(group) && i.launched_at >= since)
            .map(|i| (i.launched_at, i.healthy_at, i.id.clone()))
            .collect();
        launched.sort();
        launched.into_iter().map(|(at, healthy, _)| (at, healthy)).collect()
    }

    /// Every instance the group ever had that is terminating or gone, now. Records no API call.
    pub fn ended_in_group(&self, group: &str) -> Vec<String> {
        let world = self.lock();
        world.instances.values().filter(|i| i.group.as_deref() == Some(group) && i.terminating_since.is_some()).map(|i| i.id.clone()).collect()
    }

    /// Sets the group settings the sim reports but doesn't act on. Records no API call.
    pub fn set_group_features(&self, group: &str, features: stepdeploy_core::model::GroupFeatures) {
        if let Some(g) = self.lock().groups.get_mut(group) {
            g.features = features;
        }
    }

    /// Sends SendTaskSuccess and SendTaskFailure to `sink` from now on.
    pub fn answer_tasks_with(&self, sink: TaskAnswerSink) {
        *self.task_answers.lock().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    pub(crate) fn task_answer_sink(&self) -> Option<TaskAnswerSink> {
        self.task_answers.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Auto Scaling's launches of this AMI fail with `message` (a bad AMI, no capacity, a quota),
    /// recorded as failed scaling activities; no instance appears. Records no API call.
    pub fn fail_launches_of(&self, image_id: &str, message: &str) {
        self.lock().failing_launches = Some((image_id.to_string(), message.to_string()));
    }

    /// Moves every live instance of the group into one zone (as if the others had been
    /// unavailable when they launched). Records no API call.
    pub fn crowd_into_zone(&self, group: &str, zone: &str) {
        let mut world = self.lock();
        let now = world.now;
        for inst in world.instances.values_mut().filter(|i| i.group.as_deref() == Some(group) && i.is_live(now)) {
            inst.zone = zone.to_string();
        }
    }

    /// Images created from now on become available again (undoes [`Sim::make_images_never_available`]).
    pub fn make_images_available_again(&self) {
        self.lock().images_never_available = false;
    }

    /// EC2 reports an image's snapshots in use this long after DeregisterImage. Records no API call.
    pub fn set_snapshot_in_use_after_deregister(&self, seconds: i64) {
        self.lock().settings.snapshot_in_use_seconds = seconds;
    }

    /// Every snapshot in the account. Records no API call.
    pub fn snapshot_ids(&self) -> Vec<String> {
        self.lock().snapshots.keys().cloned().collect()
    }

    /// Step Functions reports this execution running (a lock holder that is alive). Records no API call.
    pub fn set_execution_running(&self, execution_arn: &str) {
        self.lock().running_executions.insert(execution_arn.to_string());
    }

    /// Moves one instance to another zone (set-up only). Records no API call.
    pub fn move_to_zone(&self, instance_id: &str, zone: &str) {
        if let Some(inst) = self.lock().instances.get_mut(instance_id) {
            inst.zone = zone.to_string();
        }
    }

    /// Live instances of the group per zone. Records no API call.
    pub fn zone_counts(&self, group: &str) -> BTreeMap<String, usize> {
        let world = self.lock();
        let now = world.now;
        let mut counts: BTreeMap<String, usize> =
            world.groups.get(group).map(|g| g.zones.iter().map(|z| (z.clone(), 0)).collect()).unwrap_or_default();
        for inst in world.instances.values().filter(|i| i.group.as_deref() == Some(group) && i.is_live(now)) {
            *counts.entry(inst.zone.clone()).or_default() += 1;
        }
        counts
    }

    /// Gives the group the ELB health check type: Auto Scaling replaces instances their target
    /// group reports unhealthy. Records no API call.
    pub fn use_elb_health_checks(&self, group: &str) {
        if let Some(g) = self.lock().groups.get_mut(group) {
            g.elb_health_check = true;
        }
    }

    /// Gives the group launch and terminate lifecycle hooks that hold each instance this long
    /// in `Pending:Wait` and `Terminating:Wait` (as a hook's action would). Records no API call.
    pub fn set_lifecycle_hooks(&self, group: &str, seconds: i64) {
        if let Some(g) = self.lock().groups.get_mut(group) {
            g.hook_seconds = seconds;
        }
    }

    /// Starts (`Some("id status")`) or ends (`None`) an instance refresh on the group, as someone else would.
    pub fn set_instance_refresh(&self, group: &str, refresh: Option<&str>) {
        if let Some(g) = self.lock().groups.get_mut(group) {
            g.instance_refresh = refresh.map(str::to_string);
        }
    }

    /// The group's (min, max, desired) and suspended processes. Records no API call.
    pub fn group_state(&self, group: &str) -> Option<(u32, u32, u32, Vec<String>)> {
        let world = self.lock();
        world.groups.get(group).map(|g| (g.min_size, g.max_size, g.desired_capacity, g.suspended.iter().cloned().collect()))
    }

    /// A JSON rendering of the whole account except the call log: equal
    /// fingerprints mean nothing changed.
    pub fn fingerprint(&self) -> String {
        let world = self.lock();
        serde_json::to_string(&world.state_view()).unwrap_or_default()
    }
}
