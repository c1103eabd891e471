//! Checkpoints: a rollout paused for a person (or a timer), continued by an approval, ended by a
//! rejection, a timeout or an alarm.
//!
//! The pause is a `.waitForTaskToken` Task of the deploy state machines. [`pause`] records its
//! token in the environment's lock (where `stepdeploy status` and `stepdeploy approve` find it),
//! then reads the alarms once. Nothing polls while paused: an alarm that goes into ALARM reaches
//! the paused execution through an EventBridge rule on CloudWatch's alarm state changes, whose
//! target, [`relay_alarm`], sends the token's failure. So a pause costs a handful of history events
//! however long it lasts
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html>).

use serde::Serialize;
use serde_json::{Value, json};

use super::account::DeployAccount;
use super::error::StepError;
use super::guard::check_during;
use super::lock::{LockRecord, PauseRecord, lock_parameter};
use super::notify::notify_pause;
use super::record::{CheckpointWait, Deployment};
use crate::config::{Config, Environment};
use crate::errors;
use crate::model::Timestamp;
use crate::ports::{ErrorKind, MAX_TASK_TOKEN_CHARS, Parameters, TaskAnswers};

/// The checkpoint a replace step stopped at, if the deployment is paused at one.
pub(crate) fn paused_at(deployment: &Deployment) -> Option<&CheckpointWait> {
    deployment.step.as_ref().filter(|s| s.next == "pause" && !deployment.rolling_back).and_then(|s| s.checkpoint.as_ref())
}

/// **pause**: the `.waitForTaskToken` Task's function. Records the token in the lock, then reads
/// the alarms: one already in ALARM fails the pause (and the rollout rolls back), since it won't
/// change state again to reach the relay.
///
/// With a `topic` (the stack's SNS topic, when it has one), a new pause is also published there
/// with what to run; a retried step that finds the pause recorded already doesn't send it again.
pub async fn pause(
    account: &dyn DeployAccount,
    deployment: &Deployment,
    token: &str,
    topic: Option<&str>,
    now: Timestamp,
) -> Result<Value, StepError> {
    if token.is_empty() || token.chars().count() > MAX_TASK_TOKEN_CHARS {
        return Err(StepError::input(format!(
            "task_token: {} characters; expected the Task's token ($$.Task.Token), 1 to {MAX_TASK_TOKEN_CHARS} characters",
            token.chars().count()
        )));
    }
    let pause = match (paused_at(deployment), baking_until(deployment)) {
        (Some(checkpoint), _) => PauseRecord {
            token: token.to_string(),
            percent: checkpoint.percent,
            instances: checkpoint.instances,
            goal: checkpoint.goal,
            approval: checkpoint.approval,
            since: checkpoint.paused_at,
            until: checkpoint.paused_at.saturating_add(checkpoint.wait_seconds as i64),
            bake: false,
        },
        // The bake: the whole rollout is done; only an alarm (or a rejection) stops it now.
        (None, Some(until)) => PauseRecord {
            token: token.to_string(),
            percent: 100,
            instances: deployment.step.as_ref().map_or(0, |s| s.progress.new_healthy),
            goal: deployment.rollout.original.desired_capacity,
            approval: crate::config::CheckpointApproval::Auto,
            since: until.saturating_sub(deployment.job.settings.rollout.bake_seconds as i64),
            until,
            bake: true,
        },
        (None, None) => {
            return Err(StepError::input("deployment: neither paused at a checkpoint nor baking (step.next is not \"pause\" or \"bake\")".into()));
        }
    };
    let job = &deployment.job;
    let held = account.get_parameter(&job.lock_parameter).await?.map(|p| LockRecord::parse(&p.value)).unwrap_or_default();
    if held.execution.as_deref() != Some(job.execution_id.as_str()) {
        return Err(StepError {
            name: errors::ENVIRONMENT_LOCKED,
            message: format!(
                "the lock {} is no longer held by this execution (held by {}); the rollout stops here",
                job.lock_parameter,
                held.execution.as_deref().unwrap_or("nobody")
            ),
        });
    }
    let recorded_before = held.pause.as_ref() == Some(&pause);
    if !recorded_before {
        account.put_parameter(&job.lock_parameter, &LockRecord { pause: Some(pause.clone()), ..held }.render()).await?;
    }
    // A bake is no one's to answer: it ends by itself (or with an alarm), so nobody is told.
    let notified = match topic.filter(|t| !t.is_empty() && !recorded_before && !pause.bake) {
        Some(topic) => Some(notify_pause(account, topic, job, &pause).await),
        None => None,
    };
    // After the token is where the relay finds it: an alarm firing from now on reaches it.
    check_during(account, &job.settings.alarms, &deployment.alarms_ignored, if pause.bake { "bake" } else { "checkpoint pause" }).await?;
    tracing::info!(
        environment = %job.environment,
        percent = pause.percent,
        instances = pause.instances,
        goal = pause.goal,
        until = pause.until,
        approve = %format!("stepdeploy approve {}", job.environment),
        reject = %format!("stepdeploy reject {} --reason TEXT", job.environment),
        "paused at a checkpoint"
    );
    let mut result =
        json!({"environment": job.environment, "paused": true, "percent": pause.percent, "until": pause.until, "at": now, "bake": pause.bake});
    match notified {
        Some(Ok(message_id)) => result["notified"] = json!(message_id),
        Some(Err(why)) => result["notification_error"] = json!(why),
        None => {}
    }
    Ok(result)
}

