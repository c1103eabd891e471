//! The AWS-side commands (`deploy`, `follow`, `history`, `status`, `config
//! push`, `--stack`, profiles) run as the binary against moto. Moto's Step
//! Functions interpreter runs Pass/Wait/Fail/Choice states but not Lambda
//! Tasks, so the state machines here are stand-ins that emit the records the
//! real deploy steps return; the real definitions run on the local engine
//! (crates/local tests).
#![cfg(feature = "aws")]

#[path = "../../aws/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{Value, json};
use stepdeploy_core::config::{Config, Environment};

/// Turns on moto's Step Functions interpreter (a server setting, kept across resets).
fn moto() -> String {
    static ON: OnceLock<String> = OnceLock::new();
    ON.get_or_init(|| {
        let endpoint = common::endpoint();
        let address = endpoint.trim_start_matches("http://").to_string();
        let body = r#"{"stepfunctions": {"execute_state_machine": true}}"#;
        let mut stream = TcpStream::connect(&address).unwrap();
        write!(stream, "POST /moto-api/config HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 20"), "moto config: {reply}");
        endpoint
    })
    .clone()
}

/// Runs the binary against moto, with no profile or credentials file of the machine's.
/// `program` pointed at moto with its Step Functions interpreter on (see [`common::on_moto`]).
fn on_moto(program: &str, args: &[&str], path: &str, extra_env: &[(&str, &str)]) -> Command {
    common::on_moto(&moto(), program, args, path, extra_env)
}

fn system_path() -> String {
    std::env::var("PATH").unwrap_or_default()
}

fn stepdeploy(args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    on_moto(env!("CARGO_BIN_EXE_stepdeploy"), args, &system_path(), extra_env).output().expect("stepdeploy runs")
}

const ROLE: &str = "arn:aws:iam::123456789012:role/stepdeploy-test";

/// A stand-in deploy: two reconcile steps' records, then success or a named failure.
fn stand_in(fails: bool) -> String {
    let step = |new_healthy: u32, old: u32, next: &str| json!({"step": {"next": next, "seconds": 1, "progress": {"new": new_healthy, "new_healthy": new_healthy, "old": old, "old_healthy": old, "standby": 0, "goal": 4, "min_healthy": 3, "max_total": 5}, "not_healthy": []}, "rolling_back": false});
    let end = if fails {
        json!({"Type": "Fail", "Error": "StepDeploy.RolloutFailed", "Cause": "i-0a1 not healthy 600 s after launch; rolled back to version 6"})
    } else {
        json!({"Type": "Succeed"})
    };
    json!({
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Next": "Replace"},
            "Replace": {"Type": "Pass", "Result": step(2, 2, "wait"), "ResultPath": "$.deployment", "Next": "WaitForRollout"},
            "WaitForRollout": {"Type": "Wait", "Seconds": 1, "Next": "ReplaceAgain"},
            "ReplaceAgain": {"Type": "Pass", "Result": step(4, 0, "done"), "ResultPath": "$.deployment", "Next": "End"},
            "End": end
        }
    })
    .to_string()
}

/// The environment of `web`'s group, target group, listener and template.
fn on_fleet(web: &common::WebEnv) -> Environment {
    Environment {
        region: "us-east-1".into(),
        auto_scaling_group: web.group.clone(),
        target_group_arns: vec![web.target_group_arn.clone()],
        listener_arn: Some(web.listener_arn.clone()),
        launch_template: Some(web.template_id.clone()),
        ..Environment::default()
    }
}

struct Deployment {
    name: String,
    sfn: aws_sdk_sfn::Client,
    ssm: aws_sdk_ssm::Client,
    machines: BTreeMap<String, String>,
    dir: tempfile::TempDir,
}

impl Deployment {
    /// A deployment whose serial deploy succeeds and full deploy fails, with
    /// `staging` and the production `prod` in its config file (not pushed yet).
    async fn new(env: Environment) -> Deployment {
        Deployment::named(common::unique("dep"), env).await
    }

    /// [`Deployment::new`] under a name chosen beforehand (to tag a fleet with).
    async fn named(name: String, env: Environment) -> Deployment {
        moto();
        let config = common::sdk_config().await;
        let sfn = aws_sdk_sfn::Client::new(&config);
        let ssm = aws_sdk_ssm::Client::new(&config);
        let mut machines = BTreeMap::new();
        for (key, fails) in [("serial-deploy", false), ("full-deploy", true), ("maintenance", false)] {
            let created = sfn.create_state_machine().name(format!("{name}-{key}")).definition(stand_in(fails)).role_arn(ROLE).send().await.unwrap();
            machines.insert(key.to_string(), created.state_machine_arn().to_string());
        }
        ssm.put_parameter()
            .name(format!("/stepdeploy/{name}/state-machines"))
            .value(serde_json::to_string(&machines).unwrap())
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
        let prod = Environment { production: true, ..env.clone() };
        let config =
            Config { deployment: name.clone(), environments: [("staging".to_string(), env), ("prod".to_string(), prod)].into_iter().collect() };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stepdeploy.yaml"), config.to_yaml()).unwrap();
        Deployment { name, sfn, ssm, machines, dir }
    }

