//! CloudWatch on the sim: alarms, whose state the tests set or [`crate::AlarmTrigger`]s change as
//! a new version serves traffic.

use async_trait::async_trait;
use stepdeploy_core::ports::*;

use crate::Sim;
use crate::iam::{ACCOUNT, AuthRequest, REGION};

/// A CloudWatch alarm's ARN, which DescribeAlarms is authorized on
/// (<https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html>).
pub fn alarm_arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}")
}

#[async_trait]
impl Alarms for Sim {
    async fn describe_alarms(&self, names: &[String]) -> PortResult<Vec<AlarmState>> {
        const OP: &str = "DescribeAlarms";
        let mut world = self.lock();
        world.call("cloudwatch", OP, names.iter().map(|name| AuthRequest::new("cloudwatch:DescribeAlarms", alarm_arn(name))).collect())?;
        // AlarmNames takes at most 100 names
        // (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html).
        if names.len() > MAX_ALARMS_PER_CALL {
            return Err(crate::world::World::invalid(
                "cloudwatch",
                OP,
                "ValidationError",
                format!("The collection AlarmNames must not have a size greater than {MAX_ALARMS_PER_CALL} (got {})", names.len()),
            ));
        }
        Ok(names.iter().filter_map(|name| world.alarms.get(name).cloned()).collect())
    }
}
