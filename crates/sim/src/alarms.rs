//! CloudWatch alarms on the sim: their states, what sets them off as the clock moves (a new
//! image taking traffic, a rollout pausing), and the state changes EventBridge would deliver.

use serde::{Deserialize, Serialize};
use stepdeploy_core::model::TargetState;
use stepdeploy_core::ports::AlarmState;

use crate::Sim;
use crate::world::World;

/// When an alarm goes into ALARM: as a new image takes traffic (its errors show in the metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmTrigger {
    /// The alarm's name.
    pub alarm: String,
    /// The image whose instances set it off.
    pub image_id: String,
    /// Once this many of them are healthy in the target groups; `None`: once they are all that
    /// serves (the rollout complete, during its bake).
    pub serving_at_least: Option<u32>,
    /// The StateReason it reports.
    pub reason: String,
}

impl Sim {
    /// Creates (or resets) a CloudWatch alarm in state OK. Records no API call.
    pub fn put_alarm(&self, name: &str) {
        self.set_alarm_state(name, "OK", "Threshold Crossed: 1 datapoint [0.0] was not greater than the threshold (5.0).");
    }

    /// Sets an alarm's state and reason now (SetAlarmState). Records no API call.
    pub fn set_alarm_state(&self, name: &str, state: &str, reason: &str) {
        let mut world = self.lock();
        let updated_at = world.now;
        world.set_alarm(AlarmState { name: name.to_string(), state: state.to_string(), reason: reason.to_string(), updated_at });
    }

    /// The alarm state changes since the last call, oldest first: what EventBridge delivers as
    /// "CloudWatch Alarm State Change" events.
    pub fn take_alarm_changes(&self) -> Vec<AlarmState> {
        std::mem::take(&mut self.lock().alarm_changes)
    }

    /// Every alarm's name.
    pub fn alarm_names(&self) -> Vec<String> {
        self.lock().alarms.keys().cloned().collect()
    }

    /// An alarm's state (`OK`, `ALARM`...), if it exists.
    pub fn alarm_state(&self, name: &str) -> Option<String> {
        self.lock().alarms.get(name).map(|a| a.state.clone())
    }

    /// The alarm goes into ALARM at the first move of the clock after an environment's lock
    /// records a rollout paused at a checkpoint. Records no API call.
    pub fn fire_alarm_when_paused(&self, alarm: &str, reason: &str) {
        self.lock().alarms_at_pause.push((alarm.to_string(), reason.to_string()));
    }

    /// The alarm goes into ALARM once `trigger` holds, as the clock moves. Records no API call.
    pub fn fire_alarm_when(&self, trigger: AlarmTrigger) {
        self.lock().alarm_triggers.push(trigger);
    }

    /// Instances running `image_id` now healthy in their target groups.
    pub fn serving(&self, image_id: &str) -> u32 {
        self.lock().serving(image_id)
    }
}

impl World {
    /// Instances running `image_id` that are healthy in their target groups.
    pub fn serving(&self, image_id: &str) -> u32 {
        let grace = self.settings.health_check_grace_seconds;
        self.instances
            .values()
            .filter(|i| i.image_id == image_id && i.group.is_some())
            .filter(|i| i.target_state(self.now, grace) == Some(TargetState::Healthy))
            .count() as u32
    }

    /// Sets an alarm's state; a change of state is an event for EventBridge.
    pub fn set_alarm(&mut self, alarm: AlarmState) {
        if self.alarms.get(&alarm.name).is_none_or(|old| old.state != alarm.state) {
            self.alarm_changes.push(alarm.clone());
        }
        self.alarms.insert(alarm.name.clone(), alarm);
    }

    /// Puts each triggered alarm into ALARM (once: a trigger is used up).
    pub(crate) fn fire_alarms(&mut self) {
        let now = self.now;
        let paused = !self.alarms_at_pause.is_empty()
            && self.parameters.values().any(|p| p.name.ends_with("/lock") && stepdeploy_core::steps::LockRecord::parse(&p.value).pause.is_some());
        for (alarm, reason) in std::mem::take(&mut self.alarms_at_pause) {
            if paused {
                self.set_alarm(AlarmState { name: alarm, state: "ALARM".into(), reason, updated_at: now });
            } else {
                self.alarms_at_pause.push((alarm, reason));
            }
        }
        let triggers = std::mem::take(&mut self.alarm_triggers);
        for trigger in triggers {
            let serving = self.serving(&trigger.image_id);
            // "All": the image serves and no instance of another image does (the rollout is complete).
            let reached = match trigger.serving_at_least {
                Some(n) => serving >= n.max(1),
                None => {
                    let grace = self.settings.health_check_grace_seconds;
                    let others = self
                        .instances
                        .values()
                        .filter(|i| i.image_id != trigger.image_id && i.group.is_some())
                        .any(|i| i.target_state(now, grace).is_some());
                    serving > 0 && !others
                }
            };
            if reached {
                self.set_alarm(AlarmState { name: trigger.alarm.clone(), state: "ALARM".into(), reason: trigger.reason.clone(), updated_at: now });
            } else {
                self.alarm_triggers.push(trigger);
            }
        }
    }
}
