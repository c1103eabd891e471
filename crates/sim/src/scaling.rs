//! What Auto Scaling does by itself as the clock moves: launch or scale in to desired capacity
//! (unless Launch or Terminate are suspended), into the emptiest zone, and replace instances
//! that fail their health checks.

use stepdeploy_core::model::{ScalingActivity, TargetState, Timestamp};

use crate::world::{Group, Inst, World};

impl World {
    pub fn reconcile_all(&mut self) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for name in names {
            self.reconcile_group(&name);
        }
    }

    /// Launches or scales in until live instances match desired capacity, as
    /// Auto Scaling does, unless Launch / Terminate are suspended. Returns launched ids.
    pub fn reconcile_group(&mut self, name: &str) -> Vec<String> {
        let now = self.now;
        let Some(group) = self.groups.get(name).cloned() else {
            return Vec::new();
        };
        if group.elb_health_check {
            self.replace_unhealthy(name);
        }
        // Auto Scaling replaces instances it marked Unhealthy, unless ReplaceUnhealthy is suspended.
        if !group.suspended.contains("ReplaceUnhealthy") {
            let impaired: Vec<String> = self
                .instances
                .values()
                .filter(|i| i.group.as_deref() == Some(name) && i.is_live(now) && i.asg_unhealthy)
                .map(|i| i.id.clone())
                .collect();
            for id in impaired {
                self.begin_termination(&id);
            }
        }
        let live: Vec<&Inst> = self.instances.values().filter(|i| i.group.as_deref() == Some(name) && i.is_live(now)).collect();
        let live_count = live.len() as u32;
        let mut launched = Vec::new();
        if live_count < group.desired_capacity && !group.suspended.contains("Launch") {
            let Some((version, data)) = self.resolve_template(&group.launch_template) else {
                return launched;
            };
            let template_id = self.find_template_id(&group.launch_template);
            if let Some((_, message)) = self.failing_launches.clone().filter(|(image, _)| *image == data.image_id) {
                self.record_failed_launch(name, message);
                return launched;
            }
            let wanted = group.desired_capacity - live_count;
            let allowed = self.launches_within_quota(data.instance_type.as_deref(), wanted);
            if allowed < wanted {
                self.record_failed_launch(name, self.vcpu_limit_message());
            }
            for n in 0..allowed {
                let id = self.new_instance_id();
                let boot = self.settings.boot_seconds.sample(&mut self.rng);
                let health = self.settings.health_seconds.sample(&mut self.rng);
                let online = self.settings.ssm_online_seconds.sample(&mut self.rng);
                let never_healthy = self.unhealthy_images.contains(&data.image_id);
                let mut tags = data.instance_tags.clone();
                // The group's tags propagate at launch (as stepdeploy's IAM conditions on instances require).
                tags.extend(self.resource_tags.get(&crate::iam::group_arn(name)).cloned().unwrap_or_default());
                tags.insert("aws:autoscaling:groupName".into(), name.to_string());
                // Auto Scaling launches in the zone with the fewest instances, keeping zones balanced
                // (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-availability-zone-balanced.html).
                let zone = self.emptiest_zone(&group).unwrap_or_else(|| format!("zone-{n}"));
                self.instances.insert(
                    id.clone(),
                    Inst {
                        id: id.clone(),
                        group: Some(name.to_string()),
                        image_id: data.image_id.clone(),
                        launch_template_id: template_id.clone(),
                        launch_template_version: Some(version.to_string()),
                        zone,
                        protected: false,
                        tags,
                        launched_at: now,
                        in_service_at: now + boot + group.hook_seconds,
                        healthy_at: (!never_healthy).then_some(now + boot + group.hook_seconds + health),
                        // Without an instance profile the agent can't register: SSM never lists it.
                        ssm_online_at: if data.instance_profile_role.is_some() { now + online } else { Timestamp::MAX },
                        instance_type: data.instance_type.clone(),
                        terminating_since: None,
                        terminated_at: None,
                        standby: false,
                        deregistered_at: None,
                        drain_seconds: self.settings.deregistration_delay_seconds,
                        hook_seconds: group.hook_seconds,
                        asg_unhealthy: false,
                    },
                );
                self.record_activity(
                    name,
                    format!("Launching a new EC2 instance: {id}"),
                    format!("At {now} an instance was started in response to a difference between desired and actual capacity."),
                );
                launched.push(id);
            }
        } else if live_count > group.desired_capacity && !group.suspended.contains("Terminate") {
            let current_image = self.resolve_template(&group.launch_template).map(|(_, d)| d.image_id);
            // Default termination policy, simplified: other launch template versions first, then oldest.
            let mut candidates: Vec<(bool, Timestamp, String)> =
                live.iter().filter(|i| !i.protected).map(|i| (Some(&i.image_id) == current_image.as_ref(), i.launched_at, i.id.clone())).collect();
            candidates.sort();
            let excess = (live_count - group.desired_capacity) as usize;
            for (_, _, id) in candidates.into_iter().take(excess) {
                self.begin_termination(&id);
            }
        }
        launched
    }

    /// Records a successful activity of `group` now, as DescribeScalingActivities lists it.
    pub(crate) fn record_activity(&mut self, group: &str, description: String, cause: String) {
        let started_at = self.now;
        let activity = ScalingActivity { started_at, status: "Successful".into(), description, cause, message: None };
        self.activities.entry(group.to_string()).or_default().push(activity);
    }

    /// The group's zone with the fewest live instances (the first such, in the group's order).
    pub(crate) fn emptiest_zone(&self, group: &Group) -> Option<String> {
        let now = self.now;
        group
            .zones
            .iter()
            .min_by_key(|z| {
                self.instances.values().filter(|i| i.group.as_deref() == Some(group.name.as_str()) && i.is_live(now) && &i.zone == *z).count()
            })
            .cloned()
    }

    /// With the ELB health check type, Auto Scaling terminates instances their target group
    /// reports unhealthy (after the grace period) and launches replacements.
    pub(crate) fn replace_unhealthy(&mut self, group: &str) {
        let (now, grace) = (self.now, self.settings.health_check_grace_seconds);
        let unhealthy: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.group.as_deref() == Some(group) && i.is_live(now))
            .filter(|i| i.target_state(now, grace) == Some(TargetState::Unhealthy))
            .map(|i| i.id.clone())
            .collect();
        for id in unhealthy {
            self.begin_termination(&id);
            self.record_activity(
                group,
                format!("Terminating EC2 instance: {id}"),
                format!("At {now} an instance was taken out of service in response to an ELB system health check failure."),
            );
        }
    }
}
