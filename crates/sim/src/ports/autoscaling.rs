//! Auto Scaling on the sim: groups, capacity, terminations, processes.

use async_trait::async_trait;
use stepdeploy_core::config::SCALING_PROCESSES;
use stepdeploy_core::model::{GroupSettings, LaunchTemplateRef, Lifecycle, ScalingActivity, Timestamp};
use stepdeploy_core::ports::*;

use super::common::*;
use crate::Sim;
use crate::world::World;

#[async_trait]
impl GroupReader for Sim {
    async fn describe_group(&self, name: &str) -> PortResult<GroupDescription> {
        let mut world = self.lock();
        world.call(ASG, "DescribeAutoScalingGroups", unscoped("autoscaling:DescribeAutoScalingGroups"))?;
        let now = world.now;
        let lag = world.settings.asg_termination_listing_lag_seconds;
        let group = world.groups.get(name).ok_or_else(|| {
            World::not_found(ASG, "DescribeAutoScalingGroups", "ValidationError", format!("AutoScalingGroup name not found - {name}"))
        })?;
        let instances = world
            .instances
            .values()
            .filter(|i| i.group.as_deref() == Some(name))
            // A read that doesn't see a termination yet lists the instance as it was.
            .filter_map(|i| Some((i, i.listed_by_auto_scaling(now, lag)?)))
            .map(|(i, lifecycle)| GroupMember {
                id: i.id.clone(),
                lifecycle: Lifecycle::parse(lifecycle),
                healthy: !i.asg_unhealthy,
                launch_template_id: i.launch_template_id.clone(),
                launch_template_version: i.launch_template_version.clone(),
                availability_zone: i.zone.clone(),
                protected_from_scale_in: i.protected,
            })
            .collect();
        Ok(GroupDescription {
            settings: GroupSettings {
                name: group.name.clone(),
                min_size: group.min_size,
                max_size: group.max_size,
                desired_capacity: group.desired_capacity,
                suspended_processes: group.suspended.iter().cloned().collect(),
                launch_template: Some(group.launch_template.clone()),
                target_group_arns: group.target_group_arns.clone(),
                subnet_ids: group.subnets(),
                features: group.features.clone(),
            },
            instances,
        })
    }

    async fn scaling_activities(&self, name: &str, since: Timestamp) -> PortResult<Vec<ScalingActivity>> {
        let mut world = self.lock();
        world.call(ASG, "DescribeScalingActivities", unscoped("autoscaling:DescribeScalingActivities"))?;
        let all = world.activities.get(name).cloned().unwrap_or_default();
        // Newest first, one page of 50 (as the AWS adapter reads it).
        Ok(all.into_iter().rev().take(50).filter(|a| a.started_at >= since).collect())
    }

    async fn active_instance_refresh(&self, name: &str) -> PortResult<Option<String>> {
        let mut world = self.lock();
        world.call(ASG, "DescribeInstanceRefreshes", unscoped("autoscaling:DescribeInstanceRefreshes"))?;
        Ok(world.groups.get(name).and_then(|g| g.instance_refresh.clone()))
    }
}

#[async_trait]
impl GroupWriter for Sim {
    async fn update_group(&self, name: &str, update: &GroupUpdate) -> PortResult<()> {
        const OP: &str = "UpdateAutoScalingGroup";
        let mut world = self.lock();
        let mut requests = on_group(&world, "autoscaling:UpdateAutoScalingGroup", name);
        // Naming a launch template makes AWS check that the caller may launch from it.
        if let (Some(reference), Some(group)) = (&update.launch_template, world.groups.get(name))
            && let (Some(id), Some((_, data))) = (world.find_template_id(reference), world.resolve_template(reference))
        {
            let tags = data.instance_tags.clone();
            requests.extend(run_instances_requests(&world, "autoscaling:UpdateAutoScalingGroup", &id, &data, &group.subnets(), &tags));
        }
        world.call(ASG, OP, requests)?;
        let template = match &update.launch_template {
            Some(reference) => {
                let id = world
                    .find_template_id(reference)
                    .ok_or_else(|| World::invalid(ASG, OP, "ValidationError", format!("Launch template {reference:?} does not exist")))?;
                if world.resolve_template(reference).is_none() {
                    return Err(World::invalid(
                        ASG,
                        OP,
                        "ValidationError",
                        format!("Launch template version {:?} does not exist", reference.version),
                    ));
                }
                let name = world.templates.get(&id).map(|t| t.name.clone());
                Some(LaunchTemplateRef { id: Some(id), name, version: reference.version.clone() })
            }
            None => None,
        };
        let group = world
            .groups
            .get_mut(name)
            .ok_or_else(|| World::not_found(ASG, OP, "ValidationError", format!("AutoScalingGroup name not found - {name}")))?;
        let min = update.min_size.unwrap_or(group.min_size);
        let max = update.max_size.unwrap_or(group.max_size);
        let desired = update.desired_capacity.unwrap_or(group.desired_capacity);
        if min > max || desired < min || desired > max {
            return Err(World::invalid(
                ASG,
                OP,
                "ValidationError",
                format!("Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"),
            ));
        }
        (group.min_size, group.max_size, group.desired_capacity) = (min, max, desired);
        if let Some(template) = template {
            group.launch_template = template;
        }
        world.reconcile_group(name);
        Ok(())
    }

