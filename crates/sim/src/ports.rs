//! The port traits on the simulated account.

use std::collections::BTreeMap;

use async_trait::async_trait;
use stepdeploy_core::config::SCALING_PROCESSES;
use stepdeploy_core::model::{GroupSettings, LaunchTemplateRef, Lifecycle};
use stepdeploy_core::ports::{
    CommandRequest, CommandRunner, CommandStatus, Decrement, Ec2Instance, GroupDescription, GroupMember, GroupReader, GroupUpdate, GroupWriter,
    Image, Images, InstanceLauncher, InstanceReader, Invocation, LaunchRequest, LaunchTemplates, ListenerRule, ListenerRules, Parameter, Parameters,
    PortResult, ProcessControl, RuleAction, RuleSpec, TargetHealth, TargetHealthReader, TargetRegistration, TemplateVersion,
};

use crate::iam::{AuthRequest, document_arn, ec2_arn, ec2_global_arn, group_arn, parameter_arn};
use crate::world::{Inst, SimCommand, SimImage, TemplateVersionData, World};
use crate::{CommandScript, Sim};

const ASG: &str = "autoscaling";
const EC2: &str = "ec2";
const SSM: &str = "ssm";
const ELB: &str = "elbv2";

/// An action AWS authorizes on no resource (`*`): the Describe and Get calls.
fn unscoped(action: &str) -> Vec<AuthRequest> {
    vec![AuthRequest::new(action, "*")]
}

/// An Auto Scaling action on the group `name`, with its tags.
fn on_group(world: &World, action: &str, name: &str) -> Vec<AuthRequest> {
    vec![AuthRequest::new(action, group_arn(name)).resource_tags(&world.tags_of(name))]
}

/// An ELB action on a target group, listener or rule (by ARN), with its tags.
fn on_elb(world: &World, action: &str, arn: &str) -> Vec<AuthRequest> {
    vec![AuthRequest::new(action, arn).resource_tags(&world.tags_of(arn))]
}

fn has_tags(tags: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|(k, v)| tags.get(k) == Some(v))
}

