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
use crate::planner::{Outcome, Policy, Progress, RolloutSpec, RolloutState, Strategy, Timing, plan};
use crate::ports::{
    CommandRunner, CommandStatus, ErrorKind, FixedResponse, GroupReader, GroupWriter, InstanceReader, LaunchTemplates, ListenerRule, ListenerRules,
    Parameters, PortError, ProcessControl, RuleAction, RuleSpec, TargetHealthReader,
};

/// Everything the deploy steps need from an account.
pub trait DeployAccount:
    GroupReader + GroupWriter + ProcessControl + InstanceReader + TargetHealthReader + LaunchTemplates + Parameters + ListenerRules + CommandRunner
{
}
impl<
    T: GroupReader + GroupWriter + ProcessControl + InstanceReader + TargetHealthReader + LaunchTemplates + Parameters + ListenerRules + CommandRunner,
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
    fn input(message: String) -> StepError {
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
}

/// The deploy record the state machine carries between steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Environment name.
    pub environment: String,
    /// The execution holding the lock.
    pub execution_id: String,
    /// The Auto Scaling group.
    pub group: String,
    /// The launch template.
    pub template: LaunchTemplateRef,
    /// The lock parameter's name.
    pub lock_parameter: String,
    /// Processes this deploy suspended (and only these get resumed).
    pub suspended_by_us: Vec<String>,
    /// The rollout in progress (the rollback, once rolling back).
    pub rollout: RolloutState,
    /// Whether the rollout is now a rollback.
    pub rolling_back: bool,
    /// The last reconcile step's decision.
    pub step: Option<NextStep>,
    /// Why the deploy failed, once it has.
    pub failure: Option<Failure>,
    /// The environment's settings, as they were when the deploy began.
    pub settings: Environment,
    /// Run migrations before replacing instances (full deploy).
    #[serde(default)]
    pub run_migrations: bool,
    /// The git revision, for commands that take `{revision}`.
    #[serde(default)]
    pub revision: Option<String>,
    /// The maintenance page is up (this deploy put it there).
    #[serde(default)]
    pub maintenance_on: bool,
    /// Keep the maintenance page up at the end (migrations failed, per policy).
    #[serde(default)]
    pub hold_maintenance: bool,
    /// The SSM command in progress.
    #[serde(default)]
    pub command: Option<CommandRun>,
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

fn field_string(input: &Value, field: &str) -> Result<Option<String>, StepError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(other) => Err(StepError::input(format!("{field}: {other} is not allowed; expected a non-empty string"))),
    }
}

fn field_int(input: &Value, field: &str) -> Result<Option<i64>, StepError> {
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

fn flag(input: &Value, field: &str) -> Result<bool, StepError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(StepError::input(format!("{field}: {other} is not allowed; expected true or false"))),
    }
}

fn parse_input(input: &Value, config: &Config, default_strategy: Strategy) -> Result<(DeployInput, Environment), StepError> {
    let Some(object) = input.as_object() else {
        return Err(StepError::input(format!("the execution input must be a JSON object, got {input}")));
    };
    if let Some(unknown) = object.keys().find(|k| !DEPLOY_FIELDS.contains(&k.as_str())) {
        return Err(StepError::input(format!("{unknown}: unknown field; expected one of {}", DEPLOY_FIELDS.join(", "))));
    }
    let environment = field_string(input, "environment")?.ok_or_else(|| StepError::input("environment: required, e.g. \"staging\"".into()))?;
    let env = config.environment(&environment).map_err(|e| StepError::input(e.to_string()))?.clone();
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
async fn take_lock(
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
    let holder: Value = serde_json::from_str(&held.value).unwrap_or(Value::Null);
    let holder_id = holder["execution"].as_str().unwrap_or("an unknown execution").to_string();
    if holder_id == execution_id {
        let recorded = holder["suspended"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(str::to_string)).collect();
        return Ok(recorded);
    }
    let age = now - holder["since"].as_i64().unwrap_or(now);
    if break_stale && age >= stale_after as i64 {
        params.put_parameter(name, &value).await?;
        return Ok(Vec::new());
    }
    Err(locked(name, &holder_id, age))
}

/// The lock parameter's value: who holds it, since when, and what it suspended.
fn lock_value(execution_id: &str, since: Timestamp, suspended: &[String]) -> String {
    serde_json::json!({"execution": execution_id, "since": since, "suspended": suspended}).to_string()
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
            environment: input.environment.clone(),
            execution_id: execution_id.to_string(),
            group: env.auto_scaling_group.clone(),
            template: template.clone(),
            lock_parameter: lock.clone(),
            suspended_by_us,
            rollout: RolloutState::begin(&snapshot, spec, now),
            rolling_back: false,
            step: None,
            failure: None,
            settings: env.clone(),
            run_migrations: input.run_migrations,
            revision: input.revision.clone(),
            maintenance_on: false,
            hold_maintenance: false,
            command: None,
        })
    }
    .await;
    if result.is_err() {
        // Nothing half-done: give the lock back if this step failed after taking it.
        let _ = account.delete_parameter(&lock).await;
    }
    result
}

