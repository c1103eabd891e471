//! Deploy steps: each is one Lambda, one reconcile step over the ports.
//!
//! A step reads state through the ports, calls a pure planner, applies its
//! decision and returns the [`Deployment`] record that the state machine
//! carries to the next step. Every step is safe to run twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Config, Environment};
use crate::errors;
use crate::fleet::{apply, read_snapshot};
use crate::model::{LaunchTemplateRef, Target, Timestamp};
use crate::planner::{InstanceHealth, Outcome, Policy, Progress, RolloutSpec, RolloutState, Strategy, Timing, plan};
use crate::ports::{
    CommandRunner, CommandStatus, ErrorKind, FixedResponse, GroupReader, GroupWriter, Images, InstanceLauncher, InstanceReader, Invocation,
    LaunchTemplates, ListenerRule, ListenerRules, Parameters, PortError, ProcessControl, RuleAction, RuleSpec, TargetHealthReader,
    TargetRegistration,
};

/// Everything the deploy steps need from an account.
pub trait DeployAccount:
    GroupReader
    + GroupWriter
    + ProcessControl
    + InstanceReader
    + InstanceLauncher
    + Images
    + TargetHealthReader
    + LaunchTemplates
    + Parameters
    + ListenerRules
    + CommandRunner
    + TargetRegistration
{
}
impl<
    T: GroupReader
        + GroupWriter
        + ProcessControl
        + InstanceReader
        + InstanceLauncher
        + Images
        + TargetHealthReader
        + LaunchTemplates
        + Parameters
        + ListenerRules
        + CommandRunner
        + TargetRegistration,
> DeployAccount for T
{
}

/// A step's failure: the error name the state machine matches, and a readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct StepError {
    /// One of [`crate::errors`].
    pub name: &'static str,
    /// What happened, for operators.
    pub message: String,
}

impl StepError {
    /// A bad execution input ([`errors::INVALID_INPUT`]).
    pub(crate) fn input(message: String) -> StepError {
        StepError { name: errors::INVALID_INPUT, message }
    }
}

impl From<PortError> for StepError {
    fn from(e: PortError) -> StepError {
        let name = if e.is_retryable() { errors::AWS_TRANSIENT } else { errors::AWS_ERROR };
        StepError { name, message: e.to_string() }
    }
}

/// What the state machine should do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextStep {
    /// `wait`, `done` or `failed`.
    pub next: String,
    /// Seconds to wait before the next reconcile step.
    pub seconds: u64,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// Counts before this step's actions.
    pub progress: Progress,
    /// The live instances not (yet) counted healthy, with why (at most [`NOT_HEALTHY_SHOWN`]).
    #[serde(default)]
    pub not_healthy: Vec<InstanceHealth>,
}

/// How many not-healthy instances a step's record lists (the state payload is limited).
pub const NOT_HEALTHY_SHOWN: usize = 25;

/// What every workflow's record holds: the environment, the lock, the
/// processes suspended, the maintenance page and the commands run. The
/// stand-alone workflows (deploy-worker, maintenance, autoscaling-processes)
/// carry only this; a deploy carries it inside a [`Deployment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Environment name.
    pub environment: String,
    /// The execution holding the lock.
    pub execution_id: String,
    /// The Auto Scaling group.
    pub group: String,
    /// The lock parameter's name.
    pub lock_parameter: String,
    /// Processes this workflow suspended around its work (and only these get resumed).
    pub suspended_by_us: Vec<String>,
    /// Why the workflow failed, once it has.
    pub failure: Option<Failure>,
    /// The environment's settings, as they were when the workflow began.
    pub settings: Environment,
    /// Run the worker deploy and migrations (deploys and deploy-worker).
    #[serde(default)]
    pub run_migrations: bool,
    /// The git revision, for commands that take `{revision}`.
    #[serde(default)]
    pub revision: Option<String>,
    /// The maintenance page is up (this workflow put it there).
    #[serde(default)]
    pub maintenance_on: bool,
    /// Keep the maintenance page up at the end (asked for, or migrations failed per policy).
    #[serde(default)]
    pub hold_maintenance: bool,
    /// The SSM command in progress.
    #[serde(default)]
    pub command: Option<CommandRun>,
    /// The SSM commands that finished, with their output tails.
    #[serde(default)]
    pub commands_done: Vec<CommandOutcome>,
    /// A stand-alone workflow's action: `on`/`off` (maintenance), `suspend`/`resume` (processes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The processes an autoscaling-processes workflow acts on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
    /// The group's suspended processes after an autoscaling-processes workflow acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_processes: Option<Vec<String>>,
}

impl Job {
    /// A fresh record of `environment` held by `execution_id`: nothing suspended, no page, no command.
    pub fn new(environment: &str, execution_id: &str, lock_parameter: String, settings: &Environment) -> Job {
        Job {
            environment: environment.to_string(),
            execution_id: execution_id.to_string(),
            group: settings.auto_scaling_group.clone(),
            lock_parameter,
            suspended_by_us: Vec::new(),
            failure: None,
            settings: settings.clone(),
            run_migrations: false,
            revision: None,
            maintenance_on: false,
            hold_maintenance: false,
            command: None,
            commands_done: Vec::new(),
            action: None,
            processes: Vec::new(),
            suspended_processes: None,
        }
    }
}

