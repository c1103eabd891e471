//! An environment's baked images: the tags a bake puts on what it makes,
//! pruning old images, and finding the version that ships a revision.

use std::collections::{BTreeMap, BTreeSet};

use super::account::DeployAccount;
use super::error::StepError;
use crate::config::{Config, Environment};
use crate::errors;
use crate::model::{LaunchTemplateRef, Timestamp};
use crate::ports::{ErrorKind, Image, Snapshot};

/// Tag keys a bake puts on its builder, image and snapshots.
pub mod tags {
    /// The deployment.
    pub const DEPLOYMENT: &str = crate::fleet::DEPLOYMENT_TAG;
    /// The environment.
    pub const ENVIRONMENT: &str = "stepdeploy:environment";
    /// The git revision baked (the fleet model reads it from instances too).
    pub const REVISION: &str = crate::fleet::REVISION_TAG;
    /// The execution that baked it.
    pub const EXECUTION: &str = "stepdeploy:execution";
    /// `builder` on builder instances.
    pub const ROLE: &str = "stepdeploy:role";
}

/// What a prune keeps and deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunePlan {
    /// Deleted, oldest first.
    pub delete: Vec<Image>,
    /// Kept though old, because something uses them.
    pub kept_in_use: Vec<String>,
}

/// Which of an environment's baked images to delete: all but the newest
/// `retain`, and never one in `in_use`. Pure.
pub fn plan_prune(mut images: Vec<Image>, retain: usize, in_use: &BTreeSet<String>) -> PrunePlan {
    images.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    let old = images.split_off(retain.min(images.len()));
    let (kept, mut delete): (Vec<Image>, Vec<Image>) = old.into_iter().partition(|i| in_use.contains(&i.id));
    delete.reverse();
    PrunePlan { delete, kept_in_use: kept.into_iter().map(|i| i.id).collect() }
}

/// **prune** of an environment (after a release's deploy).
pub async fn prune_environment(account: &dyn DeployAccount, config: &Config, environment: &str, now: Timestamp) -> Result<Vec<String>, StepError> {
    let env = config.environment(environment).map_err(|e| StepError::input(e.to_string()))?;
    let Some(template) = env.launch_template.as_deref() else {
        return Err(StepError { name: errors::CONFIG_INVALID, message: format!("environments.{environment}.launch_template: required to prune") });
    };
    prune_images(account, &config.deployment, environment, env, &LaunchTemplateRef::from_config(template), now).await
}

