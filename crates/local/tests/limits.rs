//! AWS's limits at scale (#14): every state payload stays under 256 KiB and
//! every execution under 25,000 history events, with 1,000 web instances and
//! 200 workers whose commands each print 1 MB.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use stepdeploy_core::fleet::DEPLOYMENT_TAG;
use stepdeploy_local::{DEPLOY_WORKER, FULL_DEPLOY, IN_PLACE_DEPLOY, SERIAL_DEPLOY, demo, run};
use stepdeploy_sim::{CommandScript, Dist, SimSettings};

/// AWS's quota on a state's input or output (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
const PAYLOAD_QUOTA: usize = 256 * 1024;
/// AWS's quota on an execution's history events (same page).
const HISTORY_QUOTA: usize = 25_000;

#[tokio::test]
async fn records_and_histories_stay_within_aws_quotas_at_a_thousand_instances() {
    let settings = SimSettings { boot_seconds: Dist::around(90.0, 0.2), health_seconds: Dist::around(20.0, 0.2), ..SimSettings::default() };
    let megabyte = "x".repeat(1024 * 1024);
    let cases = [
        (
            "serial with migrations",
            SERIAL_DEPLOY,
            json!({"environment": "demo", "launch_template_version": "2", "run_migrations": true, "revision": "2222222", "max_healthy_percent": 110}),
        ),
        ("full", FULL_DEPLOY, json!({"environment": "demo", "launch_template_version": "2", "run_migrations": true, "revision": "2222222"})),
        ("worker", DEPLOY_WORKER, json!({"environment": "demo", "revision": "2222222"})),
        ("in-place", IN_PLACE_DEPLOY, json!({"environment": "demo", "revision": "2222222", "min_healthy_percent": 90})),
    ];
    let mut report = Vec::new();
    for (label, definition, input) in cases {
        let (fleet, config) = demo(90, 1000, settings.clone());
        let worker_tags = BTreeMap::from([("role".to_string(), "worker".to_string()), (DEPLOYMENT_TAG.to_string(), "demo".to_string())]);
        for _ in 1..200 {
            fleet.sim.create_worker(&fleet.old.image_id, worker_tags.clone());
        }
        // Every command prints 1 MB on stdout and on stderr.
        fleet.sim.script_command(CommandScript {
            contains: "stepdeploy".into(),
            instance_id: None,
            exit_code: 0,
            stdout: megabyte.clone(),
            stderr: megabyte.clone(),
            duration_seconds: 30,
        });
        let summary = run(&fleet.sim, config, definition, input, &fleet.group, Arc::new(|_| {})).await.1;
        assert_eq!(summary.status, "SUCCEEDED", "{label}: {:?} {:?}", summary.error, summary.cause);
        assert!(summary.max_payload_bytes < PAYLOAD_QUOTA, "{label}: a payload of {} bytes", summary.max_payload_bytes);
        assert!(summary.history_events < HISTORY_QUOTA, "{label}: {} history events", summary.history_events);
        report.push(format!("{label}: largest payload {} bytes, {} history events", summary.max_payload_bytes, summary.history_events));
    }
    println!("{}", report.join("\n"));
}

#[tokio::test]
async fn a_forty_hour_migration_is_polled_within_the_history_quota() {
    // At the 15 s poll interval a 40-hour migration would be 9,600 polls of 9 events; polled
    // less often as it runs on (at most every 5 minutes) it takes a few hundred.
    let (fleet, config) = demo(91, 2, SimSettings::default());
    let mut config = (*config).clone();
    if let Some(env) = config.environments.get_mut("demo") {
        env.commands.migrate.timeout_seconds = 48 * 3600;
    }
    fleet.sim.script_command(CommandScript {
        contains: "stepdeploy-migrate".into(),
        instance_id: None,
        exit_code: 0,
        stdout: "migrated".into(),
        stderr: String::new(),
        duration_seconds: 40 * 3600,
    });
    let input = json!({"environment": "demo", "launch_template_version": "2", "run_migrations": true, "revision": "2222222"});
    let summary = run(&fleet.sim, Arc::new(config), SERIAL_DEPLOY, input, &fleet.group, Arc::new(|_| {})).await.1;
    assert_eq!(summary.status, "SUCCEEDED", "{:?} {:?}", summary.error, summary.cause);
    assert!(summary.history_events < 10_000, "{} history events", summary.history_events);
}
