//! Error paths moto can't produce, on aws-smithy-mocks.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_autoscaling::operation::set_desired_capacity::{SetDesiredCapacityError, SetDesiredCapacityOutput};
use aws_sdk_ssm::error::ErrorMetadata;
use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationError;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use aws_sdk_ssm::types::error::InvocationDoesNotExist;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use stepdeploy_aws::{AwsAutoScaling, AwsSsm};
use stepdeploy_core::ports::{CommandRunner, CommandStatus, ErrorKind, GroupWriter, Notifications, Parameters};

fn throttling() -> SetDesiredCapacityError {
    SetDesiredCapacityError::generic(ErrorMetadata::builder().code("Throttling").message("Rate exceeded").build())
}

#[tokio::test]
async fn a_throttled_call_keeps_the_aws_code_and_message() {
    let rule = mock!(aws_sdk_autoscaling::Client::set_desired_capacity).then_error(throttling);
    let client = mock_client!(aws_sdk_autoscaling, [&rule]);
    let err = AwsAutoScaling::new(client).set_desired_capacity("web", 3).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert!(err.is_retryable());
    assert_eq!(err.code.as_deref(), Some("Throttling"));
    assert_eq!(err.message, "Rate exceeded");
    assert_eq!(err.to_string(), "autoscaling:SetDesiredCapacity failed with Throttling: Rate exceeded");
    assert!(std::error::Error::source(&err).is_some(), "the SDK error is kept as the source");
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_until_it_passes() {
    let rule = mock!(aws_sdk_autoscaling::Client::set_desired_capacity)
        .sequence()
        .error(throttling)
        .times(2)
        .output(|| SetDesiredCapacityOutput::builder().build())
        .build();
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::Sequential, [&rule], |config| {
        config.retry_config(RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(1)))
    });
    AwsAutoScaling::new(client).set_desired_capacity("web", 3).await.unwrap();
    assert_eq!(rule.num_calls(), 3, "one call plus two retries, no more");
}

#[tokio::test]
async fn an_invocation_not_yet_visible_reads_as_running() {
    let rule = mock!(aws_sdk_ssm::Client::get_command_invocation)
        .then_error(|| GetCommandInvocationError::InvocationDoesNotExist(InvocationDoesNotExist::builder().message("not yet").build()));
    let client = mock_client!(aws_sdk_ssm, [&rule]);
    let invocations = AwsSsm::new(client).invocations("cmd-1", &["i-1".into()]).await.unwrap();
    assert_eq!(invocations[0].status, CommandStatus::Running);
    assert_eq!(invocations[0].exit_code, None);
}

