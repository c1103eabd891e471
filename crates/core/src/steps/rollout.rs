//! The deploy rollout: prepare (input, lock, snapshot, processes), replace
//! (one reconcile step), rollback (turn the rollout around) and finish.

use std::collections::BTreeMap;

use serde_json::Value;

use super::account::DeployAccount;
use super::checkpoint::{resume, wait_for};
use super::error::StepError;
use super::guard::{check_before_start, check_during};
use super::input::{field_int, field_string, flag, open_input, revision_field};
use super::lock::{LockRecord, give_back_after_failed_start, lock_parameter, lock_value, take_lock};
use super::maintenance::{MaintenanceMode, maintenance};
use super::preflight::{Checks, NEEDED_BY_ROLLOUT, group_problems, quota_problem, refused};
use super::record::{Deployment, Failure, Job, NOT_HEALTHY_SHOWN, NextStep, ROLLBACK_PROBLEMS_KEPT};
use crate::config::{Config, Environment, MAX_LOCK_WAIT_SECONDS};
use crate::errors;
use crate::fleet::{apply, read_snapshot};
use crate::model::{GroupSnapshot, LaunchTemplateRef, Target, Timestamp, VersionMatch};
use crate::planner::{Outcome, Policy, RolloutSpec, RolloutState, Strategy, Timing, plan};
use crate::ports::ErrorKind;

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
    "ignore_alarms",
    "lock_wait_seconds",
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
    ignore_alarms: bool,
    lock_wait_seconds: u64,
}

/// When prepare runs: now, and when the execution started (absent: it can't wait in the queue).
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    /// The execution's start (`$$.Execution.StartTime`).
    pub started_at: Option<Timestamp>,
    /// Now.
    pub now: Timestamp,
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
    let revision = revision_field(input, &environment, &env)?;
    let ignore_alarms = flag(input, "ignore_alarms")?;
    let lock_wait_seconds = match field_int(input, "lock_wait_seconds")? {
        None => env.lock.wait_seconds,
        Some(n) if (0..=MAX_LOCK_WAIT_SECONDS as i64).contains(&n) => n as u64,
        Some(n) => {
            return Err(StepError::input(format!("lock_wait_seconds: {n} is not in 0..={MAX_LOCK_WAIT_SECONDS} (seconds to wait for a held lock)")));
        }
    };
    Ok((DeployInput { environment, version, policy, strategy, break_stale_lock, run_migrations, revision, ignore_alarms, lock_wait_seconds }, env))
}

