//! AWS behaviour the sim models and the workflows must survive (issue #14):
//! EC2 listing instances after Auto Scaling does, versions that keep their
//! AMI, and the other ways AWS is less kind than a plain in-memory account.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::executor::block_on;
use serde_json::json;
use stepdeploy_core::ports::{GroupReader, LaunchTemplates};
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{demo, demo_input, run};
use stepdeploy_sim::SimSettings;
use stepdeploy_sim::demo::DemoFleet;

mod common;
use common::{assert_clean, deploy, settings};

/// The group's instances that are terminating or gone.
fn ended(fleet: &DemoFleet) -> BTreeSet<String> {
    fleet.sim.ended_in_group(&fleet.group).into_iter().collect()
}

/// The launch template version the group points at.
fn group_version(fleet: &DemoFleet) -> Option<String> {
    block_on(fleet.sim.describe_group(&fleet.group)).unwrap().settings.launch_template.and_then(|t| t.version)
}

/// Live members of the group, with the launch template version Auto Scaling reports for each.
fn versions_in_group(fleet: &DemoFleet) -> Vec<Option<String>> {
    let group = block_on(fleet.sim.describe_group(&fleet.group)).unwrap();
    group.instances.iter().filter(|i| i.lifecycle.is_live()).map(|i| i.launch_template_version.clone()).collect()
}

#[tokio::test]
async fn an_instance_ec2_does_not_list_yet_is_never_taken_for_old_and_terminated() {
    // Auto Scaling lists a new instance before DescribeInstances does (EC2 eventual
    // consistency). Counted by its unknown AMI it looked old and unhealthy, and was the
    // first one terminated, again and again. The per-instance version says it is new.
    let (fleet, config) = demo(31, 4, settings());
    let old: BTreeSet<String> = fleet.sim.live_in_group(&fleet.group).into_iter().map(|(id, _)| id).collect();
    fleet.sim.set_ec2_listing_lag(stepdeploy_local::scenario::EC2_LAG_SECONDS);
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let ended = ended(&fleet);
    assert_eq!(ended, old, "the old instances, and only they, are terminated; also: {:?}", ended.difference(&old).collect::<Vec<_>>());
    assert!(summary.min_healthy_observed.unwrap() >= 4, "the floor held: {:?}", summary.min_healthy_observed);
    assert_clean(&fleet);
}

