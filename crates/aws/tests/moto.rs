//! Every adapter method, against a real moto server (started by the harness).
//!
//! moto's gaps (see shared/reference/moto.md) are worked around here only:
//! instances are told apart by AMI, never by per-instance template version;
//! commands always succeed on moto, so failures are the sim's to test.

mod common;

use std::collections::BTreeMap;

use common::{unique, web_env};
use stepdeploy_aws::AwsAccount;
use stepdeploy_core::fleet::{REVISION_TAG, read_snapshot};
use stepdeploy_core::model::{LaunchTemplateRef, Lifecycle, TargetState};
use stepdeploy_core::ports::*;

fn template(id: &str, version: Option<&str>) -> LaunchTemplateRef {
    LaunchTemplateRef { id: Some(id.to_string()), name: None, version: version.map(str::to_string) }
}

#[tokio::test]
async fn autoscaling_reads_and_changes_a_group() {
    let env = web_env(2).await;
    let aws = AwsAccount::new(&env.config);
    let group = aws.autoscaling.describe_group(&env.group).await.unwrap();
    assert_eq!((group.settings.min_size, group.settings.max_size, group.settings.desired_capacity), (1, 4, 2));
    assert_eq!(group.instances.len(), 2);
    assert!(group.instances.iter().all(|i| i.lifecycle == Lifecycle::InService && i.healthy));
    assert_eq!(group.settings.target_group_arns, std::slice::from_ref(&env.target_group_arn));
    assert_eq!(group.settings.subnet_ids, env.subnet_ids, "the subnets of its VPCZoneIdentifier");
    let launched_from = group.instances[0].launch_template_id.as_deref();
    assert_eq!(launched_from, Some(env.template_id.as_str()), "each instance's launch template");
    // moto answers DescribeScalingActivities with nothing; the call and its shape still go over the wire.
    assert!(aws.autoscaling.scaling_activities(&env.group, 0).await.unwrap().iter().all(|a| a.started_at >= 0));
    let lt = group.settings.launch_template.unwrap();
    assert_eq!((lt.id.as_deref(), lt.version.as_deref()), (Some(env.template_id.as_str()), Some("1")));

    // GIVEN the group points at version 2 and grows by one
    let update = GroupUpdate { max_size: Some(5), launch_template: Some(template(&env.template_id, Some("2"))), ..GroupUpdate::default() };
    aws.autoscaling.update_group(&env.group, &update).await.unwrap();
    aws.autoscaling.set_desired_capacity(&env.group, 3).await.unwrap();
    // THEN the new instance runs the new AMI (told apart by AMI: moto misreports versions)
    let group = aws.autoscaling.describe_group(&env.group).await.unwrap();
    assert_eq!((group.settings.max_size, group.settings.desired_capacity, group.instances.len()), (5, 3, 3));
    let ids: Vec<String> = group.instances.iter().map(|i| i.id.clone()).collect();
    let ec2 = aws.ec2.describe_instances(&ids).await.unwrap();
    assert_eq!(ec2.iter().filter(|i| i.image_id.as_deref() == Some(env.new_image.as_str())).count(), 1);

    // WHEN an old instance is terminated with decrement
    let old = ec2.iter().find(|i| i.image_id.as_deref() == Some(env.old_image.as_str())).unwrap();
    aws.autoscaling.terminate_instance(&old.id, Decrement(true)).await.unwrap();
    let group = aws.autoscaling.describe_group(&env.group).await.unwrap();
    assert_eq!(group.settings.desired_capacity, 2);

    let missing = aws.autoscaling.describe_group("no-such-group").await.unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn autoscaling_moves_instances_to_standby_and_back() {
    let env = web_env(3).await;
    let aws = AwsAccount::new(&env.config);
    let group = aws.autoscaling.describe_group(&env.group).await.unwrap();
    let ids: Vec<String> = group.instances.iter().take(2).map(|i| i.id.clone()).collect();
    // WHEN two instances enter Standby (with the decrement: no replacement is launched)
    aws.autoscaling.enter_standby(&env.group, &ids).await.unwrap();
    let group = aws.autoscaling.describe_group(&env.group).await.unwrap();
    assert_eq!(group.settings.desired_capacity, 1);
    assert_eq!(group.instances.len(), 3, "still members of the group");
    let standby: Vec<&String> = group.instances.iter().filter(|i| i.lifecycle.is_standby()).map(|i| &i.id).collect();
    assert_eq!(standby, ids.iter().collect::<Vec<_>>());
    // WHEN they come back: desired capacity rises by one each, and they serve again
    aws.autoscaling.exit_standby(&env.group, &ids).await.unwrap();
    let group = aws.autoscaling.describe_group(&env.group).await.unwrap();
    assert_eq!(group.settings.desired_capacity, 3);
    assert!(group.instances.iter().all(|i| !i.lifecycle.is_standby()), "{:?}", group.instances);
    // (moto answers a Standby call on an unknown group with an empty 500: the refusal is
    // tested on aws-smithy-mocks, in mocked.rs.)
}

#[tokio::test]
async fn autoscaling_suspends_and_resumes_only_named_processes() {
    let env = web_env(1).await;
    let aws = AwsAccount::new(&env.config);
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    aws.autoscaling.suspend_processes(&env.group, &names(&["AZRebalance", "ScheduledActions"])).await.unwrap();
    aws.autoscaling.resume_processes(&env.group, &names(&["AZRebalance"])).await.unwrap();
    // An empty list must not resume everything.
    aws.autoscaling.resume_processes(&env.group, &[]).await.unwrap();
    let group = aws.autoscaling.describe_group(&env.group).await.unwrap();
    assert_eq!(group.settings.suspended_processes, ["ScheduledActions"]);
}

#[tokio::test]
async fn ec2_launches_finds_describes_and_terminates_instances() {
    let env = web_env(1).await;
    let aws = AwsAccount::new(&env.config);
    let role = unique("worker");
    let tags = BTreeMap::from([("role".to_string(), role.clone())]);
    let request = LaunchRequest {
        launch_template: template(&env.template_id, Some("$Latest")),
        image_id: Some(env.old_image.clone()),
        instance_type: Some("t3.small".into()),
        tags: tags.clone(),
        subnet_id: Some(env.subnet_ids[0].clone()),
        client_token: None,
    };
    let id = aws.ec2.launch_instance(&request).await.unwrap();
    let found = aws.ec2.find_instances(&tags).await.unwrap();
    assert_eq!(found.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    assert_eq!(found[0].tags.get("role"), Some(&role));
    assert!(found[0].launched_at.is_some());

    let described = aws.ec2.describe_instances(&[id.clone(), "i-0123456789abcdef0".into()]).await.unwrap();
    assert_eq!(described.len(), 1, "an unknown id is absent, not an error");
    assert_eq!(described[0].image_id.as_deref(), Some(env.old_image.as_str()));
    let using = aws.ec2.instances_using_images(std::slice::from_ref(&env.old_image)).await.unwrap();
    assert!(using.iter().any(|i| i.id == id), "the instance runs the old AMI");
    assert!(using.iter().all(|i| i.image_id.as_deref() == Some(env.old_image.as_str())));

    aws.ec2.terminate_instances(std::slice::from_ref(&id)).await.unwrap();
    let after = aws.ec2.describe_instances(std::slice::from_ref(&id)).await.unwrap();
    assert!(matches!(after[0].state.as_str(), "shutting-down" | "terminated"), "{}", after[0].state);
    assert!(aws.ec2.find_instances(&tags).await.unwrap().is_empty());
    let using = aws.ec2.instances_using_images(std::slice::from_ref(&env.old_image)).await.unwrap();
    assert!(!using.iter().any(|i| i.id == id), "a terminated instance uses nothing");
}

#[tokio::test]
async fn ec2_launch_template_versions_are_read_created_and_made_default() {
    let env = web_env(1).await;
    let aws = AwsAccount::new(&env.config);
    let by_id = template(&env.template_id, None);
    let versions = aws.ec2.describe_versions(&by_id, &["1".into(), "$Latest".into()]).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(versions[1].image_id.as_deref(), Some(env.new_image.as_str()));
    assert!(versions[0].is_default);
    assert!(!versions[0].network_interfaces && versions[0].interface_subnet.is_none(), "the test template defines no network interface");

    let by_name = LaunchTemplateRef { id: None, name: Some(env.template_name.clone()), version: None };
    let created = aws.ec2.create_version(&by_name, "$Default", &env.new_image, "baked 2222222").await.unwrap();
    assert_eq!((created.version, created.image_id.as_deref()), (3, Some(env.new_image.as_str())));
    aws.ec2.set_default_version(&by_name, 3).await.unwrap();
    let default = aws.ec2.describe_versions(&by_id, &["$Default".into()]).await.unwrap();
    assert_eq!(default[0].version, 3);
    assert!(default[0].is_default);
}

#[tokio::test]
async fn ec2_images_are_created_found_and_deleted_with_their_snapshots() {
    let env = web_env(1).await;
    let aws = AwsAccount::new(&env.config);
    let group = aws.autoscaling.describe_group(&env.group).await.unwrap();
    let builder = &group.instances[0].id;
    let revision = unique("rev");
    let tags = BTreeMap::from([(REVISION_TAG.to_string(), revision.clone())]);
    let image_id = aws.ec2.create_image(builder, &unique("image"), &tags).await.unwrap();

    let images = aws.ec2.describe_images(&[image_id.clone(), "ami-0123456789abcdef0".into()]).await.unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].state, "available");
    assert_eq!(images[0].tags.get(REVISION_TAG), Some(&revision));
    let found = aws.ec2.find_images(&tags).await.unwrap();
    assert_eq!(found.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), [image_id.as_str()]);
    assert!(!found[0].snapshot_ids.is_empty());

    // CreateImage tagged the snapshots too (moto needs tests/moto_server.py for that).
    let raw = aws_sdk_ec2::Client::new(&env.config);
    let snapshot_filter = |id: &str| aws_sdk_ec2::types::Filter::builder().name("snapshot-id").values(id).build();
    let tagged = raw.describe_snapshots().filters(snapshot_filter(&found[0].snapshot_ids[0])).send().await.unwrap();
    assert!(tagged.snapshots()[0].tags().iter().any(|t| t.key() == Some(REVISION_TAG) && t.value() == Some(revision.as_str())));
    let by_tag = aws.ec2.find_snapshots(&tags).await.unwrap();
    assert_eq!(by_tag.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), found[0].snapshot_ids, "found by the tags CreateImage put on them");
    assert!(by_tag[0].started_at.is_some());

    let in_use = aws.ec2.delete_image(&found[0]).await.unwrap();
    assert!(in_use.is_empty(), "moto frees snapshots at once: {in_use:?}");
    assert!(aws.ec2.describe_images(std::slice::from_ref(&image_id)).await.unwrap().is_empty());
    for snapshot in &found[0].snapshot_ids {
        let left = raw.describe_snapshots().filters(snapshot_filter(snapshot)).send().await.unwrap();
        assert!(left.snapshots().is_empty(), "snapshot {snapshot} was not deleted");
    }
    // A retried cleanup of an image already gone succeeds; so does deleting a snapshot already gone.
    aws.ec2.delete_image(&found[0]).await.unwrap();
    assert!(aws.ec2.delete_snapshot(&found[0].snapshot_ids[0]).await.unwrap());
    assert!(aws.ec2.find_snapshots(&tags).await.unwrap().is_empty());
}

