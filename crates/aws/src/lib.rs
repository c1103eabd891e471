//! stepdeploy's port adapters on the AWS SDK for Rust: the only crate that
//! links it. Each adapter maps SDK shapes to the core's types and keeps AWS's
//! error code, message and request id (see [`stepdeploy_core::ports::PortError`]).
//!
//! The endpoint, region and credentials follow the SDK's own settings
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles...), so moto works by
//! environment alone.

mod autoscaling;
mod ec2;
mod elbv2;
mod error;
mod ssm;

pub use autoscaling::AwsAutoScaling;
pub use ec2::AwsEc2;
pub use elbv2::AwsElbv2;
pub use ssm::AwsSsm;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Attempts per call in standard retry mode (throttling and 5xx back off).
pub const MAX_ATTEMPTS: u32 = 5;

/// Loads the SDK config the way the AWS CLI does, with standard retries.
pub async fn load_sdk_config(region: Option<String>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    loader.load().await
}

/// Every adapter, sharing one SDK config.
#[derive(Clone, Debug)]
pub struct AwsAccount {
    /// Auto Scaling.
    pub autoscaling: AwsAutoScaling,
    /// EC2.
    pub ec2: AwsEc2,
    /// ELBv2.
    pub elbv2: AwsElbv2,
    /// SSM.
    pub ssm: AwsSsm,
}

impl AwsAccount {
    /// Builds the adapters from an SDK config.
    pub fn new(config: &SdkConfig) -> AwsAccount {
        AwsAccount {
            autoscaling: AwsAutoScaling::new(aws_sdk_autoscaling::Client::new(config)),
            ec2: AwsEc2::new(aws_sdk_ec2::Client::new(config)),
            elbv2: AwsElbv2::new(aws_sdk_elasticloadbalancingv2::Client::new(config)),
            ssm: AwsSsm::new(aws_sdk_ssm::Client::new(config)),
        }
    }
}
