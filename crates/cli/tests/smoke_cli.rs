//! `scripts/aws-smoke` (#17) on moto: it refuses the wrong account before it creates anything,
//! runs its steps in order, counts the unhealthy revision's deploy as passed only when it fails
//! (rolls back), skips the rest after a failed step, and always cleans up.
//!
//! What moto can't run is faked, and only that: `sam deploy` of template.yaml (no SAM transform,
//! no Rust Lambdas) by a stand-in that makes a stack of that name and the state machines'
//! parameter; and the workflows that run on those Lambdas (`bake`, `deploy`) by a wrapper that
//! answers as they would. `env create`, `config push`, `doctor`, `status` and `env delete` are the
//! real binary on moto's CloudFormation.

#![cfg(feature = "aws")]

#[path = "../../aws/tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Output;

/// The AWS CLI from `.venv-awscli` (scripts/test installs it).
fn aws_cli_dir() -> PathBuf {
    let dir = std::env::var("STEPDEPLOY_AWS_CLI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv-awscli/bin")));
    assert!(dir.join("aws").exists(), "no AWS CLI in {}: run scripts/test, or set STEPDEPLOY_AWS_CLI_DIR", dir.display());
    dir
}

/// The wrapper for `bake` and `deploy`: a bake records its revision; a serial deploy after the
/// revision "unhealthy" fails and rolls back, as the real one does, unless FAKE_NO_ROLLBACK; a
/// command that starts with FAKE_FAIL fails. Everything else is the real binary.
const FAKE_STEPDEPLOY: &str = r#"#!/usr/bin/env bash
echo "$*" >>"$FAKE_DIR/calls"
case "$1" in
  bake|deploy)
    if [ -n "${FAKE_FAIL:-}" ] && [[ "$*" == "$FAKE_FAIL"* ]]; then echo "FAILED: StepDeploy.RolloutFailed (fake)"; exit 1; fi
    if [ "$1" = bake ]; then
      while [ $# -gt 0 ]; do [ "$1" = --revision ] && echo "$2" >"$FAKE_DIR/baked"; shift; done
      echo "SUCCEEDED (fake bake)"; exit 0
    fi
    if [ "$2" = serial ] && [ "$(cat "$FAKE_DIR/baked" 2>/dev/null)" = unhealthy ] && [ -z "${FAKE_NO_ROLLBACK:-}" ]; then
      echo "FAILED: StepDeploy.RolloutFailed"; echo "i-0 not healthy 600 s after launch; rolled back to version 2"; exit 1
    fi
    echo "SUCCEEDED (fake deploy)"; exit 0 ;;
esac
exec "$REAL_STEPDEPLOY" "$@"
"#;

/// The stand-in for `sam deploy`: a stack of the name asked, its serial and full deploy state
/// machines (each a Succeed) and the parameter of their ARNs the stack writes, and (a moto gap) the Tags moto's CloudFormation drops from the environment's
/// target group and listener, which AWS applies.
const FAKE_SAM_DEPLOY: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "$*" >"$FAKE_DIR/sam-args"
stack="" deployment="" role=""
while [ $# -gt 0 ]; do
  case "$1" in
    --stack-name) stack=$2; shift 2 ;;
    Deployment=*) deployment=${1#Deployment=}; shift ;;
    FleetRoleArns=*) role=${1#FleetRoleArns=}; shift ;;
    *) shift ;;
  esac
done
[[ $role == arn:aws:iam::* ]] || { echo "FleetRoleArns is not the environment's instance role: '$role'"; exit 1; }
aws cloudformation create-stack --stack-name "$stack" --template-body '{"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}' >/dev/null
arn() { aws stepfunctions create-state-machine --name "$stack-$1" --role-arn arn:aws:iam::123456789012:role/stand-in \
  --definition '{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}' --query stateMachineArn --output text; }