#[tokio::test]
async fn a_version_that_keeps_the_ami_still_replaces_every_instance() {
    // Version 3 changes what the launch template holds (user data, say) but not the AMI.
    let (fleet, config) = demo(32, 3, settings());
    let created = block_on(fleet.sim.create_version(&fleet.template, "2", &fleet.old.image_id, "same AMI, new user data")).unwrap();
    assert_eq!(created.version, 3);
    let summary = deploy(&fleet, config.clone(), json!({"environment": "demo", "launch_template_version": "3"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(versions_in_group(&fleet), vec![Some("3".to_string()); 3], "every instance replaced by one of version 3");
    assert_eq!(ended(&fleet).len(), 3, "no more terminations than instances");

    // And back to version 1, whose AMI is the same again.
    let summary = deploy(&fleet, config, json!({"environment": "demo", "launch_template_version": "1"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(versions_in_group(&fleet), vec![Some("1".to_string()); 3]);
    assert_clean(&fleet);
}

#[tokio::test]
async fn a_bake_waits_for_ec2_to_list_its_builder_and_image_and_launches_in_the_groups_subnet() {
    // The account has no default VPC: a builder launched without a subnet fails with
    // VPCIdNotSpecified. EC2 lists the builder and the image a while after making them;
    // until then they are not "gone".
    let (fleet, config) = demo(33, 2, SimSettings::default());
    fleet.sim.set_ec2_listing_lag(stepdeploy_local::scenario::EC2_LAG_SECONDS);
    let summary =
        run(&fleet.sim, config, stepdeploy_local::BAKE, json!({"environment": "demo", "revision": "4f2c9e1"}), &fleet.group, Arc::new(|_| {}))
            .await
            .1;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let launches: Vec<_> = fleet.sim.calls().into_iter().filter(|c| c.operation == "RunInstances" && !c.faulted).collect();
    assert_eq!(launches.len(), 1, "one builder");
    let subnets: Vec<&str> = launches[0].requests.iter().map(|r| r.resource.as_str()).filter(|r| r.contains(":subnet/")).collect();
    assert_eq!(subnets.len(), 1, "launched in one subnet: {subnets:?}");
    assert!(["a", "b", "c"].iter().any(|z| subnets[0].ends_with(&format!("subnet/subnet-us-east-1{z}"))), "one of the group's: {subnets:?}");
    let builders = fleet.sim.calls().into_iter().filter(|c| c.operation == "TerminateInstances" && !c.faulted).count();
    assert_eq!(builders, 1, "the builder is terminated");
}

#[test]
fn the_builder_launch_is_idempotent_and_placed_by_the_template_where_it_says() {
    use stepdeploy_core::ports::{InstanceLauncher, LaunchRequest, TemplateVersion};
    use stepdeploy_core::steps::bake::{builder_subnet, launch_token};
    // A retried begin whose first RunInstances succeeded (but whose response was lost)
    // gets the same instance back: the token is the execution's.
    let (fleet, _) = demo(34, 1, SimSettings::default());
    let token = launch_token("arn:aws:states:us-east-1:123456789012:execution:bake:e1");
    assert!(token.len() <= 64 && token.is_ascii(), "RunInstances takes at most 64 ASCII characters: {token}");
    assert_ne!(token, launch_token("arn:aws:states:us-east-1:123456789012:execution:bake:e2"));
    let request = LaunchRequest {
        launch_template: fleet.template.at_version("$Default"),
        image_id: None,
        instance_type: None,
        tags: Default::default(),
        subnet_id: Some("subnet-us-east-1b".into()),
        client_token: Some(token),
    };
    let first = block_on(fleet.sim.launch_instance(&request)).unwrap();
    assert_eq!(block_on(fleet.sim.launch_instance(&request)).unwrap(), first);
    let without_subnet = LaunchRequest { subnet_id: None, client_token: None, ..request };
    assert_eq!(block_on(fleet.sim.launch_instance(&without_subnet)).unwrap_err().code.as_deref(), Some("VPCIdNotSpecified"));

    let version = |interfaces: bool, subnet: Option<&str>| TemplateVersion {
        template_id: "lt-1".into(),
        template_name: "web".into(),
        version: 4,
        image_id: None,
        is_default: true,
        network_interfaces: interfaces,
        interface_subnet: subnet.map(str::to_string),
        instance_type: None,
        instance_profile: None,
    };
    let group = ["subnet-a".to_string(), "subnet-b".to_string()];
    let chosen = builder_subnet(&version(false, None), &group, "e1").unwrap().unwrap();
    assert!(group.contains(&chosen));
    assert_eq!(builder_subnet(&version(false, None), &group, "e1").unwrap(), Some(chosen), "the same on every retry");
    assert_eq!(builder_subnet(&version(true, Some("subnet-x")), &group, "e1"), Ok(None), "the template's interface places it");
    let refused = builder_subnet(&version(true, None), &group, "e1").unwrap_err();
    assert!(refused.contains("network interfaces without a subnet"), "{refused}");
    assert!(builder_subnet(&version(false, None), &[], "e1").unwrap_err().contains("no subnets"));
}

#[tokio::test]
async fn a_suspend_whose_response_was_lost_is_resumed_whether_prepare_is_retried_or_gives_up() {
    use stepdeploy_sim::Fault;
    // SuspendProcesses takes effect but its response is lost (a timeout): prepare fails,
    // and is retried. Forgetting what it recorded would leave the processes suspended for good.
    for (times, succeeds) in [(1, true), (20, false)] {
        let (fleet, config) = demo(35, 3, settings());
        fleet.sim.inject_fault(Fault::lost_response("SuspendProcesses", times));
        let summary = deploy(&fleet, config, demo_input()).await;
        assert_eq!(summary.status == "SUCCEEDED", succeeds, "{times} lost: {summary:?}");
        if !succeeds {
            assert_eq!(summary.error.as_deref(), Some(stepdeploy_core::errors::AWS_TRANSIENT), "{summary:?}");
        }
        assert_clean(&fleet);
    }
}

#[tokio::test]
async fn instances_held_in_lifecycle_hook_wait_states_are_waited_for_not_miscounted() {
    // Launch and terminate hooks hold instances in Pending:Wait and Terminating:Wait.
    let (fleet, config) = demo(36, 4, settings());
    fleet.sim.set_lifecycle_hooks(&fleet.group, 120);
    let started = fleet.sim.now();
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&4), "{summary:?}");
    assert!(summary.min_healthy_observed.unwrap() >= 4, "an instance in Pending:Wait is not healthy capacity: {:?}", summary.min_healthy_observed);
    assert!(fleet.sim.now() - started >= 120, "the hooks' waits were waited out");
    assert_clean(&fleet);
}

#[tokio::test]
async fn launches_that_keep_failing_fail_the_rollout_at_once_with_auto_scalings_reason() {
    let (fleet, config) = demo(37, 4, settings());
    stepdeploy_local::scenario::inject("launch-fails", "serial", &fleet).unwrap();
    let started = fleet.sim.now();
    let summary = deploy(&fleet, config.clone(), demo_input()).await;
    assert_eq!(summary.status, "FAILED", "{summary:?}");
    assert_eq!(summary.error.as_deref(), Some(stepdeploy_core::errors::ROLLOUT_FAILED));
    let cause = summary.cause.clone().unwrap_or_default();
    assert!(cause.contains("failed to launch new instances") && cause.contains("does not exist"), "{cause}");
    let health_timeout = config.environments["demo"].health.timeout_seconds as i64;
    assert!(fleet.sim.now() - started < health_timeout, "failed fast: {} s, not at a deadline", fleet.sim.now() - started);
    assert_eq!(summary.fleet.by_image.get(&fleet.old.image_id), Some(&4), "the old version serves: {summary:?}");
    assert_eq!(group_version(&fleet).as_deref(), Some("1"), "the group points at the original version again");
    assert_eq!(fleet.sim.group_state(&fleet.group).map(|g| g.2), Some(4), "desired back to 4: the surge's launches are not left asked for");
    assert_clean(&fleet);
}

#[tokio::test]
async fn instances_auto_scaling_keeps_replacing_for_health_fail_the_rollout_before_any_deadline() {
    // With the ELB health check type each unhealthy new instance is replaced, and each replacement
    // would get a fresh health timeout: the rollout waited out its whole deadline.
    let (fleet, config) = demo(38, 4, settings());
    stepdeploy_local::scenario::inject("health-replacements", "serial", &fleet).unwrap();
    let started = fleet.sim.now();
    let summary = deploy(&fleet, config.clone(), demo_input()).await;
    assert_eq!(summary.status, "FAILED", "{summary:?}");
    let cause = summary.cause.clone().unwrap_or_default();
    assert!(cause.contains("replaced") && cause.contains("health check"), "{cause}");
    let env = &config.environments["demo"];
    let elapsed = fleet.sim.now() - started;
    assert!(elapsed < (env.rollout.timeout_seconds / 2) as i64, "failed well before the rollout deadline: {elapsed} s");
    assert_eq!(summary.fleet.by_image.get(&fleet.old.image_id), Some(&4), "{summary:?}");
    assert_clean(&fleet);
}

/// A fault that makes Auto Scaling refuse `times` terminations (not retryable).
fn refused_terminations(times: u32) -> stepdeploy_sim::Fault {
    stepdeploy_sim::Fault {
        operation: "TerminateInstanceInAutoScalingGroup".into(),
        kind: stepdeploy_core::ports::ErrorKind::Invalid,
        code: "ValidationError".into(),
        remaining: times,
        lost_response: false,
        skip: 0,
    }
}

#[tokio::test]
async fn a_rollback_keeps_going_past_a_refused_termination_and_restores_the_group() {
    // New instances never get healthy; the rollback's first terminations are refused.
    let (fleet, config) = demo(39, 4, settings());
    fleet.sim.make_image_unhealthy(&fleet.new.image_id);
    fleet.sim.inject_fault(refused_terminations(2));
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!(summary.status, "FAILED");
    assert_eq!(summary.error.as_deref(), Some(stepdeploy_core::errors::ROLLOUT_FAILED), "the rollback finished: {summary:?}");
    assert_eq!(summary.fleet.by_image.get(&fleet.old.image_id), Some(&4), "{summary:?}");
    assert_eq!(summary.fleet.by_image.len(), 1, "no new instance left: {summary:?}");
    assert_eq!(fleet.sim.group_state(&fleet.group).map(|g| (g.0, g.1, g.2)), Some((1, 8, 4)), "original capacity and bounds");
    assert_eq!(group_version(&fleet).as_deref(), Some("1"));
    assert!(summary.min_healthy_observed.unwrap() >= 4, "the floor held through the rollback: {:?}", summary.min_healthy_observed);
    assert_clean(&fleet);
}

#[tokio::test]
async fn a_rollback_that_cannot_finish_fails_as_such_and_says_what_it_left() {
    let (fleet, config) = demo(40, 4, settings());
    fleet.sim.make_image_unhealthy(&fleet.new.image_id);
    fleet.sim.inject_fault(refused_terminations(10_000));
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!(summary.status, "FAILED");
    assert_eq!(summary.error.as_deref(), Some(stepdeploy_core::errors::ROLLBACK_FAILED), "{summary:?}");
    let cause = summary.cause.clone().unwrap_or_default();
    for part in [
        "the rollback did not finish",
        "of version 2 (the failed deploy's)",
        "of version 1 (the original)",
        "where it was 4",
        "AWS refused",
        "injected fault",
    ] {
        assert!(cause.contains(part), "{part:?} in {cause}");
    }
    assert!(cause.contains("The deploy itself failed with StepDeploy.RolloutFailed: new instances were not healthy"), "{cause}");
    assert_clean(&fleet);
}

#[tokio::test]
async fn a_rollback_step_that_fails_for_good_is_the_error_reported_with_the_deploys_own() {
    let (fleet, config) = demo(46, 2, settings());
    fleet.sim.make_image_unhealthy(&fleet.new.image_id);
    fleet.sim.inject_lambda_fault("rollback", stepdeploy_core::errors::AWS_ERROR, 1);
    let summary = deploy(&fleet, config, demo_input()).await;
    assert_eq!(summary.status, "FAILED");
    assert_eq!(summary.error.as_deref(), Some(stepdeploy_core::errors::ROLLBACK_FAILED), "{summary:?}");
    let cause = summary.cause.clone().unwrap_or_default();
    assert!(cause.starts_with("the rollback stopped: StepDeploy.AwsError"), "{cause}");
    assert!(cause.contains("The deploy itself failed with StepDeploy.RolloutFailed: new instances were not healthy"), "{cause}");
    assert_clean(&fleet);
}

#[tokio::test]
async fn a_rollout_leaves_the_zones_balanced_even_from_a_crowded_start() {
    for seed in 50..56 {
        let (fleet, config) = demo(seed, 6, settings());
        if seed % 2 == 0 {
            stepdeploy_local::scenario::inject("az-imbalance", "serial", &fleet).unwrap();
        }
        let input = json!({"environment": "demo", "launch_template_version": "2", "min_healthy_percent": 50, "max_healthy_percent": 100});
        let summary = deploy(&fleet, config, input).await;
        assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
        let counts = fleet.sim.zone_counts(&fleet.group);
        let (least, most) = (counts.values().min().copied().unwrap_or(0), counts.values().max().copied().unwrap_or(0));
        assert!(most - least <= 1, "seed {seed}: zones {counts:?}");
        assert_clean(&fleet);
    }
}

#[tokio::test]
async fn snapshots_ec2_still_reports_in_use_after_deregistering_are_deleted_by_a_later_prune() {
    use stepdeploy_local::BAKE;
    // A bake's image never becomes available; cleanup deregisters it, but EC2 refuses to
    // delete its snapshot for a while (InvalidSnapshot.InUse). Nothing may leak for good.
    let (fleet, config) = demo(47, 1, SimSettings::default());
    fleet.sim.set_snapshot_in_use_after_deregister(600);
    let before: BTreeSet<String> = fleet.sim.snapshot_ids().into_iter().collect();
    fleet.sim.make_images_never_available();
    let failed = run(&fleet.sim, config.clone(), BAKE, json!({"environment": "demo", "revision": "aaaaaaa"}), &fleet.group, Arc::new(|_| {})).await.1;
    assert_eq!(failed.error.as_deref(), Some(stepdeploy_core::errors::BAKE_FAILED), "{failed:?}");
    let left: BTreeSet<String> = fleet.sim.snapshot_ids().into_iter().filter(|s| !before.contains(s)).collect();
    assert_eq!(left.len(), 1, "the failed image's snapshot is still in use right after deregistering");

    // Hours later a bake succeeds, and its prune sweeps the orphan.
    fleet.sim.advance(6 * 3600);
    fleet.sim.make_images_available_again();
    let ok = run(&fleet.sim, config, BAKE, json!({"environment": "demo", "revision": "bbbbbbb"}), &fleet.group, Arc::new(|_| {})).await.1;
    assert_eq!(ok.status, "SUCCEEDED", "{ok:?}");
    let now: BTreeSet<String> = fleet.sim.snapshot_ids().into_iter().collect();
    assert!(left.is_disjoint(&now), "the orphan snapshot is gone: {now:?}");
}

#[tokio::test]
async fn a_command_whose_send_response_was_lost_runs_once_when_the_step_is_retried() {
    use stepdeploy_sim::Fault;
    // SendCommand reaches SSM but the step never hears back; the retried step must find the
    // command it sent (ListCommands, by its keyed comment), not run migrations twice.
    let (fleet, config) = demo(48, 2, settings());
    fleet.sim.inject_fault(Fault::lost_response("SendCommand", 2));
    let mut input = demo_input();
    input["run_migrations"] = json!(true);
    input["revision"] = json!("2222222");
    let summary = deploy(&fleet, config.clone(), input).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let sent = fleet.sim.commands_sent();
    assert_eq!(sent.iter().filter(|c| c.contains("migrate")).count(), 1, "migrations ran once: {sent:?}");
    assert_eq!(sent.iter().filter(|c| c.contains("deploy-worker")).count(), 1, "the worker deploy ran once: {sent:?}");

    // The bake script likewise.
    let (fleet, config) = demo(49, 1, SimSettings::default());
    fleet.sim.inject_fault(Fault::lost_response("SendCommand", 1));
    let summary =
        run(&fleet.sim, config, stepdeploy_local::BAKE, json!({"environment": "demo", "revision": "4f2c9e1"}), &fleet.group, Arc::new(|_| {}))
            .await
            .1;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(fleet.sim.commands_sent().len(), 1, "one bake script: {:?}", fleet.sim.commands_sent());
}

#[tokio::test]
async fn a_failure_whose_output_ssm_cut_says_so_and_where_the_whole_output_is() {
    // GetCommandInvocation returns the first 24,000 characters: the traceback at the end of
    // 1 MB of output never reaches the step. The failure must not pretend it is the whole story.
    for workflow in ["full", "worker", "bake"] {
        let (fleet, config) = demo(51, 2, settings());
        stepdeploy_local::scenario::inject("long-output", workflow, &fleet).unwrap();
        let (definition, input) = stepdeploy_local::scenario::definition_and_input(workflow, "demo").unwrap();
        let summary = run(&fleet.sim, config, definition, input, &fleet.group, Arc::new(|_| {})).await.1;
        assert_eq!(summary.status, "FAILED", "{workflow}: {summary:?}");
        let cause = summary.cause.clone().unwrap_or_default();
        assert!(cause.contains("SSM returned only the first 24000 characters"), "{workflow}: {cause}");
        assert!(cause.contains("CloudWatch Logs group /stepdeploy/demo/commands"), "{workflow}: {cause}");
        assert!(cause.len() < 10_000, "{workflow}: the cause stays short: {} bytes", cause.len());
        let groups = fleet.sim.command_log_groups();
        assert!(!groups.is_empty() && groups.iter().all(|g| g.as_deref() == Some("/stepdeploy/demo/commands")), "{workflow}: {groups:?}");
    }
}

#[tokio::test]
async fn a_lock_whose_holder_still_runs_is_never_stale_however_old() {
    // A legitimate run can outlast lock.stale_after_seconds (workers, migrations, a rollout and
    // its rollback). Step Functions, not the lock's age, says whether the holder is alive.
    let (fleet, config) = demo(52, 2, settings());
    let holder = "arn:aws:states:us-east-1:123456789012:execution:stepdeploy-demo-serial-deploy:long-one";
    let old = json!({"execution": holder, "since": fleet.sim.now() - 8000, "suspended": ["AZRebalance"]});
    fleet.sim.put_parameter_directly(&lock_parameter("demo", "demo"), &old.to_string());
    fleet.sim.set_execution_running(holder);
    let before = fleet.sim.fingerprint();
    let mut input = demo_input();
    input["break_stale_lock"] = json!(true);
    let summary = deploy(&fleet, config.clone(), input.clone()).await;
    assert_eq!(summary.error.as_deref(), Some(stepdeploy_core::errors::ENVIRONMENT_LOCKED), "{summary:?}");
    assert!(summary.cause.unwrap_or_default().contains("still running, so the lock is not stale"));
    assert_eq!(fleet.sim.fingerprint(), before, "the lock and the group are untouched");

    // Once it has ended, the same request breaks the lock.
    let (fleet, config) = demo(52, 2, settings());
    fleet.sim.put_parameter_directly(&lock_parameter("demo", "demo"), &old.to_string());
    let summary = deploy(&fleet, config, input).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
}

#[tokio::test]
async fn an_instance_auto_scaling_marks_unhealthy_mid_deploy_is_replaced_and_the_deploy_converges() {
    // The sim used to report every instance Healthy to Auto Scaling: an old one failing mid-deploy never happened.
    for seed in 60..64 {
        let (fleet, config) = demo(seed, 4, settings());
        stepdeploy_local::scenario::inject("instance-impaired", "serial", &fleet).unwrap();
        let summary = deploy(&fleet, config, demo_input()).await;
        assert_eq!(summary.status, "SUCCEEDED", "seed {seed}: {summary:?}");
        assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&4), "seed {seed}: {summary:?}");
        assert_eq!(summary.fleet.by_image.len(), 1);
        assert_clean(&fleet);
    }
}

#[tokio::test]
async fn terminations_auto_scaling_lists_late_are_not_asked_again_and_the_deploy_ends_as_it_should() {
    // The look after the last old instances go comes 2 s later (planner::SETTLE_SECONDS), and
    // looks around a boot 3 s apart. A read of Auto Scaling that doesn't see a termination yet
    // lists the instance InService (or Standby): taken for old, it was terminated again, Auto
    // Scaling refused ("already terminating") and the deploy failed with StepDeploy.AwsError.
    // The rollout remembers what it took out of service (planner::leaving) over such a read.
    let run_with = |lag: i64, instant_rollback: bool| async move {
        let (fleet, config) = demo(23, 4, settings());
        let mut config = (*config).clone();
        // Without instant rollback the old instances are terminated as they are replaced; with
        // it they wait in Standby and are terminated from there once the bake is over.
        config.environments["demo"].rollout.instant_rollback = instant_rollback;
        fleet.sim.set_asg_termination_listing_lag(lag);
        let (min, max, desired, _) = fleet.sim.group_state(&fleet.group).unwrap();
        let started = fleet.sim.now();
        let summary = deploy(&fleet, Arc::new(config), demo_input()).await;
        let case = format!("lag {lag}, instant rollback {instant_rollback}");
        assert_eq!(summary.status, "SUCCEEDED", "{case}: {summary:?}");
        assert_eq!(summary.fleet.by_image.get(&fleet.new.image_id), Some(&4), "{case}: {summary:?}");
        let (min_after, max_after, desired_after, _) = fleet.sim.group_state(&fleet.group).unwrap();
        assert_eq!((min_after, max_after, desired_after), (min, max, desired), "{case}: bounds and capacity as they began");
        assert_eq!(fleet.sim.healthy_in_group(&fleet.group).len(), 4, "{case}");
        assert_eq!(fleet.sim.launch_truth(&fleet.group, started).len(), 4, "{case}: one launch per instance");
        assert_eq!(ended(&fleet).len(), 4, "{case}: the four originals ended, nothing else");
        assert_clean(&fleet);
        let calls = fleet.sim.calls();
        let terminations: Vec<i64> = calls.iter().filter(|c| c.operation == "TerminateInstanceInAutoScalingGroup").map(|c| c.at).collect();
        // Some look came while a termination was still listed as it was: the case under test.
        let read_late = calls.iter().any(|c| c.operation == "DescribeAutoScalingGroups" && terminations.iter().any(|t| c.at > *t && c.at < t + lag));
        (terminations.len(), read_late)
    };
    for instant_rollback in [false, true] {
        let (on_time, _) = run_with(0, instant_rollback).await;
        // 20 s: longer than the look after the last terminations and than a warm-up look.
        let (late, read_late) = run_with(20, instant_rollback).await;
        assert!(read_late, "instant rollback {instant_rollback}: no look came within the lag; the test shows nothing");
        assert_eq!(late, on_time, "instant rollback {instant_rollback}: each instance is terminated once");
    }
}
