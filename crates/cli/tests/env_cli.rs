//! "From scratch" on moto (#17), and the README's install checklist (#20): `stepdeploy env create`
//! deploys environments/environment.yaml through CloudFormation and writes the config from its
//! outputs; the config checks; `config push` and `doctor` pass on it; a serial deploy runs through
//! the AWS adapters on the environment it made; a second run keeps what the
//! user set by hand; `env delete` removes it.
//!
//! moto's CloudFormation creates resources while CreateStack runs, so a resource that fails does
//! so as CreateStack's error; how the CLI picks the reason out of a real stack's events is tested
//! on events in `src/envstack.rs`. moto creates no ElastiCache or alarms (`../shared/reference/moto.md`):
//! the test turns Cache and Alarms off. It doesn't evaluate `Fn::And` of conditions as AWS does, so
//! neither the NAT gateway nor a read replica is checked here.

#![cfg(feature = "aws")]

#[path = "../../aws/tests/common/mod.rs"]
mod common;
#[path = "../../aws/tests/common/moto_account.rs"]
mod moto_account;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use serde_json::json;
use stepdeploy_asl::invoke::LambdaTasks;
use stepdeploy_asl::{Clock, Definition, Engine, Status, VirtualClock};
use stepdeploy_aws::AwsAccount;
use stepdeploy_core::config::Config;
use stepdeploy_core::ports::{GroupReader, InstanceReader};
use stepdeploy_local::{SERIAL_DEPLOY, functions_on, substitutions};

