//! EC2 on the sim: instances, launch templates, images.

use std::collections::BTreeMap;

use async_trait::async_trait;
use stepdeploy_core::model::{LaunchTemplateRef, Timestamp};
use stepdeploy_core::ports::*;

use super::common::*;
use crate::Sim;
use crate::iam::{AuthRequest, ec2_arn, ec2_global_arn};
use crate::world::{Inst, SimImage, TemplateVersionData, World};

fn ec2_view(inst: &Inst, now: i64) -> Ec2Instance {
    Ec2Instance {
        id: inst.id.clone(),
        state: inst.ec2_state(now).to_string(),
        image_id: Some(inst.image_id.clone()),
        launched_at: Some(inst.launched_at),
        tags: inst.tags.clone(),
    }
}

#[async_trait]
impl InstanceReader for Sim {
    async fn describe_instances(&self, ids: &[String]) -> PortResult<Vec<Ec2Instance>> {
        let mut world = self.lock();
        world.call(EC2, "DescribeInstances", unscoped("ec2:DescribeInstances"))?;
        let now = world.now;
        let lag = world.settings.ec2_listing_lag_seconds;
        Ok(ids.iter().filter_map(|id| world.instances.get(id)).filter(|i| i.listed_by_ec2(now, lag)).map(|i| ec2_view(i, now)).collect())
    }

    async fn find_instances(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Ec2Instance>> {
        let mut world = self.lock();
        world.call(EC2, "DescribeInstances", unscoped("ec2:DescribeInstances"))?;
        let now = world.now;
        Ok(world
            .instances
            .values()
            .filter(|i| i.listed_by_ec2(now, world.settings.ec2_listing_lag_seconds))
            .filter(|i| !i.is_terminated(now) && i.terminating_since.is_none() && has_tags(&i.tags, tags))
            .map(|i| ec2_view(i, now))
            .collect())
    }

    async fn instances_using_images(&self, image_ids: &[String]) -> PortResult<Vec<Ec2Instance>> {
        let mut world = self.lock();
        world.call(EC2, "DescribeInstances", unscoped("ec2:DescribeInstances"))?;
        let now = world.now;
        let lag = world.settings.ec2_listing_lag_seconds;
        Ok(world
            .instances
            .values()
            .filter(|i| i.listed_by_ec2(now, lag) && !i.is_terminated(now) && image_ids.contains(&i.image_id))
            .map(|i| ec2_view(i, now))
            .collect())
    }
}

#[async_trait]
impl InstanceLauncher for Sim {
    async fn launch_instance(&self, request: &LaunchRequest) -> PortResult<String> {
        const OP: &str = "RunInstances";
        let mut world = self.lock();
        let resolved = world.resolve_template(&request.launch_template);
        let requests = match (world.find_template_id(&request.launch_template), &resolved) {
            (Some(id), Some((_, data))) => {
                let data = TemplateVersionData { image_id: request.image_id.clone().unwrap_or(data.image_id.clone()), ..data.clone() };
                let mut tags = data.instance_tags.clone();
                tags.extend(request.tags.clone());
                let subnets: Vec<String> = request.subnet_id.iter().cloned().collect();
                run_instances_requests(&world, "ec2:RunInstances", &id, &data, &subnets, &tags)
            }
            _ => unscoped("ec2:RunInstances"),
        };
        world.call(EC2, OP, requests)?;
        // A retry with the same token returns the first launch's instance.
        if let Some(id) = request.client_token.as_ref().and_then(|t| world.client_tokens.get(t)) {
            return Ok(id.clone());
        }
        // The sim's account has no default VPC (as accounts that run their fleets in their own VPCs
        // often don't): a launch must name a subnet, or fail as EC2 does.
        let zone = match &request.subnet_id {
            None => {
                return Err(World::invalid(
                    EC2,
                    OP,
                    "VPCIdNotSpecified",
                    "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.".into(),
                ));
            }
            Some(subnet) => match world.groups.values().flat_map(|g| g.zones.clone()).find(|z| *subnet == format!("subnet-{z}")) {
                Some(zone) => zone,
                None => return Err(World::invalid(EC2, OP, "InvalidSubnetID.NotFound", format!("The subnet ID '{subnet}' does not exist"))),
            },
        };
        let (_, data) = resolved.ok_or_else(|| {
            World::invalid(EC2, OP, "InvalidLaunchTemplateId.NotFound", format!("launch template {:?} not found", request.launch_template))
        })?;
        let image = request.image_id.clone().unwrap_or(data.image_id);
        if !world.images.contains_key(&image) {
            return Err(World::invalid(EC2, OP, "InvalidAMIID.NotFound", format!("The image id '[{image}]' does not exist")));
        }
        let instance_type = request.instance_type.clone().or(data.instance_type.clone());
        if world.launches_within_quota(instance_type.as_deref(), 1) == 0 {
            let message = world.vcpu_limit_message();
            return Err(World::invalid(EC2, OP, "VcpuLimitExceeded", message));
        }
        let id = world.new_instance_id();
        let now = world.now;
        let boot = {
            let dist = world.settings.boot_seconds;
            dist.sample(&mut world.rng)
        };
        let online = {
            let dist = world.settings.ssm_online_seconds;
            dist.sample(&mut world.rng)
        };
        let mut tags = data.instance_tags;
        tags.extend(request.tags.clone());
        let mut inst = Inst::standalone(&id, &image, tags, now);
        inst.zone = zone;
        if let Some(token) = &request.client_token {
            world.client_tokens.insert(token.clone(), id.clone());
        }
        inst.in_service_at = now + boot;
        inst.healthy_at = Some(now + boot);
        inst.ssm_online_at = if data.instance_profile_role.is_some() { now + boot + online } else { Timestamp::MAX };
        inst.instance_type = instance_type;
        world.instances.insert(id.clone(), inst);
        Ok(id)
    }

