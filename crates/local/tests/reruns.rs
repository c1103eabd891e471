//! Step re-runs (#19 item 2): Step Functions retries a task with the record
//! from before the call, so a step that did its work and then timed out runs
//! again on the same input with its first run's effects in place. Every step
//! of every workflow is made to do so once; the run must end as a clean run
//! does, with each effect once (no command sent twice, no second builder,
//! image or page rule).

use std::collections::BTreeMap;
use std::sync::Arc;

use stepdeploy_local::{demo, run, scenario};
use stepdeploy_sim::SimSettings;

/// Calls whose repetition would be a second effect (SendCommand is counted by the commands SSM
/// accepted: a bake retries it, refused, until the builder is online).
const ONCE: &[&str] = &["RunInstances", "CreateImage", "CreateRule", "CreateLaunchTemplateVersion"];

fn effects(calls: &BTreeMap<String, usize>, commands: usize) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = calls.iter().filter(|(op, _)| ONCE.contains(&op.as_str())).map(|(op, n)| (op.clone(), *n)).collect();
    out.insert("commands run".into(), commands);
    out
}

#[tokio::test]
async fn every_step_that_runs_twice_on_the_same_input_has_each_effect_once() {
    let mut defects = Vec::new();
    for workflow in ["serial", "full", "worker", "in-place", "maintenance-on", "bake"] {
        let (definition, input) = scenario::definition_and_input(workflow, "demo").unwrap();
        let (fleet, config) = demo(4, 3, SimSettings::default());
        let clean = run(&fleet.sim, config, definition, input.clone(), &fleet.group, Arc::new(|_| {})).await.1;
        assert_eq!(clean.status, "SUCCEEDED", "{workflow}: {clean:?}");
        let clean_effects = effects(&clean.api_calls, fleet.sim.commands_sent().len());
        let steps: Vec<String> = fleet.sim.calls().iter().filter_map(|c| c.principal.clone()).fold(Vec::new(), |mut seen, s| {
            if !seen.contains(&s) {
                seen.push(s);
            }
            seen
        });
        for step in steps {
            let (fleet, config) = demo(4, 3, SimSettings::default());
            fleet.sim.inject_lambda_fault(&step, "after:Sandbox.Timedout", 1);
            let again = run(&fleet.sim, config, definition, input.clone(), &fleet.group, Arc::new(|_| {})).await.1;
            let label = format!("{workflow}, {step} run twice");
            if again.status != "SUCCEEDED" {
                defects.push(format!("{label}: {} {:?} {:?}", again.status, again.error, again.cause));
                continue;
            }
            let again_effects = effects(&again.api_calls, fleet.sim.commands_sent().len());
            if again_effects != clean_effects {
                defects.push(format!("{label}: effects {again_effects:?}, a clean run's {clean_effects:?}"));
            }
            if again.fleet.by_image != clean.fleet.by_image {
                defects.push(format!("{label}: ends with {:?}, a clean run with {:?}", again.fleet.by_image, clean.fleet.by_image));
            }
        }
    }
    assert!(defects.is_empty(), "{} defect(s):\n{}", defects.len(), defects.join("\n"));
}
