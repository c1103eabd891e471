//! CloudWatch: the alarms that guard a rollout.

use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{AlarmType, Dimension, StateValue, Statistic};
use stepdeploy_core::ports::{AlarmState, Alarms, MAX_ALARMS_PER_CALL, PortResult};

use crate::error::port_error;

const SERVICE: &str = "cloudwatch";

/// The CloudWatch port on the SDK.
#[derive(Clone, Debug)]
pub struct AwsCloudWatch {
    client: Client,
}

impl AwsCloudWatch {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn state_name(state: Option<&StateValue>) -> String {
    state.map_or_else(|| "INSUFFICIENT_DATA".to_string(), |s| s.as_str().to_string())
}

#[async_trait]
impl Alarms for AwsCloudWatch {
    async fn describe_alarms(&self, names: &[String]) -> PortResult<Vec<AlarmState>> {
        let mut out = Vec::with_capacity(names.len());
        // Config allows at most 100 names, one call's worth; the chunks only guard the API's limit.
        for chunk in names.chunks(MAX_ALARMS_PER_CALL) {
            // Without AlarmTypes, DescribeAlarms returns metric alarms only: composite ones would
            // look missing (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html).
            let response = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .max_records(MAX_ALARMS_PER_CALL as i32)
                .send()
                .await
                .map_err(|e| port_error(SERVICE, "DescribeAlarms", e))?;
            for alarm in response.metric_alarms() {
                out.push(AlarmState {
                    name: alarm.alarm_name().unwrap_or_default().to_string(),
                    state: state_name(alarm.state_value()),
                    reason: alarm.state_reason().unwrap_or_default().to_string(),
                    updated_at: alarm.state_updated_timestamp().map_or(0, |t| t.secs()),
                });
            }
            for alarm in response.composite_alarms() {
                out.push(AlarmState {
                    name: alarm.alarm_name().unwrap_or_default().to_string(),
                    state: state_name(alarm.state_value()),
                    reason: alarm.state_reason().unwrap_or_default().to_string(),
                    updated_at: alarm.state_updated_timestamp().map_or(0, |t| t.secs()),
                });
            }
        }
        Ok(out)
    }
}

/// How far back [`AwsCloudWatch::vcpu_usage`] looks: `AWS/Usage` reports each minute.
const USAGE_WINDOW_SECONDS: i64 = 900;

impl AwsCloudWatch {
    /// The vCPUs in use in `usage_class` (e.g. `Standard/OnDemand`): the latest one-minute
    /// Maximum of `AWS/Usage` `ResourceCount` over the last 15 minutes, by GetMetricStatistics
    /// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Usage-Metrics.html>).
    pub async fn vcpu_usage(&self, usage_class: &str) -> PortResult<Option<f64>> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let dimension = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
        let out = self
            .client
            .get_metric_statistics()
            .namespace("AWS/Usage")
            .metric_name("ResourceCount")
            .dimensions(dimension("Service", "EC2"))
            .dimensions(dimension("Type", "Resource"))
            .dimensions(dimension("Resource", "vCPU"))
            .dimensions(dimension("Class", usage_class))
            .start_time(DateTime::from_secs(now - USAGE_WINDOW_SECONDS))
            .end_time(DateTime::from_secs(now))
            .period(60)
            .statistics(Statistic::Maximum)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "GetMetricStatistics", e))?;
        let latest = out.datapoints().iter().filter(|d| d.maximum().is_some()).max_by_key(|d| d.timestamp().map_or(0, |t| t.secs()));
        Ok(latest.and_then(|d| d.maximum()))
    }
}