    async fn terminate_instances(&self, ids: &[String]) -> PortResult<()> {
        let mut world = self.lock();
        let requests = ids
            .iter()
            .map(|id| AuthRequest::new("ec2:TerminateInstances", ec2_arn("instance", id)).resource_tags(&world.instance_tags(id)))
            .collect();
        world.call(EC2, "TerminateInstances", requests)?;
        // An instance EC2 doesn't list yet is unknown to TerminateInstances too.
        let (now, lag) = (world.now, world.settings.ec2_listing_lag_seconds);
        if let Some(missing) = ids.iter().find(|id| !world.instances.get(*id).is_some_and(|i| i.listed_by_ec2(now, lag))) {
            return Err(World::not_found(
                EC2,
                "TerminateInstances",
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{missing}' does not exist"),
            ));
        }
        for id in ids {
            world.begin_termination(id);
        }
        world.reconcile_all();
        Ok(())
    }
}

impl Sim {
    fn template_version(world: &World, id: &str, version: u64) -> Option<TemplateVersion> {
        let template = world.templates.get(id)?;
        let data = template.versions.get(&version)?;
        Some(TemplateVersion {
            template_id: id.to_string(),
            template_name: template.name.clone(),
            version,
            image_id: Some(data.image_id.clone()),
            is_default: template.default_version == version,
            // The sim's templates define no network interfaces: the subnet comes from the request.
            network_interfaces: false,
            interface_subnet: None,
            instance_type: data.instance_type.clone(),
            // The sim names a profile after its role.
            instance_profile: data.instance_profile_role.clone(),
        })
    }
}

#[async_trait]
impl LaunchTemplates for Sim {
    async fn describe_versions(&self, template: &LaunchTemplateRef, versions: &[String]) -> PortResult<Vec<TemplateVersion>> {
        const OP: &str = "DescribeLaunchTemplateVersions";
        let mut world = self.lock();
        world.call(EC2, OP, unscoped("ec2:DescribeLaunchTemplateVersions"))?;
        let id = world
            .find_template_id(template)
            .ok_or_else(|| World::not_found(EC2, OP, "InvalidLaunchTemplateId.NotFound", format!("launch template {template:?} does not exist")))?;
        let t = world.templates.get(&id).ok_or_else(|| World::not_found(EC2, OP, "InvalidLaunchTemplateId.NotFound", id.clone()))?;
        let mut numbers = Vec::new();
        for v in versions {
            let n = t.resolve(v).ok_or_else(|| {
                World::not_found(EC2, OP, "InvalidLaunchTemplateId.VersionNotFound", format!("Could not find launch template version {v}"))
            })?;
            numbers.push(n);
        }
        Ok(numbers.into_iter().filter_map(|n| Sim::template_version(&world, &id, n)).collect())
    }

