//! Failures after a side effect (#19 item 1): for every workflow, every AWS
//! call of a clean run is made to fail in turn, for good (a non-retryable
//! error), after the calls before it succeeded. Whatever fails, the run must
//! end with the environment in a state an operator can trust: the lock
//! released, the processes it suspended resumed, the page down, and the
//! group either on the new version or back on the original at its original
//! capacity, no bake builder running; or, where it could not get there, an
//! error that says what is left.

use std::sync::Arc;

use futures::executor::block_on;
use stepdeploy_core::errors;
use stepdeploy_core::ports::{ErrorKind, GroupReader, InstanceReader, ListenerRules, Parameters, RuleAction};
use stepdeploy_core::steps::bake::tags;
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{demo, run, scenario};
use stepdeploy_sim::demo::DemoFleet;
use stepdeploy_sim::{Fault, SimSettings};

/// The n-th call of the run fails with a validation error (not retried).
fn nth_call_fails(n: u32) -> Fault {
    Fault { operation: "*".into(), kind: ErrorKind::Invalid, code: "ValidationError".into(), remaining: 1, lost_response: false, skip: n }
}

/// What is wrong with the environment after a run, if anything.
fn problems(fleet: &DemoFleet, workflow: &str, summary: &stepdeploy_local::Summary) -> Vec<String> {
    let mut out = Vec::new();
    let explained = summary.cause.as_deref().unwrap_or_default();
    if block_on(fleet.sim.get_parameter(&lock_parameter("demo", "demo"))).unwrap().is_some() && !explained.contains("lock") {
        out.push("the lock is still held and the error doesn't say so".to_string());
    }
    let (_, _, desired, suspended) = fleet.sim.group_state(&fleet.group).unwrap();
    if !suspended.is_empty() && !explained.contains("suspended") && !explained.contains("resum") {
        out.push(format!("processes left suspended ({suspended:?}) and the error doesn't say so"));
    }
    let page_up = block_on(fleet.sim.describe_rules(&fleet.listener_arn))
        .unwrap()
        .iter()
        .any(|r| matches!(&r.spec.action, RuleAction::FixedResponse(f) if f.status_code == 503));
    if page_up && workflow != "maintenance-on" && !explained.contains("page") && !explained.contains("maintenance") {
        out.push("the maintenance page is left up and the error doesn't say so".to_string());
    }
    if matches!(workflow, "bake" | "release" | "rebake") {
        // A bake's builder is an instance billed by the hour: never left running unexplained.
        let role = std::collections::BTreeMap::from([(tags::ROLE.to_string(), "builder".to_string())]);
        let builders: Vec<String> = block_on(fleet.sim.find_instances(&role)).unwrap().into_iter().map(|i| i.id).collect();
        if !builders.is_empty() && !explained.contains("builder") {
            out.push(format!("builder {builders:?} left running and the error doesn't say so"));
        }
    }
    if matches!(workflow, "serial" | "full") {
        let group = block_on(fleet.sim.describe_group(&fleet.group)).unwrap();
        let version = group.settings.launch_template.and_then(|t| t.version).unwrap_or_default();
        let versions: Vec<String> =
            group.instances.iter().filter(|i| i.lifecycle.is_live()).filter_map(|i| i.launch_template_version.clone()).collect();
        let settled = |v: &str| version == v && versions.iter().all(|x| x == v) && versions.len() == 3 && desired == 3;
        // Failed: back on the original version, unless the rollback says it couldn't get there, or the
        // rollout finished and only clean-up failed (saying what is left).
        let ok = match (summary.status, summary.error.as_deref()) {
            ("SUCCEEDED", _) => settled("2"),
            (_, Some(e)) if e == errors::ROLLBACK_FAILED => true,
            (_, Some(e)) if e == errors::CLEANUP_INCOMPLETE => settled("2") || settled("1"),
            _ => settled("1"),
        };
        if !ok {
            out.push(format!("the group is at version {version}, instances {versions:?}, desired {desired}, after {}", summary.status));
        }
    }
    out
}

#[tokio::test]
async fn any_call_that_fails_for_good_leaves_the_environment_settled_or_says_what_is_left() {
    let mut defects = Vec::new();
    let mut runs = 0;
    for workflow in scenario::WORKFLOWS.iter().copied() {
        let (definition, input) = scenario::definition_and_input(workflow, "demo").unwrap();
        let clean = {
            let (fleet, config) = demo(3, 3, SimSettings::default());
            let summary = run(&fleet.sim, config, definition, input.clone(), &fleet.group, Arc::new(|_| {})).await.1;
            assert_eq!(summary.status, "SUCCEEDED", "{workflow}: {summary:?}");
            fleet.sim.calls().len() as u32
        };
        for n in 0..clean {
            let (fleet, config) = demo(3, 3, SimSettings::default());
            fleet.sim.inject_fault(nth_call_fails(n));
            let summary = run(&fleet.sim, config, definition, input.clone(), &fleet.group, Arc::new(|_| {})).await.1;
            runs += 1;
            let failed_call = fleet.sim.calls().iter().find(|c| c.faulted).map(|c| c.operation.clone()).unwrap_or_default();
            for problem in problems(&fleet, workflow, &summary) {
                defects.push(format!("{workflow}, call {n} ({failed_call}) fails: {problem}; ended {} {:?}", summary.status, summary.error));
            }
        }
    }
    println!("{runs} runs");
    assert!(defects.is_empty(), "{} defect(s):\n{}", defects.len(), defects.join("\n"));
}
