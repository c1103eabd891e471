//! Guarded rollouts (#16), end to end on the sim: CloudWatch alarms stop and roll back a
//! deploy on its effect in production, before it starts, during its rollout and during its
//! bake; a clean bake waits out its time and then finishes; a deploy that finds the environment
//! locked waits in the lock queue.

use std::sync::Arc;

use serde_json::json;
use stepdeploy_core::errors;
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{DEMO_BAKE_SECONDS, Summary, demo, demo_input, scenario};
use stepdeploy_sim::demo::{DEMO_ALARMS, DemoFleet};
use stepdeploy_sim::{AlarmTrigger, ExternalEvent};

mod common;
use common::{assert_clean, deploy, message, settings};

const INSTANCES: u32 = 6;

/// Every instance back on the old version, all healthy, and the floor (100 % of 6) held throughout.
fn assert_rolled_back(fleet: &DemoFleet, summary: &Summary) {
    assert_eq!(summary.fleet.by_image.get(&fleet.old.image_id), Some(&(INSTANCES as usize)), "{:?}", summary.fleet);
    assert_eq!(summary.fleet.by_image.len(), 1, "no new instance left: {:?}", summary.fleet);
    assert_eq!(summary.fleet.healthy, INSTANCES as usize);
    assert!(summary.min_healthy_observed.unwrap_or(0) >= INSTANCES, "the floor held: {:?}", summary.min_healthy_observed);
}

#[tokio::test]
async fn an_alarm_during_the_rollout_rolls_it_back_and_is_named_in_the_error() {
    let (fleet, config) = demo(1, INSTANCES, settings());
    scenario::inject("alarm-during-rollout", "serial", &fleet).unwrap();
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!((summary.status, summary.error.as_deref()), ("FAILED", Some(errors::ALARM_FIRED)), "{summary:?}");
    let cause = message(&summary);
    assert!(cause.contains("\"demo-web-5xx\" is in ALARM (Threshold Crossed"), "the alarm and its reason: {cause}");
    assert!(cause.contains("during the rollout"), "{cause}");
    assert_rolled_back(&fleet, &summary);
    assert_clean(&fleet);
}

#[tokio::test]
async fn an_alarm_already_firing_refuses_the_deploy_and_touches_nothing() {
    let (fleet, config) = demo(2, INSTANCES, settings());
    fleet.sim.set_alarm_state(DEMO_ALARMS[1], "ALARM", "Threshold Crossed: p99 latency 2.4 s was greater than the threshold (1.0)");
    let before = fleet.sim.group_state(&fleet.group);
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!((summary.status, summary.error.as_deref()), ("FAILED", Some(errors::ALARM_FIRED)), "{summary:?}");
    let cause = message(&summary);
    assert!(cause.contains("\"demo-web-latency\" is in ALARM (Threshold Crossed: p99 latency 2.4 s"), "{cause}");
    assert!(cause.contains("nothing was changed") && cause.contains("ignore_alarms"), "{cause}");
    assert!(!cause.contains("demo-web-5xx"), "an alarm in OK is not named: {cause}");
    // Not one call that changes anything: the lock was never taken.
    let reads = ["DescribeLaunchTemplateVersions", "DescribeAlarms"];
    let other: Vec<&String> = summary.api_calls.keys().filter(|op| !reads.contains(&op.as_str())).collect();
    assert!(other.is_empty(), "calls beyond the checks: {other:?}");
    assert_eq!(fleet.sim.group_state(&fleet.group), before);
    assert_eq!(summary.fleet.by_image.get(&fleet.old.image_id), Some(&(INSTANCES as usize)));
    assert_clean(&fleet);
}

#[tokio::test]
async fn ignore_alarms_deploys_past_an_alarm_already_firing_but_not_past_one_that_fires_again() {
    let firing = |fleet: &DemoFleet| fleet.sim.set_alarm_state(DEMO_ALARMS[0], "ALARM", "Threshold Crossed: the fix for this is what we deploy");
    let input = json!({"environment": "demo", "launch_template_version": "2", "ignore_alarms": true});
    // Still firing, unchanged, through the whole deploy: it was known at the start.
    let (fleet, config) = demo(3, INSTANCES, settings());
    firing(&fleet);
    let summary = deploy(&fleet, config, input.clone()).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&(INSTANCES as usize)));
    // Firing again (a new state change) once the new version serves: that one counts.
    let (fleet, config) = demo(3, INSTANCES, settings());
    firing(&fleet);
    fleet.sim.fire_alarm_when(AlarmTrigger {
        alarm: DEMO_ALARMS[0].into(),
        image_id: fleet.new.image_id.clone(),
        serving_at_least: Some(2),
        reason: "Threshold Crossed: worse with the new version".into(),
    });
    let summary = deploy(&fleet, config, input).await;
    assert_eq!(summary.error.as_deref(), Some(errors::ALARM_FIRED), "{summary:?}");
    assert!(message(&summary).contains("worse with the new version"), "{:?}", summary.cause);
    assert_rolled_back(&fleet, &summary);
    assert_clean(&fleet);
}

