//! Pure rollout planners: snapshot + rollout state + time → the next decision.
//!
//! A planner never sleeps, loops or calls AWS. The state machine calls a
//! handler, the handler reads a [`GroupSnapshot`], calls [`plan`], applies
//! the [`Action`]s and returns the [`Outcome`] (Wait, Done or Failed).
//!
//! Capacity rules (the same as ECS's min/max healthy percent):
//! - `min_healthy` = ceil(D × min%), `max_total` = floor(D × max%), D being
//!   the desired capacity when the rollout began (Standby instances are
//!   outside it, as on AWS, and are left alone).
//! - When rounding leaves no room to replace anything (`max_total <=
//!   min_healthy`), a batch of one is made possible: the ceiling rises by one
//!   if the policy allows any surge, otherwise the floor drops by one.
//! - Old instances are terminated (with decrement) only while healthy
//!   capacity stays at or above `min_healthy`; new instances are launched by
//!   raising desired capacity, never above `max_total`.
//! - A new-version instance is never terminated by the planner.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{GroupSnapshot, Instance, Lifecycle, Target, Timestamp};

/// The rollout policy, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// 0..=100.
    pub min_healthy_percent: u32,
    /// 100..=200.
    pub max_healthy_percent: u32,
    /// Replace at most this many instances at a time (at least 1).
    pub batch_size: Option<u32>,
}

/// A policy value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {value} is not allowed; expected {expected}")]
pub struct PolicyError {
    /// The field's name.
    pub field: &'static str,
    /// The value given.
    pub value: i64,
    /// What is allowed.
    pub expected: &'static str,
}

impl Policy {
    /// Checks ranges; the fields are named as in the config and execution input.
    pub fn new(min_healthy_percent: i64, max_healthy_percent: i64, batch_size: Option<i64>) -> Result<Policy, PolicyError> {
        if !(0..=100).contains(&min_healthy_percent) {
            return Err(PolicyError { field: "min_healthy_percent", value: min_healthy_percent, expected: "0..=100" });
        }
        if !(100..=200).contains(&max_healthy_percent) {
            return Err(PolicyError { field: "max_healthy_percent", value: max_healthy_percent, expected: "100..=200" });
        }
        if min_healthy_percent == 100 && max_healthy_percent == 100 {
            return Err(PolicyError {
                field: "max_healthy_percent",
                value: 100,
                expected: "above 100 when min_healthy_percent is 100 (otherwise nothing can be replaced)",
            });
        }
        let batch_size = match batch_size {
            None => None,
            Some(b) if (1..=i64::from(u32::MAX)).contains(&b) => Some(b as u32),
            Some(b) => {
                return Err(PolicyError { field: "batch_size", value: b, expected: "at least 1" });
            }
        };
        Ok(Policy { min_healthy_percent: min_healthy_percent as u32, max_healthy_percent: max_healthy_percent as u32, batch_size })
    }

    /// The capacity bounds for a rollout of `desired` live instances.
    pub fn bounds(&self, desired: u32) -> Bounds {
        if desired == 0 {
            return Bounds { min_healthy: 0, max_total: 0, wave: 1 };
        }
        let d = u64::from(desired);
        let mut min_healthy = (d * u64::from(self.min_healthy_percent)).div_ceil(100) as u32;
        let mut max_total = ((d * u64::from(self.max_healthy_percent)) / 100).max(d) as u32;
        if max_total <= min_healthy {
            if self.max_healthy_percent > 100 {
                max_total = min_healthy + 1;
            } else {
                min_healthy = max_total - 1;
            }
        }
        let wave = (max_total - min_healthy).min(self.batch_size.unwrap_or(u32::MAX)).max(1);
        Bounds { min_healthy, max_total, wave }
    }

    /// How many replacement waves the policy forces for `desired` instances.
    pub fn waves(&self, desired: u32) -> u32 {
        desired.div_ceil(self.bounds(desired).wave)
    }
}

/// Capacity bounds for one rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Healthy capacity floor.
    pub min_healthy: u32,
    /// Live instance ceiling.
    pub max_total: u32,
    /// Instances replaced per wave.
    pub wave: u32,
}

/// How instances are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Waves within the policy's bounds (serial deploy, rollback).
    Rolling,
    /// Surge a whole new fleet, then drop the old one at once (full deploy).
    AllAtOnce,
}

