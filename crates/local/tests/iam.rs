//! IAM is part of correctness: every AWS call every step makes, in every
//! workflow the demo runs (with and without faults), evaluated against
//! template.yaml's policies the way AWS evaluates them.
//!
//! - The template is expanded offline by the SAM translator
//!   (`scripts/iam/expand.py`, from `.venv`), as `sam deploy` would.
//! - The sim records, for each call, the action, every resource ARN it is
//!   authorized on, the condition keys AWS sends (resource and request tags,
//!   `ec2:CreateAction`, `iam:PassedToService`...), and the checks AWS makes
//!   on the caller's behalf (`stepdeploy_sim::iam::ON_BEHALF`, with their pages).
//! - `@cloud-copilot/iam-simulate` (npm, a test tool only) decides
//!   (`scripts/iam/evaluate.mjs`).
//!
//! `STEPDEPLOY_PYTHON` names the Python with cfn-lint and the SAM translator
//! (default `.venv/bin/python`, which `scripts/test` installs); `node` and
//! `node_modules` come from `npm ci`. Missing tools fail the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::json;
use stepdeploy_core::fleet::REVISION_TAG;
use stepdeploy_local::{AUTOSCALING_PROCESSES, IN_PLACE_DEPLOY, REBAKE, RELEASE, demo, run_as_deployed, scenario};
use stepdeploy_sim::demo::DemoFleet;
use stepdeploy_sim::iam::AuthRequest;
use stepdeploy_sim::{ApiCall, SimSettings};

/// The demo launch template's instance profile role, the one role the steps may pass.
const FLEET_ROLE: &str = "arn:aws:iam::123456789012:role/demo-web-instance";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One call as the evaluator sees it: who made it and one authorization it needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Request {
    principal: String,
    operation: String,
    #[serde(flatten)]
    auth: AuthRequest,
}

#[derive(Debug, Clone, Deserialize)]
struct Outcome {
    #[serde(flatten)]
    request: Request,
    decision: String,
    detail: String,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.request;
        let why = if r.auth.implied_by.is_empty() { String::new() } else { format!(" (checked on the caller's behalf for {})", r.auth.implied_by) };
        write!(
            f,
            "step {}: {} needs {} on {}{why}: {} {}; context {:?}",
            r.principal, r.operation, r.auth.action, r.auth.resource, self.decision, self.detail, r.auth.context
        )
    }
}

/// A run `stepdeploy local` doesn't offer: label, definition, input, set-up.
type Extra = (&'static str, &'static str, Value, fn(&DemoFleet));

