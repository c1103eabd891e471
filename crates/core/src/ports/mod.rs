//! Port traits: one small trait per AWS capability the workflows use.
//!
//! Each has two adapters: `Aws*` in `stepdeploy-aws` (the SDK) and `Sim*`
//! in `stepdeploy-sim` (an in-memory account). Describe calls are batched by
//! design: one call per poll, never one per instance.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::{GroupSettings, LaunchTemplateRef, Lifecycle, ScalingActivity, TargetState, Timestamp};

/// What kind of failure a port call met; decides retries and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// Rate exceeded; safe to retry after a pause.
    Throttled,
    /// The named resource does not exist.
    NotFound,
    /// A create met an existing resource (e.g. the lock parameter).
    AlreadyExists,
    /// AWS rejected the request's values.
    Invalid,
    /// Not allowed by IAM.
    AccessDenied,
    /// Network, timeout or 5xx: may pass on retry.
    Transient,
    /// Anything else.
    Other,
}

/// A failed AWS call, keeping the service's code and message.
#[derive(Debug, thiserror::Error)]
pub struct PortError {
    /// Failure class.
    pub kind: ErrorKind,
    /// e.g. `autoscaling`.
    pub service: &'static str,
    /// e.g. `SetDesiredCapacity`.
    pub operation: &'static str,
    /// AWS error code, e.g. `Throttling` (boxed: keeps results small).
    pub code: Option<Box<str>>,
    /// AWS error message.
    pub message: String,
    /// AWS request id.
    pub request_id: Option<Box<str>>,
    /// The underlying SDK error.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} failed", self.service, self.operation)?;
        if let Some(code) = &self.code {
            write!(f, " with {code}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl PortError {
    /// A port error without an SDK source (the sim's, or a missing field).
    pub fn new(kind: ErrorKind, service: &'static str, operation: &'static str, code: Option<&str>, message: impl Into<String>) -> PortError {
        PortError { kind, service, operation, code: code.map(Into::into), message: message.into(), request_id: None, source: None }
    }

    /// Worth retrying as is.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Throttled | ErrorKind::Transient)
    }
}

/// Port results.
pub type PortResult<T> = Result<T, PortError>;

/// An instance as Auto Scaling lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMember {
    /// `i-...`.
    pub id: String,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
    /// Auto Scaling health status is `Healthy`.
    pub healthy: bool,
    /// Launch template (`lt-...`) it was launched from, as reported.
    #[serde(default)]
    pub launch_template_id: Option<String>,
    /// Launch template version, as reported.
    pub launch_template_version: Option<String>,
    /// Availability zone.
    pub availability_zone: String,
    /// Scale-in protection.
    pub protected_from_scale_in: bool,
}

/// An Auto Scaling group as described: its settings and members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupDescription {
    /// Name, sizes, processes, launch template, target groups.
    #[serde(flatten)]
    pub settings: GroupSettings,
    /// Members.
    pub instances: Vec<GroupMember>,
}

/// Reads an Auto Scaling group with its instances (one call).
#[async_trait]
pub trait GroupReader: Send + Sync {
    /// The group, or `NotFound`.
    async fn describe_group(&self, name: &str) -> PortResult<GroupDescription>;
    /// The instance refresh running on the group (its id and status), if one is: DescribeInstanceRefreshes.
    async fn active_instance_refresh(&self, name: &str) -> PortResult<Option<String>>;
    /// The group's activities that started at or after `since`, newest first (one DescribeScalingActivities page).
    async fn scaling_activities(&self, name: &str, since: Timestamp) -> PortResult<Vec<ScalingActivity>>;
}

/// A change of an Auto Scaling group's settings; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupUpdate {
    /// Minimum size.
    pub min_size: Option<u32>,
    /// Maximum size.
    pub max_size: Option<u32>,
    /// Desired capacity.
    pub desired_capacity: Option<u32>,
    /// Launch template (and version).
    pub launch_template: Option<LaunchTemplateRef>,
}

/// Whether terminating an instance also lowers desired capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decrement(pub bool);