/// The deploy record the state machine carries between steps: a [`Job`]
/// plus the rollout (its fields sit at the same JSON level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The environment, lock, processes, page and commands.
    #[serde(flatten)]
    pub job: Job,
    /// The launch template.
    pub template: LaunchTemplateRef,
    /// The rollout in progress (the rollback, once rolling back).
    pub rollout: RolloutState,
    /// Whether the rollout is now a rollback.
    pub rolling_back: bool,
    /// The last reconcile step's decision.
    pub step: Option<NextStep>,
}

/// An SSM command run by a deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRun {
    /// `migrate` or `worker_deploy`.
    pub name: String,
    /// SSM command id.
    pub command_id: String,
    /// Where it runs.
    pub instance_ids: Vec<String>,
    /// When it is given up on.
    pub deadline: Timestamp,
    /// `wait` or `done`.
    pub next: String,
    /// Seconds to wait before polling again.
    pub seconds: u64,
}

/// A finished SSM command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// `migrate` or `worker_deploy`.
    pub name: String,
    /// SSM command id.
    pub command_id: String,
    /// What each instance reported.
    pub results: Vec<CommandResult>,
}

/// One instance's result of a finished command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// Where it ran.
    pub instance_id: String,
    /// Its exit code.
    pub exit_code: Option<i32>,
    /// The end of its stdout.
    pub stdout_tail: String,
    /// The end of its stderr.
    pub stderr_tail: String,
}

/// A failure carried to the final Fail state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Error name.
    pub error: String,
    /// Cause.
    pub cause: String,
}

/// The lock parameter of an environment.
pub fn lock_parameter(deployment: &str, environment: &str) -> String {
    format!("/stepdeploy/{deployment}/{environment}/lock")
}

/// The field Step Functions adds to a nested execution's input to link it to its parent.
pub const STARTED_BY: &str = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID";

/// The first field of an execution input that isn't `allowed` (the parent
/// link a nested execution gets is always allowed).
pub fn unknown_field<'a>(object: &'a serde_json::Map<String, Value>, allowed: &[&str]) -> Option<&'a String> {
    object.keys().find(|k| k.as_str() != STARTED_BY && !allowed.contains(&k.as_str()))
}

/// Opens an execution input: a JSON object with only `allowed` fields and
/// an `environment` the config defines. Returns that environment's name and settings.
pub(crate) fn open_input<'c>(input: &Value, config: &'c Config, allowed: &[&str]) -> Result<(String, &'c Environment), StepError> {
    let Some(object) = input.as_object() else {
        return Err(StepError::input(format!("the execution input must be a JSON object, got {input}")));
    };
    if let Some(unknown) = unknown_field(object, allowed) {
        return Err(StepError::input(format!("{unknown}: unknown field; expected one of {}", allowed.join(", "))));
    }
    let environment = field_string(input, "environment")?.ok_or_else(|| StepError::input("environment: required, e.g. \"staging\"".into()))?;
    let env = config.environment(&environment).map_err(|e| StepError::input(e.to_string()))?;
    Ok((environment, env))
}

/// The input's `revision`, else the environment's `branch`; an error when neither is set.
pub(crate) fn revision_or_branch(input: &Value, environment: &str, env: &Environment) -> Result<String, StepError> {
    field_string(input, "revision")?
        .or_else(|| env.branch.clone())
        .ok_or_else(|| StepError::input(format!("revision: required (environments.{environment}.branch is not set), e.g. \"4f2c9e1\"")))
}

pub(crate) fn field_string(input: &Value, field: &str) -> Result<Option<String>, StepError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(other) => Err(StepError::input(format!("{field}: {other} is not allowed; expected a non-empty string"))),
    }
}

pub(crate) fn field_int(input: &Value, field: &str) -> Result<Option<i64>, StepError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| StepError::input(format!("{field}: {v} is not allowed; expected an integer"))),
    }
}

const DEPLOY_FIELDS: &[&str] = &[
    "environment",
    "launch_template_version",
    "min_healthy_percent",
    "max_healthy_percent",
    "batch_size",
    "strategy",
    "break_stale_lock",
    "run_migrations",
    "revision",
];

/// Validated deploy input.
struct DeployInput {
    environment: String,
    version: String,
    policy: Policy,
    strategy: Strategy,
    break_stale_lock: bool,
    run_migrations: bool,
    revision: Option<String>,
}

pub(crate) fn flag(input: &Value, field: &str) -> Result<bool, StepError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(StepError::input(format!("{field}: {other} is not allowed; expected true or false"))),
    }
}

/// Validates a deploy's execution input against the config.
pub(crate) fn validate_deploy_input(input: &Value, config: &Config) -> Result<(), StepError> {
    parse_input(input, config, Strategy::Rolling).map(|_| ())
}

