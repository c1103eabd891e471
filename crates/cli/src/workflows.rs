//! What each operator command starts on AWS: the state machine, the
//! execution input (the same fields `aws stepfunctions start-execution`
//! takes, see the README) and a readable execution name. Pure.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// One StartExecution to make.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    /// The state machine's key in `/stepdeploy/<deployment>/state-machines`.
    pub machine: &'static str,
    /// A short word for the execution name (`serial`, `maintenance-on`).
    pub label: String,
    /// The environment.
    pub environment: String,
    /// The execution input.
    pub input: Value,
    /// A `--revision` to turn into a launch template version before starting.
    pub version_from_revision: Option<String>,
}

/// Rollout overrides a deploy takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolloutOverrides {
    /// `min_healthy_percent`.
    pub min_healthy_percent: Option<u32>,
    /// `max_healthy_percent`.
    pub max_healthy_percent: Option<u32>,
    /// `batch_size`.
    pub batch_size: Option<u32>,
}

impl RolloutOverrides {
    fn write(&self, input: &mut Map<String, Value>) {
        for (key, value) in
            [("min_healthy_percent", self.min_healthy_percent), ("max_healthy_percent", self.max_healthy_percent), ("batch_size", self.batch_size)]
        {
            if let Some(value) = value {
                input.insert(key.into(), json!(value));
            }
        }
    }
}

fn base(environment: &str, break_stale_lock: bool) -> Map<String, Value> {
    let mut input = Map::new();
    input.insert("environment".into(), json!(environment));
    if break_stale_lock {
        input.insert("break_stale_lock".into(), json!(true));
    }
    input
}

fn request(machine: &'static str, label: &str, environment: &str, input: Map<String, Value>) -> StartRequest {
    StartRequest { machine, label: label.to_string(), environment: environment.to_string(), input: Value::Object(input), version_from_revision: None }
}

/// Options of `deploy serial|full`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeployOptions {
    /// `--version`: a launch template version, `$Latest` or `$Default`.
    pub version: Option<String>,
    /// `--revision`: the git revision (the version baked from it, when no `--version`).
    pub revision: Option<String>,
    /// `--migrations`.
    pub run_migrations: bool,
    /// Rollout overrides.
    pub rollout: RolloutOverrides,
    /// `--break-stale-lock`.
    pub break_stale_lock: bool,
    /// `--ignore-alarms`.
    pub ignore_alarms: bool,
    /// `--lock-wait SECONDS`.
    pub lock_wait_seconds: Option<u64>,
}

/// `deploy serial|full ENV`: with neither `--version` nor `--revision`, the
/// template's default version (a bake makes its version the default).
pub fn deploy(full: bool, environment: &str, options: &DeployOptions) -> StartRequest {
    let mut input = base(environment, options.break_stale_lock);
    input.insert("launch_template_version".into(), json!(options.version.as_deref().unwrap_or("$Default")));
    if let Some(revision) = &options.revision {
        input.insert("revision".into(), json!(revision));
    }
    if options.run_migrations {
        input.insert("run_migrations".into(), json!(true));
    }
    if options.ignore_alarms {
        input.insert("ignore_alarms".into(), json!(true));
    }
    if let Some(seconds) = options.lock_wait_seconds {
        input.insert("lock_wait_seconds".into(), json!(seconds));
    }
    options.rollout.write(&mut input);
    let (machine, label) = if full { ("full-deploy", "full") } else { ("serial-deploy", "serial") };
    let mut request = request(machine, label, environment, input);
    if options.version.is_none() {
        request.version_from_revision = options.revision.clone();
    }
    request
}

/// `bake ENV [--revision SHA]`.
pub fn bake(environment: &str, revision: Option<&str>, make_default: bool) -> StartRequest {
    let mut input = base(environment, false);
    if let Some(revision) = revision {
        input.insert("revision".into(), json!(revision));
    }
    if !make_default {
        input.insert("make_default".into(), json!(false));
    }
    request("bake", "bake", environment, input)
}

