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
use crate::ports::{ErrorKind, GroupReader, GroupWriter, InstanceReader, LaunchTemplates, Parameters, PortError, ProcessControl, TargetHealthReader};

/// Everything the deploy steps need from an account.
pub trait DeployAccount: GroupReader + GroupWriter + ProcessControl + InstanceReader + TargetHealthReader + LaunchTemplates + Parameters {}
impl<T: GroupReader + GroupWriter + ProcessControl + InstanceReader + TargetHealthReader + LaunchTemplates + Parameters> DeployAccount for T {}

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

const DEPLOY_FIELDS: &[&str] =
    &["environment", "launch_template_version", "min_healthy_percent", "max_healthy_percent", "batch_size", "strategy", "break_stale_lock"];

/// Validated deploy input.
struct DeployInput {
    environment: String,
    version: String,
    policy: Policy,
    strategy: Strategy,
    break_stale_lock: bool,
}

fn parse_input(input: &Value, config: &Config) -> Result<(DeployInput, Environment), StepError> {
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
        None | Some("rolling") => Strategy::Rolling,
        Some("all_at_once") => Strategy::AllAtOnce,
        Some(other) => return Err(StepError::input(format!("strategy: {other:?} is not allowed; expected \"rolling\" or \"all_at_once\""))),
    };
    let break_stale_lock = match input.get("break_stale_lock") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(StepError::input(format!("break_stale_lock: {other} is not allowed; expected true or false"))),
    };
    Ok((DeployInput { environment, version, policy, strategy, break_stale_lock }, env))
}

/// Takes the environment's lock for `execution_id`: atomic create; taking
/// it again from the same execution succeeds; a stale lock is broken only
/// when asked.
async fn take_lock(
    params: &dyn Parameters,
    name: &str,
    execution_id: &str,
    stale_after: u64,
    break_stale: bool,
    now: Timestamp,
) -> Result<(), StepError> {
    let value = serde_json::json!({"execution": execution_id, "since": now}).to_string();
    if params.create_parameter(name, &value).await? {
        return Ok(());
    }
    let Some(held) = params.get_parameter(name).await? else {
        // Released between the two calls: try once more.
        return if params.create_parameter(name, &value).await? { Ok(()) } else { Err(locked(name, "another execution", 0)) };
    };
    let holder: Value = serde_json::from_str(&held.value).unwrap_or(Value::Null);
    let holder_id = holder["execution"].as_str().unwrap_or("an unknown execution").to_string();
    if holder_id == execution_id {
        return Ok(());
    }
    let age = now - holder["since"].as_i64().unwrap_or(now);
    if break_stale && age >= stale_after as i64 {
        params.put_parameter(name, &value).await?;
        return Ok(());
    }
    Err(locked(name, &holder_id, age))
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
    now: Timestamp,
) -> Result<Deployment, StepError> {
    let (input, env) = parse_input(input, config)?;
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
    take_lock(account, &lock, execution_id, env.lock.stale_after_seconds, input.break_stale_lock, now).await?;
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
            suspended_by_us: to_suspend,
            rollout: RolloutState::begin(&snapshot, spec, now),
            rolling_back: false,
            step: None,
            failure: None,
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

/// **finish**: resume only the processes this deploy suspended, release the lock.
pub async fn finish(account: &dyn DeployAccount, deployment: Deployment) -> Result<Deployment, StepError> {
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