/// Every call of every workflow the demo runs, with and without each fault that applies to it.
fn recorded_calls() -> &'static Vec<(String, ApiCall)> {
    static CALLS: OnceLock<Vec<(String, ApiCall)>> = OnceLock::new();
    CALLS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let mut calls = Vec::new();
        for workflow in scenario::WORKFLOWS {
            let faults = scenario::FAULTS.iter().filter(|(_, applies)| applies.contains(workflow)).map(|(name, _)| Some(*name));
            for fault in std::iter::once(None).chain(faults) {
                let (fleet, config) = demo(7, 3, SimSettings::default());
                if let Some(fault) = fault {
                    scenario::inject(fault, workflow, &fleet).expect("a known fault");
                }
                let (definition, input) = scenario::definition_and_input(workflow, "demo").expect("a known workflow");
                runtime.block_on(async {
                    scenario::set_up(workflow, &fleet, config.clone(), "demo").await.expect("set up");
                    run_as_deployed(&fleet.sim, config, definition, input, &fleet.group).await
                });
                let label = format!("{workflow}{}", fault.map(|f| format!(" --fault {f}")).unwrap_or_default());
                calls.extend(fleet.sim.calls().into_iter().map(|call| (label.clone(), call)));
            }
        }
        // Workflows and paths `stepdeploy local` doesn't offer.
        let untag: fn(&DemoFleet) = |fleet| {
            for (id, _) in fleet.sim.live_in_group(&fleet.group) {
                fleet.sim.remove_tag(&id, REVISION_TAG);
            }
        };
        // A refused SendCommand after the batch left the target groups: clean-up puts it back.
        let refuse_send: fn(&DemoFleet) = |fleet| {
            fleet.sim.inject_fault(stepdeploy_sim::Fault {
                operation: "SendCommand".into(),
                kind: stepdeploy_core::ports::ErrorKind::Invalid,
                code: "InvalidParameters".into(),
                remaining: 1,
                lost_response: false,
                skip: 0,
            })
        };
        let in_place = json!({"environment": "demo", "revision": "2222222", "min_healthy_percent": 0});
        // A stale lock: before breaking it, prepare asks Step Functions whether its holder still runs.
        let stale_lock: fn(&DemoFleet) = |fleet| {
            let holder = "arn:aws:states:us-east-1:123456789012:execution:stepdeploy-demo-serial-deploy:died";
            let value = json!({"execution": holder, "since": fleet.sim.now() - 100_000, "suspended": []});
            fleet.sim.put_parameter_directly("/stepdeploy/demo/demo/lock", &value.to_string());
        };
        let break_lock = json!({"environment": "demo", "launch_template_version": "2", "break_stale_lock": true});
        let in_place_breaking = json!({"environment": "demo", "revision": "2222222", "min_healthy_percent": 0, "break_stale_lock": true});
        let extra: [Extra; 7] = [
            ("autoscaling-processes suspend", AUTOSCALING_PROCESSES, json!({"environment": "demo", "action": "suspend"}), |_| {}),
            ("autoscaling-processes resume", AUTOSCALING_PROCESSES, json!({"environment": "demo", "action": "resume"}), |_| {}),
            // The running revision from the image, when the instances lack the tag.
            ("rebake of untagged instances", REBAKE, json!({"environment": "demo"}), untag),
            ("release with a full deploy", RELEASE, json!({"environment": "demo", "revision": "2222222", "deploy": "full"}), |_| {}),
            ("in-place whose SendCommand is refused", IN_PLACE_DEPLOY, in_place, refuse_send),
            ("serial deploy breaking a stale lock", stepdeploy_local::SERIAL_DEPLOY, break_lock, stale_lock),
            ("in-place deploy breaking a stale lock", IN_PLACE_DEPLOY, in_place_breaking, stale_lock),
        ];
        for (label, definition, input, set_up) in extra {
            let (fleet, config) = demo(7, 3, SimSettings::default());
            set_up(&fleet);
            runtime.block_on(run_as_deployed(&fleet.sim, config, definition, input, &fleet.group));
            calls.extend(fleet.sim.calls().into_iter().map(|call| (label.to_string(), call)));
        }
        calls
    })
}

/// The requests of `calls`, once each.
fn requests_of<'a>(calls: impl IntoIterator<Item = &'a ApiCall>) -> Vec<Request> {
    let mut out = BTreeSet::new();
    for call in calls {
        for auth in &call.requests {
            // The local operator (`--approve`) acts as an operator does: under the OperatorPolicy.
            let principal = match call.principal.as_deref() {
                Some(stepdeploy_local::checkpoints::OPERATOR) => OPERATOR.to_string(),
                other => other.unwrap_or_default().to_string(),
            };
            out.insert(Request { principal, operation: call.operation.clone(), auth: auth.clone() });
        }
    }
    out.into_iter().collect()
}

fn python() -> PathBuf {
    std::env::var_os("STEPDEPLOY_PYTHON").map(PathBuf::from).unwrap_or_else(|| root().join(".venv/bin/python"))
}