/// When the bake a replace step began ends, if the deployment waits it out now.
pub(crate) fn baking_until(deployment: &Deployment) -> Option<Timestamp> {
    deployment.bake_until.filter(|_| !deployment.rolling_back && deployment.step.as_ref().is_some_and(|s| s.next == "bake"))
}

/// After a pause ended in the rollout going on (approved, or `auto` with no alarm): the checkpoint
/// is passed, the time paused is added to the rollout's deadline, and the lock no longer shows a
/// pause. Safe to run twice (a retried step sees the same record).
pub(crate) async fn resume(account: &dyn DeployAccount, deployment: &mut Deployment, now: Timestamp) -> Result<(), StepError> {
    // The bake's wait ended (its time is up), or a pause or bake ended in a rollback (rejected, an
    // alarm): the lock no longer shows it.
    if baking_until(deployment).is_some() || (deployment.rolling_back && deployment.step.is_none()) {
        return clear_pause(account, deployment).await;
    }
    let Some(checkpoint) = paused_at(deployment).cloned() else { return Ok(()) };
    if deployment.rollout.checkpoints.first().is_some_and(|c| c.instances == checkpoint.instances) {
        deployment.rollout.checkpoints.remove(0);
    }
    let paused_for = now.saturating_sub(checkpoint.paused_at).max(0);
    deployment.rollout.deadline = deployment.rollout.deadline.saturating_add(paused_for);
    clear_pause(account, deployment).await
}

/// The lock no longer records a pause (safe to run twice).
async fn clear_pause(account: &dyn DeployAccount, deployment: &Deployment) -> Result<(), StepError> {
    let job = &deployment.job;
    if let Some(held) = account.get_parameter(&job.lock_parameter).await? {
        let held = LockRecord::parse(&held.value);
        if held.execution.as_deref() == Some(job.execution_id.as_str()) && held.pause.is_some() {
            account.put_parameter(&job.lock_parameter, &LockRecord { pause: None, ..held }.render()).await?;
        }
    }
    Ok(())
}

/// An operator's answer to a paused rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Go on to the next checkpoint (or the end).
    Approve {
        /// Who approved, for the history.
        by: String,
    },
    /// Roll back.
    Reject {
        /// Who rejected.
        by: String,
        /// Why, for the execution's cause.
        reason: String,
    },
}

/// What an answer reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answered {
    /// The paused execution.
    pub execution: String,
    /// The checkpoint it was paused at.
    pub percent: u32,
}

