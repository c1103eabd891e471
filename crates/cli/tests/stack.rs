//! template.yaml as a whole: the SAM-expanded template creates a stack on
//! moto's CloudFormation (functions from a placeholder zip, roles, state
//! machines, the SSM document and parameter, topic, rules and schedule), and
//! `stepdeploy --stack` finds the state machines in its outputs.
//!
//! Its own test binary, so its own moto server: with moto's Step Functions
//! interpreter on (as aws_cli.rs turns it on), state machines created through
//! CloudFormation are not visible to the Step Functions API (a moto gap).

#[path = "../../aws/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use stepdeploy_core::config::Config;

const ROLE: &str = "arn:aws:iam::123456789012:role/stepdeploy-test";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn aws_cli_dir() -> PathBuf {
    let dir = std::env::var("STEPDEPLOY_AWS_CLI_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join(".venv-awscli/bin"));
    assert!(dir.join("aws").exists(), "no AWS CLI in {}: run scripts/test, or set STEPDEPLOY_AWS_CLI_DIR", dir.display());
    dir
}

fn run(program: &str, args: &[&str]) -> Output {
    let path = format!("{}:{}", aws_cli_dir().display(), std::env::var("PATH").unwrap_or_default());
    common::on_moto(&common::endpoint(), program, args, &path, &[]).output().expect("it runs")
}

fn stepdeploy(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_stepdeploy"), args)
}

/// The Python with cfn-lint and the SAM translator (`scripts/test` installs it in `.venv`).
fn python() -> PathBuf {
    std::env::var("STEPDEPLOY_PYTHON").map(PathBuf::from).unwrap_or_else(|_| root().join(".venv/bin/python"))
}

#[tokio::test]
async fn the_sam_expanded_template_creates_on_moto_and_the_cli_finds_its_state_machines() {
    let root = root();
    let dir = tempfile::tempdir().unwrap();
    let deployment = common::unique("stack");
    // GIVEN the template as `sam deploy` hands it to CloudFormation, with placeholder code.
    let expanded = Command::new(python())
        .arg(root.join("scripts/iam/expand.py"))
        .arg(root.join("template.yaml"))
        .args([format!("Deployment={deployment}"), format!("FleetRoleArns={ROLE}")])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/test or set STEPDEPLOY_PYTHON", python().display()));
    assert!(expanded.status.success(), "{}", String::from_utf8_lossy(&expanded.stderr));
    let template = dir.path().join("expanded.json");
    std::fs::write(&template, &expanded.stdout).unwrap();
    let zip = dir.path().join("code.zip");
    let made = Command::new(python())
        .args(["-c", "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('bootstrap', '#!/bin/sh\\n')"])
        .arg(&zip)
        .status()
        .unwrap();
    assert!(made.success());
    let aws = |args: &[&str]| {
        let out = run(aws_cli_dir().join("aws").to_str().unwrap(), args);
        assert!(out.status.success(), "aws {args:?}: {}", common::text(&out));
    };
    aws(&["s3api", "create-bucket", "--bucket", "stepdeploy-placeholder"]);
    aws(&["s3", "cp", zip.to_str().unwrap(), "s3://stepdeploy-placeholder/code.zip"]);
    for entry in std::fs::read_dir(root.join("statemachines")).unwrap() {
        let file = entry.unwrap().path();
        let key = format!("s3://stepdeploy-placeholder/{}", file.file_name().unwrap().to_string_lossy());
        aws(&["s3", "cp", file.to_str().unwrap(), &key]);
    }
    let key = format!("{deployment}.template.json");
    aws(&["s3", "cp", template.to_str().unwrap(), &format!("s3://stepdeploy-placeholder/{key}")]);

    // WHEN CloudFormation creates it, with the optional parts (notifications, rebake schedule) on.
    let config = common::sdk_config().await;
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    let parameter = |k: &str, v: &str| aws_sdk_cloudformation::types::Parameter::builder().parameter_key(k).parameter_value(v).build();
    cfn.create_stack()
        .stack_name(&deployment)
        .template_url(format!("https://stepdeploy-placeholder.s3.amazonaws.com/{key}"))
        .parameters(parameter("Deployment", &deployment))
        .parameters(parameter("FleetRoleArns", ROLE))
        .parameters(parameter("NotificationEmail", "ops@example.org"))
        .parameters(parameter("RebakeEnvironment", "staging"))
        .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityIam)
        .send()
        .await
        .unwrap();

    // THEN every resource moto supports is created, and the outputs name every state machine.
    let stack = cfn.describe_stacks().stack_name(&deployment).send().await.unwrap().stacks()[0].clone();
    assert_eq!(stack.stack_status().map(|s| s.as_str()), Some("CREATE_COMPLETE"), "{stack:?}");
    let resources = cfn.list_stack_resources().stack_name(&deployment).send().await.unwrap();
    let expected: Value = serde_json::from_slice(&expanded.stdout).unwrap();
    let created: std::collections::BTreeSet<&str> = resources.stack_resource_summaries().iter().filter_map(|r| r.logical_resource_id()).collect();
    for (id, resource) in expected["Resources"].as_object().unwrap() {
        // moto 5 has no CloudFormation support for AWS::SNS::TopicPolicy (it says so in its log).
        if resource["Type"] != "AWS::SNS::TopicPolicy" {
            assert!(created.contains(id.as_str()), "{id} ({}) was not created: {created:?}", resource["Type"]);
        }
    }
    let outputs: std::collections::BTreeMap<&str, &str> = stack.outputs().iter().filter_map(|o| Some((o.output_key()?, o.output_value()?))).collect();
    for (name, _) in stepdeploy_local::STATE_MACHINES {
        let key = stepdeploy_local::state_machine_arn_key(name);
        assert_eq!(
            outputs.get(key.as_str()).copied(),
            Some(format!("arn:aws:states:us-east-1:123456789012:stateMachine:stepdeploy-{deployment}-{name}").as_str())
        );
    }
    // AND the CLI finds the state machines through --stack and starts one.
    let config_path = dir.path().join("stepdeploy.yaml");
    let staging = common::staging();
    let file = Config { deployment: "from-the-stack".into(), environments: [("staging".to_string(), staging)].into_iter().collect() };
    std::fs::write(&config_path, file.to_yaml()).unwrap();
    let config_path = config_path.display().to_string();
    let pushed = stepdeploy(&["config", "push", "staging", "--stack", &deployment, "--config", &config_path]);
    assert!(pushed.status.success(), "{}", common::text(&pushed));
    let out = stepdeploy(&[
        "deploy",
        "serial",
        "staging",
        "--version",
        "1",
        "--stack",
        &deployment,
        "--no-wait",
        "--output",
        "json",
        "--config",
        &config_path,
    ]);
    assert!(out.status.success(), "{}", common::text(&out));
    let started = common::last_json(&out);
    assert!(
        started["execution_arn"].as_str().unwrap_or_default().contains(&format!(":execution:stepdeploy-{deployment}-serial-deploy:")),
        "{started}"
    );
}
