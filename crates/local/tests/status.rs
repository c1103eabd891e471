//! `stepdeploy status`'s report (core::status) on the simulated account: a
//! fleet at rest, in the middle of a rollout, and with the lock held, the
//! page up and processes suspended.

use std::sync::{Arc, Mutex};

use futures::executor::block_on;
use serde_json::json;
use stepdeploy_core::ports::{Parameters, ProcessControl};
use stepdeploy_core::status::{EnvironmentStatus, environment_status};
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{MAINTENANCE, SERIAL_DEPLOY, demo, demo_input, run, run_with};
use stepdeploy_sim::SimSettings;
use stepdeploy_sim::demo::DemoFleet;

fn status_of(fleet: &DemoFleet, config: &stepdeploy_core::config::Config) -> EnvironmentStatus {
    block_on(environment_status(&fleet.sim, "demo", "demo", &config.environments["demo"], fleet.sim.now())).unwrap()
}

#[test]
fn a_fleet_at_rest_is_one_version_all_healthy_with_the_lock_free_and_the_page_off() {
    let (fleet, config) = demo(5, 4, SimSettings::default());
    let status = status_of(&fleet, &config);
    assert_eq!(status.versions.len(), 1, "{status:?}");
    assert_eq!(status.versions[0].image_id.as_deref(), Some(fleet.old.image_id.as_str()));
    assert_eq!((status.versions[0].instances, status.versions[0].healthy), (4, 4));
    assert_eq!(status.lock, None);
    assert_eq!(status.maintenance_on, Some(false));
    assert!(status.suspended_processes.is_empty());
    let text = status.to_text();
    assert!(text.contains("4 live, 4 healthy"), "{text}");
    assert!(text.contains("lock: free") && text.contains("maintenance page: off"), "{text}");
}

#[tokio::test]
async fn mid_rollout_it_shows_both_versions_and_why_new_instances_are_not_healthy_yet() {
    let (fleet, config) = demo(6, 4, SimSettings::default());
    let seen: Arc<Mutex<Vec<EnvironmentStatus>>> = Arc::default();
    let (sim, env, sink) = (fleet.sim.clone(), config.environments["demo"].clone(), seen.clone());
    let observe = Arc::new(move |name: &str, _: &serde_json::Value| {
        if name == "replace" {
            let status = block_on(environment_status(&sim, "demo", "demo", &env, sim.now())).unwrap();
            sink.lock().unwrap().push(status);
        }
    });
    let (_, summary) = run_with(&fleet.sim, config.clone(), SERIAL_DEPLOY, demo_input(), &fleet.group, Arc::new(|_| {}), observe).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let seen = seen.lock().unwrap();
    let mixed = seen.iter().find(|s| s.versions.len() == 2).expect("some step saw both versions");
    assert!(
        mixed.lock.as_ref().is_some_and(|l| l.execution.contains(":execution:serial-deploy:local-")),
        "the deploy holds the lock: {:?}",
        mixed.lock
    );
    assert!(seen.iter().any(|s| s.instances.iter().any(|i| !i.healthy && i.reason.is_some())), "a booting instance is listed with why");

    let after = status_of(&fleet, &config);
    assert_eq!(after.versions.len(), 1);
    assert_eq!(after.versions[0].image_id.as_deref(), Some(fleet.new.image_id.as_str()));
    assert_eq!(after.lock, None, "the deploy released the lock");
}

#[tokio::test]
async fn it_reports_the_lock_holder_suspended_processes_and_the_maintenance_page() {
    let (fleet, config) = demo(7, 2, SimSettings::default());
    let (_, summary) =
        run(&fleet.sim, config.clone(), MAINTENANCE, json!({"environment": "demo", "action": "on"}), &fleet.group, Arc::new(|_| {})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    fleet.sim.suspend_processes(&fleet.group, &["AZRebalance".to_string()]).await.unwrap();
    let since = fleet.sim.now() - 7300;
    let holder = json!({"execution": "arn:aws:states:us-east-1:1:execution:serial-deploy:demo-serial-x", "since": since, "suspended": []});
    fleet.sim.put_parameter(&lock_parameter("demo", "demo"), &holder.to_string()).await.unwrap();

    let status = status_of(&fleet, &config);
    assert_eq!(status.maintenance_on, Some(true));
    assert_eq!(status.suspended_processes, ["AZRebalance"]);
    let lock = status.lock.clone().unwrap();
    assert_eq!(lock.execution, "arn:aws:states:us-east-1:1:execution:serial-deploy:demo-serial-x");
    assert_eq!(lock.age_seconds, Some(7300));
    assert!(lock.stale, "older than lock.stale_after_seconds");
    let text = status.to_text();
    assert!(text.contains("maintenance page: ON") && text.contains("AZRebalance") && text.contains("7300 s, stale"), "{text}");
}

#[test]
fn the_guarding_alarms_show_in_config_order_with_why_one_fires_and_a_missing_one_named() {
    let (fleet, config) = demo(7, 2, SimSettings::default());
    let mut config = (*config).clone();
    config.environments["demo"].alarms.push("demo-never-created".into());
    let reason = "Threshold Crossed: 1 datapoint [9.0] was greater than the threshold (5.0).";
    fleet.sim.set_alarm_state(stepdeploy_sim::demo::DEMO_ALARMS[1], "ALARM", reason);
    let status = status_of(&fleet, &config);
    let states: Vec<(&str, &str)> = status.alarms.iter().map(|a| (a.name.as_str(), a.state.as_str())).collect();
    assert_eq!(states, [("demo-web-5xx", "OK"), ("demo-web-latency", "ALARM"), ("demo-never-created", "MISSING")]);
    let text = status.to_text();
    assert!(text.contains("alarm demo-web-5xx: OK\n"), "{text}");
    assert!(text.contains(&format!("alarm demo-web-latency: ALARM ({reason})")), "{text}");
    assert!(text.contains("alarm demo-never-created: MISSING (CloudWatch has no alarm of that name)"), "{text}");
    // One DescribeAlarms for all of them.
    assert_eq!(fleet.sim.call_counts().get("DescribeAlarms"), Some(&1));
}
