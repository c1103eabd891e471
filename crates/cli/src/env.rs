//! `stepdeploy env create|show|delete` and `stepdeploy config from-stack`: the environment stack
//! (`environments/environment.yaml`) through CloudFormation, and the config file written from its
//! outputs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, Parameter, Tag};
use aws_sdk_sfn::error::ProvideErrorMetadata;
use stepdeploy_core::config::{Config, merge_environment, settings_from_stack};

use crate::envstack::{self, StackEvent};
use crate::session::{AwsOptions, DEFAULT_CONFIG, aws_error, check_credentials, sdk_config};

/// What `env create` was asked.
pub(crate) struct CreateOptions {
    /// `--parameter KEY=VALUE`, as given.
    pub parameters: Vec<String>,
    /// `--production`: a new environment is marked production in the config.
    pub production: bool,
    /// `--yes`: apply a change set without asking.
    pub yes: bool,
    /// Seconds between event polls.
    pub poll_seconds: u64,
}

fn config_path(options: &AwsOptions) -> PathBuf {
    options.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
}

/// The config file's text (None when there is none yet) and the config, when it parses.
fn read_file(options: &AwsOptions) -> Result<(Option<String>, Option<Config>)> {
    let path = config_path(options);
    if !path.exists() {
        if options.config.is_some() {
            bail!("--config: {} does not exist", path.display());
        }
        return Ok((None, None));
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let config = Config::from_yaml_str_for_rehearsal(&text).ok();
    Ok((Some(text), config))
}

/// A CloudFormation client; without another region, the environment's in the config file.
async fn client(options: &AwsOptions, config: Option<&Config>, environment: &str) -> Result<Client> {
    let region = config.and_then(|c| c.environments.get(environment)).map(|e| e.region.as_str()).filter(|r| !r.is_empty());
    let sdk = sdk_config(options, region).await?;
    check_credentials(&sdk, options.profile.as_deref()).await?;
    Ok(Client::new(&sdk))
}

/// The deployment and environment names, checked, and the stack's name.
fn names(environment: &str, options: &AwsOptions, config: Option<&Config>) -> Result<(String, String)> {
    envstack::check_name("ENV", environment, 31)?;
    let deployment = options.deployment.clone().or_else(|| config.map(|c| c.deployment.clone())).ok_or_else(|| {
        anyhow!(
            "no deployment: pass --deployment NAME (a new config file is written with it), or run where {DEFAULT_CONFIG} is (or pass --config FILE)"
        )
    })?;
    envstack::check_name("--deployment", &deployment, 41)?;
    let stack = envstack::stack_name(&deployment, environment);
    Ok((deployment, stack))
}

/// The stack's id, status, outputs and parameters; None when it doesn't exist.
struct Described {
    id: String,
    status: String,
    outputs: BTreeMap<String, String>,
    parameters: BTreeMap<String, String>,
}

async fn describe(client: &Client, stack: &str) -> Result<Option<Described>> {
    let described = match client.describe_stacks().stack_name(stack).send().await {
        Ok(described) => described,
        // https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html:
        // a stack that doesn't exist is a ValidationError.
        Err(e) if e.code() == Some("ValidationError") && e.message().is_some_and(|m| m.contains("does not exist")) => return Ok(None),
        Err(e) => return Err(aws_error(&format!("stack {stack}: DescribeStacks"), e)),
    };
    let Some(found) = described.stacks().first() else { return Ok(None) };
    let pairs = |items: Vec<(Option<&str>, Option<&str>)>| -> BTreeMap<String, String> {
        items.into_iter().filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string()))).collect()
    };
    Ok(Some(Described {
        id: found.stack_id().unwrap_or(stack).to_string(),
        status: found.stack_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        outputs: pairs(found.outputs().iter().map(|o| (o.output_key(), o.output_value())).collect()),
        parameters: pairs(found.parameters().iter().map(|p| (p.parameter_key(), p.parameter_value())).collect()),
    }))
}

