//! The commands that work on AWS: start a workflow and follow it, status,
//! history and config push. The AWS SDK lives here and in crates/aws only.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use aws_sdk_sfn::types::{ExecutionListItem, ExecutionStatus as SfnStatus};
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use stepdeploy_aws::AwsAccount;
use stepdeploy_core::config::{Environment, parameter_name};
use stepdeploy_core::ports::Parameters;

use crate::progress::{ExecutionStatus, Follow, HistoryEvent, Update, readable_cause};
use crate::queue::{Running, positions};
pub use crate::session::AwsOptions;
use crate::session::{DEFAULT_CONFIG, Session, aws_error, read_local_config, sdk_config, stack_outputs};
use crate::sfn_events::{convert, timestamp};
use crate::workflows::{StartRequest, console_url, execution_name, machines};

/// How a started execution is watched.
#[derive(Debug, Clone, Copy)]
pub struct StartOptions {
    /// `--yes`: no confirmation for production.
    pub yes: bool,
    /// `--no-wait`: start and return.
    pub no_wait: bool,
    /// Seconds between history polls.
    pub poll_seconds: u64,
}

pub(crate) fn confirm(environment: &str, what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("{environment:?} is a production environment: pass --yes to {what} (there is no terminal to ask)");
    }
    eprint!("{environment:?} is a production environment. {what}? Type the environment name to go ahead: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).context("cannot read the answer")?;
    if answer.trim() != environment {
        bail!("not confirmed; nothing was started");
    }
    Ok(())
}

/// Starts a workflow, then follows it unless told not to.
pub async fn start(request: StartRequest, aws: &AwsOptions, options: StartOptions) -> Result<ExitCode> {
    let session = Session::open(aws, Some(&request.environment)).await?;
    let env = session.environment(&request.environment).await?;
    let arn = session.machine(request.machine)?.to_string();
    let mut input = request.input.clone();
    if let Some(revision) = &request.version_from_revision {
        let template = env.launch_template.as_deref().ok_or_else(|| anyhow!("launch_template: not set for {:?}", request.environment))?;
        let template = stepdeploy_core::model::LaunchTemplateRef::from_config(template);
        let version =
            stepdeploy_core::steps::bake::version_for_revision(&session.account, &session.deployment, &request.environment, &template, revision)
                .await
                .map_err(|e| anyhow!("{}", e.message))?;
        input["launch_template_version"] = json!(version.to_string());
        if !aws.json {
            eprintln!("revision {revision} is launch template version {version}");
        }
    }
    if env.production {
        confirm(&request.environment, &format!("Start {} with {}", request.machine, input), options.yes)?;
    }
    let name = execution_name(&request.environment, &request.label, Utc::now());
    let started = session
        .sfn()
        .start_execution()
        .state_machine_arn(&arn)
        .name(&name)
        .input(input.to_string())
        .send()
        .await
        .map_err(|e| aws_error(&format!("StartExecution of {}", request.machine), e))?;
    let execution_arn = started.execution_arn().to_string();
    let link = console_url(&execution_arn).unwrap_or_default();
    if options.no_wait {
        if aws.json {
            println!(
                "{}",
                json!({"execution_arn": execution_arn, "name": name, "state_machine": request.machine, "input": input, "console_url": link})
            );
        } else {
            println!("started {name}\n  {execution_arn}\n  {link}\nfollow it with: stepdeploy follow {execution_arn}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !aws.json {
        eprintln!("started {name} ({})\n  {link}", request.machine);
    }
    follow_execution(&session.sfn(), &execution_arn, aws.json, options.poll_seconds).await
}

/// `stepdeploy follow EXECUTION_ARN`.
pub async fn follow(execution_arn: &str, aws: &AwsOptions, poll_seconds: u64) -> Result<ExitCode> {
    let region = execution_arn.split(':').nth(3).filter(|r| !r.is_empty());
    let sdk = sdk_config(aws, region).await?;
    follow_execution(&aws_sdk_sfn::Client::new(&sdk), execution_arn, aws.json, poll_seconds).await
}

/// Polls the history until the execution ends, showing progress; the exit
/// code is 0 only when it succeeded.
async fn follow_execution(sfn: &aws_sdk_sfn::Client, execution_arn: &str, json: bool, poll_seconds: u64) -> Result<ExitCode> {
    let mut follow = Follow::default();
    let mut display = Display::new(json);
    loop {
        let events = new_events(sfn, execution_arn, follow.last_event_id).await?;
        let updates = follow.apply_all(&events);
        display.show(&follow, &updates);
        if follow.status.is_final() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(poll_seconds.max(1))).await;
    }
    display.finish(&follow);
    if json {
        let mut summary = serde_json::to_value(&follow).unwrap_or(Value::Null);
        summary["execution_arn"] = json!(execution_arn);
        summary["elapsed_seconds"] = json!(follow.elapsed_seconds());
        summary["cause_message"] = json!(follow.cause.as_deref().map(readable_cause));
        println!("{summary}");
    }
    Ok(if follow.status == ExecutionStatus::Succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The events after `after`, newest pages first so a long history is not
/// re-read on every poll.
async fn new_events(sfn: &aws_sdk_sfn::Client, execution_arn: &str, after: i64) -> Result<Vec<HistoryEvent>> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .reverse_order(true)
            .max_results(100)
            .include_execution_data(true)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| aws_error("GetExecutionHistory", e))?;
        let mut reached_seen = false;
        for event in page.events() {
            reached_seen |= event.id() <= after;
            if event.id() > after {
                events.push(convert(event));
            }
        }
        token = page.next_token().map(str::to_string);
        if reached_seen || token.is_none() {
            break;
        }
    }
    Ok(events)
}

