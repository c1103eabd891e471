//! Shared by the sim's port implementations: service names and the request contexts they record.

use std::collections::BTreeMap;

use crate::iam::{AuthRequest, group_arn};
use crate::world::World;

pub(super) const ASG: &str = "autoscaling";
pub(super) const EC2: &str = "ec2";
pub(super) const SSM: &str = "ssm";
pub(super) const ELB: &str = "elbv2";

/// An action AWS authorizes on no resource (`*`): the Describe and Get calls.
pub(super) fn unscoped(action: &str) -> Vec<AuthRequest> {
    vec![AuthRequest::new(action, "*")]
}

/// An Auto Scaling action on the group `name`, with its tags.
pub(super) fn on_group(world: &World, action: &str, name: &str) -> Vec<AuthRequest> {
    vec![AuthRequest::new(action, group_arn(name)).resource_tags(&world.tags_of(name))]
}

/// An ELB action on a target group, listener or rule (by ARN), with its tags.
pub(super) fn on_elb(world: &World, action: &str, arn: &str) -> Vec<AuthRequest> {
    vec![AuthRequest::new(action, arn).resource_tags(&world.tags_of(arn))]
}

pub(super) fn has_tags(tags: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|(k, v)| tags.get(k) == Some(v))
}
