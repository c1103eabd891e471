//! SNS on the sim: topics and the messages published to them, with Publish's checks
//! (<https://docs.aws.amazon.com/sns/latest/api/API_Publish.html>): the topic must exist, the
//! subject is at most 100 printable ASCII characters on one line, the message at most 256 KiB.

use async_trait::async_trait;
use stepdeploy_core::ports::*;

use crate::Sim;
use crate::iam::AuthRequest;
use crate::world::World;

/// SNS's limit on a message body, in bytes.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// A message published to a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The topic's ARN.
    pub topic_arn: String,
    /// The subject.
    pub subject: String,
    /// The body.
    pub message: String,
}

#[async_trait]
impl Notifications for Sim {
    async fn publish(&self, topic_arn: &str, subject: &str, message: &str) -> PortResult<String> {
        const OP: &str = "Publish";
        let mut world = self.lock();
        world.call("sns", OP, vec![AuthRequest::new("sns:Publish", topic_arn.to_string())])?;
        if !world.topics.contains_key(topic_arn) {
            return Err(World::not_found("sns", OP, "NotFound", "Topic does not exist".into()));
        }
        let subject_ok = !subject.is_empty() && subject.len() <= MAX_SUBJECT_CHARS && subject.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        if !subject_ok {
            return Err(World::invalid("sns", OP, "InvalidParameter", format!("Invalid parameter: Subject {subject:?}")));
        }
        if message.is_empty() || message.len() > MAX_MESSAGE_BYTES {
            return Err(World::invalid("sns", OP, "InvalidParameter", "Invalid parameter: Message too long or empty".into()));
        }
        let id = format!("{:032x}", world.next_id());
        let published = Published { topic_arn: topic_arn.to_string(), subject: subject.to_string(), message: message.to_string() };
        world.topics.entry(topic_arn.to_string()).or_default().push(published);
        Ok(id)
    }
}

impl Sim {
    /// Creates an SNS topic. Records no API call.
    pub fn create_topic(&self, topic_arn: &str) {
        self.lock().topics.entry(topic_arn.to_string()).or_default();
    }

    /// The messages published to a topic, oldest first. Records no API call.
    pub fn published(&self, topic_arn: &str) -> Vec<Published> {
        self.lock().topics.get(topic_arn).cloned().unwrap_or_default()
    }
}