machines=$(printf '{"serial-deploy": "%s", "full-deploy": "%s"}' "$(arn serial-deploy)" "$(arn full-deploy)")
aws ssm put-parameter --name "/stepdeploy/$deployment/state-machines" --type String --value "$machines" >/dev/null
outputs=$(aws cloudformation describe-stacks --stack-name "$stack-smoke" --query 'Stacks[0].Outputs' --output json)
for key in TargetGroupArn ListenerArn; do
  arn=$(printf '%s' "$outputs" | python3 -c "import json, sys; print([o['OutputValue'] for o in json.load(sys.stdin) if o['OutputKey'] == '$key'][0])")
  aws elbv2 add-tags --resource-arns "$arn" --tags "Key=stepdeploy:deployment,Value=$deployment" >/dev/null
done
echo "deployed $stack (stand-in)"
"#;

struct Smoke {
    dir: tempfile::TempDir,
    deployment: String,
}

impl Smoke {
    fn new() -> Smoke {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("stepdeploy", FAKE_STEPDEPLOY), ("sam-deploy", FAKE_SAM_DEPLOY)] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let mut permissions = std::fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            std::fs::set_permissions(&path, permissions).unwrap();
        }
        Smoke { dir, deployment: common::unique("smoke").replace('_', "-") }
    }

    async fn run(&self, account: &str, extra_env: &[(&str, &str)]) -> Output {
        let (vpc, subnets) = common::default_vpc().await;
        let network = format!("VpcId={vpc} PublicSubnetIds={subnets} PrivateSubnetIds={subnets}");
        let dir = self.dir.path().display().to_string();
        let mut env = vec![
            ("FAKE_DIR", dir.clone()),
            ("REAL_STEPDEPLOY", env!("CARGO_BIN_EXE_stepdeploy").to_string()),
            ("STEPDEPLOY_BIN", format!("{dir}/stepdeploy")),
            ("STEPDEPLOY_SAM_DEPLOY", format!("{dir}/sam-deploy")),
            ("STEPDEPLOY_SMOKE_NAME", self.deployment.clone()),
            ("STEPDEPLOY_POLL_SECONDS", "0".to_string()),
            // moto can't delete a VPC a stack made: the smoke environment goes in moto's default one.
            ("STEPDEPLOY_SMOKE_PARAMETERS", network),
        ];
        env.extend(extra_env.iter().map(|(k, v)| (*k, v.to_string())));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let path = format!("{}:{}", aws_cli_dir().display(), std::env::var("PATH").unwrap_or_default());
        let program = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/aws-smoke");
        common::on_moto(&common::endpoint(), program, &["--account", account, "--region", "us-east-1"], &path, &env).output().expect("aws-smoke runs")
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default()
    }

    /// Nothing of the deployment is left: no stack, no parameter.
    async fn assert_nothing_left(&self) {
        let sdk = common::sdk_config().await;
        let cfn = aws_sdk_cloudformation::Client::new(&sdk);
        for stack in [format!("stepdeploy-{}", self.deployment), format!("stepdeploy-{}-smoke", self.deployment)] {
            let live = match cfn.describe_stacks().stack_name(&stack).send().await {
                Ok(found) => found.stacks().first().and_then(|s| s.stack_status()).is_some_and(|s| s.as_str() != "DELETE_COMPLETE"),
                Err(_) => false,
            };
            assert!(!live, "{stack} is left");
        }
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        let left = ssm.get_parameters_by_path().path(format!("/stepdeploy/{}", self.deployment)).recursive(true).send().await.unwrap();
        assert!(left.parameters().is_empty(), "{:?}", left.parameters());
    }
}

fn text(output: &Output) -> String {
    common::text(output)
}

/// moto's account.
const ACCOUNT: &str = "123456789012";

const STEPS: [&str; 10] = [
    "env create (two t3.micro)",
    "deploy the stepdeploy stack",
    "config push",
    "doctor",
    "bake revision good-1",
    "serial deploy of good-1",
    "full deploy of good-1 (maintenance page)",
    "bake revision unhealthy",
    "serial deploy of unhealthy (must roll back)",
    "status after the rollback",
];

const CLEAN_UP: [&str; 4] =
    ["delete the environment stack", "delete the stepdeploy stack", "delete the baked images and their snapshots", "delete the config parameters"];