/// The group as it was before the rollout: what rollback restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Original {
    /// Desired capacity.
    pub desired_capacity: u32,
    /// Minimum size.
    pub min_size: u32,
    /// Maximum size.
    pub max_size: u32,
    /// The version the group pointed at, and its AMI.
    pub target: Option<Target>,
    /// Instances in service then.
    pub instance_ids: Vec<String>,
}

/// Everything a rollout carries from one reconcile step to the next.
///
/// The state machine passes it through its payload; the planner is a pure
/// function of it, a snapshot and the time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    /// Where the group goes.
    pub target: Target,
    /// Where it came from.
    pub original: Original,
    /// Rolling or all at once.
    pub strategy: Strategy,
    /// Capacity policy.
    pub policy: Policy,
    /// Target groups an instance must be healthy in.
    pub target_group_arns: Vec<String>,
    /// Instances counted as on-target whatever their AMI (rollback keeps the originals).
    pub keep_instance_ids: BTreeSet<String>,
    /// When the rollout began.
    pub started_at: Timestamp,
    /// When it fails if not done.
    pub deadline: Timestamp,
    /// A new instance not healthy this long after launch fails the rollout.
    pub instance_timeout_seconds: u64,
    /// A new instance must stay healthy this long before it counts.
    pub warmup_seconds: u64,
    /// The wait between steps.
    pub poll_seconds: u64,
    /// First time each instance was seen passing every check (for warm-up).
    pub healthy_since: BTreeMap<String, Timestamp>,
}

/// Timing settings of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Whole-rollout deadline, from the start.
    pub rollout_timeout_seconds: u64,
    /// Per-instance health deadline, from launch.
    pub instance_timeout_seconds: u64,
    /// Warm-up after passing health checks.
    pub warmup_seconds: u64,
    /// Wait between reconcile steps.
    pub poll_seconds: u64,
}

/// What a rollout is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSpec {
    /// The version to roll out.
    pub target: Target,
    /// The version the group runs now, for rollback (`None`: unknown).
    pub previous: Option<Target>,
    /// Rolling or all at once.
    pub strategy: Strategy,
    /// Capacity policy.
    pub policy: Policy,
    /// Target groups an instance must be healthy in.
    pub target_group_arns: Vec<String>,
    /// Deadlines and poll interval.
    pub timing: Timing,
}

impl RolloutState {
    /// A rollout of `snapshot`'s group as `spec` says, starting `now`.
    pub fn begin(snapshot: &GroupSnapshot, spec: RolloutSpec, now: Timestamp) -> RolloutState {
        RolloutState {
            target: spec.target,
            original: Original {
                desired_capacity: snapshot.desired_capacity,
                min_size: snapshot.min_size,
                max_size: snapshot.max_size,
                target: spec.previous,
                instance_ids: snapshot.instances.iter().filter(|i| i.lifecycle.is_live()).map(|i| i.id.clone()).collect(),
            },
            strategy: spec.strategy,
            policy: spec.policy,
            target_group_arns: spec.target_group_arns,
            keep_instance_ids: BTreeSet::new(),
            started_at: now,
            deadline: now.saturating_add(spec.timing.rollout_timeout_seconds as i64),
            instance_timeout_seconds: spec.timing.instance_timeout_seconds,
            warmup_seconds: spec.timing.warmup_seconds,
            poll_seconds: spec.timing.poll_seconds,
            healthy_since: BTreeMap::new(),
        }
    }

    /// The rollout that undoes this one: back to the original version and capacity.
    ///
    /// `None` when the original version is unknown (nothing to roll back to).
    pub fn rollback(&self, now: Timestamp, timeout_seconds: u64) -> Option<RolloutState> {
        let target = self.original.target.clone()?;
        Some(RolloutState {
            target,
            original: Original { target: Some(self.target.clone()), ..self.original.clone() },
            strategy: Strategy::Rolling,
            keep_instance_ids: self.original.instance_ids.iter().cloned().collect(),
            started_at: now,
            deadline: now.saturating_add(timeout_seconds as i64),
            healthy_since: BTreeMap::new(),
            ..self.clone()
        })
    }

    fn is_on_target(&self, instance: &Instance) -> bool {
        self.keep_instance_ids.contains(&instance.id) || self.target.matches(instance)
    }

    fn is_original(&self, id: &str) -> bool {
        self.original.instance_ids.iter().any(|o| o == id)
    }
}