/// Progress on the terminal: a bar on a TTY, plain lines otherwise; with
/// `--output json` the lines go to stderr and stdout gets the summary.
enum Display {
    Lines { to_stderr: bool },
    Bar(ProgressBar),
}

impl Display {
    fn new(json: bool) -> Display {
        if json || !std::io::stderr().is_terminal() || std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
            return Display::Lines { to_stderr: json };
        }
        let colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let template = if colour {
            "{spinner:.green} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {msg}"
        } else {
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}"
        };
        let bar = ProgressBar::new(0).with_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        bar.enable_steady_tick(Duration::from_millis(200));
        bar.set_message("starting");
        Display::Bar(bar)
    }

    fn show(&mut self, follow: &Follow, updates: &[Update]) {
        for update in updates {
            match self {
                Display::Lines { to_stderr } => {
                    if let Some(line) = follow.line(update) {
                        if *to_stderr {
                            eprintln!("{line}");
                        } else {
                            println!("{line}");
                        }
                    }
                }
                Display::Bar(bar) => {
                    if matches!(update, Update::Finished(_)) {
                        continue; // printed by finish, after the bar is gone
                    }
                    // Lines above the bar keep the story in the scrollback; the bar shows now.
                    if let Some(line) = follow.line(update) {
                        bar.println(line);
                    }
                    if let Some(rollout) = &follow.rollout {
                        bar.set_length(u64::from(rollout.total));
                        bar.set_position(u64::from(rollout.replaced));
                    }
                    let what = match &follow.rollout {
                        Some(r) if r.rolling_back => format!(" · rolling back · {} healthy (floor {})", r.healthy, r.min_healthy),
                        Some(r) => format!(" · {} healthy (floor {})", r.healthy, r.min_healthy),
                        None => String::new(),
                    };
                    bar.set_message(format!("{}{what}", follow.state.as_deref().unwrap_or("starting")));
                }
            }
        }
    }

    fn finish(self, follow: &Follow) {
        if let Display::Bar(bar) = self {
            bar.finish_and_clear();
            if let Some(line) = follow.line(&Update::Finished(follow.status)) {
                println!("{line}");
            }
        }
    }
}

