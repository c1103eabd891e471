//! A finished execution: status, output or error, and its history.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// An execution's final status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// It succeeded.
    Succeeded,
    /// It failed.
    Failed,
    /// It ran past its TimeoutSeconds.
    TimedOut,
}

/// One history event, with AWS's event type name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// 1-based id.
    pub id: u64,
    /// e.g. `PassStateEntered`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When it happened (virtual or real time).
    pub timestamp: DateTime<Utc>,
    /// The state, for state events.
    pub state: Option<Arc<str>>,
    /// For state events the input (Entered) or output (Exited); otherwise the event's details.
    pub details: Value,
}

/// A finished execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Execution {
    /// Final status.
    pub status: Status,
    /// Output on success.
    pub output: Option<Value>,
    /// Error name on failure.
    pub error: Option<String>,
    /// Cause on failure.
    pub cause: Option<String>,
    /// State transitions (what AWS bills).
    pub transitions: u64,
    /// Every event.
    pub history: Vec<Event>,
}

impl Execution {
    /// The most bytes of JSON any one payload of the execution held (state input and output, task
    /// parameters and result): what the 256 KiB quota applies to.
    pub fn max_payload_bytes(&self) -> usize {
        self.history
            .iter()
            .map(|event| {
                let field = match event.kind {
                    "TaskScheduled" => event.details.get("parameters"),
                    "TaskSucceeded" | "ExecutionSucceeded" => event.details.get("output"),
                    "ExecutionStarted" => event.details.get("input"),
                    kind if kind.ends_with("StateEntered") || kind.ends_with("StateExited") => Some(&event.details),
                    _ => None,
                };
                field.map_or(0, crate::limits::payload_bytes)
            })
            .max()
            .unwrap_or(0)
    }
}
