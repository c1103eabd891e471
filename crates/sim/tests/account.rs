//! The simulated account's timing and failure paths, through the ports.

use std::collections::BTreeMap;

use futures::executor::block_on;
use stepdeploy_core::model::{Lifecycle, TargetState};
use stepdeploy_core::ports::*;
use stepdeploy_sim::demo::{DemoFleet, DemoSize};
use stepdeploy_sim::{CommandScript, Dist, Fault, Sim, SimSettings};

/// A SendCommand through the demo deployment's document, with no revision.
fn command<'a>(instance_ids: &'a [String], text: &'a str, timeout_seconds: u64) -> CommandRequest<'a> {
    CommandRequest {
        document: "stepdeploy-demo-command",
        instance_ids,
        command: text,
        revision: "",
        timeout_seconds,
        comment: "",
        output_log_group: None,
    }
}

fn fixed() -> SimSettings {
    SimSettings {
        boot_seconds: Dist::Fixed(60.0),
        health_seconds: Dist::Fixed(30.0),
        deregistration_delay_seconds: 20,
        image_create_seconds: Dist::Fixed(300.0),
        ssm_online_seconds: Dist::Fixed(45.0),
        health_check_grace_seconds: 60,
        ec2_listing_lag_seconds: 0,
        snapshot_in_use_seconds: 0,
        asg_termination_listing_lag_seconds: 0,
    }
}

#[test]
fn a_new_instance_boots_registers_and_turns_healthy_on_the_clock() {
    let fleet = DemoFleet::build(1, DemoSize::of(1), fixed());
    let sim = &fleet.sim;
    block_on(sim.set_desired_capacity(&fleet.group, 2)).unwrap();
    let read = |sim: &Sim| {
        let group = block_on(sim.describe_group(&fleet.group)).unwrap();
        (group, block_on(sim.describe_target_health(&fleet.target_group_arn)).unwrap())
    };
    let (group, health) = read(sim);
    assert_eq!(group.instances.len(), 2);
    assert_eq!(health.len(), 1, "a Pending instance is not registered yet");
    sim.advance(60);
    let (_, health) = read(sim);
    assert!(health.iter().any(|t| t.state == TargetState::Initial), "{health:?}");
    sim.advance(30);
    assert_eq!(sim.healthy_in_group(&fleet.group).len(), 2);
}

#[test]
fn a_never_healthy_image_turns_unhealthy_after_the_grace_period() {
    let fleet = DemoFleet::build(1, DemoSize::of(1), fixed());
    let sim = &fleet.sim;
    sim.make_image_unhealthy(&fleet.new.image_id);
    let update = GroupUpdate { launch_template: Some(fleet.template.at_version("2")), desired_capacity: Some(2), ..GroupUpdate::default() };
    block_on(sim.update_group(&fleet.group, &update)).unwrap();
    sim.advance(60 + 60);
    let health = block_on(sim.describe_target_health(&fleet.target_group_arn)).unwrap();
    let unhealthy: Vec<_> = health.iter().filter(|t| t.state == TargetState::Unhealthy).collect();
    assert_eq!(unhealthy.len(), 1);
    assert_eq!(unhealthy[0].reason.as_deref(), Some("Target.FailedHealthChecks"));
}

#[test]
fn terminating_with_decrement_drains_then_disappears() {
    let fleet = DemoFleet::build(1, DemoSize::of(3), fixed());
    let sim = &fleet.sim;
    let victim = sim.healthy_in_group(&fleet.group)[0].clone();
    block_on(sim.terminate_instance(&victim, Decrement(true))).unwrap();
    let health = block_on(sim.describe_target_health(&fleet.target_group_arn)).unwrap();
    assert_eq!(health.iter().find(|t| t.instance_id == victim).map(|t| t.state.clone()), Some(TargetState::Draining));
    assert_eq!(sim.group_state(&fleet.group).map(|g| g.2), Some(2));
    sim.advance(20);
    let group = block_on(sim.describe_group(&fleet.group)).unwrap();
    assert!(group.instances.iter().all(|i| i.id != victim));
    assert_eq!(group.instances.len(), 2, "no replacement after a decrement");
    let again = block_on(sim.terminate_instance(&victim, Decrement(true))).unwrap_err();
    assert_eq!(again.kind, ErrorKind::Invalid);
}

