//! The deployment config (`stepdeploy.yaml`): one deployment, several environments.
//!
//! Loading never stops at the first problem: unknown keys, type errors and
//! out-of-range values are all collected as [`Problem`]s that name the full
//! field path, the bad value and what is allowed.

use std::fmt;

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
        Self { stale_after_seconds: 7200 }
    }
}

/// One thing wrong with a config, at a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path, e.g. `environments.prod01.rollout.min_healthy_percent`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All problems of a config, never just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the config:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct Problems(pub Vec<Problem>);

impl Config {
    /// Parses and validates a YAML (or JSON) config.
    pub fn from_yaml_str(text: &str) -> Result<Config, Problems> {
        let root: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| Problems(vec![Problem { path: "(file)".into(), message: format!("not valid YAML: {e}") }]))?;
        let mut problems = Vec::new();
        let serde_yaml_ng::Value::Mapping(map) = root else {
            return Err(Problems(vec![Problem {
                path: "(file)".into(),
                message: format!("expected a mapping with `deployment` and `environments`, found {}", kind_of(&root)),
            }]));
        };
        let mut deployment = String::new();
        let mut environments = IndexMap::new();
        let mut saw_environments = false;
        for (key, value) in map {
            let key_text = key.as_str().map(str::to_string).unwrap_or_else(|| format!("{key:?}"));
            match key_text.as_str() {
                "deployment" => match value.as_str() {
                    Some(name) if !name.is_empty() => deployment = name.to_string(),
                    _ => problems.push(Problem {
                        path: "deployment".into(),
                        message: format!("{} is not a deployment name; expected a non-empty string", show(&value)),
                    }),
                },
                "environments" => {
                    saw_environments = true;
                    match value {
                        serde_yaml_ng::Value::Mapping(envs) => {
                            for (name, env_value) in envs {
                                let Some(name) = name.as_str().map(str::to_string) else {
                                    problems
                                        .push(Problem { path: "environments".into(), message: format!("environment name {name:?} is not a string") });
                                    continue;
                                };
                                let path = format!("environments.{name}");
                                if let Some(env) = Environment::from_value(env_value, &path, &mut problems) {
                                    env.validate(&path, &mut problems);
                                    environments.insert(name, env);
                                }
                            }
                        }
                        other => problems.push(Problem {
                            path: "environments".into(),
                            message: format!("expected a mapping of environment names, found {}", kind_of(&other)),
                        }),
                    }
                }
                _ => problems.push(unknown_key(&key_text, &["deployment", "environments"])),
            }
        }
        if deployment.is_empty() && !problems.iter().any(|p| p.path == "deployment") {
            problems.push(Problem { path: "deployment".into(), message: "required: the deployment's name, e.g. `opendebates`".into() });
        }
        if !saw_environments {
            problems.push(Problem { path: "environments".into(), message: "required: at least one environment".into() });
        } else if environments.is_empty() && problems.is_empty() {
            problems.push(Problem { path: "environments".into(), message: "is empty; expected at least one environment".into() });
        }
        if problems.is_empty() { Ok(Config { deployment, environments }) } else { Err(Problems(problems)) }
    }

    /// Writes the config as YAML, every setting spelled out.
    pub fn to_yaml(&self) -> String {
        // Serializing plain data structs to YAML cannot fail.
        serde_yaml_ng::to_string(self).unwrap_or_default()
    }

    /// The environment called `name`, or an error listing the known ones.
    pub fn environment(&self, name: &str) -> Result<&Environment, UnknownEnvironment> {
        self.environments.get(name).ok_or_else(|| UnknownEnvironment { name: name.to_string(), known: self.environments.keys().cloned().collect() })
    }
}

/// An environment name that the config does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment: {name:?} is not defined; expected one of: {}", known.join(", "))]
pub struct UnknownEnvironment {
    /// The name asked for.
    pub name: String,
    /// The names the config defines.
    pub known: Vec<String>,
}

/// The SSM parameter that holds an environment's config as JSON.
pub fn parameter_name(deployment: &str, environment: &str) -> String {
    format!("/stepdeploy/{deployment}/{environment}")
}