/// The summary's lines (after the blank line), as `VERDICT NAME`.
fn verdicts(output: &Output) -> Vec<(String, String)> {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let summary = stdout.rsplit("\n\n").next().unwrap_or_default().to_string();
    summary
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(v, rest)| (v.to_string(), rest.trim().to_string())))
        .filter(|(v, _)| ["ok", "FAIL", "skipped"].contains(&v.as_str()))
        .map(|(v, rest)| (v, rest.split(" (").next().unwrap_or_default().to_string().replace(" (maintenance page", "")))
        .collect()
}

fn names(list: &[(String, String)]) -> Vec<String> {
    list.iter().map(|(_, n)| n.clone()).collect()
}

fn expected_names() -> Vec<String> {
    STEPS.iter().chain(CLEAN_UP.iter()).map(|s| s.split(" (").next().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn the_wrong_account_is_refused_before_anything_is_created() {
    let smoke = Smoke::new();
    let out = smoke.run("999999999999", &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to run: the credentials act in account 123456789012, not 999999999999"), "{}", text(&out));
    assert!(smoke.calls().lines().all(|l| l == "--version"), "no stepdeploy command but --version ran: {}", smoke.calls());
    let out = smoke.run("12345", &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--account: \"12345\" is not a 12-digit AWS account id"), "{}", text(&out));
    smoke.assert_nothing_left().await;
}

#[tokio::test]
async fn every_step_runs_in_order_the_unhealthy_revision_rolls_back_and_nothing_is_left() {
    let smoke = Smoke::new();
    let out = smoke.run(ACCOUNT, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let verdicts = verdicts(&out);
    assert_eq!(names(&verdicts), expected_names(), "{}", text(&out));
    assert!(verdicts.iter().all(|(v, _)| v == "ok"), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("SUCCEEDED: deployment {} in {ACCOUNT} (us-east-1), and nothing of it is left", smoke.deployment)), "{stdout}");
    assert!(stdout.contains("estimated cost about $0."), "{stdout}");
    assert!(stdout.contains("ready to deploy"), "doctor passed on the environment env create made: {stdout}");
    // The stepdeploy stack was given the environment's instance role, and the steps ran in order.
    let sam = std::fs::read_to_string(smoke.dir.path().join("sam-args")).unwrap();
    assert!(sam.contains(&format!("Deployment={}", smoke.deployment)) && sam.contains("CAPABILITY_IAM"), "{sam}");
    let calls: Vec<String> = smoke.calls().lines().map(|l| l.split(" --").next().unwrap_or_default().to_string()).collect();
    let workflows: Vec<&str> = calls.iter().map(String::as_str).filter(|c| c.starts_with("bake") || c.starts_with("deploy")).collect();
    assert_eq!(workflows, ["bake smoke", "deploy serial smoke", "deploy full smoke", "bake smoke", "deploy serial smoke"], "{calls:?}");
    smoke.assert_nothing_left().await;
}

#[tokio::test]
async fn a_failed_step_skips_the_rest_and_the_clean_up_still_runs() {
    let smoke = Smoke::new();
    let out = smoke.run(ACCOUNT, &[("FAKE_FAIL", "deploy full")]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let verdicts = verdicts(&out);
    let by_name = |name: &str| verdicts.iter().find(|(_, n)| name.starts_with(n.as_str())).map(|(v, _)| v.clone()).unwrap_or_default();
    assert_eq!(by_name("serial deploy of good-1"), "ok");
    assert_eq!(by_name("full deploy of good-1"), "FAIL", "{}", text(&out));
    for skipped in ["bake revision unhealthy", "serial deploy of unhealthy", "status after the rollback"] {
        assert_eq!(by_name(skipped), "skipped", "{skipped}: {}", text(&out));
    }
    for cleaned in CLEAN_UP {
        assert_eq!(by_name(cleaned), "ok", "{cleaned}: {}", text(&out));
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED: full deploy of good-1 (maintenance page): exit 1"), "{}", text(&out));
    smoke.assert_nothing_left().await;
}

#[tokio::test]
async fn an_unhealthy_revision_that_deploys_fails_the_smoke() {
    let smoke = Smoke::new();
    let out = smoke.run(ACCOUNT, &[("FAKE_NO_ROLLBACK", "1")]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAILED: serial deploy of unhealthy (must roll back): it succeeded, but it must fail (and roll back)"), "{stdout}");
    smoke.assert_nothing_left().await;
}
