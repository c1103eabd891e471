//! In-place deploy: Fabulaws' "shortcut" (`deploy_web` on the running
//! instances), made safe. Batch by batch, each instance leaves the target
//! groups, runs the deploy command over SSM, rejoins, and must be healthy
//! before the next batch leaves. Healthy capacity never drops below the
//! floor; autoscaling processes are suspended around it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::account::DeployAccount;
use super::command::{command_failure, invocations_of, record_outcome, send_in_chunks};
use super::error::StepError;
use super::input::{field_int, flag, open_input, revision_field};
use super::lock::{give_back_after_failed_start, lock_parameter, lock_value, take_lock};
use super::preflight::{Checks, group_problems, refused};
use super::record::{CommandRun, Job};
use crate::budget::command_wait;
use crate::config::Config;
use crate::errors;
use crate::fleet::read_snapshot;
use crate::model::{Lifecycle, Timestamp};
use crate::planner::{Policy, assess};
use crate::ports::{CommandRequest, CommandStatus};
use crate::revision::{command_document, command_log_group, in_command};

/// The processes an in-place deploy suspends: everything that would launch,
/// terminate or replace an instance while it is out of the load balancer.
pub const IN_PLACE_PROCESSES: &[&str] =
    &["Launch", "Terminate", "HealthCheck", "ReplaceUnhealthy", "AZRebalance", "AlarmNotification", "ScheduledActions"];

const FIELDS: &[&str] = &["environment", "revision", "min_healthy_percent", "batch_size", "break_stale_lock"];

/// Where the current batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Between batches.
    Idle,
    /// The batch left the target groups and is draining.
    Draining,
    /// The deploy command runs on the batch.
    Command,
    /// The batch rejoined and is being health-checked.
    Rejoining,
}

/// The in-place deploy record: a [`Job`] plus the batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InPlace {
    /// Lock, processes, settings, revision and commands.
    #[serde(flatten)]
    pub job: Job,
    /// Target groups instances leave and rejoin.
    pub target_group_arns: Vec<String>,
    /// Instances still to update.
    pub todo: Vec<String>,
    /// Instances updated.
    pub updated: Vec<String>,
    /// The batch in progress.
    pub batch: Vec<String>,
    /// Where the batch is.
    pub phase: Phase,
    /// Healthy capacity floor.
    pub min_healthy: u32,
    /// Instances per batch at most.
    pub batch_size: u32,
    /// When the current phase is given up on.
    pub deadline: Timestamp,
    /// When the whole deploy is given up on.
    pub rollout_deadline: Timestamp,
    /// `wait` or `done`.
    pub next: String,
    /// Seconds to wait before the next step.
    pub seconds: u64,
    /// Healthy instances at the last step.
    pub healthy: u32,
}

/// The next batch: instances to update that may leave now. Unhealthy ones
/// cost no healthy capacity; each healthy one costs one unit above the floor.
/// Pure.
pub fn next_batch(todo: &[String], healthy: &BTreeSet<String>, live: &BTreeSet<String>, min_healthy: u32, batch_size: u32) -> Vec<String> {
    let mut room = (healthy.len() as u32).saturating_sub(min_healthy);
    let mut batch = Vec::new();
    for id in todo.iter().filter(|id| live.contains(*id)) {
        if batch.len() as u32 >= batch_size {
            break;
        }
        if healthy.contains(id) {
            if room == 0 {
                continue;
            }
            room -= 1;
        }
        batch.push(id.clone());
    }
    batch
}