/// Changes Auto Scaling groups.
#[async_trait]
pub trait GroupWriter: Send + Sync {
    /// UpdateAutoScalingGroup.
    async fn update_group(&self, name: &str, update: &GroupUpdate) -> PortResult<()>;
    /// SetDesiredCapacity, ignoring cooldowns.
    async fn set_desired_capacity(&self, name: &str, desired: u32) -> PortResult<()>;
    /// TerminateInstanceInAutoScalingGroup.
    async fn terminate_instance(&self, instance_id: &str, decrement: Decrement) -> PortResult<()>;
    /// EnterStandby, decrementing desired capacity (no replacement is launched): the instances
    /// leave their target groups and keep running. At most [`MAX_STANDBY_PER_CALL`] ids.
    async fn enter_standby(&self, group: &str, instance_ids: &[String]) -> PortResult<()>;
    /// ExitStandby: the instances go back through Pending, are registered in the target groups
    /// and health-checked again; desired capacity rises by one each. At most [`MAX_STANDBY_PER_CALL`] ids.
    async fn exit_standby(&self, group: &str, instance_ids: &[String]) -> PortResult<()>;
}

/// Instance ids per EnterStandby or ExitStandby call
/// (<https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_EnterStandby.html>).
pub const MAX_STANDBY_PER_CALL: usize = 20;

/// Suspends and resumes Auto Scaling processes.
///
/// An empty list is a no-op. (AWS reads an empty list as "every process",
/// which would resume processes an operator suspended on purpose.)
#[async_trait]
pub trait ProcessControl: Send + Sync {
    /// SuspendProcesses.
    async fn suspend_processes(&self, group: &str, processes: &[String]) -> PortResult<()>;
    /// ResumeProcesses.
    async fn resume_processes(&self, group: &str, processes: &[String]) -> PortResult<()>;
}

/// An EC2 instance as DescribeInstances returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ec2Instance {
    /// `i-...`.
    pub id: String,
    /// `pending`, `running`, `terminated`...
    pub state: String,
    /// AMI.
    pub image_id: Option<String>,
    /// Launch time.
    pub launched_at: Option<Timestamp>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// Reads EC2 instances.
#[async_trait]
pub trait InstanceReader: Send + Sync {
    /// DescribeInstances for these ids (batched; unknown ids are simply absent).
    async fn describe_instances(&self, ids: &[String]) -> PortResult<Vec<Ec2Instance>>;
    /// DescribeInstances of non-terminated instances carrying every one of these tags.
    async fn find_instances(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Ec2Instance>>;
    /// DescribeInstances of non-terminated instances running any of these AMIs.
    async fn instances_using_images(&self, image_ids: &[String]) -> PortResult<Vec<Ec2Instance>>;
}

/// A request to launch one instance from a launch template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchRequest {
    /// Template and version.
    pub launch_template: LaunchTemplateRef,
    /// AMI override (a base AMI for builders).
    pub image_id: Option<String>,
    /// Instance type override.
    pub instance_type: Option<String>,
    /// Tags for the instance.
    pub tags: BTreeMap<String, String>,
    /// The subnet to launch in (`None`: the template's network interface decides).
    #[serde(default)]
    pub subnet_id: Option<String>,
    /// RunInstances' idempotency token: a retried launch with the same token
    /// returns the instance the first one made instead of another
    /// (<https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html>).
    #[serde(default)]
    pub client_token: Option<String>,
}

/// Launches and terminates stand-alone instances (bake builders).
#[async_trait]
pub trait InstanceLauncher: Send + Sync {
    /// RunInstances (one instance); returns its id.
    async fn launch_instance(&self, request: &LaunchRequest) -> PortResult<String>;
    /// TerminateInstances.
    async fn terminate_instances(&self, ids: &[String]) -> PortResult<()>;
}

