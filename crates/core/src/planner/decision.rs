//! What a planner decides: the actions to apply, the outcome, and the
//! counts and per-instance verdicts behind it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

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
    /// Move these healthy old instances to Standby, decrementing desired capacity: out of the
    /// target groups, still running, ready for an instant rollback.
    EnterStandby {
        /// Instance ids.
        instance_ids: Vec<String>,
    },
    /// Bring these Standby instances back into service (desired capacity rises by one each).
    ExitStandby {
        /// Instance ids.
        instance_ids: Vec<String>,
    },
    /// Terminate these Standby instances: they are outside desired capacity, so without decrement.
    TerminateStandby {
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
    /// Auto Scaling's launches keep failing (its activities say why): no instance will come.
    LaunchesFailing {
        /// Failed launch activities since the rollout began.
        failures: u32,
        /// The latest one's status message.
        message: String,
    },
    /// Auto Scaling keeps replacing instances that fail their health checks: each new one would
    /// get a fresh health timeout, so the instance deadline alone would never fire.
    HealthReplacements {
        /// Instances terminated for failing health checks since the rollout began.
        replaced: u32,
        /// The latest one's description and cause.
        latest: String,
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
            Failure::LaunchesFailing { failures, message } => {
                format!("Auto Scaling failed to launch new instances {failures} times; the latest: {message}")
            }
            Failure::HealthReplacements { replaced, latest } => {
                format!("Auto Scaling replaced {replaced} instances that failed their health checks; the latest: {latest}")
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
    /// The next checkpoint is reached: its share of instances runs the target version, healthy,
    /// and nothing is in flight. Pause until it is approved, then call again.
    Pause(super::state::Checkpoint),
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
    /// Live instances whose version nothing reports yet (just launched): never terminated, counted as in flight.
    #[serde(default)]
    pub unknown: u32,
    /// Of those, healthy.
    pub old_healthy: u32,
    /// Instances in Standby (or entering it), the rollout's own included.
    pub standby: u32,
    /// Of those, the original instances this rollout keeps in Standby for an instant rollback:
    /// counted by the ceiling.
    #[serde(default)]
    pub kept_in_standby: u32,
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
    /// Its version is not known yet (neither Auto Scaling nor EC2 says).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub version_unknown: bool,
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
    /// Desired capacity once the actions are applied: what the next snapshot shows unless
    /// someone else changed it (store it back in the rollout state).
    #[serde(default)]
    pub desired_after: u32,
}
