//! Reading a whole group snapshot and applying a plan, through the ports.
//!
//! A poll costs one Auto Scaling call, one EC2 call and one ELBv2 call per
//! target group, however many instances the group has.

use std::collections::BTreeMap;

use crate::model::Lifecycle;
use crate::model::{GroupSnapshot, Instance, LaunchTemplateRef, Timestamp};
use crate::planner::Action;
use crate::ports::{
    Decrement, ErrorKind, GroupReader, GroupUpdate, GroupWriter, InstanceReader, MAX_STANDBY_PER_CALL, PortError, PortResult, TargetHealthReader,
};

/// The EC2 tag that carries an instance's (or image's) git revision.
pub const REVISION_TAG: &str = "stepdeploy:revision";

/// The tag that ties a resource to one deployment: stepdeploy's IAM policies condition on it.
pub const DEPLOYMENT_TAG: &str = "stepdeploy:deployment";

/// Joins Auto Scaling, EC2 and ELBv2 views of a group into one snapshot.
///
/// Target health is read for `target_group_arns` and intersected with the
/// group's current members (a target group may list instances that left).
pub async fn read_snapshot(
    groups: &dyn GroupReader,
    instances: &dyn InstanceReader,
    targets: &dyn TargetHealthReader,
    group_name: &str,
    target_group_arns: &[String],
    now: Timestamp,
) -> PortResult<GroupSnapshot> {
    let group = groups.describe_group(group_name).await?;
    let ids: Vec<String> = group.instances.iter().map(|m| m.id.clone()).collect();
    let ec2 = if ids.is_empty() { Vec::new() } else { instances.describe_instances(&ids).await? };
    let ec2: BTreeMap<&str, _> = ec2.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut health: BTreeMap<String, BTreeMap<String, crate::model::TargetState>> = BTreeMap::new();
    for arn in target_group_arns {
        for target in targets.describe_target_health(arn).await? {
            health.entry(target.instance_id).or_default().insert(arn.clone(), target.state);
        }
    }
    let members = group
        .instances
        .iter()
        .map(|m| {
            let details = ec2.get(m.id.as_str());
            Instance {
                id: m.id.clone(),
                lifecycle: m.lifecycle.clone(),
                asg_healthy: m.healthy,
                target_health: health.remove(&m.id).unwrap_or_default(),
                image_id: details.and_then(|d| d.image_id.clone()),
                revision: details.and_then(|d| d.tags.get(REVISION_TAG).cloned()),
                launch_template_id: m.launch_template_id.clone(),
                launch_template_version: m.launch_template_version.clone(),
                launched_at: details.and_then(|d| d.launched_at),
                availability_zone: m.availability_zone.clone(),
                protected_from_scale_in: m.protected_from_scale_in,
            }
        })
        .collect();
    Ok(GroupSnapshot { settings: group.settings, instances: members, taken_at: now, activities: Vec::new() })
}

/// Applies a plan's actions in order. Every action is absolute or checked
/// against a fresh snapshot by the next step, so a retry converges.
///
/// A termination Auto Scaling rejects because the instance is already
/// leaving (it began terminating it since the snapshot: a health
/// replacement, a scale-in) is done: what was wanted is happening.
pub async fn apply(
    actions: &[Action],
    group_name: &str,
    template: &LaunchTemplateRef,
    writer: &dyn GroupWriter,
    reader: &dyn GroupReader,
) -> PortResult<()> {
    for action in actions {
        match action {
            Action::SetLaunchTemplateVersion { version } => {
                let update = GroupUpdate { launch_template: Some(template.at_version(version)), ..GroupUpdate::default() };
                writer.update_group(group_name, &update).await?;
            }
            Action::SetSizeBounds { min_size, max_size } => {
                let update = GroupUpdate { min_size: Some(*min_size), max_size: Some(*max_size), ..GroupUpdate::default() };
                writer.update_group(group_name, &update).await?;
            }
            Action::Terminate { instance_ids } => {
                for id in instance_ids {
                    match writer.terminate_instance(id, Decrement(true)).await {
                        Ok(()) => {}
                        Err(e) if e.kind == ErrorKind::Invalid => already_leaving(reader, writer, group_name, id, e).await?,
                        Err(e) => return Err(e),
                    }
                }
            }
            Action::EnterStandby { instance_ids } => {
                for ids in instance_ids.chunks(MAX_STANDBY_PER_CALL) {
                    writer.enter_standby(group_name, ids).await?;
                }
            }
            Action::ExitStandby { instance_ids } => {
                for ids in instance_ids.chunks(MAX_STANDBY_PER_CALL) {
                    writer.exit_standby(group_name, ids).await?;
                }
            }
            Action::TerminateStandby { instance_ids } => {
                // Outside desired capacity already: decrementing would take a live instance's place.
                for id in instance_ids {
                    match writer.terminate_instance(id, Decrement(false)).await {
                        Ok(()) => {}
                        // Already leaving (or gone): what was wanted is happening.
                        Err(e) if e.kind == ErrorKind::Invalid && !still_in_standby(reader, group_name, id).await? => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Action::SetDesiredCapacity { desired_capacity } => {
                writer.set_desired_capacity(group_name, *desired_capacity).await?;
            }
        }
    }
    Ok(())
}

/// Whether `id` is still a Standby member of the group.
async fn still_in_standby(reader: &dyn GroupReader, group_name: &str, id: &str) -> PortResult<bool> {
    let group = reader.describe_group(group_name).await?;
    Ok(group.instances.iter().any(|m| m.id == id && m.lifecycle.is_standby()))
}

/// After Auto Scaling rejected terminating `id`: done if it is already
/// leaving, keeping the decrement the call would have made (else Auto
/// Scaling replaces it); the rejection itself otherwise.
async fn already_leaving(reader: &dyn GroupReader, writer: &dyn GroupWriter, group_name: &str, id: &str, rejected: PortError) -> PortResult<()> {
    let group = reader.describe_group(group_name).await?;
    match group.instances.iter().find(|m| m.id == id) {
        // Gone already: nothing left to do; the next snapshot shows the capacity.
        None => Ok(()),
        Some(member) if member.lifecycle == Lifecycle::Terminating => {
            let desired = group.settings.desired_capacity.saturating_sub(1).max(group.settings.min_size);
            writer.set_desired_capacity(group_name, desired).await
        }
        Some(_) => Err(rejected),
    }
}