/// One version of a launch template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateVersion {
    /// `lt-...`.
    pub template_id: String,
    /// Template name.
    pub template_name: String,
    /// Version number.
    pub version: u64,
    /// The version's AMI.
    pub image_id: Option<String>,
    /// Whether it is the default version.
    pub is_default: bool,
    /// The version defines network interfaces, so RunInstances may not name a subnet of its own.
    #[serde(default)]
    pub network_interfaces: bool,
    /// The subnet of its primary network interface, if it sets one.
    #[serde(default)]
    pub interface_subnet: Option<String>,
    /// The instance type it launches, if it sets one.
    #[serde(default)]
    pub instance_type: Option<String>,
    /// Its instance profile (name or ARN), if it sets one: what lets SSM manage the instances.
    #[serde(default)]
    pub instance_profile: Option<String>,
}

/// Reads and writes launch template versions.
#[async_trait]
pub trait LaunchTemplates: Send + Sync {
    /// DescribeLaunchTemplateVersions for these versions (numbers, `$Latest`, `$Default`).
    async fn describe_versions(&self, template: &LaunchTemplateRef, versions: &[String]) -> PortResult<Vec<TemplateVersion>>;
    /// CreateLaunchTemplateVersion from `source_version` with a new AMI.
    async fn create_version(
        &self,
        template: &LaunchTemplateRef,
        source_version: &str,
        image_id: &str,
        description: &str,
    ) -> PortResult<TemplateVersion>;
    /// ModifyLaunchTemplate's default version.
    async fn set_default_version(&self, template: &LaunchTemplateRef, version: u64) -> PortResult<()>;
}

/// An AMI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `ami-...`.
    pub id: String,
    /// Name.
    pub name: String,
    /// `pending`, `available`, `failed`...
    pub state: String,
    /// Creation time.
    pub created_at: Option<Timestamp>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// EBS snapshots behind it.
    pub snapshot_ids: Vec<String>,
}

/// Creates, finds and deletes AMIs.
#[async_trait]
pub trait Images: Send + Sync {
    /// CreateImage of an instance, tagging the image and its snapshots in
    /// the same call (so a failed image leaves no untagged snapshot behind).
    async fn create_image(&self, instance_id: &str, name: &str, tags: &BTreeMap<String, String>) -> PortResult<String>;
    /// DescribeImages by id (unknown ids are absent).
    async fn describe_images(&self, ids: &[String]) -> PortResult<Vec<Image>>;
    /// DescribeImages owned by this account carrying every one of these tags.
    async fn find_images(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Image>>;
    /// DeregisterImage, then DeleteSnapshot for each of its snapshots (their ids are in `image`,
    /// read before: once deregistered, nothing lists them). Returns the snapshots EC2 still
    /// reports in use (`InvalidSnapshot.InUse` lasts a while after DeregisterImage), left for
    /// a later sweep of orphans.
    async fn delete_image(&self, image: &Image) -> PortResult<Vec<String>>;
    /// DescribeSnapshots owned by this account carrying every one of these tags.
    async fn find_snapshots(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Snapshot>>;
    /// DeleteSnapshot; `false` when EC2 still reports it in use (try again later). Gone is done.
    async fn delete_snapshot(&self, snapshot_id: &str) -> PortResult<bool>;
}

/// An EBS snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `snap-...`.
    pub id: String,
    /// When it was started.
    pub started_at: Option<Timestamp>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// Status of a command on one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandStatus {
    /// Pending, InProgress, Delayed.
    Running,
    /// Success.
    Succeeded,
    /// Failed, TimedOut, Cancelled, Undeliverable...
    Failed,
}

/// A command's result on one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// The command.
    #[serde(default)]
    pub command_id: String,
    /// Instance id.
    pub instance_id: String,
    /// Status.
    pub status: CommandStatus,
    /// AWS status detail (`TimedOut`, `Failed`...).
    pub status_detail: String,
    /// Exit code, once known (-1 when SSM has none).
    pub exit_code: Option<i32>,
    /// stdout as GetCommandInvocation returns it: the first [`SSM_OUTPUT_HEAD`] characters only.
    pub stdout: String,
    /// stderr, likewise cut.
    pub stderr: String,
}

/// How much of a command's stdout (and of its stderr) GetCommandInvocation returns: the *first*
/// 24,000 characters (<https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html>).
pub const SSM_OUTPUT_HEAD: usize = 24_000;