/// template.yaml (or `text` in its place) expanded by the SAM translator for deployment `demo`.
fn expand(text: Option<&str>) -> Value {
    let dir = tempfile::tempdir().expect("a temp dir");
    let template = match text {
        Some(text) => {
            let path = dir.path().join("template.yaml");
            std::fs::write(&path, text).expect("write the template");
            path
        }
        None => root().join("template.yaml"),
    };
    let output = Command::new(python())
        .arg(root().join("scripts/iam/expand.py"))
        .arg(&template)
        .args(["Deployment=demo", &format!("FleetRoleArns={FLEET_ROLE}")])
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/test (it installs .venv) or set STEPDEPLOY_PYTHON", python().display()));
    assert!(output.status.success(), "expand.py failed:\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("expanded JSON")
}

fn expanded() -> &'static Value {
    static EXPANDED: OnceLock<Value> = OnceLock::new();
    EXPANDED.get_or_init(|| expand(None))
}

/// Evaluates `requests` against `template` (an expanded one) with iam-simulate.
fn evaluate(template: &Value, requests: &[Request]) -> Vec<Outcome> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let template_path = write_json(dir.path(), "expanded.json", template);
    let context =
        serde_json::json!({"parameters": {"Deployment": "demo", "FleetRoleArns": FLEET_ROLE}, "region": "us-east-1", "account": "123456789012"});
    let context_path = write_json(dir.path(), "context.json", &context);
    let requests_path = write_json(dir.path(), "requests.json", &requests);
    let output = Command::new("node")
        .arg(root().join("scripts/iam/evaluate.mjs"))
        .args([&template_path, &context_path, &requests_path])
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("node: {e}; install Node.js and run `npm ci`"));
    assert!(output.status.success(), "evaluate.mjs failed (run `npm ci`):\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("results JSON")
}

fn write_json<T: Serialize + ?Sized>(dir: &Path, name: &str, value: &T) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(value).expect("JSON")).expect("write");
    path
}

fn denied(outcomes: &[Outcome]) -> Vec<&Outcome> {
    outcomes.iter().filter(|o| o.decision != "Allowed").collect()
}

#[test]
fn every_call_is_made_by_a_step_and_says_what_aws_authorizes() {
    let calls = recorded_calls();
    assert!(calls.len() > 500, "only {} calls recorded", calls.len());
    let workflows: BTreeSet<&str> = calls.iter().map(|(label, _)| label.split(' ').next().unwrap_or_default()).collect();
    assert_eq!(workflows.len(), scenario::WORKFLOWS.len() + 1, "{workflows:?}");
    for (label, call) in calls {
        assert!(call.principal.is_some(), "{label}: {} was made outside any step", call.operation);
        assert!(!call.requests.is_empty(), "{label}: the sim can't say what {} authorizes", call.operation);
    }
}

#[test]
fn every_call_of_every_workflow_is_allowed_by_its_steps_policy() {
    let outcomes = evaluate(expanded(), &requests_of(recorded_calls().iter().map(|(_, c)| c)));
    let shown: Vec<String> = denied(&outcomes).iter().map(ToString::to_string).collect();
    assert!(shown.is_empty(), "{} request(s) not allowed:\n{}", shown.len(), shown.join("\n"));
    let checked: BTreeMap<&str, usize> = outcomes.iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o.request.principal.as_str()).or_default() += 1;
        m
    });
    // Every step that makes AWS calls was checked (rollback makes none).
    for step in ["prepare", "replace", "finish", "maintenance", "command", "processes", "bake", "publish", "prune", "inplace"] {
        assert!(checked.contains_key(step), "no request of {step} was evaluated: {checked:?}");
    }
}

