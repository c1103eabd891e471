//! Runs the real `statemachines/*.asl.json` locally: the ASL engine drives
//! the step handlers in-process against the simulated account, with one
//! virtual clock for both. This is `stepdeploy local` and the end-to-end tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde::Serialize;
use serde_json::{Value, json};
use stepdeploy_asl::invoke::{FunctionError, Handler, LambdaTasks, LocalFunctions};
use stepdeploy_asl::nested::StateMachineTasks;
use stepdeploy_asl::tokens::TaskTokens;
use stepdeploy_asl::{Clock, Definition, Engine, Execution, Status};
use stepdeploy_core::config::{Config, Environment, parameter_name};
use stepdeploy_core::fleet::DEPLOYMENT_TAG;
use stepdeploy_core::steps::{self, ConfigSource, DeployAccount, Deployment};
use stepdeploy_sim::Sim;
use stepdeploy_sim::demo::{DemoFleet, DemoSize};

pub mod checkpoints;
pub mod concurrent;
pub mod scenario;

pub use checkpoints::Approve;

/// `statemachines/serial-deploy.asl.json`, the file that goes to AWS.
pub const SERIAL_DEPLOY: &str = include_str!("../../../statemachines/serial-deploy.asl.json");
/// `statemachines/full-deploy.asl.json`.
pub const FULL_DEPLOY: &str = include_str!("../../../statemachines/full-deploy.asl.json");
/// `statemachines/deploy-worker.asl.json`.
pub const DEPLOY_WORKER: &str = include_str!("../../../statemachines/deploy-worker.asl.json");
/// `statemachines/maintenance.asl.json`.
pub const MAINTENANCE: &str = include_str!("../../../statemachines/maintenance.asl.json");
/// `statemachines/bake.asl.json`.
pub const BAKE: &str = include_str!("../../../statemachines/bake.asl.json");
/// `statemachines/in-place-deploy.asl.json`.
pub const IN_PLACE_DEPLOY: &str = include_str!("../../../statemachines/in-place-deploy.asl.json");
/// `statemachines/release.asl.json`.
pub const RELEASE: &str = include_str!("../../../statemachines/release.asl.json");
/// `statemachines/rebake.asl.json`.
pub const REBAKE: &str = include_str!("../../../statemachines/rebake.asl.json");
/// `statemachines/autoscaling-processes.asl.json`.
pub const AUTOSCALING_PROCESSES: &str = include_str!("../../../statemachines/autoscaling-processes.asl.json");

/// The state machine's name (as in its file name) for a known definition, for execution ids.
pub fn state_machine_name(definition: &str) -> &'static str {
    STATE_MACHINES.iter().find_map(|(name, known)| (*known == definition).then_some(*name)).unwrap_or("local")
}

/// Every state machine, by its file's name.
pub const STATE_MACHINES: &[(&str, &str)] = &[
    ("serial-deploy", SERIAL_DEPLOY),
    ("full-deploy", FULL_DEPLOY),
    ("deploy-worker", DEPLOY_WORKER),
    ("maintenance", MAINTENANCE),
    ("autoscaling-processes", AUTOSCALING_PROCESSES),
    ("bake", BAKE),
    ("in-place-deploy", IN_PLACE_DEPLOY),
    ("release", RELEASE),
    ("rebake", REBAKE),
];

/// A state machine's local ARN (what `${NameStateMachineArn}` becomes).
pub fn state_machine_arn(name: &str) -> String {
    format!("arn:aws:states:us-east-1:123456789012:stateMachine:{name}")
}

/// A state machine's `${...}` substitution name, which is also its stack
/// output key in template.yaml (`in-place-deploy` → `InPlaceDeployStateMachineArn`).
pub fn state_machine_arn_key(name: &str) -> String {
    format!("{}StateMachineArn", title_case(name))
}

fn title_case(kebab: &str) -> String {
    kebab
        .split(['-', '_'])
        .map(|word| {
            let mut word = word.to_string();
            if let Some(first) = word.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            word
        })
        .collect()
}

