//! Starts one `moto_server` per test binary and builds an SDK config for it.
//!
//! The server comes from `STEPDEPLOY_MOTO_ENDPOINT` (already running), or
//! `STEPDEPLOY_MOTO_SERVER`, the workspace's `.venv/bin/moto_server`
//! (installed by `scripts/test`), or `moto_server` on PATH. Without one the
//! tests fail: they never skip.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::Credentials;

static ENDPOINT: OnceLock<Result<String, String>> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A name no other test in this run uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn moto_binary() -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var("STEPDEPLOY_MOTO_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let venv = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/moto_server"));
    if venv.exists() {
        return Ok(venv);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.exists());
    on_path.ok_or_else(|| "moto_server not found: run scripts/test (it installs moto into .venv), or set STEPDEPLOY_MOTO_SERVER".to_string())
}

fn start() -> Result<String, String> {
    if let Ok(url) = std::env::var("STEPDEPLOY_MOTO_ENDPOINT") {
        return Ok(url);
    }
    let binary = moto_binary()?;
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let log = std::env::temp_dir().join(format!("stepdeploy-moto-{port}.log"));
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let (tx, rx) = std::sync::mpsc::channel();
    // The child dies with the thread that forked it (PR_SET_PDEATHSIG), so
    // that thread lives as long as the test binary.
    std::thread::spawn(move || {
        // moto_server's own Python runs our launcher, which patches one moto gap (see moto_server.py).
        let python = binary.with_file_name("python");
        // Both crates that include this module sit beside crates/aws.
        let launcher = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../aws/tests/moto_server.py"));
        let mut command = Command::new(&python);
        command.arg(&launcher).args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(log_file);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let spawned = command.spawn().map_err(|e| format!("cannot start {} {}: {e}", python.display(), launcher.display()));
        let failed = spawned.is_err();
        let _ = tx.send(spawned.map(|_| ()));
        if !failed {
            loop {
                std::thread::park();
            }
        }
    });
    rx.recv().map_err(|e| e.to_string())??;
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("moto_server did not listen on port {port} within 60 s; see {}", log.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("moto_server listening on 127.0.0.1:{port} (log {})", log.display());
    Ok(format!("http://127.0.0.1:{port}"))
}

/// The moto endpoint, starting the server on first use.
pub fn endpoint() -> String {
    ENDPOINT.get_or_init(start).clone().unwrap_or_else(|e| panic!("{e}"))
}

/// An SDK config pointed at moto, with dummy credentials.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .retry_config(RetryConfig::standard())
        .load()
        .await
}

/// moto's default VPC and two of its subnets (comma-separated).
pub async fn default_vpc() -> (String, String) {
    use aws_sdk_ec2::types::Filter;
    let ec2 = aws_sdk_ec2::Client::new(&sdk_config().await);
    let vpcs = ec2.describe_vpcs().filters(Filter::builder().name("is-default").values("true").build()).send().await.unwrap();
    let vpc = vpcs.vpcs()[0].vpc_id().unwrap().to_string();
    let subnets = ec2.describe_subnets().filters(Filter::builder().name("vpc-id").values(&vpc).build()).send().await.unwrap();
    let ids: Vec<&str> = subnets.subnets().iter().filter_map(|s| s.subnet_id()).take(2).collect();
    (vpc, ids.join(","))
}

