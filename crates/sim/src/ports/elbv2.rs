//! ELBv2 on the sim: target health, listener rules, target registration.

use std::collections::BTreeMap;

use async_trait::async_trait;
use stepdeploy_core::ports::*;

use super::common::*;
use crate::Sim;
use crate::iam::AuthRequest;
use crate::world::World;

#[async_trait]
impl TargetHealthReader for Sim {
    async fn describe_target_health(&self, target_group_arn: &str) -> PortResult<Vec<TargetHealth>> {
        const OP: &str = "DescribeTargetHealth";
        let mut world = self.lock();
        world.call(ELB, OP, unscoped("elasticloadbalancing:DescribeTargetHealth"))?;
        world.target_group_exists(OP, target_group_arn)?;
        let now = world.now;
        let grace = world.settings.health_check_grace_seconds;
        let groups_with_tg: Vec<&String> =
            world.groups.values().filter(|g| g.target_group_arns.iter().any(|a| a == target_group_arn)).map(|g| &g.name).collect();
        Ok(world
            .instances
            .values()
            .filter(|i| i.group.as_ref().is_some_and(|g| groups_with_tg.contains(&g)))
            .filter_map(|i| {
                i.target_state(now, grace).map(|state| TargetHealth {
                    instance_id: i.id.clone(),
                    reason: matches!(state, stepdeploy_core::model::TargetState::Unhealthy).then(|| "Target.FailedHealthChecks".to_string()),
                    state,
                })
            })
            .collect())
    }
}

#[async_trait]
impl ListenerRules for Sim {
    async fn describe_rules(&self, listener_arn: &str) -> PortResult<Vec<ListenerRule>> {
        const OP: &str = "DescribeRules";
        let mut world = self.lock();
        world.call(ELB, OP, unscoped("elasticloadbalancing:DescribeRules"))?;
        let rules = world
            .listeners
            .get(listener_arn)
            .ok_or_else(|| World::not_found(ELB, OP, "ListenerNotFound", format!("Listener '{listener_arn}' not found")))?;
        let mut out = rules.clone();
        out.push(ListenerRule {
            arn: format!("{}/default", listener_arn.replace(":listener/", ":listener-rule/")),
            priority: None,
            spec: RuleSpec { path_patterns: Vec::new(), source_ips: Vec::new(), action: RuleAction::Other("default".into()) },
        });
        Ok(out)
    }

    async fn create_rule(&self, listener_arn: &str, priority: u32, rule: &RuleSpec, tags: &BTreeMap<String, String>) -> PortResult<String> {
        const OP: &str = "CreateRule";
        let mut world = self.lock();
        // Authorized on the listener (the listener-rule resource authorizes nothing for CreateRule);
        // tags on create also need AddTags (https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/tagging-resources-during-creation.html).
        let mut requests = on_elb(&world, "elasticloadbalancing:CreateRule", listener_arn);
        if !tags.is_empty() {
            requests.push(
                // The new rule's ARN (its id is not known yet; policies match on the listener part).
                AuthRequest::new(
                    "elasticloadbalancing:AddTags",
                    format!("{}/0000000000000000", listener_arn.replace(":listener/", ":listener-rule/")),
                )
                .request_tags(tags)
                .with("elasticloadbalancing:CreateAction", "CreateRule")
                .implied_by("elasticloadbalancing:CreateRule with tags"),
            );
        }
        world.call(ELB, OP, requests)?;
        let id = world.next_id();
        let rules = world
            .listeners
            .get_mut(listener_arn)
            .ok_or_else(|| World::not_found(ELB, OP, "ListenerNotFound", format!("Listener '{listener_arn}' not found")))?;
        if rules.iter().any(|r| r.priority == Some(priority)) {
            return Err(World::invalid(ELB, OP, "PriorityInUse", format!("Priority '{priority}' is currently in use")));
        }
        if let RuleAction::FixedResponse(response) = &rule.action
            && response.body.len() > stepdeploy_core::config::MAX_MAINTENANCE_HTML_BYTES
        {
            return Err(World::invalid(ELB, OP, "ValidationError", "MessageBody must be at most 1024 characters".into()));
        }
        let arn = format!("{}/{id:016x}", listener_arn.replace(":listener/", ":listener-rule/"));
        rules.push(ListenerRule { arn: arn.clone(), priority: Some(priority), spec: rule.clone() });
        rules.sort_by_key(|r| r.priority);
        world.resource_tags.insert(arn.clone(), tags.clone());
        Ok(arn)
    }

    async fn delete_rule(&self, rule_arn: &str) -> PortResult<bool> {
        let mut world = self.lock();
        let requests = on_elb(&world, "elasticloadbalancing:DeleteRule", rule_arn);
        world.call(ELB, "DeleteRule", requests)?;
        for rules in world.listeners.values_mut() {
            if let Some(pos) = rules.iter().position(|r| r.arn == rule_arn) {
                rules.remove(pos);
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[async_trait]
impl TargetRegistration for Sim {
    async fn deregister_targets(&self, target_group_arn: &str, instance_ids: &[String]) -> PortResult<()> {
        const OP: &str = "DeregisterTargets";
        let mut world = self.lock();
        let requests = on_elb(&world, "elasticloadbalancing:DeregisterTargets", target_group_arn);
        world.call(ELB, OP, requests)?;
        world.target_group_exists(OP, target_group_arn)?;
        let now = world.now;
        for id in instance_ids {
            let Some(instance) = world.instances.get_mut(id) else {
                return Err(World::invalid(ELB, OP, "InvalidTarget", format!("The following targets are not in a running state: {id}")));
            };
            instance.deregistered_at.get_or_insert(now);
        }
        Ok(())
    }

    async fn register_targets(&self, target_group_arn: &str, instance_ids: &[String]) -> PortResult<()> {
        const OP: &str = "RegisterTargets";
        let mut world = self.lock();
        let requests = on_elb(&world, "elasticloadbalancing:RegisterTargets", target_group_arn);
        world.call(ELB, OP, requests)?;
        world.target_group_exists(OP, target_group_arn)?;
        let now = world.now;
        for id in instance_ids {
            let health = {
                let dist = world.settings.health_seconds;
                dist.sample(&mut world.rng)
            };
            let Some(instance) = world.instances.get_mut(id).filter(|i| !i.is_terminated(now)) else {
                return Err(World::invalid(ELB, OP, "InvalidTarget", format!("The following targets are not in a running state: {id}")));
            };
            // Registering a registered target changes nothing; a returning one is health-checked anew.
            if instance.deregistered_at.take().is_some() && instance.healthy_at.is_some() {
                instance.healthy_at = Some(now + health);
            }
        }
        Ok(())
    }
}
