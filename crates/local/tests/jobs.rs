//! End to end: the stand-alone workflows (deploy-worker, maintenance,
//! autoscaling-processes) on the ASL engine, the handlers and the sim.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::executor::block_on;
use serde_json::{Value, json};
use stepdeploy_core::config::Config;
use stepdeploy_core::errors;
use stepdeploy_core::ports::{ListenerRules, Parameters, ProcessControl};
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{AUTOSCALING_PROCESSES, DEPLOY_WORKER, MAINTENANCE, Summary, demo, run};
use stepdeploy_sim::demo::DemoFleet;
use stepdeploy_sim::{CommandScript, SimSettings};

async fn start(fleet: &DemoFleet, config: Arc<Config>, definition: &str, input: Value) -> Summary {
    run(&fleet.sim, config, definition, input, &fleet.group, Arc::new(|_| {})).await.1
}

fn lock_is_free(fleet: &DemoFleet) -> bool {
    block_on(fleet.sim.get_parameter(&lock_parameter("demo", "demo"))).unwrap().is_none()
}

fn page_rules(fleet: &DemoFleet) -> usize {
    block_on(fleet.sim.describe_rules(&fleet.listener_arn)).unwrap().iter().filter(|r| r.priority.is_some()).count()
}

fn sent_commands(fleet: &DemoFleet) -> usize {
    fleet.sim.calls().iter().filter(|c| c.operation == "SendCommand" && !c.faulted).count()
}

fn error_message(summary: &Summary) -> String {
    let cause: Value = serde_json::from_str(summary.cause.as_deref().unwrap_or_default()).unwrap_or(Value::Null);
    cause["errorMessage"].as_str().unwrap_or_default().to_string()
}

fn script(contains: &str, exit_code: i32, stdout: &str, stderr: &str) -> CommandScript {
    CommandScript { contains: contains.into(), instance_id: None, exit_code, stdout: stdout.into(), stderr: stderr.into(), duration_seconds: 25 }
}

