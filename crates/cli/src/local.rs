//! `stepdeploy local WORKFLOW`: the real state machine on the simulated account.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;
use stepdeploy_core::config::Config;
use stepdeploy_core::steps::Deployment;
use stepdeploy_local::{FULL_DEPLOY, SERIAL_DEPLOY, demo, demo_input, run};
use stepdeploy_sim::{CommandScript, Dist, ExternalEvent, Fault, SimSettings};

/// Options of `local`.
pub struct LocalArgs {
    /// `serial`.
    pub workflow: String,
    /// A config file instead of the built-in demo environment.
    pub config: Option<PathBuf>,
    /// The environment (default: `demo`).
    pub env: Option<String>,
    /// Demo fleet size.
    pub instances: u32,
    /// Faults to inject.
    pub faults: Vec<String>,
    /// Seed of the simulated account.
    pub seed: u64,
    /// Print one JSON object last.
    pub json: bool,
}

/// The faults `--fault` accepts.
pub const FAULTS: &[&str] = &["unhealthy-new", "migration-fails", "throttle", "external-scale-in", "instance-dies"];

/// Runs a workflow locally; exit 0 only on success.
pub async fn run_local(args: LocalArgs) -> Result<ExitCode> {
    let (definition, input) = match args.workflow.as_str() {
        "serial" => (SERIAL_DEPLOY, demo_input()),
        "full" => (FULL_DEPLOY, json!({"environment": "demo", "launch_template_version": "2", "run_migrations": true, "revision": "2222222"})),
        other => bail!("WORKFLOW: {other:?} is not available yet; expected serial or full (worker and maintenance come with their state machines)"),
    };
    if args.config.is_some() || args.env.as_deref().is_some_and(|e| e != "demo") {
        bail!("--config/--env: only the built-in demo environment runs locally so far (it builds its own simulated fleet)");
    }
    if !(1..=1000).contains(&args.instances) {
        bail!("--instances: {} is not in 1..=1000", args.instances);
    }
    let settings = SimSettings { boot_seconds: Dist::around(90.0, 0.2), health_seconds: Dist::around(20.0, 0.2), ..SimSettings::default() };
    let (fleet, config): (_, Arc<Config>) = demo(args.seed, args.instances, settings);
    for fault in &args.faults {
        match fault.as_str() {
            "unhealthy-new" => fleet.sim.make_image_unhealthy(&fleet.new.image_id),
            "migration-fails" => fleet.sim.script_command(CommandScript {
                contains: "migrate".into(),
                instance_id: None,
                exit_code: 1,
                stdout: "Applying votes.0042_add_index...".into(),
                stderr: "django.db.utils.OperationalError: could not obtain lock on relation \"votes_vote\"".into(),
                duration_seconds: 40,
            }),
            "throttle" => {
                for op in ["DescribeAutoScalingGroups", "SetDesiredCapacity", "TerminateInstanceInAutoScalingGroup"] {
                    fleet.sim.inject_fault(Fault::throttle(op, 2));
                }
            }
            "external-scale-in" => fleet.sim.schedule(fleet.sim.now() + 120, ExternalEvent::ScaleIn { group: fleet.group.clone(), count: 1 }),
            "instance-dies" => fleet.sim.schedule(fleet.sim.now() + 120, ExternalEvent::TerminateOne { group: fleet.group.clone() }),
            other => bail!("--fault: {other:?} is not a fault; expected one of {}", FAULTS.join(", ")),
        }
    }
    let start = fleet.sim.now();
    let sim = fleet.sim.clone();
    let group = fleet.group.clone();
    let total = args.instances;
    eprintln!("{} deploy of demo (launch template version 1 -> 2) on {total} simulated instance(s), seed {}", args.workflow, args.seed);
    let progress = Arc::new(move |d: &Deployment| {
        let Some(step) = &d.step else { return };
        let p = step.progress;
        let phase = if d.rolling_back { "rolling back" } else { "deploying" };
        eprintln!(
            "[{:>6}s] {phase}: {}/{total} on target ({} healthy), {} old ({} healthy); healthy {} (floor {}), live {} (ceiling {}); next: {}{}",
            sim.now() - start,
            p.new,
            p.new_healthy,
            p.old,
            p.old_healthy,
            p.healthy(),
            p.min_healthy,
            sim.live_in_group(&group).len(),
            p.max_total,
            step.next,
            step.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
        );
    });
    let (_, summary) = run(&fleet.sim, config, definition, input, &fleet.group, progress).await;
    let by_version = |image: &str| summary.fleet.by_image.get(image).copied().unwrap_or(0);
    eprintln!(
        "{} after {} virtual s: {} on version 2, {} on version 1, {} healthy; {} state transitions, {} AWS calls; lowest healthy count {}",
        summary.status,
        summary.virtual_seconds,
        by_version(&fleet.new.image_id),
        by_version(&fleet.old.image_id),
        summary.fleet.healthy,
        summary.transitions,
        summary.api_calls.values().sum::<usize>(),
        summary.min_healthy_observed.map_or("n/a".into(), |m| m.to_string())
    );
    if let (Some(error), Some(cause)) = (&summary.error, &summary.cause) {
        eprintln!("error: {error}\ncause: {cause}");
    }
    if args.json {
        let mut value = serde_json::to_value(&summary).context("cannot render the summary")?;
        value["fleet"]["version_1"] = json!(by_version(&fleet.old.image_id));
        value["fleet"]["version_2"] = json!(by_version(&fleet.new.image_id));
        println!("{value}");
    }
    Ok(if summary.status == "SUCCEEDED" { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
