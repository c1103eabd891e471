//! What is wrong with a config, at a field path.

use std::fmt;

/// One thing wrong with a config, at a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path, e.g. `environments.prod01.rollout.min_healthy_percent`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All problems of a config, never just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the config:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct Problems(pub Vec<Problem>);

/// An environment name that the config does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment: {name:?} is not defined; expected one of: {}", known.join(", "))]
pub struct UnknownEnvironment {
    /// The name asked for.
    pub name: String,
    /// The names the config defines.
    pub known: Vec<String>,
}

pub(super) fn unknown_key(key: &str, allowed: &[&str]) -> Problem {
    Problem { path: key.to_string(), message: format!("unknown key (a typo?); expected one of: {}", allowed.join(", ")) }
}

pub(super) fn kind_of(value: &serde_yaml_ng::Value) -> &'static str {
    match value {
        serde_yaml_ng::Value::Null => "nothing",
        serde_yaml_ng::Value::Bool(_) => "a boolean",
        serde_yaml_ng::Value::Number(_) => "a number",
        serde_yaml_ng::Value::String(_) => "a string",
        serde_yaml_ng::Value::Sequence(_) => "a list",
        serde_yaml_ng::Value::Mapping(_) => "a mapping",
        serde_yaml_ng::Value::Tagged(_) => "a tagged value",
    }
}

pub(super) fn show(value: &serde_yaml_ng::Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| kind_of(value).to_string())
}