fn parse_input(input: &Value, config: &Config, default_strategy: Strategy) -> Result<(DeployInput, Environment), StepError> {
    let (environment, env) = open_input(input, config, DEPLOY_FIELDS)?;
    let env = env.clone();
    let version =
        field_string(input, "launch_template_version")?.ok_or_else(|| StepError::input("launch_template_version: required, e.g. \"7\"".into()))?;
    if version.parse::<u64>().is_err() && version != "$Latest" && version != "$Default" {
        return Err(StepError::input(format!("launch_template_version: {version:?} is not allowed; expected a version number, $Latest or $Default")));
    }
    let policy = Policy::new(
        field_int(input, "min_healthy_percent")?.unwrap_or(env.rollout.min_healthy_percent),
        field_int(input, "max_healthy_percent")?.unwrap_or(env.rollout.max_healthy_percent),
        field_int(input, "batch_size")?.or(env.rollout.batch_size),
    )
    .map_err(|e| StepError::input(e.to_string()))?;
    let strategy = match field_string(input, "strategy")?.as_deref() {
        None => default_strategy,
        Some("rolling") => Strategy::Rolling,
        Some("all_at_once") => Strategy::AllAtOnce,
        Some(other) => return Err(StepError::input(format!("strategy: {other:?} is not allowed; expected \"rolling\" or \"all_at_once\""))),
    };
    let break_stale_lock = flag(input, "break_stale_lock")?;
    let run_migrations = flag(input, "run_migrations")?;
    let revision = field_string(input, "revision")?.or_else(|| env.branch.clone());
    Ok((DeployInput { environment, version, policy, strategy, break_stale_lock, run_migrations, revision }, env))
}

/// Takes the environment's lock for `execution_id`: atomic create; taking
/// it again from the same execution succeeds; a stale lock is broken only
/// when asked.
///
/// Returns the processes an earlier run of this same execution recorded as
/// suspended by it (a retried prepare must not forget them).
pub(crate) async fn take_lock(
    params: &dyn Parameters,
    name: &str,
    execution_id: &str,
    stale_after: u64,
    break_stale: bool,
    now: Timestamp,
) -> Result<Vec<String>, StepError> {
    let value = lock_value(execution_id, now, &[]);
    if params.create_parameter(name, &value).await? {
        return Ok(Vec::new());
    }
    let Some(held) = params.get_parameter(name).await? else {
        // Released between the two calls: try once more.
        return if params.create_parameter(name, &value).await? { Ok(Vec::new()) } else { Err(locked(name, "another execution", 0)) };
    };
    let holder = LockRecord::parse(&held.value);
    let holder_id = holder.execution.unwrap_or_else(|| "an unknown execution".to_string());
    if holder_id == execution_id {
        return Ok(holder.suspended);
    }
    let age = now - holder.since.unwrap_or(now);
    if break_stale && lock_is_stale(age, stale_after) {
        params.put_parameter(name, &value).await?;
        return Ok(Vec::new());
    }
    Err(locked(name, &holder_id, age))
}

/// The lock parameter's value: who holds it, since when, and what it suspended.
pub(crate) fn lock_value(execution_id: &str, since: Timestamp, suspended: &[String]) -> String {
    serde_json::json!({"execution": execution_id, "since": since, "suspended": suspended}).to_string()
}

/// The lock parameter's content, as [`lock_value`] writes it; a field that
/// is missing or of the wrong type reads as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockRecord {
    /// The execution holding it.
    pub execution: Option<String>,
    /// Since when.
    pub since: Option<Timestamp>,
    /// The processes the holder suspended.
    pub suspended: Vec<String>,
}

impl LockRecord {
    /// Reads a lock parameter's value.
    pub fn parse(value: &str) -> LockRecord {
        let holder: Value = serde_json::from_str(value).unwrap_or(Value::Null);
        LockRecord {
            execution: holder["execution"].as_str().map(str::to_string),
            since: holder["since"].as_i64(),
            suspended: holder["suspended"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(str::to_string)).collect(),
        }
    }
}

/// Whether a lock this old may be taken over with `break_stale_lock`.
pub fn lock_is_stale(age_seconds: i64, stale_after_seconds: u64) -> bool {
    age_seconds >= stale_after_seconds as i64
}

fn locked(name: &str, holder: &str, age: i64) -> StepError {
    StepError {
        name: errors::ENVIRONMENT_LOCKED,
        message: format!(
            "the environment is locked by {holder} (for {age} s, parameter {name}); wait for it to finish, or if it is stale start again with \"break_stale_lock\": true"
        ),
    }
}

