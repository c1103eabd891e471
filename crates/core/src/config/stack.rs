//! An environment's settings from an environment stack (`environments/environment.yaml`): what
//! `stepdeploy env create` and `stepdeploy config from-stack` write into the config file.
//!
//! Only the settings the stack decides are written; every other key of the file, and of the
//! environment, stays as the user left it. Alarms are merged: the stack's join the user's.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

/// A stack output the config needs, and what it holds.
struct Needed {
    output: &'static str,
    meaning: &'static str,
}

/// Outputs without which no environment can be written.
const REQUIRED: &[Needed] = &[
    Needed { output: "Region", meaning: "the region (region)" },
    Needed { output: "AutoScalingGroupName", meaning: "the web Auto Scaling group (auto_scaling_group)" },
    Needed { output: "TargetGroupArn", meaning: "the web target group (target_group_arns)" },
    Needed { output: "ListenerArn", meaning: "the listener that carries the maintenance page (listener_arn)" },
    Needed { output: "LaunchTemplateId", meaning: "the web launch template (launch_template)" },
];

/// What a stack can't give a config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StackConfigError {
    /// Outputs the config needs are missing (a stack made some other way, or by an older template).
    #[error(
        "stack {stack} lacks the outputs {}; expected a stack of environments/environment.yaml (or outputs of those names)",
        .missing.iter().map(|(o, m)| format!("{o} ({m})")).collect::<Vec<_>>().join(", ")
    )]
    MissingOutputs {
        /// The stack.
        stack: String,
        /// Each missing output and what it holds.
        missing: Vec<(String, String)>,
    },
    /// An output holds something the config can't take.
    #[error("stack {stack}: output {output} is {value:?}; expected {expected}")]
    BadOutput {
        /// The stack.
        stack: String,
        /// The output's key.
        output: String,
        /// Its value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The stack belongs to another deployment than the config file.
    #[error("stack {stack} is of deployment {stack_deployment:?}, but the config file's deployment is {file_deployment:?}")]
    OtherDeployment {
        /// The stack.
        stack: String,
        /// Its `Deployment` output.
        stack_deployment: String,
        /// The file's `deployment`.
        file_deployment: String,
    },
    /// The config file can't be edited as YAML.
    #[error("{0}")]
    File(String),
}

/// The settings a stack decides for one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct StackSettings {
    /// The stack's `Deployment` output, when it has one.
    pub deployment: Option<String>,
    /// Dotted paths within the environment, and their values.
    pub values: Vec<(&'static str, Value)>,
    /// Alarm names, merged into the environment's own.
    pub alarms: Vec<String>,
}

/// Reads the settings out of a stack's outputs and parameters (by key).
pub fn settings_from_stack(
    stack: &str,
    outputs: &BTreeMap<String, String>,
    parameters: &BTreeMap<String, String>,
) -> Result<StackSettings, StackConfigError> {
    let missing: Vec<(String, String)> = REQUIRED
        .iter()
        .filter(|n| outputs.get(n.output).is_none_or(|v| v.trim().is_empty()))
        .map(|n| (n.output.to_string(), n.meaning.to_string()))
        .collect();
    if !missing.is_empty() {
        return Err(StackConfigError::MissingOutputs { stack: stack.to_string(), missing });
    }
    let text = |key: &str| Value::String(outputs[key].clone());
    let mut values = vec![
        ("region", text("Region")),
        ("auto_scaling_group", text("AutoScalingGroupName")),
        ("target_group_arns", Value::Sequence(vec![text("TargetGroupArn")])),
        ("listener_arn", text("ListenerArn")),
        ("launch_template", text("LaunchTemplateId")),
    ];
    for (path, output) in [("load_balancer", "LoadBalancerName"), ("instance_type", "InstanceType")] {
        if let Some(value) = outputs.get(output).filter(|v| !v.is_empty()) {
            values.push((path, Value::String(value.clone())));
        }
    }
    for (path, output) in [("scaling.min_size", "WebMinSize"), ("scaling.max_size", "WebMaxSize"), ("scaling.desired_capacity", "WebDesiredCapacity")]
    {
        if let Some(value) = outputs.get(output) {
            let n: u32 = value.parse().map_err(|_| StackConfigError::BadOutput {
                stack: stack.to_string(),
                output: output.to_string(),
                value: value.clone(),
                expected: "a whole number of instances",
            })?;
            values.push((path, Value::Number(n.into())));
        }
    }
    if let Some(tags) = outputs.get("WorkerTags").filter(|v| !v.is_empty()) {
        let mut mapping = Mapping::new();
        for pair in tags.split(',') {
            let Some((key, value)) = pair.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
                return Err(StackConfigError::BadOutput {
                    stack: stack.to_string(),
                    output: "WorkerTags".into(),
                    value: tags.clone(),
                    expected: "KEY=VALUE pairs separated by commas",
                });
            };
            mapping.insert(Value::String(key.trim().to_string()), Value::String(value.trim().to_string()));
        }
        values.push(("workers.tags", Value::Mapping(mapping)));
    }
    // DescribeStacks gives an SSM-typed parameter's name as its ParameterValue (the AMI is its
    // ResolvedValue: https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html);
    // anything else (moto gives the AMI there) is not a parameter name, and is left out.
    if let Some(parameter) = parameters.get("BaseImageParameter").filter(|v| v.starts_with('/')) {
        values.push(("images.base_image_parameter", Value::String(parameter.clone())));
    }
    let alarms = outputs.get("AlarmNames").map(|names| names.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect());
    Ok(StackSettings { deployment: outputs.get("Deployment").cloned(), values, alarms: alarms.unwrap_or_default() })
}