#[tokio::test]
async fn an_alarm_during_the_bake_rolls_back_the_complete_rollout() {
    let (fleet, config) = demo(4, INSTANCES, settings());
    scenario::inject("alarm-during-bake", "serial", &fleet).unwrap();
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!((summary.status, summary.error.as_deref()), ("FAILED", Some(errors::ALARM_FIRED)), "{summary:?}");
    let cause = message(&summary);
    assert!(cause.contains("during the bake"), "{cause}");
    assert_rolled_back(&fleet, &summary);
    assert_clean(&fleet);
}

#[tokio::test]
async fn a_clean_bake_waits_out_its_time_then_finishes() {
    let (fleet, config) = demo(5, INSTANCES, settings());
    let with_bake = deploy(&fleet, config.clone(), demo_input()).await;
    assert_eq!(with_bake.status, "SUCCEEDED", "{with_bake:?}");
    assert_eq!(with_bake.fleet.by_image.get(&fleet.new.image_id), Some(&(INSTANCES as usize)));
    assert_clean(&fleet);
    // The same seed without a bake (so without instant rollback, which needs one): the bake adds
    // its time, at most one poll more, and the step that lets the Standby instances go (a second
    // and a poll).
    let (fleet, config) = demo(5, INSTANCES, settings());
    let mut unbaked = (*config).clone();
    unbaked.environments["demo"].rollout.bake_seconds = 0;
    unbaked.environments["demo"].rollout.instant_rollback = false;
    let without = deploy(&fleet, Arc::new(unbaked), demo_input()).await;
    assert_eq!(without.status, "SUCCEEDED");
    let extra = with_bake.virtual_seconds - without.virtual_seconds;
    let poll = config.environments["demo"].health.poll_interval_seconds as i64;
    let bake = DEMO_BAKE_SECONDS as i64;
    assert!((bake..=bake + poll + 1 + poll).contains(&extra), "the bake added {extra} s");
}

#[tokio::test]
async fn alarms_cost_one_call_per_poll_whatever_the_fleet_size() {
    for n in [4, 40] {
        let (fleet, config) = demo(6, n, settings());
        let summary = deploy(&fleet, config, demo_input()).await;
        assert_eq!(summary.status, "SUCCEEDED", "N={n}: {summary:?}");
        let calls = |op: &str| summary.api_calls.get(op).copied().unwrap_or(0);
        // One DescribeAlarms at prepare, one per reconcile step (as DescribeScalingActivities), one
        // as the rollout pauses at the demo's checkpoint, and one as its bake's wait begins.
        assert_eq!(calls("SendTaskSuccess"), 1, "N={n}: one checkpoint, approved");
        assert_eq!(calls("DescribeAlarms"), calls("DescribeScalingActivities") + 3, "N={n}: {:?}", summary.api_calls);
    }
}

/// A lock held by another deploy that is still running, which ends at `ends_after` seconds from now.
fn held_by_another(fleet: &DemoFleet, ends_after: i64) -> String {
    let holder = "arn:aws:states:us-east-1:123456789012:execution:stepdeploy-demo-serial-deploy:the-first";
    let lock = lock_parameter("demo", "demo");
    fleet.sim.put_parameter_directly(&lock, &json!({"execution": holder, "since": fleet.sim.now(), "suspended": []}).to_string());
    fleet.sim.set_execution_running(holder);
    fleet.sim.schedule(fleet.sim.now() + ends_after, ExternalEvent::ExecutionEnds { execution: holder.into(), lock_parameter: lock });
    holder.to_string()
}

