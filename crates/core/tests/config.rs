//! Config parsing, validation and the Fabulaws import.

use std::collections::BTreeMap;

use stepdeploy_core::config::{Config, Environment, Problem};
use stepdeploy_core::fabulaws;

const VALID: &str = r#"
deployment: opendebates
environments:
  staging:
    region: us-east-1
    auto_scaling_group: opendebates-staging-ag
    target_group_arns: ["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"]
    listener_arn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/0123456789abcdef/fedcba9876543210"
    launch_template: lt-0123456789abcdef0
    domains: [staging.example.org]
"#;

fn problems(yaml: &str) -> Vec<Problem> {
    Config::from_yaml_str(yaml).expect_err("config should be rejected").0
}

fn paths(yaml: &str) -> Vec<String> {
    problems(yaml).into_iter().map(|p| p.path).collect()
}

#[test]
fn a_complete_config_loads_with_defaults_filled_in() {
    let config = Config::from_yaml_str(VALID).unwrap();
    let env = config.environment("staging").unwrap();
    assert_eq!(env.rollout.min_healthy_percent, 100);
    assert_eq!(env.rollout.max_healthy_percent, 200);
    assert_eq!(env.health.poll_interval_seconds, 15);
    assert_eq!(env.rollout.suspend_processes, ["AZRebalance", "AlarmNotification", "ScheduledActions"]);
    assert!(!env.production);
}

#[test]
fn an_out_of_range_percent_names_the_full_path_value_and_range() {
    let yaml = VALID.replace("domains:", "rollout: {min_healthy_percent: 120}\n    domains:");
    let found = problems(&yaml);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].to_string(), "environments.staging.rollout.min_healthy_percent: 120 is not in 0..=100");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let yaml = VALID.replace(
        "domains:",
        "rollout: {min_healthy_percent: -1, max_healthy_percent: 300, suspnd_processes: []}\n    healthh: {}\n    maintenance: {allowed_cidrs: [not-a-cidr]}\n    domains:",
    );
    let mut found = paths(&yaml);
    found.sort();
    assert_eq!(
        found,
        [
            "environments.staging.healthh",
            "environments.staging.maintenance.allowed_cidrs[0]",
            "environments.staging.rollout.max_healthy_percent",
            "environments.staging.rollout.min_healthy_percent",
            "environments.staging.rollout.suspnd_processes",
        ]
    );
}

#[test]
fn unknown_top_level_keys_and_bad_types_are_errors_with_paths() {
    let yaml = format!("{VALID}extra: 1\n").replace("region: us-east-1", "region: us-east-1\n    health: {timeout_seconds: soon}");
    let found = problems(&yaml);
    let text: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|t| t.starts_with("extra: unknown key")), "{text:?}");
    assert!(text.iter().any(|t| t.starts_with("environments.staging.health.timeout_seconds: invalid type")), "{text:?}");
}

#[test]
fn maintenance_html_over_the_alb_limit_is_rejected() {
    let big = "x".repeat(1025);
    let yaml = VALID.replace("domains:", &format!("maintenance: {{html: {big}}}\n    domains:"));
    let found = problems(&yaml);
    assert_eq!(found[0].path, "environments.staging.maintenance.html");
    assert!(found[0].message.contains("1025 bytes"), "{}", found[0].message);
    let fits = VALID.replace("domains:", &format!("maintenance: {{html: {}}}\n    domains:", "x".repeat(1024)));
    Config::from_yaml_str(&fits).unwrap();
}

#[test]
fn missing_resources_are_reported_as_settings_to_fill_in() {
    let yaml = "deployment: d\nenvironments:\n  testing: {region: us-east-1, auto_scaling_group: g}\n";
    let mut found = paths(yaml);
    found.sort();
    assert_eq!(found, ["environments.testing.launch_template", "environments.testing.listener_arn", "environments.testing.target_group_arns"]);
}

#[test]
fn scaling_policy_sizes_must_be_ordered() {
    let yaml = VALID.replace("domains:", "scaling: {min_size: 3, max_size: 2, desired_capacity: 5}\n    domains:");
    let mut found = paths(&yaml);
    found.sort();
    assert_eq!(found, ["environments.staging.scaling.desired_capacity", "environments.staging.scaling.max_size"]);
}

