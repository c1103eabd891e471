//! Step Functions' execution history events, as the SDK gives them, in the follower's shape.

use chrono::{DateTime, Utc};

use crate::progress::HistoryEvent;

/// An SDK timestamp as a UTC time.
pub(crate) fn timestamp(t: &aws_sdk_sfn::primitives::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

/// The SDK's event as the follower's.
pub(crate) fn convert(event: &aws_sdk_sfn::types::HistoryEvent) -> HistoryEvent {
    let mut converted = HistoryEvent {
        id: event.id(),
        kind: event.r#type().as_str().to_string(),
        timestamp: timestamp(event.timestamp()),
        state: None,
        payload: None,
        error: None,
        cause: None,
    };
    if let Some(d) = event.state_entered_event_details() {
        converted.state = Some(d.name().to_string());
        converted.payload = d.input().map(str::to_string);
    }
    if let Some(d) = event.state_exited_event_details() {
        converted.state = Some(d.name().to_string());
        converted.payload = d.output().map(str::to_string);
    }
    if let Some(d) = event.execution_succeeded_event_details() {
        converted.payload = d.output().map(str::to_string);
    }
    if let Some(d) = event.task_submitted_event_details() {
        converted.payload = d.output().map(str::to_string);
    }
    let failures = [
        event.execution_failed_event_details().map(|d| (d.error(), d.cause())),
        event.execution_timed_out_event_details().map(|d| (d.error(), d.cause())),
        event.execution_aborted_event_details().map(|d| (d.error(), d.cause())),
    ];
    if let Some((error, cause)) = failures.into_iter().flatten().next() {
        converted.error = error.map(str::to_string);
        converted.cause = cause.map(str::to_string);
    }
    converted
}
