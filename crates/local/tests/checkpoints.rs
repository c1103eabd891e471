//! Checkpoints (#16), end to end on the sim: a rollout pauses at its share of the group on the
//! state machine's `.waitForTaskToken` Task, with the token in the environment's lock, and goes
//! on when approved, rolls back when rejected, when no one answers in time, or when an alarm
//! fires while it waits (EventBridge relays the change to the paused execution).

use std::sync::{Arc, Mutex};

use serde_json::Value;
use stepdeploy_core::config::{CheckpointApproval, Config};
use stepdeploy_core::errors;
use stepdeploy_core::steps::{Deployment, LockRecord, lock_parameter};
use stepdeploy_local::{Approve, SERIAL_DEPLOY, Summary, demo, demo_input, run_approving, scenario};
use stepdeploy_sim::demo::DemoFleet;

mod common;
use common::{message, settings};

const INSTANCES: u32 = 6;
/// The demo's checkpoint, 50 % of 6.
const AT_CHECKPOINT: u32 = 3;

/// What a run saw: the most new instances live before the pause was passed, the pause as the
/// lock recorded it, and when the rollout went on.
#[derive(Debug, Default)]
struct Seen {
    most_new_before_pause: u32,
    paused: Option<(i64, LockRecord)>,
    resumed_at: Option<i64>,
}

async fn deploy(fleet: &DemoFleet, config: Config, approve: Approve) -> (Summary, Seen) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (watch, sim) = (seen.clone(), fleet.sim.clone());
    let lock = lock_parameter("demo", "demo");
    let steps = Arc::new(move |name: &str, record: &Value| {
        let mut seen = watch.lock().unwrap();
        match name {
            // The checkpoint's pause (the bake's wait runs the same step later).
            "pause" if seen.paused.is_none() => {
                let held = sim.parameter_value(&lock).map(|v| LockRecord::parse(&v)).unwrap_or_default();
                seen.paused = Some((sim.now(), held));
            }
            "replace" => {
                let Ok(deployment) = serde_json::from_value::<Deployment>(record.clone()) else { return };
                if seen.paused.is_none() {
                    let new = deployment.step.as_ref().map_or(0, |s| s.progress.new);
                    seen.most_new_before_pause = seen.most_new_before_pause.max(new);
                } else if seen.resumed_at.is_none() && !deployment.rolling_back {
                    seen.resumed_at = Some(sim.now());
                }
            }
            _ => {}
        }
    });
    let (_, summary) = run_approving(&fleet.sim, Arc::new(config), SERIAL_DEPLOY, demo_input(), &fleet.group, Arc::new(|_| {}), steps, approve).await;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (summary, seen)
}

fn guarded(config: &Config, approval: CheckpointApproval, wait_seconds: u64) -> Config {
    let mut config = config.clone();
    let env = &mut config.environments["demo"];
    env.rollout.checkpoints = vec![50];
    env.rollout.checkpoint_approval = approval;
    env.rollout.checkpoint_wait_seconds = wait_seconds;
    config
}

fn assert_rolled_back_and_clean(fleet: &DemoFleet, summary: &Summary) {
    assert_eq!(summary.fleet.by_image.get(&fleet.old.image_id), Some(&(INSTANCES as usize)), "{:?}", summary.fleet);
    assert_eq!(summary.fleet.by_image.len(), 1, "no new instance left: {:?}", summary.fleet);
    assert!(summary.min_healthy_observed.unwrap_or(0) >= INSTANCES, "the floor held: {:?}", summary.min_healthy_observed);
    assert!(fleet.sim.parameter_value(&lock_parameter("demo", "demo")).is_none(), "the lock is released");
}

/// The pause as the lock recorded it: the token, the share, and its wait.
fn assert_paused_at_half(seen: &Seen, wait_seconds: i64) -> i64 {
    let (at, held) = seen.paused.as_ref().expect("the rollout paused");
    let pause = held.pause.as_ref().expect("the lock records the pause");
    assert!(pause.token.starts_with("local-token-"), "the Task's token: {}", pause.token);
    assert_eq!((pause.percent, pause.instances, pause.goal), (50, AT_CHECKPOINT, INSTANCES));
    assert_eq!(pause.until - pause.since, wait_seconds);
    assert!(seen.most_new_before_pause <= AT_CHECKPOINT, "never past the checkpoint before it: {seen:?}");
    *at
}

