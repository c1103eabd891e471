//! `stepdeploy`: the operator's command. This module only parses arguments
//! and dispatches; the work lives in the library crates.

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