/// **prepare** of an in-place deploy: validate, check the floor leaves room,
/// take the lock, suspend the processes, list the instances.
pub async fn begin(account: &dyn DeployAccount, config: &Config, input: &Value, execution_id: &str, now: Timestamp) -> Result<InPlace, StepError> {
    let (environment, env) = open_input(input, config, FIELDS)?;
    let env = env.clone();
    let min_percent = field_int(input, "min_healthy_percent")?.unwrap_or(env.rollout.min_healthy_percent);
    let policy = Policy::new(min_percent, env.rollout.max_healthy_percent, field_int(input, "batch_size")?.or(env.rollout.batch_size))
        .map_err(|e| StepError::input(e.to_string()))?;
    let revision = revision_field(input, &environment, &env)?;
    let group = account.describe_group(&env.auto_scaling_group).await?;
    let refresh = account.active_instance_refresh(&env.auto_scaling_group).await?;
    let problems = group_problems(&group.settings, &environment, &env, Checks::InPlace, &[], refresh.as_deref());
    if !problems.is_empty() {
        return Err(refused(&env.auto_scaling_group, &problems));
    }
    let desired = group.settings.desired_capacity;
    let min_healthy = (u64::from(desired) * u64::from(policy.min_healthy_percent)).div_ceil(100) as u32;
    if desired > 0 && min_healthy >= desired {
        let given = policy.min_healthy_percent;
        let what_works = if desired == 1 {
            "with one instance only 0 works, and the site is down while it updates (pass \"min_healthy_percent\": 0 to accept that), \
             or use a serial deploy, which keeps it serving"
                .to_string()
        } else {
            // The highest percentage whose floor, ceil(desired × p / 100), leaves one instance free.
            format!("an in-place deploy of {desired} instances needs it at most {}", 100 * (desired - 1) / desired)
        };
        return Err(StepError::input(format!(
            "min_healthy_percent: {given} leaves no instance of {desired} free to leave the load balancer; {what_works}"
        )));
    }
    let lock = lock_parameter(&config.deployment, &environment);
    let recorded = take_lock(account, account, &lock, execution_id, env.lock.stale_after_seconds, flag(input, "break_stale_lock")?, now).await?;
    let mut result = async {
        let to_suspend: Vec<String> = IN_PLACE_PROCESSES
            .iter()
            .map(|p| p.to_string())
            .filter(|p| !group.settings.suspended_processes.contains(p) && !recorded.contains(p))
            .collect();
        let mut suspended_by_us = recorded.clone();
        suspended_by_us.extend(to_suspend.iter().cloned());
        // Recorded before suspending, so that a crash in between can't leave them suspended for good.
        if suspended_by_us != recorded {
            account.put_parameter(&lock, &lock_value(execution_id, now, &suspended_by_us)).await?;
        }
        account.suspend_processes(&env.auto_scaling_group, &to_suspend).await?;
        let mut todo: Vec<String> = group.instances.iter().filter(|i| i.lifecycle == Lifecycle::InService).map(|i| i.id.clone()).collect();
        todo.sort();
        let batch_size = policy.batch_size.unwrap_or(u32::MAX).max(1);
        Ok::<_, StepError>(InPlace {
            job: Job { suspended_by_us, revision: revision.clone(), ..Job::new(&config.deployment, &environment, execution_id, &env) },
            target_group_arns: env.target_group_arns.clone(),
            todo,
            updated: Vec::new(),
            batch: Vec::new(),
            phase: Phase::Idle,
            min_healthy,
            batch_size,
            deadline: now,
            rollout_deadline: now.saturating_add(env.rollout.timeout_seconds as i64),
            next: "wait".into(),
            seconds: 1,
            healthy: 0,
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

fn wait(mut deploy: InPlace, seconds: u64) -> InPlace {
    deploy.next = "wait".into();
    deploy.seconds = seconds.max(1);
    deploy
}

fn failed(message: String) -> StepError {
    StepError { name: errors::ROLLOUT_FAILED, message }
}

/// **in-place advance**: one step of the batch in progress, or the next batch.
pub async fn advance(account: &dyn DeployAccount, mut deploy: InPlace, now: Timestamp) -> Result<InPlace, StepError> {
    let poll = deploy.job.settings.health.poll_interval_seconds;
    let snapshot = read_snapshot(account, account, account, &deploy.job.group, &deploy.target_group_arns, now).await?;
    let live: BTreeSet<String> = snapshot.instances.iter().filter(|i| i.lifecycle.is_live()).map(|i| i.id.clone()).collect();
    let healthy: BTreeSet<String> =
        snapshot.instances.iter().filter(|i| assess(i, &deploy.target_group_arns, None, 0, true, now).0).map(|i| i.id.clone()).collect();
    deploy.healthy = healthy.len() as u32;
    match deploy.phase {
        Phase::Idle => {
            deploy.todo.retain(|id| live.contains(id));
            if deploy.todo.is_empty() {
                deploy.next = "done".into();
                return Ok(deploy);
            }
            if now >= deploy.rollout_deadline {
                return Err(failed(format!(
                    "the in-place deploy did not finish within rollout.timeout_seconds; not updated: {}",
                    deploy.todo.join(", ")
                )));
            }
            let batch = next_batch(&deploy.todo, &healthy, &live, deploy.min_healthy, deploy.batch_size);
            if batch.is_empty() {
                // Too few healthy instances to take one out: wait for them.
                return Ok(wait(deploy, poll));
            }
            for arn in &deploy.target_group_arns {
                account.deregister_targets(arn, &batch).await?;
            }
            deploy.batch = batch;
            deploy.phase = Phase::Draining;
            deploy.deadline = now.saturating_add(deploy.job.settings.health.timeout_seconds as i64);
            Ok(wait(deploy, poll))
        }
        Phase::Draining => {
            let still_in: Vec<&String> =
                snapshot.instances.iter().filter(|i| deploy.batch.contains(&i.id) && !i.target_health.is_empty()).map(|i| &i.id).collect();
            if !still_in.is_empty() {
                if now > deploy.deadline {
                    let ids = still_in.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                    return Err(failed(format!("{ids} did not finish draining from the target groups in time")));
                }
                return Ok(wait(deploy, poll));
            }
            let spec = &deploy.job.settings.commands.in_place_deploy;
            let comment = format!("stepdeploy in-place {}", deploy.job.environment);
            let log_group = command_log_group(&deploy.job.deployment);
            let request = CommandRequest {
                document: &command_document(&deploy.job.deployment),
                instance_ids: &deploy.batch,
                command: &in_command(&spec.command),
                revision: deploy.job.revision.as_deref().unwrap_or_default(),
                timeout_seconds: spec.timeout_seconds,
                comment: &comment,
                output_log_group: Some(&log_group),
            };
            // Each batch is its own send: its instances are part of the key.
            let sender = format!("{} in-place {}", deploy.job.execution_id, deploy.batch.join(","));
            let (command_id, more_command_ids) = send_in_chunks(account, &request, &sender, now).await?;
            deploy.job.command = Some(CommandRun {
                name: "in_place_deploy".into(),
                command_id,
                more_command_ids,
                instance_ids: deploy.batch.clone(),
                deadline: now + spec.timeout_seconds as i64 + 60,
                next: "wait".into(),
                seconds: poll,
                started_at: now,
            });
            deploy.phase = Phase::Command;
            Ok(wait(deploy, poll))
        }
        Phase::Command => {
            let Some(run) = deploy.job.command.clone() else {
                return Err(StepError::input("deployment.command: the deploy command was not started".into()));
            };
            let invocations = invocations_of(account, &run).await?;
            let failures: Vec<_> = invocations.iter().filter(|i| i.status == CommandStatus::Failed).collect();
            let running = invocations.iter().any(|i| i.status == CommandStatus::Running);
            if !failures.is_empty() && !running {
                // The ones that succeeded go back; the failed ones stay out for inspection.
                let ok: Vec<String> = invocations.iter().filter(|i| i.status == CommandStatus::Succeeded).map(|i| i.instance_id.clone()).collect();
                if !ok.is_empty() {
                    for arn in &deploy.target_group_arns {
                        account.register_targets(arn, &ok).await?;
                    }
                }
                let mut error = command_failure(&run.name, failures[0], &deploy.job.deployment);
                let left_out = failures.iter().map(|f| f.instance_id.as_str()).collect::<Vec<_>>().join(", ");
                error.message = format!("{} | left out of the target groups for inspection: {left_out}", error.message);
                return Err(error);
            }
            if running {
                if now > run.deadline {
                    return Err(StepError {
                        name: errors::COMMAND_FAILED,
                        message: format!("in_place_deploy did not finish before its timeout on {}", run.instance_ids.join(", ")),
                    });
                }
                return Ok(wait(deploy, command_wait(now - run.started_at, poll)));
            }
            for arn in &deploy.target_group_arns {
                account.register_targets(arn, &deploy.batch).await?;
            }
            record_outcome(&mut deploy.job, &run, &invocations);
            deploy.phase = Phase::Rejoining;
            deploy.deadline = now.saturating_add(deploy.job.settings.health.timeout_seconds as i64);
            Ok(wait(deploy, poll))
        }
        Phase::Rejoining => {
            let waiting: Vec<String> = deploy.batch.iter().filter(|id| live.contains(*id) && !healthy.contains(*id)).cloned().collect();
            if waiting.is_empty() {
                let batch = std::mem::take(&mut deploy.batch);
                deploy.todo.retain(|id| !batch.contains(id));
                deploy.updated.extend(batch);
                deploy.phase = Phase::Idle;
                return Ok(wait(deploy, 1));
            }
            if now > deploy.deadline {
                return Err(failed(format!(
                    "{} rejoined but did not become healthy within health.timeout_seconds ({} s)",
                    waiting.join(", "),
                    deploy.job.settings.health.timeout_seconds
                )));
            }
            Ok(wait(deploy, poll))
        }
    }
}

/// **in-place clean-up**, after a failure: puts the batch that left the
/// target groups back in, whatever step failed between DeregisterTargets and
/// RegisterTargets (a drain or command timeout, a refused call). Only the
/// instances whose command failed stay out, for inspection, as the failure
/// said. Returns the instances registered again.
pub async fn rejoin_after_failure(account: &dyn DeployAccount, deploy: &InPlace) -> Result<Vec<String>, StepError> {
    if deploy.phase == Phase::Idle || deploy.batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut back = deploy.batch.clone();
    if deploy.phase == Phase::Command
        && let Some(run) = &deploy.job.command
    {
        let failed: BTreeSet<String> =
            invocations_of(account, run).await?.into_iter().filter(|i| i.status == CommandStatus::Failed).map(|i| i.instance_id).collect();
        back.retain(|id| !failed.contains(id));
    }
    if !back.is_empty() {
        for arn in &deploy.target_group_arns {
            account.register_targets(arn, &back).await?;
        }
    }
    Ok(back)
}

/// Runs the in-place step on its payload.
pub async fn handle(account: &dyn DeployAccount, payload: &Value, now: Timestamp) -> Result<Value, StepError> {
    let deploy: InPlace =
        serde_json::from_value(payload["deployment"].clone()).map_err(|e| StepError::input(format!("deployment: not an in-place record: {e}")))?;
    let deploy = advance(account, deploy, now).await?;
    serde_json::to_value(deploy).map_err(|e| StepError { name: errors::AWS_ERROR, message: format!("cannot render the in-place record: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_batch_never_takes_healthy_capacity_below_the_floor() {
        let todo = ids(&["a", "b", "c", "d"]);
        let all: BTreeSet<String> = todo.iter().cloned().collect();
        assert_eq!(next_batch(&todo, &all, &all, 2, 10), ids(&["a", "b"]));
        assert_eq!(next_batch(&todo, &all, &all, 4, 10), Vec::<String>::new());
        assert_eq!(next_batch(&todo, &all, &all, 0, 1), ids(&["a"]));
        // An unhealthy instance costs nothing to take out.
        let healthy: BTreeSet<String> = ids(&["b", "c", "d"]).into_iter().collect();
        assert_eq!(next_batch(&todo, &healthy, &all, 3, 10), ids(&["a"]));
        // Gone instances are skipped.
        let live: BTreeSet<String> = ids(&["c", "d"]).into_iter().collect();
        assert_eq!(next_batch(&todo, &all, &live, 0, 10), ids(&["c", "d"]));
    }
}