#[test]
fn an_environment_round_trips_through_its_ssm_json() {
    let config = Config::from_yaml_str(VALID).unwrap();
    let env = config.environment("staging").unwrap();
    let back = Environment::from_json_str(&env.to_json(), "/stepdeploy/opendebates/staging").unwrap();
    assert_eq!(&back, env);
    let bad = env.to_json().replace("\"retain\":5", "\"retain\":0");
    let err = Environment::from_json_str(&bad, "/stepdeploy/opendebates/staging").unwrap_err();
    assert_eq!(err.0[0].path, "/stepdeploy/opendebates/staging.images.retain");
}

#[test]
fn unknown_environment_lists_the_known_ones() {
    let config = Config::from_yaml_str(VALID).unwrap();
    let err = config.environment("prod").unwrap_err();
    assert_eq!(err.to_string(), "environment: \"prod\" is not defined; expected one of: staging");
}

fn reference_path(file: &str) -> std::path::PathBuf {
    let dir = std::env::var("STEPDEPLOY_SHARED_DIR").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").to_string());
    std::path::Path::new(&dir).join("reference").join(file)
}

/// The real opendebates file; a missing shared/ folder fails the test.
fn opendebates_yaml() -> Option<String> {
    let path = reference_path("opendebates-fabulaws-config.yml");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => panic!("{}: {e} (set STEPDEPLOY_SHARED_DIR)", path.display()),
    }
}

#[test]
fn opendebates_import_carries_all_six_environments() {
    let Some(text) = opendebates_yaml() else {
        return;
    };
    // The input misspells "presidential" in production_environments: the import stops and asks.
    let refused = fabulaws::import(&text, None).unwrap_err().to_string();
    assert!(refused.contains("\"presidenetial\" is not in environments (did you mean \"presidential\"?)"), "{refused}");
    assert!(refused.contains("--production-fix presidenetial=presidential"), "{refused}");
    let fixes = BTreeMap::from([("presidenetial".to_string(), Some("presidential".to_string()))]);
    let import = fabulaws::import_with(&text, None, &fixes).unwrap();
    let config = &import.config;
    assert_eq!(config.deployment, "opendebates");
    let names: Vec<&str> = config.environments.keys().map(String::as_str).collect();
    assert_eq!(names, ["testing", "staging", "florida", "presidential", "staging01", "prod01"]);
    let prod = &config.environments["prod01"];
    assert_eq!(prod.auto_scaling_group, "opendebates-prod01-ag");
    assert_eq!(prod.load_balancer.as_deref(), Some("opendebates-prod01-lb"));
    assert_eq!(prod.domains, ["opendebatequestions.com", "www.opendebatequestions.com"]);
    assert_eq!(prod.region, "us-east-1");
    assert_eq!(prod.instance_type.as_deref(), Some("c3.large"));
    assert_eq!(prod.branch.as_deref(), Some("develop"));
    assert!(prod.production);
    assert!(config.environments["florida"].production);
    // By the operator's choice, recorded in what the file's header lists.
    assert!(config.environments["presidential"].production);
    assert!(
        import.inconsistencies.iter().any(|i| i.contains("\"presidenetial\"") && i.contains("--production-fix presidenetial=presidential")),
        "{:?}",
        import.inconsistencies
    );
    assert!(fabulaws::header("fabulaws-config.yml", &import).contains("presidential is marked production"));
    // Or none, also by choice.
    let none = BTreeMap::from([("presidenetial".to_string(), None)]);
    assert!(!fabulaws::import_with(&text, None, &none).unwrap().config.environments["presidential"].production);
    assert!(import.warnings.iter().any(|w| w.starts_with("static_html: not carried over")));
    assert!(import.warnings.iter().any(|w| w.starts_with("db_settings: not carried over")));
}

