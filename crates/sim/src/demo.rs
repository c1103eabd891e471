//! A ready-made environment: one web group behind one target group, a
//! launch template whose version 1 runs the old AMI and version 2 the new.

use std::collections::BTreeMap;

use stepdeploy_core::fleet::REVISION_TAG;
use stepdeploy_core::model::{LaunchTemplateRef, Target};
use stepdeploy_core::steps::bake::tags::DEPLOYMENT as DEPLOYMENT_TAG;

use crate::world::TemplateVersionData;
use crate::{GroupSpec, Sim, SimSettings};

/// The demo's CloudWatch alarms (OK until a fault sets one off): the site's 5xx rate and latency.
pub const DEMO_ALARMS: [&str; 2] = ["demo-web-5xx", "demo-web-latency"];

/// The demo stack's SNS topic (its `NotificationEmail` made one).
pub const DEMO_TOPIC_ARN: &str = "arn:aws:sns:us-east-1:123456789012:stepdeploy-demo-notifications";

/// Handles to the demo environment's resources.
#[derive(Clone)]
pub struct DemoFleet {
    /// The account.
    pub sim: Sim,
    /// Auto Scaling group name.
    pub group: String,
    /// Its one target group.
    pub target_group_arn: String,
    /// The ALB listener.
    pub listener_arn: String,
    /// The launch template.
    pub template: LaunchTemplateRef,
    /// Version 1, what the group runs now.
    pub old: Target,
    /// Version 2, what a deploy rolls out.
    pub new: Target,
}

/// How the demo group is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSize {
    /// Desired capacity (all healthy at the start).
    pub desired: u32,
    /// Minimum size.
    pub min: u32,
    /// Maximum size.
    pub max: u32,
}

/// The demo group's size when a local run is given none: environments/environment.yaml's
/// defaults are the same (WebDesiredCapacity 6, WebMinSize 1, WebMaxSize 12), so a local run and
/// `stepdeploy env create` agree on the shape (a test checks it).
pub const DEMO_INSTANCES: u32 = 6;

impl DemoSize {
    /// `n` instances, min 1 (or 0 for an empty group), max 2n.
    pub fn of(n: u32) -> DemoSize {
        DemoSize { desired: n, min: n.min(1), max: (2 * n).max(1) }
    }
}

impl DemoFleet {
    /// Builds the demo environment.
    pub fn build(seed: u64, size: DemoSize, settings: SimSettings) -> DemoFleet {
        let sim = Sim::new(seed, settings);
        let (old_image, new_image) = ("ami-0000000000000a001".to_string(), "ami-0000000000000b002".to_string());
        for (image, revision) in [(&old_image, "1111111"), (&new_image, "2222222")] {
            sim.register_image(image, BTreeMap::from([(REVISION_TAG.to_string(), revision.to_string())]));
        }
        for alarm in DEMO_ALARMS {
            sim.put_alarm(alarm);
        }
        sim.create_topic(DEMO_TOPIC_ARN);
        // An On-Demand vCPU quota with room for twice the largest group and a few builders, so a
        // deploy's quota check reads a real headroom (t3.small: 2 vCPUs).
        sim.set_vcpu_quota(Some(f64::from((2 * size.max + 8) * 2)));
        let target_group_arn = sim.create_target_group("demo-web");
        let listener_arn = sim.create_listener("demo-alb");
        let template_id = sim.create_launch_template("demo-web", &old_image, BTreeMap::from([(REVISION_TAG.to_string(), "1111111".to_string())]));
        {
            let mut world = sim.lock();
            if let Some(t) = world.templates.get_mut(&template_id)
                && let Some(first) = t.versions.get(&1).cloned()
            {
                t.versions.insert(
                    2,
                    TemplateVersionData {
                        image_id: new_image.clone(),
                        instance_tags: BTreeMap::from([(REVISION_TAG.to_string(), "2222222".to_string())]),
                        description: "demo: the new revision".into(),
                        ..first
                    },
                );
            }
        }
        // What stepdeploy's IAM policies condition on; the group's tag propagates to its instances.
        let ours = BTreeMap::from([(DEPLOYMENT_TAG.to_string(), "demo".to_string())]);
        for resource in ["demo-web", &template_id, &target_group_arn, &listener_arn] {
            sim.tag_resource(resource, ours.clone());
        }
        sim.create_group(GroupSpec {
            name: "demo-web".into(),
            min_size: size.min,
            max_size: size.max,
            desired_capacity: size.desired,
            launch_template_id: template_id.clone(),
            version: "1".into(),
            target_group_arns: vec![target_group_arn.clone()],
        });
        DemoFleet {
            sim,
            group: "demo-web".into(),
            target_group_arn,
            listener_arn,
            template: LaunchTemplateRef { id: Some(template_id.clone()), name: Some("demo-web".into()), version: None },
            old: Target { template_id: Some(template_id.clone()), launch_template_version: "1".into(), image_id: old_image },
            new: Target { template_id: Some(template_id), launch_template_version: "2".into(), image_id: new_image },
        }
    }
}