/// `stepdeploy approve` and `reject` (and the local `--approve`): sends the answer to the token the
/// environment's lock records.
pub async fn answer(
    params: &dyn Parameters,
    tasks: &dyn TaskAnswers,
    deployment: &str,
    environment: &str,
    answer: &Answer,
) -> Result<Answered, StepError> {
    let lock = lock_parameter(deployment, environment);
    let held = params.get_parameter(&lock).await?.map(|p| LockRecord::parse(&p.value));
    let Some(held) = held else {
        return Err(StepError {
            name: errors::INVALID_INPUT,
            message: format!("nothing runs on {environment} (no lock {lock}), so nothing is paused"),
        });
    };
    let execution = held.execution.clone().unwrap_or_else(|| "an unknown execution".into());
    let Some(pause) = held.pause else {
        return Err(StepError { name: errors::INVALID_INPUT, message: format!("{execution} holds {environment} but is not paused at a checkpoint") });
    };
    let sent = match answer {
        Answer::Approve { .. } if pause.bake => {
            return Err(StepError {
                name: errors::INVALID_INPUT,
                message: format!(
                    "{execution} is baking until {}: it finishes by itself then; `stepdeploy reject {environment} --reason ...` rolls it back now",
                    crate::status::utc(pause.until)
                ),
            });
        }
        Answer::Reject { by, reason } if pause.bake => {
            let cause = format!("{by} rejected the rollout during its bake: {reason}");
            tasks.send_task_failure(&pause.token, errors::CHECKPOINT_REJECTED, &cause).await
        }
        Answer::Approve { by } => tasks.send_task_success(&pause.token, &json!({"approved_by": by}).to_string()).await,
        Answer::Reject { by, reason } => {
            let cause = format!("{by} rejected the rollout at its {} % checkpoint: {reason}", pause.percent);
            tasks.send_task_failure(&pause.token, errors::CHECKPOINT_REJECTED, &cause).await
        }
    };
    match sent {
        Ok(()) => Ok(Answered { execution, percent: pause.percent }),
        Err(e) if e.kind == ErrorKind::NotFound => Err(StepError {
            name: errors::INVALID_INPUT,
            message: format!("the pause of {execution} at {} % already ended (answered, timed out, or the execution stopped): {e}", pause.percent),
        }),
        Err(e) => Err(e.into()),
    }
}

/// **relay**: the target of the EventBridge rule on CloudWatch alarm state changes. An alarm going
/// into ALARM fails the pause of every paused rollout of `deployment` whose environment watches it.
/// Returns the environments it stopped. Each environment's alarms come from `given` (a local run)
/// or, as on AWS, from its config parameter, read in the same GetParametersByPath as the locks.
pub async fn relay_alarm(account: &dyn DeployAccount, deployment: &str, given: Option<&Config>, event: &Value) -> Result<Value, StepError> {
    let detail = &event["detail"];
    let (Some(alarm), Some(state)) = (detail["alarmName"].as_str(), detail["state"]["value"].as_str()) else {
        return Err(StepError::input(format!("detail: {detail} is not a CloudWatch Alarm State Change; expected alarmName and state.value")));
    };
    if state != "ALARM" {
        return Ok(json!({"alarm": alarm, "state": state, "stopped": []}));
    }
    let reason = detail["state"]["reason"].as_str().unwrap_or_default().trim();
    let root = format!("/stepdeploy/{deployment}");
    let parameters = account.parameters_under(&root).await?;
    let mut stopped = Vec::new();
    for held in parameters.iter().filter(|p| p.name.ends_with("/lock")) {
        let Some(pause) = LockRecord::parse(&held.value).pause else { continue };
        let environment = held.name.trim_start_matches(&format!("{root}/")).trim_end_matches("/lock");
        let config_name = crate::config::parameter_name(deployment, environment);
        let watches = |env: &Environment| env.alarms.iter().any(|a| a == alarm);
        let watched = match given {
            Some(config) => config.environments.get(environment).is_some_and(watches),
            None => parameters
                .iter()
                .find(|p| p.name == config_name)
                .and_then(|p| Environment::from_json_str(&p.value, &config_name).ok())
                .is_some_and(|env| watches(&env)),
        };
        if !watched {
            continue;
        }
        let cause = if pause.bake {
            format!("alarm {alarm:?} is in ALARM ({reason}) during the bake; rolling back")
        } else {
            format!("alarm {alarm:?} is in ALARM ({reason}) while the rollout was paused at its {} % checkpoint; rolling back", pause.percent)
        };
        match account.send_task_failure(&pause.token, errors::ALARM_FIRED, &cause).await {
            Ok(()) => stopped.push(environment.to_string()),
            // The pause ended already (answered, timed out): nothing to stop.
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(alarm, ?stopped, "alarm relayed to paused rollouts");
    Ok(json!({"alarm": alarm, "state": state, "stopped": stopped}))
}

/// The pause a replace step asks for at `checkpoint`, with the environment's approval settings.
pub(crate) fn wait_for(env: &Environment, percent: u32, instances: u32, goal: u32, now: Timestamp) -> CheckpointWait {
    CheckpointWait {
        percent,
        instances,
        goal,
        approval: env.rollout.checkpoint_approval,
        wait_seconds: env.rollout.checkpoint_wait_seconds,
        paused_at: now,
    }
}
