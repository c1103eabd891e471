//! Instant rollback (#16), end to end on the sim: with `rollout.instant_rollback` the replaced
//! instances wait out the bake in Standby (running, out of the target groups); an alarm brings
//! them back with no launch, and a clean bake terminates them at its end.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use stepdeploy_core::errors;
use stepdeploy_core::ports::ErrorKind;
use stepdeploy_local::{SERIAL_DEPLOY, Summary, demo, demo_input, run, scenario};
use stepdeploy_sim::Fault;
use stepdeploy_sim::demo::DemoFleet;

mod common;
use common::{assert_clean, message, settings};

const INSTANCES: u32 = 6;

/// A serial deploy of the demo, with the most instances seen kept in Standby at once.
async fn deploy_watching_standby(fleet: &DemoFleet, config: Arc<stepdeploy_core::config::Config>) -> (Summary, u32) {
    let most_kept = Arc::new(Mutex::new(0u32));
    let seen = most_kept.clone();
    let observer = Arc::new(move |deployment: &stepdeploy_core::steps::Deployment| {
        if let Some(step) = &deployment.step {
            let mut most = seen.lock().unwrap_or_else(|p| p.into_inner());
            *most = (*most).max(step.progress.kept_in_standby);
        }
    });
    let summary = run(&fleet.sim, config, SERIAL_DEPLOY, demo_input(), &fleet.group, observer).await.1;
    let most = *most_kept.lock().unwrap_or_else(|p| p.into_inner());
    (summary, most)
}

fn live_ids(fleet: &DemoFleet) -> BTreeSet<String> {
    fleet.sim.live_in_group(&fleet.group).into_iter().map(|(id, _)| id).collect()
}

#[tokio::test]
async fn an_alarm_during_the_bake_brings_the_old_instances_back_without_a_launch() {
    let (fleet, config) = demo(21, INSTANCES, settings());
    assert!(config.environments["demo"].rollout.instant_rollback, "the demo keeps old instances in Standby");
    let originals = live_ids(&fleet);
    let sizes_before = fleet.sim.group_state(&fleet.group).map(|g| (g.0, g.1, g.2));
    scenario::inject("alarm-during-bake", "serial", &fleet).unwrap();
    let (summary, most_kept) = deploy_watching_standby(&fleet, config).await;
    assert_eq!((summary.status, summary.error.as_deref()), ("FAILED", Some(errors::ALARM_FIRED)), "{summary:?}");
    assert!(message(&summary).contains("during the bake"), "{:?}", summary.cause);
    assert_eq!(most_kept, INSTANCES, "every old instance waited in Standby");
    // The very instances that served before serve again: nothing of the old version was launched.
    assert_eq!(live_ids(&fleet), originals);
    assert_eq!(fleet.sim.launched_in_group(&fleet.group).len() as u32, 2 * INSTANCES, "the originals and the rollout's own, no more");
    assert_eq!(summary.fleet.by_image.get(&fleet.old.image_id), Some(&(INSTANCES as usize)));
    assert_eq!(summary.fleet.healthy, INSTANCES as usize);
    assert!(summary.min_healthy_observed.unwrap_or(0) >= INSTANCES, "the floor held: {:?}", summary.min_healthy_observed);
    assert!(fleet.sim.standby_in_group(&fleet.group).is_empty());
    let calls = |op: &str| summary.api_calls.get(op).copied().unwrap_or(0);
    assert!(calls("EnterStandby") >= 1 && calls("ExitStandby") >= 1, "{:?}", summary.api_calls);
    assert_eq!(fleet.sim.group_state(&fleet.group).map(|g| (g.0, g.1, g.2)), sizes_before, "min, max and desired as they were");
    assert_clean(&fleet);
}

#[tokio::test]
async fn a_clean_bake_terminates_the_old_instances_kept_in_standby_at_its_end() {
    let (fleet, config) = demo(22, INSTANCES, settings());
    let originals = live_ids(&fleet);
    let (summary, most_kept) = deploy_watching_standby(&fleet, config).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(most_kept, INSTANCES, "every old instance waited out the bake in Standby");
    assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&(INSTANCES as usize)));
    assert!(fleet.sim.standby_in_group(&fleet.group).is_empty(), "none left in Standby");
    let ended: BTreeSet<String> = fleet.sim.ended_in_group(&fleet.group).into_iter().collect();
    assert!(originals.is_subset(&ended), "every original terminated: {:?}", originals.difference(&ended).collect::<Vec<_>>());
    assert_eq!(fleet.sim.group_state(&fleet.group).map(|g| g.2), Some(INSTANCES), "desired capacity back at the group's size");
    assert_clean(&fleet);
}

#[tokio::test]
async fn an_exit_standby_that_fails_once_is_tried_again_and_the_rollback_completes() {
    let (fleet, config) = demo(23, INSTANCES, settings());
    let originals = live_ids(&fleet);
    scenario::inject("alarm-during-bake", "serial", &fleet).unwrap();
    // Refused once for good reason (not retryable): the rollback records it and plans again.
    fleet.sim.inject_fault(Fault {
        operation: "ExitStandby".into(),
        kind: ErrorKind::Invalid,
        code: "ValidationError".into(),
        remaining: 1,
        lost_response: false,
        skip: 0,
    });
    let (summary, _) = deploy_watching_standby(&fleet, config).await;
    assert_eq!(summary.error.as_deref(), Some(errors::ALARM_FIRED), "{summary:?}");
    assert_eq!(live_ids(&fleet), originals);
    assert_eq!(summary.api_calls.get("ExitStandby").copied(), Some(2), "tried again: {:?}", summary.api_calls);
    assert!(summary.min_healthy_observed.unwrap_or(0) >= INSTANCES);
    assert_clean(&fleet);
}