/// The Task invoker of local runs: the step functions, and nested
/// executions of every state machine.
pub fn local_tasks(clock: Arc<dyn Clock>, functions: LocalFunctions) -> Result<StateMachineTasks, stepdeploy_asl::DefinitionError> {
    let mut tasks = StateMachineTasks::new(clock, Arc::new(LambdaTasks::new(functions)));
    for (name, text) in STATE_MACHINES {
        tasks = tasks.with_machine(&state_machine_arn(name), Definition::parse(text, &substitutions())?);
    }
    Ok(tasks)
}

/// The sim's clock as the engine's: a Wait moves the whole account forward, then what happens
/// outside the execution meanwhile (EventBridge events, an operator's answer) happens.
pub struct SimClock {
    sim: Sim,
    after_advance: checkpoints::AfterAdvance,
}

#[async_trait]
impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.sim.now(), 0).unwrap_or_default()
    }

    async fn sleep(&self, duration: Duration) {
        self.sim.advance(duration.as_secs_f64().ceil() as i64);
        (self.after_advance)().await;
    }
}

/// Called after every reconcile step, for progress and invariant checks.
pub type Observer = Arc<dyn Fn(&Deployment) + Send + Sync>;

/// Called after every step that succeeded, with the step's name and the
/// workflow record it returned.
pub type StepObserver = Arc<dyn Fn(&str, &Value) + Send + Sync>;

/// The step Lambdas, in-process, by function name (the same dispatch the Lambdas use).
///
/// Each step's calls are attributed to it in the sim's call log (for the IAM test).
pub fn functions(sim: Sim, config: Arc<Config>, observer: StepObserver) -> LocalFunctions {
    sim_functions(sim, config, observer, ConfigFrom::Given)
}

/// Where the local step functions find the environment's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFrom {
    /// The config at hand.
    Given,
    /// Its SSM parameters, pushed into the sim first, as the Lambdas read them on AWS.
    Parameters,
}

fn sim_functions(sim: Sim, config: Arc<Config>, observer: StepObserver, from: ConfigFrom) -> LocalFunctions {
    let clock = sim.clone();
    let principal = sim.clone();
    // Attribution for the IAM test; and Lambda's own invocation errors, when injected.
    let hook: StepHook = Arc::new(move |step| match step {
        Some(step) => {
            principal.set_principal(Some(step));
            principal.take_lambda_fault(step)
        }
        None => {
            principal.set_principal(None);
            None
        }
    });
    if from == ConfigFrom::Parameters {
        for (name, env) in &config.environments {
            sim.put_parameter_directly(&parameter_name(&config.deployment, name), &env.to_json());
        }
    }
    functions_with(Arc::new(sim), Arc::new(move || clock.now()), config, observer, hook, from)
}

/// Told which step is about to run (`Some`) and that it has ended (`None`);
/// before a step it may answer with an error type Lambda reports instead of running it.
type StepHook = Arc<dyn Fn(Option<&str>) -> Option<String> + Send + Sync>;

/// The step Lambdas in-process against any account (the sim, or moto through
/// the AWS adapters), with `now` from the given clock.
pub fn functions_on(
    account: Arc<dyn DeployAccount>,
    now: Arc<dyn Fn() -> i64 + Send + Sync>,
    config: Arc<Config>,
    observer: StepObserver,
) -> LocalFunctions {
    functions_with(account, now, config, observer, Arc::new(|_| None), ConfigFrom::Given)
}