#[tokio::test]
async fn a_deploy_that_finds_the_environment_locked_waits_in_the_queue_then_runs() {
    let (fleet, config) = demo(7, INSTANCES, settings());
    let mut queued = (*config).clone();
    queued.environments["demo"].lock.wait_seconds = 900;
    held_by_another(&fleet, 300);
    let start = fleet.sim.now();
    let summary = deploy(&fleet, Arc::new(queued), demo_input()).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&(INSTANCES as usize)));
    // Nothing changed before the first deploy's lock was gone.
    let first_change = fleet.sim.calls().into_iter().find(|c| c.operation == "SuspendProcesses").map(|c| c.at - start);
    assert!(first_change.is_some_and(|at| (300..=330).contains(&at)), "the deploy began {first_change:?} s in; the lock was free at 300");
    assert_clean(&fleet);
}

#[tokio::test]
async fn a_queue_wait_that_runs_out_fails_as_locked_and_touches_nothing() {
    let (fleet, config) = demo(8, INSTANCES, settings());
    held_by_another(&fleet, 3_600);
    let before = fleet.sim.group_state(&fleet.group);
    // The input's lock_wait_seconds (120 s) applies instead of the config's 0.
    let mut input = demo_input();
    input["lock_wait_seconds"] = json!(120);
    let summary = deploy(&fleet, config.clone(), input).await;
    assert_eq!(summary.error.as_deref(), Some(errors::ENVIRONMENT_LOCKED), "{summary:?}");
    let cause = message(&summary);
    assert!(cause.contains("the-first") && cause.contains("after waiting 1") && cause.contains("s in the lock queue"), "{cause}");
    assert!((120..=160).contains(&summary.virtual_seconds), "waited {} s", summary.virtual_seconds);
    assert_eq!(fleet.sim.group_state(&fleet.group), before);
    // A wait over the queue's bound is refused, naming the field.
    let mut input = demo_input();
    input["lock_wait_seconds"] = json!(20_000);
    let summary = deploy(&fleet, config, input).await;
    assert_eq!(summary.error.as_deref(), Some(errors::INVALID_INPUT));
    assert!(message(&summary).contains("lock_wait_seconds: 20000 is not in 0..=14400"), "{:?}", summary.cause);
}

#[tokio::test]
async fn two_deploys_of_one_environment_run_one_after_the_other_and_neither_fails() {
    use std::sync::Mutex;
    use stepdeploy_local::concurrent::{Run, run_together};
    let (fleet, config) = demo(9, INSTANCES, settings());
    // Each run's steps, with when they ran.
    let seen: Arc<Mutex<Vec<(usize, String, i64)>>> = Arc::default();
    let observer = |run: usize| {
        let (seen, sim) = (seen.clone(), fleet.sim.clone());
        Arc::new(move |step: &str, _: &serde_json::Value| seen.lock().unwrap().push((run, step.to_string(), sim.now())))
    };
    // The first ships version 2; the second, started at the same moment, waits for the lock and
    // then takes the group back to version 1.
    let mut second = json!({"environment": "demo", "launch_template_version": "1"});
    second["lock_wait_seconds"] = json!(3_600);
    let runs = vec![
        Run { definition: stepdeploy_local::SERIAL_DEPLOY, input: demo_input(), steps: observer(1), observer: None },
        Run { definition: stepdeploy_local::SERIAL_DEPLOY, input: second, steps: observer(2), observer: None },
    ];
    let done = run_together(&fleet.sim, config, runs, &fleet.group, stepdeploy_local::Approve::default()).await;
    for (execution, summary) in &done {
        assert_eq!(summary.status, "SUCCEEDED", "{:?} {:?}", execution.error, execution.cause);
    }
    let seen = seen.lock().unwrap().clone();
    let at = |run: usize, step: &str, last: bool| {
        let times = seen.iter().filter(|(r, s, _)| *r == run && s == step).map(|(_, _, t)| *t);
        if last { times.max() } else { times.min() }
    };
    let first_finished = at(1, "finish", true).expect("the first finished");
    let second_began = at(2, "replace", false).expect("the second replaced instances");
    assert!(second_began >= first_finished, "the second began at {second_began}, the first finished at {first_finished}");
    // It waited in the queue: its prepare was refused as queued, and tried again.
    let queued = done[1].0.history.iter().filter(|e| e.details.to_string().contains(errors::QUEUED)).count();
    assert!(queued >= 1, "the second waited in the lock queue");
    // The second's version is what runs now, at full capacity; the lock is free.
    assert_eq!(fleet.sim.live_in_group(&fleet.group).iter().filter(|(_, ami)| *ami == fleet.old.image_id).count(), INSTANCES as usize);
    assert!(done.iter().all(|(_, s)| s.min_healthy_observed.unwrap_or(0) >= INSTANCES), "the floor held throughout");
    assert_clean(&fleet);
}