/// Prints the stack's events from this request until its status is final; returns the status,
/// the stack as it ended (None once deleted) and the events seen.
async fn follow_events(
    client: &Client,
    stack_id: &str,
    token: &str,
    started: i64,
    poll_seconds: u64,
) -> Result<(String, Option<Described>, Vec<StackEvent>)> {
    let mut seen = BTreeSet::new();
    let mut events = Vec::new();
    loop {
        let page = client.describe_stack_events().stack_name(stack_id).send().await.map_err(|e| aws_error("DescribeStackEvents", e))?;
        let mut fresh: Vec<StackEvent> = page
            .stack_events()
            .iter()
            // This request's events carry its token; without one, those since it began.
            .filter(|e| e.client_request_token().map_or(e.timestamp().is_some_and(|t| t.secs() >= started - 1), |t| t == token))
            .filter_map(|e| {
                Some(StackEvent {
                    id: e.event_id()?.to_string(),
                    at: e.timestamp().map(|t| t.secs()).unwrap_or(started),
                    logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
                    resource_type: e.resource_type().unwrap_or_default().to_string(),
                    status: e.resource_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    reason: e.resource_status_reason().map(String::from),
                })
            })
            .filter(|e| seen.insert(e.id.clone()))
            .collect();
        fresh.reverse();
        for event in &fresh {
            eprintln!("{}", envstack::event_line(event, started));
        }
        events.extend(fresh);
        let now = describe(client, stack_id).await?;
        let status = now.as_ref().map_or_else(|| "DELETE_COMPLETE".to_string(), |d| d.status.clone());
        if envstack::is_final(&status) {
            return Ok((status, now, events));
        }
        tokio::time::sleep(Duration::from_secs(poll_seconds)).await;
    }
}

