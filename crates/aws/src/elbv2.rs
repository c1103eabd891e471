//! ELBv2: target health and listener rules.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig, PathPatternConditionConfig, Rule, RuleCondition, SourceIpConditionConfig,
    Tag, TargetDescription, TargetGroupTuple,
};
use stepdeploy_core::model::TargetState;
use stepdeploy_core::ports::{
    FixedResponse, ListenerRule, ListenerRules, MAX_ELB_TAG_ARNS, PortResult, RuleAction, RuleSpec, TargetGroupTiming, TargetHealth,
    TargetHealthReader, TargetRegistration,
};

use crate::error::{missing, port_error};

const SERVICE: &str = "elbv2";

/// The ELBv2 ports on the SDK.
#[derive(Clone, Debug)]
pub struct AwsElbv2 {
    client: Client,
}

impl AwsElbv2 {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Tags of target groups and listeners by ARN (DescribeTags, [`MAX_ELB_TAG_ARNS`] a call).
    pub async fn elb_tags(&self, arns: &[String]) -> PortResult<BTreeMap<String, BTreeMap<String, String>>> {
        let mut out = BTreeMap::new();
        for chunk in arns.chunks(MAX_ELB_TAG_ARNS) {
            let response = self
                .client
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| port_error(SERVICE, "DescribeTags", e))?;
            for description in response.tag_descriptions() {
                let Some(arn) = description.resource_arn() else { continue };
                let tags =
                    description.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect();
                out.insert(arn.to_string(), tags);
            }
        }
        Ok(out)
    }

    /// A target group's health check interval and healthy threshold (DescribeTargetGroups) and
    /// its deregistration delay (DescribeTargetGroupAttributes).
    pub async fn target_group_timing(&self, target_group_arn: &str) -> PortResult<TargetGroupTiming> {
        const OP: &str = "DescribeTargetGroups";
        let groups = self.client.describe_target_groups().target_group_arns(target_group_arn).send().await.map_err(|e| port_error(SERVICE, OP, e))?;
        let group = groups.target_groups().first().ok_or_else(|| missing(SERVICE, OP, "TargetGroups"))?;
        let seconds = |value: Option<i32>, field: &str| value.and_then(|v| u32::try_from(v).ok()).ok_or_else(|| missing(SERVICE, OP, field));
        const ATTRIBUTES: &str = "DescribeTargetGroupAttributes";
        let attributes = self
            .client
            .describe_target_group_attributes()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, ATTRIBUTES, e))?;
        let delay = attributes
            .attributes()
            .iter()
            .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
            .and_then(|a| a.value())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| missing(SERVICE, ATTRIBUTES, "deregistration_delay.timeout_seconds"))?;
        Ok(TargetGroupTiming {
            interval_seconds: seconds(group.health_check_interval_seconds(), "HealthCheckIntervalSeconds")?,
            healthy_threshold: seconds(group.healthy_threshold_count(), "HealthyThresholdCount")?,
            deregistration_delay_seconds: delay,
        })
    }
}

#[async_trait]
impl TargetHealthReader for AwsElbv2 {
    async fn describe_target_health(&self, target_group_arn: &str) -> PortResult<Vec<TargetHealth>> {
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "DescribeTargetHealth", e))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let id = d.target()?.id()?.to_string();
                let health = d.target_health()?;
                Some(TargetHealth {
                    instance_id: id,
                    state: TargetState::parse(health.state()?.as_str())?,
                    reason: health.reason().map(|r| r.as_str().to_string()),
                })
            })
            .collect())
    }
}

fn targets(ids: &[String]) -> Vec<TargetDescription> {
    ids.iter().map(|id| TargetDescription::builder().id(id).build()).collect()
}

#[async_trait]
impl TargetRegistration for AwsElbv2 {
    async fn deregister_targets(&self, target_group_arn: &str, instance_ids: &[String]) -> PortResult<()> {
        self.client
            .deregister_targets()
            .target_group_arn(target_group_arn)
            .set_targets(Some(targets(instance_ids)))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "DeregisterTargets", e))?;
        Ok(())
    }

    async fn register_targets(&self, target_group_arn: &str, instance_ids: &[String]) -> PortResult<()> {
        self.client
            .register_targets()
            .target_group_arn(target_group_arn)
            .set_targets(Some(targets(instance_ids)))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "RegisterTargets", e))?;
        Ok(())
    }
}

