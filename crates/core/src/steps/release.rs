//! Release and rebake plans. A release bakes a revision, deploys it and
//! prunes; a rebake does the same for the revision already running, so the
//! fleet picks up OS patches. The plan validates everything up front (a bad
//! deploy parameter must not surface after a 20-minute bake) and gives the
//! nested bake and deploy executions their inputs.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::account::DeployAccount;
use super::bake::tags;
use super::error::StepError;
use super::input::{STARTED_BY, checked_revision, field_string, flag_or, one_of, open_input, revision_or_branch};
use super::rollout::validate_deploy_input;
use crate::config::{Config, Environment};
use crate::errors;
use crate::ports::ErrorKind;

/// Which plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanKind {
    /// Bake the given revision, deploy it, prune.
    Release,
    /// Bake the running revision, deploy it (optionally), prune.
    Rebake,
}

const RELEASE_FIELDS: &[&str] = &[
    "environment",
    "revision",
    "deploy",
    "run_migrations",
    "min_healthy_percent",
    "max_healthy_percent",
    "batch_size",
    "break_stale_lock",
    "make_default",
];
const REBAKE_FIELDS: &[&str] = &["environment", "deploy", "break_stale_lock"];
const PASSED_TO_DEPLOY: &[&str] = &["run_migrations", "min_healthy_percent", "max_healthy_percent", "batch_size", "break_stale_lock"];

/// The revision the group runs: the `stepdeploy:revision` tag most of its
/// live instances carry, else that of the AMI most of them run.
pub async fn running_revision(account: &dyn DeployAccount, env: &Environment) -> Result<Option<String>, StepError> {
    let group = match account.describe_group(&env.auto_scaling_group).await {
        Ok(group) => group,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let live: Vec<String> = group.instances.iter().filter(|i| i.lifecycle.is_live()).map(|i| i.id.clone()).collect();
    if live.is_empty() {
        return Ok(None);
    }
    let instances = account.describe_instances(&live).await?;
    let most_common = |values: Vec<String>| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for value in values {
            *counts.entry(value).or_default() += 1;
        }
        counts.into_iter().max_by_key(|(value, n)| (*n, std::cmp::Reverse(value.clone()))).map(|(value, _)| value)
    };
    // An instance's own revision tag (if its launch template sets one) wins over its AMI's.
    if let Some(revision) = most_common(instances.iter().filter_map(|i| i.tags.get(tags::REVISION).cloned()).collect()) {
        return Ok(Some(revision));
    }
    let Some(image) = most_common(instances.into_iter().filter_map(|i| i.image_id).collect()) else {
        return Ok(None);
    };
    Ok(account.describe_images(&[image]).await?.into_iter().next().and_then(|i| i.tags.get(tags::REVISION).cloned()))
}

/// Validates a release or rebake input and plans the nested executions'
/// inputs: `{"environment", "revision", "revision_source", "deploy", "bake", "deploy_input"}`.
pub async fn plan(account: &dyn DeployAccount, config: &Config, input: &Value, execution_id: &str, kind: PlanKind) -> Result<Value, StepError> {
    let fields = if kind == PlanKind::Release { RELEASE_FIELDS } else { REBAKE_FIELDS };
    let (environment, env) = open_input(input, config, fields)?;
    let allowed: &[&str] = if kind == PlanKind::Release { &["serial", "full"] } else { &["serial", "full", "none"] };
    let deploy = match input.get("deploy") {
        None | Some(Value::Null) => "serial".to_string(),
        Some(_) => one_of(input, "deploy", allowed)?,
    };
    let (revision, source) = match kind {
        PlanKind::Release => match field_string(input, "revision")? {
            Some(given) => (checked_revision(&given, "revision")?, "input"),
            None => (revision_or_branch(input, &environment, env)?, "branch"),
        },
        // The fleet's tags are anyone's who can tag an instance: checked like any input.
        PlanKind::Rebake => match (running_revision(account, env).await?, &env.branch) {
            (Some(running), _) => (checked_revision(&running, &format!("the running revision (tag {} on the fleet)", tags::REVISION))?, "fleet"),
            (None, Some(branch)) => (checked_revision(branch, &format!("environments.{environment}.branch"))?, "branch"),
            (None, None) => {
                return Err(StepError {
                    name: errors::CONFIG_INVALID,
                    message: format!(
                        "cannot tell which revision to rebake: no live instance of {} runs an AMI tagged {}, and environments.{environment}.branch is not set",
                        env.auto_scaling_group,
                        tags::REVISION
                    ),
                });
            }
        },
    };
    let mut deploy_input = Map::new();
    deploy_input.insert("environment".into(), json!(environment));
    deploy_input.insert("revision".into(), json!(revision));
    for field in PASSED_TO_DEPLOY {
        if let Some(value) = input.get(*field).filter(|v| !v.is_null()) {
            deploy_input.insert(field.to_string(), value.clone());
        }
    }
    if deploy != "none" {
        let mut candidate = deploy_input.clone();
        candidate.insert("launch_template_version".into(), json!("1"));
        validate_deploy_input(&Value::Object(candidate), config)?;
    }
    deploy_input.insert(STARTED_BY.into(), json!(execution_id));
    let make_default = flag_or(input, "make_default", true)?;
    Ok(json!({
        "environment": environment,
        "revision": revision,
        "revision_source": source,
        "deploy": deploy,
        "bake": {"environment": environment, "revision": revision, "make_default": make_default, STARTED_BY: execution_id},
        "deploy_input": deploy_input,
    }))
}