/// One change to apply, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Point the group at this launch template version.
    SetLaunchTemplateVersion {
        /// The version number.
        version: String,
    },
    /// Change the group's size bounds (before terminations and capacity changes that need it).
    SetSizeBounds {
        /// New minimum.
        min_size: u32,
        /// New maximum.
        max_size: u32,
    },
    /// Terminate these instances, decrementing desired capacity by one each.
    Terminate {
        /// Instance ids.
        instance_ids: Vec<String>,
    },
    /// Set desired capacity (absolute, so a retry is harmless).
    SetDesiredCapacity {
        /// The capacity.
        desired_capacity: u32,
    },
}

/// Why a rollout failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Failure {
    /// The whole rollout ran past its deadline.
    DeadlinePassed {
        /// Seconds since the start.
        elapsed_seconds: i64,
        /// Instances still not healthy, with why.
        unhealthy: Vec<(String, String)>,
    },
    /// New instances stayed unhealthy past the health timeout.
    NewInstancesUnhealthy {
        /// Instance ids, with why.
        unhealthy: Vec<(String, String)>,
        /// The health timeout.
        timeout_seconds: u64,
    },
}

impl Failure {
    /// A one-line cause for operators.
    pub fn describe(&self) -> String {
        let list = |u: &[(String, String)]| u.iter().map(|(id, why)| format!("{id} ({why})")).collect::<Vec<_>>().join(", ");
        match self {
            Failure::DeadlinePassed { elapsed_seconds, unhealthy } => {
                format!("the rollout did not finish within its deadline ({elapsed_seconds} s elapsed); not healthy: {}", list(unhealthy))
            }
            Failure::NewInstancesUnhealthy { unhealthy, timeout_seconds } => {
                format!("new instances were not healthy {timeout_seconds} s after launch: {}", list(unhealthy))
            }
        }
    }
}

/// What the state machine does next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "next", rename_all = "snake_case")]
pub enum Outcome {
    /// Apply the actions, wait, and call again.
    Wait {
        /// Seconds to wait.
        seconds: u64,
    },
    /// Every live instance is on target and healthy; bounds restored.
    Done,
    /// The rollout cannot finish; roll back.
    Failed(Failure),
}

/// Counts for progress reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Live instances on the target version.
    pub new: u32,
    /// Of those, healthy.
    pub new_healthy: u32,
    /// Live instances on another version.
    pub old: u32,
    /// Of those, healthy.
    pub old_healthy: u32,
    /// Instances in Standby (left alone).
    pub standby: u32,
    /// The rollout's goal: live instances at the end.
    pub goal: u32,
    /// Healthy floor.
    pub min_healthy: u32,
    /// Live ceiling.
    pub max_total: u32,
}

impl Progress {
    /// Healthy instances, both versions.
    pub fn healthy(&self) -> u32 {
        self.new_healthy + self.old_healthy
    }
}

/// One instance's health verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceHealth {
    /// Instance id.
    pub id: String,
    /// On the target version.
    pub on_target: bool,
    /// Counts as healthy capacity.
    pub healthy: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

/// A planner decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Changes to apply, in order.
    pub actions: Vec<Action>,
    /// What comes next.
    pub outcome: Outcome,
    /// Counts before the actions.
    pub progress: Progress,
    /// Per-instance verdicts (live instances only).
    pub health: Vec<InstanceHealth>,
    /// The updated warm-up memo, to store back in the rollout state.
    pub healthy_since: BTreeMap<String, Timestamp>,
}

/// Checks one instance: InService, Auto Scaling healthy, healthy in every
/// target group, and warmed up. Returns the verdict and, if it passes the
/// checks, since when.
pub fn assess(
    instance: &Instance,
    target_group_arns: &[String],
    since: Option<Timestamp>,
    warmup_seconds: u64,
    skip_warmup: bool,
    now: Timestamp,
) -> (bool, Option<String>, Option<Timestamp>) {
    if instance.lifecycle != Lifecycle::InService {
        return (false, Some(format!("lifecycle {}", String::from(instance.lifecycle.clone()))), None);
    }
    if !instance.asg_healthy {
        return (false, Some("Auto Scaling reports it Unhealthy".into()), None);
    }
    for arn in target_group_arns {
        match instance.target_health.get(arn) {
            Some(crate::model::TargetState::Healthy) => {}
            Some(state) => {
                return (false, Some(format!("{:?} in target group {}", state, short_arn(arn)).to_lowercase()), None);
            }
            None => {
                return (false, Some(format!("not registered in target group {}", short_arn(arn))), None);
            }
        }
    }
    let since = since.unwrap_or(now);
    let warm_for = now.saturating_sub(since);
    if skip_warmup || warm_for >= warmup_seconds as i64 {
        (true, None, Some(since))
    } else {
        (false, Some(format!("warming up ({warm_for} s of {warmup_seconds} s)")), Some(since))
    }
}

