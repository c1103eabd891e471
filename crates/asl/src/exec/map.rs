//! Map states in JSONPath: each item through the item processor, with the
//! tolerated-failure thresholds.

use serde_json::{Map, Value, json};

use super::run::{Branches, Run, Vars};
use super::scope::Scope;
use super::values::{compact, quoted_in_cause};
use crate::error::{StatesError, names};
use crate::model::{MapSpec, PathField, State};

/// Runs a Map state's iterations over the items its input selects.
pub(crate) async fn run(run: &Run, state: &State, spec: &MapSpec, scope: &Scope<'_>, vars: &Vars) -> Result<Value, StatesError> {
    let items = match &spec.items_path {
        PathField::Path(p) => scope.resolve_path(p, "ItemsPath")?,
        _ => scope.input.clone(),
    };
    let Value::Array(items) = items else {
        return Err(scope.runtime(format!("Map state input must be an array, got {}", compact(&items))));
    };
    if let Some(path) = &spec.max_concurrency_path {
        let value = scope.resolve_path(path, "MaxConcurrencyPath")?;
        let integer = value.as_u64().or_else(|| value.as_str().and_then(|s| s.parse::<u64>().ok()));
        if integer.is_none() {
            return Err(scope.runtime(format!(
                "The MaxConcurrencyPath field refers to value \"{}\" which is not a valid integer: {path}",
                quoted_in_cause(&value)
            )));
        }
    }
    let tolerated_count = match (&spec.tolerated_failure_count, &spec.tolerated_failure_count_path) {
        (Some(v), _) => v.as_u64(),
        (None, Some(p)) => scope.resolve_path(p, "ToleratedFailureCountPath")?.as_u64(),
        _ => None,
    };
    let tolerated_percent = match (&spec.tolerated_failure_percentage, &spec.tolerated_failure_percentage_path) {
        (Some(v), _) => v.as_f64(),
        (None, Some(p)) => scope.resolve_path(p, "ToleratedFailurePercentagePath")?.as_f64(),
        _ => None,
    };
    let tolerant = tolerated_count.is_some() || tolerated_percent.is_some();
    run.event("MapStateStarted", json!({"length": items.len()}));
    let mut outputs = Vec::with_capacity(items.len());
    let mut failures = 0u64;
    for (index, item) in items.iter().enumerate() {
        let item_input = match &state.common.parameters {
            Some(selector) => {
                let item_scope = Scope { map_item: Some((index, item)), ..*scope };
                item_scope.template(selector)?
            }
            None => item.clone(),
        };
        run.state_event("MapIterationStarted", state, Value::from(index));
        let mut child = vars.clone();
        match run.branch(&spec.processor, item_input, &mut child).await {
            Ok(v) => {
                run.state_event("MapIterationSucceeded", state, Value::from(index));
                outputs.push(v);
            }
            Err(e) => {
                run.state_event("MapIterationFailed", state, Value::from(index));
                if !tolerant {
                    run.defer_map_failed();
                    return Err(e);
                }
                failures += 1;
                let mut failed = Map::new();
                failed.insert("Error".into(), Value::String(e.name.clone()));
                if let Some(cause) = e.cause {
                    failed.insert("Cause".into(), Value::String(cause));
                }
                outputs.push(Value::Object(failed));
            }
        }
    }
    if tolerant {
        let over_count = tolerated_count.is_some_and(|n| failures > n);
        let percent = if items.is_empty() { 0.0 } else { failures as f64 * 100.0 / items.len() as f64 };
        let over_percent = tolerated_percent.is_some_and(|p| percent > p);
        let allowed = match (tolerated_count, tolerated_percent) {
            (Some(_), Some(_)) => !(over_count && over_percent),
            _ => !(over_count || over_percent),
        };
        if !allowed {
            run.defer_map_failed();
            return Err(StatesError::new(
                names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                "The specified tolerated failure threshold was exceeded".to_string(),
            ));
        }
    }
    run.event("MapStateSucceeded", json!({}));
    Ok(Value::Array(outputs))
}
