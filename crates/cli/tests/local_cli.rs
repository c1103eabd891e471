//! `stepdeploy local serial`, the README's "run the main job" command.

use std::process::Command;

use serde_json::Value;

fn local(args: &[&str]) -> (Option<i32>, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stepdeploy")).arg("local").args(args).output().expect("stepdeploy runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    (out.status.code(), serde_json::from_str(last).unwrap_or(Value::Null), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_serial_deploy_of_the_demo_fleet_succeeds_with_progress_and_a_json_summary() {
    let (code, summary, progress) = local(&["serial", "--instances", "5", "--output", "json"]);
    assert_eq!(code, Some(0), "{progress}");
    assert_eq!(summary["status"], "SUCCEEDED");
    assert_eq!((summary["fleet"]["version_2"].as_u64(), summary["fleet"]["healthy"].as_u64()), (Some(5), Some(5)));
    for key in ["error", "cause", "transitions", "api_calls", "virtual_seconds", "min_healthy_observed"] {
        assert!(summary.get(key).is_some(), "{key} missing from {summary}");
    }
    assert!(progress.contains("deploying: ") && progress.contains("next: done"), "{progress}");
}

#[test]
fn a_failing_deploy_rolls_back_and_exits_1() {
    let (code, summary, _) = local(&["serial", "--instances", "2", "--fault", "unhealthy-new", "--output", "json"]);
    assert_eq!(code, Some(1));
    assert_eq!(summary["error"], "StepDeploy.RolloutFailed");
    assert_eq!(summary["fleet"]["version_1"], 2);
}

#[test]
fn a_bad_flag_is_a_clear_error() {
    let (code, _, stderr) = local(&["serial", "--fault", "meteor"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--fault: \"meteor\" is not a fault"), "{stderr}");
}

#[test]
fn a_full_deploy_with_a_failing_migration_reports_its_output() {
    let (code, summary, _) = local(&["full", "--instances", "2", "--fault", "migration-fails", "--output", "json"]);
    assert_eq!(code, Some(1));
    assert_eq!(summary["error"], "StepDeploy.CommandFailed");
    assert!(summary["cause"].as_str().unwrap().contains("could not obtain lock"));
    assert_eq!(summary["fleet"]["version_1"], 2, "the web fleet is untouched");
}
