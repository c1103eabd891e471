//! Reading a config: YAML files and the JSON form stored in SSM, with
//! every problem collected rather than the first.

use indexmap::IndexMap;

use super::problems::{Problem, Problems, UnknownEnvironment, kind_of, show, unknown_key};
use super::types::{Config, Environment};

impl Config {
    /// Parses and validates a YAML (or JSON) config.
    pub fn from_yaml_str(text: &str) -> Result<Config, Problems> {
        Config::parse_yaml(text, |_| true)
    }

    /// [`Config::from_yaml_str`] for a rehearsal on the simulated account (`stepdeploy local
    /// --config`): the account's own resources ([`ACCOUNT_FIELDS`]) may still be unfilled, as
    /// after an import, since the sim puts its own in their place. Every other field is checked.
    pub fn from_yaml_str_for_rehearsal(text: &str) -> Result<Config, Problems> {
        Config::parse_yaml(text, |problem| {
            let field = problem.path.splitn(3, '.').nth(2).unwrap_or("");
            let field = field.split('[').next().unwrap_or(field);
            !ACCOUNT_FIELDS.contains(&field)
        })
    }

    fn parse_yaml(text: &str, keep: impl Fn(&Problem) -> bool) -> Result<Config, Problems> {
        let root: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| Problems(vec![Problem { path: "(file)".into(), message: format!("not valid YAML: {e}") }]))?;
        let mut problems = Vec::new();
        let serde_yaml_ng::Value::Mapping(map) = root else {
            return Err(Problems(vec![Problem {
                path: "(file)".into(),
                message: format!("expected a mapping with `deployment` and `environments`, found {}", kind_of(&root)),
            }]));
        };
        let mut deployment = String::new();
        let mut environments = IndexMap::new();
        let mut saw_environments = false;
        for (key, value) in map {
            let key_text = key.as_str().map(str::to_string).unwrap_or_else(|| format!("{key:?}"));
            match key_text.as_str() {
                "deployment" => match value.as_str() {
                    Some(name) if !name.is_empty() => deployment = name.to_string(),
                    _ => problems.push(Problem {
                        path: "deployment".into(),
                        message: format!("{} is not a deployment name; expected a non-empty string", show(&value)),
                    }),
                },
                "environments" => {
                    saw_environments = true;
                    match value {
                        serde_yaml_ng::Value::Mapping(envs) => {
                            for (name, env_value) in envs {
                                let Some(name) = name.as_str().map(str::to_string) else {
                                    problems
                                        .push(Problem { path: "environments".into(), message: format!("environment name {name:?} is not a string") });
                                    continue;
                                };
                                let path = format!("environments.{name}");
                                if let Some(env) = Environment::from_value(env_value, &path, &mut problems) {
                                    env.validate(&path, &mut problems);
                                    environments.insert(name, env);
                                }
                            }
                        }
                        other => problems.push(Problem {
                            path: "environments".into(),
                            message: format!("expected a mapping of environment names, found {}", kind_of(&other)),
                        }),
                    }
                }
                _ => problems.push(unknown_key(&key_text, &["deployment", "environments"])),
            }
        }
        if deployment.is_empty() && !problems.iter().any(|p| p.path == "deployment") {
            problems.push(Problem { path: "deployment".into(), message: "required: the deployment's name, e.g. `opendebates`".into() });
        }
        if !saw_environments {
            problems.push(Problem { path: "environments".into(), message: "required: at least one environment".into() });
        } else if environments.is_empty() && problems.is_empty() {
            problems.push(Problem { path: "environments".into(), message: "is empty; expected at least one environment".into() });
        }
        problems.retain(|p| keep(p));
        if problems.is_empty() { Ok(Config { deployment, environments }) } else { Err(Problems(problems)) }
    }

    /// Writes the config as YAML, every setting spelled out.
    pub fn to_yaml(&self) -> String {
        // Serializing plain data structs to YAML cannot fail.
        serde_yaml_ng::to_string(self).unwrap_or_default()
    }

    /// The environment called `name`, or an error listing the known ones.
    pub fn environment(&self, name: &str) -> Result<&Environment, UnknownEnvironment> {
        self.environments.get(name).ok_or_else(|| UnknownEnvironment { name: name.to_string(), known: self.environments.keys().cloned().collect() })
    }
}

/// An environment's fields that name resources of the account: a rehearsal on the sim uses the
/// sim's instead.
pub const ACCOUNT_FIELDS: &[&str] = &["region", "auto_scaling_group", "load_balancer", "target_group_arns", "listener_arn", "launch_template"];

/// The SSM parameter that holds an environment's config as JSON.
pub fn parameter_name(deployment: &str, environment: &str) -> String {
    format!("/stepdeploy/{deployment}/{environment}")
}

impl Environment {
    /// Parses and validates one environment stored as JSON (the SSM parameter form).
    pub fn from_json_str(text: &str, path: &str) -> Result<Environment, Problems> {
        let value: serde_yaml_ng::Value = serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| Problems(vec![Problem { path: path.to_string(), message: format!("not valid JSON: {e}") }]))
            .and_then(|json| {
                serde_yaml_ng::to_value(json).map_err(|e| Problems(vec![Problem { path: path.to_string(), message: format!("cannot be read: {e}") }]))
            })?;
        let mut problems = Vec::new();
        let env = Environment::from_value(value, path, &mut problems);
        if let Some(env) = &env {
            env.validate(path, &mut problems);
        }
        match env {
            Some(env) if problems.is_empty() => Ok(env),
            _ => Err(Problems(problems)),
        }
    }

    /// The environment as compact JSON, for its SSM parameter.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn from_value(value: serde_yaml_ng::Value, path: &str, problems: &mut Vec<Problem>) -> Option<Environment> {
        let mut unknown = Vec::new();
        let mut record = |p: serde_ignored::Path<'_>| unknown.push(p.to_string());
        let ignored = serde_ignored::Deserializer::new(value, &mut record);
        let result: Result<Environment, _> = serde_path_to_error::deserialize(ignored);
        for key in unknown {
            problems.push(Problem { path: format!("{path}.{key}"), message: "unknown key (a typo?); see the config reference in the README".into() });
        }
        match result {
            Ok(env) => Some(env),
            Err(e) => {
                let inner = e.path().to_string();
                problems.push(Problem {
                    path: if inner == "." { path.to_string() } else { format!("{path}.{inner}") },
                    message: e.into_inner().to_string(),
                });
                None
            }
        }
    }
}