#[tokio::test]
async fn deploy_worker_updates_every_worker_then_migrates_once_and_reports_the_output() {
    let (fleet, config) = demo(31, 2, SimSettings::default());
    fleet.sim.create_worker(&fleet.old.image_id, BTreeMap::from([("role".to_string(), "worker".to_string())]));
    fleet.sim.script_command(script("stepdeploy-deploy-worker abc1234", 0, "celery restarted at abc1234", ""));
    fleet.sim.script_command(script("stepdeploy-migrate", 0, "Applying votes.0042_add_index... OK", ""));
    let web_before = fleet.sim.live_in_group(&fleet.group);
    let summary = start(&fleet, config, DEPLOY_WORKER, json!({"environment": "demo", "revision": "abc1234"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let output = summary.output.unwrap();
    assert_eq!(output["revision"], "abc1234");
    assert_eq!(output["migrations_ran"], true);
    let commands = output["commands"].as_array().unwrap();
    assert_eq!(commands.iter().map(|c| c["name"].as_str().unwrap()).collect::<Vec<_>>(), ["worker_deploy", "migrate"]);
    assert_eq!(commands[0]["results"].as_array().unwrap().len(), 2, "the worker deploy ran on both workers");
    assert_eq!(commands[0]["results"][0]["stdout_tail"], "celery restarted at abc1234", "{{revision}} was filled in");
    assert_eq!(commands[1]["results"].as_array().unwrap().len(), 1, "migrations ran on one worker");
    assert_eq!(commands[1]["results"][0]["exit_code"], 0);
    assert_eq!(fleet.sim.live_in_group(&fleet.group), web_before, "the web fleet is not touched");
    assert!(lock_is_free(&fleet));
}

#[tokio::test]
async fn deploy_worker_can_skip_migrations() {
    let (fleet, config) = demo(32, 1, SimSettings::default());
    let summary = start(&fleet, config, DEPLOY_WORKER, json!({"environment": "demo", "run_migrations": false})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(summary.output.unwrap()["commands"].as_array().unwrap().len(), 1);
    assert_eq!(sent_commands(&fleet), 1);
    assert!(lock_is_free(&fleet));
}

#[tokio::test]
async fn a_failed_worker_deploy_stops_before_migrations_and_carries_the_output() {
    let (fleet, config) = demo(33, 1, SimSettings::default());
    fleet.sim.script_command(script(
        "stepdeploy-deploy-worker",
        3,
        "pip install -r requirements.txt",
        "ERROR: No matching distribution for Django==9.9",
    ));
    let summary = start(&fleet, config, DEPLOY_WORKER, json!({"environment": "demo"})).await;
    assert_eq!(summary.status, "FAILED");
    assert_eq!(summary.error.as_deref(), Some(errors::COMMAND_FAILED));
    let message = error_message(&summary);
    assert!(message.contains("worker_deploy failed") && message.contains("exit code 3") && message.contains("Django==9.9"), "{message}");
    assert_eq!(sent_commands(&fleet), 1, "migrations never started");
    assert!(lock_is_free(&fleet));
}

#[tokio::test]
async fn the_maintenance_page_goes_up_and_down_and_stays_as_asked() {
    let (fleet, config) = demo(34, 2, SimSettings::default());
    let mut config = (*config).clone();
    if let Some(env) = config.environments.get_mut("demo") {
        env.maintenance.allowed_cidrs = vec!["203.0.113.0/24".into()];
    }
    let config = Arc::new(config);
    for _ in 0..2 {
        let summary = start(&fleet, config.clone(), MAINTENANCE, json!({"environment": "demo", "action": "on"})).await;
        assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
        assert_eq!(summary.output.as_ref().unwrap()["maintenance"], "on");
        assert_eq!(page_rules(&fleet), 2, "the page and the bypass rule, once each (on is idempotent)");
        assert!(lock_is_free(&fleet), "the lock is released, the page stays");
    }
    let summary = start(&fleet, config.clone(), MAINTENANCE, json!({"environment": "demo", "action": "off"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(page_rules(&fleet), 0);
    assert!(lock_is_free(&fleet));
}

#[tokio::test]
async fn a_stand_alone_workflow_fails_at_once_naming_the_lock_holder() {
    for (definition, input) in [
        (MAINTENANCE, json!({"environment": "demo", "action": "on"})),
        (DEPLOY_WORKER, json!({"environment": "demo"})),
        (AUTOSCALING_PROCESSES, json!({"environment": "demo", "action": "resume"})),
    ] {
        let (fleet, config) = demo(35, 2, SimSettings::default());
        let holder = r#"{"execution": "arn:aws:states:us-east-1:1:execution:serial-deploy:running", "since": 0, "suspended": ["AZRebalance"]}"#;
        block_on(fleet.sim.create_parameter(&lock_parameter("demo", "demo"), holder)).unwrap();
        block_on(fleet.sim.suspend_processes(&fleet.group, &["AZRebalance".to_string()])).unwrap();
        let before = fleet.sim.fingerprint();
        let summary = start(&fleet, config, definition, input.clone()).await;
        assert_eq!(summary.error.as_deref(), Some(errors::ENVIRONMENT_LOCKED), "{input}");
        assert!(summary.cause.as_deref().unwrap().contains("serial-deploy:running"), "{input}: {:?}", summary.cause);
        assert_eq!(fleet.sim.fingerprint(), before, "{input}: nothing changed, the running deploy's lock included");
    }
}

#[tokio::test]
async fn autoscaling_processes_suspends_and_resumes_only_what_it_is_told() {
    let (fleet, config) = demo(36, 2, SimSettings::default());
    block_on(fleet.sim.suspend_processes(&fleet.group, &["Launch".to_string()])).unwrap();
    let summary = start(&fleet, config.clone(), AUTOSCALING_PROCESSES, json!({"environment": "demo", "action": "suspend"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let suspended = |fleet: &DemoFleet| {
        let mut s = fleet.sim.group_state(&fleet.group).unwrap().3;
        s.sort();
        s
    };
    assert_eq!(suspended(&fleet), ["AZRebalance", "AlarmNotification", "Launch", "ScheduledActions"], "the configured list, by default");
    let mut reported: Vec<String> = serde_json::from_value(summary.output.unwrap()["suspended_processes"].clone()).unwrap();
    reported.sort();
    assert_eq!(reported, suspended(&fleet));
    assert!(lock_is_free(&fleet));

    let input = json!({"environment": "demo", "action": "resume", "processes": ["AZRebalance", "ScheduledActions", "AlarmNotification"]});
    let summary = start(&fleet, config, AUTOSCALING_PROCESSES, input).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(suspended(&fleet), ["Launch"], "a process it was not told about stays suspended");
    assert!(lock_is_free(&fleet));
}

#[tokio::test]
async fn bad_input_to_a_stand_alone_workflow_fails_with_a_named_error_and_changes_nothing() {
    let cases = [
        (MAINTENANCE, json!({"environment": "demo"}), "action: required; expected \"on\" or \"off\""),
        (MAINTENANCE, json!({"environment": "demo", "action": "maybe"}), "action: \"maybe\" is not allowed"),
        (MAINTENANCE, json!({"environment": "prod", "action": "on"}), "environment: \"prod\" is not defined"),
        (DEPLOY_WORKER, json!({"environment": "demo", "run_migrations": "yes"}), "run_migrations: \"yes\" is not allowed"),
        (DEPLOY_WORKER, json!({"environment": "demo", "launch_template_version": "2"}), "launch_template_version: unknown field"),
        (AUTOSCALING_PROCESSES, json!({"environment": "demo", "action": "suspend", "processes": ["Launch", "Bogus"]}), "processes[1]: \"Bogus\""),
        (AUTOSCALING_PROCESSES, json!({"environment": "demo", "action": "pause"}), "action: \"pause\" is not allowed"),
        (AUTOSCALING_PROCESSES, json!([1, 2]), "must be a JSON object"),
    ];
    for (definition, input, expected) in cases {
        let (fleet, config) = demo(37, 2, SimSettings::default());
        let before = fleet.sim.fingerprint();
        let summary = start(&fleet, config, definition, input.clone()).await;
        assert_eq!(summary.error.as_deref(), Some(errors::INVALID_INPUT), "{input}: {summary:?}");
        let message = error_message(&summary);
        assert!(message.contains(expected), "{input}: {message}");
        assert_eq!(fleet.sim.fingerprint(), before, "{input}: the account is byte-for-byte unchanged");
    }
}

#[test]
fn a_step_given_no_action_or_a_wrong_one_says_so_as_the_input_wrote_it() {
    use stepdeploy_core::steps::{ConfigSource, handle};
    let (fleet, config) = demo(3, 1, SimSettings::default());
    let cases = [
        ("command", json!({"deployment": {}}), "action: required; expected \"start\" or \"poll\""),
        ("command", json!({"action": "begin", "deployment": {}}), "action: \"begin\" is not allowed; expected \"start\" or \"poll\""),
        ("bake", json!({}), "action: required; expected \"begin\" or \"advance\" or \"cleanup\""),
        ("bake", json!({"action": 7}), "action: 7 is not allowed; expected \"begin\" or \"advance\" or \"cleanup\""),
    ];
    for (step, payload, expected) in cases {
        let error = block_on(handle(step, &fleet.sim, ConfigSource::Given(&config), &payload, fleet.sim.now())).unwrap_err();
        assert_eq!((error.name, error.message.as_str()), (errors::INVALID_INPUT, expected), "{step} {payload}");
    }
}

#[tokio::test]
async fn a_worker_deploy_to_more_workers_than_one_send_command_takes_sends_in_chunks_and_polls_them_all() {
    // SendCommand takes at most 50 instance ids; 120 workers need three.
    let (fleet, config) = demo(33, 1, SimSettings::default());
    for _ in 1..120 {
        fleet.sim.create_worker(&fleet.old.image_id, BTreeMap::from([("role".to_string(), "worker".to_string())]));
    }
    let summary = start(&fleet, config, DEPLOY_WORKER, json!({"environment": "demo", "revision": "abc1234"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let output = summary.output.unwrap();
    let commands = output["commands"].as_array().unwrap();
    assert_eq!((commands[0]["instances"].as_u64(), commands[0]["succeeded"].as_u64()), (Some(120), Some(120)), "every worker's result is read");
    assert_eq!(commands[0]["commands"].as_u64(), Some(3), "in three chunks");
    assert_eq!(commands[0]["results"].as_array().unwrap().len(), stepdeploy_core::steps::RESULTS_KEPT, "the record keeps a few results, not 120");
    let sent = fleet.sim.commands_as_sent();
    let worker_deploys = sent.iter().filter(|(text, _)| text.contains("stepdeploy-deploy-worker")).count();
    assert_eq!(worker_deploys, 120_usize.div_ceil(50), "{sent:?}");
    assert!(lock_is_free(&fleet));
}