fn rule_of(rule: &Rule) -> Option<ListenerRule> {
    let mut path_patterns = Vec::new();
    let mut source_ips = Vec::new();
    for condition in rule.conditions() {
        match condition.field() {
            Some("path-pattern") => match condition.path_pattern_config() {
                Some(config) => path_patterns.extend(config.values().iter().cloned()),
                None => path_patterns.extend(condition.values().iter().cloned()),
            },
            Some("source-ip") => source_ips.extend(condition.source_ip_config().map(|c| c.values().to_vec()).unwrap_or_default()),
            _ => {}
        }
    }
    let action = match rule.actions().iter().find(|a| a.r#type().is_some()) {
        Some(a) if a.r#type() == Some(&ActionTypeEnum::FixedResponse) => {
            let config = a.fixed_response_config()?;
            RuleAction::FixedResponse(FixedResponse {
                status_code: config.status_code()?.parse().ok()?,
                content_type: config.content_type().unwrap_or("text/plain").to_string(),
                body: config.message_body().unwrap_or_default().to_string(),
            })
        }
        Some(a) if a.r#type() == Some(&ActionTypeEnum::Forward) => {
            let mut arns: Vec<String> = a.target_group_arn().map(str::to_string).into_iter().collect();
            if let Some(forward) = a.forward_config() {
                arns.extend(forward.target_groups().iter().filter_map(|t| t.target_group_arn()).map(str::to_string));
            }
            arns.dedup();
            RuleAction::Forward(arns)
        }
        Some(a) => RuleAction::Other(a.r#type().map(|t| t.as_str().to_string()).unwrap_or_default()),
        None => RuleAction::Other(String::new()),
    };
    Some(ListenerRule {
        arn: rule.rule_arn()?.to_string(),
        priority: rule.priority().and_then(|p| p.parse().ok()),
        spec: RuleSpec { path_patterns, source_ips, action },
    })
}

#[async_trait]
impl ListenerRules for AwsElbv2 {
    async fn describe_rules(&self, listener_arn: &str) -> PortResult<Vec<ListenerRule>> {
        let mut rules = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .client
                .describe_rules()
                .listener_arn(listener_arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| port_error(SERVICE, "DescribeRules", e))?;
            rules.extend(out.rules().iter().filter_map(rule_of));
            marker = out.next_marker().map(str::to_string);
            if marker.is_none() {
                return Ok(rules);
            }
        }
    }

    async fn create_rule(&self, listener_arn: &str, priority: u32, rule: &RuleSpec, tags: &BTreeMap<String, String>) -> PortResult<String> {
        const OP: &str = "CreateRule";
        let mut conditions = Vec::new();
        if !rule.path_patterns.is_empty() {
            let config = PathPatternConditionConfig::builder().set_values(Some(rule.path_patterns.clone())).build();
            conditions.push(RuleCondition::builder().field("path-pattern").path_pattern_config(config).build());
        }
        if !rule.source_ips.is_empty() {
            let config = SourceIpConditionConfig::builder().set_values(Some(rule.source_ips.clone())).build();
            conditions.push(RuleCondition::builder().field("source-ip").source_ip_config(config).build());
        }
        let action = match &rule.action {
            RuleAction::FixedResponse(response) => Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    FixedResponseActionConfig::builder()
                        .status_code(response.status_code.to_string())
                        .content_type(&response.content_type)
                        .message_body(&response.body)
                        .build(),
                )
                .build(),
            RuleAction::Forward(arns) => Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .forward_config(
                    ForwardActionConfig::builder()
                        .set_target_groups(Some(arns.iter().map(|arn| TargetGroupTuple::builder().target_group_arn(arn).build()).collect()))
                        .build(),
                )
                .build(),
            RuleAction::Other(kind) => {
                return Err(stepdeploy_core::ports::PortError::new(
                    stepdeploy_core::ports::ErrorKind::Invalid,
                    SERVICE,
                    OP,
                    None,
                    format!("cannot create a rule with a {kind:?} action"),
                ));
            }
        };
        let out = self
            .client
            .create_rule()
            .listener_arn(listener_arn)
            .priority(i32::try_from(priority).unwrap_or(i32::MAX))
            .set_conditions(Some(conditions))
            .actions(action)
            .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, OP, e))?;
        out.rules().first().and_then(|r| r.rule_arn()).map(str::to_string).ok_or_else(|| missing(SERVICE, OP, "RuleArn"))
    }

    async fn delete_rule(&self, rule_arn: &str) -> PortResult<bool> {
        match self.client.delete_rule().rule_arn(rule_arn).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_rule_not_found_exception()) => Ok(false),
            Err(e) => Err(port_error(SERVICE, "DeleteRule", e)),
        }
    }
}
