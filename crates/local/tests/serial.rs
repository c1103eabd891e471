//! End to end: statemachines/serial-deploy.asl.json on the ASL engine, the
//! step handlers in process, the simulated account on virtual time.

use std::sync::Arc;

use futures::executor::block_on;
use serde_json::json;
use stepdeploy_core::errors;
use stepdeploy_core::ports::Parameters;
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{SERIAL_DEPLOY, demo, demo_input, run};
use stepdeploy_sim::{ExternalEvent, Fault};

mod common;
use common::{assert_clean, deploy, settings};

#[tokio::test]
async fn serial_deploys_replace_every_instance_without_dropping_below_the_floor() {
    // (instances, min %, max %, the floor worked out by hand: ceil(n × min %), see the planner's table test)
    for (n, min, max, floor) in [(1, 100, 200, 1), (2, 100, 150, 2), (5, 90, 110, 5), (20, 50, 100, 10), (100, 100, 200, 100)] {
        let (fleet, config) = demo(n as u64, n, settings());
        let input = json!({"environment": "demo", "launch_template_version": "2", "min_healthy_percent": min, "max_healthy_percent": max});
        let summary = deploy(&fleet, config, input).await;
        assert_eq!(summary.status, "SUCCEEDED", "N={n}: {summary:?}");
        assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&(n as usize)), "N={n}: every instance on the new version");
        assert_eq!(summary.fleet.by_image.len(), 1, "N={n}: no old instance left");
        assert_eq!(summary.fleet.healthy, n as usize);
        assert!(summary.min_healthy_observed.unwrap() >= floor, "N={n}: healthy {:?} fell below {floor}", summary.min_healthy_observed);
        assert_eq!(summary.output.as_ref().unwrap()["instances"], json!(n), "N={n}");
        assert_clean(&fleet);
    }
}

#[tokio::test]
async fn new_instances_that_never_get_healthy_roll_back_within_the_timeout() {
    let (fleet, config) = demo(7, 4, settings());
    fleet.sim.make_image_unhealthy(&fleet.new.image_id);
    let started = fleet.sim.now();
    let summary = deploy(&fleet, config.clone(), demo_input()).await;
    assert_eq!(summary.status, "FAILED");
    assert_eq!(summary.error.as_deref(), Some(errors::ROLLOUT_FAILED));
    assert!(summary.cause.as_deref().unwrap().contains("new instances were not healthy 600 s after launch"), "{:?}", summary.cause);
    assert_eq!(summary.fleet.by_image.get(&fleet.old.image_id), Some(&4), "the old version is back: {:?}", summary.fleet.by_image);
    assert_eq!(summary.fleet.by_image.len(), 1, "no new instance is left");
    assert_eq!(summary.fleet.healthy, 4);
    let env = &config.environments["demo"];
    assert!(fleet.sim.now() - started <= (env.health.timeout_seconds + 2 * 600) as i64, "bounded by the health timeout plus the rollback");
    assert_eq!(fleet.sim.group_state(&fleet.group).map(|g| (g.0, g.1, g.2)), Some((1, 8, 4)), "original capacity and bounds");
    // The group points at the original version again (at a 100 % floor nothing old was relaunched,
    // so only this tells a finished rollback from one that left the group on the new version).
    let group = block_on(stepdeploy_core::ports::GroupReader::describe_group(&fleet.sim, &fleet.group)).unwrap();
    assert_eq!(group.settings.launch_template.and_then(|t| t.version).as_deref(), Some("1"));
    // And the floor held throughout, the rollback included: at min 100 % of 4, all 4 (counted by hand).
    assert_eq!(env.rollout.min_healthy_percent, 100);
    assert!(summary.min_healthy_observed.unwrap() >= 4, "{:?}", summary.min_healthy_observed);
    assert_clean(&fleet);
}

