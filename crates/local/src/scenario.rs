//! The demo's workflows and faults, as `stepdeploy local` runs them: each
//! workflow's state machine and input, the faults that apply to it, and what
//! a run needs set up first. The CLI and the tests share this table.

use std::sync::Arc;

use serde_json::{Value, json};
use stepdeploy_core::config::Config;
use stepdeploy_sim::demo::DemoFleet;
use stepdeploy_sim::{AlarmTrigger, CommandScript, ExternalEvent, Fault};

use crate::{BAKE, DEPLOY_WORKER, FULL_DEPLOY, IN_PLACE_DEPLOY, MAINTENANCE, REBAKE, RELEASE, SERIAL_DEPLOY, run};

/// A workflow or fault name that isn't one, or a set-up that failed; the message says which and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScenarioError(pub String);

/// The workflows `local` runs.
pub const WORKFLOWS: &[&str] = &["serial", "full", "worker", "maintenance-on", "maintenance-off", "bake", "release", "rebake", "in-place"];

/// The faults `--fault` accepts, and the workflows each applies to.
pub const FAULTS: &[(&str, &[&str])] = &[
    ("unhealthy-new", &["serial", "full"]),
    ("migration-fails", &["full", "worker"]),
    ("throttle", WORKFLOWS),
    ("external-scale-in", &["serial", "full"]),
    ("instance-dies", &["serial", "full"]),
    ("bake-script-fails", &["bake", "release", "rebake"]),
    ("in-place-command-fails", &["in-place"]),
    ("image-never-available", &["bake", "release", "rebake"]),
    ("ec2-lag", &["serial", "full", "bake", "release", "rebake"]),
    ("launch-fails", &["serial", "full"]),
    ("health-replacements", &["serial", "full"]),
    ("az-imbalance", &["serial", "full", "in-place"]),
    ("lost-responses", &["serial", "full", "worker", "in-place", "bake", "release", "rebake"]),
    ("long-output", &["full", "worker", "bake", "release", "rebake"]),
    ("instance-impaired", &["serial", "full"]),
    ("alarm-during-rollout", &["serial", "full"]),
    ("alarm-during-bake", &["serial", "full"]),
    ("alarm-at-start", &["serial", "full"]),
    ("alarm-at-checkpoint", &["serial", "full"]),
];

/// How long EC2 lags Auto Scaling under the `ec2-lag` fault: longer than a poll interval.
pub const EC2_LAG_SECONDS: i64 = 45;

/// The revision the demo's worker deploy and migrations are given.
const DEMO_REVISION: &str = "2222222";

/// A workflow's state machine and the demo's execution input for it.
pub fn definition_and_input(workflow: &str, environment: &str) -> Result<(&'static str, Value), ScenarioError> {
    Ok(match workflow {
        "serial" => (SERIAL_DEPLOY, json!({"environment": environment, "launch_template_version": "2"})),
        "full" => {
            (FULL_DEPLOY, json!({"environment": environment, "launch_template_version": "2", "run_migrations": true, "revision": DEMO_REVISION}))
        }
        "worker" => (DEPLOY_WORKER, json!({"environment": environment, "revision": DEMO_REVISION})),
        "maintenance-on" => (MAINTENANCE, json!({"environment": environment, "action": "on"})),
        "maintenance-off" => (MAINTENANCE, json!({"environment": environment, "action": "off"})),
        "bake" => (BAKE, json!({"environment": environment, "revision": DEMO_REVISION})),
        "release" => (RELEASE, json!({"environment": environment, "revision": DEMO_REVISION})),
        "rebake" => (REBAKE, json!({"environment": environment})),
        "in-place" => (IN_PLACE_DEPLOY, json!({"environment": environment, "revision": DEMO_REVISION, "min_healthy_percent": 50})),
        other => return Err(ScenarioError(format!("WORKFLOW: {other:?} is not a workflow; expected one of {}", WORKFLOWS.join(", ")))),
    })
}

