//! What someone other than stepdeploy does to the account (an operator scaling, an instance
//! dying, another execution ending, CloudWatch changing an alarm), scheduled at a virtual time.

use rand::Rng;
use serde::{Deserialize, Serialize};
use stepdeploy_core::model::Timestamp;

use crate::Sim;
use crate::world::World;

/// Something done to the account by someone other than stepdeploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExternalEvent {
    /// An operator lowers desired capacity; the group scales in.
    ScaleIn {
        /// Group name.
        group: String,
        /// By how many.
        count: u32,
    },
    /// An operator raises desired capacity (and max, if needed).
    ScaleOut {
        /// Group name.
        group: String,
        /// By how many.
        count: u32,
    },
    /// Another execution (holding an environment's lock) finishes: it stops running and its
    /// lock parameter is deleted, as its finish step would.
    ExecutionEnds {
        /// Its ARN.
        execution: String,
        /// The lock parameter it held.
        lock_parameter: String,
    },
    /// An instance dies (EC2 terminate); the group replaces it.
    TerminateOne {
        /// Group name.
        group: String,
    },
    /// A random live instance of the group fails its EC2 status checks: Auto Scaling marks it
    /// Unhealthy and, unless ReplaceUnhealthy is suspended, replaces it.
    ImpairOne {
        /// Group name.
        group: String,
    },
    /// A CloudWatch alarm goes into ALARM at this moment (CloudWatch evaluates on its own
    /// period, not when a rollout polls).
    AlarmFires {
        /// The alarm's name.
        alarm: String,
        /// Its StateReason.
        reason: String,
    },
}

impl Sim {
    /// Schedules an external event at virtual time `at`.
    pub fn schedule(&self, at: Timestamp, event: ExternalEvent) {
        let mut world = self.lock();
        world.events.push((at, event));
        world.events.sort_by_key(|(at, _)| *at);
    }
}

impl World {
    pub(crate) fn apply_event(&mut self, event: ExternalEvent) {
        match event {
            ExternalEvent::ScaleIn { group, count } => {
                if let Some(g) = self.groups.get_mut(&group) {
                    g.desired_capacity = g.desired_capacity.saturating_sub(count).max(g.min_size);
                }
            }
            ExternalEvent::ScaleOut { group, count } => {
                if let Some(g) = self.groups.get_mut(&group) {
                    g.desired_capacity += count;
                    g.max_size = g.max_size.max(g.desired_capacity);
                }
            }
            ExternalEvent::ImpairOne { group } => {
                let now = self.now;
                let mut live: Vec<String> =
                    self.instances.values().filter(|i| i.group.as_deref() == Some(group.as_str()) && i.is_live(now)).map(|i| i.id.clone()).collect();
                live.sort();
                if !live.is_empty() {
                    let pick = self.rng.random_range(0..live.len());
                    if let Some(inst) = self.instances.get_mut(&live[pick]) {
                        inst.asg_unhealthy = true;
                    }
                }
            }
            ExternalEvent::ExecutionEnds { execution, lock_parameter } => {
                self.running_executions.remove(&execution);
                self.parameters.remove(&lock_parameter);
            }
            ExternalEvent::AlarmFires { alarm, reason } => {
                let now = self.now;
                self.set_alarm(stepdeploy_core::ports::AlarmState { name: alarm, state: "ALARM".into(), reason, updated_at: now });
            }
            ExternalEvent::TerminateOne { group } => {
                let now = self.now;
                let live: Vec<String> =
                    self.instances.values().filter(|i| i.group.as_deref() == Some(group.as_str()) && i.is_live(now)).map(|i| i.id.clone()).collect();
                if !live.is_empty() {
                    let pick = self.rng.random_range(0..live.len());
                    self.begin_termination(&live[pick]);
                }
            }
        }
    }
}
