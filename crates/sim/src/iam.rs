//! What AWS authorizes for each call: the action, every resource ARN it is
//! checked against, and the condition keys of the request. The sim records
//! these with every call so that a test can evaluate them against the
//! template's policies, including the checks AWS makes on the caller's
//! behalf (launching from a launch template, passing a role, tagging on
//! create), which are listed in [`ON_BEHALF`] with the page that says so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The simulated account.
pub const ACCOUNT: &str = "123456789012";
/// The simulated region.
pub const REGION: &str = "us-east-1";

/// One authorization: an action on one resource, with the request's condition keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AuthRequest {
    /// e.g. `autoscaling:UpdateAutoScalingGroup`.
    pub action: String,
    /// The resource ARN (`*` for actions AWS authorizes on no resource).
    pub resource: String,
    /// Condition keys and their values (`aws:ResourceTag/...`, `ec2:CreateAction`...).
    pub context: BTreeMap<String, Vec<String>>,
    /// Empty for the call itself; for a check AWS makes on the caller's behalf, the call that implies it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub implied_by: String,
}

impl AuthRequest {
    /// `action` on `resource`, with no condition keys yet.
    pub fn new(action: &str, resource: impl Into<String>) -> AuthRequest {
        AuthRequest { action: action.to_string(), resource: resource.into(), context: BTreeMap::new(), implied_by: String::new() }
    }

    /// Adds one condition key.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> AuthRequest {
        self.context.entry(key.to_string()).or_default().push(value.into());
        self
    }

    /// The resource's tags as `aws:ResourceTag/...`, plus the service's own
    /// prefix where it has one (`autoscaling:ResourceTag/`, `ssm:resourceTag/`).
    pub fn resource_tags(mut self, tags: &BTreeMap<String, String>) -> AuthRequest {
        let service = self.action.split(':').next().unwrap_or_default().to_string();
        for (key, value) in tags {
            self = self.with(&format!("aws:ResourceTag/{key}"), value.clone());
            match service.as_str() {
                "autoscaling" => self = self.with(&format!("autoscaling:ResourceTag/{key}"), value.clone()),
                "ssm" => self = self.with(&format!("ssm:resourceTag/{key}"), value.clone()),
                _ => {}
            }
        }
        self
    }

    /// The tags the request applies, as `aws:RequestTag/...` and `aws:TagKeys`.
    pub fn request_tags(mut self, tags: &BTreeMap<String, String>) -> AuthRequest {
        for (key, value) in tags {
            self = self.with(&format!("aws:RequestTag/{key}"), value.clone()).with("aws:TagKeys", key.clone());
        }
        self
    }

    /// Marks a check AWS makes on the caller's behalf for `call`.
    pub fn implied_by(mut self, call: &str) -> AuthRequest {
        self.implied_by = call.to_string();
        self
    }
}

/// The checks AWS makes on the caller's behalf that the sim records: the
/// call, what it implies, and the AWS page that says so.
pub const ON_BEHALF: &[(&str, &str, &str)] = &[
    (
        "autoscaling:UpdateAutoScalingGroup naming a launch template",
        "ec2:RunInstances on the launch template, image, subnets, security groups, and new instances, volumes and network interfaces; \
         ec2:CreateTags for tags applied at launch; iam:PassRole for the instance profile's role",
        "https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-api-permissions.html",
    ),
    (
        "autoscaling:UpdateAutoScalingGroup naming a launch template",
        "the same RunInstances checks, conditioned on the launch template's tags",
        "https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-launch-template-permissions.html",
    ),
    (
        "ec2:RunInstances with an instance profile",
        "iam:PassRole on the profile's role, with iam:PassedToService = ec2.amazonaws.com",
        "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/iam-roles-for-amazon-ec2.html#permission-to-pass-iam-roles",
    ),
    (
        "ec2:RunInstances or ec2:CreateImage with tag specifications",
        "ec2:CreateTags on each resource tagged, with ec2:CreateAction = the creating action",
        "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html",
    ),
    (
        "elasticloadbalancing:CreateRule with tags",
        "elasticloadbalancing:AddTags on the new rule, with elasticloadbalancing:CreateAction = CreateRule",
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/tagging-resources-during-creation.html",
    ),
    // Made by a state machine's role, not a step's; scripts/iam/evaluate.mjs derives them from the definitions.
    (
        "states:startExecution.sync:2 (a nested execution)",
        "states:DescribeExecution and states:StopExecution on the child; events:PutTargets, events:PutRule and \
         events:DescribeRule on StepFunctionsGetEventsForStepFunctionsExecutionRule",
        "https://docs.aws.amazon.com/step-functions/latest/dg/stepfunctions-iam.html",
    ),
];

/// An Auto Scaling group's ARN (the group id is fixed: policies match on the name).
pub fn group_arn(name: &str) -> String {
    format!("arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:00000000-0000-4000-8000-000000000000:autoScalingGroupName/{name}")
}

/// An EC2 resource's ARN in this account, e.g. `ec2_arn("instance", "i-1")`; `*` for ones not created yet.
pub fn ec2_arn(kind: &str, id: &str) -> String {
    format!("arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/{id}")
}

/// An image's or snapshot's ARN (these carry no account).
pub fn ec2_global_arn(kind: &str, id: &str) -> String {
    format!("arn:aws:ec2:{REGION}::{kind}/{id}")
}

/// An SSM parameter's ARN (`name` starts with `/`).
pub fn parameter_arn(name: &str) -> String {
    format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}")
}

/// An SSM document's ARN in this account.
pub fn document_arn(name: &str) -> String {
    format!("arn:aws:ssm:{REGION}:{ACCOUNT}:document/{name}")
}

/// An IAM role's ARN.
pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}
