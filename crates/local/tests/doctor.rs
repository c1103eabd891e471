//! `stepdeploy doctor`'s checks on the simulated account: each passes on the demo environment
//! and fails, saying what to do, when its condition is broken; none changes anything.

use futures::executor::block_on;
use serde_json::json;
use stepdeploy_core::config::Environment;
use stepdeploy_core::doctor::{Check, checks};
use stepdeploy_core::ports::{ProcessControl, TargetGroupTiming};
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
        [
            "config pushed",
            "Auto Scaling group",
            "group fit for a rollout",
            "launch template",
            "target group",
            "listener",
            "tags",
            "SSM",
            "health timing",
            "vCPU quota",
            "alarms",
            "lock"
        ]
    );
    assert!(find(&report, "tags").detail.contains("stepdeploy:deployment=demo"), "{report:#?}");
    assert!(find(&report, "SSM").detail.contains("all online"), "{report:#?}");
    // 4 instances of t3.small (2 vCPUs) in the demo's quota of (2 × 8 + 8) × 2 = 48: 4 more need 8 of the 40 free.
    assert_eq!(
        find(&report, "vCPU quota").detail,
        "4 more t3.small need 8 vCPUs; 40 free in Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"
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

#[test]
fn a_resource_without_the_deployment_tag_fails_naming_it() {
    let (fleet, config) = demo(5, 3, SimSettings::default());
    let env = config.environments["demo"].clone();
    let other = std::collections::BTreeMap::from([("stepdeploy:deployment".to_string(), "other".to_string())]);
    fleet.sim.tag_resource(&env.target_group_arns[0], other.clone());
    let template_id = fleet.template.id.clone().unwrap_or_default();
    fleet.sim.tag_resource(&template_id, other);
    let (instance, _) = fleet.sim.live_in_group(&fleet.group)[0].clone();
    fleet.sim.remove_tag(&instance, "stepdeploy:deployment");
    let report = run(&fleet, Some(&env), Some(&env));
    assert_eq!(failed(&report), ["tags"], "{report:#?}");
    let check = find(&report, "tags");
    for part in [env.target_group_arns[0].as_str(), &format!("launch template {}", env.launch_template.as_deref().unwrap_or_default()), &instance] {
        assert!(check.detail.contains(part), "{part} in {}", check.detail);
    }
    assert!(!check.detail.contains("group demo-web"), "the group is still tagged: {}", check.detail);
    assert!(check.fix.as_deref().unwrap_or_default().contains("PropagateAtLaunch"), "{check:?}");
}

#[test]
fn instances_ssm_cannot_manage_fail_with_the_instance_profile_and_route_to_check() {
    let (fleet, config) = demo(6, 3, SimSettings::default());
    let env = config.environments["demo"].clone();
    let (cut, _) = fleet.sim.live_in_group(&fleet.group)[1].clone();
    fleet.sim.cut_from_ssm(std::slice::from_ref(&cut));
    let report = run(&fleet, Some(&env), Some(&env));
    assert_eq!(failed(&report), ["SSM"], "{report:#?}");
    let check = find(&report, "SSM");
    assert!(check.detail.starts_with("1 of 3 instance(s) in service not online in SSM") && check.detail.contains(&cut), "{check:?}");
    assert!(check.fix.as_deref().unwrap_or_default().contains("AmazonSSMManagedInstanceCore"), "{check:?}");

    // A launch template without an instance profile: its instances never reach SSM.
    let (fleet, _) = demo(7, 2, SimSettings::default());
    fleet.sim.drop_instance_profile(fleet.template.id.as_deref().unwrap_or_default());
    let report = run(&fleet, Some(&env), Some(&env));
    assert!(find(&report, "SSM").detail.contains("sets no instance profile"), "{report:#?}");
}

#[test]
fn health_checks_or_draining_longer_than_the_instance_timeout_fail_with_the_numbers() {
    let (fleet, config) = demo(8, 2, SimSettings::default());
    let mut env = config.environments["demo"].clone();
    env.health.timeout_seconds = 120;
    let arn = env.target_group_arns[0].clone();
    // ELB's defaults for a new target group: checks every 30 s, healthy after 5, a 300 s drain.
    fleet.sim.set_target_group_timing(&arn, TargetGroupTiming { interval_seconds: 30, healthy_threshold: 5, deregistration_delay_seconds: 300 });
    let report = run(&fleet, Some(&env), Some(&env));
    assert_eq!(failed(&report), ["health timing"], "{report:#?}");
    let detail = &find(&report, "health timing").detail;
    assert!(detail.contains("after 150 s at the soonest (5 × 30 s)") && detail.contains("(120 s)"), "{detail}");
    assert!(detail.contains("draining takes up to 300 s"), "{detail}");
    // One second more than the soonest health, and a shorter drain, pass.
    fleet.sim.set_target_group_timing(&arn, TargetGroupTiming { interval_seconds: 10, healthy_threshold: 5, deregistration_delay_seconds: 30 });
    env.health.timeout_seconds = 51;
    assert!(find(&run(&fleet, Some(&env), Some(&env)), "health timing").ok);
    env.health.timeout_seconds = 50;
    assert!(!find(&run(&fleet, Some(&env), Some(&env)), "health timing").ok, "50 s of checks in a 50 s timeout can't pass");
}

#[test]
fn a_surge_past_the_vcpu_quota_fails_with_the_quota_code_and_no_quota_is_not_checked() {
    let (fleet, config) = demo(9, 4, SimSettings::default());
    let env = config.environments["demo"].clone();
    // 4 running (8 vCPUs); a full deploy launches 4 more (8): 15 leaves 7.
    fleet.sim.set_vcpu_quota(Some(15.0));
    let report = run(&fleet, Some(&env), Some(&env));
    assert_eq!(failed(&report), ["vCPU quota"], "{report:#?}");
    let check = find(&report, "vCPU quota");
    assert!(check.detail.contains("need 8 vCPUs") && check.detail.contains("has 7 free (8 of 15 in use)"), "{check:?}");
    assert!(check.fix.as_deref().unwrap_or_default().contains("--quota-code L-1216C47A"), "{check:?}");
    fleet.sim.set_vcpu_quota(None);
    let check = find(&run(&fleet, Some(&env), Some(&env)), "vCPU quota").clone();
    assert!(check.ok && check.detail.starts_with("not checked: the account has no applied value of L-1216C47A"), "{check:?}");
}