/// **prepare**: validate the input, take the lock, snapshot the group, suspend processes.
pub async fn prepare(
    account: &dyn DeployAccount,
    config: &Config,
    input: &Value,
    execution_id: &str,
    default_strategy: Strategy,
    now: Timestamp,
) -> Result<Deployment, StepError> {
    let (input, env) = parse_input(input, config, default_strategy)?;
    let template_name = env.launch_template.clone().ok_or_else(|| StepError {
        name: errors::CONFIG_INVALID,
        message: format!("environments.{}.launch_template: required", input.environment),
    })?;
    let template = LaunchTemplateRef::from_config(&template_name);
    // Resolve the target version before taking anything: a bad version leaves nothing behind.
    let target = account.describe_versions(&template, std::slice::from_ref(&input.version)).await.map_err(|e| match e.kind {
        ErrorKind::NotFound | ErrorKind::Invalid => {
            StepError::input(format!("launch_template_version: {:?} is not a version of {template_name}: {}", input.version, e.message))
        }
        _ => e.into(),
    })?;
    let target = target.first().ok_or_else(|| StepError::input(format!("launch_template_version: {:?} was not found", input.version)))?;
    let image_id = target.image_id.clone().ok_or_else(|| StepError::input(format!("launch template version {} has no AMI", target.version)))?;

    let lock = lock_parameter(&config.deployment, &input.environment);
    let recorded = take_lock(account, &lock, execution_id, env.lock.stale_after_seconds, input.break_stale_lock, now).await?;
    let result = async {
        let snapshot = read_snapshot(account, account, account, &env.auto_scaling_group, &env.target_group_arns, now).await?;
        let previous = match snapshot.launch_template.as_ref().and_then(|lt| lt.version.clone()) {
            Some(version) => account
                .describe_versions(&template, &[version])
                .await?
                .first()
                .and_then(|v| v.image_id.clone().map(|image_id| Target { launch_template_version: v.version.to_string(), image_id })),
            None => None,
        };
        let to_suspend: Vec<String> = env.rollout.suspend_processes.iter().filter(|p| !snapshot.suspended_processes.contains(p)).cloned().collect();
        let mut suspended_by_us = recorded.clone();
        suspended_by_us.extend(to_suspend.iter().filter(|p| !recorded.contains(p)).cloned());
        // Recorded before suspending, so a crash in between can't leave them suspended for good.
        if suspended_by_us != recorded {
            account.put_parameter(&lock, &lock_value(execution_id, now, &suspended_by_us)).await?;
        }
        account.suspend_processes(&env.auto_scaling_group, &to_suspend).await?;
        let spec = RolloutSpec {
            target: Target { launch_template_version: target.version.to_string(), image_id },
            previous,
            strategy: input.strategy,
            policy: input.policy,
            target_group_arns: env.target_group_arns.clone(),
            timing: Timing {
                rollout_timeout_seconds: env.rollout.timeout_seconds,
                instance_timeout_seconds: env.health.timeout_seconds,
                warmup_seconds: env.health.warmup_seconds,
                poll_seconds: env.health.poll_interval_seconds,
            },
        };
        Ok::<_, StepError>(Deployment {
            job: Job {
                suspended_by_us,
                run_migrations: input.run_migrations,
                revision: input.revision.clone(),
                ..Job::new(&input.environment, execution_id, lock.clone(), &env)
            },
            template: template.clone(),
            rollout: RolloutState::begin(&snapshot, spec, now),
            rolling_back: false,
            step: None,
        })
    }
    .await;
    if result.is_err() {
        // Nothing half-done: give the lock back if this step failed after taking it.
        let _ = account.delete_parameter(&lock).await;
    }
    result
}

/// The stand-alone workflows, which hold the lock but roll nothing out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// `deploy-worker`: the worker deploy, then migrations (Fabulaws `deploy_worker`).
    Worker,
    /// `maintenance`: the page on or off (Fabulaws `begin_upgrade`/`end_upgrade`).
    Maintenance,
    /// `autoscaling-processes`: suspend or resume processes.
    AutoscalingProcesses,
}

impl JobKind {
    /// The execution input fields the workflow accepts.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            JobKind::Worker => &["environment", "revision", "run_migrations", "break_stale_lock"],
            JobKind::Maintenance => &["environment", "action", "break_stale_lock"],
            JobKind::AutoscalingProcesses => &["environment", "action", "processes", "break_stale_lock"],
        }
    }
}

pub(crate) fn one_of(input: &Value, field: &str, allowed: &[&str]) -> Result<String, StepError> {
    let expected = allowed.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(" or ");
    match input.get(field) {
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        None | Some(Value::Null) => Err(StepError::input(format!("{field}: required; expected {expected}"))),
        Some(other) => Err(StepError::input(format!("{field}: {other} is not allowed; expected {expected}"))),
    }
}

