//! `stepdeploy`: the operator's command. This module only parses arguments
//! and dispatches; the work lives in the library crates.

mod asl;
mod local;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use stepdeploy_core::config::Config;
use stepdeploy_core::fabulaws;

/// Serverless deploys for EC2 Auto Scaling web fleets.
#[derive(Parser)]
#[command(name = "stepdeploy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with stepdeploy.yaml.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run and validate Amazon States Language definitions locally.
    #[command(subcommand)]
    Asl(AslCommand),
    /// Draw a workflow (a state machine definition) as a graph.
    Graph {
        /// The definition (.asl.json).
        definition: PathBuf,
        /// mermaid (for Markdown) or dot (Graphviz).
        #[arg(long, value_enum, default_value = "mermaid")]
        format: GraphFormat,
    },
    /// Run a workflow's real state machine on a simulated fleet, with live progress.
    Local {
        /// The workflow: serial, full, worker, maintenance-on, maintenance-off, bake, release or rebake.
        workflow: String,
        /// Rehearse a config file's environment settings (policy, timeouts, page, commands) on the simulated fleet.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The config's environment (default: its only one; without --config, demo).
        #[arg(long)]
        env: Option<String>,
        /// Web instances in the demo fleet.
        #[arg(long, default_value_t = 6)]
        instances: u32,
        /// Inject a fault: unhealthy-new, migration-fails, throttle, external-scale-in, instance-dies (repeatable; each names the workflows it applies to).
        #[arg(long = "fault")]
        faults: Vec<String>,
        /// Seed of the simulated account (same seed, same run).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output format (json: the last stdout line is one JSON object).
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
    },
}

#[derive(Subcommand)]
enum AslCommand {
    /// Run a definition (exit 0: SUCCEEDED, 1: any other status, 2: invalid definition or input).
    Run {
        /// The definition (.asl.json).
        definition: PathBuf,
        /// The execution input, as JSON.
        #[arg(long)]
        input: Option<String>,
        /// A file holding the execution input.
        #[arg(long)]
        input_file: Option<PathBuf>,
        /// Let Wait states and retry delays pass at once.
        #[arg(long)]
        virtual_time: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
        /// Send Lambda Task states to this Lambda Invoke API endpoint (e.g. `cargo lambda watch`).
        #[arg(long)]
        lambda_endpoint: Option<String>,
        /// A DefinitionSubstitutions entry, NAME=VALUE (repeatable).
        #[arg(long = "substitution", value_name = "NAME=VALUE")]
        substitutions: Vec<String>,
    },
    /// Validate definitions; report every problem (exit 2 if any is invalid).
    Validate {
        /// Definition files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GraphFormat {
    /// A Mermaid flowchart.
    Mermaid,
    /// A Graphviz digraph.
    Dot,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    /// For people.
    Text,
    /// One JSON object on stdout.
    Json,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Convert a Fabulaws fabulaws-config.yml into a stepdeploy config.
    Import {
        /// The Fabulaws YAML file.
        fabulaws_yml: PathBuf,
        /// The deployment to import, when the file has several.
        #[arg(long)]
        deployment: Option<String>,
        /// Where to write the config (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Validate a config; report every problem; exit 1 on any.
    Check {
        /// The config file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Asl(AslCommand::Run { definition, input, input_file, virtual_time, output, lambda_endpoint, substitutions }) => {
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(asl::run(asl::RunArgs {
                definition,
                input,
                input_file,
                virtual_time,
                json: output == OutputFormat::Json,
                lambda_endpoint,
                substitutions,
            }))
        }
        Command::Asl(AslCommand::Validate { files }) => asl::validate(&files),
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
        Command::Local { workflow, config, env, instances, faults, seed, output } => {
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(local::run_local(local::LocalArgs {
                workflow,
                config,
                env,
                instances,
                faults,
                seed,
                json: output == OutputFormat::Json,
            }))
        }
        Command::Config(ConfigCommand::Import { fabulaws_yml, deployment, output }) => {
            let text = std::fs::read_to_string(&fabulaws_yml).with_context(|| format!("cannot read {}", fabulaws_yml.display()))?;
            let import = fabulaws::import(&text, deployment.as_deref())?;
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
        Command::Config(ConfigCommand::Check { file }) => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
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
    }
}