/// Every statement of every role and managed policy in an expanded template: (where, statement).
fn statements(template: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (id, resource) in template["Resources"].as_object().into_iter().flatten() {
        let props = &resource["Properties"];
        let documents: Vec<(String, &Value)> = match resource["Type"].as_str() {
            Some("AWS::IAM::Role") => {
                props["Policies"].as_array().into_iter().flatten().map(|p| (format!("{id} {}", p["PolicyName"]), &p["PolicyDocument"])).collect()
            }
            Some("AWS::IAM::ManagedPolicy") => vec![(id.clone(), &props["PolicyDocument"])],
            _ => Vec::new(),
        };
        for (at, document) in documents {
            for statement in document["Statement"].as_array().into_iter().flatten() {
                out.push((at.clone(), statement.clone()));
            }
        }
    }
    out
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

#[derive(Debug, Deserialize)]
struct ActionDetails {
    action: String,
    known: bool,
    #[serde(rename = "accessLevel")]
    access_level: String,
    #[serde(rename = "wildcardOnly")]
    wildcard_only: bool,
}

fn describe_actions(actions: &BTreeSet<String>) -> BTreeMap<String, ActionDetails> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = write_json(dir.path(), "actions.json", actions);
    let output = Command::new("node")
        .arg(root().join("scripts/iam/evaluate.mjs"))
        .arg("--describe-actions")
        .arg(&path)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("node: {e}; install Node.js and run `npm ci`"));
    assert!(output.status.success(), "evaluate.mjs failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let details: Vec<ActionDetails> = serde_json::from_slice(&output.stdout).expect("details JSON");
    details.into_iter().map(|d| (d.action.clone(), d)).collect()
}

/// Actions AWS authorizes only on `*` that the template grants that way,
/// each with the AWS page that says so (checked against iam-data below).
const WILDCARD_ONLY: &[(&str, &str)] = &[
    ("logs:CreateLogDelivery", "https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html"),
    ("logs:UpdateLogDelivery", "https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html"),
    ("logs:DeleteLogDelivery", "https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html"),
    ("logs:PutResourcePolicy", "https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html"),
    ("xray:PutTraceSegments", "https://docs.aws.amazon.com/step-functions/latest/dg/xray-iam.html"),
    ("xray:PutTelemetryRecords", "https://docs.aws.amazon.com/step-functions/latest/dg/xray-iam.html"),
    // A paused checkpoint's answer: the task token is the only scoping AWS offers.
    ("states:SendTaskSuccess", "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html"),
    ("states:SendTaskFailure", "https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html"),
];

/// The rules every policy keeps: no wildcard action, no PassRole on `*`,
/// and no mutating action on `*` unless AWS authorizes it only there.
fn policy_problems(template: &Value) -> Vec<String> {
    let statements = statements(template);
    let actions: BTreeSet<String> =
        statements.iter().flat_map(|(_, s)| as_list(&s["Action"])).filter_map(|a| a.as_str().map(str::to_string)).collect();
    let details = describe_actions(&actions);
    let mut problems = Vec::new();
    for (at, statement) in &statements {
        let on_anything = as_list(&statement["Resource"]).iter().any(|r| r == "*");
        for action in as_list(&statement["Action"]).iter().filter_map(Value::as_str) {
            let Some(detail) = details.get(action).filter(|d| d.known) else {
                problems.push(format!("{at}: {action} is not an IAM action (a typo?)"));
                continue;
            };
            if action.contains('*') {
                problems.push(format!("{at}: {action} is a wildcard action; name each action"));
            }
            let mutating = !matches!(detail.access_level.as_str(), "Read" | "List");
            if on_anything && action == "iam:PassRole" {
                problems.push(format!("{at}: iam:PassRole on *; name the fleet's roles"));
            } else if on_anything && mutating && !WILDCARD_ONLY.iter().any(|(a, _)| *a == action) {
                problems.push(format!("{at}: {action} ({}) on *; scope it to this deployment's resources", detail.access_level));
            }
        }
    }
    problems
}

