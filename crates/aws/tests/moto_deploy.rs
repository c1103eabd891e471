//! The serial deploy's happy path end to end on moto: the real state
//! machine on the local engine, the step handlers through the AWS adapters.
//! (Timing and failure paths belong to the sim: on moto time doesn't pass.)

mod common;
#[path = "common/moto_account.rs"]
mod moto_account;

use std::sync::Arc;

use serde_json::json;
use stepdeploy_asl::invoke::LambdaTasks;
use stepdeploy_asl::{Clock, Definition, Engine, Status, VirtualClock};
use stepdeploy_aws::AwsAccount;
use stepdeploy_core::config::{Config, Environment};
use stepdeploy_core::ports::{GroupReader, InstanceReader, Parameters};
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{SERIAL_DEPLOY, functions_on, substitutions};

/// Runs `definition` with `input` on moto through the AWS adapters, for the
/// deployment `deployment` whose "staging" environment is `env`'s group.
async fn run_on_moto(env: &common::WebEnv, deployment: &str, definition: &str, name: &str, input: serde_json::Value) -> stepdeploy_asl::Execution {
    let account = AwsAccount::new(&env.config);
    let environment = Environment {
        region: "us-east-1".into(),
        auto_scaling_group: env.group.clone(),
        target_group_arns: vec![env.target_group_arn.clone()],
        listener_arn: Some(env.listener_arn.clone()),
        launch_template: Some(env.template_id.clone()),
        ..Environment::default()
    };
    let config = Arc::new(Config { deployment: deployment.into(), environments: [("staging".to_string(), environment)].into_iter().collect() });
    let clock = Arc::new(VirtualClock::starting_at(chrono::Utc::now()));
    let now_clock = clock.clone();
    // moto misreports per-instance template versions: see moto_account.rs.
    let functions =
        functions_on(Arc::new(moto_account::MotoAccount(account)), Arc::new(move || now_clock.now().timestamp()), config, Arc::new(|_, _| {}));
    let engine = Engine::new(clock, Arc::new(LambdaTasks::new(functions))).with_name(name);
    let definition = Definition::parse(definition, &substitutions()).unwrap();
    engine.run(&definition, input, &format!("moto-{name}")).await
}

#[tokio::test]
async fn a_serial_deploy_replaces_the_group_on_moto() {
    let env = common::web_env(2).await;
    let account = AwsAccount::new(&env.config);
    let input = json!({"environment": "staging", "launch_template_version": "2"});
    let execution = run_on_moto(&env, "moto", SERIAL_DEPLOY, "serial-deploy", input).await;
    assert_eq!(execution.status, Status::Succeeded, "{:?}: {:?}", execution.error, execution.cause);

    let group = account.describe_group(&env.group).await.unwrap();
    assert_eq!(group.settings.desired_capacity, 2);
    assert_eq!(group.settings.launch_template.and_then(|t| t.version).as_deref(), Some("2"));
    assert!(group.settings.suspended_processes.is_empty(), "processes resumed: {:?}", group.settings.suspended_processes);
    let live: Vec<String> = group.instances.iter().filter(|i| i.lifecycle.is_live()).map(|i| i.id.clone()).collect();
    let images: Vec<Option<String>> = account.describe_instances(&live).await.unwrap().into_iter().map(|i| i.image_id).collect();
    assert_eq!(images, vec![Some(env.new_image.clone()); 2], "every live instance runs the new AMI");
    assert!(account.get_parameter(&lock_parameter("moto", "staging")).await.unwrap().is_none(), "lock released");
}

#[tokio::test]
async fn a_bake_publishes_a_launch_template_version_on_moto() {
    use std::collections::BTreeMap;
    use stepdeploy_core::model::LaunchTemplateRef;
    use stepdeploy_core::ports::{Images, LaunchTemplates};
    use stepdeploy_core::steps::bake::tags;
    use stepdeploy_local::BAKE;

    let env = common::web_env(1).await;
    let account = AwsAccount::new(&env.config);
    let deployment = common::unique("bake");
    let input = json!({"environment": "staging", "revision": "4f2c9e1", "make_default": true});
    let execution = run_on_moto(&env, &deployment, BAKE, "bake", input).await;
    assert_eq!(execution.status, Status::Succeeded, "{:?}: {:?}", execution.error, execution.cause);
    let output = execution.output.unwrap();
    let image_id = output["image_id"].as_str().unwrap().to_string();

    let image = account.describe_images(std::slice::from_ref(&image_id)).await.unwrap().remove(0);
    assert_eq!((image.state.as_str(), image.tags.get(tags::REVISION).map(String::as_str)), ("available", Some("4f2c9e1")));
    assert_eq!(image.tags.get(tags::DEPLOYMENT), Some(&deployment));
    let template = LaunchTemplateRef { id: Some(env.template_id.clone()), name: None, version: None };
    let default = account.describe_versions(&template, &["$Default".to_string()]).await.unwrap().remove(0);
    assert_eq!(Some(default.version), output["launch_template_version"].as_u64());
    assert_eq!(default.image_id.as_deref(), Some(image_id.as_str()), "the new default version carries the baked AMI");
    let builders = BTreeMap::from([(tags::EXECUTION.to_string(), image.tags[tags::EXECUTION].clone())]);
    assert!(account.find_instances(&builders).await.unwrap().is_empty(), "the builder is terminated");
}
