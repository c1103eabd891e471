//! The planner decides from what AWS reports, never from the sim's hidden draws (#18): how long an
//! instance will take to boot is the sim's secret until Auto Scaling and the target group say it
//! is up. Two fleets that differ only in that secret must be planned alike, step for step, until
//! an instance is healthy in one of them; and then differently, or the test would prove nothing.

use std::sync::{Arc, Mutex};

use stepdeploy_core::planner::Progress;
use stepdeploy_local::{Observer, SERIAL_DEPLOY, demo, demo_input, run};
use stepdeploy_sim::{Dist, SimSettings};

/// What a deploy's reconcile steps decided, as seen from outside: when each ran (seconds from
/// the start), what came next and after how long, and the counts it acted on.
type Decisions = Vec<(i64, String, u64, Progress)>;

async fn decisions(boot_seconds: f64) -> Decisions {
    let settings = SimSettings { boot_seconds: Dist::Fixed(boot_seconds), health_seconds: Dist::Fixed(0.0), ..SimSettings::default() };
    let (fleet, config) = demo(21, 4, settings);
    let start = fleet.sim.now();
    let seen: Arc<Mutex<Decisions>> = Arc::default();
    let (sim, record) = (fleet.sim.clone(), seen.clone());
    let observer: Observer = Arc::new(move |d| {
        if let Some(step) = &d.step {
            record.lock().unwrap_or_else(|p| p.into_inner()).push((sim.now() - start, step.next.clone(), step.seconds, step.progress));
        }
    });
    let (_, summary) = run(&fleet.sim, config, SERIAL_DEPLOY, demo_input(), &fleet.group, observer).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

#[tokio::test]
async fn fleets_that_differ_only_in_hidden_boot_times_are_planned_alike_until_one_boots() {
    let (fast, slow) = (decisions(90.0).await, decisions(150.0).await);
    // The first launch is at the first reconcile step; no instance is up before 90 s after it.
    let first_launch = fast.first().map(|(at, ..)| *at).unwrap_or_default();
    let before = |list: &Decisions| -> Decisions { list.iter().filter(|(at, ..)| *at < first_launch + 90).cloned().collect() };
    assert!(before(&fast).len() >= 3, "a few polls while the instances boot: {fast:?}");
    assert_eq!(before(&fast), before(&slow), "the same reports, the same decisions");
    assert_ne!(fast, slow, "once one fleet's instances are up, the plans part");
}
