//! The command line: every command, argument and flag, with the help text `--help` prints.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::workflows;

/// Serverless deploys for EC2 Auto Scaling web fleets.
#[derive(Parser)]
#[command(name = "stepdeploy", version, about)]
pub(crate) struct Cli {
    /// On an error, also print everything behind it (the SDK's details of a failed AWS call).
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Start a serial or full deploy on AWS and follow it.
    Deploy {
        /// serial (rolling, no downtime) or full (maintenance page, everything at once).
        #[arg(value_enum)]
        kind: DeployKind,
        /// The environment.
        environment: String,
        /// The launch template version (a number, $Latest or $Default; default: $Default, which a bake sets).
        #[arg(long)]
        version: Option<String>,
        /// The git revision: without --version, deploys the newest version baked from it; also fills {revision} in commands.
        #[arg(long)]
        revision: Option<String>,
        /// Run the worker deploy and migrations before any web change.
        #[arg(long)]
        migrations: bool,
        /// Deploy although one of the environment's alarms is already in ALARM (a fix for what fires); it
        /// still rolls back if that alarm changes state and fires again, or another one fires.
        #[arg(long)]
        ignore_alarms: bool,
        /// Wait this many seconds for the environment's lock if another execution holds it (the lock queue;
        /// default: lock.wait_seconds), instead of failing at once; 0..=14400.
        #[arg(long, value_name = "SECONDS")]
        lock_wait: Option<u64>,
        #[command(flatten)]
        rollout: RolloutArgs,
        #[command(flatten)]
        start: StartArgs,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Bake an AMI for a revision and publish it as a launch template version, on AWS.
    Bake {
        /// The environment.
        environment: String,
        /// The git revision (default: the environment's branch).
        #[arg(long)]
        revision: Option<String>,
        /// Publish the version without making it the template's default (by default a bake makes it the
        /// default, so that `deploy` of `$Default` ships it).
        #[arg(long)]
        no_make_default: bool,
        #[command(flatten)]
        start: StartArgs,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Bake a revision, then deploy it (one execution), on AWS.
    Release {
        /// The environment.
        environment: String,
        /// The git revision (default: the environment's branch).
        #[arg(long)]
        revision: Option<String>,
        /// How to deploy the new image.
        #[arg(long, value_enum, default_value = "serial")]
        deploy: DeployKind,
        /// Run the worker deploy and migrations before any web change.
        #[arg(long)]
        migrations: bool,
        #[command(flatten)]
        rollout: RolloutArgs,
        #[command(flatten)]
        start: StartArgs,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Rebake the running revision onto a fresh base image and deploy it, on AWS.
    Rebake {
        /// The environment.
        environment: String,
        /// How to deploy the new image (none: bake only).
        #[arg(long, default_value = "serial", value_parser = ["serial", "full", "none"])]
        deploy: String,
        #[command(flatten)]
        start: StartArgs,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Deploy the workers (then migrations), on AWS.
    Worker {
        /// The environment.
        environment: String,
        /// The git revision (default: the environment's branch).
        #[arg(long)]
        revision: Option<String>,
        /// Skip migrations.
        #[arg(long)]
        no_migrations: bool,
        #[command(flatten)]
        start: StartArgs,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Put the maintenance page up or take it down, on AWS.
    Maintenance {
        /// on or off.
        #[arg(value_enum)]
        action: OnOff,
        /// The environment.
        environment: String,
        #[command(flatten)]
        start: StartArgs,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Suspend or resume the group's Auto Scaling processes, on AWS.
    Autoscaling {
        /// suspend or resume.
        #[arg(value_enum)]
        action: SuspendResume,
        /// The environment.
        environment: String,
        /// A process (Launch, Terminate, AZRebalance, ...; repeatable; default: rollout.suspend_processes).
        #[arg(long = "process")]
        processes: Vec<String>,
        #[command(flatten)]
        start: StartArgs,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Update the code on the running web instances over SSM, batch by batch, on AWS.
    InPlace {
        /// The environment.
        environment: String,
        /// The git revision (default: the environment's branch).
        #[arg(long)]
        revision: Option<String>,
        /// Override rollout.min_healthy_percent.
        #[arg(long)]
        min_healthy_percent: Option<u32>,
        /// Override rollout.batch_size.
        #[arg(long)]
        batch_size: Option<u32>,
        #[command(flatten)]
        start: StartArgs,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Follow an execution until it ends (exit 0 only if it succeeded).
    Follow {
        /// The execution's ARN.
        execution_arn: String,
        /// Seconds between polls.
        #[arg(long, default_value_t = 5)]
        poll_seconds: u64,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// An environment now: instances by version and health, lock, running executions, suspended processes, maintenance page.
    Status {
        /// The environment.
        environment: String,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Let a rollout paused at a checkpoint go on, on AWS.
    Approve {
        /// The environment.
        environment: String,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Roll back a rollout paused at a checkpoint, on AWS.
    Reject {
        /// The environment.
        environment: String,
        /// Why, for the execution's cause.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Check, read-only, that an environment is ready to deploy: stack, pushed config, group, template,
    /// target groups, listener, alarms, lock; each failure with what to do (exit 1 if any fails).
    Doctor {
        /// The environment.
        environment: String,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// An environment's recent executions, with outcome and duration.
    History {
        /// The environment.
        environment: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Instead of the list, draw this execution's timeline (healthy old and new, live, floor, ceiling) into --out.
        #[arg(long, value_name = "EXECUTION_ARN", requires = "out")]
        timeline: Option<String>,
        /// The SVG file --timeline writes.
        #[arg(long, value_name = "FILE.svg", requires = "timeline")]
        out: Option<PathBuf>,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Work with stepdeploy.yaml.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create, show or delete an environment's AWS resources (environments/environment.yaml).
    #[command(subcommand)]
    Env(EnvCommand),
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
        /// The workflow: serial, full, worker, maintenance-on, maintenance-off, bake, release, rebake or in-place.
        workflow: String,
        /// Rehearse a config file's environment settings (policy, timeouts, page, commands) on the simulated fleet.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The config's environment (default: its only one; without --config, demo).
        #[arg(long)]
        env: Option<String>,
        /// Web instances in the simulated fleet (default: the config's scaling.desired_capacity with --config, else 6).
        #[arg(long)]
        instances: Option<u32>,
        /// Inject a fault (repeatable; one that doesn't apply to the workflow names those it does): unhealthy-new,
        /// migration-fails, throttle, external-scale-in, instance-dies, bake-script-fails, in-place-command-fails,
        /// image-never-available, ec2-lag, launch-fails, health-replacements, az-imbalance, lost-responses, long-output,
        /// instance-impaired, alarm-during-rollout, alarm-during-bake, alarm-at-start, alarm-at-checkpoint.
        #[arg(long = "fault")]
        faults: Vec<String>,
        /// Seed of the simulated account (same seed, same run).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output format (json: the last stdout line is one JSON object).
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
        /// Draw the deploy's timeline (healthy old and new, live, floor, ceiling; rollback, bake and page markers) into this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        timeline: Option<PathBuf>,
        /// How the simulated operator answers a rollout paused at a checkpoint, on virtual time:
        /// auto (approve at once), reject, never (let the pause time out) or after:SECONDS.
        #[arg(long, default_value = "auto", value_parser = parse_approve)]
        approve: stepdeploy_local::Approve,
        /// Also start a serial deploy of this launch template version (1 or 2) at the same moment
        /// (serial and full): it waits in the lock queue (up to an hour) and runs once this one is done.
        #[arg(long, value_name = "VERSION")]
        queued_deploy: Option<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DeployKind {
    /// Rolling, no downtime.
    Serial,
    /// Maintenance page, everything at once.
    Full,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnOff {
    /// Page up.
    On,
    /// Page down.
    Off,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SuspendResume {
    /// Suspend.
    Suspend,
    /// Resume.
    Resume,
}

/// Where and as whom (AWS commands).
#[derive(Args, Clone)]
pub(crate) struct AwsArgs {
    /// The AWS profile (SSO, credential_process and role profiles work as in the AWS CLI; default: AWS_PROFILE).
    #[arg(long)]
    pub(crate) profile: Option<String>,
    /// The region (default: AWS_REGION, the profile's, then the environment's `region` in the config).
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// Read the deployment and its state machine ARNs from this CloudFormation stack.
    #[arg(long)]
    pub(crate) stack: Option<String>,
    /// The deployment (default: the config's `deployment`); its state machines are listed in /stepdeploy/<deployment>/state-machines.
    #[arg(long, env = "STEPDEPLOY_DEPLOYMENT")]
    pub(crate) deployment: Option<String>,
    /// The config file (default: ./stepdeploy.yaml when present).
    #[arg(long, env = "STEPDEPLOY_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Output format (json: one JSON object on stdout; progress goes to stderr).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) output: OutputFormat,
}

/// How a start is confirmed and watched.
#[derive(Args, Clone, Copy)]
pub(crate) struct StartArgs {
    /// Don't ask for confirmation on a production environment.
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
    /// Start the execution and return (print its ARN) instead of following it.
    #[arg(long)]
    pub(crate) no_wait: bool,
    /// Take over a lock older than lock.stale_after_seconds.
    #[arg(long)]
    pub(crate) break_stale_lock: bool,
    /// Seconds between progress polls.
    #[arg(long, default_value_t = 5)]
    pub(crate) poll_seconds: u64,
}

/// Rollout overrides.
#[derive(Args, Clone, Copy)]
pub(crate) struct RolloutArgs {
    /// Override rollout.min_healthy_percent.
    #[arg(long)]
    pub(crate) min_healthy_percent: Option<u32>,
    /// Override rollout.max_healthy_percent.
    #[arg(long)]
    pub(crate) max_healthy_percent: Option<u32>,
    /// Override rollout.batch_size.
    #[arg(long)]
    pub(crate) batch_size: Option<u32>,
}

impl From<RolloutArgs> for workflows::RolloutOverrides {
    fn from(r: RolloutArgs) -> Self {
        workflows::RolloutOverrides {
            min_healthy_percent: r.min_healthy_percent,
            max_healthy_percent: r.max_healthy_percent,
            batch_size: r.batch_size,
        }
    }
}

// Parsed once per process: the variants' sizes don't matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub(crate) enum AslCommand {
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
        /// A mock configuration file in Step Functions Local's format (MockConfigFile.json): mocked Task responses.
        #[arg(long, requires = "test_case")]
        mock_config: Option<PathBuf>,
        /// The mock config's test case to run.
        #[arg(long, requires = "mock_config")]
        test_case: Option<String>,
        /// The state machine's name in the mock config (default: the definition file's stem).
        #[arg(long, requires = "mock_config")]
        state_machine: Option<String>,
        /// How `.waitForTaskToken` Tasks are answered: `success[:JSON]` or `failure:ERROR[:CAUSE]`
        /// (default: no answer; they wait for their TimeoutSeconds or HeartbeatSeconds).
        #[arg(long, value_name = "ANSWER")]
        task_token: Option<String>,
        /// Seconds after the integration call that --task-token answers (on the engine's clock).
        #[arg(long, value_name = "SECONDS", default_value_t = 0, requires = "task_token")]
        task_token_after: u64,
    },
    /// Validate definitions; report every problem (exit 2 if any is invalid).
    Validate {
        /// Definition files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format (json: one JSON object on stdout).
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum GraphFormat {
    /// A Mermaid flowchart.
    Mermaid,
    /// A Graphviz digraph.
    Dot,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// For people.
    Text,
    /// One JSON object on stdout.
    Json,
}

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Convert a Fabulaws fabulaws-config.yml into a stepdeploy config.
    Import {
        /// The Fabulaws YAML file.
        fabulaws_yml: PathBuf,
        /// The deployment to import, when the file has several.
        #[arg(long)]
        deployment: Option<String>,
        /// For a name in production_environments that is not an environment: NAME=ENV marks ENV
        /// production instead, NAME=none marks none (repeatable; the import stops without a choice).
        #[arg(long = "production-fix", value_name = "NAME=ENV|none")]
        production_fixes: Vec<String>,
        /// Where to write the config (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Validate a config; report every problem; exit 1 on any.
    Check {
        /// The config file.
        file: PathBuf,
        /// Output format (json: one JSON object on stdout).
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
    },
    /// Write an environment into the config file from a stack's outputs (one of environments/environment.yaml,
    /// or any stack with outputs of the same names), keeping everything the stack doesn't decide.
    FromStack {
        /// The CloudFormation stack (name or id).
        #[arg(value_name = "STACK")]
        stack_name: String,
        /// The environment to write.
        #[arg(long = "env")]
        environment: String,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Write an environment's settings from the config file to its SSM parameter, where the Lambdas read them.
    Push {
        /// The environment.
        environment: String,
        /// Don't ask for confirmation on a production environment.
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        aws: AwsArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum EnvCommand {
    /// Create the environment stack (network, load balancer, launch template, web and worker groups,
    /// optional database, cache and alarms), or update it through a change set shown first; follow it;
    /// then write the environment into the config file from its outputs.
    Create {
        /// The environment, e.g. staging (the stack is stepdeploy-DEPLOYMENT-ENV).
        environment: String,
        /// A template parameter, e.g. Database=postgres or WebDesiredCapacity=2 (repeatable; the
        /// template lists them all). On an update, parameters not given keep their values.
        #[arg(long = "parameter", short = 'p', value_name = "KEY=VALUE")]
        parameters: Vec<String>,
        /// Mark a new environment production in the config (deploys ask for confirmation).
        #[arg(long)]
        production: bool,
        /// Apply an update's change set without asking.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Seconds between stack event polls.
        #[arg(long, default_value_t = 5)]
        poll_seconds: u64,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// The environment stack's status and outputs.
    Show {
        /// The environment.
        environment: String,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Delete the environment stack and everything in it (a production environment asks first;
    /// the database is kept as a final snapshot).
    Delete {
        /// The environment.
        environment: String,
        /// Don't ask for confirmation on a production environment.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Seconds between stack event polls.
        #[arg(long, default_value_t = 5)]
        poll_seconds: u64,
        #[command(flatten)]
        aws: AwsArgs,
    },
}

pub(crate) fn parse_approve(text: &str) -> Result<stepdeploy_local::Approve, String> {
    text.parse()
}