    async fn create_version(
        &self,
        template: &LaunchTemplateRef,
        source_version: &str,
        image_id: &str,
        description: &str,
    ) -> PortResult<TemplateVersion> {
        const OP: &str = "CreateLaunchTemplateVersion";
        let mut world = self.lock();
        let id = world.find_template_id(template).unwrap_or_default();
        let requests = vec![AuthRequest::new("ec2:CreateLaunchTemplateVersion", ec2_arn("launch-template", &id)).resource_tags(&world.tags_of(&id))];
        world.call(EC2, OP, requests)?;
        let id = world
            .find_template_id(template)
            .ok_or_else(|| World::not_found(EC2, OP, "InvalidLaunchTemplateId.NotFound", format!("launch template {template:?} does not exist")))?;
        let t = world.templates.get_mut(&id).ok_or_else(|| World::not_found(EC2, OP, "InvalidLaunchTemplateId.NotFound", id.clone()))?;
        let source = t.resolve(source_version).and_then(|v| t.versions.get(&v).cloned()).ok_or_else(|| {
            World::invalid(EC2, OP, "InvalidLaunchTemplateId.VersionNotFound", format!("Could not find source version {source_version}"))
        })?;
        let number = t.versions.keys().next_back().copied().unwrap_or(0) + 1;
        t.versions.insert(number, TemplateVersionData { image_id: image_id.to_string(), description: description.to_string(), ..source });
        Sim::template_version(&world, &id, number).ok_or_else(|| World::not_found(EC2, OP, "InvalidLaunchTemplateId.NotFound", id))
    }

    async fn set_default_version(&self, template: &LaunchTemplateRef, version: u64) -> PortResult<()> {
        const OP: &str = "ModifyLaunchTemplate";
        let mut world = self.lock();
        let id = world.find_template_id(template).unwrap_or_default();
        let requests = vec![AuthRequest::new("ec2:ModifyLaunchTemplate", ec2_arn("launch-template", &id)).resource_tags(&world.tags_of(&id))];
        world.call(EC2, OP, requests)?;
        let id = world
            .find_template_id(template)
            .ok_or_else(|| World::not_found(EC2, OP, "InvalidLaunchTemplateId.NotFound", format!("launch template {template:?} does not exist")))?;
        let t = world.templates.get_mut(&id).ok_or_else(|| World::not_found(EC2, OP, "InvalidLaunchTemplateId.NotFound", id.clone()))?;
        if !t.versions.contains_key(&version) {
            return Err(World::invalid(
                EC2,
                OP,
                "InvalidLaunchTemplateId.VersionNotFound",
                format!("Could not find launch template version {version}"),
            ));
        }
        t.default_version = version;
        Ok(())
    }
}

fn image_view(id: &str, image: &SimImage, now: i64) -> Image {
    Image {
        id: id.to_string(),
        name: image.name.clone(),
        state: if image.available_at.is_some_and(|at| at <= now) { "available" } else { "pending" }.to_string(),
        created_at: Some(image.created_at),
        tags: image.tags.clone(),
        snapshot_ids: image.snapshot_ids.clone(),
    }
}

#[async_trait]
impl Images for Sim {
    async fn create_image(&self, instance_id: &str, name: &str, tags: &BTreeMap<String, String>) -> PortResult<String> {
        const OP: &str = "CreateImage";
        let mut world = self.lock();
        let mut requests = vec![
            AuthRequest::new("ec2:CreateImage", ec2_arn("instance", instance_id)).resource_tags(&world.instance_tags(instance_id)),
            AuthRequest::new("ec2:CreateImage", ec2_global_arn("image", "*")).request_tags(tags),
            AuthRequest::new("ec2:CreateImage", ec2_global_arn("snapshot", "*")).request_tags(tags),
        ];
        if !tags.is_empty() {
            for kind in ["image", "snapshot"] {
                requests.push(
                    AuthRequest::new("ec2:CreateTags", ec2_global_arn(kind, "*"))
                        .request_tags(tags)
                        .with("ec2:CreateAction", "CreateImage")
                        .implied_by("ec2:CreateImage with tag specifications"),
                );
            }
        }
        world.call(EC2, OP, requests)?;
        let now = world.now;
        if !world.instances.get(instance_id).is_some_and(|i| !i.is_terminated(now) && i.terminating_since.is_none()) {
            return Err(World::invalid(EC2, OP, "InvalidInstanceID.NotFound", format!("The instance ID '{instance_id}' does not exist")));
        }
        if world.images.values().any(|i| i.name == name) {
            return Err(World::invalid(EC2, OP, "InvalidAMIName.Duplicate", format!("AMI name {name} is already in use by another AMI")));
        }
        let id = format!("ami-{:017x}", world.next_id());
        let snapshot = format!("snap-{:017x}", world.next_id());
        let create = {
            let dist = world.settings.image_create_seconds;
            dist.sample(&mut world.rng)
        };
        let never = world.images_never_available;
        // Tagged in the same call, as the image is.
        world.snapshots.insert(snapshot.clone(), tags.clone());
        world.snapshot_created.insert(snapshot.clone(), now);
        world.images.insert(
            id.clone(),
            SimImage {
                name: name.to_string(),
                available_at: (!never).then_some(now + create),
                created_at: now,
                tags: tags.clone(),
                snapshot_ids: vec![snapshot],
            },
        );
        Ok(id)
    }

