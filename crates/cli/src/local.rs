//! `stepdeploy local WORKFLOW`: the real state machine on the simulated account.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::timeline::{self, Marker, Sample};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use stepdeploy_core::config::Config;
use stepdeploy_core::ports::{ListenerRules, RuleAction};
use stepdeploy_core::steps::Deployment;
use stepdeploy_local::concurrent::{Run, run_together};
use stepdeploy_local::{Approve, StepObserver, demo_sized, run_approving, scenario};
use stepdeploy_sim::demo::{DemoFleet, DemoSize};
use stepdeploy_sim::{Dist, Sim, SimSettings};

/// Options of `local`.
pub struct LocalArgs {
    /// One of [`scenario::WORKFLOWS`].
    pub workflow: String,
    /// A config file whose environment settings (policy, timeouts, page, commands) replace the demo's.
    pub config: Option<PathBuf>,
    /// The environment (default: `demo`, or the config's only one).
    pub env: Option<String>,
    /// Demo fleet size (default: the config's `scaling.desired_capacity`, or 6).
    pub instances: Option<u32>,
    /// Faults to inject.
    pub faults: Vec<String>,
    /// Seed of the simulated account.
    pub seed: u64,
    /// Print one JSON object last.
    pub json: bool,
    /// Draw the run's timeline into this SVG file.
    pub timeline: Option<PathBuf>,
    /// How checkpoints are answered.
    pub approve: Approve,
    /// A second serial deploy (of this version) started at the same moment, queued behind the first.
    pub queued_deploy: Option<String>,
}

/// The config file `--config` names, and the environment of it to rehearse.
fn read_config(args: &LocalArgs) -> Result<Option<(Config, String)>> {
    let Some(path) = &args.config else {
        if let Some(env) = args.env.as_deref().filter(|e| *e != "demo") {
            bail!("--env: {env:?} is not the built-in demo environment; pass --config FILE to rehearse one of yours");
        }
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("--config: cannot read {}", path.display()))?;
    let config = Config::from_yaml_str_for_rehearsal(&text)
        .map_err(|problems| anyhow::anyhow!("--config: {} is not valid (see `stepdeploy config check`):\n{problems}", path.display()))?;
    let name = match &args.env {
        Some(name) => name.clone(),
        None if config.environments.len() == 1 => config.environments.keys().next().cloned().unwrap_or_default(),
        None => bail!("--env: required, the config has {} environments: {}", config.environments.len(), names(&config)),
    };
    if config.environment(&name).is_err() {
        bail!("--env: {name:?} is not in {}; expected one of {}", path.display(), names(&config));
    }
    Ok(Some((config, name)))
}

/// The simulated group's size: `--instances`, else the config's `scaling` sizes, else 6.
fn fleet_size(args: &LocalArgs, given: Option<&(Config, String)>) -> Result<DemoSize> {
    let (size, field) = match (args.instances, given) {
        (Some(n), _) => (DemoSize::of(n), "--instances".to_string()),
        (None, Some((config, name))) => {
            let scaling = &config.environments[name].scaling;
            let size = |n: i64| u32::try_from(n).unwrap_or(0);
            let (desired, min, max) = (size(scaling.desired_capacity), size(scaling.min_size), size(scaling.max_size));
            (DemoSize { desired, min, max: max.max(desired) }, format!("environments.{name}.scaling.desired_capacity (or --instances)"))
        }
        (None, None) => (DemoSize::of(stepdeploy_sim::demo::DEMO_INSTANCES), "--instances".to_string()),
    };
    if !(1..=1000).contains(&size.desired) {
        bail!("{field}: {} is not in 1..=1000 for a local run", size.desired);
    }
    Ok(size)
}

/// The config to run with: the demo's, or the given file's environment settings on the demo's
/// simulated resources (the sim can't have your ARNs, and a rehearsal doesn't need them).
fn local_config(given: Option<(Config, String)>, fleet: &DemoFleet, demo_config: Arc<Config>) -> (Arc<Config>, String) {
    let Some((config, name)) = given else {
        return (demo_config, "demo".into());
    };
    let demo_env = &demo_config.environments["demo"];
    let mut env = config.environments[&name].clone();
    env.region = demo_env.region.clone();
    env.auto_scaling_group = demo_env.auto_scaling_group.clone();
    env.load_balancer = demo_env.load_balancer.clone();
    env.target_group_arns = demo_env.target_group_arns.clone();
    env.listener_arn = demo_env.listener_arn.clone();
    env.launch_template = demo_env.launch_template.clone();
    // The config's alarms exist on the sim, OK until an alarm fault sets them off.
    for alarm in &env.alarms {
        fleet.sim.put_alarm(alarm);
    }
    let worker_tags: BTreeMap<String, String> = env.workers.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if !worker_tags.is_empty() {
        fleet.sim.create_worker(&fleet.old.image_id, worker_tags);
    }
    (Arc::new(Config { deployment: config.deployment.clone(), environments: [(name.clone(), env)].into_iter().collect() }), name)
}