impl Invocation {
    /// SSM cut its output: the end of it (where a traceback is) is not here.
    pub fn output_cut(&self) -> bool {
        self.stdout.chars().count() >= SSM_OUTPUT_HEAD || self.stderr.chars().count() >= SSM_OUTPUT_HEAD
    }
}

/// A shell command for SSM Run Command, through stepdeploy's own document
/// ([`crate::revision::command_document`]), which declares the revision a
/// parameter with `interpolationType: ENV_VAR`: the agent hands it to the
/// shell as `$SSM_revision`, never as script text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRequest<'a> {
    /// The SSM document's name.
    pub document: &'a str,
    /// Where it runs.
    pub instance_ids: &'a [String],
    /// The shell text, from the config (`{revision}` already `"$SSM_revision"`).
    pub command: &'a str,
    /// A checked revision (empty when there is none), the document's `revision` parameter.
    pub revision: &'a str,
    /// The document's `executionTimeout`.
    pub timeout_seconds: u64,
    /// SendCommand's comment (cut to 100 characters).
    pub comment: &'a str,
    /// The CloudWatch Logs group the whole output also goes to (SSM keeps only its first 24,000 characters).
    pub output_log_group: Option<&'a str>,
}

/// SSM Run Command.
#[async_trait]
pub trait CommandRunner: Send + Sync {
    /// SendCommand to these instances; returns the command id.
    async fn send_command(&self, request: &CommandRequest<'_>) -> PortResult<String>;
    /// GetCommandInvocation for each instance.
    async fn invocations(&self, command_id: &str, instance_ids: &[String]) -> PortResult<Vec<Invocation>>;
    /// ListCommands of `document` sent at or after `since`: each command's id and comment.
    async fn recent_commands(&self, document: &str, since: Timestamp) -> PortResult<Vec<(String, String)>>;
}

/// A stored parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
    /// Version.
    pub version: i64,
    /// Last change.
    pub modified_at: Option<Timestamp>,
}

/// SSM Parameter Store.
#[async_trait]
pub trait Parameters: Send + Sync {
    /// GetParameter; `None` when absent.
    async fn get_parameter(&self, name: &str) -> PortResult<Option<Parameter>>;
    /// PutParameter without overwrite: `false` if it already exists (atomic; the lock relies on it).
    async fn create_parameter(&self, name: &str, value: &str) -> PortResult<bool>;
    /// PutParameter with overwrite.
    async fn put_parameter(&self, name: &str, value: &str) -> PortResult<()>;
    /// DeleteParameter; `false` when it was absent.
    async fn delete_parameter(&self, name: &str) -> PortResult<bool>;
    /// GetParametersByPath, recursive, every page: the parameters whose names start with `path/`.
    async fn parameters_under(&self, path: &str) -> PortResult<Vec<Parameter>>;
}

/// A target's health in one target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    /// Instance id.
    pub instance_id: String,
    /// State.
    pub state: TargetState,
    /// ELB's reason code, e.g. `Target.FailedHealthChecks`.
    pub reason: Option<String>,
}

/// ELBv2 target health.
#[async_trait]
pub trait TargetHealthReader: Send + Sync {
    /// DescribeTargetHealth of a whole target group (one call).
    async fn describe_target_health(&self, target_group_arn: &str) -> PortResult<Vec<TargetHealth>>;
}

/// Takes instances out of and back into a target group (in-place deploys).
#[async_trait]
pub trait TargetRegistration: Send + Sync {
    /// DeregisterTargets: the instances drain, then leave the group.
    async fn deregister_targets(&self, target_group_arn: &str, instance_ids: &[String]) -> PortResult<()>;
    /// RegisterTargets: the instances rejoin and are health-checked again.
    async fn register_targets(&self, target_group_arn: &str, instance_ids: &[String]) -> PortResult<()>;
}

/// A fixed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedResponse {
    /// HTTP status, e.g. 503.
    pub status_code: u16,
    /// Content type.
    pub content_type: String,
    /// Body (≤ 1,024 bytes).
    pub body: String,
}