#[tokio::test]
async fn a_second_deploy_while_one_holds_the_lock_fails_at_once_naming_the_holder() {
    let (fleet, config) = demo(3, 2, settings());
    block_on(
        fleet
            .sim
            .create_parameter(&lock_parameter("demo", "demo"), r#"{"execution": "arn:aws:states:us-east-1:1:execution:serial:first", "since": 0}"#),
    )
    .unwrap();
    let before = fleet.sim.fingerprint();
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!(summary.error.as_deref(), Some(errors::ENVIRONMENT_LOCKED));
    assert!(summary.cause.as_deref().unwrap().contains("execution:serial:first"), "{:?}", summary.cause);
    assert_eq!(fleet.sim.fingerprint(), before, "nothing changed");
}

#[tokio::test]
async fn bad_input_fails_with_a_named_error_and_leaves_the_account_untouched() {
    let cases = [
        (json!({"environment": "nope", "launch_template_version": "2"}), "environment: \"nope\" is not defined"),
        (json!({"environment": "demo", "launch_template_version": "2", "min_healthy_percent": 120}), "min_healthy_percent: 120"),
        (json!({"environment": "demo"}), "launch_template_version: required"),
        (json!({"environment": "demo", "launch_template_version": "99"}), "launch_template_version: \"99\" is not a version"),
        (json!({"environment": "demo", "launch_template_version": "2", "typo": 1}), "typo: unknown field"),
        (json!("not an object"), "must be a JSON object"),
    ];
    for (input, expected) in cases {
        let (fleet, config) = demo(5, 2, settings());
        let before = fleet.sim.fingerprint();
        let summary = deploy(&fleet, config, input.clone()).await;
        assert_eq!(summary.error.as_deref(), Some(errors::INVALID_INPUT), "{input}");
        // The cause is the Lambda error document, as Step Functions reports it.
        let cause: serde_json::Value = serde_json::from_str(summary.cause.as_deref().unwrap_or_default()).unwrap();
        assert!(cause["errorMessage"].as_str().unwrap_or_default().contains(expected), "{input}: {cause}");
        assert_eq!(fleet.sim.fingerprint(), before, "{input}: the account is byte-for-byte unchanged");
    }
}

#[tokio::test]
async fn throttling_is_retried_without_duplicate_launches_or_terminations() {
    let (fleet, config) = demo(11, 4, settings());
    for op in ["SetDesiredCapacity", "TerminateInstanceInAutoScalingGroup", "DescribeAutoScalingGroups", "PutParameter"] {
        fleet.sim.inject_fault(Fault::throttle(op, 2));
    }
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&4));
    let launched = fleet.sim.calls().iter().filter(|c| c.operation == "TerminateInstanceInAutoScalingGroup" && !c.faulted).count();
    assert_eq!(launched, 4, "each old instance terminated exactly once");
    assert_clean(&fleet);
}

#[tokio::test]
async fn an_instance_scaled_in_by_someone_else_mid_deploy_does_not_stop_it() {
    for event in [ExternalEvent::ScaleIn { group: "demo-web".into(), count: 1 }, ExternalEvent::TerminateOne { group: "demo-web".into() }] {
        let (fleet, config) = demo(13, 5, settings());
        fleet.sim.schedule(fleet.sim.now() + 100, event.clone());
        let summary = deploy(&fleet, config, demo_input()).await;
        assert_eq!(summary.status, "SUCCEEDED", "{event:?}: {summary:?}");
        assert_eq!(summary.fleet.by_image.len(), 1, "{event:?}: all on the new version");
        assert_clean(&fleet);
    }
}

#[test]
fn every_error_name_the_state_machines_use_is_defined() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachines");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut names = Vec::new();
        collect_names(&value, &mut names);
        for name in names {
            checked += 1;
            assert!(
                name.starts_with("States.")
                    || errors::ALL.contains(&name.as_str())
                    || errors::LAMBDA_SERVICE_ERRORS.contains(&name.as_str())
                    || errors::STEP_FUNCTIONS_SERVICE_ERRORS.contains(&name.as_str()),
                "{name} is used in statemachines/ but not defined in crates/core/src/errors.rs"
            );
        }
    }
    assert!(checked > 0);
    assert!(errors::ALL.iter().all(|n| !n.starts_with("States.")));
}