fn names(config: &Config) -> String {
    config.environments.keys().cloned().collect::<Vec<_>>().join(", ")
}

fn page_is_up(sim: &Sim, listener: &str) -> bool {
    futures::executor::block_on(sim.describe_rules(listener))
        .map(|rules| rules.iter().any(|r| matches!(&r.spec.action, RuleAction::FixedResponse(f) if f.status_code == 503)))
        .unwrap_or(false)
}

/// Progress of the steps that are not reconcile steps: commands, the page, the lock.
fn step_progress(sim: Sim, start: i64, approve: Approve) -> StepObserver {
    Arc::new(move |step: &str, record: &Value| {
        let at = sim.now() - start;
        let line = match step {
            "prepare" if record.get("revision_source").is_some() => Some(format!(
                "plan: bake {} (from the {}), then deploy: {}",
                record["revision"].as_str().unwrap_or("?"),
                record["revision_source"].as_str().unwrap_or("?"),
                record["deploy"].as_str().unwrap_or("?")
            )),
            "prepare" => Some(format!("lock taken by {}", record["execution_id"].as_str().unwrap_or("?"))),
            "command" => {
                let command = &record["command"];
                match command["next"].as_str() {
                    Some("done") => Some(format!("{} finished on {}", command["name"].as_str().unwrap_or("?"), list(&command["instance_ids"]))),
                    _ => Some(format!("{} running on {}", command["name"].as_str().unwrap_or("?"), list(&command["instance_ids"]))),
                }
            }
            "maintenance" if record["maintenance_on"] == true => Some("maintenance page up".into()),
            "maintenance" if record["hold_maintenance"] == true => Some("maintenance page held (migrations failed)".into()),
            "maintenance" => Some("maintenance page down".into()),
            "rollback" => Some("rolling back to the original version".into()),
            "pause" if record["bake"] == true => Some(format!(
                "BAKING for {} s (token in the lock): an alarm rolls it back at once; stop now: stepdeploy reject {} --reason TEXT",
                record["until"].as_i64().unwrap_or(0) - record["at"].as_i64().unwrap_or(0),
                record["environment"].as_str().unwrap_or("ENV"),
            )),
            "pause" => Some(format!(
                "PAUSED at the {} % checkpoint (token in the lock); go on: stepdeploy approve {env}; stop: stepdeploy reject {env} --reason TEXT (here: --approve {})",
                record["percent"],
                approve,
                env = record["environment"].as_str().unwrap_or("ENV"),
            )),
            "bake" => Some(match (record["phase"].as_str(), record["failed"].as_bool()) {
                (_, Some(true)) => format!("cleaned up: builder {} terminated, no image left", record["builder"].as_str().unwrap_or("-")),
                (Some("online"), _) if record["next"] == "wait" && record["command_id"].is_null() => {
                    format!(
                        "builder {} launched from {}; waiting for SSM",
                        record["builder"].as_str().unwrap_or("?"),
                        record["source_image"].as_str().unwrap_or("?")
                    )
                }
                (Some("script"), _) => format!("bake script running on {}", record["builder"].as_str().unwrap_or("?")),
                (Some("image"), _) => format!("image {} pending", record["image_id"].as_str().unwrap_or("?")),
                (Some("baked"), _) if record["builder_terminated"] == true => {
                    format!("builder {} terminated", record["builder"].as_str().unwrap_or("?"))
                }
                (Some("baked"), _) => format!("image {} available", record["image_id"].as_str().unwrap_or("?")),
                _ => return,
            }),
            "publish" => Some(format!("launch template version {} published", record["launch_template_version"])),
            "prune" => Some(format!("pruned {} old image(s)", record["pruned"].as_array().map_or(0, Vec::len))),
            "inplace" => Some(match record["phase"].as_str() {
                Some("draining") => format!("{} left the target groups; draining", list(&record["batch"])),
                Some("command") => format!("deploy command running on {}", list(&record["batch"])),
                Some("rejoining") => format!("{} rejoined; waiting until healthy", list(&record["batch"])),
                _ if record["next"] == "done" => format!("all {} instance(s) updated", record["updated"].as_array().map_or(0, Vec::len)),
                _ => format!(
                    "{} updated, {} to go; healthy {} (floor {})",
                    record["updated"].as_array().map_or(0, Vec::len),
                    record["todo"].as_array().map_or(0, Vec::len),
                    record["healthy"],
                    record["min_healthy"]
                ),
            }),
            "finish" => Some("lock released".into()),
            _ => None,
        };
        if let Some(line) = line {
            eprintln!("{} {line}", crate::stepline::stamp(at));
        }
    })
}

