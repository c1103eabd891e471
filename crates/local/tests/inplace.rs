//! End to end: statemachines/in-place-deploy.asl.json on the engine, the
//! steps in process, the simulated account on virtual time.

use std::sync::{Arc, Mutex};

use futures::executor::block_on;
use serde_json::{Value, json};
use stepdeploy_core::config::Config;
use stepdeploy_core::errors;
use stepdeploy_core::ports::{Parameters, TargetHealthReader};
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{IN_PLACE_DEPLOY, Summary, demo, run_with};
use stepdeploy_sim::demo::DemoFleet;
use stepdeploy_sim::{CommandScript, SimSettings};

mod common;
use common::settings;

/// Runs an in-place deploy; returns the summary and the lowest healthy count seen after any step.
async fn in_place(fleet: &DemoFleet, config: Arc<Config>, input: Value) -> (Summary, usize) {
    let lowest = Arc::new(Mutex::new(usize::MAX));
    let (watch, sim, group) = (lowest.clone(), fleet.sim.clone(), fleet.group.clone());
    let steps = Arc::new(move |_: &str, _: &Value| {
        let healthy = sim.healthy_in_group(&group).len();
        let mut low = watch.lock().unwrap();
        *low = (*low).min(healthy);
    });
    let summary = run_with(&fleet.sim, config, IN_PLACE_DEPLOY, input, &fleet.group, Arc::new(|_| {}), steps).await.1;
    let low = *lowest.lock().unwrap();
    (summary, low)
}

fn assert_released(fleet: &DemoFleet) {
    assert!(block_on(fleet.sim.get_parameter(&lock_parameter("demo", "demo"))).unwrap().is_none(), "lock released");
    assert!(fleet.sim.group_state(&fleet.group).unwrap().3.is_empty(), "processes resumed");
}

#[tokio::test]
async fn an_in_place_deploy_updates_every_instance_in_batches_above_the_floor() {
    for (n, min, batch) in [(5u32, 60, None), (4, 50, Some(1)), (10, 80, None), (2, 50, None)] {
        let (fleet, config) = demo(81, n, settings());
        let before = fleet.sim.live_in_group(&fleet.group);
        let mut input = json!({"environment": "demo", "revision": "9f8e7d6", "min_healthy_percent": min});
        if let Some(b) = batch {
            input["batch_size"] = json!(b);
        }
        let (summary, lowest) = in_place(&fleet, config, input).await;
        assert_eq!(summary.status, "SUCCEEDED", "N={n}: {summary:?}");
        let floor = (n as usize * min as usize).div_ceil(100);
        assert!(lowest >= floor, "N={n}: healthy fell to {lowest}, below the floor {floor}");
        let output = summary.output.unwrap();
        let mut updated: Vec<String> = serde_json::from_value(output["updated"].clone()).unwrap();
        updated.sort();
        let mut ids: Vec<String> = before.iter().map(|(id, _)| id.clone()).collect();
        ids.sort();
        assert_eq!(updated, ids, "N={n}: every instance updated");
        assert_eq!(fleet.sim.live_in_group(&fleet.group), before, "N={n}: the same instances, nothing launched or terminated");
        assert_eq!(fleet.sim.healthy_in_group(&fleet.group).len(), n as usize, "N={n}: all back and healthy");
        let batches = fleet.sim.commands_sent();
        assert!(batches.iter().all(|c| c == "/usr/local/bin/stepdeploy-deploy-web 9f8e7d6"), "{batches:?}");
        let largest = (n as usize) - floor;
        assert_eq!(
            batches.len(),
            (n as usize).div_ceil(largest.min(batch.unwrap_or(u32::MAX) as usize)),
            "N={n}: batches as large as the floor allows"
        );
        assert_released(&fleet);
    }
}

#[tokio::test]
async fn each_batch_leaves_the_target_group_before_its_command_and_rejoins_after() {
    let (fleet, config) = demo(82, 2, settings());
    let (summary, _) = in_place(&fleet, config, json!({"environment": "demo", "min_healthy_percent": 50})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let calls: Vec<String> = fleet
        .sim
        .calls()
        .into_iter()
        .map(|c| c.operation)
        .filter(|op| matches!(op.as_str(), "DeregisterTargets" | "SendCommand" | "RegisterTargets" | "SuspendProcesses" | "ResumeProcesses"))
        .collect();
    assert_eq!(
        calls,
        [
            "SuspendProcesses",
            "DeregisterTargets",
            "SendCommand",
            "RegisterTargets",
            "DeregisterTargets",
            "SendCommand",
            "RegisterTargets",
            "ResumeProcesses"
        ]
    );
}

#[tokio::test]
async fn a_failing_command_stops_the_rollout_and_names_the_instance_left_out() {
    let (fleet, config) = demo(83, 4, settings());
    let mut ids: Vec<String> = fleet.sim.live_in_group(&fleet.group).into_iter().map(|(id, _)| id).collect();
    ids.sort();
    let broken = ids[1].clone();
    fleet.sim.script_command(CommandScript {
        contains: "stepdeploy-deploy-web".into(),
        instance_id: Some(broken.clone()),
        exit_code: 1,
        stdout: "pip install".into(),
        stderr: "No space left on device".into(),
        duration_seconds: 20,
    });
    let (summary, lowest) = in_place(&fleet, config, json!({"environment": "demo", "min_healthy_percent": 50})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::COMMAND_FAILED), "{summary:?}");
    let cause = summary.cause.unwrap();
    assert!(cause.contains(&format!("failed on {broken}")) && cause.contains("No space left on device"), "{cause}");
    assert!(lowest >= 2);
    let registered: Vec<String> =
        block_on(fleet.sim.describe_target_health(&fleet.target_group_arn)).unwrap().into_iter().map(|t| t.instance_id).collect();
    assert!(!registered.contains(&broken), "the failed instance stays out for inspection");
    assert_eq!(registered.len(), 3, "its batch mate went back in: {registered:?}");
    assert_eq!(fleet.sim.commands_sent().len(), 1, "no further batch started");
    assert_released(&fleet);
}