impl Environment {
    /// Parses and validates one environment stored as JSON (the SSM parameter form).
    pub fn from_json_str(text: &str, path: &str) -> Result<Environment, Problems> {
        let value: serde_yaml_ng::Value = serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| Problems(vec![Problem { path: path.to_string(), message: format!("not valid JSON: {e}") }]))
            .and_then(|json| {
                serde_yaml_ng::to_value(json).map_err(|e| Problems(vec![Problem { path: path.to_string(), message: format!("cannot be read: {e}") }]))
            })?;
        let mut problems = Vec::new();
        let env = Environment::from_value(value, path, &mut problems);
        if let Some(env) = &env {
            env.validate(path, &mut problems);
        }
        match env {
            Some(env) if problems.is_empty() => Ok(env),
            _ => Err(Problems(problems)),
        }
    }

    /// The environment as compact JSON, for its SSM parameter.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn from_value(value: serde_yaml_ng::Value, path: &str, problems: &mut Vec<Problem>) -> Option<Environment> {
        let mut unknown = Vec::new();
        let mut record = |p: serde_ignored::Path<'_>| unknown.push(p.to_string());
        let ignored = serde_ignored::Deserializer::new(value, &mut record);
        let result: Result<Environment, _> = serde_path_to_error::deserialize(ignored);
        for key in unknown {
            problems.push(Problem { path: format!("{path}.{key}"), message: "unknown key (a typo?); see the config reference in the README".into() });
        }
        match result {
            Ok(env) => Some(env),
            Err(e) => {
                let inner = e.path().to_string();
                problems.push(Problem {
                    path: if inner == "." { path.to_string() } else { format!("{path}.{inner}") },
                    message: e.into_inner().to_string(),
                });
                None
            }
        }
    }

    /// Checks every value; pushes one problem per bad field.
    pub fn validate(&self, path: &str, problems: &mut Vec<Problem>) {
        let mut push = |field: &str, message: String| problems.push(Problem { path: format!("{path}.{field}"), message });
        if self.region.is_empty() {
            push("region", "required: the AWS region, e.g. `us-east-1`".into());
        } else if !is_region(&self.region) {
            push("region", format!("{:?} is not an AWS region name; expected e.g. `us-east-1`", self.region));
        }
        if self.auto_scaling_group.trim().is_empty() {
            push("auto_scaling_group", "required: fill in the web Auto Scaling group's name".into());
        }
        if self.target_group_arns.is_empty() {
            push(
                "target_group_arns",
                "required: fill in the ARN of every target group the web instances serve (arn:aws:elasticloadbalancing:...:targetgroup/...)".into(),
            );
        }
        for (i, arn) in self.target_group_arns.iter().enumerate() {
            if !(arn.starts_with("arn:") && arn.contains(":targetgroup/")) {
                push(
                    &format!("target_group_arns[{i}]"),
                    format!("{arn:?} is not a target group ARN; expected arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID"),
                );
            }
        }
        match &self.listener_arn {
            None => push(
                "listener_arn",
                "required: fill in the ALB listener ARN that serves the site (arn:aws:elasticloadbalancing:...:listener/app/...)".into(),
            ),
            Some(arn) if !(arn.starts_with("arn:") && arn.contains(":listener/")) => push(
                "listener_arn",
                format!("{arn:?} is not a listener ARN; expected arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID"),
            ),
            Some(_) => {}
        }
        match &self.launch_template {
            None => push("launch_template", "required: fill in the web launch template's id (lt-...) or name".into()),
            Some(lt) if lt.trim().is_empty() => push("launch_template", "is empty; expected a launch template id (lt-...) or name".into()),
            Some(_) => {}
        }
        for (i, domain) in self.domains.iter().enumerate() {
            if domain.trim().is_empty() || domain.contains(char::is_whitespace) {
                push(&format!("domains[{i}]"), format!("{domain:?} is not a domain name"));
            }
        }
        if let Some(first) = self.domains.first()
            && first.starts_with('*')
        {
            push("domains[0]", format!("{first:?} is a wildcard; the first domain is the canonical site and must be a plain name"));
        }
        if self.workers.tags.is_empty() {
            push("workers.tags", "is empty; expected at least one tag that selects the worker instances".into());
        }
        for (name, spec) in [
            ("bake", &self.commands.bake),
            ("worker_deploy", &self.commands.worker_deploy),
            ("migrate", &self.commands.migrate),
            ("in_place_deploy", &self.commands.in_place_deploy),
        ] {
            if spec.command.trim().is_empty() {
                push(&format!("commands.{name}.command"), "is empty; expected a shell command line".into());
            }
            if !(1..=MAX_COMMAND_TIMEOUT_SECONDS).contains(&spec.timeout_seconds) {
                push(
                    &format!("commands.{name}.timeout_seconds"),
                    format!("{} is not in 1..={MAX_COMMAND_TIMEOUT_SECONDS} (SSM's limit)", spec.timeout_seconds),
                );
            }
        }
        let health = &self.health;
        if health.timeout_seconds == 0 {
            push("health.timeout_seconds", "0 is not allowed; expected at least 1".into());
        }
        if health.poll_interval_seconds == 0 || health.poll_interval_seconds > health.timeout_seconds.max(1) {
            push(
                "health.poll_interval_seconds",
                format!("{} is not in 1..={} (health.timeout_seconds)", health.poll_interval_seconds, health.timeout_seconds),
            );
        }
        if health.warmup_seconds > 3600 {
            push("health.warmup_seconds", format!("{} is not in 0..=3600", health.warmup_seconds));
        }
        let rollout = &self.rollout;
        let min_ok = (0..=100).contains(&rollout.min_healthy_percent);
        let max_ok = (100..=200).contains(&rollout.max_healthy_percent);
        if !min_ok {
            push("rollout.min_healthy_percent", format!("{} is not in 0..=100", rollout.min_healthy_percent));
        }
        if !max_ok {
            push("rollout.max_healthy_percent", format!("{} is not in 100..=200", rollout.max_healthy_percent));
        }
        if min_ok && max_ok && rollout.min_healthy_percent == 100 && rollout.max_healthy_percent == 100 {
            push(
                "rollout.max_healthy_percent",
                "100 with min_healthy_percent 100 leaves no room to replace any instance; raise max_healthy_percent (surge) or lower min_healthy_percent".into(),
            );
        }
        if let Some(batch) = rollout.batch_size
            && batch < 1
        {
            push("rollout.batch_size", format!("{batch} is not allowed; expected at least 1, or leave it out"));
        }
        if rollout.timeout_seconds < health.timeout_seconds {
            push(
                "rollout.timeout_seconds",
                format!("{} is shorter than health.timeout_seconds ({}); expected at least that", rollout.timeout_seconds, health.timeout_seconds),
            );
        }
        for (i, process) in rollout.suspend_processes.iter().enumerate() {
            if !SCALING_PROCESSES.contains(&process.as_str()) {
                push(
                    &format!("rollout.suspend_processes[{i}]"),
                    format!("{process:?} is not an Auto Scaling process; expected one of {}", SCALING_PROCESSES.join(", ")),
                );
            }
        }
        let maintenance = &self.maintenance;
        if maintenance.html.is_empty() {
            push("maintenance.html", "is empty; expected the maintenance page's HTML".into());
        } else if maintenance.html.len() > MAX_MAINTENANCE_HTML_BYTES {
            push(
                "maintenance.html",
                format!("is {} bytes; the ALB fixed-response body limit is {MAX_MAINTENANCE_HTML_BYTES} bytes", maintenance.html.len()),
            );
        }
        for (i, cidr) in maintenance.allowed_cidrs.iter().enumerate() {
            if cidr.parse::<ipnet::IpNet>().is_err() {
                push(&format!("maintenance.allowed_cidrs[{i}]"), format!("{cidr:?} is not a CIDR block; expected e.g. 203.0.113.0/24"));
            }
        }
        if !(1..=50_000).contains(&maintenance.rule_priority) {
            push("maintenance.rule_priority", format!("{} is not in 1..=50000", maintenance.rule_priority));
        }
        let scaling = &self.scaling;
        if scaling.min_size < 0 {
            push("scaling.min_size", format!("{} is negative; expected 0 or more", scaling.min_size));
        }
        if scaling.max_size < scaling.min_size.max(0) {
            push("scaling.max_size", format!("{} is below scaling.min_size ({})", scaling.max_size, scaling.min_size));
        }
        if scaling.desired_capacity < scaling.min_size || scaling.desired_capacity > scaling.max_size {
            push(
                "scaling.desired_capacity",
                format!("{} is not in {}..={} (scaling.min_size..=scaling.max_size)", scaling.desired_capacity, scaling.min_size, scaling.max_size),
            );
        }
        if let Some(tracking) = &scaling.target_tracking
            && !(tracking.target_value.is_finite() && tracking.target_value > 0.0)
        {
            push("scaling.target_tracking.target_value", format!("{} is not allowed; expected a number above 0", tracking.target_value));
        }
        if let Some(tracking) = &scaling.target_tracking
            && tracking.metric == ScalingMetric::Cpu
            && tracking.target_value > 100.0
        {
            push("scaling.target_tracking.target_value", format!("{} is not a CPU percent; expected 0..=100", tracking.target_value));
        }
        if self.images.retain < 1 {
            push("images.retain", format!("{} is not allowed; expected at least 1 (the image in use)", self.images.retain));
        }
        for (field, value) in [
            ("images.builder_online_timeout_seconds", self.images.builder_online_timeout_seconds),
            ("images.available_timeout_seconds", self.images.available_timeout_seconds),
        ] {
            if value == 0 {
                push(field, "0 is not allowed; expected at least 1".into());
            }
        }
        let shortest = self.images.builder_online_timeout_seconds.min(self.images.available_timeout_seconds).max(1);
        if self.images.poll_interval_seconds == 0 || self.images.poll_interval_seconds > shortest {
            push(
                "images.poll_interval_seconds",
                format!("{} is not in 1..={shortest} (the shorter images timeout)", self.images.poll_interval_seconds),
            );
        }
        if let Some(parameter) = &self.images.base_image_parameter
            && !parameter.starts_with('/')
        {
            push("images.base_image_parameter", format!("{parameter:?} is not an SSM parameter name; expected one starting with /"));
        }
        if self.lock.stale_after_seconds < 60 {
            push("lock.stale_after_seconds", format!("{} is not allowed; expected at least 60", self.lock.stale_after_seconds));
        }
    }
}

fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

fn unknown_key(key: &str, allowed: &[&str]) -> Problem {
    Problem { path: key.to_string(), message: format!("unknown key (a typo?); expected one of: {}", allowed.join(", ")) }
}

fn kind_of(value: &serde_yaml_ng::Value) -> &'static str {
    match value {
        serde_yaml_ng::Value::Null => "nothing",
        serde_yaml_ng::Value::Bool(_) => "a boolean",
        serde_yaml_ng::Value::Number(_) => "a number",
        serde_yaml_ng::Value::String(_) => "a string",
        serde_yaml_ng::Value::Sequence(_) => "a list",
        serde_yaml_ng::Value::Mapping(_) => "a mapping",
        serde_yaml_ng::Value::Tagged(_) => "a tagged value",
    }
}

fn show(value: &serde_yaml_ng::Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| kind_of(value).to_string())
}

/// Loads one environment from its SSM parameter (written by `stepdeploy config push`).
pub async fn load_environment(params: &dyn crate::ports::Parameters, deployment: &str, environment: &str) -> Result<Config, crate::steps::StepError> {
    let name = parameter_name(deployment, environment);
    let parameter = params.get_parameter(&name).await?.ok_or_else(|| crate::steps::StepError {
        name: crate::errors::INVALID_INPUT,
        message: format!("environment: {environment:?} is not configured (no SSM parameter {name}); run `stepdeploy config push {environment}`"),
    })?;
    let env = Environment::from_json_str(&parameter.value, &name)
        .map_err(|problems| crate::steps::StepError { name: crate::errors::CONFIG_INVALID, message: problems.to_string() })?;
    Ok(Config { deployment: deployment.to_string(), environments: IndexMap::from([(environment.to_string(), env)]) })
}