/// **replace**: one reconcile step of the rollout (or rollback).
pub async fn replace(account: &dyn DeployAccount, mut deployment: Deployment, now: Timestamp) -> Result<Deployment, StepError> {
    let snapshot = read_snapshot(account, account, account, &deployment.group, &deployment.rollout.target_group_arns, now).await?;
    let decision = plan(&snapshot, &deployment.rollout, now);
    apply(&decision.actions, &deployment.group, &deployment.template, account).await?;
    deployment.rollout.healthy_since = decision.healthy_since;
    let (next, seconds, reason) = match decision.outcome {
        Outcome::Wait { seconds } => ("wait", seconds, None),
        Outcome::Done => ("done", 0, None),
        Outcome::Failed(failure) => ("failed", 0, Some(failure.describe())),
    };
    deployment.step = Some(NextStep { next: next.into(), seconds, reason, progress: decision.progress });
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
    deployment.failure = Some(failure);
    deployment.step = None;
    Ok(deployment)
}

/// **finish**: lift the maintenance page (unless held), resume only the
/// processes this deploy suspended, release the lock.
pub async fn finish(account: &dyn DeployAccount, mut deployment: Deployment) -> Result<Deployment, StepError> {
    if deployment.maintenance_on && !deployment.hold_maintenance {
        deployment = maintenance(account, deployment, MaintenanceMode::Off).await?;
    }
    account.resume_processes(&deployment.group, &deployment.suspended_by_us).await?;
    if let Some(held) = account.get_parameter(&deployment.lock_parameter).await? {
        let holder: Value = serde_json::from_str(&held.value).unwrap_or(Value::Null);
        // Never release someone else's lock (a stale one broken by another execution).
        if holder["execution"].as_str() == Some(deployment.execution_id.as_str()) {
            account.delete_parameter(&deployment.lock_parameter).await?;
        }
    }
    Ok(deployment)
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
pub async fn maintenance(account: &dyn DeployAccount, mut deployment: Deployment, mode: MaintenanceMode) -> Result<Deployment, StepError> {
    let mode = match mode {
        MaintenanceMode::AfterMigrationFailure if deployment.settings.maintenance.hold_on_migration_failure => {
            deployment.hold_maintenance = true;
            return Ok(deployment);
        }
        MaintenanceMode::AfterMigrationFailure => MaintenanceMode::Off,
        other => other,
    };
    let (listener, wanted) = maintenance_rules(&deployment.settings)?;
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
        deployment.maintenance_on = true;
    } else {
        for (priority, _) in wanted.iter().rev() {
            if let Some(rule) = existing.iter().find(|r| r.priority == Some(*priority) && looks_like_ours(r)) {
                account.delete_rule(&rule.arn).await?;
            }
        }
        deployment.maintenance_on = false;
    }
    Ok(deployment)
}

/// How much of a command's output a failure carries.
pub const OUTPUT_TAIL: usize = 2000;

fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(OUTPUT_TAIL);
    let start = (start..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
    &text[start..]
}

/// **command start**: `migrate` on one worker, `worker_deploy` on every worker.
pub async fn command_start(account: &dyn DeployAccount, mut deployment: Deployment, name: &str, now: Timestamp) -> Result<Deployment, StepError> {
    if let Some(run) = &deployment.command
        && run.name == name
    {
        return Ok(deployment); // already started: a retried start must not run it twice
    }
    let env = &deployment.settings;
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
    let command = spec.command.replace("{revision}", deployment.revision.as_deref().unwrap_or(""));
    let comment = format!("stepdeploy {name} {}", deployment.environment);
    let command_id = account.send_command(&workers, &command, spec.timeout_seconds, &comment).await?;
    deployment.command = Some(CommandRun {
        name: name.to_string(),
        command_id,
        instance_ids: workers,
        deadline: now + spec.timeout_seconds as i64 + 60,
        next: "wait".into(),
        seconds: env.health.poll_interval_seconds,
    });
    Ok(deployment)
}

