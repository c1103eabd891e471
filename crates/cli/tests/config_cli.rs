//! `stepdeploy config import` and `config check`, run as an operator would, and argument checks that stop before any AWS call.

use std::path::PathBuf;
use std::process::{Command, Output};

fn stepdeploy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stepdeploy")).args(args).output().expect("stepdeploy runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The shared reference file; a missing shared/ folder fails the test.
fn opendebates() -> Option<PathBuf> {
    let dir = std::env::var("STEPDEPLOY_SHARED_DIR").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").to_string());
    let path = PathBuf::from(dir).join("reference/opendebates-fabulaws-config.yml");
    if path.exists() {
        return Some(path);
    }
    panic!("{} is missing (set STEPDEPLOY_SHARED_DIR)", path.display())
}

#[test]
fn import_then_check_lists_what_the_operator_must_fill_in() {
    let Some(source) = opendebates() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stepdeploy.yaml");
    // The real file misspells a production environment: the import stops, writes nothing, and asks.
    let refused = stepdeploy(&["config", "import", source.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("--production-fix presidenetial=presidential"), "{}", text(&refused.stderr));
    assert!(!out.exists(), "nothing written");
    let import =
        stepdeploy(&["config", "import", source.to_str().unwrap(), "--production-fix", "presidenetial=presidential", "-o", out.to_str().unwrap()]);
    let stderr = text(&import.stderr);
    assert!(import.status.success(), "{stderr}");
    assert!(stderr.contains("inconsistent input: production_environments: \"presidenetial\""), "{stderr}");
    assert!(stderr.contains("warning: static_html: not carried over"), "{stderr}");

    let yaml = std::fs::read_to_string(&out).unwrap();
    for env in ["testing", "staging", "florida", "presidential", "staging01", "prod01"] {
        assert!(yaml.contains(&format!("auto_scaling_group: opendebates-{env}-ag")), "{env}");
        assert!(yaml.contains(&format!("load_balancer: opendebates-{env}-lb")), "{env}");
    }
    assert!(yaml.contains("- www.opendebatequestions.com"));
    assert!(yaml.contains("min_healthy_percent: 100"), "defaults are spelled out");
    assert!(yaml.contains("# INCONSISTENT INPUT"));
    assert!(yaml.contains("presidential is marked production"), "the choice is recorded in the file");

    let check = stepdeploy(&["config", "check", out.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    let report = text(&check.stdout);
    assert!(report.contains("environments.prod01.listener_arn: required: fill in"), "{report}");
    assert!(report.contains("environments.testing.target_group_arns: required: fill in"), "{report}");
    assert!(report.contains("environments.staging01.launch_template: required: fill in"), "{report}");
    assert_eq!(report.lines().count(), 18, "{report}");
}

#[test]
fn check_of_a_bad_value_exits_1_naming_the_field_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "deployment: app\nenvironments:\n  prod01:\n    region: us-east-1\n    auto_scaling_group: g\n    target_group_arns: [\"arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/w/1\"]\n    listener_arn: \"arn:aws:elasticloadbalancing:us-east-1:1:listener/app/w/1/2\"\n    launch_template: lt-1\n    rollout: {min_healthy_percent: 120}\n",
    )
    .unwrap();
    let check = stepdeploy(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    assert_eq!(text(&check.stdout).trim(), "environments.prod01.rollout.min_healthy_percent: 120 is not in 0..=100");
    let json = stepdeploy(&["config", "check", file.to_str().unwrap(), "--output", "json"]);
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["problems"][0]["path"], "environments.prod01.rollout.min_healthy_percent");

    std::fs::write(&file, text(&std::fs::read(&file).unwrap()).replace("120", "50")).unwrap();
    let check = stepdeploy(&["config", "check", file.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stdout));
    let json = stepdeploy(&["config", "check", file.to_str().unwrap(), "--output", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!((report["ok"].as_bool(), report["environments"][0].as_str()), (Some(true), Some("prod01")));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = stepdeploy(&["config", "check", "/nonexistent/stepdeploy.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read /nonexistent/stepdeploy.yaml"));
}

#[test]
fn in_place_offers_no_ceiling_flag() {
    // An in-place deploy launches nothing: --max-healthy-percent is not one of its flags at all.
    let out = stepdeploy(&["in-place", "staging", "--max-healthy-percent", "150", "--deployment", "d", "--region", "us-east-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unexpected argument '--max-healthy-percent'"), "{}", text(&out.stderr));
    let help = text(&stepdeploy(&["in-place", "--help"]).stdout);
    assert!(!help.contains("max-healthy-percent") && help.contains("--min-healthy-percent") && help.contains("--batch-size"), "{help}");
}

#[test]
fn an_environment_the_config_lacks_is_named_before_anything_needs_aws() {
    // No region, no credentials, no endpoint: the one thing wrong is the environment's name.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stepdeploy.yaml");
    std::fs::write(
        &file,
        "deployment: app\nenvironments:\n  staging:\n    region: us-east-1\n    auto_scaling_group: g\n    target_group_arns: [\"arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/w/1\"]\n    listener_arn: \"arn:aws:elasticloadbalancing:us-east-1:1:listener/app/w/1/2\"\n    launch_template: lt-1\n",
    )
    .unwrap();
    for args in [vec!["status", "nosuchenv"], vec!["deploy", "serial", "nosuchenv"]] {
        let mut all = args.clone();
        all.extend(["--config", file.to_str().unwrap()]);
        let out = Command::new(env!("CARGO_BIN_EXE_stepdeploy"))
            .args(&all)
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("environment: \"nosuchenv\" is not in") && stderr.contains("(it has: staging)"), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

/// `stepdeploy status staging` with this environment and none of the machine's AWS settings.
fn status_with(env: &[(&str, &str)], extra: &[&str]) -> (String, std::time::Duration) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stepdeploy"));
    command.args(["status", "staging", "--region", "us-east-1", "--deployment", "app"]).args(extra);
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"] {
        command.env_remove(var);
    }
    command.env("AWS_CONFIG_FILE", "/nonexistent").env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent").env("AWS_EC2_METADATA_DISABLED", "true");
    command.envs(env.iter().copied());
    let started = std::time::Instant::now();
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    (text(&out.stderr), started.elapsed())
}

#[test]
fn missing_credentials_a_missing_profile_and_an_unreachable_endpoint_are_one_line_each() {
    let (stderr, took) = status_with(&[], &[]);
    assert!(stderr.starts_with("error: no AWS credentials: run `aws configure` or `aws sso login`, pass --profile NAME"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(took.as_secs() < 15, "within seconds: {took:?}");

    let (stderr, _) = status_with(&[], &["--profile", "nosuch"]);
    assert!(stderr.starts_with("error: --profile: \"nosuch\" is not a profile in ~/.aws/config or ~/.aws/credentials"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let (stderr, took) = status_with(&[("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:9")], &[]);
    assert!(stderr.contains("Connection refused") && !stderr.contains("DispatchFailure {"), "no SDK dump without -v: {stderr}");
    assert_eq!(stderr.matches("Connection refused").count(), 1, "each cause said once: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(took.as_secs() < 30, "within seconds: {took:?}");
    // -v adds what is behind it.
    let (verbose, _) =
        status_with(&[("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:9")], &["-v"]);
    assert!(verbose.lines().count() > 1 && verbose.contains("caused by (1)") && verbose.contains("DispatchFailure"), "{verbose}");
}