/// `stepdeploy status ENV`.
pub async fn status(environment: &str, aws: &AwsOptions) -> Result<ExitCode> {
    let session = Session::open(aws, Some(environment)).await?;
    let env = session.environment(environment).await?;
    let now = Utc::now().timestamp();
    let report = stepdeploy_core::status::environment_status(&session.account, &session.deployment, environment, &env, now)
        .await
        .map_err(|e| anyhow!("{}", e.message))?;
    let running = executions(&session, environment, Some(SfnStatus::Running), 50).await?;
    // The newest finished execution: a failed rollback's cause says what it left the group with.
    let last = executions(&session, environment, None, running.len() + 1).await?.into_iter().find(|e| e.status != "RUNNING");
    let holder = report.lock.as_ref().map(|l| l.execution.as_str());
    let listed: Vec<Running> = running
        .iter()
        .map(|r| Running { execution_arn: &r.execution_arn, state_machine: &r.state_machine, started_at: r.started_at.timestamp() })
        .collect();
    let queued = positions(&listed, holder);
    let place = |arn: &str| queued.iter().find(|(queued, _)| *queued == arn).map(|(_, place)| *place);
    if aws.json {
        let mut value = serde_json::to_value(&report)?;
        value["running_executions"] = serde_json::to_value(&running)?;
        value["lock_queue"] =
            json!(queued.iter().map(|(arn, place)| json!({"execution_arn": arn, "position": place, "behind": holder})).collect::<Vec<_>>());
        value["last_finished_execution"] = serde_json::to_value(&last)?;
        println!("{value}");
    } else {
        print!("{}", report.to_text());
        if running.is_empty() {
            println!("  running executions: none");
        }
        for run in &running {
            let waits =
                place(&run.execution_arn).map(|n| format!("; queued for the lock, {n} in line behind {}", holder.unwrap_or("?"))).unwrap_or_default();
            println!("  running: {} ({}, since {}{waits})", run.name, run.state_machine, run.started_at.format("%Y-%m-%d %H:%M:%S UTC"));
        }
        if let Some(last) = &last {
            let when = last.stopped_at.unwrap_or(last.started_at).format("%Y-%m-%d %H:%M:%S UTC");
            println!("  last finished: {} ({}) {} at {when}", last.name, last.state_machine, last.status);
            if let Some(error) = &last.error {
                println!("    {error}: {}", last.cause.as_deref().unwrap_or(""));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `stepdeploy approve` (no reason) and `reject` (a reason): answers the checkpoint the
/// environment's paused rollout waits at, through the token its lock records.
pub async fn answer(environment: &str, reject_reason: Option<String>, aws: &AwsOptions) -> Result<ExitCode> {
    use stepdeploy_core::steps::checkpoint::{Answer, answer};
    let session = Session::open(aws, Some(environment)).await?;
    let by = std::env::var("USER").ok().filter(|u| !u.is_empty()).map_or_else(|| "an operator".to_string(), |u| format!("{u} (stepdeploy)"));
    let reply = match reject_reason {
        None => Answer::Approve { by },
        Some(reason) if reason.trim().is_empty() => {
            anyhow::bail!("--reason: empty; say why the rollout is rejected (it goes in the execution's cause)")
        }
        Some(reason) => Answer::Reject { by, reason },
    };
    let answered =
        answer(&session.account, &session.account, &session.deployment, environment, &reply).await.map_err(|e| anyhow!("{}", e.message))?;
    let what = match reply {
        Answer::Approve { .. } => "approved: it goes on past",
        Answer::Reject { .. } => "rejected: it rolls back from",
    };
    if aws.json {
        println!("{}", serde_json::json!({"environment": environment, "execution": answered.execution, "percent": answered.percent, "answer": what}));
    } else {
        println!("{environment}: {} {what} its {} % checkpoint", answered.execution, answered.percent);
    }
    Ok(ExitCode::SUCCESS)
}

/// An execution of one of the deployment's state machines, for one environment.
#[derive(Debug, Clone, serde::Serialize)]
struct ExecutionSummary {
    name: String,
    execution_arn: String,
    state_machine: String,
    status: String,
    started_at: DateTime<Utc>,
    stopped_at: Option<DateTime<Utc>>,
    duration_seconds: Option<i64>,
    error: Option<String>,
    cause: Option<String>,
}

/// The deployment's executions for `environment`, newest first, at most `limit`.
/// ListExecutions has no input, so each candidate's input is read.
async fn executions(session: &Session, environment: &str, status: Option<SfnStatus>, limit: usize) -> Result<Vec<ExecutionSummary>> {
    let sfn = session.sfn();
    let mut listed: Vec<(String, ExecutionListItem)> = Vec::new();
    for machine in machines() {
        let Some(arn) = session.machines.get(machine) else { continue };
        let page = sfn
            .list_executions()
            .state_machine_arn(arn)
            .set_status_filter(status.clone())
            .max_results(limit.clamp(1, 100) as i32)
            .send()
            .await
            .map_err(|e| aws_error(&format!("ListExecutions of {machine}"), e))?;
        listed.extend(page.executions().iter().map(|e| (machine.to_string(), e.clone())));
    }
    listed.sort_by_key(|(_, e)| std::cmp::Reverse((e.start_date().secs(), e.start_date().subsec_nanos())));
    let mut found = Vec::new();
    for (machine, item) in listed {
        if found.len() >= limit {
            break;
        }
        let described = sfn.describe_execution().execution_arn(item.execution_arn()).send().await.map_err(|e| aws_error("DescribeExecution", e))?;
        let input: Value = described.input().and_then(|text| serde_json::from_str(text).ok()).unwrap_or(Value::Null);
        if input["environment"].as_str() != Some(environment) {
            continue;
        }
        let started_at = timestamp(item.start_date());
        let stopped_at = item.stop_date().map(timestamp);
        found.push(ExecutionSummary {
            name: item.name().to_string(),
            execution_arn: item.execution_arn().to_string(),
            state_machine: machine,
            status: item.status().as_str().to_string(),
            started_at,
            stopped_at,
            duration_seconds: stopped_at.map(|s| (s - started_at).num_seconds()),
            error: described.error().map(str::to_string),
            cause: described.cause().map(readable_cause),
        });
    }
    Ok(found)
}

/// `stepdeploy history ENV`.
pub async fn history(environment: &str, limit: usize, aws: &AwsOptions) -> Result<ExitCode> {
    let session = Session::open(aws, Some(environment)).await?;
    let runs = executions(&session, environment, None, limit).await?;
    if aws.json {
        println!("{}", json!({"environment": environment, "executions": runs}));
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("{environment}: no executions");
    }
    for run in &runs {
        let duration = run.duration_seconds.map(|s| format!("{}m{:02}s", s / 60, s % 60)).unwrap_or_else(|| "running".into());
        println!("{}  {:<10} {:>8}  {:<22} {}", run.started_at.format("%Y-%m-%d %H:%M"), run.status, duration, run.state_machine, run.name);
        if let Some(error) = &run.error {
            let cause = run.cause.as_deref().unwrap_or_default();
            let cause: String = cause.chars().take(200).collect();
            println!("      {error}: {cause}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `stepdeploy doctor ENV`: read-only checks of what a deploy needs (`stepdeploy_core::doctor`),
/// after the stack's own: its state machines are found.
pub async fn doctor(environment: &str, aws: &AwsOptions) -> Result<ExitCode> {
    use stepdeploy_core::doctor::{Check, checks, to_text};
    let session = Session::open(aws, Some(environment)).await?;
    let missing: Vec<&str> = ["serial-deploy", "full-deploy"].into_iter().filter(|m| !session.machines.contains_key(*m)).collect();
    let stack = if missing.is_empty() {
        Check { name: "stack", ok: true, detail: format!("{} state machines of {}", session.machines.len(), session.deployment), fix: None }
    } else {
        Check {
            name: "stack",
            ok: false,
            detail: format!("no {} state machine", missing.join(", ")),
            fix: Some("deploy the current template.yaml (scripts/sam-deploy)".into()),
        }
    };
    let pushed = session.environment(environment).await.ok();
    let local = read_local_config(aws.config.as_deref())?.and_then(|c| c.environments.get(environment).cloned());
    let mut report = vec![stack];
    report.extend(checks(&session.account, &session.deployment, environment, pushed.as_ref(), local.as_ref()).await);
    let ok = report.iter().all(|c| c.ok);
    if aws.json {
        println!("{}", json!({"environment": environment, "ok": ok, "checks": report}));
    } else {
        print!("{}", to_text(&report));
        println!("{}", if ok { "ready to deploy" } else { "not ready: fix what FAIL says, then run doctor again" });
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `stepdeploy history ENV --timeline EXECUTION --out FILE.svg`: a real execution's timeline,
/// from its history (the reconcile steps' outputs hold the counts).
pub async fn history_timeline(environment: &str, execution_arn: &str, out: &Path, aws: &AwsOptions) -> Result<ExitCode> {
    let session = Session::open(aws, Some(environment)).await?;
    let events = new_events(&session.sfn(), execution_arn, 0).await?;
    let (samples, markers) = crate::timeline::from_history(&events);
    if samples.is_empty() {
        bail!("--timeline: {execution_arn} has no reconcile steps to chart (not a deploy, or it ended before its first)");
    }
    let name = execution_arn.rsplit(':').next().unwrap_or(execution_arn);
    let svg = crate::timeline::draw(&format!("{name} on {environment}"), &samples, &markers)?;
    std::fs::write(out, svg).with_context(|| format!("--out: cannot write {}", out.display()))?;
    eprintln!("timeline of {} reconcile steps written to {}", samples.len(), out.display());
    Ok(ExitCode::SUCCESS)
}

/// `stepdeploy config push ENV`: writes the environment from the config file
/// to the SSM parameter the Lambdas read.
pub async fn push(environment: &str, aws: &AwsOptions, yes: bool) -> Result<ExitCode> {
    let local = read_local_config(aws.config.as_deref())?
        .ok_or_else(|| anyhow!("config push needs a config file: pass --config FILE (no {DEFAULT_CONFIG} here)"))?;
    let env = local.environments.get(environment).cloned().ok_or_else(|| {
        anyhow!(
            "environment: {environment:?} is not in the config; expected one of: {}",
            local.environments.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let region = Some(env.region.as_str()).filter(|r| !r.is_empty());
    let sdk = sdk_config(aws, region).await?;
    let deployment = match (&aws.deployment, &aws.stack) {
        (Some(deployment), _) => deployment.clone(),
        (None, Some(stack)) => stack_outputs(&sdk, stack).await?.0,
        (None, None) => local.deployment.clone(),
    };
    if env.production {
        confirm(environment, "Write its config", yes)?;
    }
    let name = parameter_name(&deployment, environment);
    let value = serde_json::to_string(&env)?;
    // The Lambdas parse it the same way: a push never leaves a parameter they reject.
    Environment::from_json_str(&value, &name).map_err(|p| anyhow!("{name}: the config would not load back:\n{p}"))?;
    let account = AwsAccount::new(&sdk);
    let before = account.get_parameter(&name).await.map_err(|e| anyhow!("{e}"))?;
    let unchanged = before.as_ref().is_some_and(|p| serde_json::from_str::<Value>(&p.value).ok() == serde_json::from_str::<Value>(&value).ok());
    let after = if unchanged {
        before.map(|p| p.version)
    } else {
        account.put_parameter(&name, &value).await.map_err(|e| anyhow!("{e}"))?;
        // PutParameter's new version number doesn't come through the port: read it back.
        account.get_parameter(&name).await.map_err(|e| anyhow!("{e}"))?.map(|p| p.version)
    };
    if aws.json {
        println!("{}", json!({"parameter": name, "version": after, "changed": !unchanged}));
    } else if unchanged {
        println!("{name}: unchanged (version {})", after.unwrap_or_default());
    } else {
        println!("{name}: written (version {})", after.unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    //! What moto can't show: GetExecutionHistory paging and AWS errors, on aws-smithy-mocks.

    use aws_sdk_sfn::error::ErrorMetadata;
    use aws_sdk_sfn::operation::get_execution_history::{GetExecutionHistoryError, GetExecutionHistoryOutput};
    use aws_sdk_sfn::primitives::DateTime as SdkDateTime;
    use aws_sdk_sfn::types::{HistoryEvent as SdkEvent, HistoryEventType, StateEnteredEventDetails};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn event(id: i64) -> SdkEvent {
        SdkEvent::builder()
            .id(id)
            .r#type(HistoryEventType::TaskStateEntered)
            .timestamp(SdkDateTime::from_secs(1_700_000_000 + id))
            .state_entered_event_details(StateEnteredEventDetails::builder().name(format!("S{id}")).build().unwrap())
            .build()
            .unwrap()
    }

    fn page(ids: std::ops::RangeInclusive<i64>, token: Option<&str>) -> GetExecutionHistoryOutput {
        // Newest first, as reverse_order asks.
        let events: Vec<SdkEvent> = ids.rev().map(event).collect();
        GetExecutionHistoryOutput::builder().set_events(Some(events)).set_next_token(token.map(str::to_string)).build().unwrap()
    }

    #[tokio::test]
    async fn history_pages_are_read_newest_first_until_a_seen_event() {
        let newest = mock!(aws_sdk_sfn::Client::get_execution_history)
            .match_requests(|r| r.next_token().is_none() && r.reverse_order() == Some(true) && r.include_execution_data() == Some(true))
            .then_output(|| page(101..=200, Some("older")));
        let older =
            mock!(aws_sdk_sfn::Client::get_execution_history).match_requests(|r| r.next_token() == Some("older")).then_output(|| page(1..=100, None));
        let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&newest, &older]);

        let all = new_events(&client, "arn:x", 0).await.unwrap();
        assert_eq!(all.len(), 200, "a fresh follow reads every page");
        assert_eq!((newest.num_calls(), older.num_calls()), (1, 1));

        let recent = new_events(&client, "arn:x", 150).await.unwrap();
        assert_eq!(recent.iter().map(|e| e.id).min(), Some(151));
        assert_eq!(recent.len(), 50);
        assert_eq!(older.num_calls(), 1, "a poll stops at the first page that reaches what it has seen");
        assert_eq!(recent[0].state.as_deref(), Some("S200"));
        assert_eq!(recent[0].timestamp.timestamp(), 1_700_000_200);
    }

    #[tokio::test]
    async fn an_aws_error_keeps_its_code_and_message() {
        let denied = mock!(aws_sdk_sfn::Client::get_execution_history).then_error(|| {
            GetExecutionHistoryError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("User: arn:aws:iam::1:user/ops is not authorized to perform: states:GetExecutionHistory")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_sfn, [&denied]);
        let error = new_events(&client, "arn:x", 0).await.unwrap_err().to_string();
        assert_eq!(
            error,
            "GetExecutionHistory: AccessDeniedException: User: arn:aws:iam::1:user/ops is not authorized to perform: states:GetExecutionHistory"
        );
    }

    #[tokio::test]
    async fn follow_stops_at_the_end_and_exits_by_the_outcome() {
        let events = vec![
            SdkEvent::builder().id(1).r#type(HistoryEventType::ExecutionStarted).timestamp(SdkDateTime::from_secs(1_700_000_000)).build().unwrap(),
            SdkEvent::builder()
                .id(2)
                .r#type(HistoryEventType::ExecutionAborted)
                .timestamp(SdkDateTime::from_secs(1_700_000_090))
                .execution_aborted_event_details(
                    aws_sdk_sfn::types::ExecutionAbortedEventDetails::builder().error("Operator").cause("stopped by ops").build(),
                )
                .build()
                .unwrap(),
        ];
        let history = mock!(aws_sdk_sfn::Client::get_execution_history)
            .then_output(move || GetExecutionHistoryOutput::builder().set_events(Some(events.clone())).build().unwrap());
        let client = mock_client!(aws_sdk_sfn, [&history]);
        let code = follow_execution(&client, "arn:x", true, 1).await.unwrap();
        assert_eq!(code, ExitCode::FAILURE, "an aborted execution is not a success");
        assert_eq!(history.num_calls(), 1, "an ended execution is not polled again");
    }
}