#[tokio::test]
async fn an_in_place_deploy_without_room_under_the_floor_changes_nothing() {
    let (fleet, config) = demo(84, 3, settings());
    let before = fleet.sim.fingerprint();
    let (summary, _) = in_place(&fleet, config, json!({"environment": "demo"})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::INVALID_INPUT));
    assert!(summary.cause.unwrap().contains("min_healthy_percent: 100 leaves no instance of 3 free"), "the default floor is 100 %");
    assert_eq!(fleet.sim.fingerprint(), before);
}

#[tokio::test]
async fn a_floor_too_high_for_an_in_place_deploy_is_refused_saying_what_would_work() {
    // (instances, min_healthy_percent asked, what the message must offer): the highest
    // percentage p with ceil(n × p / 100) < n, worked out by hand.
    let cases = [
        (1, 50, "with one instance only 0 works, and the site is down while it updates"),
        (2, 60, "an in-place deploy of 2 instances needs it at most 50"),
        (3, 100, "an in-place deploy of 3 instances needs it at most 66"),
        (4, 80, "an in-place deploy of 4 instances needs it at most 75"),
    ];
    for (instances, asked, offer) in cases {
        let (fleet, config) = demo(84, instances, settings());
        let before = fleet.sim.fingerprint();
        let (summary, _) = in_place(&fleet, config, json!({"environment": "demo", "min_healthy_percent": asked})).await;
        assert_eq!(summary.error.as_deref(), Some(errors::INVALID_INPUT));
        let cause = summary.cause.unwrap_or_default();
        assert!(cause.contains(&format!("min_healthy_percent: {asked} leaves no instance of {instances} free")) && cause.contains(offer), "{cause}");
        assert_eq!(fleet.sim.fingerprint(), before);
    }
}

#[tokio::test]
async fn an_in_place_batch_larger_than_one_send_command_takes_is_sent_in_chunks() {
    // 120 instances at 50 %: batches of 60, more than SendCommand's 50 instance ids.
    let (fleet, config) = demo(85, 120, settings());
    let (summary, lowest) = in_place(&fleet, config, json!({"environment": "demo", "revision": "9f8e7d6", "min_healthy_percent": 50})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert!(lowest >= 60, "the floor held: {lowest}");
    let sent = fleet.sim.commands_as_sent();
    assert_eq!(sent.len(), 4, "two batches of 60, each as 50 + 10: {}", sent.len());
    assert_released(&fleet);
}

/// Instances registered in the demo's target group now, draining ones left out.
fn registered(fleet: &DemoFleet) -> std::collections::BTreeSet<String> {
    let targets = block_on(fleet.sim.describe_target_health(&fleet.target_group_arn)).unwrap();
    targets.into_iter().filter(|t| t.state != stepdeploy_core::model::TargetState::Draining).map(|t| t.instance_id).collect()
}

#[tokio::test]
async fn a_failure_between_deregistering_and_registering_puts_the_batch_back() {
    // SendCommand is refused (not retryable) after the batch left the target groups, and in
    // another run draining outlasts the health timeout: either way the batch goes back in.
    for case in ["refused", "drain-timeout"] {
        let slow_drain = SimSettings { deregistration_delay_seconds: 100_000, ..settings() };
        let (fleet, config) = demo(84, 4, if case == "refused" { settings() } else { slow_drain });
        let everyone: std::collections::BTreeSet<String> = fleet.sim.live_in_group(&fleet.group).into_iter().map(|(id, _)| id).collect();
        if case == "refused" {
            fleet.sim.inject_fault(stepdeploy_sim::Fault {
                operation: "SendCommand".into(),
                kind: stepdeploy_core::ports::ErrorKind::Invalid,
                code: "InvalidParameters".into(),
                remaining: 1,
                lost_response: false,
                skip: 0,
            });
        }
        let (summary, _) = in_place(&fleet, config, json!({"environment": "demo", "min_healthy_percent": 50})).await;
        assert_eq!(summary.status, "FAILED", "{case}: {summary:?}");
        fleet.sim.advance(120);
        assert_eq!(registered(&fleet), everyone, "{case}: every instance is back in the target group");
        assert_released(&fleet);
    }
}