#[test]
fn no_policy_grants_a_wildcard_action_pass_role_on_anything_or_a_mutating_action_on_anything() {
    let problems = policy_problems(expanded());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_wildcard_only_exceptions_are_actions_aws_authorizes_only_on_anything() {
    let listed: BTreeSet<String> = WILDCARD_ONLY.iter().map(|(a, _)| a.to_string()).collect();
    for (action, detail) in describe_actions(&listed) {
        assert!(detail.known && detail.wildcard_only, "{action} has resource types: it does not belong in WILDCARD_ONLY");
    }
}

#[test]
fn widening_create_rule_to_anything_fails_the_policy_check() {
    let mut template = expanded().clone();
    let mut widened = 0;
    for resource in template["Resources"].as_object_mut().into_iter().flat_map(|r| r.values_mut()) {
        for policy in resource["Properties"]["Policies"].as_array_mut().into_iter().flatten() {
            for statement in policy["PolicyDocument"]["Statement"].as_array_mut().into_iter().flatten() {
                if as_list(&statement["Action"]).iter().any(|a| a == "elasticloadbalancing:CreateRule") {
                    statement["Resource"] = Value::from("*");
                    widened += 1;
                }
            }
        }
    }
    assert_eq!(widened, 1, "the maintenance step's CreateRule statement");
    let problems = policy_problems(&template);
    assert!(
        problems.iter().any(|p| p.contains("MaintenanceFunctionRole") && p.contains("elasticloadbalancing:CreateRule (Write) on *")),
        "{problems:?}"
    );
}

/// The expanded template with `edit` applied to every statement of `role`'s policies.
fn with_role_statements(role: &str, edit: impl Fn(&mut Vec<Value>)) -> Value {
    let mut template = expanded().clone();
    let policies = template["Resources"][role]["Properties"]["Policies"].as_array_mut().unwrap_or_else(|| panic!("{role} has no policies"));
    for policy in policies {
        if let Some(statements) = policy["PolicyDocument"]["Statement"].as_array_mut() {
            edit(statements);
        }
    }
    template
}

#[test]
fn removing_the_pass_role_grant_fails_naming_the_call_the_step_and_the_permission() {
    let template = with_role_statements("ReplaceFunctionRole", |statements| {
        statements.retain(|s| !as_list(&s["Action"]).iter().any(|a| a == "iam:PassRole"));
    });
    let outcomes = evaluate(&template, &requests_of(recorded_calls().iter().map(|(_, c)| c)));
    let shown: Vec<String> = denied(&outcomes).iter().map(ToString::to_string).collect();
    assert!(!shown.is_empty(), "removing PassRole went unnoticed");
    for line in &shown {
        assert!(
            line.starts_with("step replace: UpdateAutoScalingGroup needs iam:PassRole on arn:aws:iam::123456789012:role/demo-web-instance"),
            "{line}"
        );
    }
}

#[test]
fn removing_the_subnet_grant_fails_naming_the_call_the_step_and_the_subnet() {
    let template = with_role_statements("ReplaceFunctionRole", |statements| {
        for statement in statements {
            if let Value::Array(resources) = &mut statement["Resource"] {
                resources.retain(|r| !r.to_string().contains(":subnet/"));
            }
        }
    });
    let outcomes = evaluate(&template, &requests_of(recorded_calls().iter().map(|(_, c)| c)));
    let shown: Vec<String> = denied(&outcomes).iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "one per subnet of the group: {shown:#?}");
    for line in &shown {
        assert!(
            line.starts_with("step replace: UpdateAutoScalingGroup needs ec2:RunInstances on arn:aws:ec2:us-east-1:123456789012:subnet/"),
            "{line}"
        );
        assert!(line.contains("ImplicitlyDenied"), "{line}");
    }
}

/// `request` aimed at deployment `other`'s resources instead of `demo`'s.
fn for_other_deployment(mut request: Request) -> Request {
    request.auth.resource = request
        .auth
        .resource
        .replace("/stepdeploy/demo/", "/stepdeploy/other/")
        .replace(":parameter/stepdeploy/demo", ":parameter/stepdeploy/other")
        .replace("document/stepdeploy-demo-command", "document/stepdeploy-other-command")
        .replace("role/demo-web-instance", "role/other-web-instance")
        .replace(":execution:stepdeploy-demo-", ":execution:stepdeploy-other-")
        .replace(":stepdeploy-demo-notifications", ":stepdeploy-other-notifications");
    for (key, values) in request.auth.context.iter_mut() {
        if key.ends_with("/stepdeploy:deployment") {
            *values = vec!["other".to_string()];
        }
    }
    request
}

