//! Reading an execution's input: known fields only, each checked with a
//! message that names the field, the value and what is expected.

use serde_json::Value;

use super::error::StepError;
use crate::config::{Config, Environment};

/// The field Step Functions adds to a nested execution's input to link it to its parent.
pub const STARTED_BY: &str = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID";

/// The first field of an execution input that isn't `allowed` (the parent
/// link a nested execution gets is always allowed).
pub fn unknown_field<'a>(object: &'a serde_json::Map<String, Value>, allowed: &[&str]) -> Option<&'a String> {
    object.keys().find(|k| k.as_str() != STARTED_BY && !allowed.contains(&k.as_str()))
}

/// Opens an execution input: a JSON object with only `allowed` fields and
/// an `environment` the config defines. Returns that environment's name and settings.
pub(crate) fn open_input<'c>(input: &Value, config: &'c Config, allowed: &[&str]) -> Result<(String, &'c Environment), StepError> {
    let Some(object) = input.as_object() else {
        return Err(StepError::input(format!("the execution input must be a JSON object, got {input}")));
    };
    if let Some(unknown) = unknown_field(object, allowed) {
        return Err(StepError::input(format!("{unknown}: unknown field; expected one of {}", allowed.join(", "))));
    }
    let environment = field_string(input, "environment")?.ok_or_else(|| StepError::input("environment: required, e.g. \"staging\"".into()))?;
    let env = config.environment(&environment).map_err(|e| StepError::input(e.to_string()))?;
    Ok((environment, env))
}

/// The input's `revision`, else the environment's `branch`; an error when neither is set.
pub(crate) fn revision_or_branch(input: &Value, environment: &str, env: &Environment) -> Result<String, StepError> {
    revision_field(input, environment, env)?
        .ok_or_else(|| StepError::input(format!("revision: required (environments.{environment}.branch is not set), e.g. \"4f2c9e1\"")))
}

/// The input's `revision`, else the environment's `branch`, either checked
/// against [`crate::revision::PATTERN`] (it reaches commands on instances).
pub(crate) fn revision_field(input: &Value, environment: &str, env: &Environment) -> Result<Option<String>, StepError> {
    if let Some(given) = field_string(input, "revision")? {
        return checked_revision(&given, "revision").map(Some);
    }
    env.branch.as_deref().map(|branch| checked_revision(branch, &format!("environments.{environment}.branch"))).transpose()
}

/// `revision` if it matches [`crate::revision::PATTERN`]; else an error naming `field`, the value and what is allowed.
pub(crate) fn checked_revision(revision: &str, field: &str) -> Result<String, StepError> {
    crate::revision::check(revision).map(|()| revision.to_string()).map_err(|why| {
        StepError::input(format!("{field}: {revision:?} is not allowed: it {why}; expected a git revision matching {}", crate::revision::PATTERN))
    })
}

pub(crate) fn field_string(input: &Value, field: &str) -> Result<Option<String>, StepError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(other) => Err(StepError::input(format!("{field}: {other} is not allowed; expected a non-empty string"))),
    }
}

pub(crate) fn field_int(input: &Value, field: &str) -> Result<Option<i64>, StepError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| StepError::input(format!("{field}: {v} is not allowed; expected an integer"))),
    }
}

pub(crate) fn flag(input: &Value, field: &str) -> Result<bool, StepError> {
    flag_or(input, field, false)
}

/// A boolean field that is `default` when missing.
pub(crate) fn flag_or(input: &Value, field: &str, default: bool) -> Result<bool, StepError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(StepError::input(format!("{field}: {other} is not allowed; expected true or false"))),
    }
}

pub(crate) fn one_of(input: &Value, field: &str, allowed: &[&str]) -> Result<String, StepError> {
    match input.get(field) {
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        _ => Err(not_one_of(input, field, allowed)),
    }
}

/// `field` of `input` is missing or not one of `allowed`: the error shows the value as JSON, as the user wrote it.
pub(crate) fn not_one_of(input: &Value, field: &str, allowed: &[&str]) -> StepError {
    let expected = allowed.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(" or ");
    match input.get(field) {
        None | Some(Value::Null) => StepError::input(format!("{field}: required; expected {expected}")),
        Some(other) => StepError::input(format!("{field}: {other} is not allowed; expected {expected}")),
    }
}