/// A CloudWatch alarm on the ALB's 5xx count (moto keeps it at INSUFFICIENT_DATA until told otherwise).
pub async fn put_5xx_alarm(config: &SdkConfig, name: &str) {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
    aws_sdk_cloudwatch::Client::new(config)
        .put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(5.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
}

/// A web environment on moto: an ALB, a target group, a launch template with
/// two versions (two AMIs) and a group of two instances on version 1.
pub struct WebEnv {
    pub config: SdkConfig,
    pub group: String,
    pub template_id: String,
    pub template_name: String,
    pub old_image: String,
    pub new_image: String,
    pub target_group_arn: String,
    pub listener_arn: String,
    pub subnet_ids: Vec<String>,
}

pub async fn web_env(desired: i32) -> WebEnv {
    web_env_of(desired, "tests").await
}

/// The instance profile web_env's launch template names (what lets SSM manage the instances).
pub const WEB_INSTANCE_PROFILE: &str = "web-instance";

/// [`web_env`] of deployment `deployment`: the group (propagating to its instances), the launch
/// template, target group and listener carry `stepdeploy:deployment`, as its IAM policies need.
pub async fn web_env_of(desired: i32, deployment: &str) -> WebEnv {
    use aws_sdk_autoscaling::types::LaunchTemplateSpecification as AsgTemplate;
    use aws_sdk_ec2::types::{
        Filter, LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType,
        Tag, TagSpecification,
    };
    use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};

    let config = sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let name = unique("web");

    let images = ec2.describe_images().owners("amazon").send().await.unwrap();
    let mut ids: Vec<String> = images.images().iter().filter_map(|i| i.image_id()).map(str::to_string).collect();
    ids.sort();
    let (old_image, new_image) = (ids[0].clone(), ids[1].clone());
    let vpc = ec2.describe_vpcs().filters(Filter::builder().name("is-default").values("true").build()).send().await.unwrap().vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let subnets = ec2.describe_subnets().filters(Filter::builder().name("vpc-id").values(&vpc).build()).send().await.unwrap();
    let subnet_ids: Vec<String> = subnets.subnets().iter().filter_map(|s| s.subnet_id()).map(str::to_string).take(2).collect();

    let revision_tag = |rev: &str| {
        LaunchTemplateTagSpecificationRequest::builder()
            .resource_type(ResourceType::Instance)
            .tags(Tag::builder().key("stepdeploy:revision").value(rev).build())
            .build()
    };
    let template = ec2
        .create_launch_template()
        .launch_template_name(&name)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(&old_image)
                .instance_type("t3.micro".into())
                .iam_instance_profile(LaunchTemplateIamInstanceProfileSpecificationRequest::builder().name(WEB_INSTANCE_PROFILE).build())
                .tag_specifications(revision_tag("1111111"))
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .tags(Tag::builder().key("stepdeploy:deployment").value(deployment).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let template_id = template.launch_template().unwrap().launch_template_id().unwrap().to_string();
    ec2.create_launch_template_version()
        .launch_template_id(&template_id)
        .source_version("1")
        .launch_template_data(RequestLaunchTemplateData::builder().image_id(&new_image).instance_type("t3.micro".into()).build())
        .send()
        .await
        .unwrap();

    let lb = elb.create_load_balancer().name(&name).set_subnets(Some(subnet_ids.clone())).send().await.unwrap();
    let lb_arn = lb.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    let tg = elb.create_target_group().name(&name).protocol(ProtocolEnum::Http).port(80).vpc_id(&vpc).send().await.unwrap();
    let target_group_arn = tg.target_groups()[0].target_group_arn().unwrap().to_string();
    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&target_group_arn).build())
        .send()
        .await
        .unwrap();
    let listener_arn = listener.listeners()[0].listener_arn().unwrap().to_string();
    let elb_tag = aws_sdk_elasticloadbalancingv2::types::Tag::builder().key("stepdeploy:deployment").value(deployment).build();
    elb.add_tags().resource_arns(&target_group_arn).resource_arns(&listener_arn).tags(elb_tag).send().await.unwrap();

    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&name)
        .launch_template(AsgTemplate::builder().launch_template_id(&template_id).version("1").build())
        .min_size(1)
        .max_size(4)
        .desired_capacity(desired)
        .vpc_zone_identifier(subnet_ids.join(","))
        .target_group_arns(&target_group_arn)
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .key("stepdeploy:deployment")
                .value(deployment)
                .propagate_at_launch(true)
                .resource_id(&name)
                .resource_type("auto-scaling-group")
                .build(),
        )
        .send()
        .await
        .unwrap();

    WebEnv { config, group: name.clone(), template_id, template_name: name, old_image, new_image, target_group_arn, listener_arn, subnet_ids }
}

/// template.yaml's `CommandDocument` content, as JSON: the one SSM document every step's command goes through.
pub fn command_document_content() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let content = &template["Resources"]["CommandDocument"]["Properties"]["Content"];
    assert!(content.is_mapping(), "{path}: no Resources.CommandDocument.Properties.Content");
    serde_json::to_string(content).unwrap_or_else(|e| panic!("{path}: CommandDocument content: {e}"))
}

/// `program` pointed at moto at `endpoint`, with none of the machine's environment, profiles or
/// credentials files; `extra_env` comes last (an `AWS_CONFIG_FILE` there replaces
/// the dummy credentials and region with that profile's).
pub fn on_moto(endpoint: &str, program: &str, args: &[&str], path: &str, extra_env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_CONFIG_FILE", "/nonexistent/stepdeploy-test-config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/stepdeploy-test-credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    if !extra_env.iter().any(|(k, _)| *k == "AWS_CONFIG_FILE") {
        // AWS_REGION for the SDK, AWS_DEFAULT_REGION for the AWS CLI v1.
        let region = [("AWS_REGION", "us-east-1"), ("AWS_DEFAULT_REGION", "us-east-1")];
        command.env("AWS_ACCESS_KEY_ID", "testing").env("AWS_SECRET_ACCESS_KEY", "testing").envs(region);
    }
    command.envs(extra_env.iter().copied());
    command
}

/// A finished program's status and output, for assertion messages.
pub fn text(output: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The last line of a program's stdout, as JSON (what `--output json` prints).
pub fn last_json(output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|_| panic!("no JSON line: {}", text(output)))
}

/// An environment `staging` whose AWS names are placeholders (for the CLI and SSM, not a fleet).
pub fn staging() -> stepdeploy_core::config::Environment {
    stepdeploy_core::config::Environment {
        region: "us-east-1".into(),
        auto_scaling_group: "web".into(),
        target_group_arns: vec!["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1".into()],
        listener_arn: Some("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1/2".into()),
        launch_template: Some("lt-0123456789abcdef0".into()),
        ..stepdeploy_core::config::Environment::default()
    }
}
