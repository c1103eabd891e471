//! End to end: statemachines/bake.asl.json on the engine, the bake steps in
//! process, the simulated account on virtual time.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::executor::block_on;
use serde_json::{Value, json};
use stepdeploy_core::config::Config;
use stepdeploy_core::errors;
use stepdeploy_core::ports::{Images, InstanceReader, LaunchTemplates, Parameters};
use stepdeploy_core::steps::bake::tags;
use stepdeploy_core::steps::lock_parameter;
use stepdeploy_local::{BAKE, Summary, demo, run};
use stepdeploy_sim::demo::DemoFleet;
use stepdeploy_sim::{CommandScript, Dist, SimSettings};

async fn bake(fleet: &DemoFleet, config: Arc<Config>, input: Value) -> Summary {
    run(&fleet.sim, config, BAKE, input, &fleet.group, Arc::new(|_| {})).await.1
}

fn builders(fleet: &DemoFleet) -> Vec<String> {
    let role = BTreeMap::from([(tags::ROLE.to_string(), "builder".to_string())]);
    block_on(fleet.sim.find_instances(&role)).unwrap().into_iter().map(|i| i.id).collect()
}

fn baked_images(fleet: &DemoFleet) -> Vec<stepdeploy_core::ports::Image> {
    let ours = BTreeMap::from([(tags::ENVIRONMENT.to_string(), "demo".to_string())]);
    block_on(fleet.sim.find_images(&ours)).unwrap()
}

fn latest_version(fleet: &DemoFleet) -> u64 {
    block_on(fleet.sim.describe_versions(&fleet.template, &["$Latest".to_string()])).unwrap()[0].version
}

fn error_message(summary: &Summary) -> String {
    let cause: Value = serde_json::from_str(summary.cause.as_deref().unwrap_or_default()).unwrap_or(Value::Null);
    cause["errorMessage"].as_str().unwrap_or_default().to_string()
}

fn with_retain(config: &Config, retain: i64) -> Arc<Config> {
    let mut config = config.clone();
    if let Some(env) = config.environments.get_mut("demo") {
        env.images.retain = retain;
    }
    Arc::new(config)
}

#[tokio::test]
async fn a_bake_tags_the_image_publishes_a_version_terminates_the_builder_and_prunes() {
    let (fleet, config) = demo(61, 2, SimSettings::default());
    let ours = |revision: &str| {
        BTreeMap::from([
            (tags::DEPLOYMENT.to_string(), "demo".to_string()),
            (tags::ENVIRONMENT.to_string(), "demo".to_string()),
            (tags::REVISION.to_string(), revision.to_string()),
        ])
    };
    // The image the group runs is one of ours and the oldest: it must survive the prune.
    fleet.sim.tag_ec2_resources(&[&fleet.old.image_id], &ours("old"));
    for n in 0..4 {
        fleet.sim.advance(3600);
        fleet.sim.register_image(&format!("ami-0000000000000b00{n}"), ours(&format!("r{n}")));
    }
    fleet.sim.script_command(CommandScript {
        contains: "stepdeploy-bake 4f2c9e1".into(),
        instance_id: None,
        exit_code: 0,
        stdout: "collectstatic: 812 files copied".into(),
        stderr: String::new(),
        duration_seconds: 600,
    });
    let versions_before = latest_version(&fleet);
    let summary = bake(&fleet, with_retain(&config, 3), json!({"environment": "demo", "revision": "4f2c9e1", "make_default": true})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    let output = summary.output.unwrap();
    let image_id = output["image_id"].as_str().unwrap().to_string();
    assert_eq!(output["revision"], "4f2c9e1");
    assert_eq!(output["launch_template_version"], json!(versions_before + 1));

    let image = block_on(fleet.sim.describe_images(std::slice::from_ref(&image_id))).unwrap().remove(0);
    assert_eq!(image.state, "available");
    assert_eq!(image.tags[tags::REVISION], "4f2c9e1");
    assert!(image.tags[tags::EXECUTION].contains(":execution:bake:"), "{:?}", image.tags);
    let snapshot_tags = fleet.sim.snapshot_tags(&image.snapshot_ids[0]).unwrap();
    assert_eq!(snapshot_tags.get(tags::REVISION).map(String::as_str), Some("4f2c9e1"), "the snapshots are tagged too");

    let version = block_on(fleet.sim.describe_versions(&fleet.template, &["$Default".to_string()])).unwrap().remove(0);
    assert_eq!((version.version, version.image_id.as_deref()), (versions_before + 1, Some(image_id.as_str())), "the new version is the default");
    assert!(builders(&fleet).is_empty(), "the builder is terminated");
    assert!(!summary.api_calls.contains_key("CreateLaunchConfiguration"));

    let left: Vec<String> = baked_images(&fleet).into_iter().map(|i| i.id).collect();
    assert_eq!(left.len(), 4, "the newest 3 plus the one the group runs: {left:?}");
    assert!(left.contains(&fleet.old.image_id) && left.contains(&image_id));
    let pruned: Vec<String> = serde_json::from_value(output["pruned"].clone()).unwrap();
    assert_eq!(pruned, ["ami-0000000000000b000", "ami-0000000000000b001"], "oldest first");
}

#[tokio::test]
async fn a_failed_bake_script_leaves_no_builder_and_no_image_and_shows_the_output() {
    let (fleet, config) = demo(62, 1, SimSettings::default());
    fleet.sim.script_command(CommandScript {
        contains: "stepdeploy-bake".into(),
        instance_id: None,
        exit_code: 2,
        stdout: "npm run build".into(),
        stderr: "ERR! missing script: build".into(),
        duration_seconds: 90,
    });
    let versions_before = latest_version(&fleet);
    let summary = bake(&fleet, config, json!({"environment": "demo", "revision": "4f2c9e1"})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::COMMAND_FAILED), "{summary:?}");
    let message = error_message(&summary);
    assert!(message.contains("bake script failed") && message.contains("exit code 2") && message.contains("missing script: build"), "{message}");
    assert!(builders(&fleet).is_empty());
    assert!(baked_images(&fleet).is_empty());
    assert_eq!(latest_version(&fleet), versions_before);
}

