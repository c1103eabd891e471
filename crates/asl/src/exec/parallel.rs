//! Parallel states: every branch on the same input, outputs in branch order.

use serde_json::{Value, json};

use super::run::{Branches, Run, Vars};
use crate::error::StatesError;
use crate::model::StateMachine;

/// Runs the branches one after another, each with its own copy of the
/// variables. `report_failure` records ParallelStateFailed when a branch
/// fails (JSONPath states do; JSONata states record nothing more).
pub(crate) async fn branches(run: &Run, branches: &[StateMachine], input: Value, vars: &Vars, report_failure: bool) -> Result<Value, StatesError> {
    run.event("ParallelStateStarted", json!({}));
    let mut outputs = Vec::new();
    for branch in branches {
        let mut child = vars.clone();
        match run.branch(branch, input.clone(), &mut child).await {
            Ok(v) => outputs.push(v),
            Err(e) => {
                if report_failure {
                    run.event("ParallelStateFailed", json!({"error": e.name, "cause": e.cause}));
                }
                return Err(e);
            }
        }
    }
    run.event("ParallelStateSucceeded", json!({}));
    Ok(Value::Array(outputs))
}
