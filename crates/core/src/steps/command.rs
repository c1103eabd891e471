//! SSM commands run by deploys: `migrate` on one worker, `worker_deploy`
//! on every worker, started once and polled until done.

use std::collections::BTreeMap;

use super::account::DeployAccount;
use super::error::StepError;
use super::record::{CommandOutcome, CommandResult, CommandRun, Job, RESULTS_KEPT};
use crate::budget::command_wait;
use crate::errors;
use crate::model::Timestamp;
use crate::ports::{CommandRequest, CommandStatus, Invocation, SSM_OUTPUT_HEAD};
use crate::revision::{command_document, command_log_group, in_command};
use sha2::{Digest, Sha256};

/// How much of a command's output a failure carries.
pub const OUTPUT_TAIL: usize = 2000;

/// The last `keep` bytes of `text` (at a character boundary).
pub fn tail(text: &str, keep: usize) -> &str {
    let start = text.len().saturating_sub(keep);
    let start = (start..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
    &text[start..]
}

/// **command start**: `migrate` on one worker, `worker_deploy` on every worker.
pub async fn command_start(account: &dyn DeployAccount, mut job: Job, name: &str, now: Timestamp) -> Result<Job, StepError> {
    if let Some(run) = &job.command
        && run.name == name
    {
        return Ok(job); // already started: a retried start must not run it twice
    }
    let env = &job.settings;
    let spec = match name {
        "migrate" => &env.commands.migrate,
        "worker_deploy" => &env.commands.worker_deploy,
        other => return Err(StepError::input(format!("command: {other:?} is not allowed; expected \"migrate\" or \"worker_deploy\""))),
    };
    let tags: BTreeMap<String, String> = env.workers.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut workers: Vec<String> = account.find_instances(&tags).await?.into_iter().filter(|i| i.state == "running").map(|i| i.id).collect();
    workers.sort();
    if workers.is_empty() {
        return Err(StepError {
            name: errors::COMMAND_FAILED,
            message: format!("{name}: no running instance carries the worker tags {tags:?} (workers.tags)"),
        });
    }
    if name == "migrate" {
        workers.truncate(1);
    }
    let comment = format!("stepdeploy {name} {}", job.environment);
    let log_group = command_log_group(&job.deployment);
    let request = CommandRequest {
        document: &command_document(&job.deployment),
        instance_ids: &workers,
        command: &in_command(&spec.command),
        revision: job.revision.as_deref().unwrap_or_default(),
        timeout_seconds: spec.timeout_seconds,
        comment: &comment,
        output_log_group: Some(&log_group),
    };
    let sender = format!("{} {name}", job.execution_id);
    let (command_id, more_command_ids) = send_in_chunks(account, &request, &sender, now).await?;
    job.command = Some(CommandRun {
        name: name.to_string(),
        command_id,
        more_command_ids,
        instance_ids: workers,
        deadline: now + spec.timeout_seconds as i64 + 60,
        next: "wait".into(),
        seconds: env.health.poll_interval_seconds,
        started_at: now,
    });
    Ok(job)
}

/// SendCommand's limit on instance ids
/// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html).
pub const SEND_COMMAND_MAX_IDS: usize = 50;

/// How far back a step looks for a command an earlier try of it sent: its
/// retries come within minutes.
pub(crate) const RESEND_LOOKBACK_SECONDS: i64 = 6 * 3600;

/// Sends `request` in chunks of at most [`SEND_COMMAND_MAX_IDS`] instances:
/// the first chunk's command id and the others', in order.
///
/// Sending is idempotent: each chunk's comment carries a key made of `sender`
/// (the execution, the step and what it sends) and the chunk's number, and a chunk an earlier
/// try already sent (whose response was lost, or whose step died after the
/// call) is found with ListCommands and not sent again: a migration runs once.
pub(crate) async fn send_in_chunks(
    account: &dyn DeployAccount,
    request: &CommandRequest<'_>,
    sender: &str,
    now: Timestamp,
) -> Result<(String, Vec<String>), StepError> {
    let sent = account.recent_commands(request.document, now.saturating_sub(RESEND_LOOKBACK_SECONDS)).await?;
    let mut ids = Vec::new();
    for (number, chunk) in request.instance_ids.chunks(SEND_COMMAND_MAX_IDS).enumerate() {
        let comment = keyed_comment(request.comment, &format!("{sender} {number}"));
        let id = match sent.iter().find(|(_, c)| *c == comment) {
            Some((id, _)) => id.clone(),
            None => account.send_command(&CommandRequest { instance_ids: chunk, comment: &comment, ..request.clone() }).await?,
        };
        ids.push(id);
    }
    let mut ids = ids.into_iter();
    let first = ids.next().ok_or_else(|| StepError::input("a command needs at least one instance".into()))?;
    Ok((first, ids.collect()))
}

/// `comment` (shortened to fit) and a key of `sender`, within SSM's 100 characters.
pub(crate) fn keyed_comment(comment: &str, sender: &str) -> String {
    let key: String = Sha256::digest(sender.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect();
    let suffix = format!(" [sd:{key}]");
    let head: String = comment.chars().take(100 - suffix.len()).collect();
    format!("{head}{suffix}")
}

/// Every instance's invocation of `run`, chunk by chunk.
pub(crate) async fn invocations_of(account: &dyn DeployAccount, run: &CommandRun) -> Result<Vec<Invocation>, StepError> {
    let command_ids = std::iter::once(&run.command_id).chain(&run.more_command_ids);
    let mut out = Vec::new();
    for (command_id, chunk) in command_ids.zip(run.instance_ids.chunks(SEND_COMMAND_MAX_IDS)) {
        out.extend(account.invocations(command_id, chunk).await?);
    }
    Ok(out)
}

/// The failure of a command on one instance, with its output tail; when SSM
/// cut the output (it returns only its first 24,000 characters, so the end,
/// with any traceback, is missing), that is said, with where the whole output is.
pub(crate) fn command_failure(name: &str, failed: &Invocation, deployment: &str) -> StepError {
    let mut message = format!(
        "{name} failed on {} ({}, exit code {}). stdout tail: {} | stderr tail: {}",
        failed.instance_id,
        failed.status_detail,
        failed.exit_code.map_or("unknown".into(), |c| c.to_string()),
        tail(&failed.stdout, OUTPUT_TAIL),
        tail(&failed.stderr, OUTPUT_TAIL)
    );
    if failed.output_cut() {
        message.push_str(&format!(
            " | SSM returned only the first {SSM_OUTPUT_HEAD} characters of the output, so its end is not shown above; \
             the whole output is in CloudWatch Logs group {}, streams {}/{}/aws-runShellScript/stdout and /stderr",
            command_log_group(deployment),
            failed.command_id,
            failed.instance_id
        ));
    }
    StepError { name: errors::COMMAND_FAILED, message }
}

/// Records a finished command's results in the job (once per command id): one
/// outcome per command name, with counts for every instance and the results of the first few.
pub(crate) fn record_outcome(job: &mut Job, run: &CommandRun, invocations: &[Invocation]) {
    if job.commands_done.iter().any(|c| c.command_id == run.command_id) {
        return;
    }
    let index = match job.commands_done.iter().position(|c| c.name == run.name) {
        Some(index) => index,
        None => {
            job.commands_done.push(CommandOutcome {
                name: run.name.clone(),
                command_id: String::new(),
                commands: 0,
                instances: 0,
                succeeded: 0,
                results: Vec::new(),
            });
            job.commands_done.len() - 1
        }
    };
    let outcome = &mut job.commands_done[index];
    outcome.command_id = run.command_id.clone();
    outcome.commands += 1 + run.more_command_ids.len() as u32;
    outcome.instances += invocations.len() as u32;
    outcome.succeeded += invocations.iter().filter(|i| i.status == CommandStatus::Succeeded).count() as u32;
    let room = RESULTS_KEPT.saturating_sub(outcome.results.len());
    outcome.results.extend(invocations.iter().take(room).map(result_of));
}

/// One instance's result, with the tails a successful command keeps.
pub(crate) fn result_of(invocation: &Invocation) -> CommandResult {
    CommandResult {
        instance_id: invocation.instance_id.clone(),
        exit_code: invocation.exit_code,
        stdout_tail: tail(&invocation.stdout, SUCCESS_TAIL).to_string(),
        stderr_tail: tail(&invocation.stderr, SUCCESS_TAIL).to_string(),
    }
}

/// How much of a successful command's output its record keeps (the state
/// machine's payload is limited to 256 KiB).
pub const SUCCESS_TAIL: usize = 500;

/// **command poll**: done, wait, or a failure that carries the output tail.
pub async fn command_poll(account: &dyn DeployAccount, mut job: Job, now: Timestamp) -> Result<Job, StepError> {
    let Some(run) = job.command.clone() else {
        return Err(StepError::input("deployment.command: no command was started".into()));
    };
    let invocations = invocations_of(account, &run).await?;
    if let Some(failed) = invocations.iter().find(|i| i.status == CommandStatus::Failed) {
        return Err(command_failure(&run.name, failed, &job.deployment));
    }
    let done = invocations.iter().all(|i| i.status == CommandStatus::Succeeded);
    if !done && now > run.deadline {
        return Err(StepError {
            name: errors::COMMAND_FAILED,
            message: format!("{} did not finish before its timeout on {}", run.name, run.instance_ids.join(", ")),
        });
    }
    if done {
        record_outcome(&mut job, &run, &invocations);
    }
    let poll = job.settings.health.poll_interval_seconds;
    if let Some(run) = job.command.as_mut() {
        run.next = if done { "done".into() } else { "wait".into() };
        // Less often as it runs on: a long command must not spend the execution's history.
        run.seconds = command_wait(now - run.started_at, poll);
    }
    Ok(job)
}
