//! doctor's checks of what the IAM policies, SSM and the timeouts assume of an account: the
//! deployment tag on everything stepdeploy acts on, SSM managing the instances, target group
//! timing that fits the configured timeouts, and room in the vCPU quota for the surge.

use super::check::{Check, fail, pass};
use crate::config::Environment;
use crate::fleet::DEPLOYMENT_TAG;
use crate::model::LaunchTemplateRef;
use crate::planner::{Policy, Strategy};
use crate::ports::{ErrorKind, GroupDescription, PortError, PortResult, SSM_ONLINE, Tags, TemplateVersion};
use crate::quota::{SurgeFit, surge_fit};
use crate::steps::DeployAccount;
use crate::steps::preflight::surge_instances;

/// How many ids a failed check names before "and N more".
const SHOWN: usize = 5;

fn some_of(ids: &[String]) -> String {
    let shown = ids.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if ids.len() > SHOWN { format!("{shown} and {} more", ids.len() - SHOWN) } else { shown }
}

/// A resource another check already reports missing is not reported again here.
fn unless_missing<T>(result: Result<T, PortError>, errors: &mut Vec<String>, what: &str) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) if e.kind == ErrorKind::NotFound => None,
        Err(e) => {
            errors.push(format!("{what}: {e}"));
            None
        }
    }
}

fn live_ids(group: &GroupDescription, in_service_only: bool) -> Vec<String> {
    group
        .instances
        .iter()
        .filter(|i| if in_service_only { i.lifecycle == crate::model::Lifecycle::InService } else { i.lifecycle.is_live() })
        .map(|i| i.id.clone())
        .collect()
}

/// The group, its launch template, target groups, listener and instances carry
/// `stepdeploy:deployment` = `deployment`: the IAM policies let the steps act on nothing else.
pub(super) async fn tags(account: &dyn DeployAccount, deployment: &str, env: &Environment, group: Option<&GroupDescription>) -> Check {
    let tagged = |tags: &Tags| tags.get(DEPLOYMENT_TAG).is_some_and(|v| v == deployment);
    let (mut untagged, mut errors) = (Vec::new(), Vec::new());
    if group.is_some() && unless_missing(account.group_tags(&env.auto_scaling_group).await, &mut errors, "group").is_some_and(|t| !tagged(&t)) {
        untagged.push(format!("group {}", env.auto_scaling_group));
    }
    if let Some(name) = &env.launch_template {
        let tags = account.launch_template_tags(&LaunchTemplateRef::from_config(name)).await;
        if unless_missing(tags, &mut errors, "launch template").is_some_and(|t| !tagged(&t)) {
            untagged.push(format!("launch template {name}"));
        }
    }
    let elb: Vec<String> = env.target_group_arns.iter().chain(env.listener_arn.iter()).cloned().collect();
    // One ARN a call: DescribeTags fails whole on one missing ARN, which its own check reports.
    for arn in &elb {
        if let Some(by_arn) = unless_missing(account.elb_tags(std::slice::from_ref(arn)).await, &mut errors, arn)
            && by_arn.get(arn).is_none_or(|t| !tagged(t))
        {
            untagged.push(arn.clone());
        }
    }
    let mut instances = 0;
    if let Some(group) = group {
        let ids = live_ids(group, false);
        if let Some(found) = unless_missing(account.describe_instances(&ids).await, &mut errors, "instances") {
            instances = found.len();
            let bare: Vec<String> = found.iter().filter(|i| !tagged(&i.tags)).map(|i| i.id.clone()).collect();
            if !bare.is_empty() {
                untagged.push(format!("{} instance(s): {}", bare.len(), some_of(&bare)));
            }
        }
    }
    let tag = format!("{DEPLOYMENT_TAG}={deployment}");
    if untagged.is_empty() && errors.is_empty() {
        return pass("tags", format!("{tag} on the group, launch template, {} load balancer resource(s) and {instances} instance(s)", elb.len()));
    }
    let mut detail = Vec::new();
    if !untagged.is_empty() {
        detail.push(format!("without {tag}: {}", untagged.join(", ")));
    }
    detail.extend(errors);
    fail(
        "tags",
        detail.join("; "),
        format!(
            "tag them {tag} (on the group with PropagateAtLaunch=true, then replace the instances): stepdeploy's IAM policies act on nothing else"
        ),
    )
}

/// The launch template version the group launches from (its version, and what
/// DescribeLaunchTemplateVersions says of it), read once for the checks that need it; `None` for
/// a group without a launch template.
pub(super) type GroupTemplate = Option<(String, PortResult<Option<TemplateVersion>>)>;

pub(super) async fn group_template(account: &dyn DeployAccount, group: &GroupDescription) -> GroupTemplate {
    let template = group.settings.launch_template.as_ref()?;
    let version = template.version.clone().unwrap_or_else(|| "$Default".into());
    let read = account.describe_versions(template, std::slice::from_ref(&version)).await.map(|v| v.into_iter().next());
    Some((version, read))
}

