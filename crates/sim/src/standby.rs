//! Auto Scaling's Standby state on the sim, as AWS documents it
//! (<https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-enter-exit-standby.html>):
//! EnterStandby takes InService instances out of their target groups (they drain, as
//! `EnteringStandby`, then wait in `Standby`, still running) and out of desired capacity;
//! ExitStandby puts `Standby` instances back through Pending, registers them again and
//! health-checks them as the target group does a new instance, and raises desired capacity.
//! At most 20 instances a call, each call checked against the group's size bounds.

use stepdeploy_core::model::{TargetState, Timestamp};
use stepdeploy_core::ports::{MAX_STANDBY_PER_CALL, PortError};

use crate::Sim;
use crate::world::World;

const ASG: &str = "autoscaling";

impl World {
    /// Checks the ids of one Standby call: 1 to 20, each a member of `group` whose lifecycle is `want`.
    fn standby_members(&self, operation: &'static str, group: &str, ids: &[String], want: &str) -> Result<(), PortError> {
        if ids.is_empty() || ids.len() > MAX_STANDBY_PER_CALL {
            let message = format!("{} instance ids given; expected 1 to {MAX_STANDBY_PER_CALL}", ids.len());
            return Err(World::invalid(ASG, operation, "ValidationError", message));
        }
        if !self.groups.contains_key(group) {
            return Err(World::not_found(ASG, operation, "ValidationError", format!("AutoScalingGroup name not found - {group}")));
        }
        for id in ids {
            let Some(inst) = self.instances.get(id).filter(|i| i.group.as_deref() == Some(group) && !i.is_terminated(self.now)) else {
                return Err(World::invalid(
                    ASG,
                    operation,
                    "ValidationError",
                    format!("The instance {id} is not part of Auto Scaling group {group}."),
                ));
            };
            let lifecycle = inst.lifecycle(self.now);
            if lifecycle != want {
                let message = format!("The instance {id} is not in {want} (it is {lifecycle}).");
                return Err(World::invalid(ASG, operation, "ValidationError", message));
            }
        }
        Ok(())
    }

    /// EnterStandby with ShouldDecrementDesiredCapacity.
    pub(crate) fn enter_standby(&mut self, group: &str, ids: &[String]) -> Result<(), PortError> {
        const OP: &str = "EnterStandby";
        self.standby_members(OP, group, ids, "InService")?;
        let now = self.now;
        let Some(g) = self.groups.get_mut(group) else { return Ok(()) };
        let n = ids.len() as u32;
        if g.desired_capacity < g.min_size + n {
            let message = format!(
                "Cannot move {n} instances to Standby: desired capacity {} would drop below the group's min size {}",
                g.desired_capacity, g.min_size
            );
            return Err(World::invalid(ASG, OP, "ValidationError", message));
        }
        g.desired_capacity -= n;
        for id in ids {
            if let Some(inst) = self.instances.get_mut(id) {
                inst.standby = true;
                inst.deregistered_at = Some(now);
            }
            self.record_activity(
                group,
                format!("Moving EC2 instance to Standby: {id}"),
                format!("At {now} instance {id} was moved to standby in response to a user request, shrinking the capacity."),
            );
        }
        self.reconcile_group(group);
        Ok(())
    }

    /// ExitStandby.
    pub(crate) fn exit_standby(&mut self, group: &str, ids: &[String]) -> Result<(), PortError> {
        const OP: &str = "ExitStandby";
        self.standby_members(OP, group, ids, "Standby")?;
        let now = self.now;
        let n = ids.len() as u32;
        let Some(g) = self.groups.get_mut(group) else { return Ok(()) };
        if g.desired_capacity + n > g.max_size {
            let message = format!(
                "Cannot move {n} instances out of Standby: desired capacity {} would exceed the group's max size {}",
                g.desired_capacity, g.max_size
            );
            return Err(World::invalid(ASG, OP, "ValidationError", message));
        }
        g.desired_capacity += n;
        let hook_seconds = g.hook_seconds;
        for id in ids {
            // Registered again: healthy once the target group's checks pass, as for a new instance.
            let checks = self.settings.health_seconds.sample(&mut self.rng);
            if let Some(inst) = self.instances.get_mut(id) {
                inst.standby = false;
                inst.deregistered_at = None;
                inst.in_service_at = now + hook_seconds;
                inst.healthy_at = inst.healthy_at.map(|_| now + hook_seconds + checks);
            }
            self.record_activity(
                group,
                format!("Moving EC2 instance out of Standby: {id}"),
                format!("At {now} instance {id} was moved out of standby in response to a user request, increasing the capacity."),
            );
        }
        self.reconcile_group(group);
        Ok(())
    }
}

/// What tests and benchmarks read of Standby and of when instances began serving.
impl Sim {
    /// Instances of a group in Standby or entering it. Records no API call.
    pub fn standby_in_group(&self, group: &str) -> Vec<String> {
        let world = self.lock();
        let now = world.now;
        world
            .instances
            .values()
            .filter(|i| i.group.as_deref() == Some(group) && i.standby && i.terminating_since.is_none() && !i.is_terminated(now))
            .map(|i| i.id.clone())
            .collect()
    }

    /// Every instance the group ever had, whatever its state: a new id is a launch. Records no API call.
    pub fn launched_in_group(&self, group: &str) -> Vec<String> {
        self.lock().instances.values().filter(|i| i.group.as_deref() == Some(group)).map(|i| i.id.clone()).collect()
    }

    /// Instances the group launched at or after `since`. Records no API call.
    pub fn launches_since(&self, group: &str, since: Timestamp) -> usize {
        self.lock().instances.values().filter(|i| i.group.as_deref() == Some(group) && i.launched_at >= since).count()
    }

    /// When each live instance of `group` running `image_id` that serves now began serving
    /// (healthy in its target groups, since its launch or its return from Standby). Records no API call.
    pub fn serving_since(&self, group: &str, image_id: &str) -> Vec<Timestamp> {
        let world = self.lock();
        let (now, grace) = (world.now, world.settings.health_check_grace_seconds);
        world
            .instances
            .values()
            .filter(|i| i.group.as_deref() == Some(group) && i.image_id == image_id && i.is_live(now))
            .filter(|i| i.target_state(now, grace) == Some(TargetState::Healthy))
            .filter_map(|i| i.healthy_at)
            .collect()
    }
}