/// Reads of resources the operator names in the config, or the account owns, rather than the
/// deployment, so no ARN pattern or tag can tell one deployment's from another's; each is read-only.
const READS_OF_CONFIGURED_RESOURCES: &[(&str, &str)] = [
    ("DescribeAlarms", "environments.*.alarms are any CloudWatch alarms the operator picks (a shared ALB 5xx alarm, say)"),
    ("GetServiceQuota", "the On-Demand vCPU quota is the account's, shared by every deployment in it"),
]
.as_slice();

#[test]
fn a_step_of_one_deployment_is_denied_on_another_deployments_resources() {
    // Every call that touches something of the deployment's (anything but a read of "*").
    let mut by_call: BTreeMap<(String, String, String), Vec<Request>> = BTreeMap::new();
    for (label, call) in recorded_calls() {
        if call.requests.iter().all(|r| r.resource == "*") || READS_OF_CONFIGURED_RESOURCES.iter().any(|(op, _)| *op == call.operation) {
            continue;
        }
        let requests = requests_of([call]);
        by_call.entry((label.clone(), call.operation.clone(), format!("{:?}", call.requests))).or_insert(requests);
    }
    let requests: Vec<Request> = by_call.values().flatten().cloned().map(for_other_deployment).collect::<BTreeSet<_>>().into_iter().collect();
    let outcomes = evaluate(expanded(), &requests);
    let decision = |r: &Request| outcomes.iter().find(|o| &o.request == r).map(|o| o.decision.clone()).unwrap_or_default();
    let mut allowed = Vec::new();
    for ((label, operation, _), call) in &by_call {
        let retargeted: Vec<Request> = call.iter().cloned().map(for_other_deployment).collect();
        if retargeted.iter().all(|r| decision(r) == "Allowed") {
            allowed.push(format!(
                "{label}: step {} {operation} on {:?}",
                retargeted[0].principal,
                retargeted.iter().map(|r| &r.auth.resource).collect::<Vec<_>>()
            ));
        }
    }
    assert!(allowed.is_empty(), "allowed on another deployment's resources:\n{}", allowed.join("\n"));
}

#[test]
fn no_step_may_tag_an_existing_resource() {
    let steps: BTreeSet<String> = recorded_calls().iter().filter_map(|(_, c)| c.principal.clone()).collect();
    let ours = BTreeMap::from([("aws:ResourceTag/stepdeploy:deployment".to_string(), vec!["demo".to_string()])]);
    let requests: Vec<Request> = steps
        .iter()
        .flat_map(|step| {
            [
                ("ec2:CreateTags", "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"),
                ("ec2:CreateTags", "arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0"),
                ("ec2:CreateTags", "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123456789abcdef0"),
                ("elasticloadbalancing:AddTags", "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"),
            ]
            .map(|(action, resource)| Request {
                principal: step.clone(),
                operation: "CreateTags".into(),
                auth: AuthRequest { context: ours.clone(), ..AuthRequest::new(action, resource) }
                    .with("aws:RequestTag/stepdeploy:deployment", "demo")
                    .with("aws:TagKeys", "stepdeploy:deployment"),
            })
        })
        .collect();
    let outcomes = evaluate(expanded(), &requests);
    let allowed: Vec<String> = outcomes.iter().filter(|o| o.decision == "Allowed").map(ToString::to_string).collect();
    assert!(allowed.is_empty(), "{}", allowed.join("\n"));
}

/// The principal the evaluator gives the template's OperatorPolicy.
const OPERATOR: &str = "resource:OperatorPolicy";