    fn config_path(&self) -> String {
        self.dir.path().join("stepdeploy.yaml").display().to_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        let config = self.config_path();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--config", &config]);
        stepdeploy(&all, &[])
    }

    async fn executions(&self, machine: &str) -> Vec<aws_sdk_sfn::types::ExecutionListItem> {
        self.sfn.list_executions().state_machine_arn(&self.machines[machine]).send().await.unwrap().executions().to_vec()
    }

    /// Writes the environment's lock as a holder would.
    async fn hold_lock(&self, environment: &str, record: &Value) {
        self.put(&format!("{environment}/lock"), record).await;
    }

    /// Writes `/stepdeploy/DEPLOYMENT/{name}`, as the stack or a step would.
    async fn put(&self, name: &str, value: &Value) {
        self.ssm
            .put_parameter()
            .name(format!("/stepdeploy/{}/{name}", self.name))
            .value(value.to_string())
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    async fn parameter(&self, environment: &str) -> Option<String> {
        let name = format!("/stepdeploy/{}/{environment}", self.name);
        self.ssm.get_parameter().name(name).send().await.ok().and_then(|p| p.parameter().and_then(|p| p.value().map(str::to_string)))
    }
}

#[tokio::test]
async fn config_push_writes_what_the_lambdas_read_asks_for_production_and_is_idempotent() {
    let d = Deployment::new(common::staging()).await;
    let first = d.run(&["config", "push", "staging", "--output", "json"]);
    assert!(first.status.success(), "{}", common::text(&first));
    assert_eq!(common::last_json(&first)["changed"], true);
    let stored = d.parameter("staging").await.expect("written");
    let env = Environment::from_json_str(&stored, "p").expect("the Lambdas' parser reads it");
    assert_eq!(env.auto_scaling_group, "web");
    let again = d.run(&["config", "push", "staging"]);
    assert!(again.status.success() && String::from_utf8_lossy(&again.stdout).contains("unchanged"), "{}", common::text(&again));

    let refused = d.run(&["config", "push", "prod"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("\"prod\" is a production environment: pass --yes"), "{}", common::text(&refused));
    assert_eq!(d.parameter("prod").await, None, "nothing written without confirmation");
    let confirmed = d.run(&["config", "push", "prod", "--yes"]);
    assert!(confirmed.status.success(), "{}", common::text(&confirmed));
    assert!(d.parameter("prod").await.is_some());

    let unknown = d.run(&["config", "push", "qa"]);
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("environment: \"qa\" is not in the config; expected one of: staging, prod"),
        "{}",
        common::text(&unknown)
    );
}

#[tokio::test]
async fn deploy_serial_starts_a_readable_execution_and_follows_it_to_success() {
    let d = Deployment::new(common::staging()).await;
    assert!(d.run(&["config", "push", "staging"]).status.success());
    let out = d.run(&["deploy", "serial", "staging", "--version", "7", "--poll-seconds", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("] Replace")
            && stdout.contains("deploying: 2/4 on target (2 healthy), 2 old (2 healthy); healthy 4 (floor 3), live 4 (ceiling 5)"),
        "{stdout}"
    );
    assert!(stdout.contains("4/4 on target (4 healthy)") && stdout.lines().last().unwrap().contains("SUCCEEDED"), "{stdout}");
    let runs = d.executions("serial-deploy").await;
    assert_eq!(runs.len(), 1);
    assert!(runs[0].name().starts_with("staging-serial-20"), "{}", runs[0].name());
    let described = d.sfn.describe_execution().execution_arn(runs[0].execution_arn()).send().await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(described.input().unwrap()).unwrap(), json!({"environment": "staging", "launch_template_version": "7"}));
}

#[tokio::test]
async fn a_failed_execution_prints_its_error_and_cause_and_exits_1() {
    let d = Deployment::new(common::staging()).await;
    assert!(d.run(&["config", "push", "staging"]).status.success());
    let out = d.run(&["deploy", "full", "staging", "--migrations", "--poll-seconds", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAILED: StepDeploy.RolloutFailed\ni-0a1 not healthy 600 s after launch; rolled back to version 6"), "{stdout}");

    let json = d.run(&["deploy", "full", "staging", "--poll-seconds", "1", "--output", "json"]);
    assert_eq!(json.status.code(), Some(1));
    let summary = common::last_json(&json);
    assert_eq!((summary["status"].as_str(), summary["error"].as_str()), (Some("FAILED"), Some("StepDeploy.RolloutFailed")));
    assert!(String::from_utf8_lossy(&json.stderr).contains("] Replace"), "with --output json, progress goes to stderr");
}

#[tokio::test]
async fn production_needs_yes_and_bad_input_starts_nothing() {
    let d = Deployment::new(common::staging()).await;
    assert!(d.run(&["config", "push", "prod", "--yes"]).status.success());
    let refused = d.run(&["maintenance", "on", "prod"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("\"prod\" is a production environment: pass --yes"), "{}", common::text(&refused));
    let not_pushed = d.run(&["maintenance", "on", "staging"]);
    assert!(String::from_utf8_lossy(&not_pushed.stderr).contains("run `stepdeploy config push staging`"), "{}", common::text(&not_pushed));
    let no_machine = d.run(&["bake", "prod", "--yes"]);
    assert!(String::from_utf8_lossy(&no_machine.stderr).contains("has no bake state machine"), "{}", common::text(&no_machine));
    let no_deployment = stepdeploy(&["status", "staging"], &[]);
    assert!(
        String::from_utf8_lossy(&no_deployment.stderr).contains("no deployment: pass --deployment NAME or --stack NAME"),
        "{}",
        common::text(&no_deployment)
    );
    assert!(d.executions("maintenance").await.is_empty(), "nothing was started");

    let started = d.run(&["maintenance", "on", "prod", "--yes", "--no-wait", "--output", "json"]);
    assert!(started.status.success(), "{}", common::text(&started));
    let arn = common::last_json(&started)["execution_arn"].as_str().unwrap().to_string();
    assert!(arn.contains(":prod-maintenance-on-"), "{arn}");
    let followed = stepdeploy(&["follow", &arn, "--poll-seconds", "1", "--output", "json"], &[]);
    assert!(followed.status.success(), "{}", common::text(&followed));
    assert_eq!(common::last_json(&followed)["status"], "SUCCEEDED");
}

#[tokio::test]
async fn history_lists_the_environments_executions_with_outcome_and_duration() {
    let d = Deployment::new(common::staging()).await;
    assert!(d.run(&["config", "push", "staging"]).status.success());
    assert!(d.run(&["config", "push", "prod", "--yes"]).status.success());
    assert_eq!(d.run(&["deploy", "serial", "staging", "--poll-seconds", "1"]).status.code(), Some(0));
    assert_eq!(d.run(&["deploy", "full", "staging", "--poll-seconds", "1"]).status.code(), Some(1));
    assert_eq!(d.run(&["deploy", "serial", "prod", "--yes", "--poll-seconds", "1"]).status.code(), Some(0));
    let out = d.run(&["history", "staging", "--output", "json"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let runs = common::last_json(&out)["executions"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 2, "prod's execution is not staging's: {runs:?}");
    assert_eq!(runs[0]["state_machine"], "full-deploy", "newest first");
    assert_eq!((runs[0]["status"].as_str(), runs[0]["error"].as_str()), (Some("FAILED"), Some("StepDeploy.RolloutFailed")));
    assert_eq!(runs[1]["status"], "SUCCEEDED");
    assert!(runs[1]["duration_seconds"].as_i64().is_some());
    let plain = d.run(&["history", "staging"]);
    let stdout = String::from_utf8_lossy(&plain.stdout);
    assert!(stdout.contains("FAILED") && stdout.contains("StepDeploy.RolloutFailed: i-0a1 not healthy"), "{stdout}");
}

#[tokio::test]
async fn stack_outputs_and_a_credential_process_profile_work_as_the_aws_cli_does() {
    let d = Deployment::new(common::staging()).await;
    assert!(d.run(&["config", "push", "staging"]).status.success());
    let config = common::sdk_config().await;
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    let stack = common::unique("stack");
    let template = json!({
        "Parameters": {"Deployment": {"Type": "String"}},
        "Resources": {"Marker": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": format!("/stepdeploy-test/{stack}"), "Type": "String", "Value": "x"}}},
        "Outputs": {
            "SerialDeployStateMachineArn": {"Value": d.machines["serial-deploy"]},
            "PrepareFunctionArn": {"Value": "arn:aws:lambda:us-east-1:123456789012:function:prepare"}
        }
    });
    cfn.create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .parameters(aws_sdk_cloudformation::types::Parameter::builder().parameter_key("Deployment").parameter_value(&d.name).build())
        .send()
        .await
        .unwrap();
    // No config file and no --deployment: the stack names both.
    let out = stepdeploy(&["deploy", "serial", "staging", "--stack", &stack, "--no-wait", "--output", "json"], &[]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(common::last_json(&out)["state_machine"], "serial-deploy");
    // config push with --stack writes under the stack's deployment, whatever the file says.
    let elsewhere = d.dir.path().join("elsewhere.yaml");
    let yaml = std::fs::read_to_string(d.config_path()).unwrap().replace(&format!("deployment: {}", d.name), "deployment: someone-else");
    assert!(yaml.contains("deployment: someone-else"), "{yaml}");
    std::fs::write(&elsewhere, yaml).unwrap();
    d.ssm.delete_parameter().name(format!("/stepdeploy/{}/staging", d.name)).send().await.unwrap();
    let pushed = stepdeploy(&["config", "push", "staging", "--stack", &stack, "--config", elsewhere.to_str().unwrap()], &[]);
    assert!(pushed.status.success(), "{}", common::text(&pushed));
    assert!(d.parameter("staging").await.is_some(), "{}", common::text(&pushed));
    let missing = stepdeploy(&["status", "staging", "--stack", "no-such-stack"], &[]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--stack no-such-stack: DescribeStacks"), "{}", common::text(&missing));

    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("config");
    let credentials = r#"{"Version": 1, "AccessKeyId": "from-process", "SecretAccessKey": "secret"}"#;
    std::fs::write(&profile, format!("[profile ops]\nregion = us-east-1\ncredential_process = echo '{credentials}'\n")).unwrap();
    let with_profile = stepdeploy(
        &["history", "staging", "--deployment", &d.name, "--profile", "ops", "--output", "json"],
        &[("AWS_CONFIG_FILE", profile.to_str().unwrap())],
    );
    assert!(with_profile.status.success(), "{}", common::text(&with_profile));
    assert_eq!(common::last_json(&with_profile)["executions"].as_array().map(Vec::len), Some(1));
    let no_profile =
        stepdeploy(&["history", "staging", "--deployment", &d.name, "--profile", "nope"], &[("AWS_CONFIG_FILE", profile.to_str().unwrap())]);
    assert_eq!(no_profile.status.code(), Some(1), "{}", common::text(&no_profile));
}

#[tokio::test]
async fn status_shows_the_fleet_lock_page_and_running_executions() {
    let web = common::web_env(2).await;
    let d = Deployment::new(on_fleet(&web)).await;
    assert!(d.run(&["config", "push", "staging"]).status.success());
    let out = d.run(&["status", "staging", "--output", "json"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let status = common::last_json(&out);
    assert_eq!(status["group"], web.group.as_str());
    assert_eq!(status["versions"][0]["image_id"], web.old_image.as_str());
    assert_eq!((status["versions"][0]["instances"].as_u64(), status["versions"][0]["healthy"].as_u64()), (Some(2), Some(2)));
    assert_eq!(status["lock"], Value::Null);
    assert_eq!(status["maintenance_on"], false);
    assert_eq!(status["running_executions"], json!([]));

    let lock = json!({"execution": "arn:aws:states:us-east-1:123456789012:execution:x:staging-serial-1", "since": 1, "suspended": []});
    d.hold_lock("staging", &lock).await;
    let plain = d.run(&["status", "staging"]);
    let stdout = String::from_utf8_lossy(&plain.stdout);
    assert!(
        stdout.contains("2 live, 2 healthy") && stdout.contains("lock: held by arn:aws:states:us-east-1:123456789012:execution:x:staging-serial-1"),
        "{stdout}"
    );
    assert!(stdout.contains("stale") && stdout.contains("maintenance page: off") && stdout.contains("running executions: none"), "{stdout}");

    // After a failed deploy, status names it with its error and cause (a failed rollback's says what it left).
    assert_eq!(d.run(&["deploy", "full", "staging", "--poll-seconds", "1"]).status.code(), Some(1));
    let plain = d.run(&["status", "staging"]);
    let stdout = String::from_utf8_lossy(&plain.stdout);
    assert!(stdout.contains("last finished:") && stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("StepDeploy.RolloutFailed: i-0a1 not healthy 600 s after launch"), "{stdout}");
    let json = common::last_json(&d.run(&["status", "staging", "--output", "json"]));
    assert_eq!(json["last_finished_execution"]["error"], "StepDeploy.RolloutFailed", "{json}");
}

#[tokio::test]
async fn deploy_by_revision_resolves_the_baked_version_before_starting() {
    use aws_sdk_ec2::types::Tag;
    let web = common::web_env(1).await;
    let env = Environment { launch_template: Some(web.template_id.clone()), ..common::staging() };
    let d = Deployment::new(env).await;
    assert!(d.run(&["config", "push", "staging"]).status.success());
    // What a bake leaves: an image of our own, tagged, and a template version on it.
    let ec2 = aws_sdk_ec2::Client::new(&web.config);
    let asg = aws_sdk_autoscaling::Client::new(&web.config);
    let groups = asg.describe_auto_scaling_groups().auto_scaling_group_names(&web.group).send().await.unwrap();
    let instance = groups.auto_scaling_groups()[0].instances()[0].instance_id().unwrap().to_string();
    let image = ec2.create_image().instance_id(&instance).name(common::unique("baked")).send().await.unwrap().image_id().unwrap().to_string();
    let mut tagging = ec2.create_tags().resources(&image);
    for (key, value) in [("stepdeploy:deployment", d.name.as_str()), ("stepdeploy:environment", "staging"), ("stepdeploy:revision", "4f2c9e1")] {
        tagging = tagging.tags(Tag::builder().key(key).value(value).build());
    }
    tagging.send().await.unwrap();
    let baked = ec2
        .create_launch_template_version()
        .launch_template_id(&web.template_id)
        .launch_template_data(aws_sdk_ec2::types::RequestLaunchTemplateData::builder().image_id(&image).instance_type("t3.micro".into()).build())
        .send()
        .await
        .unwrap();
    let version = baked.launch_template_version().unwrap().version_number().unwrap().to_string();
    assert_eq!(version, "3", "web_env made versions 1 and 2");

    let out = d.run(&["deploy", "serial", "staging", "--revision", "4f2c9e1", "--no-wait", "--output", "json"]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(common::last_json(&out)["input"], json!({"environment": "staging", "launch_template_version": version, "revision": "4f2c9e1"}));
    let unknown = d.run(&["deploy", "serial", "staging", "--revision", "0000000", "--no-wait"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("revision: \"0000000\": no image"), "{}", common::text(&unknown));
    let runs = d.executions("serial-deploy").await;
    assert_eq!(runs.len(), 1, "the unknown revision started nothing");
    // Moto runs it to the end at once or within the poll; either is fine here.
    assert!(matches!(runs[0].status(), ExecutionStatus::Running | ExecutionStatus::Succeeded));
}

/// The AWS CLI and shellcheck come from `.venv-awscli` (scripts/test installs them).
fn aws_cli_dir() -> std::path::PathBuf {
    let dir = std::env::var("STEPDEPLOY_AWS_CLI_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv-awscli/bin")));
    assert!(
        dir.join("aws").exists(),
        "no AWS CLI in {}: run scripts/test (it installs it into .venv-awscli), or set STEPDEPLOY_AWS_CLI_DIR",
        dir.display()
    );
    dir
}

/// Runs a `scripts/` wrapper with the AWS CLI pointed at moto.
fn script(name: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let path = format!("{}:{}", aws_cli_dir().display(), system_path());
    let program = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/").to_string() + name;
    let mut env = vec![("STEPDEPLOY_POLL_SECONDS", "1")];
    env.extend_from_slice(extra_env);
    on_moto(&program, args, &path, &env).output().expect("the script runs")
}

#[tokio::test]
async fn the_aws_cli_scripts_start_follow_and_report_like_the_binary() {
    let d = Deployment::new(common::staging()).await;
    let dep = [("STEPDEPLOY_DEPLOYMENT", d.name.as_str())];
    let ok = script("deploy-serial", &["staging", "7", "4f2c9e1"], &dep);
    assert_eq!(ok.status.code(), Some(0), "{}", common::text(&ok));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(stdout.contains("SUCCEEDED"), "{stdout}");
    let runs = d.executions("serial-deploy").await;
    assert_eq!(runs.len(), 1);
    assert!(runs[0].name().starts_with("staging-serial-deploy-20"), "{}", runs[0].name());
    let described = d.sfn.describe_execution().execution_arn(runs[0].execution_arn()).send().await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(described.input().unwrap()).unwrap(),
        json!({"environment": "staging", "launch_template_version": "7", "revision": "4f2c9e1"})
    );

    let failed = script("deploy-full", &["staging", "$Default", "--migrations"], &dep);
    assert_eq!(failed.status.code(), Some(1), "{}", common::text(&failed));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("error: StepDeploy.RolloutFailed") && stderr.contains("cause: i-0a1 not healthy"), "{stderr}");

    let bad = script("deploy-serial", &["staging", "seven"], &dep);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("VERSION: \"seven\" is not a launch template version"), "{}", common::text(&bad));
    let injected = script("maintenance", &["staging\", \"action\": \"off", "on"], &dep);
    assert_eq!(injected.status.code(), Some(2), "{}", common::text(&injected));
    let no_deployment = script("maintenance", &["staging", "on"], &[]);
    assert_eq!(no_deployment.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_deployment.stderr).contains("set STEPDEPLOY_DEPLOYMENT"), "{}", common::text(&no_deployment));
    assert!(d.executions("maintenance").await.is_empty(), "bad usage started nothing");

    // AWS CLI v1 ignores AWS_REGION: with only that set, the scripts still find the region.
    let path = format!("{}:{}", aws_cli_dir().display(), system_path());
    let program = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/maintenance");
    let env = [dep[0], ("STEPDEPLOY_NO_WAIT", "1"), ("STEPDEPLOY_POLL_SECONDS", "1")];
    let region_only = on_moto(program, &["staging", "on"], &path, &env).env_remove("AWS_DEFAULT_REGION").output().unwrap();
    assert_eq!(region_only.status.code(), Some(0), "{}", common::text(&region_only));

    let no_wait = script("maintenance", &["staging", "on"], &[dep[0], ("STEPDEPLOY_NO_WAIT", "1")]);
    assert_eq!(no_wait.status.code(), Some(0), "{}", common::text(&no_wait));
    assert!(String::from_utf8_lossy(&no_wait.stdout).trim().contains(":execution:"), "{}", common::text(&no_wait));
    let missing = script("start-execution", &["bake", "staging"], &dep);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("lists no bake state machine"), "{}", common::text(&missing));
}

#[tokio::test]
async fn the_aws_cli_scripts_read_the_stack_outputs() {
    let d = Deployment::new(common::staging()).await;
    let cfn = aws_sdk_cloudformation::Client::new(&common::sdk_config().await);
    let stack = common::unique("scripts");
    let template = json!({
        "Resources": {"Marker": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": format!("/stepdeploy-test/{stack}"), "Type": "String", "Value": "x"}}},
        "Outputs": {"MaintenanceStateMachineArn": {"Value": d.machines["maintenance"]}}
    });
    cfn.create_stack().stack_name(&stack).template_body(template.to_string()).send().await.unwrap();
    let out =
        script("start-execution", &["maintenance", "staging", r#"{"environment": "staging", "action": "off"}"#], &[("STEPDEPLOY_STACK", &stack)]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    assert_eq!(d.executions("maintenance").await.len(), 1);
    let wrong = script("start-execution", &["serial-deploy", "staging"], &[("STEPDEPLOY_STACK", &stack)]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("has no output SerialDeployStateMachineArn"), "{}", common::text(&wrong));
}

/// Runs the binary on a terminal (util-linux `script` makes the pty) and types `answer` at the prompt.
fn on_a_terminal(d: &Deployment, args: &[&str], answer: &str) -> String {
    let mut line = vec![env!("CARGO_BIN_EXE_stepdeploy").to_string()];
    line.extend(args.iter().map(|a| a.to_string()));
    line.extend(["--config".to_string(), d.config_path()]);
    let quoted: Vec<String> = line.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
    let mut child = on_moto("script", &["-qec", &quoted.join(" "), "/dev/null"], &system_path(), &[("NO_COLOR", "1")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script runs");
    // The prompt comes after the AWS reads; the pty buffers the answer until then.
    child.stdin.take().unwrap().write_all(format!("{answer}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test]
async fn on_a_terminal_production_asks_for_the_environment_name() {
    let d = Deployment::new(common::staging()).await;
    assert!(d.run(&["config", "push", "prod", "--yes"]).status.success());
    let declined = on_a_terminal(&d, &["maintenance", "on", "prod", "--no-wait"], "yes");
    assert!(declined.contains("\"prod\" is a production environment. Start maintenance"), "{declined}");
    assert!(declined.contains("not confirmed; nothing was started"), "{declined}");
    assert!(d.executions("maintenance").await.is_empty());
    let confirmed = on_a_terminal(&d, &["maintenance", "on", "prod", "--poll-seconds", "1"], "prod");
    assert!(confirmed.contains("SUCCEEDED"), "{confirmed}");
    assert_eq!(d.executions("maintenance").await.len(), 1);
}

#[tokio::test]
async fn history_draws_a_real_executions_timeline_from_its_history() {
    let d = Deployment::new(common::staging()).await;
    assert!(d.run(&["config", "push", "staging"]).status.success());
    assert_eq!(d.run(&["deploy", "serial", "staging", "--poll-seconds", "1"]).status.code(), Some(0));
    let arn = d.executions("serial-deploy").await[0].execution_arn().to_string();
    let svg = d.dir.path().join("timeline.svg");
    let out = d.run(&["history", "staging", "--timeline", &arn, "--out", svg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(common::text(&out).contains("timeline of 2 reconcile steps written to"), "{}", common::text(&out));
    let drawn = std::fs::read_to_string(&svg).unwrap();
    // The stand-in's two steps: the floor (3) and the live line are drawn, with their legend.
    for name in ["healthy", "healthy new", "healthy old", "live", "floor", "ceiling"] {
        assert!(drawn.contains(&format!("\n{name}\n")), "the legend names {name}");
    }
    assert!(drawn.matches("<polyline").count() >= 12, "six series and their swatches");
    // Something that is not a deploy has nothing to chart, and says so.
    let other = d.run(&["history", "staging", "--timeline", &arn.replace("serial-deploy", "no-such"), "--out", svg.to_str().unwrap()]);
    assert_eq!(other.status.code(), Some(1));
}

#[tokio::test]
async fn doctor_checks_a_real_environment_read_only_and_says_what_to_fix() {
    let name = common::unique("dep");
    let web = common::web_env_of(2, &name).await;
    let d = Deployment::named(name, on_fleet(&web)).await;
    // Not pushed yet: that check fails with the command to run; the others read the file's settings.
    let out = d.run(&["doctor", "staging", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out));
    let report = common::last_json(&out);
    let verdict =
        |report: &Value, name: &str| report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap_or(Value::Null);
    assert_eq!(verdict(&report, "stack")["ok"], true, "{report}");
    assert_eq!(verdict(&report, "config pushed")["fix"], "stepdeploy config push staging");
    let every_other =
        ["Auto Scaling group", "group fit for a rollout", "launch template", "target group", "listener", "tags", "SSM", "health timing"];
    for name in every_other.into_iter().chain(["vCPU quota", "lock"]) {
        assert_eq!(verdict(&report, name)["ok"], true, "{name}: {report}");
    }
    assert!(d.run(&["config", "push", "staging"]).status.success());
    let out = d.run(&["doctor", "staging"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ready to deploy"));
    // moto has no EC2 quota in Service Quotas: not checked, and said so.
    let report = common::last_json(&d.run(&["doctor", "staging", "--output", "json"]));
    assert!(verdict(&report, "vCPU quota")["detail"].as_str().unwrap_or("").starts_with("not checked"), "{report}");
    // A fleet of another deployment's tags fails the tags check, naming what to tag.
    let other = common::web_env(1).await;
    let d_other = Deployment::named(common::unique("dep"), on_fleet(&other)).await;
    assert!(d_other.run(&["config", "push", "staging"]).status.success());
    let report = common::last_json(&d_other.run(&["doctor", "staging", "--output", "json"]));
    let tags = verdict(&report, "tags");
    assert_eq!(tags["ok"], false, "{report}");
    assert!(
        tags["detail"].as_str().unwrap_or("").contains(&other.group) && tags["fix"].as_str().unwrap_or("").contains("PropagateAtLaunch"),
        "{tags}"
    );
    // A held lock fails its check, naming the holder.
    let lock = json!({"execution": "arn:aws:states:us-east-1:123456789012:execution:x:staging-serial-1", "since": 1, "suspended": []});
    d.hold_lock("staging", &lock).await;
    let out = d.run(&["doctor", "staging", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(verdict(&common::last_json(&out), "lock")["detail"].as_str().unwrap_or("").contains("staging-serial-1"));
}

#[tokio::test]
async fn doctor_fails_each_check_moto_can_break_with_what_to_do() {
    use aws_sdk_cloudwatch::types::StateValue;
    let verdicts = |out: &std::process::Output| -> BTreeMap<String, Value> {
        let report = common::last_json(out);
        report["checks"].as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap_or_default().to_string(), c.clone())).collect()
    };
    let failed =
        |checks: &BTreeMap<String, Value>| -> Vec<String> { checks.iter().filter(|(_, c)| c["ok"] == false).map(|(n, _)| n.clone()).collect() };

    // Names that point at nothing: each fails its own check, with a fix.
    let nothing = Environment {
        region: "us-east-1".into(),
        auto_scaling_group: "no-such-group".into(),
        target_group_arns: vec!["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/none/0000000000000000".into()],
        listener_arn: Some("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/none/0000000000000000/0000000000000000".into()),
        launch_template: Some("lt-00000000000000000".into()),
        alarms: vec![common::unique("no-such-alarm")],
        ..Environment::default()
    };
    let d = Deployment::new(nothing).await;
    assert!(d.run(&["config", "push", "staging"]).status.success());
    let out = d.run(&["doctor", "staging", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out));
    let checks = verdicts(&out);
    // (tags fails too, on moto only: its DescribeTags answers an ARN that doesn't exist with no
    // tags, where AWS answers TargetGroupNotFound, which doctor leaves to the target group check.)
    assert_eq!(failed(&checks), ["Auto Scaling group", "alarms", "launch template", "listener", "tags", "target group"], "{checks:#?}");
    assert!(checks.values().filter(|c| c["ok"] == false).all(|c| c["fix"].is_string()), "{checks:#?}");
    // A stack whose parameter lists no full deploy (an older template): the stack check fails.
    d.put("state-machines", &json!({"serial-deploy": d.machines["serial-deploy"]})).await;
    let stack = &verdicts(&d.run(&["doctor", "staging", "--output", "json"]))["stack"];
    assert_eq!((stack["ok"].as_bool(), stack["detail"].as_str()), (Some(false), Some("no full-deploy state machine")), "{stack}");
    assert!(stack["fix"].as_str().unwrap_or("").contains("sam-deploy"), "{stack}");

    // A real fleet with Launch suspended, health checks slower than the instance timeout, and an alarm firing.
    let name = common::unique("dep");
    let web = common::web_env_of(1, &name).await;
    let sdk = common::sdk_config().await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    asg.suspend_processes().auto_scaling_group_name(&web.group).scaling_processes("Launch").send().await.unwrap();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    elb.modify_target_group()
        .target_group_arn(&web.target_group_arn)
        .health_check_interval_seconds(60)
        .healthy_threshold_count(10)
        .send()
        .await
        .unwrap();
    let alarm = common::unique("5xx");
    common::put_5xx_alarm(&sdk, &alarm).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
    cloudwatch.set_alarm_state().alarm_name(&alarm).state_value(StateValue::Alarm).state_reason("5xx over 5").send().await.unwrap();
    let d = Deployment::named(name, Environment { alarms: vec![alarm.clone()], ..on_fleet(&web) }).await;
    assert!(d.run(&["config", "push", "staging"]).status.success());
    let checks = verdicts(&d.run(&["doctor", "staging", "--output", "json"]));
    assert_eq!(failed(&checks), ["alarms", "group fit for a rollout", "health timing"], "{checks:#?}");
    assert!(checks["group fit for a rollout"]["detail"].as_str().unwrap_or("").contains("Launch"), "{checks:#?}");
    // 10 checks 60 s apart: 600 s at the soonest, not under the default health.timeout_seconds of 600.
    assert!(checks["health timing"]["detail"].as_str().unwrap_or("").contains("after 600 s at the soonest (10 × 60 s)"), "{checks:#?}");
    assert!(checks["alarms"]["detail"].as_str().unwrap_or("").contains(&alarm), "{checks:#?}");
    // (SSM and the vCPU quota can't fail on moto: it runs no agent and has no EC2 quota. Their
    // failing cases are on the sim, crates/local/tests/doctor.rs, and their adapters' on
    // aws-smithy-mocks, crates/aws/tests/mocked.rs.)
}

#[tokio::test]
async fn approve_and_reject_answer_the_paused_rollout_the_lock_records_and_status_shows_how() {
    let web = common::web_env(2).await;
    let d = Deployment::new(on_fleet(&web)).await;
    assert!(d.run(&["config", "push", "staging"]).status.success());
    // Nothing runs: nothing to approve, said in one line naming the environment.
    let out = d.run(&["approve", "staging"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out));
    assert!(common::text(&out).contains("nothing runs on staging"), "{}", common::text(&out));

    let execution = "arn:aws:states:us-east-1:123456789012:execution:x:staging-serial-2";
    let pause = json!({"token": "AQB8AAAAKgAAAAMAAAAAAAAAAdeploy-token", "percent": 50, "instances": 1, "goal": 2, "approval": "manual", "since": 1_800_000_000, "until": 1_800_003_600});
    let lock = json!({"execution": execution, "since": 1_800_000_000, "suspended": [], "pause": pause});
    d.hold_lock("staging", &lock).await;
    let stdout = String::from_utf8_lossy(&d.run(&["status", "staging"]).stdout).to_string();
    assert!(stdout.contains("PAUSED at the 50 % checkpoint (1 of 2 on the new version)"), "{stdout}");
    assert!(stdout.contains("approve: stepdeploy approve staging") && stdout.contains("reject:  stepdeploy reject staging --reason"), "{stdout}");
    assert!(
        stdout.contains("aws stepfunctions send-task-success --task-output '{}' --task-token 'AQB8AAAAKgAAAAMAAAAAAAAAAdeploy-token'"),
        "{stdout}"
    );
    // moto's interpreter knows no task waiting for that token (as AWS after a pause ended): said so,
    // with Step Functions' own code; the answer that reaches a waiting task is tested on the sim.
    let out = d.run(&["approve", "staging"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out));
    let text = common::text(&out);
    assert!(text.contains(&format!("the pause of {execution} at 50 % already ended")) && text.contains("InvalidToken"), "{text}");
    let out = d.run(&["reject", "staging", "--reason", "  "]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::text(&out).contains("--reason: empty"), "{}", common::text(&out));
}