#[tokio::test]
async fn an_alarm_while_the_bake_waits_reaches_it_through_the_relay_within_seconds() {
    use stepdeploy_local::TOKEN_LOOK_SECONDS;
    use stepdeploy_sim::ExternalEvent;
    let (fleet, config) = demo(24, INSTANCES, settings());
    // Once the bake's wait begins, an alarm fires 37 s into it (between any two polls there were).
    let (sim, fired, rollback) = (fleet.sim.clone(), Arc::new(Mutex::new(None::<i64>)), Arc::new(Mutex::new(None::<i64>)));
    let (fired_seen, rollback_seen) = (fired.clone(), rollback.clone());
    let observer = Arc::new(move |d: &stepdeploy_core::steps::Deployment| {
        let now = sim.now();
        if d.rolling_back {
            rollback_seen.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(now);
        } else if d.step.as_ref().is_some_and(|s| s.next == "bake") && fired_seen.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            *fired_seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(now + 37);
            let reason = "Threshold Crossed: 1 out of the last 1 datapoints [12.0] was greater than the threshold (5.0).".to_string();
            sim.schedule(now + 37, ExternalEvent::AlarmFires { alarm: stepdeploy_sim::demo::DEMO_ALARMS[1].into(), reason });
        }
    });
    let summary = run(&fleet.sim, config, SERIAL_DEPLOY, demo_input(), &fleet.group, observer).await.1;
    assert_eq!(summary.error.as_deref(), Some(errors::ALARM_FIRED), "{summary:?}");
    assert!(message(&summary).contains("\"demo-web-latency\" is in ALARM") && message(&summary).contains("during the bake"), "{:?}", summary.cause);
    assert_eq!(summary.api_calls.get("SendTaskFailure"), Some(&1), "the relay failed the bake's wait: {:?}", summary.api_calls);
    let fired = fired.lock().unwrap_or_else(|p| p.into_inner()).expect("the bake's wait began");
    let rollback = rollback.lock().unwrap_or_else(|p| p.into_inner()).expect("it rolled back");
    assert!((fired..=fired + TOKEN_LOOK_SECONDS as i64 + 1).contains(&rollback), "alarm at {fired}, rollback at {rollback}");
    assert!(summary.min_healthy_observed.unwrap_or(0) >= INSTANCES);
    assert_eq!(fleet.sim.launches_since(&fleet.group, fired), 0, "back from Standby, nothing launched");
    assert_clean(&fleet);
}

#[tokio::test]
async fn during_the_bake_status_shows_it_approve_is_refused_and_reject_rolls_back() {
    use stepdeploy_core::status::environment_status;
    use stepdeploy_core::steps::checkpoint::{Answer, answer};
    let (fleet, config) = demo(25, INSTANCES, settings());
    let (sim, cfg, said) = (fleet.sim.clone(), config.clone(), Arc::new(Mutex::new(Vec::<String>::new())));
    let said_seen = said.clone();
    // As the bake's wait begins (its token in the lock), an operator looks and answers.
    let steps = Arc::new(move |step: &str, record: &serde_json::Value| {
        let held = sim.parameter_value(&stepdeploy_core::steps::lock_parameter("demo", "demo"));
        let baking = held.map(|v| stepdeploy_core::steps::LockRecord::parse(&v)).and_then(|l| l.pause).is_some_and(|p| p.bake);
        if step == "replace" && record["rolling_back"] == true && baking {
            said_seen.lock().unwrap_or_else(|p| p.into_inner()).push("the lock still shows the bake during the rollback".into());
        }
        if step != "pause" || !baking || !said_seen.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
            return;
        }
        let env = &cfg.environments["demo"];
        let status = futures::executor::block_on(environment_status(&sim, "demo", "demo", env, sim.now())).map(|s| s.to_text());
        let approve = futures::executor::block_on(answer(&sim, &sim, "demo", "demo", &Answer::Approve { by: "ops".into() }));
        let reject =
            futures::executor::block_on(answer(&sim, &sim, "demo", "demo", &Answer::Reject { by: "ops".into(), reason: "p99 doubled".into() }));
        let mut said = said_seen.lock().unwrap_or_else(|p| p.into_inner());
        said.push(status.unwrap_or_default());
        said.push(approve.err().map(|e| e.message).unwrap_or_default());
        said.push(format!("{:?}", reject.map(|a| a.percent)));
    });
    let summary = stepdeploy_local::run_with(&fleet.sim, config, SERIAL_DEPLOY, demo_input(), &fleet.group, Arc::new(|_| {}), steps).await.1;
    let said = said.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(said.len(), 3, "the operator looked once, during the bake");
    assert!(said[0].contains("BAKING since") && said[0].contains("stepdeploy reject demo"), "{}", said[0]);
    assert!(said[1].contains("is baking until") && said[1].contains("finishes by itself"), "{}", said[1]);
    assert_eq!(said[2], "Ok(100)");
    assert_eq!(summary.error.as_deref(), Some(errors::CHECKPOINT_REJECTED), "{summary:?}");
    assert!(message(&summary).contains("ops rejected the rollout during its bake: p99 doubled"), "{:?}", summary.cause);
    assert_eq!(summary.fleet.by_image.get(&fleet.old.image_id), Some(&(INSTANCES as usize)), "rolled back");
    assert_clean(&fleet);
}