fn functions_with(
    account: Arc<dyn DeployAccount>,
    now: Arc<dyn Fn() -> i64 + Send + Sync>,
    config: Arc<Config>,
    observer: StepObserver,
    hook: StepHook,
    from: ConfigFrom,
) -> LocalFunctions {
    let mut functions = LocalFunctions::default();
    for name in steps::STEP_NAMES {
        let (account, now, config, observer, hook) = (account.clone(), now.clone(), config.clone(), observer.clone(), hook.clone());
        let handler: Handler = Arc::new(move |payload: Value| {
            let (account, now, config, observer, hook) = (account.clone(), now.clone(), config.clone(), observer.clone(), hook.clone());
            async move {
                let injected = hook(Some(name));
                // "after:<error>": the step runs (its calls take effect), then Lambda reports the error
                // (a timeout after the work was done), and Step Functions retries it with the same input.
                let after = injected.as_deref().and_then(|e| e.strip_prefix("after:")).map(str::to_string);
                if let (Some(error_type), None) = (&injected, &after) {
                    hook(None);
                    return Err(FunctionError::new(error_type.clone(), format!("Lambda reported {name}'s invocation failed (injected)")));
                }
                let source = match from {
                    ConfigFrom::Given => ConfigSource::Given(&config),
                    ConfigFrom::Parameters => ConfigSource::Parameters { deployment: &config.deployment },
                };
                let result = steps::handle(name, account.as_ref(), source, &payload, now()).await;
                hook(None);
                if let Some(error_type) = after {
                    return Err(FunctionError::new(error_type, format!("Lambda reported {name}'s invocation failed after it ran (injected)")));
                }
                if let Ok(record) = &result {
                    observer(name, record);
                }
                result.map_err(|e| FunctionError::new(e.name, e.message))
            }
            .boxed()
        });
        functions = functions.with(name, handler);
    }
    functions
}

/// The `${Name}FunctionArn` substitutions for local function names.
pub fn substitutions() -> HashMap<String, String> {
    let functions = steps::STEP_NAMES
        .iter()
        .map(|name| (format!("{}FunctionArn", title_case(name)), format!("arn:aws:lambda:us-east-1:123456789012:function:{name}")));
    let machines = STATE_MACHINES.iter().map(|(name, _)| (state_machine_arn_key(name), state_machine_arn(name)));
    // The nested-execution integration (template.yaml builds it with the stack's partition).
    let partition = std::iter::once(("StartExecutionSync".to_string(), "arn:aws:states:::states:startExecution.sync:2".to_string()));
    // The stack's SNS topic (the sim's demo account has it).
    let topic = std::iter::once(("NotificationTopicArn".to_string(), stepdeploy_sim::demo::DEMO_TOPIC_ARN.to_string()));
    functions.chain(machines).chain(partition).chain(topic).collect()
}

/// How often, at most, a local run looks at a pending task token: an alarm relayed to a pause or
/// a bake is taken within this many virtual seconds (on AWS, EventBridge delivers it in seconds).
pub const TOKEN_LOOK_SECONDS: f64 = 5.0;

/// The demo's bake: how long a deploy keeps watching the alarms after the last wave is healthy.
pub const DEMO_BAKE_SECONDS: u64 = 60;

/// The demo's checkpoint: the rollout pauses once this share of the group runs the new version.
pub const DEMO_CHECKPOINT_PERCENT: u32 = 50;

/// A built-in environment for the demo fleet.
pub fn demo_config(fleet: &DemoFleet) -> Config {
    let mut env = Environment {
        region: "us-east-1".into(),
        auto_scaling_group: fleet.group.clone(),
        load_balancer: Some("demo-alb".into()),
        target_group_arns: vec![fleet.target_group_arn.clone()],
        listener_arn: Some(fleet.listener_arn.clone()),
        launch_template: fleet.template.id.clone(),
        domains: vec!["demo.example.org".into()],
        ..Environment::default()
    };
    env.health.poll_interval_seconds = 15;
    env.health.warmup_seconds = 20;
    // Guarded: the rollout watches two alarms, and keeps watching them a minute after the last wave.
    env.alarms = stepdeploy_sim::demo::DEMO_ALARMS.map(String::from).to_vec();
    env.rollout.bake_seconds = DEMO_BAKE_SECONDS;
    // The old instances wait out the bake in Standby: an alarm then brings them back without a boot.
    env.rollout.instant_rollback = true;
    // And pauses at half the group for an operator's approval (`--approve`, at once by default).
    env.rollout.checkpoints = vec![DEMO_CHECKPOINT_PERCENT];
    Config { deployment: "demo".into(), environments: [("demo".to_string(), env)].into_iter().collect() }
}

