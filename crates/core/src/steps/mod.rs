//! Deploy steps: each is one Lambda, one reconcile step over the ports.
//!
//! A step reads state through the ports, calls a pure planner, applies its
//! decision and returns the record that the state machine carries to the
//! next step. Every step is safe to run twice.
//!
//! Layers, bottom to top (a module uses only those below it):
//! - `error`, `account`, `record`, `input`, `lock`, `preflight`, `guard`: what every step shares;
//! - `maintenance`, `command`, `images`, `checkpoint`: the page, SSM commands, baked images and pauses;
//! - `rollout` (prepare, replace, rollback, finish), `jobs` (the stand-alone
//!   workflows), `bake`, `inplace`, `release`: one module per workflow family;
//! - `dispatch`: [`handle`] and the step-name table.

mod account;
pub mod bake;
pub mod checkpoint;
mod command;
mod dispatch;
mod error;
mod guard;
mod images;
pub mod inplace;
mod input;
mod jobs;
mod lock;
mod maintenance;
pub mod notify;
pub mod preflight;
mod record;
pub mod release;
mod rollout;

pub use account::DeployAccount;
pub use command::{OUTPUT_TAIL, SUCCESS_TAIL, command_poll, command_start, tail};
pub use dispatch::{ConfigSource, STEP_NAMES, handle};
pub use error::StepError;
pub use input::{STARTED_BY, unknown_field};
pub use jobs::{JobKind, prepare_job, processes};
pub use lock::{LockRecord, PauseRecord, lock_is_stale, lock_parameter};
pub use maintenance::{MaintenanceMode, maintenance, maintenance_rules};
pub use record::{CheckpointWait, CommandOutcome, CommandResult, CommandRun, Deployment, Failure, Job, NOT_HEALTHY_SHOWN, NextStep, RESULTS_KEPT};
pub use rollout::{Queue, finish, fleet_by_image, prepare, replace, rollback};