/// What a listener rule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Answer directly.
    FixedResponse(FixedResponse),
    /// Forward to these target groups.
    Forward(Vec<String>),
    /// Anything else (redirect, authenticate...).
    Other(String),
}

/// A listener rule: conditions (all must match) and an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    /// Path patterns (`/*` for any path).
    pub path_patterns: Vec<String>,
    /// Source CIDRs; empty for any source.
    pub source_ips: Vec<String>,
    /// The action.
    pub action: RuleAction,
}

/// A listener rule as described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerRule {
    /// Rule ARN.
    pub arn: String,
    /// Priority; `None` for the default rule.
    pub priority: Option<u32>,
    /// Conditions and action.
    pub spec: RuleSpec,
}

/// ALB listener rules (the maintenance page).
#[async_trait]
pub trait ListenerRules: Send + Sync {
    /// DescribeRules of a listener.
    async fn describe_rules(&self, listener_arn: &str) -> PortResult<Vec<ListenerRule>>;
    /// CreateRule at `priority`, tagged with `tags`; returns the rule ARN.
    async fn create_rule(&self, listener_arn: &str, priority: u32, rule: &RuleSpec, tags: &BTreeMap<String, String>) -> PortResult<String>;
    /// DeleteRule; `false` when it was already gone.
    async fn delete_rule(&self, rule_arn: &str) -> PortResult<bool>;
}

/// Step Functions executions, as the lock's holder is one.
#[async_trait]
pub trait Executions: Send + Sync {
    /// DescribeExecution: `Some(true)` while it runs, `Some(false)` once it ended or if it
    /// doesn't exist, `None` when `execution` is not an execution ARN (a local run's id).
    async fn execution_running(&self, execution: &str) -> PortResult<Option<bool>>;
}

/// Answers a Task that waits for its token (`.waitForTaskToken`): a checkpoint's pause.
///
/// A token no task waits for any more (answered, timed out, its execution ended) is
/// [`ErrorKind::NotFound`]: Step Functions says `TaskDoesNotExist` or `TaskTimedOut`
/// (<https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html>).
#[async_trait]
pub trait TaskAnswers: Send + Sync {
    /// SendTaskSuccess with `output` (JSON): the Task goes on with it.
    async fn send_task_success(&self, token: &str, output: &str) -> PortResult<()>;
    /// SendTaskFailure: the Task fails with `error` and `cause`.
    async fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> PortResult<()>;
}

/// The longest task token SendTaskSuccess and SendTaskFailure take
/// (<https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html>).
pub const MAX_TASK_TOKEN_CHARS: usize = 2048;

/// A CloudWatch alarm's state, as DescribeAlarms returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmState {
    /// The alarm's name.
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// Why it is in that state (StateReason).
    pub reason: String,
    /// When it last changed state (StateUpdatedTimestamp).
    pub updated_at: Timestamp,
}

impl AlarmState {
    /// In ALARM.
    pub fn firing(&self) -> bool {
        self.state == "ALARM"
    }
}

/// The most alarm names one DescribeAlarms call takes
/// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html>).
pub const MAX_ALARMS_PER_CALL: usize = 100;

/// Reads CloudWatch alarms.
#[async_trait]
pub trait Alarms: Send + Sync {
    /// DescribeAlarms for these names (metric and composite alarms, at most
    /// [`MAX_ALARMS_PER_CALL`]: one call); names that don't exist are simply absent.
    async fn describe_alarms(&self, names: &[String]) -> PortResult<Vec<AlarmState>>;
}

/// SNS's limit on a message's subject: 100 printable ASCII characters, no line break
/// (<https://docs.aws.amazon.com/sns/latest/api/API_Publish.html>).
pub const MAX_SUBJECT_CHARS: usize = 100;

/// Operator notifications.
#[async_trait]
pub trait Notifications: Send + Sync {
    /// SNS Publish of `message` under `subject` (at most [`MAX_SUBJECT_CHARS`] printable ASCII
    /// characters) to `topic_arn`; returns the message id.
    async fn publish(&self, topic_arn: &str, subject: &str, message: &str) -> PortResult<String>;
}

mod readiness;
pub use readiness::*;
