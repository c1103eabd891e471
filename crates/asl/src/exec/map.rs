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
    // On a clock with lanes, iterations run concurrently in virtual time (see [`Lanes`]); a
    // processor that can't take time runs the same either way, and faster without lanes.
    let mut lanes = Lanes::new(run, max_concurrency, run.clock.lanes() && spec.processor.can_take_time());
    lanes.tolerant = tolerant;
    for (index, item) in items.iter().enumerate() {
        let item_input = match &state.common.parameters {
            Some(selector) => {
                let item_scope = Scope { map_item: Some((index, item)), ..*scope };
                item_scope.template(selector)?
            }
            None => item.clone(),
        };
        let iteration = async {
            run.state_event("MapIterationStarted", state, Value::from(index));
            let mut child = vars.clone();
            let result = run.branch(&spec.processor, item_input, &mut child).await;
            let kind = if result.is_ok() { "MapIterationSucceeded" } else { "MapIterationFailed" };
            run.state_event(kind, state, Value::from(index));
            result
        };
        let Some(result) = lanes.run(iteration).await else { break };
        match result {
            Ok(v) => outputs.push(v),
            Err(_) if lanes.enabled() && !tolerant => {}
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
    if let Err(e) = lanes.finish() {
        run.defer_map_failed();
        return Err(e);
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

/// Iterations run in lanes of virtual time, at most `limit` at once (0: no limit): each starts
/// when a lane is free; the first to fail (in time) fails the Map at its time, and iterations that
/// would start at or after it never do. Disabled, iterations run one after another.
pub(crate) struct Lanes<'r> {
    run: &'r Run,
    enabled: bool,
    limit: u64,
    start: DateTime<Utc>,
    mark: usize,
    busy: Vec<DateTime<Utc>>,
    last_end: DateTime<Utc>,
    first_failure: Option<(DateTime<Utc>, StatesError)>,
    /// Failures are tolerated (counted by the Map), not the Map's end.
    pub(crate) tolerant: bool,
}

impl<'r> Lanes<'r> {
    pub(crate) fn new(run: &'r Run, limit: u64, enabled: bool) -> Lanes<'r> {
        let start = run.clock.now();
        Lanes { run, enabled, limit, start, mark: run.history_len(), busy: Vec::new(), last_end: start, first_failure: None, tolerant: false }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Runs one iteration; `None` when it would start after the Map has failed.
    pub(crate) async fn run<F: std::future::Future<Output = Result<Value, StatesError>>>(
        &mut self,
        iteration: F,
    ) -> Option<Result<Value, StatesError>> {
        if !self.enabled {
            return Some(iteration.await);
        }
        let begins = if self.limit == 0 || (self.busy.len() as u64) < self.limit {
            self.start
        } else {
            let earliest = self.busy.iter().enumerate().min_by_key(|(_, end)| **end).map(|(i, _)| i).unwrap_or(0);
            self.busy.remove(earliest)
        };
        if self.first_failure.as_ref().is_some_and(|(at, _)| begins >= *at) {
            return None;
        }
        let (result, end) = run_lane(begins, Box::pin(iteration)).await;
        self.busy.push(end);
        self.last_end = self.last_end.max(end);
        if let Err(e) = &result
            && !self.tolerant
            && self.first_failure.as_ref().is_none_or(|(at, _)| end < *at)
        {
            self.first_failure = Some((end, e.clone()));
        }
        Some(result)
    }

    /// Puts the iterations' events in time order and moves the clock to the Map's end: the
    /// longest lane's, or the first failure's (whose error it returns).
    pub(crate) fn finish(self) -> Result<(), StatesError> {
        if !self.enabled {
            return Ok(());
        }
        let failed_at = self.first_failure.as_ref().map(|(at, _)| *at);
        self.run.interleave_since(self.mark, failed_at);
        self.run.clock.catch_up(failed_at.unwrap_or(self.last_end));
        match self.first_failure {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}
