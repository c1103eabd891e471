//! The maintenance page: ALB fixed-response rules on the environment's listener.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::account::DeployAccount;
use super::error::StepError;
use super::record::Job;
use crate::config::Environment;
use crate::errors;
use crate::fleet::DEPLOYMENT_TAG;
use crate::ports::{FixedResponse, ListenerRule, RuleAction, RuleSpec};

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
pub async fn maintenance(account: &dyn DeployAccount, mut job: Job, mode: MaintenanceMode) -> Result<Job, StepError> {
    let mode = match mode {
        MaintenanceMode::AfterMigrationFailure if job.settings.maintenance.hold_on_migration_failure => {
            job.hold_maintenance = true;
            return Ok(job);
        }
        MaintenanceMode::AfterMigrationFailure => MaintenanceMode::Off,
        other => other,
    };
    let (listener, wanted) = maintenance_rules(&job.settings)?;
    let existing = account.describe_rules(&listener).await?;
    // Tagged with the deployment: IAM lets a deployment delete only its own rules.
    let ours = BTreeMap::from([(DEPLOYMENT_TAG.to_string(), job.deployment.clone())]);
    if mode == MaintenanceMode::On {
        for (priority, spec) in &wanted {
            match existing.iter().find(|r| r.priority == Some(*priority)) {
                Some(rule) if &rule.spec == spec => {}
                Some(rule) if looks_like_ours(rule) => {
                    account.delete_rule(&rule.arn).await?;
                    account.create_rule(&listener, *priority, spec, &ours).await?;
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
                    account.create_rule(&listener, *priority, spec, &ours).await?;
                }
            }
        }
        job.maintenance_on = true;
    } else {
        for (priority, _) in wanted.iter().rev() {
            if let Some(rule) = existing.iter().find(|r| r.priority == Some(*priority) && looks_like_ours(r)) {
                account.delete_rule(&rule.arn).await?;
            }
        }
        job.maintenance_on = false;
    }
    Ok(job)
}