/// A local run's result, the JSON `stepdeploy local --output json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// SUCCEEDED, FAILED or TIMED_OUT.
    pub status: &'static str,
    /// Error name on failure.
    pub error: Option<String>,
    /// Cause on failure.
    pub cause: Option<String>,
    /// The execution's output on success.
    pub output: Option<Value>,
    /// Live instances per AMI at the end, and how many are healthy.
    pub fleet: FleetSummary,
    /// State transitions.
    pub transitions: u64,
    /// AWS API calls by operation, during this run.
    pub api_calls: BTreeMap<String, usize>,
    /// Virtual seconds the run took.
    pub virtual_seconds: i64,
    /// The lowest healthy count seen after any step.
    pub min_healthy_observed: Option<u32>,
    /// The largest state input, output, task parameters or task result of the run, in bytes
    /// of JSON: AWS fails an execution whose payload passes 256 KiB
    /// (<https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html>).
    pub max_payload_bytes: usize,
    /// Events in the execution's history: AWS ends an execution at 25,000.
    pub history_events: usize,
}

/// Instances at the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct FleetSummary {
    /// Live instances per AMI.
    pub by_image: BTreeMap<String, usize>,
    /// Healthy instances.
    pub healthy: usize,
}

/// Runs `definition` with `input` on `sim`, observing every reconcile step.
pub async fn run(sim: &Sim, config: Arc<Config>, definition: &str, input: Value, group: &str, observer: Observer) -> (Execution, Summary) {
    run_with(sim, config, definition, input, group, observer, Arc::new(|_, _| {})).await
}

/// [`run`], also observing every step of any workflow.
pub async fn run_with(
    sim: &Sim,
    config: Arc<Config>,
    definition_text: &str,
    input: Value,
    group: &str,
    observer: Observer,
    step_observer: StepObserver,
) -> (Execution, Summary) {
    run_approving(sim, config, definition_text, input, group, observer, step_observer, Approve::default()).await
}

/// [`run_with`], checkpoints answered as `approve` says.
#[allow(clippy::too_many_arguments)]
pub async fn run_approving(
    sim: &Sim,
    config: Arc<Config>,
    definition_text: &str,
    input: Value,
    group: &str,
    observer: Observer,
    step_observer: StepObserver,
    approve: Approve,
) -> (Execution, Summary) {
    run_from(sim, config, definition_text, input, group, observer, step_observer, ConfigFrom::Given, approve).await
}

/// [`run`] with the steps reading the config from SSM as the Lambdas do
/// on AWS (the config is pushed into the sim's parameters first).
pub async fn run_as_deployed(sim: &Sim, config: Arc<Config>, definition: &str, input: Value, group: &str) -> (Execution, Summary) {
    run_from(sim, config, definition, input, group, Arc::new(|_| {}), Arc::new(|_, _| {}), ConfigFrom::Parameters, Approve::default()).await
}

#[allow(clippy::too_many_arguments)]
async fn run_from(
    sim: &Sim,
    config: Arc<Config>,
    definition_text: &str,
    input: Value,
    group: &str,
    observer: Observer,
    step_observer: StepObserver,
    from: ConfigFrom,
    approve: Approve,
) -> (Execution, Summary) {
    let (observe, min_healthy) = watching(sim, group, Some(observer), step_observer);
    let started = sim.now();
    let calls_before = sim.call_counts();
    let tokens = TaskTokens::new().looking_every(TOKEN_LOOK_SECONDS);
    checkpoints::wire_task_answers(sim, &tokens);
    let functions = sim_functions(sim.clone(), config.clone(), observe, from);
    let after_advance = checkpoints::after_advance(sim.clone(), functions.clone(), config, approve);
    let clock: Arc<dyn Clock> = Arc::new(SimClock { sim: sim.clone(), after_advance });
    let execution = match engine_for(clock, functions, &tokens, definition_text) {
        Ok((engine, definition)) => engine.run(&definition, input, &format!("local-{}", sim.now())).await,
        Err(e) => failed_to_start(e.to_string()),
    };
    let low = *min_healthy.lock().unwrap_or_else(|p| p.into_inner());
    let summary = summarize(sim, group, &execution, started, &calls_before, low);
    (execution, summary)
}