fn failed(stack: &str, status: &str, events: &[StackEvent]) -> anyhow::Error {
    match envstack::first_failure(events) {
        Some(cause) => anyhow!("stack {stack} ended {status}; the first failure: {cause}"),
        None => anyhow!("stack {stack} ended {status} (no resource said why; see its events in the CloudFormation console)"),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `stepdeploy env create ENV`: creates the environment stack, or updates it through a change
/// set shown first, follows it, then writes the environment into the config file.
pub(crate) async fn create(environment: &str, options: &AwsOptions, create: CreateOptions) -> Result<ExitCode> {
    let (text, config) = read_file(options)?;
    let (deployment, stack) = names(environment, options, config.as_ref())?;
    let mut given = envstack::parameters(&create.parameters)?;
    given.insert("Deployment".into(), deployment.clone());
    given.insert("Environment".into(), environment.to_string());
    let client = client(options, config.as_ref(), environment).await?;
    let token = format!("stepdeploy-{}", uuid::Uuid::new_v4());
    let started = now();
    let stack_id = match describe(&client, &stack).await? {
        None => {
            eprintln!("creating stack {stack} (environments/environment.yaml)");
            let parameters: Vec<Parameter> = given.iter().map(|(k, v)| Parameter::builder().parameter_key(k).parameter_value(v).build()).collect();
            let created = client
                .create_stack()
                .stack_name(&stack)
                .template_body(envstack::TEMPLATE)
                .set_parameters(Some(parameters))
                .capabilities(Capability::CapabilityIam)
                .tags(Tag::builder().key("stepdeploy:deployment").value(&deployment).build())
                .tags(Tag::builder().key("stepdeploy:environment").value(environment).build())
                .client_request_token(&token)
                .send()
                .await
                .map_err(|e| aws_error(&format!("stack {stack}: CreateStack"), e))?;
            created.stack_id().unwrap_or(&stack).to_string()
        }
        Some(existing) if existing.status.ends_with("_IN_PROGRESS") => {
            bail!("stack {stack} is {}: wait for it to finish (`stepdeploy env show {environment}`)", existing.status)
        }
        Some(existing) if existing.status == "ROLLBACK_COMPLETE" => {
            bail!(
                "stack {stack} is ROLLBACK_COMPLETE (its creation failed) and can only be deleted: `stepdeploy env delete {environment}`, then create it again"
            )
        }
        Some(existing) => {
            if !update(&client, &stack, &existing, &given, &token, create.yes).await? {
                return write_config(&stack, &existing, environment, options, text.as_deref(), create.production);
            }
            existing.id
        }
    };
    let (status, ended, events) = follow_events(&client, &stack_id, &token, started, create.poll_seconds).await?;
    let Some(ended) = ended.filter(|_| envstack::succeeded(&status, false)) else {
        return Err(failed(&stack, &status, &events));
    };
    eprintln!("stack {stack}: {status} in {} s", now() - started);
    write_config(&stack, &ended, environment, options, text.as_deref(), create.production)
}

/// Makes a change set of `given` (other parameters keep their values), shows it, and executes it
/// once confirmed. False when there is nothing to change.
async fn update(client: &Client, stack: &str, existing: &Described, given: &BTreeMap<String, String>, token: &str, yes: bool) -> Result<bool> {
    let mut parameters: Vec<Parameter> = given.iter().map(|(k, v)| Parameter::builder().parameter_key(k).parameter_value(v).build()).collect();
    for key in existing.parameters.keys().filter(|k| !given.contains_key(*k)) {
        parameters.push(Parameter::builder().parameter_key(key).use_previous_value(true).build());
    }
    let name = format!("stepdeploy-{}", now());
    let made = match client
        .create_change_set()
        .stack_name(stack)
        .change_set_name(&name)
        .change_set_type(ChangeSetType::Update)
        .template_body(envstack::TEMPLATE)
        .set_parameters(Some(parameters))
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
    {
        Ok(made) => made,
        // UpdateStack's way of saying so (moto answers CreateChangeSet the same way).
        Err(e) if e.message().is_some_and(|m| m.contains("No updates are to be performed")) => {
            eprintln!("stack {stack}: nothing to change");
            return Ok(false);
        }
        Err(e) => return Err(aws_error(&format!("stack {stack}: CreateChangeSet"), e)),
    };
    let id = made.id().unwrap_or(&name).to_string();
    let described = loop {
        let described = client
            .describe_change_set()
            .stack_name(stack)
            .change_set_name(&id)
            .send()
            .await
            .map_err(|e| aws_error(&format!("stack {stack}: DescribeChangeSet"), e))?;
        match described.status() {
            Some(ChangeSetStatus::CreatePending | ChangeSetStatus::CreateInProgress) => tokio::time::sleep(Duration::from_secs(2)).await,
            _ => break described,
        }
    };
    if described.status() == Some(&ChangeSetStatus::Failed) {
        let reason = described.status_reason().unwrap_or_default().to_string();
        discard(client, stack, &id).await;
        // https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-changesets-create.html:
        // a change set without changes fails with this reason.
        if reason.contains("didn't contain changes") || reason.contains("No updates") {
            eprintln!("stack {stack}: nothing to change");
            return Ok(false);
        }
        bail!("stack {stack}: the change set failed: {reason}");
    }
    eprintln!("stack {stack} exists ({}); this change set would:", existing.status);
    for change in described.changes() {
        if let Some(rc) = change.resource_change() {
            let action = rc.action().map(|a| a.as_str()).unwrap_or("?");
            let replacement = rc.replacement().map(|r| r.as_str());
            eprintln!("{}", envstack::change_line(action, rc.logical_resource_id().unwrap_or("?"), rc.resource_type().unwrap_or("?"), replacement));
        }
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            discard(client, stack, &id).await;
            bail!("stack {stack}: pass --yes to apply the change set (there is no terminal to ask); nothing was changed");
        }
        eprint!("Apply it? [y/N] ");
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).context("cannot read the answer")?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            discard(client, stack, &id).await;
            bail!("not applied; the change set is deleted and nothing was changed");
        }
    }
    client
        .execute_change_set()
        .stack_name(stack)
        .change_set_name(&id)
        .client_request_token(token)
        .send()
        .await
        .map_err(|e| aws_error(&format!("stack {stack}: ExecuteChangeSet"), e))?;
    Ok(true)
}