#[async_trait]
impl GroupReader for Sim {
    async fn describe_group(&self, name: &str) -> PortResult<GroupDescription> {
        let mut world = self.lock();
        world.call(ASG, "DescribeAutoScalingGroups", unscoped("autoscaling:DescribeAutoScalingGroups"))?;
        let now = world.now;
        let group = world.groups.get(name).ok_or_else(|| {
            World::not_found(ASG, "DescribeAutoScalingGroups", "ValidationError", format!("AutoScalingGroup name not found - {name}"))
        })?;
        let instances = world
            .instances
            .values()
            .filter(|i| i.group.as_deref() == Some(name) && !i.is_terminated(now))
            .map(|i| GroupMember {
                id: i.id.clone(),
                lifecycle: Lifecycle::parse(i.lifecycle(now)),
                healthy: true,
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
            },
            instances,
        })
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
            requests.extend(world.run_instances_requests("autoscaling:UpdateAutoScalingGroup", &id, &data, &group.subnets(), &tags));
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
        Ok(())
    }
}

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
        Ok(ids.iter().filter_map(|id| world.instances.get(id)).map(|i| ec2_view(i, now)).collect())
    }

    async fn find_instances(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Ec2Instance>> {
        let mut world = self.lock();
        world.call(EC2, "DescribeInstances", unscoped("ec2:DescribeInstances"))?;
        let now = world.now;
        Ok(world
            .instances
            .values()
            .filter(|i| !i.is_terminated(now) && i.terminating_since.is_none() && has_tags(&i.tags, tags))
            .map(|i| ec2_view(i, now))
            .collect())
    }

    async fn instances_using_images(&self, image_ids: &[String]) -> PortResult<Vec<Ec2Instance>> {
        let mut world = self.lock();
        world.call(EC2, "DescribeInstances", unscoped("ec2:DescribeInstances"))?;
        let now = world.now;
        Ok(world.instances.values().filter(|i| !i.is_terminated(now) && image_ids.contains(&i.image_id)).map(|i| ec2_view(i, now)).collect())
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
                // The request names no subnet, so EC2 launches in the default VPC's default subnet.
                let subnets = vec!["subnet-default".to_string()];
                world.run_instances_requests("ec2:RunInstances", &id, &data, &subnets, &tags)
            }
            _ => unscoped("ec2:RunInstances"),
        };
        world.call(EC2, OP, requests)?;
        let (_, data) = resolved.ok_or_else(|| {
            World::invalid(EC2, OP, "InvalidLaunchTemplateId.NotFound", format!("launch template {:?} not found", request.launch_template))
        })?;
        let image = request.image_id.clone().unwrap_or(data.image_id);
        if !world.images.contains_key(&image) {
            return Err(World::invalid(EC2, OP, "InvalidAMIID.NotFound", format!("The image id '[{image}]' does not exist")));
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
        inst.in_service_at = now + boot;
        inst.healthy_at = Some(now + boot);
        inst.ssm_online_at = now + boot + online;
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
        if let Some(missing) = ids.iter().find(|id| !world.instances.contains_key(*id)) {
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
        Ok(ids.iter().filter_map(|id| world.images.get(id).map(|i| image_view(id, i, now))).collect())
    }

    async fn find_images(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Image>> {
        let mut world = self.lock();
        world.call(EC2, "DescribeImages", unscoped("ec2:DescribeImages"))?;
        let now = world.now;
        Ok(world.images.iter().filter(|(_, i)| has_tags(&i.tags, tags)).map(|(id, i)| image_view(id, i, now)).collect())
    }

    async fn delete_image(&self, image: &Image) -> PortResult<()> {
        let mut world = self.lock();
        let tags = world.images.get(&image.id).map(|i| i.tags.clone()).unwrap_or_default();
        world.call(EC2, "DeregisterImage", vec![AuthRequest::new("ec2:DeregisterImage", ec2_global_arn("image", &image.id)).resource_tags(&tags)])?;
        world.images.remove(&image.id);
        for snapshot in &image.snapshot_ids {
            let tags = world.snapshots.get(snapshot).cloned().unwrap_or_default();
            world.call(
                EC2,
                "DeleteSnapshot",
                vec![AuthRequest::new("ec2:DeleteSnapshot", ec2_global_arn("snapshot", snapshot)).resource_tags(&tags)],
            )?;
            world.snapshots.remove(snapshot);
        }
        Ok(())
    }
}

#[async_trait]
impl CommandRunner for Sim {
    async fn send_command(&self, request: &CommandRequest<'_>) -> PortResult<String> {
        const OP: &str = "SendCommand";
        let (instance_ids, timeout_seconds) = (request.instance_ids, request.timeout_seconds);
        // What the shell runs: the agent sets SSM_revision from the document's ENV_VAR parameter.
        let rendered = request.command.replace(stepdeploy_core::revision::COMMAND_PLACEHOLDER, request.revision);
        let command = rendered.as_str();
        let mut world = self.lock();
        let mut requests = vec![AuthRequest::new("ssm:SendCommand", document_arn(request.document))];
        requests.extend(
            instance_ids.iter().map(|id| AuthRequest::new("ssm:SendCommand", ec2_arn("instance", id)).resource_tags(&world.instance_tags(id))),
        );
        world.call(SSM, OP, requests)?;
        let now = world.now;
        for id in instance_ids {
            let online = world.instances.get(id).is_some_and(|i| !i.is_terminated(now) && i.terminating_since.is_none() && i.ssm_online_at <= now);
            if !online {
                return Err(World::invalid(SSM, OP, "InvalidInstanceId", format!("Instance {id} is not in a valid state for SSM (not online)")));
            }
        }
        let outcomes = instance_ids
            .iter()
            .map(|id| {
                let script = world
                    .scripts
                    .iter()
                    .rev()
                    .find(|s| command.contains(&s.contains) && s.instance_id.as_ref().is_none_or(|only| only == id))
                    .cloned()
                    .unwrap_or(CommandScript {
                        contains: String::new(),
                        instance_id: None,
                        exit_code: 0,
                        stdout: String::new(),
                        stderr: String::new(),
                        duration_seconds: 5,
                    });
                (id.clone(), script)
            })
            .collect();
        let id = format!("{:08x}-0000-4000-8000-{:012x}", world.next_id() as u32, world.next_id() & 0xffff_ffff_ffff);
        world.commands.insert(
            id.clone(),
            SimCommand {
                instance_ids: instance_ids.to_vec(),
                command: command.to_string(),
                sent: request.command.to_string(),
                revision: request.revision.to_string(),
                sent_at: now,
                timeout_seconds: timeout_seconds as i64,
                outcomes,
            },
        );
        Ok(id)
    }

    async fn invocations(&self, command_id: &str, instance_ids: &[String]) -> PortResult<Vec<Invocation>> {
        const OP: &str = "GetCommandInvocation";
        let mut world = self.lock();
        let mut out = Vec::new();
        for id in instance_ids {
            world.call(SSM, OP, unscoped("ssm:GetCommandInvocation"))?;
            let now = world.now;
            let command = world
                .commands
                .get(command_id)
                .ok_or_else(|| World::not_found(SSM, OP, "InvalidCommandId", format!("command {command_id} not found")))?;
            let script = command
                .outcomes
                .get(id)
                .ok_or_else(|| World::not_found(SSM, OP, "InvocationDoesNotExist", format!("no invocation of {command_id} on {id}")))?;
            let timed_out = script.duration_seconds > command.timeout_seconds;
            let ends = command.sent_at + script.duration_seconds.min(command.timeout_seconds);
            let (status, detail, exit_code) = if now < ends {
                (CommandStatus::Running, "InProgress", None)
            } else if timed_out {
                (CommandStatus::Failed, "TimedOut", Some(-1))
            } else if script.exit_code == 0 {
                (CommandStatus::Succeeded, "Success", Some(0))
            } else {
                (CommandStatus::Failed, "Failed", Some(script.exit_code))
            };
            let done = status != CommandStatus::Running;
            out.push(Invocation {
                instance_id: id.clone(),
                status,
                status_detail: detail.to_string(),
                exit_code,
                stdout: if done { script.stdout.clone() } else { String::new() },
                stderr: if done { script.stderr.clone() } else { String::new() },
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl Parameters for Sim {
    async fn get_parameter(&self, name: &str) -> PortResult<Option<Parameter>> {
        let mut world = self.lock();
        world.call(SSM, "GetParameter", vec![AuthRequest::new("ssm:GetParameter", parameter_arn(name))])?;
        Ok(world.parameters.get(name).cloned())
    }

    async fn create_parameter(&self, name: &str, value: &str) -> PortResult<bool> {
        let mut world = self.lock();
        world.call(SSM, "PutParameter", vec![AuthRequest::new("ssm:PutParameter", parameter_arn(name))])?;
        if world.parameters.contains_key(name) {
            return Ok(false);
        }
        let now = world.now;
        world.parameters.insert(name.to_string(), Parameter { name: name.to_string(), value: value.to_string(), version: 1, modified_at: Some(now) });
        Ok(true)
    }

    async fn put_parameter(&self, name: &str, value: &str) -> PortResult<()> {
        let mut world = self.lock();
        world.call(SSM, "PutParameter", vec![AuthRequest::new("ssm:PutParameter", parameter_arn(name))])?;
        let now = world.now;
        let version = world.parameters.get(name).map_or(1, |p| p.version + 1);
        world.parameters.insert(name.to_string(), Parameter { name: name.to_string(), value: value.to_string(), version, modified_at: Some(now) });
        Ok(())
    }

    async fn delete_parameter(&self, name: &str) -> PortResult<bool> {
        let mut world = self.lock();
        world.call(SSM, "DeleteParameter", vec![AuthRequest::new("ssm:DeleteParameter", parameter_arn(name))])?;
        Ok(world.parameters.remove(name).is_some())
    }
}

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
