//! The wiring between template.yaml, statemachines/ and functions/ that no
//! linter checks: every `${Var}` declared and used, every invoked function
//! granted, every DefinitionUri present, no wildcard actions, real binaries.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template() -> Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(root().join("template.yaml")).unwrap()).unwrap()
}

/// A CloudFormation value with its tag (`!Ref X`, `!GetAtt X.Arn`) as text.
fn tagged(v: &Value) -> Option<(String, String)> {
    match v {
        Value::Tagged(t) => Some((t.tag.to_string(), t.value.as_str().unwrap_or_default().to_string())),
        _ => None,
    }
}

fn resources_of(template: &Value, kind: &str) -> Vec<(String, Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(name, r)| (name.as_str().unwrap().to_string(), r.clone()))
        .collect()
}

fn placeholders(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        out.insert(after[..end].to_string());
        rest = &after[end + 1..];
    }
    out
}

/// The state machines a state machine's policies let it start (`!Ref X` resources of states:StartExecution).
fn start_execution_grants(props: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for policy in props["Policies"].as_sequence().unwrap() {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            let actions: Vec<&str> = match &statement["Action"] {
                Value::String(a) => vec![a.as_str()],
                Value::Sequence(items) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if actions.contains(&"states:StartExecution") {
                let resources = match &statement["Resource"] {
                    Value::Sequence(items) => items.clone(),
                    other => vec![other.clone()],
                };
                out.extend(resources.iter().filter_map(tagged).filter(|(tag, _)| tag == "!Ref").map(|(_, target)| target));
            }
        }
    }
    out
}

#[test]
fn state_machines_are_wired_to_existing_definitions_and_granted_functions() {
    let template = template();
    let machines = resources_of(&template, "AWS::Serverless::StateMachine");
    assert!(!machines.is_empty());
    let mut uris = BTreeSet::new();
    for (name, machine) in machines {
        let props = &machine["Properties"];
        let uri = props["DefinitionUri"].as_str().unwrap_or_else(|| panic!("{name}: DefinitionUri"));
        uris.insert(uri.to_string());
        let text = std::fs::read_to_string(root().join(uri)).unwrap_or_else(|e| panic!("{name}: {uri}: {e}"));
        let used = placeholders(&text);
        let declared: BTreeSet<String> =
            props["DefinitionSubstitutions"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_string()).collect();
        assert_eq!(used, declared, "{name}: ${{Var}}s used in {uri} vs DefinitionSubstitutions");
        let granted: BTreeSet<String> = props["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|p| tagged(&p["LambdaInvokePolicy"]["FunctionName"]).map(|(_, v)| v))
            .collect();
        let startable = start_execution_grants(props);
        for (var, value) in props["DefinitionSubstitutions"].as_mapping().unwrap() {
            let var = var.as_str().unwrap_or_default();
            if var == "NotificationTopicArn" {
                // The stack's topic when it has one (a pause is published there), "" when not.
                let Value::Tagged(t) = value else { panic!("{name}: {var:?} is not an !If") };
                assert_eq!(t.tag.to_string(), "!If", "{name}: {var:?}");
                let branches = t.value.as_sequence().cloned().unwrap_or_default();
                assert_eq!(branches.first().and_then(Value::as_str), Some("HasNotificationEmail"), "{name}: {var:?}");
                assert_eq!(branches.get(1).and_then(tagged), Some(("!Ref".to_string(), "NotificationTopic".to_string())), "{name}: {var:?}");
                assert_eq!(branches.get(2).and_then(Value::as_str), Some(""), "{name}: {var:?}");
                continue;
            }
            let (tag, target) = tagged(value).unwrap_or_else(|| panic!("{name}: {var:?} is not a !GetAtt, !Ref or !Sub"));
            if tag == "!Sub" {
                // A service integration, in the stack's partition.
                assert!(target.starts_with("arn:${AWS::Partition}:states:::"), "{name}: {var:?} = {target}");
            } else if var.ends_with("StateMachineArn") {
                assert_eq!(tag, "!Ref", "{name}: {var:?}");
                assert!(startable.contains(&target), "{name} starts {target} without states:StartExecution on it");
            } else {
                assert_eq!(tag, "!GetAtt", "{name}: {var:?}");
                let function = target.trim_end_matches(".Arn");
                assert!(granted.contains(function), "{name} invokes {function} without a LambdaInvokePolicy");
            }
        }
    }
    // Every state machine file is deployed.
    for entry in std::fs::read_dir(root().join("statemachines")).unwrap() {
        let file = format!("statemachines/{}", entry.unwrap().file_name().to_string_lossy());
        assert!(uris.contains(&file), "{file} is not a DefinitionUri in template.yaml");
    }
}

#[test]
fn functions_build_real_binaries_on_al2023_arm64() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    let cargo = std::fs::read_to_string(root().join("functions/Cargo.toml")).unwrap();
    let functions = resources_of(&template, "AWS::Serverless::Function");
    assert_eq!(functions.len(), stepdeploy_core::steps::STEP_NAMES.len());
    for (name, function) in functions {
        assert_eq!(function["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name}");
        let binary = function["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        assert!(cargo.contains(&format!("name = \"{binary}\"")), "{name}: no [[bin]] {binary} in functions/Cargo.toml");
        assert!(stepdeploy_core::steps::STEP_NAMES.contains(&binary), "{name}: {binary} is not a step");
    }
}

#[test]
fn no_policy_grants_a_wildcard_action() {
    fn walk(v: &Value, at: &str, found: &mut Vec<String>) {
        match v {
            Value::Mapping(m) => {
                for (k, v) in m {
                    let key = k.as_str().unwrap_or_default();
                    if key == "Action" {
                        let actions: Vec<&str> = match v {
                            Value::String(s) => vec![s.as_str()],
                            Value::Sequence(items) => items.iter().filter_map(Value::as_str).collect(),
                            _ => Vec::new(),
                        };
                        found.extend(actions.into_iter().filter(|a| a.contains('*')).map(|a| format!("{at}: {a}")));
                    }
                    walk(v, &format!("{at}.{key}"), found);
                }
            }
            Value::Sequence(items) => items.iter().for_each(|i| walk(i, at, found)),
            Value::Tagged(t) => walk(&t.value, at, found),
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(&template(), "template", &mut found);
    assert!(found.is_empty(), "wildcard actions: {found:?}");
}
