//! Parallel states: every branch on the same input, outputs in branch order.

use serde_json::{Value, json};

use super::run::{Branches, Run, Vars};
use crate::clock::run_lane;
use crate::error::StatesError;
use crate::model::StateMachine;

/// Runs the branches, each with its own copy of the variables. `report_failure` records
/// ParallelStateFailed when a branch fails (JSONPath states do; JSONata states record nothing more).
///
/// On a clock with lanes the branches run concurrently in virtual time: each starts when the
/// state does, the state takes as long as its longest branch, and their events interleave in
/// time order. The first branch to fail (in time) fails the state with its own error, at its
/// time; what the others would have done after it is not in the history (they still ran
/// locally: side effects happen one branch after another).
pub(crate) async fn branches(run: &Run, branches: &[StateMachine], input: Value, vars: &Vars, report_failure: bool) -> Result<Value, StatesError> {
    run.event("ParallelStateStarted", json!({}));
    let outcome = if run.clock.lanes() && branches.iter().any(StateMachine::can_take_time) {
        in_lanes(run, branches, &input, vars).await
    } else {
        one_by_one(run, branches, &input, vars).await
    };
    match outcome {
        Ok(outputs) => {
            run.event("ParallelStateSucceeded", json!({}));
            Ok(Value::Array(outputs))
        }
        Err(e) => {
            if report_failure {
                run.event("ParallelStateFailed", json!({"error": e.name, "cause": e.cause}));
            }
            Err(e)
        }
    }
}

async fn one_by_one(run: &Run, branches: &[StateMachine], input: &Value, vars: &Vars) -> Result<Vec<Value>, StatesError> {
    let mut outputs = Vec::new();
    for branch in branches {
        let mut child = vars.clone();
        outputs.push(run.branch(branch, input.clone(), &mut child).await?);
    }
    Ok(outputs)
}

async fn in_lanes(run: &Run, branches: &[StateMachine], input: &Value, vars: &Vars) -> Result<Vec<Value>, StatesError> {
    let start = run.clock.now();
    let mark = run.history_len();
    let mut results = Vec::with_capacity(branches.len());
    for branch in branches {
        let mut child = vars.clone();
        results.push(run_lane(start, run.branch(branch, input.clone(), &mut child)).await);
    }
    let first_failure = results.iter().filter(|(r, _)| r.is_err()).map(|(_, end)| *end).min();
    let end = first_failure.unwrap_or_else(|| results.iter().map(|(_, end)| *end).max().unwrap_or(start));
    run.interleave_since(mark, first_failure);
    run.clock.catch_up(end);
    let mut outputs = Vec::with_capacity(results.len());
    for (result, at) in results {
        match result {
            Ok(v) => outputs.push(v),
            Err(e) if Some(at) == first_failure => return Err(e),
            Err(_) => {}
        }
    }
    Ok(outputs)
}