/// Deletes a change set that won't be applied (best effort: an unused one changes nothing).
async fn discard(client: &Client, stack: &str, id: &str) {
    client.delete_change_set().stack_name(stack).change_set_name(id).send().await.ok();
}

/// Writes the environment from the stack's outputs into the config file, showing the diff.
fn write_config(
    stack: &str,
    described: &Described,
    environment: &str,
    options: &AwsOptions,
    text: Option<&str>,
    production: bool,
) -> Result<ExitCode> {
    let settings = settings_from_stack(stack, &described.outputs, &described.parameters)?;
    let merged = merge_environment(stack, text, environment, &settings, Some(production))?;
    // Only this environment's problems stop the write: another one (an imported environment
    // whose ARNs are still empty, say) is the user's to finish, and `config check` lists it.
    if let Err(problems) = Config::from_yaml_str(&merged) {
        let prefix = format!("environments.{environment}.");
        let ours: Vec<String> =
            problems.0.iter().filter(|p| p.path.starts_with(&prefix) || !p.path.starts_with("environments.")).map(|p| p.to_string()).collect();
        if !ours.is_empty() {
            bail!("the config written from stack {stack} would not be valid:\n{}", ours.join("\n"));
        }
        eprintln!("note: the config's other environments have {} problem(s) left; `stepdeploy config check` lists them", problems.0.len());
    }
    let path = config_path(options);
    match envstack::diff(&path.display().to_string(), text.unwrap_or_default(), &merged) {
        None => eprintln!("{}: environment {environment} already matches the stack", path.display()),
        Some(diff) => {
            eprint!("{diff}");
            std::fs::write(&path, &merged).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote environment {environment} to {}", path.display());
        }
    }
    if let Some(role) = described.outputs.get("InstanceRoleArn") {
        eprintln!("the stepdeploy stack's FleetRoleArns must include {role} (steps may pass only those roles)");
    }
    eprintln!("next: stepdeploy config push {environment}, then stepdeploy doctor {environment}");
    Ok(ExitCode::SUCCESS)
}

/// `stepdeploy config from-stack STACK --env ENV`.
pub(crate) async fn from_stack(stack: &str, environment: &str, options: &AwsOptions) -> Result<ExitCode> {
    envstack::check_name("--env", environment, 31)?;
    let (text, config) = read_file(options)?;
    let client = client(options, config.as_ref(), environment).await?;
    let described = describe(&client, stack).await?.ok_or_else(|| anyhow!("stack {stack} was not found"))?;
    write_config(stack, &described, environment, options, text.as_deref(), false)
}

