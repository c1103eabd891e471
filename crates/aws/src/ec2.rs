//! EC2: instances, launch templates and images.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, InstanceType, LaunchTemplateSpecification, RequestLaunchTemplateData, ResourceType, Tag, TagSpecification};
use aws_smithy_types::date_time::{DateTime, Format};
use stepdeploy_core::model::LaunchTemplateRef;
use stepdeploy_core::ports::{
    Ec2Instance, ErrorKind, Image, Images, InstanceLauncher, InstanceReader, LaunchRequest, LaunchTemplates, PortError, PortResult, Snapshot,
    TemplateVersion,
};

use crate::error::{missing, port_error};

const SERVICE: &str = "ec2";

/// EC2 filters take at most 200 values.
const FILTER_VALUES: usize = 200;

/// The EC2 ports on the SDK.
#[derive(Clone, Debug)]
pub struct AwsEc2 {
    client: Client,
}

impl AwsEc2 {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn instances_matching(&self, filters: Vec<Filter>) -> PortResult<Vec<Ec2Instance>> {
        let mut pages = self.client.describe_instances().set_filters(Some(filters)).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error(SERVICE, "DescribeInstances", e))?;
            for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                let Some(id) = instance.instance_id() else { continue };
                out.push(Ec2Instance {
                    id: id.to_string(),
                    state: instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default(),
                    image_id: instance.image_id().map(str::to_string),
                    launched_at: instance.launch_time().map(DateTime::secs),
                    tags: tag_map(instance.tags()),
                });
            }
        }
        Ok(out)
    }

    async fn images_matching(&self, owners: Option<Vec<String>>, filters: Vec<Filter>) -> PortResult<Vec<Image>> {
        let mut pages = self.client.describe_images().set_owners(owners).set_filters(Some(filters)).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error(SERVICE, "DescribeImages", e))?;
            for image in page.images() {
                let Some(id) = image.image_id() else { continue };
                out.push(Image {
                    id: id.to_string(),
                    name: image.name().unwrap_or_default().to_string(),
                    state: image.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    created_at: image.creation_date().and_then(|d| DateTime::from_str(d, Format::DateTimeWithOffset).ok()).map(|d| d.secs()),
                    tags: tag_map(image.tags()),
                    snapshot_ids: image.block_device_mappings().iter().filter_map(|m| m.ebs()?.snapshot_id()).map(str::to_string).collect(),
                });
            }
        }
        Ok(out)
    }
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

fn tags_of(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn tag_filters(tags: &BTreeMap<String, String>) -> Vec<Filter> {
    tags.iter().map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build()).collect()
}

#[async_trait]
impl InstanceReader for AwsEc2 {
    async fn describe_instances(&self, ids: &[String]) -> PortResult<Vec<Ec2Instance>> {
        let mut out = Vec::new();
        // A filter, not InstanceIds: an unknown id must not fail the whole call.
        for chunk in ids.chunks(FILTER_VALUES) {
            let filter = Filter::builder().name("instance-id").set_values(Some(chunk.to_vec())).build();
            out.extend(self.instances_matching(vec![filter]).await?);
        }
        Ok(out)
    }

    async fn find_instances(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Ec2Instance>> {
        let mut filters = tag_filters(tags);
        filters.push(Filter::builder().name("instance-state-name").set_values(Some(vec!["pending".into(), "running".into()])).build());
        self.instances_matching(filters).await
    }

    async fn instances_using_images(&self, image_ids: &[String]) -> PortResult<Vec<Ec2Instance>> {
        let mut out = Vec::new();
        for chunk in image_ids.chunks(FILTER_VALUES) {
            let filters = vec![
                Filter::builder().name("image-id").set_values(Some(chunk.to_vec())).build(),
                // Stopped instances count: they start again from the same AMI.
                Filter::builder()
                    .name("instance-state-name")
                    .set_values(Some(vec!["pending".into(), "running".into(), "stopping".into(), "stopped".into()]))
                    .build(),
            ];
            out.extend(self.instances_matching(filters).await?);
        }
        Ok(out)
    }
}

fn ec2_template(template: &LaunchTemplateRef) -> LaunchTemplateSpecification {
    LaunchTemplateSpecification::builder()
        .set_launch_template_id(template.id.clone())
        .set_launch_template_name(if template.id.is_some() { None } else { template.name.clone() })
        .set_version(template.version.clone())
        .build()
}

#[async_trait]
impl InstanceLauncher for AwsEc2 {
    async fn launch_instance(&self, request: &LaunchRequest) -> PortResult<String> {
        const OP: &str = "RunInstances";
        let tags = TagSpecification::builder().resource_type(ResourceType::Instance).set_tags(Some(tags_of(&request.tags))).build();
        let out = self
            .client
            .run_instances()
            .launch_template(ec2_template(&request.launch_template))
            .set_image_id(request.image_id.clone())
            .set_instance_type(request.instance_type.as_deref().map(InstanceType::from))
            .min_count(1)
            .max_count(1)
            .tag_specifications(tags)
            .set_subnet_id(request.subnet_id.clone())
            .set_client_token(request.client_token.clone())
            .send()
            .await
            .map_err(|e| port_error(SERVICE, OP, e))?;
        out.instances().first().and_then(|i| i.instance_id()).map(str::to_string).ok_or_else(|| missing(SERVICE, OP, "InstanceId"))
    }