/// **prepare**: validate the input, take the lock, snapshot the group, suspend processes.
pub async fn prepare(
    account: &dyn DeployAccount,
    config: &Config,
    input: &Value,
    execution_id: &str,
    default_strategy: Strategy,
    queue: Queue,
) -> Result<Deployment, StepError> {
    let now = queue.now;
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

    // An alarm already firing refuses the deploy before the lock: nothing to give back.
    let alarms_ignored = check_before_start(account, &input.environment, &env.alarms, input.ignore_alarms).await?;

    let lock = lock_parameter(&config.deployment, &input.environment);
    let recorded = take_lock(account, account, &lock, execution_id, env.lock.stale_after_seconds, input.break_stale_lock, now)
        .await
        .map_err(|e| queued(e, input.lock_wait_seconds, queue))?;
    let mut result = async {
        let snapshot = read_snapshot(account, account, account, &env.auto_scaling_group, &env.target_group_arns, now).await?;
        // Before changing anything: refuse what the planner can't handle (the lock is given back).
        let refresh = account.active_instance_refresh(&env.auto_scaling_group).await?;
        let mut problems = group_problems(&snapshot.settings, &input.environment, &env, Checks::Rollout, &recorded, refresh.as_deref());
        // A surge past the vCPU quota would fail its launches part-way (VcpuLimitExceeded).
        if let Some(instance_type) = target.instance_type.as_deref() {
            problems.extend(quota_problem(account, &snapshot, input.strategy, &input.policy, instance_type).await?);
        }
        if !problems.is_empty() {
            return Err(refused(&env.auto_scaling_group, &problems));
        }
        let previous = match snapshot.settings.launch_template.as_ref().and_then(|lt| lt.version.clone()) {
            Some(version) => account.describe_versions(&template, &[version]).await?.first().and_then(|v| {
                v.image_id.clone().map(|image_id| Target {
                    template_id: Some(v.template_id.clone()),
                    launch_template_version: v.version.to_string(),
                    image_id,
                })
            }),
            None => None,
        };
        let to_suspend: Vec<String> =
            env.rollout.suspend_processes.iter().filter(|p| !snapshot.settings.suspended_processes.contains(p)).cloned().collect();
        // What an earlier run of ours left suspended that the rollout needs (Launch...) is resumed
        // now, before the record drops it; the rest stays recorded, to be resumed at the end.
        let (needed_now, mut suspended_by_us): (Vec<String>, Vec<String>) =
            recorded.iter().cloned().partition(|p| NEEDED_BY_ROLLOUT.contains(&p.as_str()) && !to_suspend.contains(p));
        account.resume_processes(&env.auto_scaling_group, &needed_now).await?;
        suspended_by_us.extend(to_suspend.iter().filter(|p| !recorded.contains(p)).cloned());
        // Recorded before suspending, so a crash in between can't leave them suspended for good.
        if suspended_by_us != recorded {
            account.put_parameter(&lock, &lock_value(execution_id, now, &suspended_by_us)).await?;
        }
        account.suspend_processes(&env.auto_scaling_group, &to_suspend).await?;
        let spec = RolloutSpec {
            target: Target { template_id: Some(target.template_id.clone()), launch_template_version: target.version.to_string(), image_id },
            previous,
            strategy: input.strategy,
            policy: input.policy,
            target_group_arns: env.target_group_arns.clone(),
            timing: Timing {
                rollout_timeout_seconds: env.rollout.timeout_seconds,
                instance_timeout_seconds: env.health.timeout_seconds,
                warmup_seconds: env.health.warmup_seconds,
                poll_seconds: env.health.poll_interval_seconds,
                looks_budget: crate::budget::rollout_looks(&env),
            },
            checkpoints: env.rollout.checkpoints.clone(),
            instant_rollback: env.rollout.instant_rollback,
        };
        Ok::<_, StepError>(Deployment {
            job: Job {
                suspended_by_us,
                run_migrations: input.run_migrations,
                revision: input.revision.clone(),
                ..Job::new(&config.deployment, &input.environment, execution_id, &env)
            },
            template: template.clone(),
            rollout: RolloutState::begin(&snapshot, spec, now),
            rolling_back: false,
            step: None,
            rollback_problems: Vec::new(),
            alarms_ignored,
            bake_until: None,
        })
    }
    .await;
    // Nothing half-done: after a failure holding the lock, resume what it records and give it back.
    if let Err(e) = &mut result
        && let Some(note) = give_back_after_failed_start(account, account, &lock, &env.auto_scaling_group, execution_id).await
    {
        e.message = format!("{} ({note})", e.message);
    }
    result
}

/// A held lock, for a deploy that may wait: [`errors::QUEUED`] (the state machine tries again in
/// 30 s) until it has waited `wait_seconds` since the execution started, then the lock's own error.
fn queued(locked: StepError, wait_seconds: u64, queue: Queue) -> StepError {
    let Some(started_at) = queue.started_at.filter(|_| locked.name == errors::ENVIRONMENT_LOCKED && wait_seconds > 0) else {
        return locked;
    };
    let waited = queue.now.saturating_sub(started_at).max(0) as u64;
    if waited < wait_seconds {
        StepError { name: errors::QUEUED, message: format!("queued ({waited} s of at most {wait_seconds} s): {}", locked.message) }
    } else {
        StepError { name: locked.name, message: format!("{} (after waiting {waited} s in the lock queue)", locked.message) }
    }
}