#[test]
fn imported_config_check_names_each_setting_to_fill_in() {
    let Some(text) = opendebates_yaml() else {
        return;
    };
    let fixes = BTreeMap::from([("presidenetial".to_string(), Some("presidential".to_string()))]);
    let import = fabulaws::import_with(&text, None, &fixes).unwrap();
    let yaml = import.config.to_yaml();
    let found = problems(&yaml);
    assert_eq!(found.len(), 18, "{found:#?}");
    for env in ["testing", "staging", "florida", "presidential", "staging01", "prod01"] {
        for field in ["target_group_arns", "listener_arn", "launch_template"] {
            let path = format!("environments.{env}.{field}");
            assert!(found.iter().any(|p| p.path == path && p.message.starts_with("required: fill in")), "{path} missing");
        }
    }
}

#[test]
fn import_reports_sections_naming_unknown_environments() {
    let text = "deployments: [app]\nenvironments: [staging]\nregion: eu-west-1\nauto_scaling_groups: {app: {staging: ag, prod: ag2}}\nload_balancers: {app: {staging: [lb]}}\nsite_domains_map: {staging: [s.example.org]}\n";
    let import = fabulaws::import(text, None).unwrap();
    assert_eq!(import.inconsistencies, ["auto_scaling_groups.app: environment \"prod\" is not in environments"]);
    assert!(fabulaws::import(text, Some("other")).is_err());
    assert!(fabulaws::import("- a list", None).is_err());
}

#[test]
fn timings_that_can_never_succeed_are_refused_naming_both_settings() {
    // (health settings, the problem expected, or none)
    let cases = [
        (
            "{timeout_seconds: 300, warmup_seconds: 300}",
            Some(("environments.staging.health.warmup_seconds", "300 is not shorter than health.timeout_seconds (300)")),
        ),
        (
            "{timeout_seconds: 300, warmup_seconds: 600}",
            Some(("environments.staging.health.warmup_seconds", "600 is not shorter than health.timeout_seconds (300)")),
        ),
        (
            "{poll_interval_seconds: 30, warmup_seconds: 30}",
            Some(("environments.staging.health.poll_interval_seconds", "30 is not shorter than health.warmup_seconds (30)")),
        ),
        ("{poll_interval_seconds: 60, warmup_seconds: 0}", None),
        ("{poll_interval_seconds: 15, warmup_seconds: 30, timeout_seconds: 600}", None),
    ];
    for (health, expected) in cases {
        let yaml = format!("{VALID}    health: {health}\n");
        match expected {
            None => assert!(Config::from_yaml_str(&yaml).is_ok(), "{health}: {:?}", Config::from_yaml_str(&yaml).err()),
            Some((path, start)) => {
                let found = problems(&yaml);
                assert_eq!(found.len(), 1, "{health}: {found:?}");
                assert_eq!(found[0].path, path, "{health}");
                assert!(found[0].message.starts_with(start), "{health}: {}", found[0].message);
            }
        }
    }
}

#[test]
fn timeouts_that_could_outrun_the_execution_history_quota_are_refused() {
    // A rollout of 12 hours polled every 5 s: rollout and rollback alone would take about
    // 2 × 2 × 8,640 polls of 9 events, far past AWS's 25,000 per execution.
    let yaml = format!(
        "{VALID}    health: {{poll_interval_seconds: 5, warmup_seconds: 30, timeout_seconds: 600}}\n    rollout: {{timeout_seconds: 43200}}\n"
    );
    let found = problems(&yaml);
    assert!(!found.is_empty(), "refused");
    assert!(found.iter().all(|p| p.path == "environments.staging.health.poll_interval_seconds"), "{found:?}");
    assert!(found[0].message.contains("serial-deploy execution could take") && found[0].message.contains("25000"), "{}", found[0].message);
    // The same rollout polled every 60 s fits; so does a 48-hour migration at the default poll.
    let fits = format!(
        "{VALID}    health: {{poll_interval_seconds: 60, warmup_seconds: 90, timeout_seconds: 600}}\n    rollout: {{timeout_seconds: 43200}}\n"
    );
    assert!(Config::from_yaml_str(&fits).is_ok(), "{:?}", Config::from_yaml_str(&fits).err());
    let long_migration = format!("{VALID}    commands: {{migrate: {{command: /usr/local/bin/stepdeploy-migrate, timeout_seconds: 172800}}}}\n");
    assert!(Config::from_yaml_str(&long_migration).is_ok(), "{:?}", Config::from_yaml_str(&long_migration).err());
}

