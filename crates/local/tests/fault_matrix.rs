//! Every workflow `stepdeploy local` runs, with every fault that applies to it
//! (#14's acceptance): it succeeds with the capacity floor held, or fails fast
//! with a named error whose cause says what happened, and either way leaves
//! the lock released and the processes it suspended resumed.

use std::sync::Arc;

use futures::executor::block_on;
use stepdeploy_core::errors;
use stepdeploy_core::ports::Parameters;
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{demo, run, scenario};
use stepdeploy_sim::SimSettings;

/// Faults that take capacity away by design (someone else scales in or kills an instance).
const REMOVE_CAPACITY: &[&str] = &["external-scale-in", "instance-dies", "instance-impaired"];

/// Workflows whose runs never take an instance out of service.
const NO_CAPACITY_CHANGE: &[&str] = &["worker", "maintenance-on", "maintenance-off", "bake"];

#[tokio::test]
async fn every_workflow_under_every_fault_holds_the_floor_or_fails_fast_with_a_named_error() {
    const INSTANCES: u32 = 4;
    let mut outcomes = Vec::new();
    for workflow in scenario::WORKFLOWS {
        let faults = scenario::FAULTS.iter().filter(|(_, applies)| applies.contains(workflow)).map(|(name, _)| Some(*name));
        for fault in std::iter::once(None).chain(faults) {
            let label = format!("{workflow} --fault {}", fault.unwrap_or("none"));
            let (fleet, config) = demo(5, INSTANCES, SimSettings::default());
            if let Some(fault) = fault {
                scenario::inject(fault, workflow, &fleet).unwrap();
            }
            let (definition, input) = scenario::definition_and_input(workflow, "demo").unwrap();
            scenario::set_up(workflow, &fleet, config.clone(), "demo").await.unwrap();
            let env = &config.environments["demo"];
            let started = fleet.sim.now();
            let summary = run(&fleet.sim, config.clone(), definition, input.clone(), &fleet.group, Arc::new(|_| {})).await.1;
            let elapsed = fleet.sim.now() - started;
            match summary.status {
                "SUCCEEDED" => {
                    let min_percent = input["min_healthy_percent"].as_u64().unwrap_or(env.rollout.min_healthy_percent as u64) as u32;
                    let floor = (INSTANCES * min_percent).div_ceil(100);
                    if !REMOVE_CAPACITY.contains(&fault.unwrap_or("")) && !NO_CAPACITY_CHANGE.contains(workflow) {
                        let lowest = summary.min_healthy_observed.unwrap_or(0);
                        assert!(lowest >= floor, "{label}: healthy fell to {lowest}, below the floor {floor}");
                    }
                }
                "FAILED" => {
                    let error = summary.error.clone().unwrap_or_default();
                    assert!(errors::ALL.contains(&error.as_str()), "{label}: failed with {error}, not a named StepDeploy error");
                    let cause = summary.cause.clone().unwrap_or_default();
                    assert!(cause.len() > 20, "{label}: the cause says what happened: {cause:?}");
                    // Never the whole rollout deadline when AWS had already said why.
                    assert!(!cause.contains("did not finish within its deadline"), "{label}: waited out the deadline: {cause}");
                    // And within the timeouts that apply (an image that never becomes available is only
                    // known at images.available_timeout_seconds: AWS never says it won't).
                    let c = &env.commands;
                    let bound = env.rollout.timeout_seconds
                        + c.worker_deploy.timeout_seconds
                        + c.migrate.timeout_seconds
                        + c.bake.timeout_seconds
                        + env.images.builder_online_timeout_seconds
                        + env.images.available_timeout_seconds;
                    assert!(elapsed < bound as i64, "{label}: failed after {elapsed} s");
                }
                other => panic!("{label}: {other}"),
            }
            let lock = block_on(fleet.sim.get_parameter(&lock_parameter("demo", "demo"))).unwrap();
            assert!(lock.is_none(), "{label}: the lock is released");
            let (_, _, _, suspended) = fleet.sim.group_state(&fleet.group).unwrap();
            assert!(suspended.is_empty(), "{label}: processes resumed: {suspended:?}");
            outcomes.push(format!("{label}: {} {}", summary.status, summary.error.unwrap_or_default()));
        }
    }
    println!("{}", outcomes.join("\n"));
    assert!(outcomes.len() > scenario::WORKFLOWS.len() * 2, "the matrix ran: {outcomes:?}");
}