    async fn terminate_instances(&self, ids: &[String]) -> PortResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.client
            .terminate_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "TerminateInstances", e))?;
        Ok(())
    }
}

/// A failed DeleteSnapshot: `false` while EC2 still reports the snapshot in use (as it does for a
/// while after DeregisterImage), done when it is gone, the error otherwise
/// (<https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html>).
fn deleted_unless_in_use(e: PortError) -> PortResult<bool> {
    match e.code.as_deref() {
        Some("InvalidSnapshot.InUse") => Ok(false),
        Some("InvalidSnapshot.NotFound") => Ok(true),
        _ if e.kind == ErrorKind::NotFound => Ok(true),
        _ => Err(e),
    }
}

fn version_of(v: &aws_sdk_ec2::types::LaunchTemplateVersion, operation: &'static str) -> PortResult<TemplateVersion> {
    Ok(TemplateVersion {
        template_id: v.launch_template_id().ok_or_else(|| missing(SERVICE, operation, "LaunchTemplateId"))?.to_string(),
        template_name: v.launch_template_name().unwrap_or_default().to_string(),
        version: v.version_number().and_then(|n| u64::try_from(n).ok()).ok_or_else(|| missing(SERVICE, operation, "VersionNumber"))?,
        image_id: v.launch_template_data().and_then(|d| d.image_id()).map(str::to_string),
        is_default: v.default_version().unwrap_or(false),
        network_interfaces: v.launch_template_data().is_some_and(|d| !d.network_interfaces().is_empty()),
        interface_subnet: v
            .launch_template_data()
            .and_then(|d| d.network_interfaces().iter().find(|n| n.device_index().unwrap_or(0) == 0))
            .and_then(|n| n.subnet_id())
            .map(str::to_string),
        instance_type: v.launch_template_data().and_then(|d| d.instance_type()).map(|t| t.as_str().to_string()),
        instance_profile: v.launch_template_data().and_then(|d| d.iam_instance_profile()).and_then(|p| p.name().or(p.arn())).map(str::to_string),
    })
}

impl AwsEc2 {
    /// The launch template's tags (DescribeLaunchTemplates); `NotFound` for no such template.
    pub async fn launch_template_tags(&self, template: &LaunchTemplateRef) -> PortResult<BTreeMap<String, String>> {
        const OP: &str = "DescribeLaunchTemplates";
        let mut request = self.client.describe_launch_templates();
        request = match (&template.id, &template.name) {
            (Some(id), _) => request.launch_template_ids(id),
            (None, Some(name)) => request.launch_template_names(name),
            (None, None) => return Err(PortError::new(ErrorKind::Invalid, SERVICE, OP, None, "a launch template needs an id or a name")),
        };
        let out = request.send().await.map_err(|e| port_error(SERVICE, OP, e))?;
        let found = out
            .launch_templates()
            .first()
            .ok_or_else(|| PortError::new(ErrorKind::NotFound, SERVICE, OP, None, format!("launch template {template:?} not found")))?;
        Ok(found.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect())
    }

    /// An instance type's default vCPUs (DescribeInstanceTypes); `None` for a type EC2 doesn't know.
    pub async fn instance_vcpus(&self, instance_type: &str) -> PortResult<Option<u32>> {
        const OP: &str = "DescribeInstanceTypes";
        let out = match self.client.describe_instance_types().instance_types(InstanceType::from(instance_type)).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = port_error(SERVICE, OP, e);
                // An unknown type is `InvalidInstanceType`, not an outage.
                return if e.kind == ErrorKind::Invalid { Ok(None) } else { Err(e) };
            }
        };
        Ok(out
            .instance_types()
            .iter()
            .find(|t| t.instance_type().map(|t| t.as_str()) == Some(instance_type))
            .and_then(|t| t.v_cpu_info())
            .and_then(|v| v.default_v_cpus())
            .and_then(|n| u32::try_from(n).ok()))
    }
}

