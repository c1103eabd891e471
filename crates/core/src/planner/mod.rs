//! Pure rollout planners: snapshot + rollout state + time → the next decision.
//!
//! A planner never sleeps, loops or calls AWS. The state machine calls a
//! handler, the handler reads a [`GroupSnapshot`](crate::model::GroupSnapshot), calls [`plan`], applies
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
//!
//! Layers: `policy` (bounds), `state` (the rollout carried between steps),
//! `decision` (what a plan says), `cadence` (when to look again), `leaving` (what
//! the rollout took out of service, over a late read), `plan` (the planner).

mod cadence;
mod decision;
mod leaving;
mod plan;
mod policy;
mod state;

pub use cadence::{EARLIER_WAVES, LAST_WAVE, Precision, looks_budgeted, may_look_sooner, next_wait};
pub use decision::{Action, Failure, InstanceHealth, Outcome, Plan, Progress};
pub use leaving::LEAVING_MEMORY_SECONDS;
pub use plan::{SETTLE_SECONDS, assess, plan, strategy_bounds};
pub use policy::{Bounds, Policy, PolicyError};
pub use state::{Checkpoint, Left, Original, RolloutSpec, RolloutState, Strategy, Timing};
