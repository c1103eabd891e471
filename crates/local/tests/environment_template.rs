//! environments/environment.yaml read as a reviewer would (cfn-lint checks its syntax in
//! scripts/test): least privilege for the instances, the tags stepdeploy's IAM policies need,
//! the outputs the config is written from, and defaults that match the local demo.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;
use stepdeploy_core::config::settings_from_stack;
use stepdeploy_sim::demo::{DEMO_INSTANCES, DemoSize};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template() -> Value {
    let path = root().join("environments/environment.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).expect("valid YAML")
}

fn resources(template: &Value, kind: &str) -> Vec<(String, Value)> {
    let all = template["Resources"].as_mapping().expect("Resources");
    all.iter().filter(|(_, r)| r["Type"].as_str() == Some(kind)).map(|(n, r)| (n.as_str().unwrap_or_default().to_string(), r.clone())).collect()
}

/// A value as text: a plain string, or a tagged one (`!Sub ...`) as its tag and text.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Tagged(t) => format!("{} {}", t.tag, text(&t.value)),
        other => format!("{other:?}"),
    }
}

/// Every IAM statement in the template's roles, with the role's name; `!If` branches included.
fn statements(template: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, role) in resources(template, "AWS::IAM::Role") {
        for policy in role["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["PolicyDocument"]["Statement"].as_sequence().into_iter().flatten() {
                match statement {
                    Value::Tagged(t) if t.tag == "!If" => {
                        // [condition, when true, when false]: the false branch is AWS::NoValue here.
                        let branches = t.value.as_sequence().expect("!If takes a list");
                        out.push((name.clone(), branches[1].clone()));
                    }
                    other => out.push((name.clone(), other.clone())),
                }
            }
        }
    }
    out
}

fn list(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().map(text).collect(),
        other => vec![text(other)],
    }
}

#[test]
fn no_wildcard_actions_and_the_instances_get_only_what_ssm_and_the_app_need() {
    let template = template();
    let allowed: BTreeSet<&str> = [
        // examples/django's contract: its secrets and deploy key.
        "ssm:GetParameter",
        "ssm:GetParametersByPath",
        // Command output to CloudWatch Logs.
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
        "logs:DescribeLogGroups",
        // A customer managed key of the secrets, through SSM only.
        "kms:Decrypt",
    ]
    .into();
    let statements = statements(&template);
    assert!(statements.len() >= 4, "the instance role's statements were found: {statements:?}");
    for (role, statement) in &statements {
        assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{role}: {statement:?}");
        for action in list(&statement["Action"]) {
            assert!(!action.contains('*'), "{role}: wildcard action {action}");
            assert!(allowed.contains(action.as_str()), "{role}: {action} is more than SSM and the app need");
        }
        for resource in list(&statement["Resource"]) {
            assert_ne!(resource, "*", "{role}: a statement on every resource: {statement:?}");
        }
        if list(&statement["Action"]).iter().any(|a| a == "kms:Decrypt") {
            assert!(text(&statement["Condition"]["StringEquals"]["kms:ViaService"]).contains("ssm."), "kms:Decrypt only through SSM");
        }
    }
    for (role, value) in resources(&template, "AWS::IAM::Role") {
        let managed = list(&value["Properties"]["ManagedPolicyArns"]);
        assert_eq!(managed.len(), 1, "{role}: {managed:?}");
        assert!(managed[0].ends_with(":iam::aws:policy/AmazonSSMManagedInstanceCore"), "{role}: {managed:?}");
    }
}

/// Tags as key → (value, propagated at launch) from a `Tags` list.
fn tags(tags: &Value) -> BTreeMap<String, (String, bool)> {
    tags.as_sequence()
        .into_iter()
        .flatten()
        .map(|t| (text(&t["Key"]), (text(&t["Value"]), t["PropagateAtLaunch"].as_bool().unwrap_or(false))))
        .collect()
}

#[test]
fn everything_a_deploy_touches_carries_the_deployment_tag_its_iam_policy_checks() {
    let template = template();
    let deployment = "!Ref Deployment".to_string();
    for (name, group) in resources(&template, "AWS::AutoScaling::AutoScalingGroup") {
        let tags = tags(&group["Properties"]["Tags"]);
        assert_eq!(tags.get("stepdeploy:deployment"), Some(&(deployment.clone(), true)), "{name}: tagged and propagated to its instances");
    }
    for kind in ["AWS::ElasticLoadBalancingV2::TargetGroup", "AWS::ElasticLoadBalancingV2::Listener"] {
        let found = resources(&template, kind);
        assert!(!found.is_empty(), "{kind}");
        for (name, resource) in found {
            assert_eq!(tags(&resource["Properties"]["Tags"]).get("stepdeploy:deployment").map(|t| &t.0), Some(&deployment), "{name}");
        }
    }
    for (name, launch_template) in resources(&template, "AWS::EC2::LaunchTemplate") {
        let specs = launch_template["Properties"]["TagSpecifications"].as_sequence().cloned().unwrap_or_default();
        let own =
            specs.iter().find(|s| s["ResourceType"].as_str() == Some("launch-template")).unwrap_or_else(|| panic!("{name}: no tags of its own"));
        assert_eq!(tags(&own["Tags"]).get("stepdeploy:deployment").map(|t| &t.0), Some(&deployment), "{name}");
        let data = &launch_template["Properties"]["LaunchTemplateData"];
        assert_eq!(data["MetadataOptions"]["HttpTokens"].as_str(), Some("required"), "{name}: IMDSv2 only");
        assert!(text(&data["IamInstanceProfile"]["Arn"]).contains("InstanceProfile"), "{name}: the SSM instance profile");
    }
    let web = resources(&template, "AWS::AutoScaling::AutoScalingGroup").into_iter().find(|(n, _)| n == "WebGroup").expect("WebGroup");
    assert_eq!(web.1["Properties"]["HealthCheckType"].as_str(), Some("ELB"), "new instances count only once the load balancer says healthy");
}

#[test]
fn the_outputs_are_what_the_config_is_written_from() {
    let template = template();
    let outputs: BTreeMap<String, String> = template["Outputs"]
        .as_mapping()
        .expect("Outputs")
        .keys()
        .filter_map(Value::as_str)
        .map(|key| {
            let value = match key {
                "WebMinSize" | "WebMaxSize" | "WebDesiredCapacity" => "2",
                "WorkerTags" => "stepdeploy:role=worker",
                _ => "x",
            };
            (key.to_string(), value.to_string())
        })
        .collect();
    let settings = settings_from_stack("stack", &outputs, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let written: BTreeSet<&str> = settings.values.iter().map(|(path, _)| *path).collect();
    for path in
        ["region", "auto_scaling_group", "target_group_arns", "listener_arn", "launch_template", "load_balancer", "instance_type", "workers.tags"]
    {
        assert!(written.contains(path), "{path} comes from the outputs: {written:?}");
    }
    assert_eq!(settings.deployment.as_deref(), Some("x"));
}

#[test]
fn the_templates_default_group_is_the_local_demos() {
    let template = template();
    let default = |name: &str| template["Parameters"][name]["Default"].as_u64().unwrap_or_else(|| panic!("{name} has a numeric default")) as u32;
    let demo = DemoSize::of(DEMO_INSTANCES);
    assert_eq!(
        (default("WebMinSize"), default("WebDesiredCapacity"), default("WebMaxSize")),
        (demo.min, demo.desired, demo.max),
        "`stepdeploy local` and `stepdeploy env create` agree on the shape"
    );
}