/// **command poll**: done, wait, or a failure that carries the output tail.
pub async fn command_poll(account: &dyn DeployAccount, mut deployment: Deployment, now: Timestamp) -> Result<Deployment, StepError> {
    let Some(run) = deployment.command.clone() else {
        return Err(StepError::input("deployment.command: no command was started".into()));
    };
    let invocations = account.invocations(&run.command_id, &run.instance_ids).await?;
    if let Some(failed) = invocations.iter().find(|i| i.status == CommandStatus::Failed) {
        return Err(StepError {
            name: errors::COMMAND_FAILED,
            message: format!(
                "{} failed on {} ({}, exit code {}). stdout tail: {} | stderr tail: {}",
                run.name,
                failed.instance_id,
                failed.status_detail,
                failed.exit_code.map_or("unknown".into(), |c| c.to_string()),
                tail(&failed.stdout),
                tail(&failed.stderr)
            ),
        });
    }
    let done = invocations.iter().all(|i| i.status == CommandStatus::Succeeded);
    if !done && now > run.deadline {
        return Err(StepError {
            name: errors::COMMAND_FAILED,
            message: format!("{} did not finish before its timeout on {}", run.name, run.instance_ids.join(", ")),
        });
    }
    if let Some(run) = deployment.command.as_mut() {
        run.next = if done { "done".into() } else { "wait".into() };
    }
    Ok(deployment)
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
pub const STEP_NAMES: &[&str] = &["prepare", "replace", "rollback", "finish", "maintenance", "command"];

fn deployment_of(payload: &Value) -> Result<Deployment, StepError> {
    serde_json::from_value(payload["deployment"].clone()).map_err(|e| StepError::input(format!("deployment: not a deployment record: {e}")))
}

/// Runs the step `name` on its payload (what the state machine's Parameters
/// give it) and returns the deployment record as JSON. One entry point for
/// the Lambdas and for local runs.
pub async fn handle(name: &str, account: &dyn DeployAccount, config: ConfigSource<'_>, payload: &Value, now: Timestamp) -> Result<Value, StepError> {
    let deployment = match name {
        "prepare" => {
            let execution = payload["execution_id"].as_str().unwrap_or("unknown-execution").to_string();
            let strategy = match payload["default_strategy"].as_str() {
                Some("all_at_once") => Strategy::AllAtOnce,
                _ => Strategy::Rolling,
            };
            let input = &payload["input"];
            let loaded;
            let config = match config {
                ConfigSource::Given(config) => config,
                ConfigSource::Parameters { deployment } => {
                    let environment = input.get("environment").and_then(Value::as_str).unwrap_or_default();
                    if environment.is_empty() {
                        return Err(StepError::input("environment: required, e.g. \"staging\"".into()));
                    }
                    loaded = crate::config::load_environment(account, deployment, environment).await?;
                    &loaded
                }
            };
            prepare(account, config, input, &execution, strategy, now).await?
        }
        "replace" => replace(account, deployment_of(payload)?, now).await?,
        "rollback" => {
            let error = payload.get("error").filter(|e| !e.is_null());
            rollback(deployment_of(payload)?, error, now).await?
        }
        "finish" => finish(account, deployment_of(payload)?).await?,
        "maintenance" => {
            let mode: MaintenanceMode = serde_json::from_value(payload["mode"].clone()).map_err(|_| {
                StepError::input(format!("mode: {} is not allowed; expected \"on\", \"off\" or \"after_migration_failure\"", payload["mode"]))
            })?;
            maintenance(account, deployment_of(payload)?, mode).await?
        }
        "command" => match payload["action"].as_str() {
            Some("start") => command_start(account, deployment_of(payload)?, payload["command"].as_str().unwrap_or_default(), now).await?,
            Some("poll") => command_poll(account, deployment_of(payload)?, now).await?,
            other => return Err(StepError::input(format!("action: {other:?} is not allowed; expected \"start\" or \"poll\""))),
        },
        other => return Err(StepError::input(format!("step: {other:?} is not a step; expected one of {}", STEP_NAMES.join(", ")))),
    };
    serde_json::to_value(deployment).map_err(|e| StepError { name: errors::AWS_ERROR, message: format!("cannot render the deployment record: {e}") })
}