#[test]
fn alarms_and_bake_time_are_checked_with_their_paths() {
    let yaml = VALID.replace("domains:", "alarms: [web-5xx, \"\", web-5xx]\n    rollout: {bake_seconds: 90000}\n    domains:");
    let found: Vec<String> = problems(&yaml).iter().map(ToString::to_string).collect();
    let expected = [
        "environments.staging.alarms[1]: \"\" is not a CloudWatch alarm name; expected 1 to 255 printable characters",
        "environments.staging.alarms[2]: \"web-5xx\" is listed twice; expected each alarm once",
        "environments.staging.rollout.bake_seconds: 90000 is not in 0..=86400 (a day); expected a soak time in seconds",
    ];
    for problem in expected {
        assert!(found.iter().any(|p| p == problem), "missing {problem:?} in {found:#?}");
    }
    let many: Vec<String> = (0..101).map(|i| format!("a{i}")).collect();
    let yaml = VALID.replace("domains:", &format!("alarms: [{}]\n    domains:", many.join(", ")));
    let found = problems(&yaml);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].to_string(), "environments.staging.alarms: 101 alarms is too many; expected at most 100 (one DescribeAlarms call per poll)");
    let ok = VALID.replace("domains:", "alarms: [web-5xx, web-latency]\n    rollout: {bake_seconds: 600}\n    domains:");
    let env = Config::from_yaml_str(&ok).unwrap().environment("staging").unwrap().clone();
    assert_eq!((env.alarms.len(), env.rollout.bake_seconds), (2, 600));
}

#[test]
fn a_bake_too_long_for_the_history_budget_is_refused() {
    // A day of bake at one poll every 30 s is 2,881 polls, about 26,000 events on its own: over 20,000.
    let yaml = VALID.replace("domains:", "rollout: {bake_seconds: 86400}\n    domains:");
    let found: Vec<String> = problems(&yaml).iter().map(ToString::to_string).collect();
    assert!(found.iter().any(|p| p.contains("history events")), "{found:?}");
    let fits = VALID.replace("domains:", "rollout: {bake_seconds: 3600}\n    domains:");
    assert!(Config::from_yaml_str(&fits).is_ok());
}

#[test]
fn the_lock_queue_wait_is_bounded_by_the_state_machines_retries() {
    let yaml = VALID.replace("domains:", "lock: {wait_seconds: 20000}\n    domains:");
    let found: Vec<String> = problems(&yaml).iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        ["environments.staging.lock.wait_seconds: 20000 is not in 0..=14400 (four hours: the state machines' queue is bounded)"],
        "{found:?}"
    );
    // 14,400 s at one try every 30 s is 480 tries, within the 500 the state machines allow.
    let statemachine: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../statemachines/serial-deploy.asl.json")).unwrap())
            .unwrap();
    let retry = statemachine["States"]["Prepare"]["Retry"].as_array().unwrap().iter().find(|r| r["ErrorEquals"][0] == "StepDeploy.Queued").cloned();
    let retry = retry.expect("Prepare retries StepDeploy.Queued");
    let (interval, attempts) = (retry["IntervalSeconds"].as_u64().unwrap(), retry["MaxAttempts"].as_u64().unwrap());
    assert_eq!(interval, stepdeploy_core::config::LOCK_QUEUE_POLL_SECONDS);
    assert!(interval * attempts > stepdeploy_core::config::MAX_LOCK_WAIT_SECONDS + interval, "{interval} s × {attempts}");
    assert_eq!(retry["BackoffRate"].as_f64(), Some(1.0));
}