#[tokio::test]
async fn ssm_runs_a_command_and_reads_its_invocations() {
    let env = web_env(1).await;
    let aws = AwsAccount::new(&env.config);
    let group = aws.autoscaling.describe_group(&env.group).await.unwrap();
    let ids = vec![group.instances[0].id.clone()];
    let document = unique("stepdeploy-demo-command");
    let raw = aws_sdk_ssm::Client::new(&env.config);
    raw.create_document()
        .name(&document)
        .document_type(aws_sdk_ssm::types::DocumentType::Command)
        .document_format(aws_sdk_ssm::types::DocumentFormat::Json)
        .content(common::command_document_content())
        .send()
        .await
        .unwrap();
    let comment = "a long comment ".repeat(20);
    let request = CommandRequest {
        document: &document,
        instance_ids: &ids,
        command: "/usr/local/bin/migrate \"$SSM_revision\"",
        revision: "4f2c9e1",
        timeout_seconds: 600,
        comment: &comment,
        output_log_group: Some("/stepdeploy/moto/commands"),
    };
    let command_id = aws.ssm.send_command(&request).await.unwrap();
    // The revision travels as the document's parameter, apart from the script text.
    let sent = raw.list_commands().command_id(&command_id).send().await.unwrap();
    let parameters = sent.commands()[0].parameters().cloned().unwrap_or_default();
    assert_eq!(sent.commands()[0].document_name(), Some(document.as_str()));
    assert_eq!(parameters.get("revision"), Some(&vec!["4f2c9e1".to_string()]));
    assert_eq!(parameters.get("commands"), Some(&vec!["/usr/local/bin/migrate \"$SSM_revision\"".to_string()]));
    assert_eq!(parameters.get("executionTimeout"), Some(&vec!["600".to_string()]));
    // (moto doesn't keep CloudWatchOutputConfig: tests/mocked.rs checks the request carries it.)
    let invocations = aws.ssm.invocations(&command_id, &ids).await.unwrap();
    assert_eq!(invocations.len(), 1);
    assert_eq!(invocations[0].instance_id, ids[0]);
    // moto reports every command as a success (a gap: failures are tested on the sim).
    assert_eq!((invocations[0].status, invocations[0].exit_code), (CommandStatus::Succeeded, Some(0)));
    // ListCommands of the document finds it with its comment (cut to SSM's 100 characters).
    let since = chrono::Utc::now().timestamp() - 3600;
    let recent = aws.ssm.recent_commands(&document, since).await.unwrap();
    let expected: String = comment.chars().take(100).collect();
    assert!(recent.contains(&(command_id.clone(), expected)), "{recent:?}");
    // (moto ignores ListCommands' DocumentName filter, so the other side of it isn't checked here;
    // nothing depends on it: a command is recognised by the key in its comment.)
}

