//! End to end: release and rebake, which run the bake and deploy state
//! machines as nested executions on the same engine, handlers and sim.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::executor::block_on;
use serde_json::{Value, json};
use stepdeploy_core::config::Config;
use stepdeploy_core::errors;
use stepdeploy_core::ports::{Images, Parameters};
use stepdeploy_core::steps::bake::tags;
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{REBAKE, RELEASE, Summary, demo, run};
use stepdeploy_sim::CommandScript;
use stepdeploy_sim::demo::DemoFleet;

mod common;
use common::settings;

async fn start(fleet: &DemoFleet, config: Arc<Config>, definition: &str, input: Value) -> Summary {
    run(&fleet.sim, config, definition, input, &fleet.group, Arc::new(|_| {})).await.1
}

fn error_message(summary: &Summary) -> String {
    let cause: Value = serde_json::from_str(summary.cause.as_deref().unwrap_or_default()).unwrap_or(Value::Null);
    cause["errorMessage"].as_str().map(str::to_string).unwrap_or_else(|| summary.cause.clone().unwrap_or_default())
}

fn assert_released(fleet: &DemoFleet) {
    assert!(block_on(fleet.sim.get_parameter(&lock_parameter("demo", "demo"))).unwrap().is_none(), "lock released");
    assert!(fleet.sim.group_state(&fleet.group).unwrap().3.is_empty(), "processes resumed");
}

fn script_for(fleet: &DemoFleet, revision: &str) {
    fleet.sim.script_command(CommandScript {
        contains: format!("stepdeploy-bake {revision}"),
        instance_id: None,
        exit_code: 0,
        stdout: format!("baked {revision}"),
        stderr: String::new(),
        duration_seconds: 300,
    });
}

