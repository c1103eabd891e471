//! `stepdeploy doctor ENV`: a read-only check of an account against what a deploy needs, before
//! anything changes. Each check passes or fails with what to do; none calls anything that
//! changes the account. (The stack's state machines are checked by the CLI, which finds them.)

mod check;
mod readiness;

pub use check::Check;
use check::{fail, pass};

use crate::config::Environment;
use crate::model::LaunchTemplateRef;
use crate::steps::preflight::{Checks, group_problems};
use crate::steps::{DeployAccount, LockRecord, lock_parameter};

/// Every check for `environment`. `pushed` is the environment as the steps will read it (its
/// SSM parameter), `local` as the config file has it; the other checks use `pushed`, else `local`.
pub async fn checks(
    account: &dyn DeployAccount,
    deployment: &str,
    environment: &str,
    pushed: Option<&Environment>,
    local: Option<&Environment>,
) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(match (pushed, local) {
        (None, _) => fail(
            "config pushed",
            format!("no SSM parameter /stepdeploy/{deployment}/{environment}: the steps can't read the environment"),
            format!("stepdeploy config push {environment}"),
        ),
        (Some(p), Some(l)) if p != l => fail(
            "config pushed",
            "the pushed environment differs from the config file".into(),
            format!("stepdeploy config push {environment} (after checking the difference is meant)"),
        ),
        (Some(_), Some(_)) => pass("config pushed", "the pushed environment matches the config file".into()),
        (Some(_), None) => pass("config pushed", "pushed (no local config file to compare with)".into()),
    });
    let Some(env) = pushed.or(local) else { return out };
    let group = &env.auto_scaling_group;
    let described = match account.describe_group(group).await {
        Ok(description) => {
            out.push(pass(
                "Auto Scaling group",
                format!("{group}: {} instances, desired {}", description.instances.len(), description.settings.desired_capacity),
            ));
            Some(description)
        }
        Err(e) => {
            out.push(fail(
                "Auto Scaling group",
                format!("{group}: {e}"),
                "set auto_scaling_group to the web group's name, then push the config".into(),
            ));
            None
        }
    };
    if let Some(settings) = described.as_ref().map(|d| &d.settings) {
        let refresh = account.active_instance_refresh(group).await.ok().flatten();
        let problems = group_problems(settings, environment, env, Checks::Rollout, &[], refresh.as_deref());
        out.push(if problems.is_empty() {
            pass("group fit for a rollout", "launch template, target groups, processes and instance refresh as a rollout needs them".into())
        } else {
            fail("group fit for a rollout", problems.join("; "), "each problem says what to change; prepare refuses the deploy until then".into())
        });
    }
    out.push(match &env.launch_template {
        None => fail("launch template", "none configured".into(), "set launch_template (lt-... or its name)".into()),
        Some(name) => match account.describe_versions(&LaunchTemplateRef::from_config(name), &["$Default".to_string()]).await {
            Ok(versions) => match versions.first() {
                Some(v) if v.image_id.is_some() => {
                    pass("launch template", format!("{name}: default version {} runs {}", v.version, v.image_id.as_deref().unwrap_or("")))
                }
                _ => fail("launch template", format!("{name}: its default version names no AMI"), "bake an image (stepdeploy bake)".into()),
            },
            Err(e) => fail("launch template", format!("{name}: {e}"), "set launch_template to the group's launch template".into()),
        },
    });
    for arn in &env.target_group_arns {
        out.push(match account.describe_target_health(arn).await {
            Ok(targets) => {
                let healthy = targets.iter().filter(|t| t.state == crate::model::TargetState::Healthy).count();
                pass("target group", format!("{arn}: {healthy} of {} targets healthy", targets.len()))
            }
            Err(e) => fail("target group", format!("{arn}: {e}"), "fix target_group_arns, then push the config".into()),
        });
    }
    if let Some(listener) = &env.listener_arn {
        out.push(match account.describe_rules(listener).await {
            Ok(rules) => pass("listener", format!("{listener}: {} rules", rules.len())),
            Err(e) => fail("listener", format!("{listener}: {e}"), "fix listener_arn (the ALB listener that serves the site)".into()),
        });
    }
    out.push(readiness::tags(account, deployment, env, described.as_ref()).await);
    let template = match &described {
        Some(described) => Some(readiness::group_template(account, described).await),
        None => None,
    };
    if let (Some(described), Some(template)) = (&described, &template) {
        out.push(readiness::ssm(account, env, described, template).await);
    }
    out.extend(readiness::timing(account, env).await);
    if let (Some(described), Some(template)) = (&described, &template) {
        out.push(readiness::vcpu_quota(account, env, described, template).await);
    }
    if !env.alarms.is_empty() {
        out.push(match account.describe_alarms(&env.alarms).await {
            Ok(states) => {
                let missing: Vec<&String> = env.alarms.iter().filter(|a| !states.iter().any(|s| &s.name == *a)).collect();
                let firing: Vec<&str> = states.iter().filter(|s| s.firing()).map(|s| s.name.as_str()).collect();
                if !missing.is_empty() {
                    fail("alarms", format!("no CloudWatch alarm named {missing:?}"), "create them, or take them out of alarms".into())
                } else if !firing.is_empty() {
                    fail(
                        "alarms",
                        format!("in ALARM now: {}", firing.join(", ")),
                        "a deploy would be refused: find out why, or deploy a fix with --ignore-alarms".into(),
                    )
                } else {
                    pass("alarms", format!("{} alarm(s), all OK", states.len()))
                }
            }
            Err(e) => fail("alarms", e.to_string(), "the operator needs cloudwatch:DescribeAlarms".into()),
        });
    }
    let lock = lock_parameter(deployment, environment);
    out.push(match account.get_parameter(&lock).await {
        Ok(None) => pass("lock", "free".into()),
        Ok(Some(held)) => {
            let holder = LockRecord::parse(&held.value).execution.unwrap_or_else(|| "an unknown execution".into());
            fail(
                "lock",
                format!("held by {holder}"),
                format!("wait for it (stepdeploy status {environment}); if it ended without releasing it, break it with break_stale_lock"),
            )
        }
        Err(e) => fail("lock", format!("{lock}: {e}"), "the operator needs ssm:GetParameter on /stepdeploy/*".into()),
    });
    out
}

/// The report as a table: one line a check, with the fix under a failed one.
pub fn to_text(checks: &[Check]) -> String {
    let mut text = String::new();
    for check in checks {
        text.push_str(&format!("{:<5} {:<26} {}\n", if check.ok { "ok" } else { "FAIL" }, check.name, check.detail));
        if let Some(fix) = &check.fix {
            text.push_str(&format!("      {:<26} fix: {fix}\n", ""));
        }
    }
    text
}