/// `release ENV`: bake, then deploy.
pub fn release(environment: &str, revision: Option<&str>, deploy: &str, options: &DeployOptions) -> StartRequest {
    let mut input = base(environment, options.break_stale_lock);
    if let Some(revision) = revision {
        input.insert("revision".into(), json!(revision));
    }
    input.insert("deploy".into(), json!(deploy));
    if options.run_migrations {
        input.insert("run_migrations".into(), json!(true));
    }
    options.rollout.write(&mut input);
    request("release", "release", environment, input)
}

/// `rebake ENV`.
pub fn rebake(environment: &str, deploy: &str, break_stale_lock: bool) -> StartRequest {
    let mut input = base(environment, break_stale_lock);
    input.insert("deploy".into(), json!(deploy));
    request("rebake", "rebake", environment, input)
}

/// `worker ENV`: the worker deploy, then migrations unless `--no-migrations`.
pub fn worker(environment: &str, revision: Option<&str>, run_migrations: bool, break_stale_lock: bool) -> StartRequest {
    let mut input = base(environment, break_stale_lock);
    if let Some(revision) = revision {
        input.insert("revision".into(), json!(revision));
    }
    if !run_migrations {
        input.insert("run_migrations".into(), json!(false));
    }
    request("deploy-worker", "worker", environment, input)
}

/// `maintenance on|off ENV`.
pub fn maintenance(environment: &str, on: bool, break_stale_lock: bool) -> StartRequest {
    let mut input = base(environment, break_stale_lock);
    let action = if on { "on" } else { "off" };
    input.insert("action".into(), json!(action));
    request("maintenance", &format!("maintenance-{action}"), environment, input)
}

/// `autoscaling suspend|resume ENV [--process P]...`.
pub fn autoscaling(environment: &str, suspend: bool, processes: &[String], break_stale_lock: bool) -> StartRequest {
    let mut input = base(environment, break_stale_lock);
    let action = if suspend { "suspend" } else { "resume" };
    input.insert("action".into(), json!(action));
    if !processes.is_empty() {
        input.insert("processes".into(), json!(processes));
    }
    request("autoscaling-processes", action, environment, input)
}

/// `in-place ENV`.
pub fn in_place(environment: &str, revision: Option<&str>, rollout: &RolloutOverrides, break_stale_lock: bool) -> StartRequest {
    let mut input = base(environment, break_stale_lock);
    if let Some(revision) = revision {
        input.insert("revision".into(), json!(revision));
    }
    rollout.write(&mut input);
    request("in-place-deploy", "in-place", environment, input)
}

/// A readable, valid execution name: `staging-serial-20261127T080102Z`.
/// Step Functions allows 80 characters of letters, digits, `-` and `_`.
pub fn execution_name(environment: &str, label: &str, now: DateTime<Utc>) -> String {
    let clean = |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect::<String>();
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let head: String = format!("{}-{}", clean(environment), clean(label)).chars().take(80 - stamp.len() - 1).collect();
    format!("{head}-{stamp}")
}

/// The state machine keys, as template.yaml writes them to SSM.
pub fn machines() -> impl Iterator<Item = &'static str> {
    stepdeploy_local::STATE_MACHINES.iter().map(|(name, _)| *name)
}

/// A stack output key (`InPlaceDeployStateMachineArn`) as a machine key (`in-place-deploy`).
pub fn machine_of_output(key: &str) -> Option<&'static str> {
    machines().find(|name| stepdeploy_local::state_machine_arn_key(name) == key)
}