#[test]
fn a_late_read_lists_a_terminated_instance_as_it_was_until_the_lag_is_over() {
    let fleet = DemoFleet::build(1, DemoSize::of(3), fixed());
    let sim = &fleet.sim;
    sim.set_asg_termination_listing_lag(10);
    let lifecycle_of = |id: &str| {
        let group = block_on(sim.describe_group(&fleet.group)).unwrap();
        group.instances.iter().find(|i| i.id == id).map(|i| i.lifecycle.clone())
    };
    let victim = sim.healthy_in_group(&fleet.group)[0].clone();
    block_on(sim.terminate_instance(&victim, Decrement(true))).unwrap();
    // Desired capacity is read fresh; the instance is listed InService for 10 s, then as it is.
    assert_eq!(sim.group_state(&fleet.group).map(|g| g.2), Some(2));
    sim.advance(9);
    assert_eq!(lifecycle_of(&victim), Some(Lifecycle::InService));
    sim.advance(1);
    assert_eq!(lifecycle_of(&victim), Some(Lifecycle::Terminating));
    // Terminated from Standby (which takes no drain): listed in Standby while the lag lasts.
    let kept = sim.healthy_in_group(&fleet.group)[0].clone();
    block_on(sim.enter_standby(&fleet.group, std::slice::from_ref(&kept))).unwrap();
    sim.advance(30);
    block_on(sim.terminate_instance(&kept, Decrement(false))).unwrap();
    assert_eq!(lifecycle_of(&kept), Some(Lifecycle::Standby));
    sim.advance(10);
    assert_eq!(lifecycle_of(&kept), None);
}

#[test]
fn capacity_outside_the_size_bounds_is_rejected_like_aws() {
    let fleet = DemoFleet::build(1, DemoSize { desired: 2, min: 2, max: 2 }, fixed());
    let sim = &fleet.sim;
    let err = block_on(sim.set_desired_capacity(&fleet.group, 3)).unwrap_err();
    assert_eq!(err.code.as_deref(), Some("ValidationError"));
    let id = sim.healthy_in_group(&fleet.group)[0].clone();
    let err = block_on(sim.terminate_instance(&id, Decrement(true))).unwrap_err();
    assert!(err.message.contains("min size"), "{err}");
    let fingerprint = sim.fingerprint();
    let err = block_on(sim.update_group(&fleet.group, &GroupUpdate { max_size: Some(1), ..GroupUpdate::default() })).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(sim.fingerprint(), fingerprint, "a rejected call changes nothing");
}

#[test]
fn suspended_launch_stops_the_group_replacing_instances() {
    let fleet = DemoFleet::build(1, DemoSize::of(2), fixed());
    let sim = &fleet.sim;
    block_on(sim.suspend_processes(&fleet.group, &["Launch".to_string()])).unwrap();
    let id = sim.healthy_in_group(&fleet.group)[0].clone();
    block_on(sim.terminate_instance(&id, Decrement(false))).unwrap();
    sim.advance(300);
    assert_eq!(sim.live_in_group(&fleet.group).len(), 1);
    block_on(sim.resume_processes(&fleet.group, &["Launch".to_string()])).unwrap();
    assert_eq!(sim.live_in_group(&fleet.group).len(), 2, "resuming launches the replacement");
    let bad = block_on(sim.suspend_processes(&fleet.group, &["Lunch".to_string()])).unwrap_err();
    assert!(bad.message.contains("Lunch"));
}

#[test]
fn injected_faults_fail_the_named_calls_then_recover_and_are_recorded() {
    let fleet = DemoFleet::build(1, DemoSize::of(1), fixed());
    let sim = &fleet.sim;
    sim.inject_fault(Fault::throttle("SetDesiredCapacity", 2));
    for _ in 0..2 {
        let err = block_on(sim.set_desired_capacity(&fleet.group, 2)).unwrap_err();
        assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Throttled, Some("Throttling")));
    }
    assert_eq!(sim.group_state(&fleet.group).map(|g| g.2), Some(1), "a faulted call changes nothing");
    block_on(sim.set_desired_capacity(&fleet.group, 2)).unwrap();
    let calls: Vec<_> = sim.calls().into_iter().filter(|c| c.operation == "SetDesiredCapacity").map(|c| c.faulted).collect();
    assert_eq!(calls, [true, true, false]);
    assert_eq!(sim.call_counts().get("SetDesiredCapacity"), Some(&3));
}

#[test]
fn ssm_commands_run_for_their_scripted_time_and_exit_code() {
    let sim = Sim::new(1, fixed());
    sim.register_image("ami-1", BTreeMap::new());
    let worker = sim.create_worker("ami-1", BTreeMap::from([("role".into(), "worker".into())]));
    sim.script_command(CommandScript {
        contains: "migrate".into(),
        instance_id: None,
        exit_code: 3,
        stdout: "Applying 0042_votes... FAILED".into(),
        stderr: "django.db.utils.IntegrityError".into(),
        duration_seconds: 40,
    });
    let ids = vec![worker];
    let ok = block_on(sim.send_command(&command(&ids, "collectstatic", 600))).unwrap();
    let failing = block_on(sim.send_command(&command(&ids, "manage.py migrate", 600))).unwrap();
    let slow_script = CommandScript {
        contains: "sleep".into(),
        instance_id: None,
        exit_code: 0,
        stdout: String::new(),
        stderr: String::new(),
        duration_seconds: 900,
    };
    sim.script_command(slow_script);
    let slow = block_on(sim.send_command(&command(&ids, "sleep 900", 60))).unwrap();
    let status = |id: &str| block_on(sim.invocations(id, &ids)).unwrap().remove(0);
    assert_eq!(status(&failing).status, CommandStatus::Running);
    sim.advance(40);
    assert_eq!(status(&ok).status, CommandStatus::Succeeded);
    let failed = status(&failing);
    assert_eq!((failed.status, failed.exit_code), (CommandStatus::Failed, Some(3)));
    assert!(failed.stdout.contains("0042_votes") && failed.stderr.contains("IntegrityError"));
    sim.advance(20);
    assert_eq!(status(&slow).status_detail, "TimedOut", "the command's own timeout ends it");
}