fn stepdeploy(dir: &Path, args: &[&str]) -> Output {
    let path = std::env::var("PATH").unwrap_or_default();
    common::on_moto(&common::endpoint(), env!("CARGO_BIN_EXE_stepdeploy"), args, &path, &[]).current_dir(dir).output().expect("it runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

async fn stack_exists(name: &str) -> bool {
    let cfn = aws_sdk_cloudformation::Client::new(&common::sdk_config().await);
    match cfn.describe_stacks().stack_name(name).send().await {
        Ok(found) => found.stacks().first().and_then(|s| s.stack_status()).is_some_and(|s| s.as_str() != "DELETE_COMPLETE"),
        Err(_) => false,
    }
}

/// A serial deploy of a new AMI to the config's environment, through the AWS adapters on moto.
async fn serial_deploy(config: Config) -> (Status, String) {
    use aws_sdk_ec2::types::RequestLaunchTemplateData;
    let sdk = common::sdk_config().await;
    let env = config.environments["staging"].clone();
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let template_id = env.launch_template.clone().expect("the config names the launch template");
    let current = ec2.describe_launch_template_versions().launch_template_id(&template_id).send().await.unwrap();
    let base = current.launch_template_versions()[0].launch_template_data().and_then(|d| d.image_id()).unwrap().to_string();
    let images = ec2.describe_images().owners("amazon").send().await.unwrap();
    let new_image = images.images().iter().filter_map(|i| i.image_id()).find(|id| *id != base).unwrap().to_string();
    ec2.create_launch_template_version()
        .launch_template_id(&template_id)
        .launch_template_data(RequestLaunchTemplateData::builder().image_id(&new_image).instance_type("t3.small".into()).build())
        .send()
        .await
        .unwrap();

    let account = AwsAccount::new(&sdk);
    let clock = Arc::new(VirtualClock::starting_at(chrono::Utc::now()));
    let now = clock.clone();
    let functions =
        functions_on(Arc::new(moto_account::MotoAccount(account)), Arc::new(move || now.now().timestamp()), Arc::new(config), Arc::new(|_, _| {}));
    let engine = Engine::new(clock, Arc::new(LambdaTasks::new(functions))).with_name("env-serial");
    let definition = Definition::parse(SERIAL_DEPLOY, &substitutions()).unwrap();
    let input = json!({"environment": "staging", "launch_template_version": "2"});
    let execution = engine.run(&definition, input, "moto-env-serial").await;
    assert_eq!(execution.status, Status::Succeeded, "{:?}: {:?}", execution.error, execution.cause);
    (execution.status, new_image)
}

/// What the stepdeploy stack (template.yaml) writes that the CLI reads: its state machines' ARNs.
async fn stand_in_for_the_stepdeploy_stack(deployment: &str) {
    let ssm = aws_sdk_ssm::Client::new(&common::sdk_config().await);
    let arn = |name: &str| format!("arn:aws:states:us-east-1:123456789012:stateMachine:stepdeploy-{deployment}-{name}");
    let machines: serde_json::Map<String, serde_json::Value> =
        stepdeploy_local::STATE_MACHINES.iter().map(|(name, _)| (name.to_string(), json!(arn(name)))).collect();
    ssm.put_parameter()
        .name(format!("/stepdeploy/{deployment}/state-machines"))
        .value(serde_json::Value::Object(machines).to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn env_create_writes_a_config_a_serial_deploy_runs_on_and_env_delete_removes() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = common::unique("env");
    let stack = format!("stepdeploy-{deployment}-staging");
    // In moto's default VPC: moto can't delete a VPC the stack made (DependencyViolation), so the
    // VPC the template creates is checked on its own below.
    let (vpc, subnets) = common::default_vpc().await;
    let network = [format!("VpcId={vpc}"), format!("PublicSubnetIds={subnets}"), format!("PrivateSubnetIds={subnets}")];
    let parameters = ["-p", "Alarms=false", "-p", "WebDesiredCapacity=2", "-p", "WebMaxSize=4", "-p", "Database=postgres"];

    // WHEN env create runs where there is no config yet
    let mut args = vec!["env", "create", "staging", "--deployment", &deployment, "--poll-seconds", "0"];
    args.extend(parameters);
    for pair in &network {
        args.extend(["-p", pair.as_str()]);
    }
    let created = stepdeploy(dir.path(), &args);
    let log = stderr(&created);
    assert!(created.status.success(), "{log}");
    // THEN it followed the stack's events and wrote the environment, showing the diff
    assert!(log.contains(&format!("creating stack {stack}")), "{log}");
    // (moto records the stack's own events only; AWS records each resource's too.)
    assert!(log.lines().any(|l| l.starts_with('[') && l.contains(&format!("{stack} (AWS::CloudFormation::Stack): CREATE_COMPLETE"))), "{log}");
    assert!(log.contains("+    auto_scaling_group:"), "the diff: {log}");
    assert!(log.contains("wrote environment staging to stepdeploy.yaml"), "{log}");
    assert!(log.contains("next: stepdeploy config push staging"), "{log}");

    // AND config check passes on what it wrote
    let checked = stepdeploy(dir.path(), &["config", "check", "stepdeploy.yaml"]);
    assert!(checked.status.success(), "{}{}", String::from_utf8_lossy(&checked.stdout), stderr(&checked));
    let text = std::fs::read_to_string(dir.path().join("stepdeploy.yaml")).unwrap();
    let config = Config::from_yaml_str(&text).unwrap();
    assert_eq!(config.deployment, deployment);
    let env = config.environments["staging"].clone();
    assert_eq!(env.auto_scaling_group, format!("{deployment}-staging-web"));
    assert_eq!((env.scaling.min_size, env.scaling.desired_capacity, env.scaling.max_size), (1, 2, 4));
    assert_eq!(env.workers.tags.get("stepdeploy:role").map(String::as_str), Some("worker"));
    assert!(env.alarms.is_empty(), "Alarms=false: none written");

    // AND the README's install checklist goes on from here: the stepdeploy stack, `config push`,
    // `doctor`. moto can't deploy template.yaml (no SAM transform, no Rust Lambdas), so what the
    // CLI reads of that stack, the parameter of its state machines' ARNs, is put as the stack puts it.
    stand_in_for_the_stepdeploy_stack(&deployment).await;
    // (moto's CloudFormation drops a target group's and a listener's Tags, which AWS applies; that
    // the template tags them is checked in crates/local/tests/environment_template.rs.)
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&common::sdk_config().await);
    let tag = aws_sdk_elasticloadbalancingv2::types::Tag::builder().key("stepdeploy:deployment").value(&deployment).build();
    let listener = env.listener_arn.clone().expect("the config names the listener");
    elb.add_tags().set_resource_arns(Some(env.target_group_arns.clone())).resource_arns(listener).tags(tag).send().await.unwrap();
    let pushed = stepdeploy(dir.path(), &["config", "push", "staging"]);
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let doctor = stepdeploy(dir.path(), &["doctor", "staging"]);
    let report = String::from_utf8_lossy(&doctor.stdout).to_string();
    assert!(doctor.status.success(), "doctor on the environment env create made:\n{report}{}", stderr(&doctor));
    for check in ["stack", "config pushed", "group fit for a rollout", "tags", "SSM", "health timing", "vCPU quota", "lock"] {
        assert!(report.lines().any(|l| l.starts_with("ok") && l.contains(check)), "{check}: {report}");
    }
    assert!(report.contains("ready to deploy"), "{report}");

    // AND the group it made is the one the config names, with the instances the parameters asked for
    let account = AwsAccount::new(&common::sdk_config().await);
    let group = account.describe_group(&env.auto_scaling_group).await.unwrap();
    assert_eq!(group.instances.len(), 2);
    let asg = aws_sdk_autoscaling::Client::new(&common::sdk_config().await);
    let described = asg.describe_auto_scaling_groups().auto_scaling_group_names(&env.auto_scaling_group).send().await.unwrap();
    let tag = described.auto_scaling_groups()[0].tags().iter().find(|t| t.key() == Some("stepdeploy:deployment")).cloned();
    assert_eq!(tag.as_ref().and_then(|t| t.value()), Some(deployment.as_str()), "tagged for the IAM policies");
    assert_eq!(tag.and_then(|t| t.propagate_at_launch()), Some(true));

    // AND a serial deploy through the adapters replaces it with a new AMI
    let (_, new_image) = serial_deploy(config.clone()).await;
    let group = account.describe_group(&env.auto_scaling_group).await.unwrap();
    let live: Vec<String> = group.instances.iter().filter(|i| i.lifecycle.is_live()).map(|i| i.id.clone()).collect();
    let images: Vec<Option<String>> = account.describe_instances(&live).await.unwrap().into_iter().map(|i| i.image_id).collect();
    assert_eq!(images, vec![Some(new_image); 2]);

    // WHEN it runs again with nothing to change: the config is rewritten from the stack, keeping
    // what the user set by hand. (A change set that changes something is tested on
    // aws-smithy-mocks in src/env.rs: moto's stack updates ignore the template's conditions.)
    let config_text = text.replace("  staging:\n", "  staging:\n    branch: develop\n");
    std::fs::write(dir.path().join("stepdeploy.yaml"), &config_text).unwrap();
    let again = stepdeploy(dir.path(), &["env", "create", "staging", "--poll-seconds", "0"]);
    let log = stderr(&again);
    assert!(again.status.success(), "{log}");
    let config = Config::from_yaml_str(&std::fs::read_to_string(dir.path().join("stepdeploy.yaml")).unwrap()).unwrap();
    assert_eq!(config.environments["staging"].branch.as_deref(), Some("develop"), "what the user set by hand is kept: {log}");
    assert_eq!(config.environments["staging"].scaling.max_size, 4);

    // AND env show lists the outputs
    let shown = stepdeploy(dir.path(), &["env", "show", "staging"]);
    let out = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(out.contains(&format!("stack {stack}: CREATE_COMPLETE")) && out.contains("  ListenerArn: arn:aws:elasticloadbalancing:"), "{out}");

    // WHEN env delete runs: the stack is gone
    let deleted = stepdeploy(dir.path(), &["env", "delete", "staging", "--poll-seconds", "0"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert!(stderr(&deleted).contains("deleted in"), "{}", stderr(&deleted));
    assert!(!stack_exists(&stack).await);
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_created_and_a_failing_resource_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = common::unique("env");
    let stack = format!("stepdeploy-{deployment}-staging");
    for (args, message) in [
        (vec!["-p", "Database=mysql"], "error: --parameter Database: \"mysql\" is not allowed; expected one of none, postgres\n"),
        (vec!["-p", "WorkerCount=-1"], "error: --parameter WorkerCount: -1 is below its minimum, 0\n"),
        (vec!["-p", "Size=2"], "error: --parameter: \"Size\" is not a parameter of environments/environment.yaml"),
    ] {
        let mut all = vec!["env", "create", "staging", "--deployment", deployment.as_str()];
        all.extend(args);
        let out = stepdeploy(dir.path(), &all);
        assert!(!out.status.success());
        assert!(stderr(&out).starts_with(message), "{}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "one line: {}", stderr(&out));
    }
    let out = stepdeploy(dir.path(), &["env", "create", "Staging", "--deployment", &deployment]);
    assert!(stderr(&out).starts_with("error: ENV: \"Staging\" is not allowed"), "{}", stderr(&out));
    let out = stepdeploy(dir.path(), &["env", "create", "staging"]);
    assert!(stderr(&out).starts_with("error: no deployment: pass --deployment NAME"), "{}", stderr(&out));
    assert!(!stack_exists(&stack).await, "nothing was created");
    assert!(!dir.path().join("stepdeploy.yaml").exists(), "no config written");

    // A certificate that doesn't exist: the listener fails, and the error says so.
    let cert = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000";
    let out = stepdeploy(
        dir.path(),
        &["env", "create", "staging", "--deployment", &deployment, "-p", "Alarms=false", "-p", &format!("CertificateArn={cert}")],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("CertificateNotFound"), "{}", stderr(&out));
    assert!(!dir.path().join("stepdeploy.yaml").exists(), "no config written for a failed stack");
}

#[tokio::test]
async fn config_from_stack_refuses_a_stack_without_the_outputs() {
    // A stack of another template: named outputs are missing, so nothing is written.
    let dir = tempfile::tempdir().unwrap();
    let name = common::unique("other");
    let cfn = aws_sdk_cloudformation::Client::new(&common::sdk_config().await);
    let body = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\nOutputs:\n  Region:\n    Value: !Ref AWS::Region\n";
    cfn.create_stack().stack_name(&name).template_body(body).send().await.unwrap();
    std::fs::write(dir.path().join("stepdeploy.yaml"), "deployment: demo\nenvironments:\n  staging:\n    region: us-east-1\n").unwrap();
    let out = stepdeploy(dir.path(), &["config", "from-stack", &name, "--env", "staging"]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.starts_with(&format!("error: stack {name} lacks the outputs AutoScalingGroupName (the web Auto Scaling group (auto_scaling_group))")),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("stepdeploy.yaml")).unwrap(),
        "deployment: demo\nenvironments:\n  staging:\n    region: us-east-1\n"
    );
}

#[tokio::test]
async fn without_a_vpc_the_stack_makes_one_with_the_instances_in_its_private_subnets() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = common::unique("vpc");
    // The file already has an imported environment whose ARNs are still empty: that is no reason
    // not to write this one.
    std::fs::write(dir.path().join("stepdeploy.yaml"), format!("deployment: {deployment}\nenvironments:\n  production:\n    region: us-east-1\n"))
        .unwrap();
    let out = stepdeploy(dir.path(), &["env", "create", "staging", "-p", "Alarms=false", "--poll-seconds", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("note: the config's other environments have"), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("stepdeploy.yaml")).unwrap();
    assert!(Config::from_yaml_str_for_rehearsal(&text).unwrap().environments.contains_key("production"), "{text}");
    let config = Config::from_yaml_str_for_rehearsal(&text).unwrap();
    let env = &config.environments["staging"];
    assert_eq!(env.scaling.desired_capacity, 6, "the template's default group, the local demo's");
    let sdk = common::sdk_config().await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let group = asg.describe_auto_scaling_groups().auto_scaling_group_names(&env.auto_scaling_group).send().await.unwrap();
    let zones: Vec<String> = group.auto_scaling_groups()[0].vpc_zone_identifier().unwrap_or_default().split(',').map(String::from).collect();
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let subnets = ec2.describe_subnets().set_subnet_ids(Some(zones.clone())).send().await.unwrap();
    let cidrs: Vec<&str> = subnets.subnets().iter().filter_map(|s| s.cidr_block()).collect();
    assert_eq!(cidrs.len(), 2, "{zones:?}");
    assert!(cidrs.iter().all(|c| ["10.40.32.0/20", "10.40.48.0/20"].contains(c)), "the private subnets: {cidrs:?}");
    let vpc = subnets.subnets()[0].vpc_id().unwrap();
    let (default, _) = common::default_vpc().await;
    assert_ne!(vpc, default, "a VPC of its own");
}