/// `stepdeploy env show ENV`: the stack's status and outputs.
pub(crate) async fn show(environment: &str, options: &AwsOptions) -> Result<ExitCode> {
    let (_, config) = read_file(options)?;
    let (_, stack) = names(environment, options, config.as_ref())?;
    let client = client(options, config.as_ref(), environment).await?;
    let Some(described) = describe(&client, &stack).await? else {
        bail!("stack {stack} does not exist: `stepdeploy env create {environment}` creates it");
    };
    if options.json {
        println!("{}", serde_json::json!({"stack": stack, "status": described.status, "outputs": described.outputs}));
        return Ok(ExitCode::SUCCESS);
    }
    println!("stack {stack}: {}", described.status);
    for (key, value) in &described.outputs {
        println!("  {key}: {value}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `stepdeploy env delete ENV`: deletes the stack (a production environment asks first) and
/// follows it. The config file keeps the environment.
pub(crate) async fn delete(environment: &str, options: &AwsOptions, yes: bool, poll_seconds: u64) -> Result<ExitCode> {
    let (_, config) = read_file(options)?;
    let (_, stack) = names(environment, options, config.as_ref())?;
    let client = client(options, config.as_ref(), environment).await?;
    let Some(described) = describe(&client, &stack).await? else {
        eprintln!("stack {stack} does not exist: nothing to delete");
        return Ok(ExitCode::SUCCESS);
    };
    if config.as_ref().and_then(|c| c.environments.get(environment)).is_some_and(|e| e.production) {
        crate::remote::confirm(environment, &format!("Delete stack {stack} and everything in it"), yes)?;
    }
    let token = format!("stepdeploy-{}", uuid::Uuid::new_v4());
    let started = now();
    client
        .delete_stack()
        .stack_name(&described.id)
        .client_request_token(&token)
        .send()
        .await
        .map_err(|e| aws_error(&format!("stack {stack}: DeleteStack"), e))?;
    let (status, _, events) = follow_events(&client, &described.id, &token, started, poll_seconds).await?;
    if !envstack::succeeded(&status, true) {
        return Err(failed(&stack, &status, &events));
    }
    eprintln!(
        "stack {stack}: deleted in {} s; {environment} is still in the config file (remove it by hand if it is gone for good)",
        now() - started
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetOutput;
    use aws_sdk_cloudformation::operation::delete_change_set::DeleteChangeSetOutput;
    use aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput;
    use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
    use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
    use aws_sdk_cloudformation::operation::execute_change_set::ExecuteChangeSetOutput;
    use aws_sdk_cloudformation::primitives::DateTime;
    use aws_sdk_cloudformation::types::{
        Change, ChangeAction, Replacement, ResourceChange, ResourceStatus, Stack, StackEvent as SdkEvent, StackStatus,
    };
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn existing() -> Described {
        let parameters = [("Deployment", "demo"), ("Environment", "staging"), ("WebMaxSize", "4"), ("Database", "none")];
        Described {
            id: "arn:aws:cloudformation:us-east-1:1:stack/stepdeploy-demo-staging/1".into(),
            status: "CREATE_COMPLETE".into(),
            outputs: BTreeMap::new(),
            parameters: parameters.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn given() -> BTreeMap<String, String> {
        [("Deployment", "demo"), ("Environment", "staging"), ("WebMaxSize", "6")].into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[tokio::test]
    async fn an_update_sends_the_given_parameters_keeps_the_others_and_applies_the_change_set() {
        let create = mock!(Client::create_change_set)
            .match_requests(|r| {
                let value = |key: &str| r.parameters().iter().find(|p| p.parameter_key() == Some(key)).cloned();
                r.change_set_type() == Some(&ChangeSetType::Update)
                    && value("WebMaxSize").and_then(|p| p.parameter_value().map(String::from)).as_deref() == Some("6")
                    && value("Database").is_some_and(|p| p.use_previous_value() == Some(true) && p.parameter_value().is_none())
            })
            .then_output(|| CreateChangeSetOutput::builder().id("cs-1").build());
        let change = ResourceChange::builder()
            .action(ChangeAction::Modify)
            .logical_resource_id("WebGroup")
            .resource_type("AWS::AutoScaling::AutoScalingGroup")
            .replacement(Replacement::False)
            .build();
        let describe = mock!(Client::describe_change_set).then_output(move || {
            DescribeChangeSetOutput::builder()
                .status(ChangeSetStatus::CreateComplete)
                .changes(Change::builder().resource_change(change.clone()).build())
                .build()
        });
        let execute = mock!(Client::execute_change_set)
            .match_requests(|r| r.change_set_name() == Some("cs-1") && r.client_request_token() == Some("tok"))
            .then_output(|| ExecuteChangeSetOutput::builder().build());
        let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&create, &describe, &execute]);
        assert!(update(&client, "stepdeploy-demo-staging", &existing(), &given(), "tok", true).await.unwrap());
        assert_eq!((create.num_calls(), execute.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_change_set_without_changes_is_deleted_and_nothing_is_applied() {
        let create = mock!(Client::create_change_set).then_output(|| CreateChangeSetOutput::builder().id("cs-1").build());
        let describe = mock!(Client::describe_change_set).then_output(|| {
            DescribeChangeSetOutput::builder()
                .status(ChangeSetStatus::Failed)
                .status_reason("The submitted information didn't contain changes. Submit different information to create a change set.")
                .build()
        });
        let delete = mock!(Client::delete_change_set).then_output(|| DeleteChangeSetOutput::builder().build());
        let execute = mock!(Client::execute_change_set).then_output(|| ExecuteChangeSetOutput::builder().build());
        let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&create, &describe, &delete, &execute]);
        assert!(!update(&client, "stepdeploy-demo-staging", &existing(), &given(), "tok", true).await.unwrap());
        assert_eq!((delete.num_calls(), execute.num_calls()), (1, 0));
    }

    #[tokio::test]
    async fn a_failed_update_names_the_first_resource_that_failed_not_the_rollback() {
        let event = |id: &str, at: i64, logical: &str, kind: &str, status: ResourceStatus, reason: Option<&str>| {
            SdkEvent::builder()
                .event_id(id)
                .stack_id("arn")
                .stack_name("stepdeploy-demo-staging")
                .timestamp(DateTime::from_secs(at))
                .logical_resource_id(logical)
                .resource_type(kind)
                .resource_status(status)
                .set_resource_status_reason(reason.map(String::from))
                .client_request_token("tok")
                .build()
        };
        // Newest first, as DescribeStackEvents lists them; one event of an earlier request (another token).
        let events = vec![
            event("5", 1_700_000_050, "stepdeploy-demo-staging", "AWS::CloudFormation::Stack", ResourceStatus::UpdateRollbackComplete, None),
            event(
                "4",
                1_700_000_030,
                "WebLaunchTemplate",
                "AWS::EC2::LaunchTemplate",
                ResourceStatus::UpdateFailed,
                Some("Resource update cancelled"),
            ),
            event(
                "3",
                1_700_000_020,
                "WebGroup",
                "AWS::AutoScaling::AutoScalingGroup",
                ResourceStatus::UpdateFailed,
                Some("Max size must be at least min size"),
            ),
            event("2", 1_700_000_010, "WebGroup", "AWS::AutoScaling::AutoScalingGroup", ResourceStatus::UpdateInProgress, None),
            SdkEvent::builder()
                .event_id("1")
                .timestamp(DateTime::from_secs(1_600_000_000))
                .logical_resource_id("Vpc")
                .resource_status(ResourceStatus::CreateFailed)
                .resource_status_reason("an older failure")
                .client_request_token("other")
                .build(),
        ];
        let listed = mock!(Client::describe_stack_events)
            .then_output(move || DescribeStackEventsOutput::builder().set_stack_events(Some(events.clone())).build());
        let status = mock!(Client::describe_stacks).then_output(|| {
            let stack = Stack::builder()
                .stack_id("arn")
                .stack_name("stepdeploy-demo-staging")
                .stack_status(StackStatus::UpdateRollbackComplete)
                .creation_time(DateTime::from_secs(1_600_000_000))
                .build();
            DescribeStacksOutput::builder().stacks(stack).build()
        });
        let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&listed, &status]);
        let (final_status, _, seen) = follow_events(&client, "arn", "tok", 1_700_000_000, 0).await.unwrap();
        assert_eq!(final_status, "UPDATE_ROLLBACK_COMPLETE");
        assert_eq!(seen.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["2", "3", "4", "5"], "this request's, oldest first");
        assert!(!envstack::succeeded(&final_status, false));
        assert_eq!(
            failed("stepdeploy-demo-staging", &final_status, &seen).to_string(),
            "stack stepdeploy-demo-staging ended UPDATE_ROLLBACK_COMPLETE; the first failure: WebGroup (AWS::AutoScaling::AutoScalingGroup): Max size must be at least min size"
        );
        assert_eq!(listed.num_calls(), 1, "a final status ends the polling");
    }
}