fn collect_names(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == "ErrorEquals" {
                    out.extend(v.as_array().into_iter().flatten().filter_map(|n| n.as_str().map(str::to_string)));
                } else if k == "Error" && v.is_string() {
                    out.push(v.as_str().unwrap_or_default().to_string());
                } else {
                    collect_names(v, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_names(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_lambda_path_loads_the_environment_from_its_ssm_parameter() {
    use stepdeploy_core::config::parameter_name;
    use stepdeploy_core::steps::{ConfigSource, handle};
    let (fleet, config) = demo(31, 2, settings());
    let payload = json!({"input": demo_input(), "execution_id": "arn:aws:states:us-east-1:1:execution:serial:e1", "default_strategy": "rolling"});
    let missing = handle("prepare", &fleet.sim, ConfigSource::Parameters { deployment: "demo" }, &payload, fleet.sim.now()).await.unwrap_err();
    assert_eq!(missing.name, errors::INVALID_INPUT);
    assert!(
        missing.message.contains("no SSM parameter /stepdeploy/demo/demo") && missing.message.contains("stepdeploy config push demo"),
        "{missing}"
    );

    fleet.sim.put_parameter(&parameter_name("demo", "demo"), &config.environments["demo"].to_json()).await.unwrap();
    let deployment = handle("prepare", &fleet.sim, ConfigSource::Parameters { deployment: "demo" }, &payload, fleet.sim.now()).await.unwrap();
    assert_eq!(deployment["environment"], "demo");
    assert_eq!(deployment["rollout"]["target"]["launch_template_version"], "2");
}

#[tokio::test]
async fn a_step_that_runs_twice_after_a_crash_reaches_the_same_end_state() {
    use stepdeploy_core::steps::{ConfigSource, handle};
    let (fleet, config) = demo(41, 3, settings());
    let sim = &fleet.sim;
    let source = ConfigSource::Given(&config);
    let payload = json!({"input": demo_input(), "execution_id": "e1", "default_strategy": "rolling"});
    // Prepare twice (the first answer lost): same lock holder, processes suspended once.
    handle("prepare", sim, source, &payload, sim.now()).await.unwrap();
    let mut deployment = handle("prepare", sim, source, &payload, sim.now()).await.unwrap();
    assert_eq!(
        deployment["suspended_by_us"],
        json!(["AZRebalance", "AlarmNotification", "ScheduledActions"]),
        "the retry remembers what the first run suspended (from the lock parameter)"
    );
    let mut first_suspended = None;
    for _ in 0..200 {
        let step = json!({"deployment": deployment});
        // Every reconcile step is applied twice: the first answer is lost.
        handle("replace", sim, source, &step, sim.now()).await.unwrap();
        let desired_after_first = sim.group_state(&fleet.group).unwrap().2;
        deployment = handle("replace", sim, source, &step, sim.now()).await.unwrap();
        assert_eq!(sim.group_state(&fleet.group).unwrap().2, desired_after_first, "the retry launched or terminated nothing more");
        first_suspended.get_or_insert(sim.group_state(&fleet.group).unwrap().3);
        match deployment["step"]["next"].as_str() {
            Some("wait") => sim.advance(deployment["step"]["seconds"].as_i64().unwrap()),
            // The demo's checkpoint, and the bake waited out on a token: the pause step runs twice
            // too (the lock records one pause); the checkpoint is then approved, the bake's time is up.
            Some(next @ ("pause" | "bake")) => {
                let pause = json!({"deployment": deployment, "task_token": format!("token-{next}")});
                handle("pause", sim, source, &pause, sim.now()).await.unwrap();
                let puts = sim.calls().iter().filter(|c| c.operation == "PutParameter").count();
                handle("pause", sim, source, &pause, sim.now()).await.unwrap();
                assert_eq!(sim.calls().iter().filter(|c| c.operation == "PutParameter").count(), puts, "the retry wrote nothing");
                if next == "bake" {
                    sim.advance(deployment["step"]["seconds"].as_i64().unwrap());
                }
            }
            Some("done") => break,
            other => panic!("unexpected {other:?}: {deployment}"),
        }
    }
    assert_eq!(sim.live_in_group(&fleet.group).iter().filter(|(_, image)| image == &fleet.new.image_id).count(), 3);
    let terminated = sim.calls().iter().filter(|c| c.operation == "TerminateInstanceInAutoScalingGroup").count();
    assert_eq!(terminated, 3, "each old instance terminated once");
    let finish = json!({"deployment": deployment});
    handle("finish", sim, source, &finish, sim.now()).await.unwrap();
    handle("finish", sim, source, &finish, sim.now()).await.unwrap();
    assert!(sim.group_state(&fleet.group).unwrap().3.is_empty());
}

#[tokio::test]
async fn a_group_at_its_max_size_surges_within_the_policy_and_gets_its_max_back() {
    use stepdeploy_core::ports::{GroupUpdate, GroupWriter};
    let (fleet, config) = demo(51, 4, settings());
    let at_max = GroupUpdate { min_size: Some(4), max_size: Some(4), desired_capacity: Some(4), launch_template: None };
    block_on(fleet.sim.update_group(&fleet.group, &at_max)).unwrap();
    let most_live = Arc::new(std::sync::Mutex::new(0usize));
    let (watch, sim, group) = (most_live.clone(), fleet.sim.clone(), fleet.group.clone());
    let observer = Arc::new(move |_: &stepdeploy_core::steps::Deployment| {
        let mut most = watch.lock().unwrap();
        *most = (*most).max(sim.live_in_group(&group).len());
    });
    let input = json!({"environment": "demo", "launch_template_version": "2", "min_healthy_percent": 100, "max_healthy_percent": 150});
    let summary = run(&fleet.sim, config, SERIAL_DEPLOY, input, &fleet.group, observer).await.1;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&4));
    assert!(summary.min_healthy_observed.unwrap() >= 4, "never below 100 %");
    let most = *most_live.lock().unwrap();
    assert!(most > 4 && most <= 6, "the surge went past max 4 but stayed within 150 %: {most}");
    assert_eq!(fleet.sim.group_state(&fleet.group).map(|g| (g.0, g.1, g.2)), Some((4, 4, 4)), "min, max and desired are back");
    assert_clean(&fleet);
}

#[tokio::test]
async fn with_run_migrations_the_workers_update_and_migrate_before_any_web_instance_changes() {
    let (fleet, config) = demo(52, 3, settings());
    let input = json!({"environment": "demo", "launch_template_version": "2", "run_migrations": true, "revision": "2222222"});
    let summary = deploy(&fleet, config, input).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let output = summary.output.unwrap();
    assert_eq!(output["migrations_ran"], true);
    let names: Vec<_> = output["commands"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect();
    assert_eq!(names, [json!("worker_deploy"), json!("migrate")]);
    let calls = fleet.sim.calls();
    let position = |op: &str| calls.iter().position(|c| c.operation == op).unwrap();
    assert!(position("SendCommand") < position("SetDesiredCapacity").min(position("UpdateAutoScalingGroup")));
    assert_clean(&fleet);
}

#[tokio::test]
async fn a_failed_migration_in_a_serial_deploy_leaves_the_web_fleet_untouched() {
    let (fleet, config) = demo(53, 3, settings());
    fleet.sim.script_command(stepdeploy_sim::CommandScript {
        contains: "migrate".into(),
        instance_id: None,
        exit_code: 1,
        stdout: "Applying votes.0042_add_index...".into(),
        stderr: "could not obtain lock".into(),
        duration_seconds: 20,
    });
    let before = fleet.sim.live_in_group(&fleet.group);
    let input = json!({"environment": "demo", "launch_template_version": "2", "run_migrations": true});
    let summary = deploy(&fleet, config, input).await;
    assert_eq!(summary.error.as_deref(), Some(errors::COMMAND_FAILED), "{summary:?}");
    assert!(summary.cause.as_deref().unwrap().contains("could not obtain lock"));
    assert_eq!(fleet.sim.live_in_group(&fleet.group), before);
    assert!(!fleet.sim.calls().iter().any(|c| c.operation == "SetDesiredCapacity" || c.operation == "UpdateAutoScalingGroup"));
    assert_clean(&fleet);
}

#[tokio::test]
async fn every_reconcile_step_shows_which_instances_are_not_healthy_and_why() {
    let (fleet, config) = demo(54, 2, settings());
    fleet.sim.make_image_unhealthy(&fleet.new.image_id);
    let reasons = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = reasons.clone();
    let observer = Arc::new(move |d: &stepdeploy_core::steps::Deployment| {
        let step = d.step.as_ref().unwrap();
        assert!(step.not_healthy.iter().all(|h| !h.healthy && h.reason.is_some()), "{:?}", step.not_healthy);
        seen.lock().unwrap().extend(step.not_healthy.iter().filter(|h| h.on_target).filter_map(|h| h.reason.clone()));
    });
    let summary = run(&fleet.sim, config, SERIAL_DEPLOY, demo_input(), &fleet.group, observer).await.1;
    assert_eq!(summary.error.as_deref(), Some(errors::ROLLOUT_FAILED));
    let reasons = reasons.lock().unwrap();
    assert!(reasons.iter().any(|r| r.contains("target group")), "a new instance is reported unhealthy in its target group: {reasons:?}");
}

#[tokio::test]
async fn a_step_invocation_that_times_out_or_dies_in_lambda_is_retried_not_rolled_back() {
    // Sandbox.Timedout: the function ran past its timeout; Lambda.Unknown: it died without an
    // error document (out of memory). Steps are idempotent, so both are retried.
    for (step, error) in [("replace", "Sandbox.Timedout"), ("prepare", "Lambda.Unknown"), ("finish", "Sandbox.Timedout")] {
        let (fleet, config) = demo(21, 3, settings());
        fleet.sim.inject_lambda_fault(step, error, 1);
        let summary = deploy(&fleet, config, demo_input()).await;
        assert_eq!(summary.status, "SUCCEEDED", "{step} {error}: {summary:?}");
        assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&3), "{step} {error}: {summary:?}");
        assert!(fleet.sim.take_lambda_fault(step).is_none(), "{step}: the injected failure happened");
        assert_clean(&fleet);
    }
}

#[tokio::test]
async fn terminating_an_instance_auto_scaling_is_already_terminating_counts_as_done() {
    // Auto Scaling begins replacing an old instance between the snapshot and the call, and
    // rejects the terminate: what the step wanted is happening, so it carries on.
    let (fleet, config) = demo(22, 4, settings());
    fleet.sim.race_terminations(2);
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&4), "{summary:?}");
    assert_clean(&fleet);
}

