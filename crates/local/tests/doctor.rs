//! `stepdeploy doctor`'s checks on the simulated account: each passes on the demo environment
//! and fails, saying what to do, when its condition is broken; none changes anything.

use futures::executor::block_on;
use serde_json::json;
use stepdeploy_core::config::Environment;
use stepdeploy_core::doctor::{Check, checks};
use stepdeploy_core::ports::ProcessControl;
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::demo;
use stepdeploy_sim::SimSettings;
use stepdeploy_sim::demo::{DEMO_ALARMS, DemoFleet};

fn run(fleet: &DemoFleet, pushed: Option<&Environment>, local: Option<&Environment>) -> Vec<Check> {
    block_on(checks(&fleet.sim, "demo", "demo", pushed, local))
}

fn failed(report: &[Check]) -> Vec<&'static str> {
    report.iter().filter(|c| !c.ok).map(|c| c.name).collect()
}

fn find<'a>(report: &'a [Check], name: &str) -> &'a Check {
    report.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name}: {report:?}"))
}

#[test]
fn every_check_passes_on_a_ready_environment_and_nothing_changes() {
    let (fleet, config) = demo(1, 4, SimSettings::default());
    let env = config.environments["demo"].clone();
    let before = fleet.sim.fingerprint();
    let report = run(&fleet, Some(&env), Some(&env));
    assert!(failed(&report).is_empty(), "{report:#?}");
    let names: Vec<&str> = report.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["config pushed", "Auto Scaling group", "group fit for a rollout", "launch template", "target group", "listener", "alarms", "lock"]
    );
    assert_eq!(fleet.sim.fingerprint(), before, "read-only");
    let mutating: Vec<String> =
        fleet.sim.calls().into_iter().map(|c| c.operation).filter(|op| !(op.starts_with("Describe") || op.starts_with("Get"))).collect();
    assert!(mutating.is_empty(), "{mutating:?}");
}

#[test]
fn a_config_not_pushed_or_different_from_the_file_fails_with_the_push_command() {
    let (fleet, config) = demo(2, 2, SimSettings::default());
    let env = config.environments["demo"].clone();
    let report = run(&fleet, None, Some(&env));
    let check = find(&report, "config pushed");
    assert!(!check.ok && check.fix.as_deref() == Some("stepdeploy config push demo"), "{check:?}");
    assert_eq!(failed(&report), ["config pushed"], "the rest use the file's settings");
    let mut edited = env.clone();
    edited.rollout.min_healthy_percent = 50;
    let report = run(&fleet, Some(&env), Some(&edited));
    assert!(find(&report, "config pushed").detail.contains("differs"), "{report:#?}");
}

#[test]
fn each_broken_prerequisite_fails_its_own_check() {
    let (fleet, config) = demo(3, 2, SimSettings::default());
    let env = config.environments["demo"].clone();
    // Someone suspended Launch; an alarm fires; another execution holds the lock.
    block_on(fleet.sim.suspend_processes(&fleet.group, &["Launch".to_string()])).unwrap();
    fleet.sim.set_alarm_state(DEMO_ALARMS[0], "ALARM", "5xx over 5");
    let holder = "arn:aws:states:us-east-1:123456789012:execution:stepdeploy-demo-serial-deploy:other";
    fleet.sim.put_parameter_directly(&lock_parameter("demo", "demo"), &json!({"execution": holder, "since": fleet.sim.now()}).to_string());
    let report = run(&fleet, Some(&env), Some(&env));
    assert_eq!(failed(&report), ["group fit for a rollout", "alarms", "lock"], "{report:#?}");
    assert!(find(&report, "group fit for a rollout").detail.contains("Launch"), "{report:#?}");
    assert!(find(&report, "alarms").detail.contains("demo-web-5xx"));
    assert!(find(&report, "lock").detail.contains("other"));

    // Names that point at nothing: a group, a target group, a listener, a template, an alarm.
    let (fleet, _) = demo(4, 2, SimSettings::default());
    let mut wrong = env.clone();
    wrong.auto_scaling_group = "no-such-group".into();
    wrong.target_group_arns = vec!["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/none/0".into()];
    wrong.listener_arn = Some("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/none/0/0".into());
    wrong.launch_template = Some("lt-0000000000nothing".into());
    wrong.alarms = vec!["no-such-alarm".into()];
    let report = run(&fleet, Some(&wrong), Some(&wrong));
    assert_eq!(failed(&report), ["Auto Scaling group", "launch template", "target group", "listener", "alarms"], "{report:#?}");
    assert!(report.iter().filter(|c| !c.ok).all(|c| c.fix.is_some()), "each failure says what to do");
    let text = stepdeploy_core::doctor::to_text(&report);
    assert!(text.contains("FAIL  Auto Scaling group") && text.contains("fix: "), "{text}");
}