    async fn describe_images(&self, ids: &[String]) -> PortResult<Vec<Image>> {
        let mut world = self.lock();
        world.call(EC2, "DescribeImages", unscoped("ec2:DescribeImages"))?;
        let now = world.now;
        let lag = world.settings.ec2_listing_lag_seconds;
        Ok(ids.iter().filter_map(|id| world.images.get(id).filter(|i| now >= i.created_at + lag).map(|i| image_view(id, i, now))).collect())
    }

    async fn find_images(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Image>> {
        let mut world = self.lock();
        world.call(EC2, "DescribeImages", unscoped("ec2:DescribeImages"))?;
        let now = world.now;
        let lag = world.settings.ec2_listing_lag_seconds;
        Ok(world.images.iter().filter(|(_, i)| now >= i.created_at + lag && has_tags(&i.tags, tags)).map(|(id, i)| image_view(id, i, now)).collect())
    }

    async fn delete_image(&self, image: &Image) -> PortResult<Vec<String>> {
        {
            let mut world = self.lock();
            let tags = world.images.get(&image.id).map(|i| i.tags.clone()).unwrap_or_default();
            world.call(
                EC2,
                "DeregisterImage",
                vec![AuthRequest::new("ec2:DeregisterImage", ec2_global_arn("image", &image.id)).resource_tags(&tags)],
            )?;
            if world.images.remove(&image.id).is_some() {
                // EC2 keeps reporting the image's snapshots in use for a while after DeregisterImage.
                let until = world.now + world.settings.snapshot_in_use_seconds;
                for snapshot in &image.snapshot_ids {
                    world.snapshot_in_use_until.insert(snapshot.clone(), until);
                }
            }
        }
        let mut in_use = Vec::new();
        for snapshot in &image.snapshot_ids {
            if !self.delete_snapshot(snapshot).await? {
                in_use.push(snapshot.clone());
            }
        }
        Ok(in_use)
    }

    async fn find_snapshots(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Snapshot>> {
        let mut world = self.lock();
        world.call(EC2, "DescribeSnapshots", unscoped("ec2:DescribeSnapshots"))?;
        Ok(world
            .snapshots
            .iter()
            .filter(|(_, t)| has_tags(t, tags))
            .map(|(id, t)| Snapshot { id: id.clone(), started_at: world.snapshot_created.get(id).copied(), tags: t.clone() })
            .collect())
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> PortResult<bool> {
        let mut world = self.lock();
        let tags = world.snapshots.get(snapshot_id).cloned().unwrap_or_default();
        world.call(
            EC2,
            "DeleteSnapshot",
            vec![AuthRequest::new("ec2:DeleteSnapshot", ec2_global_arn("snapshot", snapshot_id)).resource_tags(&tags)],
        )?;
        let in_use_by_image = world.images.values().any(|i| i.snapshot_ids.iter().any(|s| s == snapshot_id));
        let still_in_use = world.snapshot_in_use_until.get(snapshot_id).is_some_and(|until| world.now < *until);
        if in_use_by_image || still_in_use {
            return Ok(false);
        }
        world.snapshots.remove(snapshot_id);
        Ok(true)
    }
}