fn short_arn(arn: &str) -> &str {
    arn.split(":targetgroup/").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or(arn)
}

/// Decides the next step of a rollout.
pub fn plan(snapshot: &GroupSnapshot, state: &RolloutState, now: Timestamp) -> Plan {
    let standby = snapshot.instances.iter().filter(|i| i.lifecycle == Lifecycle::Standby).count() as u32;
    // Standby instances are outside desired capacity (as on AWS): left alone, not counted.
    let goal = state.original.desired_capacity;
    let bounds = match state.strategy {
        Strategy::Rolling => state.policy.bounds(goal),
        Strategy::AllAtOnce => Bounds { min_healthy: goal, max_total: goal.saturating_mul(2), wave: goal.max(1) },
    };

    let mut healthy_since = BTreeMap::new();
    let mut health = Vec::new();
    for instance in snapshot.instances.iter().filter(|i| i.lifecycle.is_live()) {
        let (healthy, reason, since) = assess(
            instance,
            &state.target_group_arns,
            state.healthy_since.get(&instance.id).copied(),
            state.warmup_seconds,
            state.is_original(&instance.id),
            now,
        );
        if let Some(since) = since {
            healthy_since.insert(instance.id.clone(), since);
        }
        health.push(InstanceHealth { id: instance.id.clone(), on_target: state.is_on_target(instance), healthy, reason });
    }
    let count = |on_target: bool, healthy: Option<bool>| {
        health.iter().filter(|h| h.on_target == on_target && healthy.is_none_or(|want| h.healthy == want)).count() as u32
    };
    let progress = Progress {
        new: count(true, None),
        new_healthy: count(true, Some(true)),
        old: count(false, None),
        old_healthy: count(false, Some(true)),
        standby,
        goal,
        min_healthy: bounds.min_healthy,
        max_total: bounds.max_total,
    };
    let finish =
        |actions: Vec<Action>, outcome: Outcome| Plan { actions, outcome, progress, health: health.clone(), healthy_since: healthy_since.clone() };
    let unhealthy_list = |only_new: bool| -> Vec<(String, String)> {
        health.iter().filter(|h| !h.healthy && (!only_new || h.on_target)).map(|h| (h.id.clone(), h.reason.clone().unwrap_or_default())).collect()
    };

    let mut actions = Vec::new();
    let version = &state.target.launch_template_version;
    if snapshot.launch_template.as_ref().and_then(|lt| lt.version.as_deref()) != Some(version.as_str()) {
        actions.push(Action::SetLaunchTemplateVersion { version: version.clone() });
    }

    if progress.old == 0 && progress.new_healthy >= goal {
        // Done: give back the original bounds, widened only as far as the current capacity needs.
        let desired = snapshot.desired_capacity;
        let min_size = state.original.min_size.min(desired);
        let max_size = state.original.max_size.max(desired);
        if (min_size, max_size) != (snapshot.min_size, snapshot.max_size) {
            actions.push(Action::SetSizeBounds { min_size, max_size });
        }
        return finish(actions, Outcome::Done);
    }

    if now >= state.deadline {
        let failure = Failure::DeadlinePassed { elapsed_seconds: now - state.started_at, unhealthy: unhealthy_list(false) };
        return finish(Vec::new(), Outcome::Failed(failure));
    }
    let instance_timeout = state.instance_timeout_seconds as i64;
    let stuck: Vec<(String, String)> = snapshot
        .instances
        .iter()
        .filter(|i| i.lifecycle.is_live() && state.is_on_target(i) && !state.keep_instance_ids.contains(&i.id))
        .filter(|i| i.launched_at.is_some_and(|at| now - at > instance_timeout))
        .filter_map(|i| health.iter().find(|h| h.id == i.id && !h.healthy))
        .map(|h| (h.id.clone(), h.reason.clone().unwrap_or_default()))
        .collect();
    if !stuck.is_empty() {
        let failure = Failure::NewInstancesUnhealthy { unhealthy: stuck, timeout_seconds: state.instance_timeout_seconds };
        return finish(Vec::new(), Outcome::Failed(failure));
    }

    // Old instances in termination order: unhealthy first, protected last, oldest first.
    let mut old: Vec<(&Instance, bool)> = snapshot
        .instances
        .iter()
        .filter(|i| i.lifecycle.is_live() && !state.is_on_target(i))
        .map(|i| (i, health.iter().any(|h| h.id == i.id && h.healthy)))
        .collect();
    old.sort_by_key(|(i, healthy)| (*healthy, i.protected_from_scale_in, i.launched_at, i.id.clone()));

    // A full deploy replaces everything at once: batch size is a rolling setting.
    let batch = match state.strategy {
        Strategy::Rolling => state.policy.batch_size.unwrap_or(u32::MAX),
        Strategy::AllAtOnce => u32::MAX,
    };
    let terminate_count = match state.strategy {
        Strategy::Rolling => {
            let spare_healthy = progress.healthy().saturating_sub(bounds.min_healthy);
            let old_unhealthy = progress.old - progress.old_healthy;
            (old_unhealthy + spare_healthy.min(progress.old_healthy)).min(batch)
        }
        Strategy::AllAtOnce if progress.new_healthy >= goal => progress.old,
        Strategy::AllAtOnce => 0,
    };
    let to_terminate: Vec<String> = old.iter().take(terminate_count as usize).map(|(i, _)| i.id.clone()).collect();

    let live_after = progress.new + progress.old - to_terminate.len() as u32;
    let in_flight = progress.new - progress.new_healthy;
    let launch = goal.saturating_sub(progress.new).min(bounds.max_total.saturating_sub(live_after)).min(batch.saturating_sub(in_flight));
    let desired = live_after + launch;

    let desired_after_terminations = snapshot.desired_capacity.saturating_sub(to_terminate.len() as u32);
    let min_size = snapshot.min_size.min(desired_after_terminations).min(desired);
    let max_size = snapshot.max_size.max(desired);
    if (min_size, max_size) != (snapshot.min_size, snapshot.max_size) {
        actions.push(Action::SetSizeBounds { min_size, max_size });
    }
    if !to_terminate.is_empty() {
        actions.push(Action::Terminate { instance_ids: to_terminate });
    }
    if desired != desired_after_terminations {
        actions.push(Action::SetDesiredCapacity { desired_capacity: desired });
    }
    // Poll again when the first instance in warm-up is due, if that is sooner than the poll interval.
    let warm_due = health
        .iter()
        .filter(|h| !h.healthy)
        .filter_map(|h| healthy_since.get(&h.id))
        .map(|since| since.saturating_add(state.warmup_seconds as i64).saturating_sub(now))
        .filter(|due| *due > 0)
        .min();
    let seconds = warm_due.map_or(state.poll_seconds, |due| (due as u64).clamp(1, state.poll_seconds.max(1)));
    finish(actions, Outcome::Wait { seconds })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(min: i64, max: i64) -> Policy {
        Policy::new(min, max, None).unwrap()
    }

    #[test]
    fn bounds_follow_ecs_rounding() {
        // (min%, max%, desired) -> (min_healthy, max_total, wave)
        let cases = [
            (100, 200, 4, (4, 8, 4)),
            (90, 110, 10, (9, 11, 2)),
            (50, 100, 4, (2, 4, 2)),
            (100, 150, 1, (1, 2, 1)),
            (90, 110, 1, (1, 2, 1)),
            (90, 100, 1, (0, 1, 1)),
            (0, 100, 3, (0, 3, 3)),
            (100, 101, 100, (100, 101, 1)),
        ];
        for (min, max, d, (floor, ceiling, wave)) in cases {
            let b = policy(min, max).bounds(d);
            assert_eq!((b.min_healthy, b.max_total, b.wave), (floor, ceiling, wave), "policy ({min}, {max}) at {d}");
        }
    }

    #[test]
    fn batch_size_caps_the_wave_and_is_never_zero() {
        let p = Policy::new(0, 200, Some(3)).unwrap();
        assert_eq!(p.bounds(10).wave, 3);
        assert_eq!(p.waves(10), 4);
        assert!(Policy::new(0, 200, Some(0)).is_err());
    }

    #[test]
    fn out_of_range_policy_names_the_field_and_value() {
        let e = Policy::new(120, 200, None).unwrap_err();
        assert_eq!(e.to_string(), "min_healthy_percent: 120 is not allowed; expected 0..=100");
        let e = Policy::new(100, 250, None).unwrap_err();
        assert_eq!(e.field, "max_healthy_percent");
        assert!(Policy::new(100, 100, None).is_err());
    }
}