#[tokio::test]
async fn an_approved_checkpoint_pauses_at_its_share_then_finishes_the_rollout() {
    let (fleet, config) = demo(11, INSTANCES, settings());
    let config = guarded(&config, CheckpointApproval::Manual, 3600);
    let (summary, seen) = deploy(&fleet, config, Approve::After(600)).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&(INSTANCES as usize)));
    let paused = assert_paused_at_half(&seen, 3600);
    let resumed = seen.resumed_at.expect("it went on");
    // Answered at the first look after 600 s (the engine looks at most a minute apart).
    assert!((600..=660).contains(&(resumed - paused)), "approved after 600 s: paused {paused}, resumed {resumed}");
    assert!(summary.min_healthy_observed.unwrap_or(0) >= INSTANCES);
    assert_eq!(summary.api_calls.get("SendTaskSuccess"), Some(&1));
    // The pause is over: the lock no longer shows it, and then it is released.
    assert!(fleet.sim.parameter_value(&lock_parameter("demo", "demo")).is_none());
}

#[tokio::test]
async fn a_rejected_checkpoint_rolls_back_with_the_reason() {
    let (fleet, config) = demo(12, INSTANCES, settings());
    let (summary, seen) = deploy(&fleet, guarded(&config, CheckpointApproval::Manual, 3600), Approve::Reject).await;
    assert_eq!((summary.status, summary.error.as_deref()), ("FAILED", Some(errors::CHECKPOINT_REJECTED)), "{summary:?}");
    assert!(message(&summary).contains("rejected the rollout at its 50 % checkpoint: rejected by --approve reject"), "{:?}", summary.cause);
    assert_paused_at_half(&seen, 3600);
    assert_rolled_back_and_clean(&fleet, &summary);
}

#[tokio::test]
async fn a_manual_checkpoint_no_one_answers_is_rejected_when_its_wait_ends() {
    let (fleet, config) = demo(13, INSTANCES, settings());
    let started = fleet.sim.now();
    let (summary, seen) = deploy(&fleet, guarded(&config, CheckpointApproval::Manual, 900), Approve::Never).await;
    assert_eq!((summary.status, summary.error.as_deref()), ("FAILED", Some(errors::CHECKPOINT_REJECTED)), "{summary:?}");
    assert!(message(&summary).contains("no one approved the rollout at its 50 % checkpoint within 900 s"), "{:?}", summary.cause);
    let paused = assert_paused_at_half(&seen, 900);
    assert!(fleet.sim.now() - paused >= 900 && paused > started, "waited the whole 900 s");
    assert_rolled_back_and_clean(&fleet, &summary);
}

#[tokio::test]
async fn an_auto_checkpoint_goes_on_when_its_wait_passes_with_no_alarm() {
    let (fleet, config) = demo(14, INSTANCES, settings());
    let (summary, seen) = deploy(&fleet, guarded(&config, CheckpointApproval::Auto, 300), Approve::Never).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let paused = assert_paused_at_half(&seen, 300);
    let resumed = seen.resumed_at.expect("it went on");
    assert!((300..=301).contains(&(resumed - paused)), "went on at the wait's end: {}", resumed - paused);
    assert_eq!(summary.api_calls.get("SendTaskSuccess"), None, "no one answered");
}

#[tokio::test]
async fn an_alarm_while_paused_rolls_back_without_waiting_for_anyone() {
    let (fleet, config) = demo(15, INSTANCES, settings());
    scenario::inject("alarm-at-checkpoint", "serial", &fleet).unwrap();
    let (summary, seen) = deploy(&fleet, guarded(&config, CheckpointApproval::Manual, 3600), Approve::Never).await;
    assert_eq!((summary.status, summary.error.as_deref()), ("FAILED", Some(errors::ALARM_FIRED)), "{summary:?}");
    let cause = message(&summary);
    assert!(cause.contains("is in ALARM (Threshold Crossed") && cause.contains("paused at its 50 % checkpoint"), "{cause}");
    let paused = assert_paused_at_half(&seen, 3600);
    // The relay (SendTaskFailure) ended the pause within a minute, not the hour's wait: once per
    // alarm (the fault fires both), the second finding the pause already over.
    assert_eq!(summary.api_calls.get("SendTaskFailure"), Some(&2), "{:?}", summary.api_calls);
    assert!(summary.api_calls.contains_key("GetParametersByPath"));
    assert_rolled_back_and_clean(&fleet, &summary);
    assert!(fleet.sim.now() - paused < 3600, "rolled back before the wait ended");
}