/// What the CLI asks of Step Functions, SSM and CloudFormation (crates/cli/src/remote.rs:
/// `deploy`/`bake`/... start and follow, `history`, `config push`, `--stack`), and the
/// console's Stop, on deployment `demo`'s resources.
fn cli_requests() -> Vec<(String, String)> {
    let machine = |name: &str| format!("arn:aws:states:us-east-1:123456789012:stateMachine:stepdeploy-demo-{name}");
    let execution = |name: &str| format!("arn:aws:states:us-east-1:123456789012:execution:stepdeploy-demo-{name}:demo-{name}-20261130T080102Z");
    let mut out = Vec::new();
    for (name, _) in stepdeploy_local::STATE_MACHINES {
        out.push(("states:StartExecution".to_string(), machine(name)));
        out.push(("states:ListExecutions".to_string(), machine(name)));
        for action in ["states:DescribeExecution", "states:GetExecutionHistory", "states:StopExecution"] {
            out.push((action.to_string(), execution(name)));
        }
    }
    let parameter = |name: &str| format!("arn:aws:ssm:us-east-1:123456789012:parameter/stepdeploy/demo/{name}");
    out.push(("ssm:GetParameter".into(), parameter("state-machines")));
    out.push(("ssm:GetParameter".into(), parameter("demo")));
    out.push(("ssm:PutParameter".into(), parameter("demo")));
    out.push(("cloudformation:DescribeStacks".into(), "arn:aws:cloudformation:us-east-1:123456789012:stack/stepdeploy-demo/0".into()));
    out
}

fn operator_request(action: &str, resource: &str) -> Request {
    Request { principal: OPERATOR.into(), operation: action.split(':').nth(1).unwrap_or_default().into(), auth: AuthRequest::new(action, resource) }
}

#[test]
fn the_operator_policy_allows_every_call_the_cli_and_status_make_and_nothing_of_another_deployment() {
    // `status` and the revision lookup of `deploy --revision` run on the sim, which records what they ask.
    let (fleet, config) = demo(8, 2, SimSettings::default());
    let baked = BTreeMap::from([
        ("stepdeploy:deployment".to_string(), "demo".to_string()),
        ("stepdeploy:environment".to_string(), "demo".to_string()),
        (REVISION_TAG.to_string(), "abc".to_string()),
    ]);
    fleet.sim.tag_ec2_resources(&[&fleet.old.image_id], &baked);
    fleet.sim.set_principal(Some(OPERATOR));
    let env = &config.environments["demo"];
    futures::executor::block_on(stepdeploy_core::status::environment_status(&fleet.sim, "demo", "demo", env, fleet.sim.now())).expect("status");
    let _ = futures::executor::block_on(stepdeploy_core::steps::bake::version_for_revision(&fleet.sim, "demo", "demo", &fleet.template, "abc"));
    // And everything `doctor` reads.
    let report = futures::executor::block_on(stepdeploy_core::doctor::checks(&fleet.sim, "demo", "demo", Some(env), Some(env)));
    assert!(report.iter().all(|c| c.ok), "{report:?}");
    assert!(fleet.sim.calls().iter().any(|c| c.operation == "DescribeAlarms"));
    let mut requests = requests_of(fleet.sim.calls().iter());
    assert!(requests.iter().any(|r| r.auth.action == "ec2:DescribeLaunchTemplateVersions"), "{requests:?}");
    requests.extend(cli_requests().iter().map(|(action, resource)| operator_request(action, resource)));
    let outcomes = evaluate(expanded(), &requests);
    let shown: Vec<String> = denied(&outcomes).iter().map(ToString::to_string).collect();
    assert!(shown.is_empty(), "OperatorPolicy:\n{}", shown.join("\n"));

    // Not another deployment's executions or parameters, and never the state machine list.
    let mut foreign: Vec<Request> = cli_requests()
        .iter()
        .filter(|(action, _)| action.starts_with("states:") || action.starts_with("ssm:"))
        .map(|(action, resource)| {
            operator_request(action, &resource.replace("stepdeploy-demo-", "stepdeploy-other-").replace("/stepdeploy/demo/", "/stepdeploy/other/"))
        })
        .collect();
    foreign.push(operator_request("ssm:PutParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/stepdeploy/demo/state-machines"));
    let allowed: Vec<String> = evaluate(expanded(), &foreign).iter().filter(|o| o.decision == "Allowed").map(ToString::to_string).collect();
    assert!(allowed.is_empty(), "OperatorPolicy allows:\n{}", allowed.join("\n"));
}