#[tokio::test]
async fn ssm_parameters_create_atomically_overwrite_and_delete() {
    let config = common::sdk_config().await;
    let aws = AwsAccount::new(&config);
    let name = format!("/stepdeploy/{}/lock", unique("test"));
    assert!(aws.ssm.get_parameter(&name).await.unwrap().is_none());
    assert!(aws.ssm.create_parameter(&name, "execution-a").await.unwrap());
    assert!(!aws.ssm.create_parameter(&name, "execution-b").await.unwrap(), "second create must lose");
    let held = aws.ssm.get_parameter(&name).await.unwrap().unwrap();
    assert_eq!((held.value.as_str(), held.version), ("execution-a", 1));
    aws.ssm.put_parameter(&name, "execution-c").await.unwrap();
    assert_eq!(aws.ssm.get_parameter(&name).await.unwrap().unwrap().version, 2);
    assert!(aws.ssm.delete_parameter(&name).await.unwrap());
    assert!(!aws.ssm.delete_parameter(&name).await.unwrap());
}

#[tokio::test]
async fn ssm_parameters_under_a_path_come_back_from_every_page_and_nothing_outside_it() {
    let config = common::sdk_config().await;
    let aws = AwsAccount::new(&config);
    let root = format!("/stepdeploy/{}", unique("paths"));
    // More than one page (GetParametersByPath returns at most 10), nested one level and two.
    let mut expected = Vec::new();
    for i in 0..12 {
        let name = format!("{root}/env{i}/lock");
        aws.ssm.put_parameter(&name, &format!("held-{i}")).await.unwrap();
        expected.push((name, format!("held-{i}")));
    }
    aws.ssm.put_parameter(&format!("{root}/env0"), "config-0").await.unwrap();
    expected.push((format!("{root}/env0"), "config-0".to_string()));
    aws.ssm.put_parameter(&format!("{root}-other/env0/lock"), "someone else").await.unwrap();
    let mut found: Vec<(String, String)> = aws.ssm.parameters_under(&root).await.unwrap().into_iter().map(|p| (p.name, p.value)).collect();
    found.sort();
    expected.sort();
    assert_eq!(found, expected);
}