fn process_list(input: &Value, default: &[String]) -> Result<Vec<String>, StepError> {
    let expected = format!("expected a list of Auto Scaling processes ({})", crate::config::SCALING_PROCESSES.join(", "));
    let processes = match input.get("processes") {
        None | Some(Value::Null) => default.to_vec(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.as_str() {
                Some(p) if crate::config::SCALING_PROCESSES.contains(&p) => Ok(p.to_string()),
                _ => Err(StepError::input(format!("processes[{i}]: {item} is not allowed; {expected}"))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(StepError::input(format!("processes: {other} is not allowed; {expected}"))),
    };
    if processes.is_empty() {
        return Err(StepError::input(format!("processes: empty (and rollout.suspend_processes is empty too); {expected}")));
    }
    Ok(processes)
}

/// **prepare** of a stand-alone workflow: validate the input, check the
/// environment has what the workflow needs, take the lock. Nothing else changes.
pub async fn prepare_job(
    account: &dyn DeployAccount,
    config: &Config,
    input: &Value,
    execution_id: &str,
    kind: JobKind,
    now: Timestamp,
) -> Result<Job, StepError> {
    let (environment, env) = open_input(input, config, kind.fields())?;
    let env = env.clone();
    let mut job = Job::new(&environment, execution_id, lock_parameter(&config.deployment, &environment), &env);
    match kind {
        JobKind::Worker => {
            job.run_migrations = match input.get("run_migrations") {
                None | Some(Value::Null) => true,
                Some(_) => flag(input, "run_migrations")?,
            };
            job.revision = field_string(input, "revision")?.or_else(|| env.branch.clone());
        }
        JobKind::Maintenance => {
            let action = one_of(input, "action", &["on", "off"])?;
            maintenance_rules(&env)?;
            // The page the operator asked for stays when the lock is released.
            job.hold_maintenance = action == "on";
            job.action = Some(action);
        }
        JobKind::AutoscalingProcesses => {
            job.action = Some(one_of(input, "action", &["suspend", "resume"])?);
            job.processes = process_list(input, &env.rollout.suspend_processes)?;
            account.describe_group(&env.auto_scaling_group).await.map_err(|e| match e.kind {
                ErrorKind::NotFound => StepError {
                    name: errors::CONFIG_INVALID,
                    message: format!("environments.{environment}.auto_scaling_group: {:?} was not found: {}", env.auto_scaling_group, e.message),
                },
                _ => e.into(),
            })?;
        }
    }
    take_lock(account, &job.lock_parameter, execution_id, env.lock.stale_after_seconds, flag(input, "break_stale_lock")?, now).await?;
    Ok(job)
}

/// **processes**: suspend or resume the job's processes (both idempotent on
/// AWS), then record what the group has suspended now.
pub async fn processes(account: &dyn DeployAccount, mut job: Job) -> Result<Job, StepError> {
    match job.action.as_deref() {
        Some("suspend") => account.suspend_processes(&job.group, &job.processes).await?,
        Some("resume") => account.resume_processes(&job.group, &job.processes).await?,
        other => return Err(StepError::input(format!("action: {other:?} is not allowed; expected \"suspend\" or \"resume\""))),
    }
    let group = account.describe_group(&job.group).await?;
    job.suspended_processes = Some(group.suspended_processes);
    Ok(job)
}

/// **replace**: one reconcile step of the rollout (or rollback).
pub async fn replace(account: &dyn DeployAccount, mut deployment: Deployment, now: Timestamp) -> Result<Deployment, StepError> {
    if deployment.step.is_none() && !deployment.rolling_back {
        // The rollout's clock starts with its first step, not at prepare: migrations may have run in between.
        let timeout = deployment.rollout.deadline - deployment.rollout.started_at;
        deployment.rollout.started_at = now;
        deployment.rollout.deadline = now.saturating_add(timeout);
    }
    let snapshot = read_snapshot(account, account, account, &deployment.job.group, &deployment.rollout.target_group_arns, now).await?;
    let decision = plan(&snapshot, &deployment.rollout, now);
    apply(&decision.actions, &deployment.job.group, &deployment.template, account).await?;
    deployment.rollout.healthy_since = decision.healthy_since;
    let (next, seconds, reason) = match decision.outcome {
        Outcome::Wait { seconds } => ("wait", seconds, None),
        Outcome::Done => ("done", 0, None),
        Outcome::Failed(failure) => ("failed", 0, Some(failure.describe())),
    };
    let not_healthy = decision.health.into_iter().filter(|h| !h.healthy).take(NOT_HEALTHY_SHOWN).collect();
    deployment.step = Some(NextStep { next: next.into(), seconds, reason, progress: decision.progress, not_healthy });
    Ok(deployment)
}

/// **rollback**: turn the rollout into a rollback to the original version.
/// `error` is the state machine's caught error (`{"Error", "Cause"}`), if any.
pub async fn rollback(mut deployment: Deployment, error: Option<&Value>, now: Timestamp) -> Result<Deployment, StepError> {
    if deployment.rolling_back {
        return Ok(deployment); // already turned: a retry changes nothing
    }
    let failure = match (error, &deployment.step) {
        (Some(e), _) => Failure {
            error: e["Error"].as_str().unwrap_or(errors::ROLLOUT_FAILED).to_string(),
            cause: e["Cause"].as_str().unwrap_or_default().to_string(),
        },
        (None, Some(step)) => Failure { error: errors::ROLLOUT_FAILED.into(), cause: step.reason.clone().unwrap_or_default() },
        (None, None) => Failure { error: errors::ROLLOUT_FAILED.into(), cause: "the rollout failed".into() },
    };
    let timeout = deployment.rollout.deadline - deployment.rollout.started_at;
    let Some(back) = deployment.rollout.rollback(now, timeout.max(0) as u64) else {
        return Err(StepError {
            name: errors::ROLLBACK_FAILED,
            message: format!("{}: {} (and the original version is unknown, so nothing was rolled back)", failure.error, failure.cause),
        });
    };
    deployment.rollout = back;
    deployment.rolling_back = true;
    deployment.job.failure = Some(failure);
    deployment.step = None;
    Ok(deployment)
}

/// **finish**: lift the maintenance page (unless held), resume only the
/// processes this workflow suspended, release the lock.
pub async fn finish(account: &dyn DeployAccount, mut job: Job) -> Result<Job, StepError> {
    if job.maintenance_on && !job.hold_maintenance {
        job = maintenance(account, job, MaintenanceMode::Off).await?;
    }
    if !job.suspended_by_us.is_empty() {
        account.resume_processes(&job.group, &job.suspended_by_us).await?;
    }
    if let Some(held) = account.get_parameter(&job.lock_parameter).await? {
        // Never release someone else's lock (a stale one broken by another execution).
        if LockRecord::parse(&held.value).execution.as_deref() == Some(job.execution_id.as_str()) {
            account.delete_parameter(&job.lock_parameter).await?;
        }
    }
    Ok(job)
}

/// A summary of a group's instances per AMI, for progress and results.
pub fn fleet_by_image(images: &[(String, String)]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, image) in images {
        *out.entry(image.clone()).or_insert(0) += 1;
    }
    out
}

/// What the maintenance step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceMode {
    /// Put the page up.
    On,
    /// Take it down.
    Off,
    /// Migrations failed: hold the page if the policy says so, else take it down.
    AfterMigrationFailure,
}

/// The maintenance rules of an environment: (priority, rule) in creation order.
pub fn maintenance_rules(env: &Environment) -> Result<(String, Vec<(u32, RuleSpec)>), StepError> {
    let listener = env
        .listener_arn
        .clone()
        .ok_or_else(|| StepError { name: errors::CONFIG_INVALID, message: "listener_arn: required for the maintenance page".into() })?;
    let priority = u32::try_from(env.maintenance.rule_priority).unwrap_or(1);
    let page = RuleSpec {
        path_patterns: vec!["/*".into()],
        source_ips: Vec::new(),
        action: RuleAction::FixedResponse(FixedResponse { status_code: 503, content_type: "text/html".into(), body: env.maintenance.html.clone() }),
    };
    if env.maintenance.allowed_cidrs.is_empty() {
        return Ok((listener, vec![(priority, page)]));
    }
    // ALB conditions can't be negated: a forward rule for the allowed sources sits just above the page.
    let bypass = RuleSpec {
        path_patterns: vec!["/*".into()],
        source_ips: env.maintenance.allowed_cidrs.clone(),
        action: RuleAction::Forward(env.target_group_arns.clone()),
    };
    Ok((listener, vec![(priority, bypass), (priority + 1, page)]))
}

fn looks_like_ours(rule: &ListenerRule) -> bool {
    match &rule.spec.action {
        RuleAction::FixedResponse(f) => f.status_code == 503 && rule.spec.source_ips.is_empty(),
        RuleAction::Forward(_) => !rule.spec.source_ips.is_empty(),
        RuleAction::Other(_) => false,
    }
}

/// **maintenance**: the ALB fixed-response page, on or off. Idempotent; it
/// never touches a rule that isn't a maintenance rule.
pub async fn maintenance(account: &dyn DeployAccount, mut job: Job, mode: MaintenanceMode) -> Result<Job, StepError> {
    let mode = match mode {
        MaintenanceMode::AfterMigrationFailure if job.settings.maintenance.hold_on_migration_failure => {
            job.hold_maintenance = true;
            return Ok(job);
        }
        MaintenanceMode::AfterMigrationFailure => MaintenanceMode::Off,
        other => other,
    };
    let (listener, wanted) = maintenance_rules(&job.settings)?;
    let existing = account.describe_rules(&listener).await?;
    if mode == MaintenanceMode::On {
        for (priority, spec) in &wanted {
            match existing.iter().find(|r| r.priority == Some(*priority)) {
                Some(rule) if &rule.spec == spec => {}
                Some(rule) if looks_like_ours(rule) => {
                    account.delete_rule(&rule.arn).await?;
                    account.create_rule(&listener, *priority, spec).await?;
                }
                Some(rule) => {
                    return Err(StepError {
                        name: errors::CONFIG_INVALID,
                        message: format!(
                            "maintenance.rule_priority: priority {priority} is taken by {}, which is not a maintenance rule; choose a free priority",
                            rule.arn
                        ),
                    });
                }
                None => {
                    account.create_rule(&listener, *priority, spec).await?;
                }
            }
        }
        job.maintenance_on = true;
    } else {
        for (priority, _) in wanted.iter().rev() {
            if let Some(rule) = existing.iter().find(|r| r.priority == Some(*priority) && looks_like_ours(r)) {
                account.delete_rule(&rule.arn).await?;
            }
        }
        job.maintenance_on = false;
    }
    Ok(job)
}

/// How much of a command's output a failure carries.
pub const OUTPUT_TAIL: usize = 2000;

/// The last `keep` bytes of `text` (at a character boundary).
pub fn tail(text: &str, keep: usize) -> &str {
    let start = text.len().saturating_sub(keep);
    let start = (start..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
    &text[start..]
}

/// **command start**: `migrate` on one worker, `worker_deploy` on every worker.
pub async fn command_start(account: &dyn DeployAccount, mut job: Job, name: &str, now: Timestamp) -> Result<Job, StepError> {
    if let Some(run) = &job.command
        && run.name == name
    {
        return Ok(job); // already started: a retried start must not run it twice
    }
    let env = &job.settings;
    let spec = match name {
        "migrate" => &env.commands.migrate,
        "worker_deploy" => &env.commands.worker_deploy,
        other => return Err(StepError::input(format!("command: {other:?} is not allowed; expected migrate or worker_deploy"))),
    };
    let tags: BTreeMap<String, String> = env.workers.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut workers: Vec<String> = account.find_instances(&tags).await?.into_iter().filter(|i| i.state == "running").map(|i| i.id).collect();
    workers.sort();
    if workers.is_empty() {
        return Err(StepError {
            name: errors::COMMAND_FAILED,
            message: format!("{name}: no running instance carries the worker tags {tags:?} (workers.tags)"),
        });
    }
    if name == "migrate" {
        workers.truncate(1);
    }
    let command = spec.command.replace("{revision}", job.revision.as_deref().unwrap_or(""));
    let comment = format!("stepdeploy {name} {}", job.environment);
    let command_id = account.send_command(&workers, &command, spec.timeout_seconds, &comment).await?;
    job.command = Some(CommandRun {
        name: name.to_string(),
        command_id,
        instance_ids: workers,
        deadline: now + spec.timeout_seconds as i64 + 60,
        next: "wait".into(),
        seconds: env.health.poll_interval_seconds,
    });
    Ok(job)
}

/// The failure of a command on one instance, with its output tail.
pub(crate) fn command_failure(name: &str, failed: &Invocation) -> StepError {
    StepError {
        name: errors::COMMAND_FAILED,
        message: format!(
            "{name} failed on {} ({}, exit code {}). stdout tail: {} | stderr tail: {}",
            failed.instance_id,
            failed.status_detail,
            failed.exit_code.map_or("unknown".into(), |c| c.to_string()),
            tail(&failed.stdout, OUTPUT_TAIL),
            tail(&failed.stderr, OUTPUT_TAIL)
        ),
    }
}

/// Records a finished command's results in the job (once per command id).
pub(crate) fn record_outcome(job: &mut Job, run: &CommandRun, invocations: &[Invocation]) {
    if job.commands_done.iter().any(|c| c.command_id == run.command_id) {
        return;
    }
    let results = invocations.iter().map(result_of).collect();
    job.commands_done.push(CommandOutcome { name: run.name.clone(), command_id: run.command_id.clone(), results });
}

/// One instance's result, with the tails a successful command keeps.
pub(crate) fn result_of(invocation: &Invocation) -> CommandResult {
    CommandResult {
        instance_id: invocation.instance_id.clone(),
        exit_code: invocation.exit_code,
        stdout_tail: tail(&invocation.stdout, SUCCESS_TAIL).to_string(),
        stderr_tail: tail(&invocation.stderr, SUCCESS_TAIL).to_string(),
    }
}

/// How much of a successful command's output its record keeps (the state
/// machine's payload is limited to 256 KiB).
pub const SUCCESS_TAIL: usize = 500;

/// **command poll**: done, wait, or a failure that carries the output tail.
pub async fn command_poll(account: &dyn DeployAccount, mut job: Job, now: Timestamp) -> Result<Job, StepError> {
    let Some(run) = job.command.clone() else {
        return Err(StepError::input("deployment.command: no command was started".into()));
    };
    let invocations = account.invocations(&run.command_id, &run.instance_ids).await?;
    if let Some(failed) = invocations.iter().find(|i| i.status == CommandStatus::Failed) {
        return Err(command_failure(&run.name, failed));
    }
    let done = invocations.iter().all(|i| i.status == CommandStatus::Succeeded);
    if !done && now > run.deadline {
        return Err(StepError {
            name: errors::COMMAND_FAILED,
            message: format!("{} did not finish before its timeout on {}", run.name, run.instance_ids.join(", ")),
        });
    }
    if done {
        record_outcome(&mut job, &run, &invocations);
    }
    if let Some(run) = job.command.as_mut() {
        run.next = if done { "done".into() } else { "wait".into() };
    }
    Ok(job)
}

/// Where a step finds the environment's config.
#[derive(Clone, Copy)]
pub enum ConfigSource<'a> {
    /// A config at hand (local runs, tests).
    Given(&'a Config),
    /// The SSM parameter `/stepdeploy/<deployment>/<environment>` (Lambda).
    Parameters {
        /// The deployment's name.
        deployment: &'a str,
    },
}

/// The step Lambdas' names, as in `${Name}FunctionArn`.
pub const STEP_NAMES: &[&str] =
    &["prepare", "replace", "rollback", "finish", "maintenance", "command", "processes", "bake", "publish", "prune", "inplace"];

fn deployment_of(payload: &Value) -> Result<Deployment, StepError> {
    serde_json::from_value(payload["deployment"].clone()).map_err(|e| StepError::input(format!("deployment: not a deployment record: {e}")))
}

/// Runs `step` on the job part of the payload's record (a deployment's or a
/// stand-alone workflow's) and returns the whole record with that part updated.
async fn on_job<F>(payload: &Value, step: impl FnOnce(Job) -> F) -> Result<Value, StepError>
where
    F: std::future::Future<Output = Result<Job, StepError>>,
{
    let Some(mut record) = payload["deployment"].as_object().cloned() else {
        return Err(StepError::input(format!("deployment: {} is not a workflow record; expected an object", payload["deployment"])));
    };
    let job: Job =
        serde_json::from_value(Value::Object(record.clone())).map_err(|e| StepError::input(format!("deployment: not a workflow record: {e}")))?;
    let job = step(job).await?;
    if let Value::Object(updated) = render(&job)? {
        record.extend(updated);
    }
    Ok(Value::Object(record))
}

fn render<T: Serialize>(record: &T) -> Result<Value, StepError> {
    serde_json::to_value(record).map_err(|e| StepError { name: errors::AWS_ERROR, message: format!("cannot render the workflow record: {e}") })
}

/// The config a first step works with: the one given, or the input's
/// environment loaded from its SSM parameter.
async fn config_for<'a>(account: &dyn DeployAccount, source: ConfigSource<'a>, input: &Value) -> Result<std::borrow::Cow<'a, Config>, StepError> {
    match source {
        ConfigSource::Given(config) => Ok(std::borrow::Cow::Borrowed(config)),
        ConfigSource::Parameters { deployment } => {
            let environment = input.get("environment").and_then(Value::as_str).unwrap_or_default();
            if environment.is_empty() {
                return Err(StepError::input("environment: required, e.g. \"staging\"".into()));
            }
            Ok(std::borrow::Cow::Owned(crate::config::load_environment(account, deployment, environment).await?))
        }
    }
}