#[tokio::test]
async fn a_release_bakes_deploys_the_new_version_and_prunes() {
    let (fleet, config) = demo(71, 3, settings());
    script_for(&fleet, "4f2c9e1");
    let summary = start(&fleet, config, RELEASE, json!({"environment": "demo", "revision": "4f2c9e1"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let output = summary.output.unwrap();
    let image_id = output["image_id"].as_str().unwrap().to_string();
    assert_eq!(
        (output["revision"].as_str(), output["deploy"].as_str(), output["launch_template_version"].as_u64()),
        (Some("4f2c9e1"), Some("serial"), Some(3))
    );
    assert_eq!(summary.fleet.by_image.get(&image_id), Some(&3), "every web instance runs the baked image: {:?}", summary.fleet.by_image);
    assert_eq!(summary.fleet.healthy, 3);
    assert!(summary.min_healthy_observed.unwrap() >= 3, "the nested serial deploy kept the floor");
    assert_released(&fleet);
}

#[tokio::test]
async fn a_full_release_runs_migrations_and_replaces_everything() {
    let (fleet, config) = demo(72, 2, settings());
    let input = json!({"environment": "demo", "revision": "4f2c9e1", "deploy": "full", "run_migrations": true});
    let summary = start(&fleet, config, RELEASE, input).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let image_id = summary.output.as_ref().unwrap()["image_id"].as_str().unwrap().to_string();
    assert_eq!(summary.fleet.by_image.get(&image_id), Some(&2));
    assert_eq!(
        fleet.sim.commands_sent(),
        ["/usr/local/bin/stepdeploy-bake 4f2c9e1", "/usr/local/bin/stepdeploy-deploy-worker 4f2c9e1", "/usr/local/bin/stepdeploy-migrate"],
        "the bake script, then the worker deploy and migrations of the same revision"
    );
    assert_released(&fleet);
}

#[tokio::test]
async fn a_bad_deploy_parameter_fails_the_release_before_anything_is_baked() {
    let cases = [
        (json!({"environment": "demo", "revision": "x", "min_healthy_percent": 300}), "min_healthy_percent: 300"),
        (json!({"environment": "demo", "revision": "x", "deploy": "canary"}), "deploy: \"canary\" is not allowed"),
        (json!({"environment": "demo"}), "revision: required"),
        (json!({"environment": "demo", "revision": "x", "launch_template_version": "3"}), "launch_template_version: unknown field"),
    ];
    for (input, expected) in cases {
        let (fleet, config) = demo(73, 2, settings());
        let before = fleet.sim.fingerprint();
        let summary = start(&fleet, config, RELEASE, input.clone()).await;
        assert_eq!(summary.error.as_deref(), Some(errors::INVALID_INPUT), "{input}: {summary:?}");
        assert!(error_message(&summary).contains(expected), "{input}: {}", error_message(&summary));
        assert_eq!(fleet.sim.fingerprint(), before, "{input}: nothing baked, nothing changed");
    }
}

#[tokio::test]
async fn a_failed_bake_fails_the_release_with_the_bakes_own_error_and_leaves_the_fleet() {
    let (fleet, config) = demo(74, 2, settings());
    fleet.sim.script_command(CommandScript {
        contains: "stepdeploy-bake".into(),
        instance_id: None,
        exit_code: 1,
        stdout: String::new(),
        stderr: "collectstatic: No such file or directory".into(),
        duration_seconds: 60,
    });
    let before = fleet.sim.live_in_group(&fleet.group);
    let summary = start(&fleet, config, RELEASE, json!({"environment": "demo", "revision": "4f2c9e1"})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::COMMAND_FAILED), "the nested bake's error, not States.TaskFailed: {summary:?}");
    assert!(error_message(&summary).contains("collectstatic: No such file"), "{}", error_message(&summary));
    assert_eq!(fleet.sim.live_in_group(&fleet.group), before);
    assert_eq!(summary.api_calls.get("SetDesiredCapacity"), None, "no deploy started");
}

#[tokio::test]
async fn a_rebake_bakes_the_revision_the_fleet_runs_and_can_skip_the_deploy() {
    let (fleet, config) = demo(75, 2, settings());
    // The running instances carry no revision tag of their own: their AMI's counts.
    for (id, _) in fleet.sim.live_in_group(&fleet.group) {
        fleet.sim.remove_tag(&id, tags::REVISION);
    }
    let running = BTreeMap::from([(tags::REVISION.to_string(), "a1b2c3d".to_string())]);
    fleet.sim.tag_ec2_resources(&[&fleet.old.image_id], &running);
    script_for(&fleet, "a1b2c3d");
    let before = fleet.sim.live_in_group(&fleet.group);
    let summary = start(&fleet, config.clone(), REBAKE, json!({"environment": "demo", "deploy": "none"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let output = summary.output.unwrap();
    assert_eq!((output["revision"].as_str(), output["revision_source"].as_str()), (Some("a1b2c3d"), Some("fleet")));
    let image = block_on(fleet.sim.describe_images(&[output["image_id"].as_str().unwrap().to_string()])).unwrap().remove(0);
    assert_eq!(image.tags.get(tags::REVISION).map(String::as_str), Some("a1b2c3d"));
    assert_eq!(fleet.sim.live_in_group(&fleet.group), before, "deploy none leaves the fleet");

    let summary = start(&fleet, config, REBAKE, json!({"environment": "demo"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let image_id = summary.output.unwrap()["image_id"].as_str().unwrap().to_string();
    assert_eq!(summary.fleet.by_image.get(&image_id), Some(&2), "a serial deploy by default");
    assert_released(&fleet);
}

#[tokio::test]
async fn a_rebake_falls_back_to_the_branch_and_otherwise_says_it_cannot_tell() {
    let (fleet, config) = demo(76, 1, settings());
    fleet.sim.remove_tag(&fleet.old.image_id, tags::REVISION);
    for (id, _) in fleet.sim.live_in_group(&fleet.group) {
        fleet.sim.remove_tag(&id, tags::REVISION);
    }
    let before = fleet.sim.fingerprint();
    let summary = start(&fleet, config.clone(), REBAKE, json!({"environment": "demo", "deploy": "none"})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::CONFIG_INVALID));
    assert!(error_message(&summary).contains("cannot tell which revision to rebake"), "{}", error_message(&summary));
    assert_eq!(fleet.sim.fingerprint(), before);

    let mut with_branch = (*config).clone();
    if let Some(env) = with_branch.environments.get_mut("demo") {
        env.branch = Some("main".into());
    }
    let summary = start(&fleet, Arc::new(with_branch), REBAKE, json!({"environment": "demo", "deploy": "none"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let output = summary.output.unwrap();
    assert_eq!((output["revision"].as_str(), output["revision_source"].as_str()), (Some("main"), Some("branch")));
}

#[tokio::test]
async fn a_rebake_prefers_the_instances_own_revision_tag() {
    let (fleet, config) = demo(77, 2, settings());
    // The demo's instances are tagged with the revision they were launched for.
    let summary = start(&fleet, config, REBAKE, json!({"environment": "demo", "deploy": "none"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(summary.output.unwrap()["revision"], "1111111");
}