#[tokio::test]
async fn elbv2_reports_target_health_for_the_whole_group() {
    let env = web_env(2).await;
    let aws = AwsAccount::new(&env.config);
    let health = aws.elbv2.describe_target_health(&env.target_group_arn).await.unwrap();
    assert_eq!(health.len(), 2);
    assert!(health.iter().all(|t| t.state == TargetState::Healthy));
    let bogus = env.target_group_arn.replace("targetgroup/", "targetgroup/missing-");
    let err = aws.elbv2.describe_target_health(&bogus).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn elbv2_takes_targets_out_and_puts_them_back() {
    let env = web_env(2).await;
    let aws = AwsAccount::new(&env.config);
    let first = aws.elbv2.describe_target_health(&env.target_group_arn).await.unwrap()[0].instance_id.clone();
    aws.elbv2.deregister_targets(&env.target_group_arn, std::slice::from_ref(&first)).await.unwrap();
    let after = aws.elbv2.describe_target_health(&env.target_group_arn).await.unwrap();
    let state = after.iter().find(|t| t.instance_id == first).map(|t| t.state.clone());
    assert!(matches!(state, None | Some(TargetState::Draining)), "deregistered: {state:?}");
    aws.elbv2.register_targets(&env.target_group_arn, std::slice::from_ref(&first)).await.unwrap();
    let back = aws.elbv2.describe_target_health(&env.target_group_arn).await.unwrap();
    assert!(back.iter().any(|t| t.instance_id == first && t.state != TargetState::Draining), "registered again: {back:?}");
    let bogus = env.target_group_arn.replace("targetgroup/", "targetgroup/missing-");
    let err = aws.elbv2.register_targets(&bogus, std::slice::from_ref(&first)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn elbv2_creates_lists_and_deletes_listener_rules() {
    let env = web_env(1).await;
    let aws = AwsAccount::new(&env.config);
    let bypass = RuleSpec {
        path_patterns: vec!["/*".into()],
        source_ips: vec!["203.0.113.0/24".into()],
        action: RuleAction::Forward(vec![env.target_group_arn.clone()]),
    };
    let page = RuleSpec {
        path_patterns: vec!["/*".into()],
        source_ips: Vec::new(),
        action: RuleAction::FixedResponse(FixedResponse {
            status_code: 503,
            content_type: "text/html".into(),
            body: "<h1>Upgrade in progress</h1>".into(),
        }),
    };
    let ours = BTreeMap::from([("stepdeploy:deployment".to_string(), "demo".to_string())]);
    let bypass_arn = aws.elbv2.create_rule(&env.listener_arn, 1, &bypass, &ours).await.unwrap();
    let page_arn = aws.elbv2.create_rule(&env.listener_arn, 2, &page, &ours).await.unwrap();
    let rules = aws.elbv2.describe_rules(&env.listener_arn).await.unwrap();
    let listed = |arn: &str| rules.iter().find(|r| r.arn == arn).cloned().unwrap();
    assert_eq!(listed(&bypass_arn).priority, Some(1));
    assert_eq!(listed(&bypass_arn).spec, bypass);
    assert_eq!(listed(&page_arn).spec, page);
    assert!(rules.iter().any(|r| r.priority.is_none()), "the default rule is listed");
    // Created with the deployment's tag (IAM lets a deployment delete only its own rules).
    let raw = aws_sdk_elasticloadbalancingv2::Client::new(&env.config);
    let tags = raw.describe_tags().resource_arns(&page_arn).send().await.unwrap();
    let tagged = tags.tag_descriptions()[0].tags().iter().any(|t| t.key() == Some("stepdeploy:deployment") && t.value() == Some("demo"));
    assert!(tagged, "{tags:?}");

    assert!(aws.elbv2.delete_rule(&page_arn).await.unwrap());
    assert!(aws.elbv2.delete_rule(&bypass_arn).await.unwrap());
    assert_eq!(aws.elbv2.describe_rules(&env.listener_arn).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_fleet_snapshot_joins_all_three_services() {
    let env = web_env(2).await;
    let aws = AwsAccount::new(&env.config);
    let tgs = vec![env.target_group_arn.clone()];
    let snapshot = read_snapshot(&aws.autoscaling, &aws.ec2, &aws.elbv2, &env.group, &tgs, 0).await.unwrap();
    assert_eq!(snapshot.instances.len(), 2);
    for instance in &snapshot.instances {
        assert_eq!(instance.image_id.as_deref(), Some(env.old_image.as_str()));
        assert_eq!(instance.target_health.get(&env.target_group_arn), Some(&TargetState::Healthy));
        assert_eq!(instance.revision.as_deref(), Some("1111111"), "the template's instance tag");
        assert!(!instance.availability_zone.is_empty());
    }
}

#[tokio::test]
async fn step_functions_says_whether_an_execution_still_runs() {
    let config = common::sdk_config().await;
    let aws = AwsAccount::new(&config);
    let sfn = aws_sdk_sfn::Client::new(&config);
    let definition = r#"{"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#;
    let machine = sfn
        .create_state_machine()
        .name(unique("lock-holder"))
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/stepdeploy-test")
        .send()
        .await
        .unwrap();
    let started = sfn.start_execution().state_machine_arn(machine.state_machine_arn()).send().await.unwrap();
    let arn = started.execution_arn().to_string();
    assert_eq!(aws.sfn.execution_running(&arn).await.unwrap(), Some(true));
    sfn.stop_execution().execution_arn(&arn).send().await.unwrap();
    assert_eq!(aws.sfn.execution_running(&arn).await.unwrap(), Some(false), "stopped");
    let missing = arn.rsplit_once(':').map(|(head, _)| format!("{head}:no-such-execution")).unwrap();
    assert_eq!(aws.sfn.execution_running(&missing).await.unwrap(), Some(false), "never existed");
    assert_eq!(aws.sfn.execution_running("local-1700000000").await.unwrap(), None, "a local run's id is not asked about");
}

#[tokio::test]
async fn cloudwatch_reads_alarm_states_with_their_reasons_in_one_call() {
    use aws_sdk_cloudwatch::types::StateValue;
    let config = common::sdk_config().await;
    let aws = AwsAccount::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let (quiet, firing) = (unique("5xx-quiet"), unique("5xx-firing"));
    for name in [&quiet, &firing] {
        common::put_5xx_alarm(&config, name).await;
    }
    let reason = "Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (5.0).";
    cloudwatch.set_alarm_state().alarm_name(&firing).state_value(StateValue::Alarm).state_reason(reason).send().await.unwrap();
    cloudwatch.set_alarm_state().alarm_name(&quiet).state_value(StateValue::Ok).state_reason("fine").send().await.unwrap();
    let missing = unique("never-created");
    let names = vec![quiet.clone(), firing.clone(), missing.clone()];
    let states = aws.cloudwatch.describe_alarms(&names).await.unwrap();
    assert_eq!(states.len(), 2, "an alarm that doesn't exist is absent: {states:?}");
    let by_name = |n: &str| states.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("{n} missing from {states:?}"));
    assert_eq!((by_name(&firing).state.as_str(), by_name(&firing).reason.as_str()), ("ALARM", reason));
    assert!(by_name(&firing).firing());
    assert_eq!(by_name(&quiet).state, "OK");
    assert!(by_name(&firing).updated_at > 1_700_000_000, "StateUpdatedTimestamp is read: {}", by_name(&firing).updated_at);
    assert!(aws.cloudwatch.describe_alarms(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn sns_publishes_a_pause_notification_and_refuses_a_missing_topic() {
    let config = common::sdk_config().await;
    let aws = AwsAccount::new(&config);
    let sns = aws_sdk_sns::Client::new(&config);
    let topic = sns.create_topic().name(unique("stepdeploy-notifications")).send().await.unwrap().topic_arn.unwrap();
    let id = aws.sns.publish(&topic, "stepdeploy: staging paused at its 50 % checkpoint", "To go on:\n  stepdeploy approve staging\n").await.unwrap();
    assert!(!id.is_empty(), "SNS returns the message id");
    let missing = topic.rsplit_once(':').map(|(head, _)| format!("{head}:{}", unique("no-such-topic"))).unwrap();
    let refused = aws.sns.publish(&missing, "subject", "body").await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::NotFound, "{refused}");
}

#[tokio::test]
async fn readiness_reads_tags_target_group_timing_instance_types_and_the_quotas_use() {
    use aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute;
    let env = web_env(1).await;
    let aws = AwsAccount::new(&env.config);
    let deployment = ("stepdeploy:deployment", "readiness");
    // GIVEN the group, the template, the target group and the listener carry the deployment tag
    let asg = aws_sdk_autoscaling::Client::new(&env.config);
    let tag = aws_sdk_autoscaling::types::Tag::builder()
        .resource_id(&env.group)
        .resource_type("auto-scaling-group")
        .key(deployment.0)
        .value(deployment.1)
        .propagate_at_launch(true)
        .build();
    asg.create_or_update_tags().tags(tag).send().await.unwrap();
    // (moto keeps a launch template's tags from its creation only, where AWS's CreateTags adds
    // to them: this template is tagged as it is made.)
    let ec2 = aws_sdk_ec2::Client::new(&env.config);
    let ec2_tag = aws_sdk_ec2::types::Tag::builder().key(deployment.0).value(deployment.1).build();
    let spec = aws_sdk_ec2::types::TagSpecification::builder().resource_type(aws_sdk_ec2::types::ResourceType::LaunchTemplate).tags(ec2_tag).build();
    let tagged_name = common::unique("tagged");
    let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder().image_id(&env.old_image).build();
    let tagged =
        ec2.create_launch_template().launch_template_name(&tagged_name).launch_template_data(data).tag_specifications(spec).send().await.unwrap();
    let tagged_id = tagged.launch_template().and_then(|t| t.launch_template_id()).unwrap().to_string();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&env.config);
    let elb_tag = aws_sdk_elasticloadbalancingv2::types::Tag::builder().key(deployment.0).value(deployment.1).build();
    elb.add_tags().resource_arns(&env.target_group_arn).resource_arns(&env.listener_arn).tags(elb_tag).send().await.unwrap();

    let want = |tags: &Tags| tags.get(deployment.0).map(String::as_str) == Some(deployment.1);
    assert!(want(&aws.group_tags(&env.group).await.unwrap()));
    assert!(want(&aws.launch_template_tags(&template(&tagged_id, None)).await.unwrap()));
    assert!(!want(&aws.launch_template_tags(&template(&env.template_id, None)).await.unwrap()), "the untagged one");
    let by_name = LaunchTemplateRef { id: None, name: Some(tagged_name), version: None };
    assert!(want(&aws.launch_template_tags(&by_name).await.unwrap()), "found by name too");
    let elb_tags = aws.elb_tags(&[env.target_group_arn.clone(), env.listener_arn.clone()]).await.unwrap();
    assert!(want(&elb_tags[&env.target_group_arn]) && want(&elb_tags[&env.listener_arn]), "{elb_tags:?}");
    assert_eq!(aws.group_tags("no-such-group").await.unwrap_err().kind, ErrorKind::NotFound);
    let nameless = LaunchTemplateRef { id: None, name: Some("no-such-template".into()), version: None };
    assert_eq!(aws.launch_template_tags(&nameless).await.unwrap_err().kind, ErrorKind::NotFound);

    // GIVEN the target group checks every 15 s, is healthy after 4, and drains for 45 s
    elb.modify_target_group()
        .target_group_arn(&env.target_group_arn)
        .health_check_interval_seconds(15)
        .healthy_threshold_count(4)
        .send()
        .await
        .unwrap();
    let delay = TargetGroupAttribute::builder().key("deregistration_delay.timeout_seconds").value("45").build();
    elb.modify_target_group_attributes().target_group_arn(&env.target_group_arn).attributes(delay).send().await.unwrap();
    let timing = aws.target_group_timing(&env.target_group_arn).await.unwrap();
    assert_eq!(timing, TargetGroupTiming { interval_seconds: 15, healthy_threshold: 4, deregistration_delay_seconds: 45 });
    assert_eq!(timing.seconds_to_healthy(), 60);

    // The template's type and instance profile, and the type's vCPUs (EC2's published figures).
    let versions = aws.describe_versions(&template(&env.template_id, None), &["1".to_string()]).await.unwrap();
    assert_eq!(
        (versions[0].instance_type.as_deref(), versions[0].instance_profile.as_deref()),
        (Some("t3.micro"), Some(common::WEB_INSTANCE_PROFILE))
    );
    // The group's instances, as SSM lists them (moto_server.py stands in for the agent); an id it
    // doesn't know is absent, not an error.
    let group = aws.describe_group(&env.group).await.unwrap();
    let mut ids: Vec<String> = group.instances.iter().map(|i| i.id.clone()).collect();
    ids.push("i-00000000000000000".into());
    let status = aws.ssm_ping_status(&ids).await.unwrap();
    assert_eq!(status.len(), 1, "{status:?}");
    assert!(status.values().all(|s| s == SSM_ONLINE), "{status:?}");
    assert_eq!(aws.instance_vcpus("t3.micro").await.unwrap(), Some(2));
    assert_eq!(aws.instance_vcpus("m5.xlarge").await.unwrap(), Some(4));
    assert_eq!(aws.instance_vcpus("q9.nonsense").await.unwrap(), None, "an unknown type is not an outage");

    // moto's Service Quotas knows only VPC quotas: EC2's answers NoSuchResourceException, read as
    // no applied value (the value itself is read on aws-smithy-mocks, in mocked.rs).
    assert_eq!(aws.ec2_quota("L-1216C47A").await.unwrap(), None);
    // No AWS/Usage data in moto's account: no usage, not zero.
    assert_eq!(aws.vcpu_usage("Standard/OnDemand").await.unwrap(), None);
}
