//! Prepare refuses groups the planner can't handle, before it changes
//! anything, with a cause that says what to change (#14 item 4).

use std::sync::Arc;

use futures::executor::block_on;
use serde_json::json;
use stepdeploy_core::config::Config;
use stepdeploy_core::errors;
use stepdeploy_core::model::GroupFeatures;
use stepdeploy_core::ports::{Parameters, ProcessControl};
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{IN_PLACE_DEPLOY, SERIAL_DEPLOY, Summary, demo, demo_input, run};
use stepdeploy_sim::demo::DemoFleet;

mod common;
use common::settings;

fn message(summary: &Summary) -> String {
    let cause: serde_json::Value = serde_json::from_str(summary.cause.as_deref().unwrap_or_default()).unwrap_or_default();
    cause["errorMessage"].as_str().unwrap_or_default().to_string()
}

/// Runs a serial deploy that must be refused: the error, a cause holding `expected`, and an untouched account.
async fn assert_refused(fleet: &DemoFleet, config: Arc<Config>, definition: &str, input: serde_json::Value, expected: &[&str]) {
    let before = fleet.sim.fingerprint();
    let summary = run(&fleet.sim, config, definition, input, &fleet.group, Arc::new(|_| {})).await.1;
    assert_eq!(summary.status, "FAILED", "{summary:?}");
    assert_eq!(summary.error.as_deref(), Some(errors::PREFLIGHT_FAILED), "{summary:?}");
    let message = message(&summary);
    for part in expected {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(fleet.sim.fingerprint(), before, "the account is as it was (the lock given back)");
}

fn with_env(config: &Config, change: impl FnOnce(&mut stepdeploy_core::config::Environment)) -> Arc<Config> {
    let mut config = config.clone();
    change(config.environments.get_mut("demo").unwrap());
    Arc::new(config)
}

#[tokio::test]
async fn processes_someone_else_suspended_that_a_rollout_needs_are_refused() {
    for process in ["Launch", "AddToLoadBalancer"] {
        let (fleet, config) = demo(41, 2, settings());
        block_on(fleet.sim.suspend_processes(&fleet.group, &[process.to_string()])).unwrap();
        assert_refused(&fleet, config, SERIAL_DEPLOY, demo_input(), &[process, "resume-processes"]).await;
    }
}

#[tokio::test]
async fn launch_suspended_by_a_stepdeploy_run_whose_stale_lock_is_broken_is_ours_to_resume() {
    let (fleet, config) = demo(42, 2, settings());
    block_on(fleet.sim.suspend_processes(&fleet.group, &["Launch".to_string()])).unwrap();
    let stale = json!({"execution": "arn:aws:states:us-east-1:123456789012:execution:serial-deploy:died", "since": fleet.sim.now() - 8000, "suspended": ["Launch"]});
    fleet.sim.put_parameter_directly(&lock_parameter("demo", "demo"), &stale.to_string());
    let mut input = demo_input();
    input["break_stale_lock"] = json!(true);
    let summary = run(&fleet.sim, config, SERIAL_DEPLOY, input, &fleet.group, Arc::new(|_| {})).await.1;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert!(fleet.sim.group_state(&fleet.group).unwrap().3.is_empty(), "Launch resumed");
    assert!(block_on(fleet.sim.get_parameter(&lock_parameter("demo", "demo"))).unwrap().is_none());
}

#[tokio::test]
async fn group_settings_the_planner_cannot_handle_are_refused_with_what_to_change() {
    let cases: Vec<(GroupFeatures, &[&str])> = vec![
        (GroupFeatures { mixed_instances_policy: true, ..Default::default() }, &["mixed instances policy", "Spot"]),
        (GroupFeatures { warm_pool: true, ..Default::default() }, &["warm pool", "delete-warm-pool"]),
        (GroupFeatures { desired_capacity_type: Some("vcpu".into()), ..Default::default() }, &["vcpu", "DesiredCapacityType to units"]),
        (GroupFeatures { launch_configuration: Some("old-lc".into()), ..Default::default() }, &["launch configuration old-lc"]),
    ];
    for (features, expected) in cases {
        let (fleet, config) = demo(43, 2, settings());
        fleet.sim.set_group_features(&fleet.group, features);
        assert_refused(&fleet, config, SERIAL_DEPLOY, demo_input(), expected).await;
    }
    // `units` is what a group without the setting counts in: fine.
    let (fleet, config) = demo(43, 2, settings());
    fleet.sim.set_group_features(&fleet.group, GroupFeatures { desired_capacity_type: Some("units".into()), ..Default::default() });
    let summary = run(&fleet.sim, config, SERIAL_DEPLOY, demo_input(), &fleet.group, Arc::new(|_| {})).await.1;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
}

#[tokio::test]
async fn a_config_that_names_other_target_groups_or_another_template_is_refused() {
    let (fleet, config) = demo(44, 2, settings());
    let other_tg = fleet.sim.create_target_group("other");
    let config_tg = with_env(&config, |env| env.target_group_arns.push(other_tg.clone()));
    assert_refused(&fleet, config_tg, SERIAL_DEPLOY, demo_input(), &["target_group_arns", "other", "make them the same"]).await;

    let other_template = fleet.sim.create_launch_template("other-web", &fleet.new.image_id, Default::default());
    let config_lt = with_env(&config, |env| env.launch_template = Some(other_template.clone()));
    // Its version 1 exists, so the input is valid: only the preflight can tell.
    let input = json!({"environment": "demo", "launch_template_version": "1"});
    assert_refused(&fleet, config_lt, SERIAL_DEPLOY, input, &["launch_template is", "point the config"]).await;
}

#[tokio::test]
async fn an_instance_refresh_in_progress_refuses_rollouts_and_in_place_deploys() {
    let (fleet, config) = demo(45, 2, settings());
    fleet.sim.set_instance_refresh(&fleet.group, Some("08b91cf7-8fa6 InProgress"));
    assert_refused(&fleet, config.clone(), SERIAL_DEPLOY, demo_input(), &["instance refresh (08b91cf7-8fa6 InProgress)", "cancel-instance-refresh"])
        .await;
    let in_place = json!({"environment": "demo", "revision": "2222222", "min_healthy_percent": 50});
    assert_refused(&fleet, config.clone(), IN_PLACE_DEPLOY, in_place.clone(), &["instance refresh"]).await;
    fleet.sim.set_instance_refresh(&fleet.group, None);
    let summary = run(&fleet.sim, config, IN_PLACE_DEPLOY, in_place, &fleet.group, Arc::new(|_| {})).await.1;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
}

/// vCPUs a sim instance (t3.small) uses.
const VCPUS: u32 = 2;

#[tokio::test]
async fn a_surge_past_the_vcpu_quota_is_refused_before_anything_launches() {
    // 4 instances use 8 vCPUs; a serial deploy at 200 % launches 4 more (8 vCPUs): a quota of
    // 14 leaves 6, so three would launch and the fourth fail with VcpuLimitExceeded.
    let (fleet, config) = demo(45, 4, settings());
    let (running, surge) = (4, 4);
    let quota = f64::from(running * VCPUS + surge * VCPUS - 2);
    fleet.sim.set_vcpu_quota(Some(quota));
    let expected =
        ["4 more t3.small need 8 vCPUs", "has 6 free (8 of 14 in use)", "L-1216C47A", "request-service-quota-increase", "max_healthy_percent"];
    assert_refused(&fleet, config.clone(), SERIAL_DEPLOY, demo_input(), &expected).await;

    // A lower ceiling fits: 175 % of 4 is 7, so 3 more (6 vCPUs) at most.
    let mut input = demo_input();
    input["max_healthy_percent"] = json!(175);
    let summary = run(&fleet.sim, config, SERIAL_DEPLOY, input, &fleet.group, Arc::new(|_| {})).await.1;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
}

#[tokio::test]
async fn a_surge_that_just_fits_the_quota_deploys() {
    let (fleet, config) = demo(46, 4, settings());
    fleet.sim.set_vcpu_quota(Some(f64::from((4 + 4) * VCPUS)));
    let summary = run(&fleet.sim, config, SERIAL_DEPLOY, demo_input(), &fleet.group, Arc::new(|_| {})).await.1;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
}

#[tokio::test]
async fn without_a_quota_check_the_sim_fails_launches_past_the_quota_as_auto_scaling_does() {
    // What prepare's check prevents: Auto Scaling launches what fits and records the rest as
    // failed activities with EC2's VcpuLimitExceeded message.
    let (fleet, _) = demo(47, 4, settings());
    fleet.sim.set_vcpu_quota(Some(f64::from(6 * VCPUS)));
    block_on(stepdeploy_core::ports::GroupWriter::set_desired_capacity(&fleet.sim, &fleet.group, 8)).unwrap();
    assert_eq!(fleet.sim.live_in_group(&fleet.group).len(), 6);
    let activities = block_on(stepdeploy_core::ports::GroupReader::scaling_activities(&fleet.sim, &fleet.group, 0)).unwrap();
    let failed = activities.iter().find(|a| a.is_failed_launch()).expect("a failed launch");
    assert!(failed.message.as_deref().unwrap_or_default().contains("vCPU limit of 12"), "{failed:?}");
}