#[tokio::test]
async fn an_update_refused_while_a_scaling_activity_is_in_progress_is_retried() {
    // ScalingActivityInProgress is transient (the AWS adapter classifies it so); the step is retried.
    let (fleet, config) = demo(23, 3, settings());
    fleet.sim.inject_fault(Fault {
        operation: "UpdateAutoScalingGroup".into(),
        kind: stepdeploy_core::ports::ErrorKind::Transient,
        code: "ScalingActivityInProgress".into(),
        remaining: 2,
        lost_response: false,
        skip: 0,
    });
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_clean(&fleet);
}

#[tokio::test]
async fn breaking_a_stale_lock_adopts_the_processes_its_holder_suspended() {
    // A deploy died holding the lock with AZRebalance suspended; the next one breaks the
    // stale lock, and must resume AZRebalance at its end rather than leave it suspended.
    let (fleet, config) = demo(24, 3, settings());
    let stale = json!({"execution": "arn:aws:states:us-east-1:123456789012:execution:serial-deploy:died", "since": fleet.sim.now() - 8000, "suspended": ["AZRebalance"]});
    fleet.sim.put_parameter_directly(&lock_parameter("demo", "demo"), &stale.to_string());
    block_on(stepdeploy_core::ports::ProcessControl::suspend_processes(&fleet.sim, &fleet.group, &["AZRebalance".to_string()])).unwrap();
    let mut input = demo_input();
    input["break_stale_lock"] = json!(true);
    let summary = deploy(&fleet, config, input).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_clean(&fleet);
}