/// The config file's text with `environment` updated from `settings` (created when new, with
/// `production` as given; a new file when `text` is `None`). Keys the stack doesn't decide keep
/// their values; the caller validates the result.
pub fn merge_environment(
    stack: &str,
    text: Option<&str>,
    environment: &str,
    settings: &StackSettings,
    production: Option<bool>,
) -> Result<String, StackConfigError> {
    let mut root = match text {
        Some(text) => {
            serde_yaml_ng::from_str::<Value>(text).map_err(|e| StackConfigError::File(format!("the config file is not valid YAML: {e}")))?
        }
        None => Value::Mapping(Mapping::new()),
    };
    let Value::Mapping(top) = &mut root else {
        return Err(StackConfigError::File("the config file is not a mapping with `deployment` and `environments`".into()));
    };
    let file_deployment = top.get("deployment").and_then(Value::as_str).map(str::to_string);
    match (&file_deployment, &settings.deployment) {
        (Some(file), Some(stack_deployment)) if file != stack_deployment => {
            return Err(StackConfigError::OtherDeployment {
                stack: stack.to_string(),
                stack_deployment: stack_deployment.clone(),
                file_deployment: file.clone(),
            });
        }
        (None, Some(stack_deployment)) => {
            top.insert("deployment".into(), Value::String(stack_deployment.clone()));
        }
        (None, None) => return Err(StackConfigError::File(format!("stack {stack} has no Deployment output and the config file names none"))),
        _ => {}
    }
    let environments = child(top, "environments", "environments")?;
    let is_new = !environments.contains_key(environment);
    let env = child(environments, environment, &format!("environments.{environment}"))?;
    if let Some(production) = production.filter(|_| is_new) {
        env.insert("production".into(), Value::Bool(production));
    }
    for (path, value) in &settings.values {
        let (parents, leaf) = path.rsplit_once('.').map_or((None, *path), |(p, l)| (Some(p), l));
        let target = match parents {
            Some(parent) => child(env, parent, &format!("environments.{environment}.{parent}"))?,
            None => &mut *env,
        };
        target.insert(leaf.into(), value.clone());
    }
    if !settings.alarms.is_empty() {
        let mut alarms: Vec<Value> = match env.get("alarms") {
            Some(Value::Sequence(existing)) => existing.clone(),
            _ => Vec::new(),
        };
        for alarm in &settings.alarms {
            let alarm = Value::String(alarm.clone());
            if !alarms.contains(&alarm) {
                alarms.push(alarm);
            }
        }
        env.insert("alarms".into(), Value::Sequence(alarms));
    }
    serde_yaml_ng::to_string(&root).map_err(|e| StackConfigError::File(format!("cannot write the config: {e}")))
}