#[tokio::test]
async fn an_alarm_already_firing_when_the_rollout_pauses_fails_the_pause_itself() {
    let (fleet, config) = demo(16, INSTANCES, settings());
    let config = guarded(&config, CheckpointApproval::Manual, 3600);
    // Fires as the third new instance serves: the pause begins before a replace step reads it
    // only when warm-up and the poll let it; either way the deploy rolls back on the alarm.
    fleet.sim.fire_alarm_when(stepdeploy_sim::AlarmTrigger {
        alarm: stepdeploy_sim::demo::DEMO_ALARMS[0].into(),
        image_id: fleet.new.image_id.clone(),
        serving_at_least: Some(AT_CHECKPOINT),
        reason: "Threshold Crossed: errors with three new instances serving".into(),
    });
    let (summary, _) = deploy(&fleet, config, Approve::Never).await;
    assert_eq!((summary.status, summary.error.as_deref()), ("FAILED", Some(errors::ALARM_FIRED)), "{summary:?}");
    assert!(message(&summary).contains("errors with three new instances serving"), "{:?}", summary.cause);
    assert_rolled_back_and_clean(&fleet, &summary);
}

#[test]
fn approve_reads_auto_reject_never_and_after_seconds_and_names_a_bad_one() {
    assert_eq!("auto".parse::<Approve>(), Ok(Approve::Auto));
    assert_eq!("reject".parse::<Approve>(), Ok(Approve::Reject));
    assert_eq!("never".parse::<Approve>(), Ok(Approve::Never));
    assert_eq!("after:90".parse::<Approve>(), Ok(Approve::After(90)));
    let bad = "after:soon".parse::<Approve>().unwrap_err();
    assert!(bad.contains("\"after:soon\"") && bad.contains("after:SECONDS"), "{bad}");
}

#[tokio::test]
async fn a_pause_is_published_once_with_what_to_run_to_go_on_or_stop() {
    use stepdeploy_sim::demo::DEMO_TOPIC_ARN;
    let (fleet, config) = demo(17, INSTANCES, settings());
    let (summary, seen) = deploy(&fleet, guarded(&config, CheckpointApproval::Manual, 3600), Approve::After(120)).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let (_, held) = seen.paused.as_ref().expect("the rollout paused");
    let token = held.pause.as_ref().map(|p| p.token.clone()).expect("the lock records the token");
    let published = fleet.sim.published(DEMO_TOPIC_ARN);
    assert_eq!(published.len(), 1, "one notification for one pause: {published:?}");
    let note = &published[0];
    assert_eq!(note.subject, "stepdeploy: demo paused at its 50 % checkpoint");
    for expected in [
        "is paused at its 50 % checkpoint: 3 of 6 instances run the new version",
        "no answer by then rolls it back",
        "stepdeploy approve demo",
        "stepdeploy reject demo --reason",
        &format!("aws stepfunctions send-task-success --task-output '{{}}' --task-token '{token}'"),
        &format!("aws stepfunctions send-task-failure --error {} --cause \"...\" --task-token '{token}'", errors::CHECKPOINT_REJECTED),
    ] {
        assert!(note.message.contains(expected), "{expected:?} missing from:\n{}", note.message);
    }
}

#[tokio::test]
async fn a_notification_that_cannot_be_sent_does_not_stop_the_rollout() {
    use stepdeploy_core::ports::ErrorKind;
    use stepdeploy_sim::Fault;
    let (fleet, config) = demo(18, INSTANCES, settings());
    fleet.sim.inject_fault(Fault {
        operation: "Publish".into(),
        kind: ErrorKind::AccessDenied,
        code: "AuthorizationError".into(),
        remaining: 1,
        lost_response: false,
        skip: 0,
    });
    let (summary, seen) = deploy(&fleet, guarded(&config, CheckpointApproval::Manual, 3600), Approve::After(120)).await;
    assert_eq!(summary.status, "SUCCEEDED", "the pause still waits for its answer: {summary:?}");
    assert!(seen.paused.is_some());
    assert!(fleet.sim.published(stepdeploy_sim::demo::DEMO_TOPIC_ARN).is_empty());
    assert_eq!(summary.api_calls.get("Publish"), Some(&1), "not retried in a loop: {:?}", summary.api_calls);
}
