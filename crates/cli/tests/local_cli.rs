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
    // The figures AWS's quotas apply to: the largest state payload and the history's length.
    let (largest, events) = (summary["max_payload_bytes"].as_u64().unwrap_or(0), summary["history_events"].as_u64().unwrap_or(0));
    assert!(largest > 1_000 && largest < 256 * 1024, "{summary}");
    assert!(events > 20 && events < 25_000, "{summary}");
    assert!(
        progress.contains(&format!("largest state payload {largest} bytes")) && progress.contains(&format!("{events} history events")),
        "{progress}"
    );
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

#[test]
fn the_stand_alone_workflows_run_locally() {
    let (code, summary, progress) = local(&["worker", "--output", "json"]);
    assert_eq!(code, Some(0), "{progress}");
    assert_eq!(summary["workflow"], "worker");
    let commands: Vec<_> = summary["output"]["commands"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(commands, ["worker_deploy", "migrate"]);
    assert!(progress.contains("worker_deploy finished") && progress.contains("lock released"), "{progress}");

    let (code, summary, _) = local(&["maintenance-on", "--output", "json"]);
    assert_eq!((code, summary["maintenance_page"].as_bool()), (Some(0), Some(true)));
    let (code, summary, _) = local(&["maintenance-off", "--output", "json"]);
    assert_eq!((code, summary["maintenance_page"].as_bool()), (Some(0), Some(false)));

    let (code, summary, _) = local(&["worker", "--fault", "migration-fails", "--output", "json"]);
    assert_eq!((code, summary["error"].as_str()), (Some(1), Some("StepDeploy.CommandFailed")));
}

#[test]
fn a_config_file_is_rehearsed_on_the_simulated_fleet_with_its_own_policy() {
    let dir = std::env::temp_dir().join(format!("stepdeploy-local-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stepdeploy.yaml");
    std::fs::write(
        &file,
        "deployment: app\nenvironments:\n  staging:\n    region: us-east-1\n    auto_scaling_group: real-group\n    target_group_arns: [\"arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/w/1\"]\n    listener_arn: \"arn:aws:elasticloadbalancing:us-east-1:1:listener/app/w/1/2\"\n    launch_template: lt-1\n    rollout: {min_healthy_percent: 100, max_healthy_percent: 125}\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let (code, summary, progress) = local(&["serial", "--config", config, "--instances", "8", "--output", "json"]);
    assert_eq!(code, Some(0), "{progress}");
    assert_eq!(summary["fleet"]["version_2"], 8);
    assert_eq!(summary["min_healthy_observed"], 8, "the config's 100 % floor");
    assert!(progress.contains("serial on staging") && progress.contains("(ceiling 10)"), "the config's 125 % ceiling: {progress}");

    let (code, _, stderr) = local(&["serial", "--config", config, "--env", "prod"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--env: \"prod\" is not in") && stderr.contains("expected one of staging"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_unknown_workflow_or_a_fault_that_does_not_apply_is_a_clear_error() {
    let (code, _, stderr) = local(&["canary"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("WORKFLOW: \"canary\" is not a workflow; expected one of serial, full, worker"), "{stderr}");
    let (code, _, stderr) = local(&["maintenance-on", "--fault", "unhealthy-new"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("\"unhealthy-new\" does not apply to maintenance-on"), "{stderr}");
}

#[test]
fn a_bake_runs_locally_and_reports_the_image_and_version() {
    let (code, summary, progress) = local(&["bake", "--output", "json"]);
    assert_eq!(code, Some(0), "{progress}");
    assert!(summary["image_id"].as_str().is_some_and(|id| id.starts_with("ami-")), "{summary}");
    assert_eq!(summary["launch_template_version"], 3, "the demo template has versions 1 and 2");
    assert!(progress.contains("waiting for SSM") && progress.contains("launch template version 3 published"), "{progress}");

    let (code, summary, _) = local(&["bake", "--fault", "bake-script-fails", "--output", "json"]);
    assert_eq!((code, summary["error"].as_str()), (Some(1), Some("StepDeploy.CommandFailed")));
    assert!(summary.get("image_id").is_none());
}

#[test]
fn a_release_and_a_rebake_run_locally() {
    let (code, summary, progress) = local(&["release", "--instances", "2", "--output", "json"]);
    assert_eq!(code, Some(0), "{progress}");
    let image = summary["image_id"].as_str().unwrap();
    assert_eq!(summary["fleet"]["by_image"][image], 2, "{summary}");
    assert!(progress.contains("plan: bake 2222222 (from the input)") && progress.contains("launch template version 3 published"), "{progress}");

    let (code, summary, progress) = local(&["rebake", "--instances", "1", "--output", "json"]);
    assert_eq!(code, Some(0), "{progress}");
    assert_eq!((summary["output"]["revision"].as_str(), summary["output"]["revision_source"].as_str()), (Some("1111111"), Some("fleet")));
}

#[test]
fn an_in_place_deploy_runs_locally_above_its_floor() {
    let (code, summary, progress) = local(&["in-place", "--instances", "4", "--output", "json"]);
    assert_eq!(code, Some(0), "{progress}");
    assert_eq!(summary["output"]["updated"].as_array().map(Vec::len), Some(4));
    assert!(summary["min_healthy_observed"].as_u64().unwrap() >= 2, "the demo runs it at min_healthy_percent 50: {summary}");
    assert!(progress.contains("left the target groups") && progress.contains("all 4 instance(s) updated"), "{progress}");

    let (code, summary, _) = local(&["in-place", "--instances", "4", "--fault", "in-place-command-fails", "--output", "json"]);
    assert_eq!((code, summary["error"].as_str()), (Some(1), Some("StepDeploy.CommandFailed")));
    assert!(summary["cause"].as_str().unwrap().contains("left out of the target groups for inspection"));
}

#[test]
fn a_failed_lambda_step_prints_its_message_not_its_error_document() {
    // The in-place plan fails in its Lambda step, whose cause is the error document.
    let (code, summary, stderr) = local(&["in-place", "--instances", "1", "--output", "json"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(summary["cause"].as_str().unwrap_or_default().contains("\"errorMessage\""), "--output json keeps the cause as AWS gives it: {summary}");
    let cause = stderr.lines().find(|l| l.starts_with("cause: ")).unwrap_or_default();
    assert!(cause.starts_with("cause: min_healthy_percent: 50 leaves no instance of 1 free"), "{stderr}");
    assert!(!cause.contains("errorMessage"), "{cause}");
}

#[test]
fn the_help_lists_every_fault_and_workflow_there_is() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stepdeploy")).args(["local", "--help"]).output().expect("stepdeploy runs");
    let help = String::from_utf8_lossy(&out.stdout).replace(['\n', ' '], "");
    for (fault, _) in stepdeploy_local::scenario::FAULTS {
        assert!(help.contains(fault), "--fault {fault} is not in `stepdeploy local --help`");
    }
    for workflow in stepdeploy_local::scenario::WORKFLOWS {
        assert!(help.contains(workflow), "the workflow {workflow} is not in `stepdeploy local --help`");
    }
}

#[test]
fn each_progress_line_counts_from_one_moment() {
    // A line once read "healthy 7 (floor 6), live 6": live came from after the step's actions.
    let (code, _, progress) = local(&["serial", "--instances", "6", "--output", "json"]);
    assert_eq!(code, Some(0), "{progress}");
    let number_after = |line: &str, key: &str| -> Option<u32> { line.split(key).nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok() };
    let mut lines = 0;
    for line in progress.lines().filter(|l| l.contains("; healthy ") && l.contains(", live ")) {
        let (healthy, live) = (number_after(line, "; healthy ").unwrap(), number_after(line, ", live ").unwrap());
        assert!(healthy <= live, "{line}");
        lines += 1;
    }
    assert!(lines > 2, "{progress}");
}

#[test]
fn every_command_and_flag_the_readme_quotes_is_in_the_help() {
    use std::collections::BTreeMap;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let help = |path: &[&str]| -> Option<String> {
        let mut args: Vec<&str> = path.to_vec();
        args.push("--help");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stepdeploy")).args(&args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let mut helps: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut missing = Vec::new();
    let mut checked = 0;
    // Every quoted command: `stepdeploy ...` in inline code, and `stepdeploy ...` lines in code blocks.
    let mut quoted: Vec<String> = Vec::new();
    let mut in_block = false;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if in_block {
            quoted.push(line.to_string());
        } else {
            // Inline code spans of this line (a span doesn't cross lines in this README).
            quoted.extend(line.split('`').enumerate().filter(|(i, _)| i % 2 == 1).map(|(_, s)| s.to_string()));
        }
    }
    for text in quoted {
        let Some(rest) = text.trim_start().strip_prefix("stepdeploy ") else { continue };
        let words: Vec<&str> =
            rest.split_whitespace().take_while(|w| !w.starts_with("--") && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')).collect();
        // The longest prefix of words that is a subcommand with its own help.
        let mut path: Vec<&str> = Vec::new();
        for n in (1..=words.len().min(2)).rev() {
            let key = words[..n].join(" ");
            let found = helps.entry(key).or_insert_with(|| help(&words[..n])).is_some();
            if found {
                path = words[..n].to_vec();
                break;
            }
        }
        if path.is_empty() {
            if !words.is_empty() {
                missing.push(format!("`stepdeploy {}`: no such command", words.join(" ")));
            }
            continue;
        }
        let text_of_help = helps[&path.join(" ")].clone().unwrap_or_default();
        for flag in rest.split(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == '|').filter(|t| t.starts_with("--")) {
            let flag = flag.split('=').next().unwrap_or(flag).trim_end_matches([',', '.', ')', '`']);
            checked += 1;
            if !text_of_help.contains(flag) {
                missing.push(format!("`stepdeploy {} {flag}`: not in its --help", path.join(" ")));
            }
        }
    }
    assert!(checked > 10, "the README quotes flags: {checked}");
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn an_imported_config_with_its_arns_still_empty_is_rehearsed_at_its_own_size() {
    let dir = std::env::temp_dir().join(format!("stepdeploy-local-cli-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stepdeploy.yaml");
    // What `config import` leaves before the account's names are filled in, with alarms and a bake.
    std::fs::write(
        &file,
        "deployment: app\nenvironments:\n  staging:\n    region: us-east-1\n    auto_scaling_group: \"\"\n    target_group_arns: []\n    scaling: {min_size: 3, max_size: 6, desired_capacity: 3}\n    alarms: [app-staging-5xx]\n    rollout: {bake_seconds: 30}\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let (code, summary, progress) = local(&["serial", "--config", config, "--output", "json"]);
    assert_eq!(code, Some(0), "{progress}");
    assert_eq!(summary["fleet"]["version_2"], 3, "scaling.desired_capacity, not the demo's 6: {summary}");
    assert!(progress.contains("(3 simulated web instance(s)") && progress.contains("1 alarm(s) OK") && progress.contains("baking"), "{progress}");
    // The config's own alarm goes off: the rehearsal rolls back on it.
    let (code, summary, _) = local(&["serial", "--config", config, "--fault", "alarm-during-rollout", "--output", "json"]);
    assert_eq!((code, summary["error"].as_str()), (Some(1), Some("StepDeploy.AlarmFired")), "{summary}");
    assert!(summary["cause"].as_str().unwrap_or("").contains("app-staging-5xx"), "{summary}");
    // Everything but the account's names is still checked.
    std::fs::write(&file, "deployment: app\nenvironments:\n  staging:\n    region: us-east-1\n    rollout: {min_healthy_percent: 120}\n").unwrap();
    let (code, _, stderr) = local(&["serial", "--config", config]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("environments.staging.rollout.min_healthy_percent: 120 is not in 0..=100"), "{stderr}");
    assert!(!stderr.contains("auto_scaling_group"), "the account's names may stay empty: {stderr}");
    // A config without alarms can't take an alarm fault.
    std::fs::write(&file, "deployment: app\nenvironments:\n  staging:\n    region: us-east-1\n").unwrap();
    let (code, _, stderr) = local(&["serial", "--config", config, "--fault", "alarm-during-bake"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--fault: \"alarm-during-bake\" sets off the environment's alarms, and staging lists none"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_progress_line_is_printed_only_when_something_in_it_changed() {
    let (code, _, progress) = local(&["serial", "--instances", "6"]);
    assert_eq!(code, Some(0), "{progress}");
    let unstamped: Vec<&str> = progress.lines().filter(|l| l.starts_with('[')).map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest)).collect();
    assert!(unstamped.len() >= 4, "{progress}");
    for pair in unstamped.windows(2) {
        assert_ne!(pair[0], pair[1], "a repeated line:\n{progress}");
    }
    // While instances boot, the line says why they don't count yet, grouped by reason.
    // (The demo pauses at 50 %: the first wave is 3 of the 6.)
    assert!(unstamped.iter().any(|l| l.contains("not healthy yet: 3 lifecycle Pending")), "{progress}");
}

#[test]
fn the_last_quarter_before_the_deadline_shows_the_time_left() {
    let dir = std::env::temp_dir().join(format!("stepdeploy-local-cli-deadline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stepdeploy.yaml");
    std::fs::write(&file, "deployment: app\nenvironments:\n  staging:\n    region: us-east-1\n    scaling: {min_size: 1, max_size: 4, desired_capacity: 2}\n    rollout: {timeout_seconds: 600}\n").unwrap();
    let (code, _, progress) = local(&["serial", "--config", file.to_str().unwrap(), "--fault", "unhealthy-new"]);
    assert_eq!(code, Some(1), "{progress}");
    let near: Vec<&str> = progress.lines().filter(|l| l.contains("s to the deadline")).collect();
    assert!(!near.is_empty(), "{progress}");
    for line in &near {
        let left: i64 = line.split("; ").find_map(|part| part.strip_suffix(" s to the deadline")).and_then(|n| n.parse().ok()).unwrap();
        assert!((0..150).contains(&left), "only in the last quarter of 600 s: {line}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_queued_second_deploy_waits_for_the_first_then_runs() {
    let (code, summary, progress) = local(&["serial", "--instances", "4", "--queued-deploy", "1", "--output", "json"]);
    assert_eq!(code, Some(0), "{progress}");
    // The second (back to version 1) ran after the first released the lock, and both succeeded.
    assert_eq!(summary["fleet"]["version_1"], 4, "{summary}");
    let released = progress.find("] lock released").expect("the first released the lock");
    let took = progress.find("the queued deploy of version 1 took the lock").expect("the second took it");
    assert!(took > released, "{progress}");
    assert!(progress.contains("the queued deploy of version 1 ended SUCCEEDED"), "{progress}");
    // Refused before anything runs: a version the sim has not, a workflow with no queue.
    let (code, _, stderr) = local(&["serial", "--queued-deploy", "7"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--queued-deploy: \"7\" is not a version of the simulated launch template; expected 1 or 2"), "{stderr}");
    assert!(!stderr.contains("deploying:"), "nothing ran: {stderr}");
}