/// **replace**: one reconcile step of the rollout (or rollback).
pub async fn replace(account: &dyn DeployAccount, mut deployment: Deployment, now: Timestamp) -> Result<Deployment, StepError> {
    if deployment.step.is_none() && !deployment.rolling_back {
        // The rollout's clock starts with its first step, not at prepare: migrations may have run in between.
        let timeout = deployment.rollout.deadline - deployment.rollout.started_at;
        deployment.rollout.started_at = now;
        deployment.rollout.deadline = now.saturating_add(timeout);
    }
    // Back from a checkpoint's pause (approved, or `auto` with no alarm): on to the next one.
    resume(account, &mut deployment, now).await?;
    // The alarms first: one firing stops the rollout before this step changes anything. A
    // rollback doesn't read them; it is already what they ask for.
    let alarms_ok = if deployment.rolling_back {
        0
    } else {
        let phase = if deployment.bake_until.is_some() { "bake" } else { "rollout" };
        check_during(account, &deployment.job.settings.alarms, &deployment.alarms_ignored, phase).await?
    };
    let mut snapshot = read_snapshot(account, account, account, &deployment.job.group, &deployment.rollout.target_group_arns, now).await?;
    // One more call per poll: Auto Scaling's own account of failed launches and health replacements.
    snapshot.activities = account.scaling_activities(&deployment.job.group, deployment.rollout.started_at).await?;
    let decision = plan(&snapshot, &deployment.rollout, now);
    if deployment.rolling_back {
        // A rollback keeps going past a call AWS refuses: each action on its own, the refusal
        // recorded (and retried by the next poll, which plans again); only a retryable error
        // stops the step, for the state machine to retry it.
        for action in &decision.actions {
            match apply(std::slice::from_ref(action), &deployment.job.group, &deployment.template, account, account).await {
                Ok(()) => deployment.rollout.remember_leaving(std::slice::from_ref(action), now),
                Err(e) if e.is_retryable() => return Err(e.into()),
                Err(e) => {
                    deployment.rollback_problems.push(e.to_string());
                    let excess = deployment.rollback_problems.len().saturating_sub(ROLLBACK_PROBLEMS_KEPT);
                    deployment.rollback_problems.drain(..excess);
                }
            }
        }
    } else {
        apply(&decision.actions, &deployment.job.group, &deployment.template, account, account).await?;
        deployment.rollout.remember_leaving(&decision.actions, now);
    }
    deployment.rollout.healthy_since = decision.healthy_since;
    deployment.rollout.expected_desired = Some(decision.desired_after);
    deployment.rollout.looks = deployment.rollout.looks.saturating_add(1);
    let bake_seconds = deployment.job.settings.rollout.bake_seconds;
    // Replaced and healthy: the bake (watching the alarms) begins before the deploy finishes.
    if matches!(decision.outcome, Outcome::Done) && !deployment.rolling_back && bake_seconds > 0 && deployment.bake_until.is_none() {
        let until = now.saturating_add(bake_seconds as i64);
        deployment.bake_until = Some(until);
        // The bake is not the rollout's to time out.
        deployment.rollout.deadline = deployment.rollout.deadline.max(until.saturating_add(deployment.rollout.poll_seconds as i64));
    }
    // While baking, every step says how much is left (the step that lets the Standby instances go too).
    let bake_remaining_seconds = deployment.bake_until.filter(|_| !deployment.rolling_back).map(|until| until.saturating_sub(now).max(0) as u64);
    let mut checkpoint = None;
    let (next, seconds, reason) = match decision.outcome {
        Outcome::Wait { seconds } => ("wait", seconds, None),
        // Waited out on a task token, not by polling: an alarm reaches it through the alarm-state
        // rule at once (as a checkpoint's pause), and the wait costs a few history events however
        // long it is.
        Outcome::Done if !deployment.rolling_back && bake_remaining_seconds.is_some_and(|left| left > 0) => {
            ("bake", bake_remaining_seconds.unwrap_or_default(), None)
        }
        // No bake, or a clean one: the old instances kept in Standby are no longer needed; the
        // next step terminates them (and the one after finds nothing left, and finishes).
        Outcome::Done if !deployment.rolling_back && (deployment.rollout.keep_old_in_standby || decision.progress.kept_in_standby > 0) => {
            deployment.rollout.keep_old_in_standby = false;
            ("wait", 1, None)
        }
        Outcome::Pause(at) if !deployment.rolling_back => {
            checkpoint = Some(wait_for(&deployment.job.settings, at.percent, at.instances, deployment.rollout.original.desired_capacity, now));
            ("pause", 0, None)
        }
        // A rollback has no checkpoints; should one come, the rollback goes on.
        Outcome::Pause(_) => ("wait", deployment.rollout.poll_seconds, None),
        Outcome::Done => ("done", 0, None),
        Outcome::Failed(failure) if deployment.rolling_back => ("failed", 0, Some(rollback_report(&deployment, &failure.describe(), &snapshot))),
        Outcome::Failed(failure) => ("failed", 0, Some(failure.describe())),
    };
    let not_healthy = decision.health.into_iter().filter(|h| !h.healthy).take(NOT_HEALTHY_SHOWN).collect();
    deployment.step = Some(NextStep {
        next: next.into(),
        seconds,
        reason,
        progress: decision.progress,
        not_healthy,
        alarms_ok,
        bake_remaining_seconds,
        checkpoint,
    });
    Ok(deployment)
}