#[tokio::test]
async fn an_image_that_never_becomes_available_times_out_and_is_deleted() {
    let (fleet, config) = demo(63, 1, SimSettings::default());
    fleet.sim.make_images_never_available();
    let started = fleet.sim.now();
    let summary = bake(&fleet, config.clone(), json!({"environment": "demo", "revision": "4f2c9e1"})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::BAKE_FAILED), "{summary:?}");
    assert!(error_message(&summary).contains("did not become available within 3600 s"), "{}", error_message(&summary));
    assert!(builders(&fleet).is_empty());
    assert!(baked_images(&fleet).is_empty(), "the half-made image is deregistered");
    let images = &config.environments["demo"].images;
    let bound =
        (images.builder_online_timeout_seconds + config.environments["demo"].commands.bake.timeout_seconds + images.available_timeout_seconds) as i64;
    assert!(fleet.sim.now() - started <= bound + 600, "bounded by the configured timeouts");
}

#[tokio::test]
async fn a_builder_that_never_comes_online_times_out_and_is_terminated() {
    let settings = SimSettings { ssm_online_seconds: Dist::around(100_000.0, 0.0), ..SimSettings::default() };
    let (fleet, config) = demo(64, 1, settings);
    let summary = bake(&fleet, config, json!({"environment": "demo", "revision": "4f2c9e1"})).await;
    assert_eq!(summary.error.as_deref(), Some(errors::BAKE_FAILED), "{summary:?}");
    assert!(error_message(&summary).contains("did not come online in SSM within 600 s"), "{}", error_message(&summary));
    assert!(builders(&fleet).is_empty());
    assert_eq!(summary.api_calls.get("CreateImage"), None);
}