#[tokio::test]
async fn access_denied_names_the_operation_and_keeps_the_request_id() {
    let rule = mock!(aws_sdk_ssm::Client::get_parameter).then_error(|| {
        GetParameterError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("User is not authorized to perform ssm:GetParameter")
                .custom("aws_request_id", "req-123")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_ssm, [&rule]);
    let err = AwsSsm::new(client).get_parameter("/stepdeploy/app/prod").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
    assert_eq!((err.service, err.operation), ("ssm", "GetParameter"));
    assert_eq!(err.request_id.as_deref(), Some("req-123"));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn an_instance_refresh_that_still_runs_is_reported_and_finished_ones_are_not() {
    // moto doesn't implement DescribeInstanceRefreshes.
    use aws_sdk_autoscaling::operation::describe_instance_refreshes::DescribeInstanceRefreshesOutput;
    use aws_sdk_autoscaling::types::{InstanceRefresh, InstanceRefreshStatus};
    use stepdeploy_core::ports::GroupReader;
    let refresh = |id: &str, status: InstanceRefreshStatus| InstanceRefresh::builder().instance_refresh_id(id).status(status).build();
    let running = mock!(aws_sdk_autoscaling::Client::describe_instance_refreshes)
        .match_requests(|r| r.auto_scaling_group_name() == Some("web"))
        .then_output(move || {
            DescribeInstanceRefreshesOutput::builder()
                .instance_refreshes(refresh("r-2", InstanceRefreshStatus::Baking))
                .instance_refreshes(refresh("r-1", InstanceRefreshStatus::Successful))
                .build()
        });
    let client = mock_client!(aws_sdk_autoscaling, [&running]);
    assert_eq!(AwsAutoScaling::new(client).active_instance_refresh("web").await.unwrap().as_deref(), Some("r-2 Baking"));

    let done = mock!(aws_sdk_autoscaling::Client::describe_instance_refreshes).then_output(move || {
        DescribeInstanceRefreshesOutput::builder()
            .instance_refreshes(refresh("r-1", InstanceRefreshStatus::Successful))
            .instance_refreshes(refresh("r-0", InstanceRefreshStatus::Cancelled))
            .build()
    });
    let client = mock_client!(aws_sdk_autoscaling, [&done]);
    assert_eq!(AwsAutoScaling::new(client).active_instance_refresh("web").await.unwrap(), None);
}

#[tokio::test]
async fn scaling_activities_since_a_time_keep_status_description_cause_and_message() {
    // moto's DescribeScalingActivities always returns nothing.
    use aws_sdk_autoscaling::operation::describe_scaling_activities::DescribeScalingActivitiesOutput;
    use aws_sdk_autoscaling::primitives::DateTime;
    use aws_sdk_autoscaling::types::{Activity, ScalingActivityStatusCode};
    use stepdeploy_core::ports::GroupReader;
    let activity = |at: i64, status: ScalingActivityStatusCode, description: &str, message: Option<&str>| {
        Activity::builder()
            .activity_id(format!("a-{at}"))
            .auto_scaling_group_name("web")
            .start_time(DateTime::from_secs(at))
            .status_code(status)
            .description(description)
            .cause("At 2026-11-30T10:00:00Z an instance was started in response to a difference between desired and actual capacity.")
            .set_status_message(message.map(str::to_string))
            .build()
    };
    let rule = mock!(aws_sdk_autoscaling::Client::describe_scaling_activities)
        .match_requests(|r| r.auto_scaling_group_name() == Some("web"))
        .then_output(move || {
            DescribeScalingActivitiesOutput::builder()
                .activities(activity(
                    2000,
                    ScalingActivityStatusCode::Failed,
                    "Launching a new EC2 instance.  Status Reason: bad AMI",
                    Some("The image id '[ami-1]' does not exist"),
                ))
                .activities(activity(1000, ScalingActivityStatusCode::Successful, "Launching a new EC2 instance: i-1", None))
                .build()
        });
    let client = mock_client!(aws_sdk_autoscaling, [&rule]);
    let activities = AwsAutoScaling::new(client).scaling_activities("web", 1500).await.unwrap();
    assert_eq!(activities.len(), 1, "only those since the given time");
    assert_eq!((activities[0].started_at, activities[0].status.as_str()), (2000, "Failed"));
    assert!(activities[0].is_failed_launch());
    assert_eq!(activities[0].message.as_deref(), Some("The image id '[ami-1]' does not exist"));
}

#[tokio::test]
async fn a_command_sends_its_whole_output_to_cloudwatch_logs() {
    // moto accepts CloudWatchOutputConfig but doesn't keep it: the request is checked here.
    use aws_sdk_ssm::operation::send_command::SendCommandOutput;
    use aws_sdk_ssm::types::Command;
    use stepdeploy_core::ports::CommandRequest;
    let rule = mock!(aws_sdk_ssm::Client::send_command)
        .match_requests(|r| {
            r.cloud_watch_output_config()
                .is_some_and(|c| c.cloud_watch_output_enabled() && c.cloud_watch_log_group_name() == Some("/stepdeploy/d/commands"))
        })
        .then_output(|| SendCommandOutput::builder().command(Command::builder().command_id("c-1").build()).build());
    let client = mock_client!(aws_sdk_ssm, [&rule]);
    let request = CommandRequest {
        document: "stepdeploy-d-command",
        instance_ids: &["i-1".to_string()],
        command: "/usr/local/bin/stepdeploy-migrate",
        revision: "",
        timeout_seconds: 600,
        comment: "stepdeploy migrate prod",
        output_log_group: Some("/stepdeploy/d/commands"),
    };
    assert_eq!(AwsSsm::new(client).send_command(&request).await.unwrap(), "c-1");
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn failed_and_timed_out_invocations_map_to_failed_with_their_code_and_output() {
    // moto's SSM always reports Success; what AWS reports for a failing command is checked here.
    use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
    use aws_sdk_ssm::types::CommandInvocationStatus;
    let answer = |status: CommandInvocationStatus, detail: &'static str, code: i32| {
        move || {
            GetCommandInvocationOutput::builder()
                .status(status.clone())
                .status_details(detail)
                .response_code(code)
                .standard_output_content("Applying votes.0042...")
                .standard_error_content("OperationalError: deadlock")
                .build()
        }
    };
    let cases = [
        (CommandInvocationStatus::Failed, "Failed", 3, CommandStatus::Failed, Some(3)),
        (CommandInvocationStatus::TimedOut, "DeliveryTimedOut", -1, CommandStatus::Failed, Some(-1)),
        (CommandInvocationStatus::Cancelled, "Cancelled", -1, CommandStatus::Failed, Some(-1)),
        (CommandInvocationStatus::InProgress, "InProgress", -1, CommandStatus::Running, None),
        (CommandInvocationStatus::Success, "Success", 0, CommandStatus::Succeeded, Some(0)),
    ];
    for (status, detail, code, expected, exit_code) in cases {
        let rule = mock!(aws_sdk_ssm::Client::get_command_invocation).then_output(answer(status.clone(), detail, code));
        let client = mock_client!(aws_sdk_ssm, [&rule]);
        let invocation = AwsSsm::new(client).invocations("cmd-1", &["i-1".into()]).await.unwrap().remove(0);
        assert_eq!((invocation.status, invocation.exit_code), (expected, exit_code), "{status:?}");
        assert_eq!((invocation.status_detail.as_str(), invocation.command_id.as_str()), (detail, "cmd-1"));
        if expected == CommandStatus::Failed {
            assert_eq!(invocation.stderr, "OperationalError: deadlock");
        }
    }
}

#[tokio::test]
async fn an_answer_to_a_pause_that_already_ended_is_not_found_whatever_step_functions_calls_it() {
    use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureError;
    use aws_sdk_sfn::operation::send_task_success::{SendTaskSuccessError, SendTaskSuccessOutput};
    use stepdeploy_core::ports::TaskAnswers;
    // https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html#API_SendTaskSuccess_Errors
    for code in ["TaskDoesNotExist", "TaskTimedOut", "InvalidToken"] {
        let gone = mock!(aws_sdk_sfn::Client::send_task_success)
            .then_error(move || SendTaskSuccessError::generic(ErrorMetadata::builder().code(code).message("gone").build()));
        let client = mock_client!(aws_sdk_sfn, [&gone]);
        let err = stepdeploy_aws::AwsSfn::new(client).send_task_success("t", "{}").await.unwrap_err();
        assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::NotFound, Some(code)), "{code}");
    }
    // Anything else keeps its own kind: throttling is retried, not taken for an ended pause.
    let throttled = mock!(aws_sdk_sfn::Client::send_task_failure)
        .then_error(|| SendTaskFailureError::generic(ErrorMetadata::builder().code("ThrottlingException").message("slow down").build()));
    let client = mock_client!(aws_sdk_sfn, [&throttled]);
    let err = stepdeploy_aws::AwsSfn::new(client).send_task_failure("t", "StepDeploy.CheckpointRejected", "no").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    // A success sends the token and the output as given.
    let ok = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| r.task_token() == Some("token-1") && r.output() == Some(r#"{"approved_by":"ann"}"#))
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let client = mock_client!(aws_sdk_sfn, [&ok]);
    stepdeploy_aws::AwsSfn::new(client).send_task_success("token-1", r#"{"approved_by":"ann"}"#).await.unwrap();
    assert_eq!(ok.num_calls(), 1);
}

#[tokio::test]
async fn a_standby_move_auto_scaling_refuses_is_invalid_with_its_code_and_message() {
    use aws_sdk_autoscaling::operation::exit_standby::ExitStandbyError;
    let rule = mock!(aws_sdk_autoscaling::Client::exit_standby).then_error(|| {
        ExitStandbyError::generic(ErrorMetadata::builder().code("ValidationError").message("The instance i-1 is not in Standby.").build())
    });
    let client = mock_client!(aws_sdk_autoscaling, [&rule]);
    let err = AwsAutoScaling::new(client).exit_standby("web", &["i-1".to_string()]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(!err.is_retryable());
    assert_eq!(err.to_string(), "autoscaling:ExitStandby failed with ValidationError: The instance i-1 is not in Standby.");
}

#[tokio::test]
async fn a_publish_sns_throttles_is_retryable_and_keeps_the_code() {
    use aws_sdk_sns::operation::publish::PublishError;
    let rule = mock!(aws_sdk_sns::Client::publish)
        .then_error(|| PublishError::generic(aws_sdk_sns::error::ErrorMetadata::builder().code("Throttling").message("Rate exceeded").build()));
    let client = mock_client!(aws_sdk_sns, [&rule]);
    let err = stepdeploy_aws::AwsSns::new(client).publish("arn:aws:sns:us-east-1:1:t", "s", "m").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert_eq!(err.to_string(), "sns:Publish failed with Throttling: Rate exceeded");
}

#[tokio::test]
async fn the_applied_vcpu_quota_is_read_and_no_applied_value_is_none() {
    use aws_sdk_servicequotas::operation::get_service_quota::{GetServiceQuotaError, GetServiceQuotaOutput};
    use aws_sdk_servicequotas::types::ServiceQuota;
    use stepdeploy_aws::AwsServiceQuotas;
    let applied = mock!(aws_sdk_servicequotas::Client::get_service_quota)
        .match_requests(|r| r.service_code() == Some("ec2") && r.quota_code() == Some("L-1216C47A"))
        .then_output(|| GetServiceQuotaOutput::builder().quota(ServiceQuota::builder().quota_code("L-1216C47A").value(640.0).build()).build());
    let client = mock_client!(aws_sdk_servicequotas, [&applied]);
    assert_eq!(AwsServiceQuotas::new(client).ec2_quota("L-1216C47A").await.unwrap(), Some(640.0));

    let none = mock!(aws_sdk_servicequotas::Client::get_service_quota).then_error(|| {
        GetServiceQuotaError::generic(aws_sdk_servicequotas::error::ErrorMetadata::builder().code("NoSuchResourceException").message("none").build())
    });
    let client = mock_client!(aws_sdk_servicequotas, [&none]);
    assert_eq!(AwsServiceQuotas::new(client).ec2_quota("L-1216C47A").await.unwrap(), None);

    let denied = mock!(aws_sdk_servicequotas::Client::get_service_quota).then_error(|| {
        GetServiceQuotaError::generic(aws_sdk_servicequotas::error::ErrorMetadata::builder().code("AccessDeniedException").message("no").build())
    });
    let client = mock_client!(aws_sdk_servicequotas, [&denied]);
    let err = AwsServiceQuotas::new(client).ec2_quota("L-1216C47A").await.unwrap_err();
    assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::AccessDenied, Some("AccessDeniedException")));
}

#[tokio::test]
async fn ssm_ping_status_filters_by_instance_id_in_batches_of_fifty_and_follows_pages() {
    // moto has no DescribeInstanceInformation.
    use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationOutput;
    use aws_sdk_ssm::types::{InstanceInformation, PingStatus};
    let ids: Vec<String> = (0..60).map(|n| format!("i-{n:017x}")).collect();
    let asked = |r: &aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationInput| {
        r.filters().first().map(|f| (f.key().to_string(), f.values().len()))
    };
    // The first batch's first page names one instance and a next token; its second page another.
    let first_page = mock!(aws_sdk_ssm::Client::describe_instance_information)
        .match_requests(move |r| asked(r) == Some(("InstanceIds".into(), 50)) && r.next_token().is_none())
        .then_output(|| {
            DescribeInstanceInformationOutput::builder()
                .instance_information_list(InstanceInformation::builder().instance_id("i-00000000000000000").ping_status(PingStatus::Online).build())
                .next_token("more")
                .build()
        });
    let second_page =
        mock!(aws_sdk_ssm::Client::describe_instance_information).match_requests(|r| r.next_token() == Some("more")).then_output(|| {
            DescribeInstanceInformationOutput::builder()
                .instance_information_list(
                    InstanceInformation::builder().instance_id("i-00000000000000001").ping_status(PingStatus::ConnectionLost).build(),
                )
                .build()
        });
    let last_batch = mock!(aws_sdk_ssm::Client::describe_instance_information)
        .match_requests(move |r| asked(r) == Some(("InstanceIds".into(), 10)))
        .then_output(|| {
            DescribeInstanceInformationOutput::builder()
                .instance_information_list(InstanceInformation::builder().instance_id("i-0000000000000003b").ping_status(PingStatus::Online).build())
                .build()
        });
    let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&first_page, &second_page, &last_batch]);
    let status = AwsSsm::new(client).ssm_ping_status(&ids).await.unwrap();
    let expected: std::collections::BTreeMap<String, String> =
        [("i-00000000000000000", "Online"), ("i-00000000000000001", "ConnectionLost"), ("i-0000000000000003b", "Online")]
            .into_iter()
            .map(|(id, s)| (id.to_string(), s.to_string()))
            .collect();
    assert_eq!(status, expected);
    assert_eq!((first_page.num_calls(), second_page.num_calls(), last_batch.num_calls()), (1, 1, 1));
}
