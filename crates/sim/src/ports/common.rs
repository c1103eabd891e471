//! Shared by the sim's port implementations: service names and the request contexts they record.

use std::collections::BTreeMap;

use crate::iam::{AuthRequest, group_arn};
use crate::world::{TemplateVersionData, World};

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

/// What RunInstances from launch template `template_id`, version data
/// `data`, in `subnets`, with `tags` on the new instance, authorizes, the
/// checks AWS makes on the caller's behalf for `call` included (see [`crate::iam::ON_BEHALF`]).
pub(super) fn run_instances_requests(
    world: &World,
    call: &str,
    template_id: &str,
    data: &TemplateVersionData,
    subnets: &[String],
    tags: &BTreeMap<String, String>,
) -> Vec<AuthRequest> {
    use crate::iam::{ec2_arn, ec2_global_arn, role_arn};
    let implied = |r: AuthRequest| if call == "ec2:RunInstances" { r } else { r.implied_by(call) };
    let run = "ec2:RunInstances";
    let mut out = vec![
        implied(AuthRequest::new(run, ec2_arn("launch-template", template_id)).resource_tags(&world.tags_of(template_id))),
        implied(
            AuthRequest::new(run, ec2_global_arn("image", &data.image_id))
                .resource_tags(&world.images.get(&data.image_id).map(|i| i.tags.clone()).unwrap_or_default()),
        ),
        implied(AuthRequest::new(run, ec2_arn("instance", "*")).request_tags(tags)),
        implied(AuthRequest::new(run, ec2_arn("volume", "*")).request_tags(tags)),
        implied(AuthRequest::new(run, ec2_arn("network-interface", "*"))),
    ];
    out.extend(subnets.iter().map(|s| implied(AuthRequest::new(run, ec2_arn("subnet", s)))));
    out.extend(data.security_groups.iter().map(|g| implied(AuthRequest::new(run, ec2_arn("security-group", g)))));
    if !tags.is_empty() {
        for kind in ["instance", "volume"] {
            out.push(
                AuthRequest::new("ec2:CreateTags", ec2_arn(kind, "*"))
                    .request_tags(tags)
                    .with("ec2:CreateAction", "RunInstances")
                    .implied_by(if call == run { "ec2:RunInstances with tag specifications" } else { call }),
            );
        }
    }
    if let Some(role) = &data.instance_profile_role {
        out.push(AuthRequest::new("iam:PassRole", role_arn(role)).with("iam:PassedToService", "ec2.amazonaws.com").implied_by(if call == run {
            "ec2:RunInstances with an instance profile"
        } else {
            call
        }));
    }
    out
}