fn list(ids: &Value) -> String {
    ids.as_array().map(|ids| ids.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()
}

/// The queued second deploy's input: a serial deploy of `version` that waits up to an hour for the lock.
fn queued_deploy(workflow: &str, environment: &str, version: &str) -> Result<Value> {
    if !matches!(workflow, "serial" | "full") {
        bail!("--queued-deploy: {workflow} takes no lock queue here; expected the serial or full workflow");
    }
    if !matches!(version, "1" | "2") {
        bail!("--queued-deploy: {version:?} is not a version of the simulated launch template; expected 1 or 2");
    }
    Ok(json!({"environment": environment, "launch_template_version": version, "lock_wait_seconds": 3600}))
}

/// Prints the queued deploy's progress: each kind of step the first time it runs.
fn queued_progress(sim: Sim, start: i64, version: String) -> StepObserver {
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    Arc::new(move |step: &str, _: &Value| {
        if seen.lock().unwrap_or_else(|p| p.into_inner()).insert(step.to_string()) {
            let what = match step {
                "prepare" => "took the lock, after waiting in the queue",
                "replace" => "is replacing instances",
                "pause" => "paused at its checkpoint (answered as --approve says)",
                "finish" => "released the lock",
                other => other,
            };
            eprintln!("{} the queued deploy of version {version} {what}", crate::stepline::stamp(sim.now() - start));
        }
    })
}

/// Runs a workflow locally; exit 0 only on success.
pub async fn run_local(args: LocalArgs) -> Result<ExitCode> {
    scenario::definition_and_input(&args.workflow, "demo")?;
    if let Some(version) = &args.queued_deploy {
        queued_deploy(&args.workflow, "demo", version)?; // refused before anything runs
    }
    let given = read_config(&args)?;
    let size = fleet_size(&args, given.as_ref())?;
    let settings = SimSettings { boot_seconds: Dist::around(90.0, 0.2), health_seconds: Dist::around(20.0, 0.2), ..SimSettings::default() };
    let (fleet, demo_config) = demo_sized(args.seed, size, settings);
    let (config, environment) = local_config(given, &fleet, demo_config);
    let (definition, input) = scenario::definition_and_input(&args.workflow, &environment)?;
    for fault in &args.faults {
        if fault.starts_with("alarm-") && config.environments[&environment].alarms.is_empty() {
            bail!("--fault: {fault:?} sets off the environment's alarms, and {environment} lists none (alarms: in its config)");
        }
        scenario::inject(fault, &args.workflow, &fleet)?;
    }
    let sim = fleet.sim.clone();
    if scenario::set_up(&args.workflow, &fleet, config.clone(), &environment).await? {
        eprintln!("(the maintenance page was put up first, so that there is one to take down)");
    }
    let start = sim.now();
    let total = size.desired;
    let change = match args.workflow.as_str() {
        "serial" | "full" => ", launch template version 1 -> 2",
        "release" | "rebake" => ", bake version 3, then a serial deploy of it",
        _ => "",
    };
    eprintln!("{} on {environment} ({total} simulated web instance(s){change}, seed {})", args.workflow, args.seed);
    let sim_for_progress = sim.clone();
    // A line only when something in it changed: a minute of waiting on a boot is one line, not four.
    let last_line = std::sync::Mutex::new(String::new());
    let samples: Arc<std::sync::Mutex<Vec<Sample>>> = Arc::default();
    let markers: Arc<std::sync::Mutex<Vec<Marker>>> = Arc::default();
    let (samples_seen, markers_seen) = (samples.clone(), markers.clone());
    let progress = Arc::new(move |d: &Deployment| {
        let Some(step) = &d.step else { return };
        let p = step.progress;
        let at = sim_for_progress.now() - start;
        // The chart's old and new are the deploy's, whichever way the rollout runs.
        let (old_healthy, new_healthy) = if d.rolling_back { (p.new_healthy, p.old_healthy) } else { (p.old_healthy, p.new_healthy) };
        samples_seen.lock().unwrap_or_else(|p| p.into_inner()).push(Sample {
            at,
            old_healthy,
            new_healthy,
            live: p.new + p.old + p.unknown,
            floor: p.min_healthy,
            ceiling: p.max_total,
        });
        let mut marks = markers_seen.lock().unwrap_or_else(|p| p.into_inner());
        if d.rolling_back && !marks.iter().any(|m| m.label == "rollback") {
            marks.push(Marker { at, label: "rollback".into() });
        }
        if step.bake_remaining_seconds.is_some() && !d.rolling_back && !marks.iter().any(|m| m.label == "bake") {
            marks.push(Marker { at, label: "bake".into() });
        }
        drop(marks);
        // The line `follow` prints on AWS, from the same record.
        let record = serde_json::to_value(d).unwrap_or_default();
        let Some(line) = crate::stepline::Rollout::from_payload(&record, sim_for_progress.now()).map(|r| r.summary()) else { return };
        let mut last = last_line.lock().unwrap_or_else(|p| p.into_inner());
        if *last != line {
            eprintln!("{}   {line}", crate::stepline::stamp(sim_for_progress.now() - start));
            *last = line;
        }
    });
    let print_step = step_progress(sim.clone(), start, args.approve);
    let (sim_for_steps, markers_of_steps) = (sim.clone(), markers.clone());
    let steps: StepObserver = Arc::new(move |step: &str, record: &Value| {
        if step == "maintenance" {
            let label = if record["maintenance_on"] == true { "page up" } else { "page down" };
            markers_of_steps.lock().unwrap_or_else(|p| p.into_inner()).push(Marker { at: sim_for_steps.now() - start, label: label.into() });
        }
        print_step(step, record);
    });
    let summary = match &args.queued_deploy {
        None => run_approving(&sim, config, definition, input, &fleet.group, progress, steps, args.approve).await.1,
        Some(version) => {
            let queued = queued_deploy(&args.workflow, &environment, version)?;
            let print_queued = queued_progress(sim.clone(), start, version.clone());
            eprintln!("{} a serial deploy of version {version} started too: it waits in the lock queue", crate::stepline::stamp(0));
            let runs = vec![
                Run { definition, input, steps, observer: Some(progress) },
                Run { definition: stepdeploy_local::SERIAL_DEPLOY, input: queued, steps: print_queued, observer: None },
            ];
            let mut done = run_together(&sim, config, runs, &fleet.group, args.approve).await.into_iter().map(|(_, summary)| summary);
            let (first, second) = (done.next(), done.next());
            if let Some(second) = &second {
                let error = second.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
                eprintln!("{} the queued deploy of version {version} ended {}{error}", crate::stepline::stamp(sim.now() - start), second.status);
            }
            first.context("the first deploy left no summary")?
        }
    };
    if let Some(path) = &args.timeline {
        let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let markers = markers.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if samples.is_empty() {
            eprintln!("--timeline: {} has no reconcile steps to chart; nothing written", args.workflow);
        } else {
            let title = format!("{} on {environment}: {total} instance(s), seed {}", args.workflow, args.seed);
            std::fs::write(path, timeline::draw(&title, &samples, &markers)?)
                .with_context(|| format!("--timeline: cannot write {}", path.display()))?;
            eprintln!("timeline written to {}", path.display());
        }
    }
    let by_version = |image: &str| summary.fleet.by_image.get(image).copied().unwrap_or(0);
    let page = page_is_up(&sim, &fleet.listener_arn);
    let label = |image: &str| match image {
        i if i == fleet.old.image_id => "version 1".to_string(),
        i if i == fleet.new.image_id => "version 2".to_string(),
        other => other.to_string(),
    };
    let instances = summary.fleet.by_image.iter().map(|(image, n)| format!("{n} on {}", label(image))).collect::<Vec<_>>().join(", ");
    eprintln!(
        "{}{} after {} virtual s: {}, {} healthy; maintenance page {}; {} state transitions, {} AWS calls{}",
        summary.status,
        if args.queued_deploy.is_some() { " (the first deploy; the fleet after both)" } else { "" },
        summary.virtual_seconds,
        if instances.is_empty() { "no instance".to_string() } else { instances },
        summary.fleet.healthy,
        if page { "up" } else { "down" },
        summary.transitions,
        summary.api_calls.values().sum::<usize>(),
        summary.min_healthy_observed.map(|m| format!("; lowest healthy count {m}")).unwrap_or_default()
    );
    eprintln!(
        "largest state payload {} bytes (AWS's limit: 262,144); {} history events (AWS's limit: 25,000)",
        summary.max_payload_bytes, summary.history_events
    );
    if let (Some(error), Some(cause)) = (&summary.error, &summary.cause) {
        // A Lambda step's cause is its error document: show the message, as `follow` does.
        eprintln!("error: {error}\ncause: {}", crate::progress::readable_cause(cause));
    }
    if args.json {
        let mut value = serde_json::to_value(&summary).context("cannot render the summary")?;
        value["workflow"] = json!(args.workflow);
        value["fleet"]["version_1"] = json!(by_version(&fleet.old.image_id));
        value["fleet"]["version_2"] = json!(by_version(&fleet.new.image_id));
        value["maintenance_page"] = json!(page);
        if let Some(output) = &summary.output {
            for key in ["image_id", "launch_template_version"] {
                if let Some(v) = output.get(key) {
                    value[key] = v.clone();
                }
            }
        }
        println!("{value}");
    }
    Ok(if summary.status == "SUCCEEDED" { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
