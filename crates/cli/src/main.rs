//! `stepdeploy`: the operator's command. This module dispatches the arguments `args` parses;
//! the work lives in the library crates.

mod args;
mod asl;
mod local;
// Without the `aws` feature only the local commands use anything.
#[cfg(feature = "aws")]
mod env;
#[cfg(feature = "aws")]
mod envstack;
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
mod progress;
#[cfg(feature = "aws")]
mod queue;
#[cfg(feature = "aws")]
mod remote;
#[cfg(feature = "aws")]
mod session;
#[cfg(feature = "aws")]
mod sfn_events;
mod stepline;
mod timeline;
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
mod workflows;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

#[cfg(feature = "aws")]
use crate::args::EnvCommand;
use crate::args::{AslCommand, Cli, Command, ConfigCommand, GraphFormat, OutputFormat};
#[cfg(feature = "aws")]
use crate::args::{AwsArgs, DeployKind, OnOff, StartArgs, SuspendResume};
use stepdeploy_core::config::Config;
use stepdeploy_core::fabulaws;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    match run(cli) {
        Ok(code) => code,
        // One line that says what is wrong; -v adds the chain of causes, the SDK's included.
        Err(e) if verbose => {
            eprintln!("error: {}", one_line(&e));
            for (depth, cause) in e.chain().enumerate().skip(1) {
                eprintln!("\ncaused by ({depth}): {cause:?}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once (an AWS error's message already
/// holds its SDK causes, which follow it again in the chain).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Asl(AslCommand::Run {
            definition,
            input,
            input_file,
            virtual_time,
            output,
            lambda_endpoint,
            substitutions,
            mock_config,
            test_case,
            state_machine,
            task_token,
            task_token_after,
        }) => {
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let mock = mock_config.zip(test_case).map(|(config, test_case)| asl::MockArgs { config, test_case, state_machine });
            runtime.block_on(asl::run(asl::RunArgs {
                definition,
                input,
                input_file,
                virtual_time,
                json: output == OutputFormat::Json,
                lambda_endpoint,
                substitutions,
                mock,
                task_token: task_token.map(|answer| (answer, task_token_after)),
            }))
        }
        Command::Asl(AslCommand::Validate { files, output }) => asl::validate(&files, output == OutputFormat::Json),
        Command::Graph { definition, format } => {
            let text = std::fs::read_to_string(&definition).with_context(|| format!("cannot read {}", definition.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", definition.display()))?;
            if !value["States"].is_object() {
                anyhow::bail!("{}: States: missing; expected an Amazon States Language definition", definition.display());
            }
            let format = match format {
                GraphFormat::Mermaid => stepdeploy_asl::graph::Format::Mermaid,
                GraphFormat::Dot => stepdeploy_asl::graph::Format::Dot,
            };
            print!("{}", stepdeploy_asl::graph::draw(&value, format));
            Ok(ExitCode::SUCCESS)
        }
        Command::Local { workflow, config, env, instances, faults, seed, output, timeline, approve, queued_deploy } => {
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(local::run_local(local::LocalArgs {
                workflow,
                config,
                env,
                instances,
                faults,
                seed,
                json: output == OutputFormat::Json,
                timeline,
                approve,
                queued_deploy,
            }))
        }
        Command::Config(ConfigCommand::Import { fabulaws_yml, deployment, production_fixes, output }) => {
            let text = std::fs::read_to_string(&fabulaws_yml).with_context(|| format!("cannot read {}", fabulaws_yml.display()))?;
            let mut fixes = std::collections::BTreeMap::new();
            for fix in &production_fixes {
                let Some((name, env)) = fix.split_once('=') else {
                    anyhow::bail!("--production-fix: {fix:?} is not NAME=ENV or NAME=none");
                };
                fixes.insert(name.to_string(), (env != "none").then(|| env.to_string()));
            }
            let import = fabulaws::import_with(&text, deployment.as_deref(), &fixes)?;
            for warning in &import.warnings {
                eprintln!("warning: {warning}");
            }
            for line in &import.inconsistencies {
                eprintln!("inconsistent input: {line}");
            }
            let yaml = fabulaws::header(&fabulaws_yml.display().to_string(), &import) + &import.config.to_yaml();
            match &output {
                Some(path) => {
                    std::fs::write(path, &yaml).with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "wrote {} ({} environments); run `stepdeploy config check {}` for the settings left to fill in",
                        path.display(),
                        import.config.environments.len(),
                        path.display()
                    );
                }
                None => print!("{yaml}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file, output }) => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            if output == OutputFormat::Json {
                let (ok, environments, problems) = match Config::from_yaml_str(&text) {
                    Ok(config) => (true, config.environments.keys().cloned().collect(), Vec::new()),
                    Err(problems) => {
                        let list = problems.0.iter().map(|p| serde_json::json!({"path": p.path, "message": p.message})).collect();
                        (false, Vec::<String>::new(), list)
                    }
                };
                println!("{}", serde_json::json!({"file": file, "ok": ok, "environments": environments, "problems": problems}));
                return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
            match Config::from_yaml_str(&text) {
                Ok(config) => {
                    println!(
                        "{}: ok ({} environments: {})",
                        file.display(),
                        config.environments.len(),
                        config.environments.keys().cloned().collect::<Vec<_>>().join(", ")
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    for problem in &problems.0 {
                        println!("{problem}");
                    }
                    eprintln!("{}: {} problem(s)", file.display(), problems.0.len());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        // Every other command works on AWS.
        remote => run_remote(remote),
    }
}

/// The AWS flags of a command that works on AWS.
#[cfg(feature = "aws")]
fn aws_args(command: &Command) -> Option<&AwsArgs> {
    match command {
        Command::Deploy { aws, .. }
        | Command::Bake { aws, .. }
        | Command::Release { aws, .. }
        | Command::Rebake { aws, .. }
        | Command::Worker { aws, .. }
        | Command::Maintenance { aws, .. }
        | Command::Autoscaling { aws, .. }
        | Command::InPlace { aws, .. }
        | Command::Follow { aws, .. }
        | Command::Status { aws, .. }
        | Command::History { aws, .. }
        | Command::Doctor { aws, .. }
        | Command::Approve { aws, .. }
        | Command::Reject { aws, .. }
        | Command::Config(ConfigCommand::Push { aws, .. })
        | Command::Config(ConfigCommand::FromStack { aws, .. })
        | Command::Env(EnvCommand::Create { aws, .. })
        | Command::Env(EnvCommand::Show { aws, .. })
        | Command::Env(EnvCommand::Delete { aws, .. }) => Some(aws),
        _ => None,
    }
}

#[cfg(not(feature = "aws"))]
fn run_remote(_: Command) -> Result<ExitCode> {
    anyhow::bail!("this stepdeploy was built without AWS support (--no-default-features); build it with the default features for the AWS commands")
}

#[cfg(feature = "aws")]
fn run_remote(command: Command) -> Result<ExitCode> {
    let aws = aws_args(&command).cloned().context("not an AWS command")?;
    let options = remote::AwsOptions {
        profile: aws.profile,
        region: aws.region,
        stack: aws.stack,
        deployment: aws.deployment,
        config: aws.config,
        json: aws.output == OutputFormat::Json,
    };
    let start_options = |s: StartArgs| remote::StartOptions { yes: s.yes, no_wait: s.no_wait, poll_seconds: s.poll_seconds };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (request, start) = match command {
            Command::Follow { execution_arn, poll_seconds, .. } => return remote::follow(&execution_arn, &options, poll_seconds).await,
            Command::Status { environment, .. } => return remote::status(&environment, &options).await,
            Command::Doctor { environment, .. } => return remote::doctor(&environment, &options).await,
            Command::Approve { environment, .. } => return remote::answer(&environment, None, &options).await,
            Command::Reject { environment, reason, .. } => return remote::answer(&environment, Some(reason), &options).await,
            Command::History { environment, timeline: Some(execution), out: Some(out), .. } => {
                return remote::history_timeline(&environment, &execution, &out, &options).await;
            }
            Command::History { environment, limit, .. } => return remote::history(&environment, limit, &options).await,
            Command::Config(ConfigCommand::Push { environment, yes, .. }) => return remote::push(&environment, &options, yes).await,
            Command::Config(ConfigCommand::FromStack { stack_name, environment, .. }) => {
                return env::from_stack(&stack_name, &environment, &options).await;
            }
            Command::Env(EnvCommand::Create { environment, parameters, production, yes, poll_seconds, .. }) => {
                return env::create(&environment, &options, env::CreateOptions { parameters, production, yes, poll_seconds }).await;
            }
            Command::Env(EnvCommand::Show { environment, .. }) => return env::show(&environment, &options).await,
            Command::Env(EnvCommand::Delete { environment, yes, poll_seconds, .. }) => {
                return env::delete(&environment, &options, yes, poll_seconds).await;
            }
            Command::Deploy { kind, environment, version, revision, migrations, ignore_alarms, lock_wait, rollout, start, .. } => {
                let deploy = workflows::DeployOptions {
                    version,
                    revision,
                    run_migrations: migrations,
                    rollout: rollout.into(),
                    break_stale_lock: start.break_stale_lock,
                    ignore_alarms,
                    lock_wait_seconds: lock_wait,
                };
                (workflows::deploy(kind == DeployKind::Full, &environment, &deploy), start)
            }
            Command::Bake { environment, revision, no_make_default, start, .. } => {
                (workflows::bake(&environment, revision.as_deref(), !no_make_default), start)
            }
            Command::Release { environment, revision, deploy, migrations, rollout, start, .. } => {
                let options = workflows::DeployOptions {
                    run_migrations: migrations,
                    rollout: rollout.into(),
                    break_stale_lock: start.break_stale_lock,
                    ..Default::default()
                };
                let how = if deploy == DeployKind::Full { "full" } else { "serial" };
                (workflows::release(&environment, revision.as_deref(), how, &options), start)
            }
            Command::Rebake { environment, deploy, start, .. } => (workflows::rebake(&environment, &deploy, start.break_stale_lock), start),
            Command::Worker { environment, revision, no_migrations, start, .. } => {
                (workflows::worker(&environment, revision.as_deref(), !no_migrations, start.break_stale_lock), start)
            }
            Command::Maintenance { action, environment, start, .. } => {
                (workflows::maintenance(&environment, action == OnOff::On, start.break_stale_lock), start)
            }
            Command::Autoscaling { action, environment, processes, start, .. } => {
                (workflows::autoscaling(&environment, action == SuspendResume::Suspend, &processes, start.break_stale_lock), start)
            }
            Command::InPlace { environment, revision, min_healthy_percent, batch_size, start, .. } => {
                // An in-place deploy launches nothing: it takes no ceiling, so it offers no --max-healthy-percent.
                let rollout = workflows::RolloutOverrides { min_healthy_percent, max_healthy_percent: None, batch_size };
                (workflows::in_place(&environment, revision.as_deref(), &rollout, start.break_stale_lock), start)
            }
            _ => anyhow::bail!("not an AWS command"),
        };
        remote::start(request, &options, start_options(start)).await
    })
}