    async fn set_desired_capacity(&self, name: &str, desired: u32) -> PortResult<()> {
        const OP: &str = "SetDesiredCapacity";
        let mut world = self.lock();
        let requests = on_group(&world, "autoscaling:SetDesiredCapacity", name);
        world.call(ASG, OP, requests)?;
        let group = world
            .groups
            .get_mut(name)
            .ok_or_else(|| World::not_found(ASG, OP, "ValidationError", format!("AutoScalingGroup name not found - {name}")))?;
        if desired > group.max_size {
            return Err(World::invalid(
                ASG,
                OP,
                "ValidationError",
                format!("New SetDesiredCapacity value {desired} is above max value {} for the AutoScalingGroup.", group.max_size),
            ));
        }
        if desired < group.min_size {
            return Err(World::invalid(
                ASG,
                OP,
                "ValidationError",
                format!("New SetDesiredCapacity value {desired} is below min value {} for the AutoScalingGroup.", group.min_size),
            ));
        }
        group.desired_capacity = desired;
        world.reconcile_group(name);
        Ok(())
    }

    async fn terminate_instance(&self, instance_id: &str, decrement: Decrement) -> PortResult<()> {
        const OP: &str = "TerminateInstanceInAutoScalingGroup";
        let mut world = self.lock();
        // Authorized on the instance's group.
        let group = world.instances.get(instance_id).and_then(|i| i.group.clone()).unwrap_or_default();
        let requests = on_group(&world, "autoscaling:TerminateInstanceInAutoScalingGroup", &group);
        world.call(ASG, OP, requests)?;
        let now = world.now;
        let not_found = || {
            World::invalid(ASG, OP, "ValidationError", format!("Instance Id not found - No managed instance found for instance ID: {instance_id}"))
        };
        if world.termination_races > 0 && world.instances.get(instance_id).is_some_and(|i| i.terminating_since.is_none()) {
            world.termination_races -= 1;
            world.begin_termination(instance_id);
        }
        let inst = world.instances.get(instance_id).ok_or_else(not_found)?;
        let Some(group_name) = inst.group.clone().filter(|_| !inst.is_terminated(now)) else {
            return Err(not_found());
        };
        if inst.terminating_since.is_some() {
            return Err(World::invalid(ASG, OP, "ValidationError", format!("The instance {instance_id} is already terminating")));
        }
        if decrement.0 {
            let group = world.groups.get_mut(&group_name).ok_or_else(not_found)?;
            if group.desired_capacity <= group.min_size {
                return Err(World::invalid(
                    ASG,
                    OP,
                    "ValidationError",
                    format!(
                        "Currently, desiredCapacity {} is at min size {}; decrementing would go below it",
                        group.desired_capacity, group.min_size
                    ),
                ));
            }
            group.desired_capacity -= 1;
        }
        world.begin_termination(instance_id);
        world.reconcile_group(&group_name);
        Ok(())
    }

    async fn enter_standby(&self, group: &str, instance_ids: &[String]) -> PortResult<()> {
        let mut world = self.lock();
        let requests = on_group(&world, "autoscaling:EnterStandby", group);
        world.call(ASG, "EnterStandby", requests)?;
        world.enter_standby(group, instance_ids)?;
        world.respond(ASG, "EnterStandby")
    }

    async fn exit_standby(&self, group: &str, instance_ids: &[String]) -> PortResult<()> {
        let mut world = self.lock();
        let requests = on_group(&world, "autoscaling:ExitStandby", group);
        world.call(ASG, "ExitStandby", requests)?;
        world.exit_standby(group, instance_ids)?;
        world.respond(ASG, "ExitStandby")
    }
}

#[async_trait]
impl ProcessControl for Sim {
    async fn suspend_processes(&self, group: &str, processes: &[String]) -> PortResult<()> {
        self.change_processes(group, processes, "SuspendProcesses", true)
    }

    async fn resume_processes(&self, group: &str, processes: &[String]) -> PortResult<()> {
        self.change_processes(group, processes, "ResumeProcesses", false)
    }
}

impl Sim {
    fn change_processes(&self, group: &str, processes: &[String], op: &'static str, suspend: bool) -> PortResult<()> {
        if processes.is_empty() {
            return Ok(());
        }
        let mut world = self.lock();
        let requests = on_group(&world, &format!("autoscaling:{op}"), group);
        world.call(ASG, op, requests)?;
        if let Some(bad) = processes.iter().find(|p| !SCALING_PROCESSES.contains(&p.as_str())) {
            return Err(World::invalid(ASG, op, "ValidationError", format!("Invalid scaling process name: {bad}")));
        }
        let g = world
            .groups
            .get_mut(group)
            .ok_or_else(|| World::not_found(ASG, op, "ValidationError", format!("AutoScalingGroup name not found - {group}")))?;
        for p in processes {
            if suspend {
                g.suspended.insert(p.clone());
            } else {
                g.suspended.remove(p);
            }
        }
        world.reconcile_group(group);
        world.respond(ASG, op)
    }
}