/// Why a rollback gave up, what it could not do, and the state it leaves: the
/// operator's starting point, since nothing will change the group after this.
fn rollback_report(deployment: &Deployment, why: &str, snapshot: &GroupSnapshot) -> String {
    let rollout = &deployment.rollout;
    let mut versions: BTreeMap<String, usize> = BTreeMap::new();
    for instance in snapshot.instances.iter().filter(|i| i.lifecycle.is_live()) {
        let version = match rollout.target.compare(instance) {
            VersionMatch::Target => format!("version {} (the original)", rollout.target.launch_template_version),
            VersionMatch::Other => match &rollout.original.target {
                Some(failed) => format!("version {} (the failed deploy's)", failed.launch_template_version),
                None => "another version".to_string(),
            },
            VersionMatch::Unknown => "a version not known yet".to_string(),
        };
        *versions.entry(version).or_default() += 1;
    }
    let left = if versions.is_empty() {
        "no live instance".to_string()
    } else {
        versions.iter().map(|(version, n)| format!("{n} of {version}")).collect::<Vec<_>>().join(", ")
    };
    let settings = &snapshot.settings;
    let mut report = format!(
        "the rollback did not finish: {why}. The group is left with {left}; desired {} (min {}, max {}), where it was {} (min {}, max {})",
        settings.desired_capacity,
        settings.min_size,
        settings.max_size,
        rollout.original.desired_capacity,
        rollout.original.min_size,
        rollout.original.max_size
    );
    if let Some(last) = deployment.rollback_problems.last() {
        report.push_str(&format!(". AWS refused: {last}"));
    }
    if let Some(failure) = &deployment.job.failure {
        report.push_str(&format!(". The deploy itself failed with {}: {}", failure.error, failure.cause));
    }
    report
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
///
/// Each part is tried whatever happened to the one before, so one refused call
/// doesn't leave the rest undone. A retryable failure fails the step as
/// `AwsTransient` (the state machine runs it again; every part is idempotent);
/// otherwise what could not be done is `StepDeploy.CleanupIncomplete`, each
/// item with what to do about it. Processes that could not be resumed keep
/// the lock, which records them for the next run that breaks it.
pub async fn finish(account: &dyn DeployAccount, mut job: Job) -> Result<Job, StepError> {
    let mut left: Vec<String> = Vec::new();
    let mut retryable = false;
    let environment = job.environment.clone();
    if job.maintenance_on && !job.hold_maintenance {
        match maintenance(account, job.clone(), MaintenanceMode::Off).await {
            Ok(updated) => job = updated,
            Err(e) => {
                retryable |= e.name == errors::AWS_TRANSIENT;
                left.push(format!("the maintenance page is still up ({}); take it down with `stepdeploy maintenance off {environment}`", e.message));
            }
        }
    }
    let mut processes_resumed = true;
    if !job.suspended_by_us.is_empty()
        && let Err(e) = account.resume_processes(&job.group, &job.suspended_by_us).await
    {
        retryable |= e.is_retryable();
        processes_resumed = false;
        left.push(format!(
            "{} are still suspended on {} ({e}); resume them with `stepdeploy autoscaling resume {environment}`",
            job.suspended_by_us.join(", "),
            job.group
        ));
    }
    if processes_resumed {
        let released = async {
            if let Some(held) = account.get_parameter(&job.lock_parameter).await? {
                // Never release someone else's lock (a stale one broken by another execution).
                if LockRecord::parse(&held.value).execution.as_deref() == Some(job.execution_id.as_str()) {
                    account.delete_parameter(&job.lock_parameter).await?;
                }
            }
            Ok::<(), crate::ports::PortError>(())
        }
        .await;
        if let Err(e) = released {
            retryable |= e.is_retryable();
            left.push(format!(
                "the lock {} is still held ({e}); delete it once `stepdeploy status {environment}` shows no running execution",
                job.lock_parameter
            ));
        }
    } else {
        left.push(format!("the lock {} stays, recording them, so that the next run that breaks it resumes them", job.lock_parameter));
    }
    match (left.is_empty(), retryable) {
        (true, _) => Ok(job),
        (false, true) => Err(StepError { name: errors::AWS_TRANSIENT, message: format!("clean-up is not finished: {}", left.join("; ")) }),
        (false, false) => Err(StepError { name: errors::CLEANUP_INCOMPLETE, message: format!("clean-up could not finish: {}", left.join("; ")) }),
    }
}

/// A summary of a group's instances per AMI, for progress and results.
pub fn fleet_by_image(images: &[(String, String)]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, image) in images {
        *out.entry(image.clone()).or_insert(0) += 1;
    }
    out
}