/// What every state machine asks of AWS (its Tasks, nested executions with
/// what `.sync` adds, logging, tracing), evaluated against its role.
fn state_machine_outcomes(template: &Value) -> Vec<(String, Outcome)> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let template_path = write_json(dir.path(), "expanded.json", template);
    let context =
        serde_json::json!({"parameters": {"Deployment": "demo", "FleetRoleArns": FLEET_ROLE}, "region": "us-east-1", "account": "123456789012"});
    let context_path = write_json(dir.path(), "context.json", &context);
    let output = Command::new("node")
        .arg(root().join("scripts/iam/evaluate.mjs"))
        .args([&template_path, &context_path])
        .arg("--state-machines")
        .arg(root().join("statemachines"))
        .output()
        .unwrap_or_else(|e| panic!("node: {e}; install Node.js and run `npm ci`"));
    assert!(output.status.success(), "evaluate.mjs failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).expect("results JSON");
    results.into_iter().map(|r| (r["machine"].as_str().unwrap_or_default().to_string(), serde_json::from_value(r).expect("an outcome"))).collect()
}

#[test]
fn every_state_machine_may_invoke_its_steps_and_run_its_nested_executions() {
    let outcomes = state_machine_outcomes(expanded());
    let shown: Vec<String> = outcomes.iter().filter(|(_, o)| o.decision != "Allowed").map(|(m, o)| format!("{m}: {o}")).collect();
    assert!(shown.is_empty(), "{}", shown.join("\n"));
    let machines: BTreeSet<&str> = outcomes.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(machines.len(), stepdeploy_local::STATE_MACHINES.len(), "{machines:?}");
    let asks = |machine: &str, action: &str| outcomes.iter().any(|(m, o)| m == machine && o.request.auth.action == action);
    // A checkpoint's pause is the optimized integration's `.waitForTaskToken`: it invokes the pause function.
    let invokes = |machine: &str, function: &str| {
        outcomes.iter().any(|(m, o)| m == machine && o.request.auth.action == "lambda:InvokeFunction" && o.request.auth.resource.ends_with(function))
    };
    for machine in ["SerialDeployStateMachine", "FullDeployStateMachine"] {
        assert!(invokes(machine, ":function:PauseFunction"), "{machine} never invokes the pause function");
    }
    for machine in ["ReleaseStateMachine", "RebakeStateMachine"] {
        for action in ["states:StartExecution", "states:DescribeExecution", "events:PutRule", "lambda:InvokeFunction"] {
            assert!(asks(machine, action), "{machine} never asks for {action}");
        }
    }
    // Removing what `.sync` needs is caught, naming the machine and the call.
    let mut template = expanded().clone();
    for policy in template["Resources"]["ReleaseStateMachineRole"]["Properties"]["Policies"].as_array_mut().into_iter().flatten() {
        for statement in policy["PolicyDocument"]["Statement"].as_array_mut().into_iter().flatten() {
            if let Value::Array(actions) = &mut statement["Action"] {
                actions.retain(|a| a != "events:PutRule");
            }
        }
    }
    let denied: Vec<String> =
        state_machine_outcomes(&template).into_iter().filter(|(_, o)| o.decision != "Allowed").map(|(m, o)| format!("{m}: {o}")).collect();
    assert!(!denied.is_empty() && denied.iter().all(|d| d.starts_with("ReleaseStateMachine: ") && d.contains("events:PutRule")), "{denied:#?}");
}