/// The group's launch template names an instance profile, and SSM sees every instance in service
/// online: bakes, worker deploys, migrations and in-place deploys run through it.
pub(super) async fn ssm(account: &dyn DeployAccount, env: &Environment, group: &GroupDescription, template: &GroupTemplate) -> Check {
    const FIX: &str = "give the launch template an instance profile whose role has AmazonSSMManagedInstanceCore, and the instances a route to SSM (a NAT gateway, or VPC endpoints for ssm, ssmmessages and ec2messages)";
    let Some((version, read)) = template else {
        return fail("SSM", "the group has no launch template to read an instance profile from".into(), FIX.into());
    };
    let profile = match read {
        Ok(found) => found.as_ref().and_then(|v| v.instance_profile.clone()),
        Err(e) => return fail("SSM", format!("launch template {}: {e}", env.launch_template.as_deref().unwrap_or_default()), FIX.into()),
    };
    let Some(profile) = profile else {
        return fail(
            "SSM",
            format!("the group's launch template version {version} sets no instance profile: SSM can't manage its instances"),
            FIX.into(),
        );
    };
    let ids = live_ids(group, true);
    let status = match account.ssm_ping_status(&ids).await {
        Ok(status) => status,
        Err(e) => return fail("SSM", e.to_string(), "the operator needs ssm:DescribeInstanceInformation (the OperatorPolicy has it)".into()),
    };
    let offline: Vec<String> = ids
        .iter()
        .filter(|id| status.get(*id).is_none_or(|s| s != SSM_ONLINE))
        .map(|id| format!("{id} ({})", status.get(id).map(String::as_str).unwrap_or("never registered")))
        .collect();
    if offline.is_empty() {
        pass("SSM", format!("instance profile {profile}; {} instance(s) in service, all online in SSM", ids.len()))
    } else {
        fail("SSM", format!("{} of {} instance(s) in service not online in SSM: {}", offline.len(), ids.len(), some_of(&offline)), FIX.into())
    }
}

/// Each target group's health checks can pass, and its draining end, within `health.timeout_seconds`
/// (an instance's deadline in a rollout, and a batch's drain deadline in an in-place deploy).
pub(super) async fn timing(account: &dyn DeployAccount, env: &Environment) -> Option<Check> {
    let limit = env.health.timeout_seconds;
    let (mut problems, mut errors, mut read) = (Vec::new(), Vec::new(), 0);
    for arn in &env.target_group_arns {
        let Some(timing) = unless_missing(account.target_group_timing(arn).await, &mut errors, arn) else { continue };
        read += 1;
        let to_healthy = timing.seconds_to_healthy();
        if to_healthy >= limit {
            problems.push(format!(
                "{arn}: a new target passes its health checks after {to_healthy} s at the soonest ({} × {} s), not under health.timeout_seconds ({limit} s)",
                timing.healthy_threshold, timing.interval_seconds
            ));
        }
        if u64::from(timing.deregistration_delay_seconds) >= limit {
            problems.push(format!(
                "{arn}: draining takes up to {} s (deregistration delay), not under health.timeout_seconds ({limit} s): an in-place deploy's drain would time out",
                timing.deregistration_delay_seconds
            ));
        }
    }
    if read == 0 && errors.is_empty() {
        return None;
    }
    problems.extend(errors);
    Some(if problems.is_empty() {
        pass("health timing", format!("{read} target group(s): health checks and draining fit in health.timeout_seconds ({limit} s)"))
    } else {
        fail(
            "health timing",
            problems.join("; "),
            "raise health.timeout_seconds (it must also cover the boot), or shorten the target group's health check interval, healthy threshold or deregistration delay".into(),
        )
    })
}

/// The most instances a deploy launches at once fit in the account's On-Demand vCPU quota.
pub(super) async fn vcpu_quota(account: &dyn DeployAccount, env: &Environment, group: &GroupDescription, template: &GroupTemplate) -> Check {
    let template_type = match template {
        Some((_, Ok(Some(version)))) => version.instance_type.clone(),
        _ => None,
    };
    let Some(instance_type) = template_type.or_else(|| env.instance_type.clone()) else {
        return pass("vCPU quota", "not checked: neither the launch template nor instance_type names an instance type".into());
    };
    let Ok(policy) = Policy::new(env.rollout.min_healthy_percent, env.rollout.max_healthy_percent, env.rollout.batch_size) else {
        return pass("vCPU quota", "not checked: the rollout policy is invalid (config check says why)".into());
    };
    let desired = group.settings.desired_capacity;
    let live = live_ids(group, false).len() as u32;
    // A serial deploy's surge follows the policy; a full deploy launches a whole second fleet.
    let surge = [Strategy::Rolling, Strategy::AllAtOnce].into_iter().map(|s| surge_instances(desired, live, s, &policy)).max().unwrap_or(0);
    match surge_fit(account, &instance_type, surge).await {
        Ok(fit @ SurgeFit::TooBig { .. }) => fail("vCPU quota", fit.describe(surge, &instance_type), fit.fix().unwrap_or_default()),
        Ok(fit) => pass("vCPU quota", fit.describe(surge, &instance_type)),
        Err(e) => fail(
            "vCPU quota",
            e.to_string(),
            "the operator needs ec2:DescribeInstanceTypes, servicequotas:GetServiceQuota and cloudwatch:GetMetricStatistics (the OperatorPolicy has them)".into(),
        ),
    }
}
