//! The hand-built fleet fixture the planner tests share.
#![allow(dead_code)]

use std::collections::BTreeMap;

use stepdeploy_core::model::{GroupSettings, GroupSnapshot, Instance, LaunchTemplateRef, Lifecycle, Target, TargetState};
use stepdeploy_core::planner::{Action, Policy, RolloutSpec, RolloutState, Strategy, Timing};

pub const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/1";
pub const OLD: &str = "ami-old";
pub const NEW: &str = "ami-new";
pub const START: i64 = 1_000_000;

/// A fleet fixture: `Fleet::test().with_old(3)...`.
pub struct Fleet {
    pub instances: Vec<Instance>,
    pub desired: u32,
    pub min: u32,
    pub max: u32,
}

impl Fleet {
    pub fn test() -> Fleet {
        Fleet { instances: Vec::new(), desired: 0, min: 0, max: 10 }
    }

    pub fn add(mut self, image: &str, lifecycle: Lifecycle, healthy: bool, protected: bool, launched_at: i64) -> Fleet {
        let n = self.instances.len();
        self.instances.push(Instance {
            id: format!("i-{n:03}"),
            lifecycle,
            asg_healthy: true,
            target_health: if healthy { BTreeMap::from([(TG.to_string(), TargetState::Healthy)]) } else { BTreeMap::new() },
            image_id: Some(image.to_string()),
            revision: None,
            launch_template_id: None,
            launch_template_version: None,
            launched_at: Some(launched_at),
            availability_zone: "us-east-1a".into(),
            protected_from_scale_in: protected,
        });
        self
    }

    /// `n` healthy old instances, counted in desired capacity.
    pub fn with_old(mut self, n: u32) -> Fleet {
        for i in 0..n {
            self = self.add(OLD, Lifecycle::InService, true, false, START - 1000 + i64::from(i));
        }
        self.desired += n;
        self
    }

    pub fn snapshot(&self) -> GroupSnapshot {
        GroupSnapshot {
            settings: GroupSettings {
                name: "web".into(),
                min_size: self.min,
                max_size: self.max,
                desired_capacity: self.desired,
                suspended_processes: Vec::new(),
                launch_template: Some(LaunchTemplateRef { id: Some("lt-1".into()), name: None, version: Some("2".into()) }),
                target_group_arns: vec![TG.into()],
                subnet_ids: vec!["subnet-a".into()],
                features: Default::default(),
            },
            instances: self.instances.clone(),
            taken_at: START,
            activities: Vec::new(),
        }
    }

    pub fn rollout(&self, policy: Policy) -> RolloutState {
        let spec = RolloutSpec {
            target: Target { template_id: None, launch_template_version: "2".into(), image_id: NEW.into() },
            previous: Some(Target { template_id: None, launch_template_version: "1".into(), image_id: OLD.into() }),
            strategy: Strategy::Rolling,
            policy,
            target_group_arns: vec![TG.into()],
            timing: Timing { rollout_timeout_seconds: 3600, instance_timeout_seconds: 600, warmup_seconds: 30, poll_seconds: 15, looks_budget: 1000 },
            checkpoints: Vec::new(),
            instant_rollback: false,
        };
        RolloutState::begin(&self.snapshot(), spec, START)
    }
}

pub fn terminated(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .flat_map(|a| match a {
            Action::Terminate { instance_ids } => instance_ids.clone(),
            _ => Vec::new(),
        })
        .collect()
}