/// The Step Functions console page of an execution.
pub fn console_url(execution_arn: &str) -> Option<String> {
    let region = execution_arn.split(':').nth(3).filter(|r| !r.is_empty())?;
    Some(format!("https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_are_readable_and_valid() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T08:01:02Z").unwrap().with_timezone(&Utc);
        assert_eq!(execution_name("staging", "serial", now), "staging-serial-20261127T080102Z");
        let long = execution_name(&"x".repeat(100), "maintenance-on", now);
        assert_eq!(long.len(), 80);
        assert!(long.ends_with("-20261127T080102Z"));
        assert_eq!(execution_name("prod/eu 1", "full", now), "prod-eu-1-full-20261127T080102Z");
    }

    #[test]
    fn deploy_inputs_carry_only_what_was_given() {
        let plain = deploy(false, "staging", &DeployOptions { version: Some("7".into()), ..Default::default() });
        assert_eq!(plain.machine, "serial-deploy");
        assert_eq!(plain.input, json!({"environment": "staging", "launch_template_version": "7"}));
        assert_eq!(plain.version_from_revision, None);

        let options = DeployOptions {
            revision: Some("4f2c9e1".into()),
            run_migrations: true,
            rollout: RolloutOverrides { min_healthy_percent: Some(50), batch_size: Some(2), ..Default::default() },
            break_stale_lock: true,
            ignore_alarms: true,
            lock_wait_seconds: Some(600),
            ..Default::default()
        };
        let full = deploy(true, "prod", &options);
        assert_eq!(full.machine, "full-deploy");
        assert_eq!(full.version_from_revision.as_deref(), Some("4f2c9e1"), "the version comes from the revision");
        assert_eq!(
            full.input,
            json!({"environment": "prod", "break_stale_lock": true, "launch_template_version": "$Default", "revision": "4f2c9e1",
                   "run_migrations": true, "ignore_alarms": true, "lock_wait_seconds": 600, "min_healthy_percent": 50, "batch_size": 2})
        );
    }

    #[test]
    fn the_other_workflows_take_the_readme_inputs() {
        assert_eq!(maintenance("s", true, false).input, json!({"environment": "s", "action": "on"}));
        assert_eq!(maintenance("s", false, false).label, "maintenance-off");
        assert_eq!(
            autoscaling("s", false, &["AZRebalance".into()], false).input,
            json!({"environment": "s", "action": "resume", "processes": ["AZRebalance"]})
        );
        assert_eq!(worker("s", Some("abc"), false, false).input, json!({"environment": "s", "revision": "abc", "run_migrations": false}));
        assert_eq!(bake("s", None, true).input, json!({"environment": "s"}));
        assert_eq!(bake("s", Some("abc"), false).input, json!({"environment": "s", "revision": "abc", "make_default": false}));
        assert_eq!(
            release("s", Some("abc"), "full", &DeployOptions::default()).input,
            json!({"environment": "s", "revision": "abc", "deploy": "full"})
        );
        assert_eq!(rebake("s", "serial", false).machine, "rebake");
        let rollout = RolloutOverrides { min_healthy_percent: Some(50), max_healthy_percent: None, batch_size: Some(2) };
        assert_eq!(in_place("s", None, &rollout, false).input, json!({"environment": "s", "min_healthy_percent": 50, "batch_size": 2}));
    }

    #[test]
    fn stack_outputs_map_to_machine_keys() {
        assert_eq!(machine_of_output("SerialDeployStateMachineArn"), Some("serial-deploy"));
        assert_eq!(machine_of_output("InPlaceDeployStateMachineArn"), Some("in-place-deploy"));
        assert_eq!(machine_of_output("AutoscalingProcessesStateMachineArn"), Some("autoscaling-processes"));
        assert_eq!(machine_of_output("PrepareFunctionArn"), None);
        assert_eq!(machine_of_output("NoSuchStateMachineArn"), None);
        for machine in machines() {
            assert!(
                std::fs::read_to_string(format!("{}/../../template.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap().contains(&format!("\"{machine}\": "))
            );
        }
    }

    #[test]
    fn console_links_use_the_execution_region() {
        assert_eq!(
            console_url("arn:aws:states:eu-west-1:1:execution:sm:n").as_deref(),
            Some(
                "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:aws:states:eu-west-1:1:execution:sm:n"
            )
        );
        assert_eq!(console_url("nonsense"), None);
    }
}