/// The lowest healthy count of `group`, sampled after every step of every workflow (in-place
/// deploys take instances out too), around the observers: `observer` sees each reconcile step's
/// deployment record, `step_observer` every step.
fn watching(sim: &Sim, group: &str, observer: Option<Observer>, step_observer: StepObserver) -> (StepObserver, Arc<Mutex<Option<u32>>>) {
    let min_healthy = Arc::new(Mutex::new(None::<u32>));
    let (watch, sim, group) = (min_healthy.clone(), sim.clone(), group.to_string());
    let observe: StepObserver = Arc::new(move |name: &str, record: &Value| {
        let healthy = sim.healthy_in_group(&group).len() as u32;
        {
            let mut low = watch.lock().unwrap_or_else(|p| p.into_inner());
            *low = Some(low.map_or(healthy, |l: u32| l.min(healthy)));
        }
        if let Some(observer) = observer.as_ref().filter(|_| name == "replace")
            && let Ok(deployment) = serde_json::from_value::<Deployment>(record.clone())
        {
            observer(&deployment);
        }
        step_observer(name, record);
    });
    (observe, min_healthy)
}

/// The engine that runs `definition_text` with `functions` on `clock`, answering its tasks'
/// tokens through `tokens`.
fn engine_for(
    clock: Arc<dyn Clock>,
    functions: LocalFunctions,
    tokens: &TaskTokens,
    definition_text: &str,
) -> Result<(Engine, Definition), stepdeploy_asl::DefinitionError> {
    let tasks = local_tasks(clock.clone(), functions)?.with_task_tokens(tokens.clone());
    let definition = Definition::parse(definition_text, &substitutions())?;
    let engine = Engine::new(clock, Arc::new(tasks)).with_name(state_machine_name(definition_text)).with_task_tokens(tokens.clone());
    Ok((engine, definition))
}

/// An execution that could not start: its definition didn't parse.
fn failed_to_start(cause: String) -> Execution {
    Execution {
        status: Status::Failed,
        output: None,
        error: Some("InvalidDefinition".into()),
        cause: Some(cause),
        transitions: 0,
        history: Vec::new(),
    }
}

/// What a run did: its outcome, the fleet at the end, and what it cost, from `started` and the
/// call counts then.
fn summarize(
    sim: &Sim,
    group: &str,
    execution: &Execution,
    started: i64,
    calls_before: &BTreeMap<String, usize>,
    min_healthy_observed: Option<u32>,
) -> Summary {
    let status = match execution.status {
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
        Status::TimedOut => "TIMED_OUT",
    };
    Summary {
        status,
        error: execution.error.clone(),
        cause: execution.cause.clone(),
        output: execution.output.clone(),
        fleet: FleetSummary { by_image: steps::fleet_by_image(&sim.live_in_group(group)), healthy: sim.healthy_in_group(group).len() },
        transitions: execution.transitions,
        api_calls: sim
            .call_counts()
            .into_iter()
            .map(|(op, n)| (op.clone(), n - calls_before.get(&op).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        virtual_seconds: sim.now() - started,
        min_healthy_observed,
        max_payload_bytes: execution.max_payload_bytes(),
        history_events: execution.history.len(),
    }
}

/// A demo fleet of `instances`, ready for a serial deploy of version 2.
pub fn demo(seed: u64, instances: u32, settings: stepdeploy_sim::SimSettings) -> (DemoFleet, Arc<Config>) {
    demo_sized(seed, DemoSize::of(instances), settings)
}

/// [`demo`] with the group's sizes given (a rehearsed config's `scaling`).
pub fn demo_sized(seed: u64, size: DemoSize, settings: stepdeploy_sim::SimSettings) -> (DemoFleet, Arc<Config>) {
    let fleet = DemoFleet::build(seed, size, settings);
    // Workers carry the deployment's tag, as stepdeploy's IAM policies require for SSM commands.
    let worker_tags = BTreeMap::from([("role".to_string(), "worker".to_string()), (DEPLOYMENT_TAG.to_string(), "demo".to_string())]);
    fleet.sim.create_worker(&fleet.old.image_id, worker_tags);
    let config = Arc::new(demo_config(&fleet));
    (fleet, config)
}

/// The execution input of a serial deploy of the demo's version 2.
pub fn demo_input() -> Value {
    json!({"environment": "demo", "launch_template_version": "2"})
}