#[tokio::test]
async fn a_bake_runs_while_a_deploy_holds_the_lock() {
    let (fleet, config) = demo(65, 1, SimSettings::default());
    let holder = r#"{"execution": "arn:aws:states:us-east-1:1:execution:serial-deploy:running", "since": 0}"#;
    block_on(fleet.sim.create_parameter(&lock_parameter("demo", "demo"), holder)).unwrap();
    let summary = bake(&fleet, config, json!({"environment": "demo", "revision": "4f2c9e1"})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    assert_eq!(block_on(fleet.sim.get_parameter(&lock_parameter("demo", "demo"))).unwrap().unwrap().value, holder, "the lock is not touched");
}

#[tokio::test]
async fn bad_bake_input_fails_with_a_named_error_and_changes_nothing() {
    let cases = [
        (json!({"environment": "demo"}), "revision: required (environments.demo.branch is not set)"),
        (json!({"environment": "nope", "revision": "x"}), "environment: \"nope\" is not defined"),
        (json!({"environment": "demo", "revision": "x", "make_default": "yes"}), "make_default: \"yes\" is not allowed"),
        (json!({"environment": "demo", "revision": "x", "launch_template_version": "2"}), "launch_template_version: unknown field"),
    ];
    for (input, expected) in cases {
        let (fleet, config) = demo(66, 1, SimSettings::default());
        let before = fleet.sim.fingerprint();
        let summary = bake(&fleet, config, input.clone()).await;
        assert_eq!(summary.error.as_deref(), Some(errors::INVALID_INPUT), "{input}: {summary:?}");
        assert!(error_message(&summary).contains(expected), "{input}: {}", error_message(&summary));
        assert_eq!(fleet.sim.fingerprint(), before, "{input}");
    }
}

#[tokio::test]
async fn deploy_by_revision_finds_the_newest_version_baked_from_it() {
    use stepdeploy_core::steps::bake::version_for_revision;
    let (fleet, config) = demo(67, 2, SimSettings::default());
    let first = bake(&fleet, config.clone(), json!({"environment": "demo", "revision": "aaa1111"})).await;
    assert_eq!(first.status, "SUCCEEDED", "{first:?}");
    let aaa = latest_version(&fleet);
    let second = bake(&fleet, config.clone(), json!({"environment": "demo", "revision": "bbb2222"})).await;
    assert_eq!(second.status, "SUCCEEDED", "{second:?}");
    let bbb = latest_version(&fleet);
    assert!(bbb > aaa);

    assert_eq!(block_on(version_for_revision(&fleet.sim, "demo", "demo", &fleet.template, "aaa1111")).unwrap(), aaa);
    assert_eq!(block_on(version_for_revision(&fleet.sim, "demo", "demo", &fleet.template, "bbb2222")).unwrap(), bbb);
    let missing = block_on(version_for_revision(&fleet.sim, "demo", "demo", &fleet.template, "ccc3333")).unwrap_err();
    assert_eq!(missing.name, errors::INVALID_INPUT);
    assert!(missing.message.contains("\"ccc3333\"") && missing.message.contains("stepdeploy bake demo --revision ccc3333"), "{}", missing.message);
    let other_env = block_on(version_for_revision(&fleet.sim, "demo", "staging", &fleet.template, "aaa1111")).unwrap_err();
    assert_eq!(other_env.name, errors::INVALID_INPUT, "another environment's bake does not count");
}

#[tokio::test]
async fn a_bake_publishes_a_copy_of_the_version_the_group_runs_not_of_the_default() {
    // GIVEN the group runs version 2, which someone gave its own security group; version 1 stays the default.
    let (fleet, config) = demo(31, 2, SimSettings::default());
    let template_id = fleet.template.id.clone().unwrap_or_default();
    fleet.sim.set_template_security_groups(&template_id, 2, &["sg-0runs"]);
    let update = stepdeploy_core::ports::GroupUpdate { launch_template: Some(fleet.template.at_version("2")), ..Default::default() };
    block_on(stepdeploy_core::ports::GroupWriter::update_group(&fleet.sim, &fleet.group, &update)).unwrap();
    // WHEN a bake publishes (without making it the default, so the default stays version 1)
    let summary = bake(&fleet, config, json!({"environment": "demo", "revision": "4f2c9e1", "make_default": false})).await;
    assert_eq!(summary.status, "SUCCEEDED", "{summary:?}");
    // THEN the new version keeps what the group runs: version 2's security group.
    let published = latest_version(&fleet);
    assert_eq!(published, 3);
    assert_eq!(fleet.sim.template_security_groups(&template_id, 3), Some(vec!["sg-0runs".to_string()]));
}

#[tokio::test]
async fn a_bake_then_a_deploy_of_the_default_version_ships_the_baked_image() {
    // What `stepdeploy bake staging --revision X && stepdeploy deploy serial staging` starts: a bake
    // without make_default (the CLI sends it only as false), then a deploy of $Default.
    let (fleet, config) = demo(71, 2, SimSettings::default());
    let baked = bake(&fleet, config.clone(), json!({"environment": "demo", "revision": "4f2c9e1"})).await;
    assert_eq!(baked.status, "SUCCEEDED", "{baked:?}");
    let image_id = baked.output.as_ref().unwrap()["image_id"].as_str().unwrap().to_string();
    let default = block_on(fleet.sim.describe_versions(&fleet.template, &["$Default".to_string()])).unwrap().remove(0);
    assert_eq!(default.image_id.as_deref(), Some(image_id.as_str()), "the bake made its version the default");

    let deployed = run(
        &fleet.sim,
        config,
        stepdeploy_local::SERIAL_DEPLOY,
        json!({"environment": "demo", "launch_template_version": "$Default"}),
        &fleet.group,
        Arc::new(|_| {}),
    )
    .await
    .1;
    assert_eq!(deployed.status, "SUCCEEDED", "{deployed:?}");
    assert_eq!(deployed.fleet.by_image.get(&image_id), Some(&2), "the fleet runs the baked image: {:?}", deployed.fleet.by_image);
}

#[tokio::test]
async fn a_failed_bake_whose_builder_cannot_be_terminated_says_both_and_names_the_builder() {
    let (fleet, config) = demo(67, 2, SimSettings::default());
    // The bake script fails; then EC2 refuses to terminate the builder, for good.
    fleet.sim.script_command(CommandScript {
        contains: "stepdeploy-bake".into(),
        instance_id: None,
        exit_code: 2,
        stdout: String::new(),
        stderr: "pip: no matching distribution".into(),
        duration_seconds: 60,
    });
    fleet.sim.inject_fault(stepdeploy_sim::Fault {
        operation: "TerminateInstances".into(),
        kind: stepdeploy_core::ports::ErrorKind::Invalid,
        code: "UnauthorizedOperation".into(),
        remaining: u32::MAX,
        lost_response: false,
        skip: 0,
    });
    let summary = bake(&fleet, config, json!({"environment": "demo", "revision": "4f2c9e1"})).await;
    assert_eq!(summary.status, "FAILED");
    let builder = builders(&fleet);
    assert_eq!(builder.len(), 1, "still running: {builder:?}");
    let cause = summary.cause.unwrap_or_default();
    assert!(cause.contains("pip: no matching distribution"), "the bake's own failure first: {cause}");
    assert!(cause.contains("and clean-up could not finish"), "{cause}");
    assert!(cause.contains(&format!("aws ec2 terminate-instances --instance-ids {}", builder[0])), "how to end it: {cause}");
}