/// Injects the fault `fault` into the demo fleet before a run of `workflow`.
pub fn inject(fault: &str, workflow: &str, fleet: &DemoFleet) -> Result<(), ScenarioError> {
    let Some((_, applies)) = FAULTS.iter().find(|(name, _)| *name == fault) else {
        return Err(ScenarioError(format!(
            "--fault: {fault:?} is not a fault; expected one of {}",
            FAULTS.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
        )));
    };
    if !applies.contains(&workflow) {
        return Err(ScenarioError(format!("--fault: {fault:?} does not apply to {workflow}; it applies to {}", applies.join(", "))));
    }
    match fault {
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
            let ops = [
                "DescribeAutoScalingGroups",
                "SetDesiredCapacity",
                "TerminateInstanceInAutoScalingGroup",
                "SendCommand",
                "CreateRule",
                "RunInstances",
                "CreateImage",
            ];
            for op in ops {
                fleet.sim.inject_fault(Fault::throttle(op, 2));
            }
        }
        "bake-script-fails" => fleet.sim.script_command(CommandScript {
            contains: "stepdeploy-bake".into(),
            instance_id: None,
            exit_code: 1,
            stdout: "pip install -r requirements.txt".into(),
            stderr: "ERROR: Could not find a version that satisfies the requirement Django==9.9".into(),
            duration_seconds: 120,
        }),
        "image-never-available" => fleet.sim.make_images_never_available(),
        "ec2-lag" => fleet.sim.set_ec2_listing_lag(EC2_LAG_SECONDS),
        "launch-fails" => fleet.sim.fail_launches_of(
            &fleet.new.image_id,
            &format!("The image id '[{}]' does not exist. Launching EC2 instance failed.", fleet.new.image_id),
        ),
        // Four of six instances in one zone, as after a zone was unavailable for a while.
        "az-imbalance" => {
            let mut ids: Vec<String> = fleet.sim.live_in_group(&fleet.group).into_iter().map(|(id, _)| id).collect();
            ids.sort();
            fleet.sim.crowd_into_zone(&fleet.group, "us-east-1a");
            for (id, zone) in ids.iter().rev().zip(["us-east-1b", "us-east-1c"]) {
                fleet.sim.move_to_zone(id, zone);
            }
        }
        // SuspendProcesses and SendCommand take effect, but the step never hears back (a timeout).
        "lost-responses" => {
            fleet.sim.inject_fault(Fault::lost_response("SuspendProcesses", 1));
            fleet.sim.inject_fault(Fault::lost_response("SendCommand", 1));
        }
        // A failing migration (and worker deploy, and bake script) that prints 1 MB before its traceback.
        "long-output" => {
            let noise = "Applying votes.0042_add_index... OK\n".repeat(1_000_000 / 36);
            for contains in ["migrate", "stepdeploy-deploy-worker", "stepdeploy-bake"] {
                fleet.sim.script_command(CommandScript {
                    contains: contains.into(),
                    instance_id: None,
                    exit_code: 1,
                    stdout: format!("{noise}Traceback (most recent call last):\n  django.db.utils.OperationalError: deadlock detected\n"),
                    stderr: String::new(),
                    duration_seconds: 60,
                });
            }
        }
        "health-replacements" => {
            fleet.sim.use_elb_health_checks(&fleet.group);
            fleet.sim.make_image_unhealthy(&fleet.new.image_id);
        }
        "in-place-command-fails" => {
            let mut ids: Vec<String> = fleet.sim.live_in_group(&fleet.group).into_iter().map(|(id, _)| id).collect();
            ids.sort();
            fleet.sim.script_command(CommandScript {
                contains: "stepdeploy-deploy-web".into(),
                instance_id: ids.last().cloned(),
                exit_code: 1,
                stdout: "pip install -r requirements.txt".into(),
                stderr: "OSError: [Errno 28] No space left on device".into(),
                duration_seconds: 30,
            });
        }
        // The new version's errors set off the 5xx alarm: as soon as one new instance serves,
        // once every instance is new (during the bake), or before the deploy starts at all.
        // (Every alarm on the sim: the demo's, or those of the config `local --config` rehearses.)
        "alarm-during-rollout" | "alarm-during-bake" => {
            for alarm in fleet.sim.alarm_names() {
                fleet.sim.fire_alarm_when(AlarmTrigger {
                    alarm,
                    image_id: fleet.new.image_id.clone(),
                    serving_at_least: (fault == "alarm-during-rollout").then_some(1),
                    reason: "Threshold Crossed: 1 out of the last 1 datapoints [37.0 (30/11/26 10:03:00)] was greater than the threshold (5.0)."
                        .into(),
                });
            }
        }
        // While the rollout waits at its checkpoint: EventBridge carries the change to the pause.
        "alarm-at-checkpoint" => {
            for alarm in fleet.sim.alarm_names() {
                fleet
                    .sim
                    .fire_alarm_when_paused(&alarm, "Threshold Crossed: 1 out of the last 1 datapoints [21.0] was greater than the threshold (5.0).");
            }
        }
        "alarm-at-start" => {
            for alarm in fleet.sim.alarm_names() {
                fleet.sim.set_alarm_state(
                    &alarm,
                    "ALARM",
                    "Threshold Crossed: 1 out of the last 1 datapoints [2.4] was greater than the threshold (1.0).",
                );
            }
        }
        // An instance fails its EC2 status checks mid-deploy: Auto Scaling marks it Unhealthy and replaces it.
        "instance-impaired" => fleet.sim.schedule(fleet.sim.now() + 120, ExternalEvent::ImpairOne { group: fleet.group.clone() }),
        "external-scale-in" => fleet.sim.schedule(fleet.sim.now() + 120, ExternalEvent::ScaleIn { group: fleet.group.clone(), count: 1 }),
        _ => fleet.sim.schedule(fleet.sim.now() + 120, ExternalEvent::TerminateOne { group: fleet.group.clone() }),
    }
    Ok(())
}

/// Sets up what `workflow` needs before it runs: `maintenance-off` needs a
/// page to take down, so one is put up first. Returns whether it did anything.
pub async fn set_up(workflow: &str, fleet: &DemoFleet, config: Arc<Config>, environment: &str) -> Result<bool, ScenarioError> {
    if workflow != "maintenance-off" {
        return Ok(false);
    }
    let input = json!({"environment": environment, "action": "on"});
    let (execution, _) = run(&fleet.sim, config, MAINTENANCE, input, &fleet.group, Arc::new(|_| {})).await;
    if execution.error.is_some() {
        return Err(ScenarioError(format!("could not put the page up before taking it down: {:?} {:?}", execution.error, execution.cause)));
    }
    Ok(true)
}