#[async_trait]
impl LaunchTemplates for AwsEc2 {
    async fn describe_versions(&self, template: &LaunchTemplateRef, versions: &[String]) -> PortResult<Vec<TemplateVersion>> {
        const OP: &str = "DescribeLaunchTemplateVersions";
        let out = self
            .client
            .describe_launch_template_versions()
            .set_launch_template_id(template.id.clone())
            .set_launch_template_name(if template.id.is_some() { None } else { template.name.clone() })
            .set_versions(Some(versions.to_vec()))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, OP, e))?;
        out.launch_template_versions().iter().map(|v| version_of(v, OP)).collect()
    }

    async fn create_version(
        &self,
        template: &LaunchTemplateRef,
        source_version: &str,
        image_id: &str,
        description: &str,
    ) -> PortResult<TemplateVersion> {
        const OP: &str = "CreateLaunchTemplateVersion";
        let out = self
            .client
            .create_launch_template_version()
            .set_launch_template_id(template.id.clone())
            .set_launch_template_name(if template.id.is_some() { None } else { template.name.clone() })
            .source_version(source_version)
            .version_description(description)
            .launch_template_data(RequestLaunchTemplateData::builder().image_id(image_id).build())
            .send()
            .await
            .map_err(|e| port_error(SERVICE, OP, e))?;
        version_of(out.launch_template_version().ok_or_else(|| missing(SERVICE, OP, "LaunchTemplateVersion"))?, OP)
    }

    async fn set_default_version(&self, template: &LaunchTemplateRef, version: u64) -> PortResult<()> {
        self.client
            .modify_launch_template()
            .set_launch_template_id(template.id.clone())
            .set_launch_template_name(if template.id.is_some() { None } else { template.name.clone() })
            .default_version(version.to_string())
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "ModifyLaunchTemplate", e))?;
        Ok(())
    }
}

#[async_trait]
impl Images for AwsEc2 {
    async fn create_image(&self, instance_id: &str, name: &str, tags: &BTreeMap<String, String>) -> PortResult<String> {
        const OP: &str = "CreateImage";
        let spec = |kind| TagSpecification::builder().resource_type(kind).set_tags(Some(tags_of(tags))).build();
        let out = self
            .client
            .create_image()
            .instance_id(instance_id)
            .name(name)
            .tag_specifications(spec(ResourceType::Image))
            .tag_specifications(spec(ResourceType::Snapshot))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, OP, e))?;
        out.image_id().map(str::to_string).ok_or_else(|| missing(SERVICE, OP, "ImageId"))
    }

    async fn describe_images(&self, ids: &[String]) -> PortResult<Vec<Image>> {
        let mut out = Vec::new();
        // A filter, not ImageIds: an unknown (e.g. just deregistered) id must not fail the call.
        for chunk in ids.chunks(FILTER_VALUES) {
            let filter = Filter::builder().name("image-id").set_values(Some(chunk.to_vec())).build();
            out.extend(self.images_matching(None, vec![filter]).await?);
        }
        Ok(out)
    }

    async fn find_images(&self, tags: &BTreeMap<String, String>) -> PortResult<Vec<Image>> {
        self.images_matching(Some(vec!["self".into()]), tag_filters(tags)).await
    }

    async fn delete_image(&self, image: &Image) -> PortResult<Vec<String>> {
        // Already gone counts as done, so a retried cleanup converges.
        let gone = |e: &PortError| e.kind == ErrorKind::NotFound || e.code.as_deref() == Some("InvalidAMIID.Unavailable");
        if let Err(e) = self.client.deregister_image().image_id(&image.id).send().await {
            let e = port_error(SERVICE, "DeregisterImage", e);
            if !gone(&e) {
                return Err(e);
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
        let mut pages = self.client.describe_snapshots().owner_ids("self").set_filters(Some(tag_filters(tags))).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error(SERVICE, "DescribeSnapshots", e))?;
            for snapshot in page.snapshots() {
                let Some(id) = snapshot.snapshot_id() else { continue };
                out.push(Snapshot { id: id.to_string(), started_at: snapshot.start_time().map(DateTime::secs), tags: tag_map(snapshot.tags()) });
            }
        }
        Ok(out)
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> PortResult<bool> {
        match self.client.delete_snapshot().snapshot_id(snapshot_id).send().await {
            Ok(_) => Ok(true),
            Err(e) => deleted_unless_in_use(port_error(SERVICE, "DeleteSnapshot", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str, kind: ErrorKind) -> PortError {
        PortError::new(kind, SERVICE, "DeleteSnapshot", Some(code), "from EC2")
    }

    #[test]
    fn a_snapshot_in_use_is_not_deleted_yet_and_one_gone_is_done() {
        // moto frees snapshots at once: these are EC2's answers a while after DeregisterImage.
        assert!(!deleted_unless_in_use(error("InvalidSnapshot.InUse", ErrorKind::Invalid)).unwrap());
        assert!(deleted_unless_in_use(error("InvalidSnapshot.NotFound", ErrorKind::NotFound)).unwrap());
        assert_eq!(deleted_unless_in_use(error("UnauthorizedOperation", ErrorKind::AccessDenied)).unwrap_err().kind, ErrorKind::AccessDenied);
    }
}