#[test]
fn every_server_setup_key_the_import_drops_points_to_an_example_script_that_covers_it() {
    let Some(text) = opendebates_yaml() else {
        return;
    };
    let fixes = BTreeMap::from([("presidenetial".to_string(), Some("presidential".to_string()))]);
    let import = fabulaws::import_with(&text, None, &fixes).unwrap();
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut pointed = 0;
    for warning in &import.warnings {
        let Some((key, why)) = warning.split_once(": not carried over (") else { continue };
        // No dropped key is left without saying where its job went.
        assert!(!why.starts_with("stepdeploy has no setting for it"), "{warning}");
        let Some(script) = fabulaws::example_for(key) else { continue };
        let path = root.join(fabulaws::EXAMPLES).join(script);
        assert!(why.contains(&format!("{}/{script}", fabulaws::EXAMPLES)), "{warning}");
        let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // A comment line, or a comment after code (` # ...`).
        let comments = body.lines().filter_map(|l| if l.trim_start().starts_with('#') { Some(l) } else { l.split_once(" # ").map(|(_, c)| c) });
        let mentions = comments.into_iter().any(|c| c.split(|ch: char| !ch.is_ascii_alphanumeric() && ch != '_').any(|w| w == key));
        assert!(mentions, "{} names {key} in a comment", path.display());
        pointed += 1;
    }
    assert!(pointed >= 25, "the opendebates file drops about 30 server-setup keys; {pointed} pointed to a script");
}

#[test]
fn checkpoints_are_ascending_shares_with_a_bounded_wait_each_problem_named() {
    let yaml = VALID.replace("domains:", "rollout: {checkpoints: [50, 10, 100], checkpoint_wait_seconds: 30}\n    domains:");
    let problems = Config::from_yaml_str(&yaml).unwrap_err().to_string();
    for expected in [
        "environments.staging.rollout.checkpoints[1]: 10 does not come after 50; expected percents in ascending order",
        "environments.staging.rollout.checkpoints[2]: 100 is not in 1..=99",
        "environments.staging.rollout.checkpoint_wait_seconds: 30 is not in 60..=604800 (a week)",
    ] {
        assert!(problems.contains(expected), "{expected}\nin:\n{problems}");
    }
    let bad_mode = VALID.replace("domains:", "rollout: {checkpoint_approval: sometimes}\n    domains:");
    let problems = Config::from_yaml_str(&bad_mode).unwrap_err().to_string();
    assert!(problems.contains("checkpoint_approval") && problems.contains("sometimes"), "{problems}");
    let ok = VALID.replace("domains:", "rollout: {checkpoints: [10, 50], checkpoint_approval: auto, checkpoint_wait_seconds: 900}\n    domains:");
    let config = Config::from_yaml_str(&ok).unwrap();
    let rollout = &config.environments["staging"].rollout;
    assert_eq!((rollout.checkpoints.clone(), rollout.checkpoint_wait_seconds), (vec![10, 50], 900));
    assert_eq!(rollout.checkpoint_approval, stepdeploy_core::config::CheckpointApproval::Auto);
}

#[test]
fn instant_rollback_needs_a_bake_and_names_the_field() {
    let yaml = VALID.replace("domains:", "rollout: {instant_rollback: true}\n    domains:");
    let found: Vec<String> = problems(&yaml).iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "environments.staging.rollout.instant_rollback: true needs a bake: set rollout.bake_seconds (the old instances wait in Standby for its length)"
        ]
    );
    let ok = VALID.replace("domains:", "rollout: {instant_rollback: true, bake_seconds: 300}\n    domains:");
    let env = Config::from_yaml_str(&ok).unwrap().environment("staging").unwrap().clone();
    assert!(env.rollout.instant_rollback);
    // AZRebalance must stay suspended while instances wait in Standby.
    let rebalancing =
        VALID.replace("domains:", "rollout: {instant_rollback: true, bake_seconds: 300, suspend_processes: [ScheduledActions]}\n    domains:");
    let found: Vec<String> = problems(&rebalancing).iter().map(ToString::to_string).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("environments.staging.rollout.suspend_processes: needs AZRebalance"), "{found:?}");
    // Off unless asked for.
    assert!(!Config::from_yaml_str(VALID).unwrap().environment("staging").unwrap().rollout.instant_rollback);
}
