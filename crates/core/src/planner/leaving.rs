//! What this rollout asked Auto Scaling to take out of service, remembered for
//! a minute, so that a read that doesn't show it yet is not acted on again.
//!
//! Auto Scaling lists an instance as Terminating (or EnteringStandby) once the
//! call has returned
//! (<https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html>),
//! but reads are not documented to see that at once. The rollout looks again
//! within seconds (2 s after the last old instances go, 3 s apart around a
//! boot), so a late read would show an instance it terminated as InService:
//! old, so terminated again, which Auto Scaling refuses ("already
//! terminating"), and the step failed. The planner takes what it did over such
//! a read.

use std::collections::BTreeMap;

use super::decision::Action;
use super::state::{Left, RolloutState};
use crate::model::{GroupSnapshot, Lifecycle, Timestamp};

/// How long an instance this rollout took out of service counts as leaving, whatever a read
/// says: far longer than a read lags, and short enough that the memo stays small (a wave's ids).
pub const LEAVING_MEMORY_SECONDS: i64 = 60;

impl RolloutState {
    /// Remembers the instances `applied` took out of service at `now`, and forgets those past
    /// [`LEAVING_MEMORY_SECONDS`] and those `applied` brought back from Standby. Only actions
    /// AWS accepted are passed (a rollback goes on past a refusal, which the next look must try
    /// again).
    pub fn remember_leaving(&mut self, applied: &[Action], now: Timestamp) {
        self.leaving.retain(|left| now.saturating_sub(left.at) < LEAVING_MEMORY_SECONDS);
        let (mut terminated, mut to_standby) = (Vec::new(), Vec::new());
        for action in applied {
            match action {
                Action::Terminate { instance_ids } | Action::TerminateStandby { instance_ids } => terminated.extend(instance_ids.iter().cloned()),
                Action::EnterStandby { instance_ids } => to_standby.extend(instance_ids.iter().cloned()),
                // Back in service by this rollout's own hand (a rollback's): no longer leaving.
                Action::ExitStandby { instance_ids } => {
                    for left in &mut self.leaving {
                        left.instance_ids.retain(|id| !instance_ids.contains(id));
                    }
                }
                _ => {}
            }
        }
        self.leaving.retain(|left| !left.instance_ids.is_empty());
        for (instance_ids, to_standby) in [(terminated, false), (to_standby, true)] {
            if !instance_ids.is_empty() {
                self.leaving.push(Left { at: now, to_standby, instance_ids });
            }
        }
    }

    /// Whether this rollout took `id` out of service in the last minute, and to where
    /// (`Some(true)`: to Standby).
    pub fn left_to_standby(&self, id: &str, now: Timestamp) -> Option<bool> {
        self.remembered(now).get(id).copied()
    }

    /// Each instance still remembered, with its latest way out (true: to Standby).
    fn remembered(&self, now: Timestamp) -> BTreeMap<&str, bool> {
        let mut left = BTreeMap::new();
        for step in self.leaving.iter().filter(|left| now.saturating_sub(left.at) < LEAVING_MEMORY_SECONDS) {
            left.extend(step.instance_ids.iter().map(|id| (id.as_str(), step.to_standby)));
        }
        left
    }
}

/// `snapshot` as the rollout knows it to be: an instance it terminated in the last minute is
/// Terminating, and one it moved to Standby is EnteringStandby, where a read still lists it
/// as it was (in service, or in Standby for a termination from there).
pub(super) fn as_known(snapshot: &GroupSnapshot, state: &RolloutState, now: Timestamp) -> GroupSnapshot {
    // One lookup table for the whole snapshot (a wave can be 1,000 instances).
    let left = state.remembered(now);
    let mut known = snapshot.clone();
    for instance in &mut known.instances {
        let Some(&to_standby) = left.get(instance.id.as_str()) else {
            continue;
        };
        if instance.lifecycle.is_live() || (!to_standby && instance.lifecycle.is_standby()) {
            instance.lifecycle = if to_standby { Lifecycle::EnteringStandby } else { Lifecycle::Terminating };
        }
    }
    known
}
