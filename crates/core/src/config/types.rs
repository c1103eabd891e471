//! The config's shape: a deployment and its environments, with defaults.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The ALB fixed-response body limit, in bytes.
pub const MAX_MAINTENANCE_HTML_BYTES: usize = 1024;

/// SSM Run Command's largest execution timeout (48 hours).
pub const MAX_COMMAND_TIMEOUT_SECONDS: u64 = 172_800;

/// Auto Scaling process names accepted by SuspendProcesses.
pub const SCALING_PROCESSES: &[&str] = &[
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "AZRebalance",
    "HealthCheck",
    "InstanceRefresh",
    "ReplaceUnhealthy",
    "ScheduledActions",
];

/// The longest bake (soak) time after a rollout: a day.
pub const MAX_BAKE_SECONDS: u64 = 86_400;

/// The longest a checkpoint waits (a week): a paused execution costs nothing, but a rollout
/// left half-done for longer is forgotten, not paused.
pub const MAX_CHECKPOINT_WAIT_SECONDS: u64 = 604_800;

/// The most checkpoints a rollout has.
pub const MAX_CHECKPOINTS: usize = 10;

/// The longest a deploy waits in the lock queue: the state machines retry a queued prepare every
/// [`LOCK_QUEUE_POLL_SECONDS`] at most 500 times (`statemachines/*-deploy.asl.json`).
pub const MAX_LOCK_WAIT_SECONDS: u64 = 14_400;

/// How often a queued deploy tries the lock again (the Retry interval in the state machines).
pub const LOCK_QUEUE_POLL_SECONDS: u64 = 30;

/// A whole config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The project, e.g. `opendebates`.
    pub deployment: String,
    /// Environments by name, in file order.
    pub environments: IndexMap<String, Environment>,
}

/// One environment: an Auto Scaling group behind an ALB, plus its workers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Environment {
    /// AWS region, e.g. `us-east-1`.
    pub region: String,
    /// Production actions ask for confirmation.
    pub production: bool,
    /// The web Auto Scaling group's name.
    pub auto_scaling_group: String,
    /// The ALB's name (informational: status output and the operator's orientation).
    pub load_balancer: Option<String>,
    /// Every target group the web instances must be healthy in.
    pub target_group_arns: Vec<String>,
    /// The ALB listener that carries the maintenance rule.
    pub listener_arn: Option<String>,
    /// The launch template, by id (`lt-...`) or name.
    pub launch_template: Option<String>,
    /// The branch deployed by default (rebakes use the running revision).
    pub branch: Option<String>,
    /// Web instance type; used for bake builders.
    pub instance_type: Option<String>,
    /// Site domains; the first is canonical (Fabulaws `site_domains_map`).
    pub domains: Vec<String>,
    /// How worker instances are found.
    pub workers: Workers,
    /// Commands run over SSM Run Command.
    pub commands: Commands,
    /// What "healthy" waits for.
    pub health: Health,
    /// Rolling replacement defaults.
    pub rollout: Rollout,
    /// The ALB maintenance page.
    pub maintenance: Maintenance,
    /// The group's capacity and scaling policy.
    pub scaling: Scaling,
    /// Baked image retention.
    pub images: Images,
    /// The per-environment deploy lock.
    pub lock: Lock,
    /// CloudWatch alarms (metric or composite, by name) that guard a rollout: one in ALARM
    /// refuses a deploy before it starts and rolls back one under way (at most 100: one
    /// DescribeAlarms call per poll).
    pub alarms: Vec<String>,
}

/// Worker instance selector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Workers {
    /// EC2 tags every worker carries; all must match.
    pub tags: IndexMap<String, String>,
}

/// The SSM commands of an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Commands {
    /// Run on the bake builder; `{revision}` is replaced by the git revision.
    pub bake: CommandSpec,
    /// Run on workers by `deploy-worker`; gets `{revision}`.
    pub worker_deploy: CommandSpec,
    /// Database migrations, run on one worker.
    pub migrate: CommandSpec,
    /// In-place code update on web instances; gets `{revision}`.
    pub in_place_deploy: CommandSpec,
}

/// A shell command and its timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandSpec {
    /// Shell command line (`{revision}` is substituted where documented).
    pub command: String,
    /// SSM execution timeout.
    pub timeout_seconds: u64,
}

/// Health-check settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// How long a new instance may take to become healthy before the rollout fails.
    pub timeout_seconds: u64,
    /// How long the state machine waits between reconcile steps.
    pub poll_interval_seconds: u64,
    /// How long an instance must stay healthy before it counts.
    pub warmup_seconds: u64,
}

/// Rollout policy defaults (an execution may override them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rollout {
    /// Healthy capacity floor, as a percent of the original desired capacity.
    pub min_healthy_percent: i64,
    /// Group size ceiling during the rollout, as a percent of the original desired capacity.
    pub max_healthy_percent: i64,
    /// Replace at most this many instances per wave (absent: as many as the policy allows).
    pub batch_size: Option<i64>,
    /// The whole rollout's deadline.
    pub timeout_seconds: u64,
    /// Processes suspended for the deploy's length.
    pub suspend_processes: Vec<String>,
    /// After the last instance is replaced and healthy, keep watching the alarms (and the
    /// group) this long before the deploy finishes; an alarm then still rolls back.
    pub bake_seconds: u64,
    /// Move replaced healthy instances to Standby (still running, out of the target groups)
    /// instead of terminating them, until the bake ends: an alarm then brings them back in the
    /// time of a health check instead of a boot. Needs a bake. The ceiling counts them, so as
    /// many wait as `max_healthy_percent` leaves room for beyond the group (all of them at 200).
    pub instant_rollback: bool,
    /// Pause the rollout once this share of the group (percent, ascending) runs the new version
    /// and is healthy. Each pause continues as `checkpoint_approval` says.
    pub checkpoints: Vec<u32>,
    /// How a paused rollout continues.
    pub checkpoint_approval: CheckpointApproval,
    /// How long a checkpoint waits: for an operator's answer (`manual`: none by then is a
    /// rejection), or for an alarm (`auto`: none by then, and the rollout goes on).
    pub checkpoint_wait_seconds: u64,
}