/// Keeps the newest `images.retain` baked images of the environment; never
/// deletes one a launch template version in use (the default, the latest,
/// the group's) or any instance refers to. Returns the deleted ids.
pub(super) async fn prune_images(
    account: &dyn DeployAccount,
    deployment: &str,
    environment: &str,
    settings: &Environment,
    template: &LaunchTemplateRef,
    now: Timestamp,
) -> Result<Vec<String>, StepError> {
    let ours = BTreeMap::from([(tags::DEPLOYMENT.to_string(), deployment.to_string()), (tags::ENVIRONMENT.to_string(), environment.to_string())]);
    let images = account.find_images(&ours).await?;
    // Snapshots an earlier delete left (in use just after DeregisterImage) go first, once they are old enough.
    let grace = settings.images.available_timeout_seconds.saturating_add(ORPHAN_SNAPSHOT_GRACE_SECONDS) as i64;
    sweep_orphan_snapshots(account, &ours, &images, |s| s.started_at.is_some_and(|at| now - at >= grace)).await?;
    let retain = usize::try_from(settings.images.retain).unwrap_or(1).max(1);
    if images.len() <= retain {
        return Ok(Vec::new());
    }
    let mut versions = vec!["$Default".to_string(), "$Latest".to_string()];
    match account.describe_group(&settings.auto_scaling_group).await {
        Ok(group) => versions.extend(group.settings.launch_template.and_then(|lt| lt.version)),
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut in_use: BTreeSet<String> = account.describe_versions(template, &versions).await?.into_iter().filter_map(|v| v.image_id).collect();
    let candidates = plan_prune(images.clone(), retain, &in_use);
    let ids: Vec<String> = candidates.delete.iter().map(|i| i.id.clone()).collect();
    in_use.extend(account.instances_using_images(&ids).await?.into_iter().filter_map(|i| i.image_id));
    let mut pruned = Vec::new();
    for image in plan_prune(images, retain, &in_use).delete {
        // Snapshots still in use are swept by a later prune, found by their tags.
        account.delete_image(&image).await?;
        pruned.push(image.id);
    }
    Ok(pruned)
}

/// Added to `images.available_timeout_seconds`: a tagged snapshot no image lists is an orphan
/// only when older than that (an image still pending may not list its snapshots yet).
pub const ORPHAN_SNAPSHOT_GRACE_SECONDS: u64 = 3600;

/// Deletes the snapshots tagged `tags` that no image of `images` uses and `old_enough` accepts:
/// what DeleteSnapshot refused as still in use right after DeregisterImage, or what a step that
/// died between the two calls left. Returns the ones EC2 still reports in use.
pub(super) async fn sweep_orphan_snapshots(
    account: &dyn DeployAccount,
    tags: &BTreeMap<String, String>,
    images: &[Image],
    old_enough: impl Fn(&Snapshot) -> bool,
) -> Result<Vec<String>, StepError> {
    let used: BTreeSet<&str> = images.iter().flat_map(|i| i.snapshot_ids.iter().map(String::as_str)).collect();
    let mut still_in_use = Vec::new();
    for snapshot in account.find_snapshots(tags).await? {
        if used.contains(snapshot.id.as_str()) || !old_enough(&snapshot) {
            continue;
        }
        if !account.delete_snapshot(&snapshot.id).await? {
            still_in_use.push(snapshot.id);
        }
    }
    Ok(still_in_use)
}

/// The newest launch template version whose image this deployment's bake
/// made from `revision` (for `stepdeploy deploy ENV --revision SHA`). It looks
/// at the last [`REVISION_LOOKBACK`] versions.
pub async fn version_for_revision(
    account: &dyn DeployAccount,
    deployment: &str,
    environment: &str,
    template: &LaunchTemplateRef,
    revision: &str,
) -> Result<u64, StepError> {
    let wanted = BTreeMap::from([
        (tags::DEPLOYMENT.to_string(), deployment.to_string()),
        (tags::ENVIRONMENT.to_string(), environment.to_string()),
        (tags::REVISION.to_string(), revision.to_string()),
    ]);
    let images: BTreeSet<String> = account.find_images(&wanted).await?.into_iter().map(|i| i.id).collect();
    let not_found = |why: String| {
        StepError::input(format!(
            "revision: {revision:?}: {why}; bake it first (`stepdeploy bake {environment} --revision {revision}`) or ship it in one go with `stepdeploy release`"
        ))
    };
    if images.is_empty() {
        return Err(not_found(format!("no image of {deployment}/{environment} carries {}={revision}", tags::REVISION)));
    }
    let latest = account.describe_versions(template, &["$Latest".to_string()]).await?.first().map(|v| v.version).unwrap_or(0);
    let recent: Vec<String> = (latest.saturating_sub(REVISION_LOOKBACK - 1).max(1)..=latest).map(|n| n.to_string()).collect();
    let versions = if recent.is_empty() { Vec::new() } else { account.describe_versions(template, &recent).await? };
    versions.iter().filter(|v| v.image_id.as_ref().is_some_and(|id| images.contains(id))).map(|v| v.version).max().ok_or_else(|| {
        not_found(format!(
            "none of the last {REVISION_LOOKBACK} launch template versions uses its image(s) {}",
            images.iter().cloned().collect::<Vec<_>>().join(", ")
        ))
    })
}

/// How many recent launch template versions [`version_for_revision`] reads.
pub const REVISION_LOOKBACK: u64 = 50;

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, created_at: Timestamp) -> Image {
        Image {
            id: id.into(),
            name: id.into(),
            state: "available".into(),
            created_at: Some(created_at),
            tags: BTreeMap::new(),
            snapshot_ids: Vec::new(),
        }
    }

    #[test]
    fn prune_keeps_the_newest_and_everything_in_use() {
        let images = (1..=6).map(|n| image(&format!("ami-{n}"), n * 100)).collect::<Vec<_>>();
        let in_use = BTreeSet::from(["ami-2".to_string()]);
        let plan = plan_prune(images, 3, &in_use);
        assert_eq!(plan.delete.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["ami-1", "ami-3"], "oldest first, newest 3 kept");
        assert_eq!(plan.kept_in_use, ["ami-2"]);
        assert!(plan_prune(vec![image("ami-1", 1)], 1, &BTreeSet::new()).delete.is_empty());
    }
}