/// The mapping under `key`, made when absent.
fn child<'a>(map: &'a mut Mapping, key: &str, path: &str) -> Result<&'a mut Mapping, StackConfigError> {
    let value = map.entry(key.into()).or_insert_with(|| Value::Mapping(Mapping::new()));
    if value.is_null() {
        *value = Value::Mapping(Mapping::new());
    }
    value.as_mapping_mut().ok_or_else(|| StackConfigError::File(format!("{path} in the config file is not a mapping")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const STACK: &str = "stepdeploy-opendebates-staging";

    fn outputs() -> BTreeMap<String, String> {
        [
            ("Deployment", "opendebates"),
            ("Region", "us-east-1"),
            ("AutoScalingGroupName", "opendebates-staging-web"),
            ("TargetGroupArn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1"),
            ("ListenerArn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/lb/1/2"),
            ("LaunchTemplateId", "lt-0123456789abcdef0"),
            ("LoadBalancerName", "opendebates-staging"),
            ("InstanceType", "t3.small"),
            ("WebMinSize", "1"),
            ("WebMaxSize", "12"),
            ("WebDesiredCapacity", "6"),
            ("WorkerTags", "stepdeploy:environment=staging,stepdeploy:role=worker"),
            ("AlarmNames", "opendebates-staging-web-5xx,opendebates-staging-web-latency"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn parameters() -> BTreeMap<String, String> {
        [("BaseImageParameter".to_string(), "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64".to_string())].into()
    }

    #[test]
    fn a_new_file_gets_a_valid_environment_from_the_outputs() {
        let settings = settings_from_stack(STACK, &outputs(), &parameters()).unwrap();
        let text = merge_environment(STACK, None, "staging", &settings, Some(true)).unwrap();
        let config = Config::from_yaml_str(&text).unwrap_or_else(|p| panic!("{p}\n{text}"));
        assert_eq!(config.deployment, "opendebates");
        let env = &config.environments["staging"];
        assert!(env.production);
        assert_eq!(env.auto_scaling_group, "opendebates-staging-web");
        assert_eq!(env.target_group_arns, ["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1"]);
        assert_eq!(env.launch_template.as_deref(), Some("lt-0123456789abcdef0"));
        assert_eq!((env.scaling.min_size, env.scaling.max_size, env.scaling.desired_capacity), (1, 12, 6));
        assert_eq!(env.workers.tags.get("stepdeploy:role").map(String::as_str), Some("worker"));
        assert_eq!(env.alarms, ["opendebates-staging-web-5xx", "opendebates-staging-web-latency"]);
        assert_eq!(env.images.base_image_parameter.as_deref(), Some("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"));
    }

    #[test]
    fn what_the_user_set_by_hand_is_kept_and_other_environments_untouched() {
        let text = "deployment: opendebates\nenvironments:\n  production:\n    region: us-west-2\n    auto_scaling_group: prod-web\n  staging:\n    production: false\n    branch: develop\n    auto_scaling_group: old-name\n    alarms: [my-own-alarm]\n    rollout:\n      bake_seconds: 600\n    scaling:\n      min_size: 3\n";
        let settings = settings_from_stack(STACK, &outputs(), &parameters()).unwrap();
        // An existing environment keeps its production flag whatever is asked.
        let merged = merge_environment(STACK, Some(text), "staging", &settings, Some(true)).unwrap();
        let config = Config::from_yaml_str_for_rehearsal(&merged).unwrap_or_else(|p| panic!("{p}\n{merged}"));
        let staging = &config.environments["staging"];
        assert_eq!(staging.branch.as_deref(), Some("develop"));
        assert!(!staging.production);
        assert_eq!(staging.rollout.bake_seconds, 600);
        assert_eq!(staging.auto_scaling_group, "opendebates-staging-web", "the stack's name replaces the old one");
        assert_eq!(staging.scaling.min_size, 1, "the stack decides the sizes");
        assert_eq!(staging.alarms, ["my-own-alarm", "opendebates-staging-web-5xx", "opendebates-staging-web-latency"]);
        let production = &config.environments["production"];
        assert_eq!((production.region.as_str(), production.auto_scaling_group.as_str()), ("us-west-2", "prod-web"));
        // Running it again changes nothing.
        assert_eq!(merge_environment(STACK, Some(&merged), "staging", &settings, None).unwrap(), merged);
    }

    #[test]
    fn a_stack_without_the_outputs_is_refused_naming_each() {
        let mut outputs = outputs();
        outputs.remove("ListenerArn");
        outputs.insert("LaunchTemplateId".into(), String::new());
        let error = settings_from_stack(STACK, &outputs, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "stack stepdeploy-opendebates-staging lacks the outputs ListenerArn (the listener that carries the maintenance page (listener_arn)), \
             LaunchTemplateId (the web launch template (launch_template)); expected a stack of environments/environment.yaml (or outputs of those names)"
        );
    }

    #[test]
    fn bad_outputs_and_another_deployment_are_refused() {
        let mut bad = outputs();
        bad.insert("WebMaxSize".into(), "twelve".into());
        let error = settings_from_stack(STACK, &bad, &BTreeMap::new()).unwrap_err();
        assert_eq!(error.to_string(), "stack stepdeploy-opendebates-staging: output WebMaxSize is \"twelve\"; expected a whole number of instances");
        let resolved = [("BaseImageParameter".to_string(), "ami-0123456789abcdef0".to_string())].into();
        let settings = settings_from_stack(STACK, &outputs(), &resolved).unwrap();
        assert!(settings.values.iter().all(|(path, _)| *path != "images.base_image_parameter"), "an AMI is not a parameter name");
        let mut bad = outputs();
        bad.insert("WorkerTags".into(), "role".into());
        assert!(matches!(settings_from_stack(STACK, &bad, &BTreeMap::new()), Err(StackConfigError::BadOutput { .. })));

        let settings = settings_from_stack(STACK, &outputs(), &BTreeMap::new()).unwrap();
        let error = merge_environment(STACK, Some("deployment: other\nenvironments: {}\n"), "staging", &settings, None).unwrap_err();
        assert!(matches!(error, StackConfigError::OtherDeployment { .. }), "{error}");
        let error = merge_environment(STACK, Some("deployment: opendebates\nenvironments: [a]\n"), "staging", &settings, None).unwrap_err();
        assert_eq!(error.to_string(), "environments in the config file is not a mapping");
    }
}
