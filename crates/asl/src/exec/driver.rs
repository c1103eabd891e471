//! The driver: runs a machine state by state, catching errors, and runs
//! a whole execution with its start and end events.

use std::sync::atomic::Ordering;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::jsonata::{self, jeval};
use super::jsonpath;
use super::run::{Branches, NULL, Run, Step, Vars, event_names};
use super::scope::{Scope, apply_result_path};
use crate::error::{StatesError, names};
use crate::execution::{Execution, Status};
use crate::limits::{EXECUTION_SECONDS_QUOTA, HISTORY_EVENTS_QUOTA, over_payload_quota};
use crate::model::{Catcher, Kind, QueryLanguage, State, StateMachine};

impl Branches for Run {
    fn branch<'a>(&'a self, machine: &'a StateMachine, input: Value, vars: &'a mut Vars) -> BoxFuture<'a, Result<Value, StatesError>> {
        Box::pin(machine_run(self, machine, input, vars))
    }
}

/// Runs a machine from its StartAt until an end or an uncaught error.
async fn machine_run(run: &Run, machine: &StateMachine, input: Value, vars: &mut Vars) -> Result<Value, StatesError> {
    let mut name: &str = &machine.start_at;
    let mut input = input;
    loop {
        let Some(state) = machine.states.get(name) else {
            return Err(StatesError::new(names::RUNTIME, format!("the state {name:?} does not exist")));
        };
        // AWS fails an execution whose history reaches its quota (the service quotas page); the
        // error it reports is not documented: States.Runtime, terminal, is what this engine says.
        // A state is not entered without room for its own events and the final ExecutionFailed.
        let needs = match state.kind.type_name() {
            "Task" => 5,
            "Parallel" | "Map" => 4,
            _ => 2,
        };
        if run.history_len() + needs + 1 > HISTORY_EVENTS_QUOTA {
            return Err(StatesError::new(
                names::RUNTIME,
                format!("The execution reached the maximum number of history events ({HISTORY_EVENTS_QUOTA}) before entering the state '{name}'."),
            ));
        }
        run.transitions.fetch_add(1, Ordering::Relaxed);
        let (entered_event, exited_event) = event_names(state.kind.type_name());
        let entered = run.state_event(entered_event, state, input.clone());
        let entered_time = run.clock.now();
        // Only a catcher needs the raw input again.
        let raw = if state.common.catch.is_empty() { Value::Null } else { input.clone() };
        let step = if state.common.query_language == QueryLanguage::JsonAta {
            Box::pin(jsonata::state(run, state, input, vars, entered, entered_time)).await
        } else {
            jsonpath::state(run, state, input, vars, entered, entered_time).await
        };
        // A state whose output passes the payload quota fails with States.DataLimitExceeded.
        let step = match step {
            Ok(Step::Next(_, v) | Step::End(v)) if over_payload_quota(&v) => Err(StatesError::data_limit(&state.name)),
            other => other,
        };
        match step {
            Ok(step) => {
                let output = match &step {
                    Step::Next(_, v) | Step::End(v) => v.clone(),
                };
                if !matches!(state.kind, Kind::Fail { .. }) {
                    run.state_event(exited_event, state, output);
                }
                match step {
                    Step::Next(next, v) => {
                        name = next;
                        input = v;
                    }
                    Step::End(v) => return Ok(v),
                }
            }
            Err(error) => {
                let catcher = if error.is_catchable() { state.common.catch.iter().find(|c| error.matches(&c.error_equals)) } else { None };
                let Some(catcher) = catcher else { return Err(error) };
                let output = caught(run, state, catcher, &error, raw, vars, entered)?;
                run.state_event(exited_event, state, output.clone());
                name = &catcher.next;
                input = output;
            }
        }
    }
}

fn caught(run: &Run, state: &State, catcher: &Catcher, error: &StatesError, raw: Value, vars: &mut Vars, entered: u64) -> Result<Value, StatesError> {
    let mut error_output = Map::new();
    error_output.insert("Error".into(), Value::String(error.name.clone()));
    if let Some(cause) = &error.cause {
        error_output.insert("Cause".into(), Value::String(cause.clone()));
    }
    let error_output = Value::Object(error_output);
    if state.common.query_language == QueryLanguage::JsonAta {
        let context = Scope::at(run, &state.name, &NULL, vars, entered, run.clock.now(), None).context();
        let states = json!({"input": raw, "context": context, "errorOutput": error_output});
        let assigned = catcher.assign.as_ref().map(|a| jeval(a, "Assign", &states, vars, &state.name, entered)).transpose()?;
        let output = match &catcher.output {
            Some(o) => jeval(o, "Output", &states, vars, &state.name, entered)?,
            None => error_output,
        };
        if let Some(Value::Object(a)) = assigned {
            vars.extend(a);
        }
        return Ok(output);
    }
    let scope = Scope {
        run,
        input: &error_output,
        vars,
        state: &state.name,
        entered,
        entered_time: run.clock.now(),
        retry: None,
        map_item: None,
        task_token: None,
    };
    let assigned = match &catcher.assign {
        Some(assign) => Some(scope.template(assign)?),
        None => None,
    };
    let output = apply_result_path(&catcher.result_path, raw, error_output.clone(), &scope)?;
    if let Some(Value::Object(assigned)) = assigned {
        vars.extend(assigned);
    }
    Ok(output)
}

/// Runs a whole execution.
pub(crate) async fn execute(run: Run, machine: &StateMachine, input: Value) -> Execution {
    run.event("ExecutionStarted", json!({"input": input}));
    let started = run.clock.now();
    let mut vars = Vars::new();
    let result = machine_run(&run, machine, input, &mut vars).await;
    // Its own TimeoutSeconds, or AWS's one-year limit on any Standard execution.
    let elapsed = (run.clock.now() - started).num_seconds();
    let timed_out = machine.timeout_seconds.is_some_and(|t| elapsed > t as i64) || elapsed > EXECUTION_SECONDS_QUOTA;
    let (status, output, error, cause) = match result {
        _ if timed_out => (Status::TimedOut, None, Some(names::TIMEOUT.to_string()), None),
        Ok(v) => (Status::Succeeded, Some(v), None, None),
        Err(e) => (Status::Failed, None, Some(e.name).filter(|n| !n.is_empty()), e.cause),
    };
    match status {
        Status::Succeeded => run.event("ExecutionSucceeded", json!({"output": output})),
        Status::TimedOut => run.event("ExecutionTimedOut", json!({})),
        _ => run.event("ExecutionFailed", json!({"error": error, "cause": cause})),
    };
    let history = run.history.into_inner().unwrap_or_else(|p| p.into_inner());
    Execution { status, output, error, cause, transitions: run.transitions.load(Ordering::Relaxed), history }
}
