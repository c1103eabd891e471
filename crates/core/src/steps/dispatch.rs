//! One entry point for every step: the Lambdas and local runs call
//! [`handle`] with the step's name and payload.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use super::account::DeployAccount;
use super::bake;
use super::checkpoint;
use super::command::{command_poll, command_start};
use super::error::StepError;
use super::inplace;
use super::input::not_one_of;
use super::jobs::{JobKind, prepare_job, processes};
use super::maintenance::{MaintenanceMode, maintenance};
use super::record::{Deployment, Job};
use super::release::{self, PlanKind};
use super::rollout::{Queue, finish, prepare, replace, rollback};
use crate::config::{Config, load_environment};
use crate::errors;
use crate::model::Timestamp;
use crate::planner::Strategy;

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
    &["prepare", "replace", "rollback", "finish", "maintenance", "command", "processes", "bake", "publish", "prune", "inplace", "pause", "relay"];

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
async fn config_for<'a>(account: &dyn DeployAccount, source: ConfigSource<'a>, input: &Value) -> Result<Cow<'a, Config>, StepError> {
    match source {
        ConfigSource::Given(config) => Ok(Cow::Borrowed(config)),
        ConfigSource::Parameters { deployment } => {
            let environment = input.get("environment").and_then(Value::as_str).unwrap_or_default();
            if environment.is_empty() {
                return Err(StepError::input("environment: required, e.g. \"staging\"".into()));
            }
            Ok(Cow::Owned(load_environment(account, deployment, environment).await?))
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
            bake::handle(name, account, Some(&config), payload, now).await
        }
        "prune" if payload.get("bake").is_none_or(Value::is_null) => {
            let config = config_for(account, config, payload).await?;
            let environment = payload["environment"].as_str().unwrap_or_default();
            let pruned = bake::prune_environment(account, &config, environment, now).await?;
            Ok(serde_json::json!({"environment": environment, "pruned": pruned}))
        }
        "bake" | "publish" | "prune" => bake::handle(name, account, None, payload, now).await,
        "prepare" => {
            let execution = payload["execution_id"].as_str().unwrap_or("unknown-execution").to_string();
            let input = &payload["input"];
            let config = config_for(account, config, input).await?;
            let config = config.as_ref();
            match payload.get("job").filter(|j| !j.is_null()) {
                Some(Value::String(kind)) if kind == "in_place" => render(&inplace::begin(account, config, input, &execution, now).await?),
                Some(Value::String(kind)) if kind == "release" || kind == "rebake" => {
                    let kind = if kind == "release" { PlanKind::Release } else { PlanKind::Rebake };
                    release::plan(account, config, input, &execution, kind).await
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
                    // When the execution started: how long a deploy has waited in the lock queue.
                    let started_at = payload["started_at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp());
                    render(&prepare(account, config, input, &execution, strategy, Queue { started_at, now }).await?)
                }
            }
        }
        "replace" => render(&replace(account, deployment_of(payload)?, now).await?),
        "rollback" => {
            let error = payload.get("error").filter(|e| !e.is_null());
            render(&rollback(deployment_of(payload)?, error, now).await?)
        }
        "finish" => {
            // An in-place deploy's record: its batch goes back into the target groups first.
            if payload["deployment"].get("phase").is_some()
                && let Ok(deploy) = serde_json::from_value::<inplace::InPlace>(payload["deployment"].clone())
            {
                inplace::rejoin_after_failure(account, &deploy).await?;
            }
            on_job(payload, |job| finish(account, job)).await
        }
        "maintenance" => {
            let mode: MaintenanceMode = serde_json::from_value(payload["mode"].clone()).map_err(|_| {
                StepError::input(format!("mode: {} is not allowed; expected \"on\", \"off\" or \"after_migration_failure\"", payload["mode"]))
            })?;
            on_job(payload, |job| maintenance(account, job, mode)).await
        }
        "command" => match payload["action"].as_str() {
            Some("start") => on_job(payload, |job| command_start(account, job, payload["command"].as_str().unwrap_or_default(), now)).await,
            Some("poll") => on_job(payload, |job| command_poll(account, job, now)).await,
            _ => Err(not_one_of(payload, "action", &["start", "poll"])),
        },
        "processes" => on_job(payload, |job| processes(account, job)).await,
        "inplace" => inplace::handle(account, payload, now).await,
        "pause" => {
            let token = payload["task_token"].as_str().unwrap_or_default();
            // The stack's SNS topic ("" when it has none).
            let topic = payload["notification_topic"].as_str();
            checkpoint::pause(account, &deployment_of(payload)?, token, topic, now).await
        }
        "relay" => {
            let (deployment, given) = match config {
                ConfigSource::Given(config) => (config.deployment.as_str(), Some(config)),
                ConfigSource::Parameters { deployment } => (deployment, None),
            };
            checkpoint::relay_alarm(account, deployment, given, payload).await
        }
        other => Err(StepError::input(format!("step: {other:?} is not a step; expected one of {}", STEP_NAMES.join(", ")))),
    }
}
