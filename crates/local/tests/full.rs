//! End to end: statemachines/full-deploy.asl.json with maintenance page and migrations.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::executor::block_on;
use serde_json::json;
use stepdeploy_core::config::Config;
use stepdeploy_core::errors;
use stepdeploy_core::ports::{FixedResponse, ListenerRules, Parameters, RuleAction, RuleSpec};
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{FULL_DEPLOY, Summary, demo, run};
use stepdeploy_sim::CommandScript;
use stepdeploy_sim::demo::DemoFleet;

mod common;
use common::settings;

fn maintenance_rules(fleet: &DemoFleet) -> usize {
    block_on(fleet.sim.describe_rules(&fleet.listener_arn)).unwrap().iter().filter(|r| r.priority.is_some()).count()
}

async fn full(fleet: &DemoFleet, config: Arc<Config>, input: serde_json::Value) -> (Summary, usize) {
    // Watch the page during the replacement.
    let seen = Arc::new(Mutex::new(0));
    let (watch, sim, listener) = (seen.clone(), fleet.sim.clone(), fleet.listener_arn.clone());
    let observer = Arc::new(move |_: &stepdeploy_core::steps::Deployment| {
        let rules = block_on(sim.describe_rules(&listener)).unwrap().iter().filter(|r| r.priority.is_some()).count();
        let mut max = watch.lock().unwrap();
        *max = (*max).max(rules);
    });
    let summary = run(&fleet.sim, config, FULL_DEPLOY, input, &fleet.group, observer).await.1;
    let max = *seen.lock().unwrap();
    (summary, max)
}

fn assert_released(fleet: &DemoFleet) {
    assert!(block_on(fleet.sim.get_parameter(&lock_parameter("demo", "demo"))).unwrap().is_none(), "lock released");
    assert!(fleet.sim.group_state(&fleet.group).unwrap().3.is_empty(), "processes resumed");
}

#[tokio::test]
async fn a_full_deploy_runs_migrations_behind_the_maintenance_page() {
    let (fleet, config) = demo(21, 4, settings());
    let (summary, page_rules_seen) =
        full(&fleet, config, json!({"environment": "demo", "launch_template_version": "2", "run_migrations": true, "revision": "2222222"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&4));
    assert_eq!(summary.output.as_ref().unwrap()["migrations_ran"], true);
    assert_eq!(page_rules_seen, 1, "the page was up while instances were replaced");
    assert_eq!(maintenance_rules(&fleet), 0, "and it is down now");
    assert_eq!(summary.api_calls.get("SendCommand"), Some(&2), "the worker deploy, then migrations");
    let commands: Vec<_> = summary.output.as_ref().unwrap()["commands"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect();
    assert_eq!(commands, vec![json!("worker_deploy"), json!("migrate")]);
    assert_released(&fleet);
}

#[tokio::test]
async fn a_failed_migration_leaves_the_fleet_untouched_holds_the_page_and_shows_the_output() {
    let (fleet, config) = demo(22, 3, settings());
    fleet.sim.script_command(CommandScript {
        contains: "migrate".into(),
        instance_id: None,
        exit_code: 1,
        stdout: "Applying votes.0042_add_index... ".into(),
        stderr: "django.db.utils.OperationalError: could not obtain lock".into(),
        duration_seconds: 30,
    });
    let before: Vec<_> = fleet.sim.live_in_group(&fleet.group);
    let (summary, _) = full(&fleet, config, json!({"environment": "demo", "launch_template_version": "2", "run_migrations": true})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::COMMAND_FAILED));
    // The step's error document, then what the state machine adds: the page stays up, and how to lift it.
    let raw = summary.cause.as_deref().unwrap();
    let document = serde_json::Deserializer::from_str(raw).into_iter::<serde_json::Value>().next().unwrap().unwrap();
    let message = document["errorMessage"].as_str().unwrap();
    assert!(message.contains("exit code 1") && message.contains("could not obtain lock") && message.contains("0042_add_index"), "{message}");
    assert!(raw.ends_with("(The maintenance page stays up, as maintenance.hold_on_migration_failure says: take it down with stepdeploy maintenance off once the migration is fixed.)"), "{raw}");
    assert_eq!(fleet.sim.live_in_group(&fleet.group), before, "the web fleet is untouched");
    assert_eq!(maintenance_rules(&fleet), 1, "the page is held (maintenance.hold_on_migration_failure)");
    assert_released(&fleet);
}

#[tokio::test]
async fn without_the_hold_policy_a_failed_migration_lifts_the_page() {
    let (fleet, config) = demo(23, 2, settings());
    let mut config = (*config).clone();
    if let Some(env) = config.environments.get_mut("demo") {
        env.maintenance.hold_on_migration_failure = false;
        env.maintenance.allowed_cidrs = vec!["203.0.113.0/24".into()];
    }
    fleet.sim.script_command(CommandScript {
        contains: "migrate".into(),
        instance_id: None,
        exit_code: 2,
        stdout: String::new(),
        stderr: "boom".into(),
        duration_seconds: 5,
    });
    let (summary, _) = full(&fleet, Arc::new(config), json!({"environment": "demo", "launch_template_version": "2", "run_migrations": true})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::COMMAND_FAILED));
    assert_eq!(maintenance_rules(&fleet), 0);
    assert_released(&fleet);
}

#[tokio::test]
async fn a_foreign_rule_at_the_maintenance_priority_stops_the_deploy_before_any_change() {
    let (fleet, config) = demo(24, 2, settings());
    let foreign = RuleSpec {
        path_patterns: vec!["/admin/*".into()],
        source_ips: Vec::new(),
        action: RuleAction::FixedResponse(FixedResponse { status_code: 403, content_type: "text/plain".into(), body: "no".into() }),
    };
    block_on(fleet.sim.create_rule(&fleet.listener_arn, 1, &foreign, &BTreeMap::new())).unwrap();
    let before = fleet.sim.live_in_group(&fleet.group);
    let (summary, _) = full(&fleet, config, json!({"environment": "demo", "launch_template_version": "2"})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::CONFIG_INVALID), "{summary:?}");
    assert!(summary.cause.as_deref().unwrap().contains("maintenance.rule_priority"));
    assert_eq!(fleet.sim.live_in_group(&fleet.group), before);
    assert_eq!(maintenance_rules(&fleet), 1, "the foreign rule is left alone");
    assert_released(&fleet);
}

#[tokio::test]
async fn a_failed_worker_deploy_lifts_the_page_even_under_the_hold_policy() {
    // The hold is for a half-migrated schema; a worker deploy failure comes before any migration.
    let (fleet, config) = demo(25, 2, settings());
    assert!(config.environments["demo"].maintenance.hold_on_migration_failure);
    fleet.sim.script_command(CommandScript {
        contains: "stepdeploy-deploy-worker".into(),
        instance_id: None,
        exit_code: 1,
        stdout: String::new(),
        stderr: "git: revision not found".into(),
        duration_seconds: 5,
    });
    let before = fleet.sim.live_in_group(&fleet.group);
    let (summary, _) = full(&fleet, config, json!({"environment": "demo", "launch_template_version": "2", "run_migrations": true})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::COMMAND_FAILED));
    assert!(summary.cause.as_deref().unwrap().contains("revision not found"));
    assert_eq!(fleet.sim.live_in_group(&fleet.group), before);
    assert_eq!(maintenance_rules(&fleet), 0);
    assert_eq!(summary.api_calls.get("SendCommand"), Some(&1), "migrations never started");
    assert_released(&fleet);
}
