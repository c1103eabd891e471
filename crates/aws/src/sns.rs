//! SNS: the notification a paused rollout sends.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use stepdeploy_core::ports::{Notifications, PortResult};

use crate::error::port_error;

/// The SNS port on the SDK.
#[derive(Clone, Debug)]
pub struct AwsSns {
    client: Client,
}

impl AwsSns {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Notifications for AwsSns {
    async fn publish(&self, topic_arn: &str, subject: &str, message: &str) -> PortResult<String> {
        let out =
            self.client.publish().topic_arn(topic_arn).subject(subject).message(message).send().await.map_err(|e| port_error("sns", "Publish", e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}
