//! What the end-to-end tests on the sim share: the fleet's timing, a serial deploy, and what a
//! finished deploy must leave. Each test crate uses part of it.
#![allow(dead_code)]

use std::sync::Arc;

use futures::executor::block_on;
use serde_json::Value;
use stepdeploy_core::config::Config;
use stepdeploy_core::ports::Parameters;
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{SERIAL_DEPLOY, Summary, run};
use stepdeploy_sim::demo::DemoFleet;
use stepdeploy_sim::{Dist, SimSettings};

/// Instances boot in about 90 s and pass health checks about 20 s later.
pub fn settings() -> SimSettings {
    SimSettings { boot_seconds: Dist::around(90.0, 0.2), health_seconds: Dist::around(20.0, 0.2), ..SimSettings::default() }
}

/// A serial deploy of the demo fleet with `input`.
pub async fn deploy(fleet: &DemoFleet, config: Arc<Config>, input: Value) -> Summary {
    run(&fleet.sim, config, SERIAL_DEPLOY, input, &fleet.group, Arc::new(|_| {})).await.1
}

/// The lock is released and no process is left suspended.
pub fn assert_clean(fleet: &DemoFleet) {
    let lock = block_on(fleet.sim.get_parameter(&lock_parameter("demo", "demo"))).unwrap();
    assert!(lock.is_none(), "the lock is released");
    let (_, _, _, suspended) = fleet.sim.group_state(&fleet.group).unwrap();
    assert!(suspended.is_empty(), "processes are resumed: {suspended:?}");
}

/// The failed step's message: a Lambda task's Cause is its error document, as on AWS.
pub fn message(summary: &Summary) -> String {
    let cause = summary.cause.clone().unwrap_or_default();
    serde_json::from_str::<Value>(&cause).ok().and_then(|doc| doc["errorMessage"].as_str().map(str::to_string)).unwrap_or(cause)
}
