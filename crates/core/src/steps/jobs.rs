//! The stand-alone workflows that hold the lock but roll nothing out:
//! deploy-worker, maintenance and autoscaling-processes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::account::DeployAccount;
use super::error::StepError;
use super::input::{flag, not_one_of, one_of, open_input, revision_field};
use super::lock::take_lock;
use super::maintenance::maintenance_rules;
use super::record::Job;
use crate::config::{Config, SCALING_PROCESSES};
use crate::errors;
use crate::model::Timestamp;
use crate::ports::ErrorKind;

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

fn process_list(input: &Value, default: &[String]) -> Result<Vec<String>, StepError> {
    let expected = format!("expected a list of Auto Scaling processes ({})", SCALING_PROCESSES.join(", "));
    let processes = match input.get("processes") {
        None | Some(Value::Null) => default.to_vec(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.as_str() {
                Some(p) if SCALING_PROCESSES.contains(&p) => Ok(p.to_string()),
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
    let mut job = Job::new(&config.deployment, &environment, execution_id, &env);
    match kind {
        JobKind::Worker => {
            job.run_migrations = match input.get("run_migrations") {
                None | Some(Value::Null) => true,
                Some(_) => flag(input, "run_migrations")?,
            };
            job.revision = revision_field(input, &environment, &env)?;
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
    // What a broken stale lock's holder had suspended is resumed when this job finishes.
    job.suspended_by_us =
        take_lock(account, account, &job.lock_parameter, execution_id, env.lock.stale_after_seconds, flag(input, "break_stale_lock")?, now).await?;
    Ok(job)
}

/// **processes**: suspend or resume the job's processes (both idempotent on
/// AWS), then record what the group has suspended now.
pub async fn processes(account: &dyn DeployAccount, mut job: Job) -> Result<Job, StepError> {
    match job.action.as_deref() {
        Some("suspend") => account.suspend_processes(&job.group, &job.processes).await?,
        Some("resume") => account.resume_processes(&job.group, &job.processes).await?,
        _ => return Err(not_one_of(&serde_json::json!({"action": job.action}), "action", &["suspend", "resume"])),
    }
    let group = account.describe_group(&job.group).await?;
    job.suspended_processes = Some(group.settings.suspended_processes);
    Ok(job)
}
