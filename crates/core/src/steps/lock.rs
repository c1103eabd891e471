//! The environment's lock: an SSM parameter created atomically, naming
//! the execution that holds it and the processes it suspended.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::StepError;
use crate::config::CheckpointApproval;
use crate::errors;
use crate::model::Timestamp;
use crate::ports::{Executions, Parameters, ProcessControl};

/// The lock parameter of an environment.
pub fn lock_parameter(deployment: &str, environment: &str) -> String {
    format!("/stepdeploy/{deployment}/{environment}/lock")
}

/// Takes the environment's lock for `execution_id`: atomic create; taking
/// it again from the same execution succeeds; a stale lock is broken only
/// when asked.
///
/// Returns the processes an earlier run of this same execution recorded as
/// suspended by it (a retried prepare must not forget them), or that the
/// holder of a stale lock it broke had suspended (adopted, so they get resumed).
///
/// Age alone never makes a lock stale: Step Functions is asked whether the
/// holder still runs (DescribeExecution), and a running holder keeps it.
pub(crate) async fn take_lock(
    params: &dyn Parameters,
    executions: &dyn Executions,
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
        if executions.execution_running(&holder_id).await? == Some(true) {
            return Err(StepError {
                name: errors::ENVIRONMENT_LOCKED,
                message: format!(
                    "the environment is locked by {holder_id} (for {age} s, parameter {name}), which Step Functions reports still running, so the lock is not stale; wait for it, or stop that execution first"
                ),
            });
        }
        // The stale holder's suspended processes are ours to resume now: adopt them.
        params.put_parameter(name, &lock_value(execution_id, now, &holder.suspended)).await?;
        return Ok(holder.suspended);
    }
    Err(locked(name, &holder_id, age))
}

/// After a start step failed holding the lock: resumes every process the
/// lock records as suspended by `execution_id` (a SuspendProcesses whose
/// response was lost took effect all the same), then gives the lock back.
/// If resuming fails, the lock stays with its record, for the next run to
/// adopt when it breaks the lock; the returned note says so.
pub(crate) async fn give_back_after_failed_start(
    params: &dyn Parameters,
    processes: &dyn ProcessControl,
    name: &str,
    group: &str,
    execution_id: &str,
) -> Option<String> {
    let held = match params.get_parameter(name).await {
        Ok(Some(held)) => LockRecord::parse(&held.value),
        Ok(None) => return None,
        Err(e) => return Some(format!("the lock {name} could not be read to give it back: {e}")),
    };
    if held.execution.as_deref() != Some(execution_id) {
        return None; // never someone else's
    }
    if let Err(e) = processes.resume_processes(group, &held.suspended).await {
        return Some(format!(
            "resuming {} failed ({e}); the lock {name} stays, recording them, so that the next run that breaks it resumes them",
            held.suspended.join(", ")
        ));
    }
    params.delete_parameter(name).await.err().map(|e| format!("the lock {name} could not be deleted: {e}"))
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
    /// The holder's rollout is paused at a checkpoint.
    pub pause: Option<PauseRecord>,
}

/// A paused rollout, as its lock records it: where `stepdeploy status` and `approve` find it, and
/// the alarm relay too. The token is at most 2,048 characters, so the lock stays within a
/// standard parameter's 4 KB
/// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRecord {
    /// The `.waitForTaskToken` Task's token: SendTaskSuccess continues, SendTaskFailure rolls back.
    pub token: String,
    /// The checkpoint's share of the group.
    pub percent: u32,
    /// Instances on the new version at the pause.
    pub instances: u32,
    /// Of the rollout's goal.
    pub goal: u32,
    /// `manual` or `auto`.
    pub approval: CheckpointApproval,
    /// When it paused.
    pub since: Timestamp,
    /// When the wait ends: a rejection (`manual`) or the rollout going on (`auto`).
    pub until: Timestamp,
    /// Not a checkpoint but the bake: the rollout is complete and waits out `rollout.bake_seconds`
    /// for an alarm; the wait's end is the bake's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bake: bool,
}

impl LockRecord {
    /// The lock parameter's value for this record.
    pub fn render(&self) -> String {
        let mut value = serde_json::json!({"execution": self.execution, "since": self.since, "suspended": self.suspended});
        if let Some(pause) = &self.pause {
            value["pause"] = serde_json::to_value(pause).unwrap_or(Value::Null);
        }
        value.to_string()
    }
}

impl LockRecord {
    /// Reads a lock parameter's value.
    pub fn parse(value: &str) -> LockRecord {
        let holder: Value = serde_json::from_str(value).unwrap_or(Value::Null);
        LockRecord {
            execution: holder["execution"].as_str().map(str::to_string),
            since: holder["since"].as_i64(),
            suspended: holder["suspended"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(str::to_string)).collect(),
            pause: serde_json::from_value(holder["pause"].clone()).ok(),
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
