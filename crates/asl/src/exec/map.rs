//! Map states in JSONPath: each item through the item processor, with the
//! tolerated-failure thresholds.

use serde_json::{Map, Value, json};

use chrono::{DateTime, Utc};

use super::run::{Branches, Run, Vars};
use super::scope::Scope;
use super::values::{compact, quoted_in_cause};
use crate::clock::run_lane;
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
    let mut max_concurrency = spec.max_concurrency.as_ref().and_then(Value::as_u64).unwrap_or(0);
    if let Some(path) = &spec.max_concurrency_path {
        let value = scope.resolve_path(path, "MaxConcurrencyPath")?;
        let integer = value.as_u64().or_else(|| value.as_str().and_then(|s| s.parse::<u64>().ok()));
        let Some(integer) = integer else {
            return Err(scope.runtime(format!(
                "The MaxConcurrencyPath field refers to value \"{}\" which is not a valid integer: {path}",
                quoted_in_cause(&value)
            )));
        };
        max_concurrency = integer;
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
    // On a clock with lanes, iterations run concurrently in virtual time, at most MaxConcurrency
    // at once (0: no limit): each starts when a lane is free, and their events interleave. The
    // first to fail (in time) fails the Map; iterations that would start after it never do.
    // A processor that can't take time runs the same either way, and faster without lanes.
    let lanes = run.clock.lanes() && spec.processor.can_take_time();
    let (start, mark) = (run.clock.now(), run.history_len());
    let mut busy: Vec<DateTime<Utc>> = Vec::new();
    let mut last_end = start;
    let mut first_failure: Option<(DateTime<Utc>, StatesError)> = None;
    for (index, item) in items.iter().enumerate() {
        let item_input = match &state.common.parameters {
            Some(selector) => {
                let item_scope = Scope { map_item: Some((index, item)), ..*scope };
                item_scope.template(selector)?
            }
            None => item.clone(),
        };
        let lane_start = match (lanes, max_concurrency) {
            (false, _) => None,
            (true, limit) if limit == 0 || (busy.len() as u64) < limit => Some(start),
            (true, _) => {
                let earliest = busy.iter().enumerate().min_by_key(|(_, end)| **end).map(|(i, _)| i).unwrap_or(0);
                Some(busy.remove(earliest))
            }
        };
        if let (Some(begins), Some((failed_at, _))) = (lane_start, &first_failure)
            && begins >= *failed_at
        {
            break;
        }
        let iteration = async {
            run.state_event("MapIterationStarted", state, Value::from(index));
            let mut child = vars.clone();
            let result = run.branch(&spec.processor, item_input, &mut child).await;
            let kind = if result.is_ok() { "MapIterationSucceeded" } else { "MapIterationFailed" };
            run.state_event(kind, state, Value::from(index));
            result
        };
        let result = match lane_start {
            Some(begins) => {
                let (result, end) = run_lane(begins, Box::pin(iteration)).await;
                busy.push(end);
                last_end = last_end.max(end);
                if !tolerant && result.is_err() && first_failure.as_ref().is_none_or(|(at, _)| end < *at) {
                    first_failure = result.as_ref().err().map(|e| (end, e.clone()));
                }
                result
            }
            None => iteration.await,
        };
        match result {
            Ok(v) => outputs.push(v),
            Err(_) if lanes && !tolerant => {}
            Err(e) => {
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
    if lanes {
        run.interleave_since(mark, first_failure.as_ref().map(|(at, _)| *at));
        run.clock.catch_up(first_failure.as_ref().map_or(last_end, |(at, _)| *at));
        if let Some((_, e)) = first_failure {
            run.defer_map_failed();
            return Err(e);
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
