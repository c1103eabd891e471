//! What a rollout checks about a group before it changes anything: the
//! settings the planner can't handle correctly are refused with what to
//! change, rather than discovered half-way.

use std::collections::BTreeSet;

use super::error::StepError;
use crate::config::Environment;
use crate::errors;
use crate::model::{GroupSettings, GroupSnapshot, LaunchTemplateRef};
use crate::planner::{Policy, Strategy, strategy_bounds};
use crate::ports::VcpuQuota;
use crate::quota::surge_fit;

/// Which workflow asks: a rollout launches and terminates through Auto
/// Scaling; an in-place deploy only moves instances in and out of the target groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// Serial and full deploys, and their rollbacks.
    Rollout,
    /// In-place deploys.
    InPlace,
}

/// Processes a rollout can't run without: no launches, or new instances never join the target groups.
pub const NEEDED_BY_ROLLOUT: &[&str] = &["Launch", "AddToLoadBalancer"];

/// Everything about `group` that `checks` can't handle, each with what to change.
///
/// `ours` are processes suspended by an earlier stepdeploy run (recorded in
/// the lock this run adopted): resumed at the end, so not someone else's.
/// `refresh` is an instance refresh in progress, if one is.
pub fn group_problems(
    group: &GroupSettings,
    environment: &str,
    env: &Environment,
    checks: Checks,
    ours: &[String],
    refresh: Option<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let name = &group.name;
    if let Some(refresh) = refresh {
        problems.push(format!(
            "an instance refresh ({refresh}) is in progress on {name}: wait for it to finish or cancel it (aws autoscaling cancel-instance-refresh --auto-scaling-group-name {name})"
        ));
    }
    let configured: BTreeSet<&str> = env.target_group_arns.iter().map(String::as_str).collect();
    let attached: BTreeSet<&str> = group.target_group_arns.iter().map(String::as_str).collect();
    if configured != attached {
        let list = |set: &BTreeSet<&str>| if set.is_empty() { "none".to_string() } else { set.iter().copied().collect::<Vec<_>>().join(", ") };
        problems.push(format!(
            "environments.{environment}.target_group_arns ({}) differ from the target groups attached to {name} ({}): health would be checked in the wrong ones; make them the same",
            list(&configured),
            list(&attached)
        ));
    }
    if checks == Checks::InPlace {
        return problems;
    }
    for process in NEEDED_BY_ROLLOUT {
        if group.suspended_processes.iter().any(|p| p == process) && !ours.iter().any(|p| p == process) {
            problems.push(format!(
                "{process} is suspended on {name} by someone other than stepdeploy, so new instances would never {}: resume it (aws autoscaling resume-processes --auto-scaling-group-name {name} --scaling-processes {process}) or deploy in place",
                if *process == "Launch" { "launch" } else { "join the target groups" }
            ));
        }
    }
    let features = &group.features;
    if let Some(configuration) = &features.launch_configuration {
        problems.push(format!(
            "{name} uses the launch configuration {configuration}; stepdeploy deploys launch template versions: move the group to a launch template"
        ));
    }
    if features.mixed_instances_policy {
        problems.push(format!(
            "{name} has a mixed instances policy: a rollout would write it back as a plain launch template, dropping its overrides and Spot split; not supported yet"
        ));
    }
    if let Some(kind) = features.desired_capacity_type.as_deref().filter(|k| *k != "units") {
        problems.push(format!("{name} counts desired capacity in {kind}, not instances: set DesiredCapacityType to units"));
    }
    if features.warm_pool {
        problems.push(format!(
            "{name} has a warm pool, whose instances of the old version would come back on scale-out: delete it (aws autoscaling delete-warm-pool --auto-scaling-group-name {name})"
        ));
    }
    if let (Some(configured), Some(running)) = (env.launch_template.as_deref(), group.launch_template.as_ref())
        && !same_template(&LaunchTemplateRef::from_config(configured), running)
    {
        let running_name = running.name.as_deref().or(running.id.as_deref()).unwrap_or("another template");
        problems.push(format!(
            "environments.{environment}.launch_template is {configured}, but {name} uses {running_name}: point the config (or the group) at the same template"
        ));
    }
    problems
}

fn same_template(configured: &LaunchTemplateRef, running: &LaunchTemplateRef) -> bool {
    match (&configured.id, &configured.name) {
        (Some(id), _) => running.id.as_deref() == Some(id.as_str()),
        (None, Some(name)) => running.name.as_deref() == Some(name.as_str()),
        (None, None) => true,
    }
}

/// The step error for a refused group: every problem, and that nothing was changed.
pub fn refused(group: &str, problems: &[String]) -> StepError {
    StepError {
        name: errors::PREFLIGHT_FAILED,
        message: format!("{group} can't be deployed as it is (nothing was changed): {}", problems.join("; ")),
    }
}

/// How many instances a rollout of a group of `desired` (`live` running) launches beyond those
/// running, at most.
pub fn surge_instances(desired: u32, live: u32, strategy: Strategy, policy: &Policy) -> u32 {
    strategy_bounds(strategy, policy, desired).max_total.saturating_sub(live)
}

/// Whether a rollout's surge of `instance_type` fits in the account's On-Demand vCPU quota, as a
/// problem (with what to do) when it doesn't.
pub async fn quota_problem(
    account: &dyn VcpuQuota,
    snapshot: &GroupSnapshot,
    strategy: Strategy,
    policy: &Policy,
    instance_type: &str,
) -> Result<Option<String>, StepError> {
    let live = snapshot.instances.iter().filter(|i| i.lifecycle.is_live()).count() as u32;
    let surge = surge_instances(snapshot.settings.desired_capacity, live, strategy, policy);
    let fit = surge_fit(account, instance_type, surge).await?;
    Ok(fit.fix().map(|fix| format!("{}: {fix}", fit.describe(surge, instance_type))))
}
