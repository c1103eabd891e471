//! The rollout's state, carried between reconcile steps: where it is
//! going, what it came from, and its deadlines.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::policy::Policy;
use crate::model::{GroupSnapshot, Instance, Target, Timestamp, VersionMatch};

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
    /// This rollout undoes another: capacity beyond the goal is the other's surge, not an operator's.
    #[serde(default)]
    pub undoing: bool,
    /// Desired capacity as the last step left it ([`super::Plan::desired_after`]): a snapshot that
    /// shows another was changed by someone else.
    #[serde(default)]
    pub expected_desired: Option<u32>,
    /// Checkpoints still ahead, as the number of target-version instances to pause at
    /// (ascending, each below the goal), with the percent it came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoints: Vec<Checkpoint>,
    /// Move healthy old instances to Standby instead of terminating them, so that a rollback
    /// brings them back in the time of a health check. Cleared when the bake ends: the planner
    /// then terminates them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_old_in_standby: bool,
    /// Reconcile steps taken so far: the planner looks again sooner than the poll interval only
    /// while they leave the rest within `looks_budget` ([`super::cadence::may_look_sooner`]).
    #[serde(default)]
    pub looks: u64,
    /// The most reconcile steps the rollout may take: its share of the execution's history.
    /// (A state from before it was kept reads 0: only looks at the interval.)
    #[serde(default)]
    pub looks_budget: u64,
    /// Instances this rollout took out of service in the last minute, which a late read may
    /// still list in service ([`super::leaving`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaving: Vec<Left>,
}

/// Instances one step took out of service the same way, and when (one id list per step and
/// way keeps the memo at about the size of the ids themselves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// When the calls were made.
    pub at: Timestamp,
    /// To Standby (EnterStandby) rather than out of the group (a termination).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub to_standby: bool,
    /// The instances.
    pub instance_ids: Vec<String>,
}

/// A pause in the rollout: at `instances` healthy on the target version, `percent` of the goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The configured share of the goal.
    pub percent: u32,
    /// Instances on the target version at the pause: the share rounded up, at least one.
    pub instances: u32,
}

impl Checkpoint {
    /// The checkpoints of `percents` for a group of `goal`: each its share rounded up (at least
    /// one), dropping any that would not pause before the end or at more than the one before.
    pub fn for_goal(percents: &[u32], goal: u32) -> Vec<Checkpoint> {
        let mut out: Vec<Checkpoint> = Vec::new();
        for &percent in percents {
            let instances = (u64::from(goal) * u64::from(percent)).div_ceil(100).max(1) as u32;
            if instances < goal && out.last().is_none_or(|last| instances > last.instances) {
                out.push(Checkpoint { percent, instances });
            }
        }
        out
    }
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
    /// The longest wait between reconcile steps.
    pub poll_seconds: u64,
    /// The most reconcile steps the rollout (and its rollback, each) may take
    /// ([`crate::budget::rollout_looks`]).
    pub looks_budget: u64,
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
    /// Percents of the group to pause at (see [`Checkpoint::for_goal`]).
    pub checkpoints: Vec<u32>,
    /// Keep replaced healthy instances in Standby until the bake ends (instant rollback).
    pub instant_rollback: bool,
}

impl RolloutState {
    /// A rollout of `snapshot`'s group as `spec` says, starting `now`.
    pub fn begin(snapshot: &GroupSnapshot, spec: RolloutSpec, now: Timestamp) -> RolloutState {
        RolloutState {
            target: spec.target,
            original: Original {
                desired_capacity: snapshot.settings.desired_capacity,
                min_size: snapshot.settings.min_size,
                max_size: snapshot.settings.max_size,
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
            undoing: false,
            expected_desired: None,
            checkpoints: Checkpoint::for_goal(&spec.checkpoints, snapshot.settings.desired_capacity),
            keep_old_in_standby: spec.instant_rollback,
            looks: 0,
            looks_budget: spec.timing.looks_budget,
            leaving: Vec::new(),
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
            undoing: true,
            expected_desired: None,
            // A rollback never pauses: it is what a pause would be waiting to decide.
            checkpoints: Vec::new(),
            // A rollback brings the originals back from Standby and terminates what it replaces.
            keep_old_in_standby: false,
            // The rollback's looks are budgeted on its own deadline.
            looks: 0,
            // healthy_since is kept: warm-up is a fact about an instance, not about the direction.
            // The rollout's new instances that warmed up still serve, and terminating them as
            // "not healthy" would take their capacity below the floor before the originals are back.
            ..self.clone()
        })
    }

    /// The instance's version relative to the target; the instances a rollback keeps count as on target.
    pub(super) fn version_of(&self, instance: &Instance) -> VersionMatch {
        if self.keep_instance_ids.contains(&instance.id) { VersionMatch::Target } else { self.target.compare(instance) }
    }

    /// Whether the instance was live in the group when the rollout began.
    pub fn is_original(&self, id: &str) -> bool {
        self.original.instance_ids.iter().any(|o| o == id)
    }
}