#[test]
fn a_builder_accepts_commands_only_once_online_in_ssm() {
    let fleet = DemoFleet::build(1, DemoSize::of(1), fixed());
    let sim = &fleet.sim;
    let request = LaunchRequest {
        launch_template: fleet.template.at_version("$Default"),
        image_id: None,
        instance_type: None,
        tags: BTreeMap::new(),
        subnet_id: Some("subnet-us-east-1a".into()),
        client_token: None,
    };
    let builder = block_on(sim.launch_instance(&request)).unwrap();
    let early = block_on(sim.send_command(&command(std::slice::from_ref(&builder), "bake", 600))).unwrap_err();
    assert_eq!(early.code.as_deref(), Some("InvalidInstanceId"));
    sim.advance(60 + 45);
    block_on(sim.send_command(&command(std::slice::from_ref(&builder), "bake", 600))).unwrap();
}

#[test]
fn images_become_available_after_their_creation_time_or_never() {
    let fleet = DemoFleet::build(1, DemoSize::of(1), fixed());
    let sim = &fleet.sim;
    let source = sim.healthy_in_group(&fleet.group)[0].clone();
    let tags = BTreeMap::from([("stepdeploy:environment".to_string(), "demo".to_string())]);
    let image = block_on(sim.create_image(&source, "demo-1", &tags)).unwrap();
    let state = |id: &str| block_on(sim.describe_images(&[id.to_string()])).unwrap()[0].state.clone();
    assert_eq!(state(&image), "pending");
    sim.advance(300);
    assert_eq!(state(&image), "available");
    let duplicate = block_on(sim.create_image(&source, "demo-1", &tags)).unwrap_err();
    assert_eq!(duplicate.code.as_deref(), Some("InvalidAMIName.Duplicate"));

    sim.make_images_never_available();
    let stuck = block_on(sim.create_image(&source, "demo-2", &tags)).unwrap();
    sim.advance(100_000);
    assert_eq!(state(&stuck), "pending");
    let found = block_on(sim.find_images(&tags)).unwrap();
    assert_eq!(found.len(), 2);
    for image in &found {
        block_on(sim.delete_image(image)).unwrap();
    }
    assert!(block_on(sim.find_images(&tags)).unwrap().is_empty());
}

#[test]
fn parameters_give_an_atomic_lock() {
    let sim = Sim::new(1, fixed());
    assert!(block_on(sim.create_parameter("/stepdeploy/app/staging/lock", "exec-1")).unwrap());
    assert!(!block_on(sim.create_parameter("/stepdeploy/app/staging/lock", "exec-2")).unwrap());
    assert_eq!(block_on(sim.get_parameter("/stepdeploy/app/staging/lock")).unwrap().map(|p| p.value), Some("exec-1".into()));
    assert!(block_on(sim.delete_parameter("/stepdeploy/app/staging/lock")).unwrap());
    assert!(!block_on(sim.delete_parameter("/stepdeploy/app/staging/lock")).unwrap());
}

#[test]
fn listener_rules_reject_a_taken_priority_and_an_oversized_body() {
    let fleet = DemoFleet::build(1, DemoSize::of(1), fixed());
    let sim = &fleet.sim;
    let page = |body: String| RuleSpec {
        path_patterns: vec!["/*".into()],
        source_ips: Vec::new(),
        action: RuleAction::FixedResponse(FixedResponse { status_code: 503, content_type: "text/html".into(), body }),
    };
    let arn = block_on(sim.create_rule(&fleet.listener_arn, 1, &page("down".into()), &BTreeMap::new())).unwrap();
    let taken = block_on(sim.create_rule(&fleet.listener_arn, 1, &page("again".into()), &BTreeMap::new())).unwrap_err();
    assert_eq!(taken.code.as_deref(), Some("PriorityInUse"));
    let big = block_on(sim.create_rule(&fleet.listener_arn, 2, &page("x".repeat(1025)), &BTreeMap::new())).unwrap_err();
    assert_eq!(big.kind, ErrorKind::Invalid);
    assert_eq!(block_on(sim.describe_rules(&fleet.listener_arn)).unwrap().len(), 2);
    assert!(block_on(sim.delete_rule(&arn)).unwrap());
}

#[test]
fn the_same_seed_gives_the_same_account() {
    let run = |seed| {
        let fleet = DemoFleet::build(seed, DemoSize::of(5), SimSettings::default());
        block_on(fleet.sim.set_desired_capacity(&fleet.group, 10)).unwrap();
        fleet.sim.advance(75);
        fleet.sim.fingerprint()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}