/// How a rollout paused at a checkpoint continues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointApproval {
    /// An operator approves (`stepdeploy approve ENV`) or rejects; no answer in time is a rejection.
    #[default]
    Manual,
    /// It goes on by itself once the wait passes with no alarm.
    Auto,
}

/// The maintenance page, served by an ALB fixed-response rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Maintenance {
    /// The 503 body (at most 1,024 bytes).
    pub html: String,
    /// Source CIDRs let through to the application.
    pub allowed_cidrs: Vec<String>,
    /// Listener rule priority (1 is the top).
    pub rule_priority: i64,
    /// Keep the page up when migrations fail (the schema may be half-migrated).
    pub hold_on_migration_failure: bool,
}

/// Group capacity and a target-tracking policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scaling {
    /// Auto Scaling group minimum size.
    pub min_size: i64,
    /// Auto Scaling group maximum size.
    pub max_size: i64,
    /// Auto Scaling group desired capacity.
    pub desired_capacity: i64,
    /// Target tracking; absent means no policy is managed.
    pub target_tracking: Option<TargetTracking>,
}

/// A target-tracking scaling policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetTracking {
    /// The tracked metric.
    pub metric: ScalingMetric,
    /// The value to hold the metric at.
    pub target_value: f64,
}

/// Metrics a target-tracking policy can follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalingMetric {
    /// Average CPU utilisation, percent.
    Cpu,
    /// ALB requests per target per minute.
    AlbRequestCountPerTarget,
}

/// Baked image retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Images {
    /// Keep this many newest baked images per environment.
    pub retain: i64,
    /// Bake from this SSM parameter's AMI (e.g. the public
    /// `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64`)
    /// instead of the launch template's default version's AMI.
    pub base_image_parameter: Option<String>,
    /// How long a builder may take to come online in SSM.
    pub builder_online_timeout_seconds: u64,
    /// How long CreateImage may take to make the image available.
    pub available_timeout_seconds: u64,
    /// Seconds between checks on the builder and the image.
    pub poll_interval_seconds: u64,
}

/// Deploy lock settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lock {
    /// A lock older than this may be broken explicitly (never silently).
    pub stale_after_seconds: u64,
    /// A serial or full deploy that finds the environment locked waits this long for it (in the
    /// lock queue) before failing with `StepDeploy.EnvironmentLocked`; 0 fails at once.
    pub wait_seconds: u64,
}

impl Default for Workers {
    fn default() -> Self {
        Self { tags: IndexMap::from([("role".to_string(), "worker".to_string())]) }
    }
}

impl Default for Commands {
    fn default() -> Self {
        let spec = |command: &str, timeout_seconds| CommandSpec { command: command.to_string(), timeout_seconds };
        Self {
            bake: spec("/usr/local/bin/stepdeploy-bake {revision}", 3600),
            worker_deploy: spec("/usr/local/bin/stepdeploy-deploy-worker {revision}", 1800),
            migrate: spec("/usr/local/bin/stepdeploy-migrate", 1800),
            in_place_deploy: spec("/usr/local/bin/stepdeploy-deploy-web {revision}", 900),
        }
    }
}

impl Default for CommandSpec {
    fn default() -> Self {
        Self { command: String::new(), timeout_seconds: 900 }
    }
}

impl Default for Health {
    fn default() -> Self {
        Self { timeout_seconds: 600, poll_interval_seconds: 15, warmup_seconds: 30 }
    }
}

impl Default for Rollout {
    fn default() -> Self {
        Self {
            min_healthy_percent: 100,
            max_healthy_percent: 200,
            batch_size: None,
            timeout_seconds: 3600,
            suspend_processes: ["AZRebalance", "AlarmNotification", "ScheduledActions"].map(String::from).to_vec(),
            bake_seconds: 0,
            instant_rollback: false,
            checkpoints: Vec::new(),
            checkpoint_approval: CheckpointApproval::Manual,
            checkpoint_wait_seconds: 3600,
        }
    }
}

/// The default maintenance page, well under the ALB limit.
pub const DEFAULT_MAINTENANCE_HTML: &str = "<!doctype html><html><head><title>Upgrade in progress</title></head><body><h1>Upgrade in progress</h1><p>We are upgrading the site. Please try again in a few minutes.</p></body></html>";

impl Default for Maintenance {
    fn default() -> Self {
        Self { html: DEFAULT_MAINTENANCE_HTML.to_string(), allowed_cidrs: Vec::new(), rule_priority: 1, hold_on_migration_failure: true }
    }
}

impl Default for Scaling {
    fn default() -> Self {
        Self {
            min_size: 2,
            max_size: 4,
            desired_capacity: 2,
            target_tracking: Some(TargetTracking { metric: ScalingMetric::Cpu, target_value: 60.0 }),
        }
    }
}

impl Default for Images {
    fn default() -> Self {
        Self {
            retain: 5,
            base_image_parameter: None,
            builder_online_timeout_seconds: 600,
            available_timeout_seconds: 3600,
            poll_interval_seconds: 30,
        }
    }
}

impl Default for Lock {
    fn default() -> Self {
        Self { stale_after_seconds: 7200, wait_seconds: 0 }
    }
}
