//! The notification a pause sends through the stack's SNS topic (when one is configured): what
//! paused, until when, and what to run to go on or stop, for CLI, script and console users.

use super::lock::PauseRecord;
use super::record::Job;
use crate::config::CheckpointApproval;
use crate::errors;
use crate::ports::{MAX_SUBJECT_CHARS, Notifications};

/// The subject and body of the notification of `pause`. The body holds the task token: whoever
/// may call SendTaskSuccess can answer with it (the same token `stepdeploy status` shows).
pub fn pause_message(job: &Job, pause: &PauseRecord) -> (String, String) {
    let environment = &job.environment;
    let subject: String = format!("stepdeploy: {environment} paused at its {} % checkpoint", pause.percent)
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .take(MAX_SUBJECT_CHARS)
        .collect();
    let until = crate::status::utc(pause.until);
    let what_then = match pause.approval {
        CheckpointApproval::Manual => "no answer by then rolls it back",
        CheckpointApproval::Auto => "it goes on by itself then unless an alarm fires (an alarm rolls it back at once)",
    };
    // Single-quoted for a POSIX shell: a token is base64-like, but quote it whatever it holds.
    let token = format!("'{}'", pause.token.replace('\'', r"'\''"));
    let body = format!(
        "The deploy of {environment} (deployment {deployment}) is paused at its {percent} % checkpoint: \
         {instances} of {goal} instances run the new version and are healthy.\n\
         Execution: {execution}\n\
         It waits until {until}; {what_then}.\n\n\
         To go on:\n  stepdeploy approve {environment}\n  \
         aws stepfunctions send-task-success --task-output '{{}}' --task-token {token}\n\n\
         To stop and roll back:\n  stepdeploy reject {environment} --reason \"...\"\n  \
         aws stepfunctions send-task-failure --error {rejected} --cause \"...\" --task-token {token}\n",
        deployment = job.deployment,
        percent = pause.percent,
        instances = pause.instances,
        goal = pause.goal,
        execution = job.execution_id,
        rejected = errors::CHECKPOINT_REJECTED,
    );
    (subject, body)
}

/// Publishes the pause's notification to `topic`. A notification that can't be sent doesn't stop
/// the rollout (the pause shows in `stepdeploy status` whatever happens): it is logged and reported.
pub async fn notify_pause(notifications: &dyn Notifications, topic: &str, job: &Job, pause: &PauseRecord) -> Result<String, String> {
    let (subject, body) = pause_message(job, pause);
    notifications.publish(topic, &subject, &body).await.map_err(|e| {
        tracing::warn!(environment = %job.environment, topic, error = %e, "the pause's notification was not sent");
        e.to_string()
    })
}
