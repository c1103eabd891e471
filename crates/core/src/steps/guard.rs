//! What stops a rollout on its effect in production, not only on health checks: the
//! environment's CloudWatch alarms, read once per poll (one DescribeAlarms call, whatever the
//! fleet's size), before the deploy starts, during the rollout and during the bake.

use std::collections::BTreeMap;

use super::error::StepError;
use crate::errors;
use crate::model::Timestamp;
use crate::ports::{AlarmState, Alarms};

/// Before anything changes: every configured alarm must exist, and none may be in ALARM unless
/// `ignore_firing` (the input's `ignore_alarms`). Returns the alarms ignored, with when each
/// last changed state: each counts again once it changes state (back to OK, then ALARM again).
pub(crate) async fn check_before_start(
    account: &dyn Alarms,
    environment: &str,
    alarms: &[String],
    ignore_firing: bool,
) -> Result<BTreeMap<String, Timestamp>, StepError> {
    if alarms.is_empty() {
        return Ok(BTreeMap::new());
    }
    let states = account.describe_alarms(alarms).await?;
    let missing: Vec<String> = alarms
        .iter()
        .enumerate()
        .filter(|(_, name)| !states.iter().any(|s| &s.name == *name))
        .map(|(i, name)| format!("environments.{environment}.alarms[{i}]: {name:?}"))
        .collect();
    if !missing.is_empty() {
        return Err(StepError {
            name: errors::CONFIG_INVALID,
            message: format!(
                "no CloudWatch alarm is named {} in this account and region; nothing was changed. Create the alarm, or take it out of the config",
                missing.join(", ")
            ),
        });
    }
    let firing: Vec<&AlarmState> = states.iter().filter(|s| s.firing()).collect();
    if firing.is_empty() {
        return Ok(BTreeMap::new());
    }
    if ignore_firing {
        return Ok(firing.iter().map(|s| (s.name.clone(), s.updated_at)).collect());
    }
    Err(StepError {
        name: errors::ALARM_FIRED,
        message: format!(
            "{} before the deploy started, so it was refused and nothing was changed. Find out why first; to deploy anyway (a fix for what fires), start it with \"ignore_alarms\": true",
            describe(&firing)
        ),
    })
}

/// During the rollout or its bake: an alarm in ALARM (other than one ignored at the start that
/// hasn't changed state since) fails the step with [`errors::ALARM_FIRED`], which the state
/// machine turns into a rollback. `phase` says when, for the cause.
pub(crate) async fn check_during(
    account: &dyn Alarms,
    alarms: &[String],
    ignored: &BTreeMap<String, Timestamp>,
    phase: &str,
) -> Result<u32, StepError> {
    if alarms.is_empty() {
        return Ok(0);
    }
    let states = account.describe_alarms(alarms).await?;
    for name in alarms.iter().filter(|name| !states.iter().any(|s| &s.name == *name)) {
        // Deleted mid-deploy: it can't fire any more; say so rather than roll back for it.
        tracing::warn!(alarm = %name, "a configured alarm no longer exists; the rollout goes on without it");
    }
    let firing: Vec<&AlarmState> = states.iter().filter(|s| s.firing() && ignored.get(&s.name) != Some(&s.updated_at)).collect();
    if firing.is_empty() {
        return Ok(states.len() as u32);
    }
    Err(StepError { name: errors::ALARM_FIRED, message: format!("{} during the {phase}; rolling back", describe(&firing)) })
}

/// "alarm X is in ALARM (reason)", for each.
fn describe(firing: &[&AlarmState]) -> String {
    let each: Vec<String> = firing.iter().map(|s| format!("alarm {:?} is in ALARM ({})", s.name, s.reason.trim())).collect();
    each.join("; ")
}
