//! The records the state machines carry between steps: what every
//! workflow holds ([`Job`]), a deploy's rollout ([`Deployment`]), and the
//! SSM commands run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lock::lock_parameter;
use crate::config::{CheckpointApproval, Environment};
use crate::model::{LaunchTemplateRef, Timestamp};
use crate::planner::{InstanceHealth, Progress, RolloutState};

/// What the state machine should do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextStep {
    /// `wait`, `done`, `failed`, or `pause` (at a checkpoint).
    pub next: String,
    /// Seconds to wait before the next reconcile step.
    pub seconds: u64,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// Counts before this step's actions.
    pub progress: Progress,
    /// The live instances not (yet) counted healthy, with why (at most [`NOT_HEALTHY_SHOWN`]).
    #[serde(default)]
    pub not_healthy: Vec<InstanceHealth>,
    /// Alarms read this step, none of them firing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub alarms_ok: u32,
    /// Seconds of bake left, while baking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_remaining_seconds: Option<u64>,
    /// The checkpoint reached, when `next` is `pause`: what the pause waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointWait>,
}

/// A checkpoint the rollout pauses at: the state machine's `.waitForTaskToken` Task waits
/// `wait_seconds` (its TimeoutSecondsPath), then goes on (`auto`) or rolls back (`manual`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointWait {
    /// The configured share of the group.
    pub percent: u32,
    /// Instances on the new version, healthy, at the pause.
    pub instances: u32,
    /// Of the rollout's goal.
    pub goal: u32,
    /// How it continues.
    pub approval: CheckpointApproval,
    /// How long it waits.
    pub wait_seconds: u64,
    /// When it paused.
    pub paused_at: Timestamp,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How many not-healthy instances a step's record lists (the state payload is limited).
pub const NOT_HEALTHY_SHOWN: usize = 25;

/// What every workflow's record holds: the environment, the lock, the
/// processes suspended, the maintenance page and the commands run. The
/// stand-alone workflows (deploy-worker, maintenance, autoscaling-processes)
/// carry only this; a deploy carries it inside a [`Deployment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The deployment (tags on what the workflow creates carry it).
    #[serde(default)]
    pub deployment: String,
    /// Environment name.
    pub environment: String,
    /// The execution holding the lock.
    pub execution_id: String,
    /// The Auto Scaling group.
    pub group: String,
    /// The lock parameter's name.
    pub lock_parameter: String,
    /// Processes this workflow suspended around its work (and only these get resumed).
    pub suspended_by_us: Vec<String>,
    /// Why the workflow failed, once it has.
    pub failure: Option<Failure>,
    /// The environment's settings, as they were when the workflow began.
    pub settings: Environment,
    /// Run the worker deploy and migrations (deploys and deploy-worker).
    #[serde(default)]
    pub run_migrations: bool,
    /// The git revision, for commands that take `{revision}`.
    #[serde(default)]
    pub revision: Option<String>,
    /// The maintenance page is up (this workflow put it there).
    #[serde(default)]
    pub maintenance_on: bool,
    /// Keep the maintenance page up at the end (asked for, or migrations failed per policy).
    #[serde(default)]
    pub hold_maintenance: bool,
    /// The SSM command in progress.
    #[serde(default)]
    pub command: Option<CommandRun>,
    /// The SSM commands that finished, with their output tails.
    #[serde(default)]
    pub commands_done: Vec<CommandOutcome>,
    /// A stand-alone workflow's action: `on`/`off` (maintenance), `suspend`/`resume` (processes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The processes an autoscaling-processes workflow acts on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
    /// The group's suspended processes after an autoscaling-processes workflow acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_processes: Option<Vec<String>>,
}

impl Job {
    /// A fresh record of `environment` held by `execution_id`: nothing suspended, no page, no command.
    pub fn new(deployment: &str, environment: &str, execution_id: &str, settings: &Environment) -> Job {
        Job {
            deployment: deployment.to_string(),
            environment: environment.to_string(),
            execution_id: execution_id.to_string(),
            group: settings.auto_scaling_group.clone(),
            lock_parameter: lock_parameter(deployment, environment),
            suspended_by_us: Vec::new(),
            failure: None,
            settings: settings.clone(),
            run_migrations: false,
            revision: None,
            maintenance_on: false,
            hold_maintenance: false,
            command: None,
            commands_done: Vec::new(),
            action: None,
            processes: Vec::new(),
            suspended_processes: None,
        }
    }
}

/// The deploy record the state machine carries between steps: a [`Job`]
/// plus the rollout (its fields sit at the same JSON level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The environment, lock, processes, page and commands.
    #[serde(flatten)]
    pub job: Job,
    /// The launch template.
    pub template: LaunchTemplateRef,
    /// The rollout in progress (the rollback, once rolling back).
    pub rollout: RolloutState,
    /// Whether the rollout is now a rollback.
    pub rolling_back: bool,
    /// The last reconcile step's decision.
    pub step: Option<NextStep>,
    /// What the rollback could not do, latest last (at most [`ROLLBACK_PROBLEMS_KEPT`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback_problems: Vec<String>,
    /// Alarms in ALARM at the start that the input said to ignore, with when each last changed
    /// state: one counts again once it changes state.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alarms_ignored: BTreeMap<String, Timestamp>,
    /// When the bake ends: set when the last instance is replaced and healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_until: Option<Timestamp>,
}

/// How many of a rollback's failed calls its record keeps (the state payload is limited).
pub const ROLLBACK_PROBLEMS_KEPT: usize = 5;

/// An SSM command run by a deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRun {
    /// `migrate` or `worker_deploy`.
    pub name: String,
    /// SSM command id (of the first chunk of instances).
    pub command_id: String,
    /// The command ids of the further chunks, in order: SendCommand takes at most
    /// [`SEND_COMMAND_MAX_IDS`](super::command::SEND_COMMAND_MAX_IDS) instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_command_ids: Vec<String>,
    /// Where it runs.
    pub instance_ids: Vec<String>,
    /// When it is given up on.
    pub deadline: Timestamp,
    /// `wait` or `done`.
    pub next: String,
    /// Seconds to wait before polling again.
    pub seconds: u64,
    /// When it was sent: long commands are polled less often ([`crate::budget::command_wait`]).
    #[serde(default)]
    pub started_at: Timestamp,
}

/// A finished SSM command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// `migrate`, `worker_deploy` or `in_place_deploy`.
    pub name: String,
    /// The latest SSM command id recorded (an in-place deploy sends one per batch).
    pub command_id: String,
    /// How many commands (chunks and batches) it took.
    #[serde(default)]
    pub commands: u32,
    /// Instances it ran on.
    #[serde(default)]
    pub instances: u32,
    /// Of those, how many succeeded.
    #[serde(default)]
    pub succeeded: u32,
    /// What the first [`RESULTS_KEPT`] instances reported (the state payload is limited to
    /// 256 KiB: 1,000 instances' tails would not fit); the counts above cover them all.
    pub results: Vec<CommandResult>,
}

/// How many instances' results a command's record keeps.
pub const RESULTS_KEPT: usize = 10;

/// One instance's result of a finished command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// Where it ran.
    pub instance_id: String,
    /// Its exit code.
    pub exit_code: Option<i32>,
    /// The end of its stdout.
    pub stdout_tail: String,
    /// The end of its stderr.
    pub stderr_tail: String,
}

/// A failure carried to the final Fail state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Error name.
    pub error: String,
    /// Cause.
    pub cause: String,
}