#[tokio::test]
async fn processes_an_operator_suspended_before_the_deploy_stay_suspended_after_it() {
    // AZRebalance (one the deploy would suspend) and HealthCheck (one it wouldn't) were
    // suspended by an operator: the deploy resumes only what it suspended itself.
    use stepdeploy_core::ports::ProcessControl;
    let (fleet, config) = demo(25, 3, settings());
    let operators = vec!["AZRebalance".to_string(), "HealthCheck".to_string()];
    block_on(fleet.sim.suspend_processes(&fleet.group, &operators)).unwrap();
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let (_, _, _, mut suspended) = fleet.sim.group_state(&fleet.group).unwrap();
    suspended.sort();
    assert_eq!(suspended, operators, "the operator's processes are still suspended; the deploy's own are resumed");
    let lock = block_on(fleet.sim.get_parameter(&lock_parameter("demo", "demo"))).unwrap();
    assert!(lock.is_none());
}

#[tokio::test]
async fn each_reconcile_step_is_one_look_against_the_budget_prepare_gave_the_rollout() {
    // The budget the planner spends sooner looks from (#18) is the environment's share of the
    // history, set once at prepare; each replace step counts one look, none twice or skipped.
    let (fleet, config) = demo(61, 4, settings());
    let budget = stepdeploy_core::budget::rollout_looks(&config.environments["demo"]);
    let looks = Arc::new(std::sync::Mutex::new(Vec::<(u64, u64)>::new()));
    let seen = looks.clone();
    let observer = Arc::new(move |d: &stepdeploy_core::steps::Deployment| seen.lock().unwrap().push((d.rollout.looks, d.rollout.looks_budget)));
    let summary = run(&fleet.sim, config, SERIAL_DEPLOY, demo_input(), &fleet.group, observer).await.1;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let looks = looks.lock().unwrap();
    let counted: Vec<u64> = looks.iter().map(|(n, _)| *n).collect();
    assert_eq!(counted, (1..=looks.len() as u64).collect::<Vec<_>>());
    assert!(looks.iter().all(|(_, b)| *b == budget), "{looks:?}, expected {budget}");
    assert!(budget > 310, "the demo's share is more than the least (310 looks): {budget}");
}