/// Runs the step `name` on its payload (what the state machine's Parameters
/// give it) and returns the workflow record as JSON. One entry point for
/// the Lambdas and for local runs.
pub async fn handle(name: &str, account: &dyn DeployAccount, config: ConfigSource<'_>, payload: &Value, now: Timestamp) -> Result<Value, StepError> {
    match name {
        "bake" if payload["action"] == "begin" => {
            let config = config_for(account, config, &payload["input"]).await?;
            crate::bake::handle(name, account, Some(&config), payload, now).await
        }
        "prune" if payload.get("bake").is_none_or(Value::is_null) => {
            let config = config_for(account, config, payload).await?;
            let environment = payload["environment"].as_str().unwrap_or_default();
            let pruned = crate::bake::prune_environment(account, &config, environment).await?;
            Ok(serde_json::json!({"environment": environment, "pruned": pruned}))
        }
        "bake" | "publish" | "prune" => crate::bake::handle(name, account, None, payload, now).await,
        "prepare" => {
            let execution = payload["execution_id"].as_str().unwrap_or("unknown-execution").to_string();
            let input = &payload["input"];
            let config = config_for(account, config, input).await?;
            let config = config.as_ref();
            match payload.get("job").filter(|j| !j.is_null()) {
                Some(Value::String(kind)) if kind == "in_place" => render(&crate::inplace::begin(account, config, input, &execution, now).await?),
                Some(Value::String(kind)) if kind == "release" || kind == "rebake" => {
                    let kind = if kind == "release" { crate::release::PlanKind::Release } else { crate::release::PlanKind::Rebake };
                    crate::release::plan(account, config, input, &execution, kind).await
                }
                Some(kind) => {
                    let kind: JobKind = serde_json::from_value(kind.clone()).map_err(|_| {
                        StepError::input(format!(
                            "job: {kind} is not allowed; expected \"worker\", \"maintenance\", \"autoscaling_processes\", \"in_place\", \"release\" or \"rebake\""
                        ))
                    })?;
                    render(&prepare_job(account, config, input, &execution, kind, now).await?)
                }
                None => {
                    let strategy = match payload["default_strategy"].as_str() {
                        Some("all_at_once") => Strategy::AllAtOnce,
                        _ => Strategy::Rolling,
                    };
                    render(&prepare(account, config, input, &execution, strategy, now).await?)
                }
            }
        }
        "replace" => render(&replace(account, deployment_of(payload)?, now).await?),
        "rollback" => {
            let error = payload.get("error").filter(|e| !e.is_null());
            render(&rollback(deployment_of(payload)?, error, now).await?)
        }
        "finish" => on_job(payload, |job| finish(account, job)).await,
        "maintenance" => {
            let mode: MaintenanceMode = serde_json::from_value(payload["mode"].clone()).map_err(|_| {
                StepError::input(format!("mode: {} is not allowed; expected \"on\", \"off\" or \"after_migration_failure\"", payload["mode"]))
            })?;
            on_job(payload, |job| maintenance(account, job, mode)).await
        }
        "command" => match payload["action"].as_str() {
            Some("start") => on_job(payload, |job| command_start(account, job, payload["command"].as_str().unwrap_or_default(), now)).await,
            Some("poll") => on_job(payload, |job| command_poll(account, job, now)).await,
            other => Err(StepError::input(format!("action: {other:?} is not allowed; expected \"start\" or \"poll\""))),
        },
        "processes" => on_job(payload, |job| processes(account, job)).await,
        "inplace" => crate::inplace::handle(account, payload, now).await,
        other => Err(StepError::input(format!("step: {other:?} is not a step; expected one of {}", STEP_NAMES.join(", ")))),
    }
}
