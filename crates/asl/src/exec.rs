//! The driver: runs a parsed machine, state by state, recording history.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value, json};

use crate::choice::{ChoiceRule, Condition, Operand, compare, parse_timestamp};
use crate::error::{StatesError, names};
use crate::intrinsics::{self, EvalError, Resolver};
use crate::jsonata::{self, Evaluated};
use crate::model::{Catcher, Kind, MapSpec, PathField, QueryLanguage, Retrier, State, StateMachine, WaitFor};
use crate::path::{self, Path, Root};
use crate::{Clock, Event, Execution, Status, TaskInvoker};

/// Variables in scope.
pub type Vars = HashMap<String, Value>;

/// The input of a scope that has none yet.
static NULL: Value = Value::Null;

/// What a state decided; `Next` borrows the name from the definition.
enum Step<'m> {
    Next(&'m str, Value),
    End(Value),
}

/// Shared per-execution state.
pub(crate) struct Run {
    pub clock: Arc<dyn Clock>,
    pub invoker: Arc<dyn TaskInvoker>,
    pub history: Mutex<Vec<Event>>,
    pub transitions: AtomicU64,
    pub execution: Value,
    pub state_machine: Value,
    /// Paths and intrinsic calls, parsed once per execution.
    pub parsed_paths: Mutex<FxHashMap<String, Arc<Path>>>,
    pub parsed_calls: Mutex<FxHashMap<String, Arc<intrinsics::Expr>>>,
}

/// `text` parsed by `parse`, once per execution.
fn cached<T>(cache: &Mutex<FxHashMap<String, Arc<T>>>, text: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<Arc<T>, String> {
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(hit) = cache.get(text) {
        return Ok(hit.clone());
    }
    let parsed = Arc::new(parse(text)?);
    cache.insert(text.to_string(), parsed.clone());
    Ok(parsed)
}

/// The Entered and Exited event names of each state type.
fn event_names(type_name: &str) -> (&'static str, &'static str) {
    match type_name {
        "Pass" => ("PassStateEntered", "PassStateExited"),
        "Task" => ("TaskStateEntered", "TaskStateExited"),
        "Choice" => ("ChoiceStateEntered", "ChoiceStateExited"),
        "Wait" => ("WaitStateEntered", "WaitStateExited"),
        "Succeed" => ("SucceedStateEntered", "SucceedStateExited"),
        "Fail" => ("FailStateEntered", "FailStateExited"),
        "Parallel" => ("ParallelStateEntered", "ParallelStateExited"),
        _ => ("MapStateEntered", "MapStateExited"),
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Run {
    fn scope<'a>(
        &'a self,
        state: &'a str,
        input: &'a Value,
        vars: &'a Vars,
        entered: u64,
        entered_time: DateTime<Utc>,
        retry: Option<u32>,
    ) -> Scope<'a> {
        Scope { run: self, input, vars, state, entered, entered_time, retry, map_item: None }
    }

    /// A path, parsed on first use.
    fn path(&self, text: &str) -> Result<Arc<Path>, String> {
        cached(&self.parsed_paths, text, Path::parse)
    }

    /// An intrinsic call, parsed on first use.
    fn call(&self, text: &str) -> Result<Arc<intrinsics::Expr>, String> {
        cached(&self.parsed_calls, text, intrinsics::parse)
    }

    pub fn event(&self, kind: &'static str, details: Value) -> u64 {
        self.push(kind, None, details)
    }

    fn state_event(&self, kind: &'static str, state: &State, data: Value) -> u64 {
        self.push(kind, Some(state.label.clone()), data)
    }

    fn push(&self, kind: &'static str, state: Option<Arc<str>>, details: Value) -> u64 {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let id = history.len() as u64 + 1;
        history.push(Event { id, kind, timestamp: self.clock.now(), state, details });
        id
    }

    /// Runs a machine from its StartAt until an end or an uncaught error.
    pub async fn machine(&self, machine: &StateMachine, input: Value, vars: &mut Vars) -> Result<Value, StatesError> {
        let mut name: &str = &machine.start_at;
        let mut input = input;
        loop {
            let Some(state) = machine.states.get(name) else {
                return Err(StatesError::new(names::RUNTIME, format!("the state {name:?} does not exist")));
            };
            self.transitions.fetch_add(1, Ordering::Relaxed);
            let (entered_event, exited_event) = event_names(state.kind.type_name());
            let entered = self.state_event(entered_event, state, input.clone());
            let entered_time = self.clock.now();
            // Only a catcher needs the raw input again.
            let raw = if state.common.catch.is_empty() { Value::Null } else { input.clone() };
            match self.state(state, input, vars, entered, entered_time).await {
                Ok(step) => {
                    let output = match &step {
                        Step::Next(_, v) | Step::End(v) => v.clone(),
                    };
                    if !matches!(state.kind, Kind::Fail { .. }) {
                        self.state_event(exited_event, state, output);
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
                    let output = self.caught(state, catcher, &error, raw, vars, entered)?;
                    self.state_event(exited_event, state, output.clone());
                    name = &catcher.next;
                    input = output;
                }
            }
        }
    }

    fn caught(&self, state: &State, catcher: &Catcher, error: &StatesError, raw: Value, vars: &mut Vars, entered: u64) -> Result<Value, StatesError> {
        let mut error_output = Map::new();
        error_output.insert("Error".into(), Value::String(error.name.clone()));
        if let Some(cause) = &error.cause {
            error_output.insert("Cause".into(), Value::String(cause.clone()));
        }
        let error_output = Value::Object(error_output);
        if state.common.query_language == QueryLanguage::JsonAta {
            let context = self.scope(&state.name, &NULL, vars, entered, self.clock.now(), None).context();
            let states = json!({"input": raw, "context": context, "errorOutput": error_output});
            let assigned = catcher.assign.as_ref().map(|a| self.jeval(a, "Assign", &states, vars, &state.name, entered)).transpose()?;
            let output = match &catcher.output {
                Some(o) => self.jeval(o, "Output", &states, vars, &state.name, entered)?,
                None => error_output,
            };
            if let Some(Value::Object(a)) = assigned {
                vars.extend(a);
            }
            return Ok(output);
        }
        let scope =
            Scope { run: self, input: &error_output, vars, state: &state.name, entered, entered_time: self.clock.now(), retry: None, map_item: None };
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

    async fn state<'m>(
        &self,
        state: &'m State,
        input: Value,
        vars: &mut Vars,
        entered: u64,
        entered_time: DateTime<Utc>,
    ) -> Result<Step<'m>, StatesError> {
        if state.common.query_language == QueryLanguage::JsonAta {
            return Box::pin(self.jsonata_state(state, input, vars, entered, entered_time)).await;
        }
        let c = &state.common;
        let next_or_end = |v: Value| match &c.next {
            Some(n) if !c.end => Step::Next(n.as_str(), v),
            _ => Step::End(v),
        };
        let base = self.scope(&state.name, &NULL, vars, entered, entered_time, None);
        match &state.kind {
            Kind::Fail { error, error_path, cause, cause_path } => {
                let s = Scope { input: &input, ..base };
                let name = match (error, error_path) {
                    (Some(e), _) => e.as_str().map(str::to_string),
                    (None, Some(p)) => Some(s.field_path(p, "ErrorPath")?),
                    _ => None,
                };
                let cause = match (cause, cause_path) {
                    (Some(e), _) => e.as_str().map(str::to_string),
                    (None, Some(p)) => Some(s.field_path(p, "CausePath")?),
                    _ => None,
                };
                Err(StatesError { name: name.unwrap_or_default(), cause, from_task: false, from_fail_state: true })
            }
            Kind::Succeed => Ok(Step::End(base.output_path(&c.output_path, base.take_input_path(&c.input_path, input)?)?)),
            Kind::Wait(wait) => {
                let effective = base.take_input_path(&c.input_path, input)?;
                let until = Scope { input: &effective, ..base }.wait_until(wait)?;
                let now = self.clock.now();
                if until > now {
                    self.clock.sleep((until - now).to_std().unwrap_or_default()).await;
                }
                Ok(next_or_end(base.output_path(&c.output_path, effective)?))
            }
            Kind::Choice { choices, default } => {
                let effective = base.take_input_path(&c.input_path, input)?;
                let s = Scope { input: &effective, ..base };
                let mut chosen: Option<(&'m String, Option<&'m Value>)> = None;
                for rule in choices {
                    if s.rule(rule)? {
                        chosen = rule.next.as_ref().map(|n| (n, rule.assign.as_ref()));
                        break;
                    }
                }
                let (next, assign) = match chosen {
                    Some(c) => c,
                    None => match default {
                        Some(d) => (d, c.assign.as_ref()),
                        None => return Err(StatesError::new(names::NO_CHOICE_MATCHED, format!("No Matches! (state {})", state.name))),
                    },
                };
                let assigned = match assign {
                    Some(a) => Some(s.template(a)?),
                    None => None,
                };
                let output = base.output_path(&c.output_path, effective)?;
                if let Some(Value::Object(a)) = assigned {
                    vars.extend(a);
                }
                Ok(Step::Next(next.as_str(), output))
            }
            Kind::Pass(_) | Kind::Task(_) | Kind::Parallel(_) | Kind::Map(_) => {
                let mut attempts: HashMap<usize, u32> = HashMap::new();
                let mut retry_count = 0u32;
                let mut input = Some(input);
                loop {
                    // Without retriers the input is used once: move it instead of copying.
                    let attempt = if c.retry.is_empty() { input.take().unwrap_or(Value::Null) } else { input.clone().unwrap_or(Value::Null) };
                    match self.work(state, attempt, vars, entered, entered_time, retry_count).await {
                        Ok((output, assigned)) => {
                            if let Some(Value::Object(a)) = assigned {
                                vars.extend(a);
                            }
                            return Ok(next_or_end(output));
                        }
                        Err(error) => {
                            let Some(delay) = retry_delay(&c.retry, &error, &mut attempts) else { return Err(error) };
                            retry_count += 1;
                            self.clock.sleep(std::time::Duration::from_secs_f64(delay.max(0.0))).await;
                        }
                    }
                }
            }
        }
    }

    /// The body of a state that has a result: Pass, Task, Parallel, Map.
    async fn work(
        &self,
        state: &State,
        raw: Value,
        vars: &Vars,
        entered: u64,
        entered_time: DateTime<Utc>,
        retry: u32,
    ) -> Result<(Value, Option<Value>), StatesError> {
        let c = &state.common;
        let can_retry = matches!(state.kind, Kind::Task(_)) || !c.retry.is_empty();
        let base = self.scope(&state.name, &NULL, vars, entered, entered_time, can_retry.then_some(retry));
        // Only a ResultPath other than `$` needs the raw input again.
        let (raw, effective) = if matches!(c.result_path, PathField::Default) {
            (Value::Null, base.take_input_path(&c.input_path, raw)?)
        } else {
            let effective = Scope { input: &raw, ..base }.input_path(&c.input_path)?;
            (raw, effective)
        };
        let result = match &state.kind {
            Kind::Pass(Some(result)) => result.clone(),
            Kind::Map(spec) => self.map(state, spec, &Scope { input: &effective, ..base }, vars).await?,
            kind => {
                let eff = Scope { input: &effective, ..base };
                let seconds = |value: &Option<Value>, path: &Option<String>, field: &str| -> Result<Option<f64>, StatesError> {
                    Ok(match (value, path) {
                        (Some(v), _) => v.as_f64(),
                        (None, Some(p)) => eff.resolve_path(p, field)?.as_f64(),
                        _ => None,
                    })
                };
                let limits = match kind {
                    Kind::Task(spec) => TaskLimits {
                        timeout: seconds(&spec.timeout_seconds, &spec.timeout_seconds_path, "TimeoutSecondsPath")?,
                        heartbeat: seconds(&spec.heartbeat_seconds, &spec.heartbeat_seconds_path, "HeartbeatSecondsPath")?,
                    },
                    _ => TaskLimits::default(),
                };
                let parameters = match &c.parameters {
                    Some(p) => eff.template(p)?,
                    None => effective,
                };
                match kind {
                    Kind::Task(spec) => self.task(spec, parameters, limits).await?,
                    Kind::Parallel(branches) => {
                        self.event("ParallelStateStarted", json!({}));
                        let mut outputs = Vec::new();
                        for branch in branches {
                            let mut child = vars.clone();
                            match Box::pin(self.machine(branch, parameters.clone(), &mut child)).await {
                                Ok(v) => outputs.push(v),
                                Err(e) => {
                                    self.event("ParallelStateFailed", json!({"error": e.name, "cause": e.cause}));
                                    return Err(e);
                                }
                            }
                        }
                        self.event("ParallelStateSucceeded", json!({}));
                        Value::Array(outputs)
                    }
                    _ => parameters,
                }
            }
        };
        let result = match &c.result_selector {
            Some(selector) => Scope { input: &result, ..base }.template(selector)?,
            None => result,
        };
        let assigned = match &c.assign {
            Some(assign) => Some(Scope { input: &result, ..base }.template(assign)?),
            None => None,
        };
        let output = apply_result_path(&c.result_path, raw, result, &base)?;
        let output = base.output_path(&c.output_path, output)?;
        Ok((output, assigned))
    }

    /// Evaluates a JSONata field: `{% %}` strings anywhere inside it, with `$states` and the variables bound.
    fn jeval(&self, value: &Value, field: &str, states: &Value, vars: &Vars, state: &str, entered: u64) -> Result<Value, StatesError> {
        match value {
            Value::String(text) => {
                let Some(expr) = jsonata::expression(text) else { return Ok(value.clone()) };
                let mut bindings: HashMap<&str, &Value> = vars.iter().map(|(k, v)| (k.as_str(), v)).collect();
                bindings.insert("states", states);
                let input = states.get("input").unwrap_or(&NULL);
                let fail = |detail: String| {
                    StatesError::new(
                        names::QUERY_EVALUATION_ERROR,
                        format!(
                            "An error occurred while executing the state '{state}' (entered at the event id #{entered}). The JSONata expression '{expr}' specified for the field '{field}' {detail}"
                        ),
                    )
                };
                match jsonata::evaluate(expr, input, &bindings) {
                    Ok(Evaluated::Value(v)) => Ok(v),
                    Ok(Evaluated::Undefined) => Err(fail("returned nothing (undefined).".into())),
                    Ok(Evaluated::Function) => Err(fail("returned an unsupported result type.".into())),
                    Err(message) => Err(fail(format!("threw an error during evaluation. {message}"))),
                }
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    out.insert(k.clone(), self.jeval(v, &format!("{field}/{k}"), states, vars, state, entered)?);
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.jeval(v, &format!("{field}[{i}]"), states, vars, state, entered))
                    .collect::<Result<_, _>>()?,
            )),
            other => Ok(other.clone()),
        }
    }

    /// A JSONata state: Arguments, Output, Assign and the rest are `{% %}` expressions over `$states`.
    async fn jsonata_state<'m>(
        &self,
        state: &'m State,
        input: Value,
        vars: &mut Vars,
        entered: u64,
        entered_time: DateTime<Utc>,
    ) -> Result<Step<'m>, StatesError> {
        let c = &state.common;
        let name = &state.name;
        let query_error = |detail: String| {
            StatesError::new(
                names::QUERY_EVALUATION_ERROR,
                format!("An error occurred while executing the state '{name}' (entered at the event id #{entered}). {detail}"),
            )
        };
        let can_retry = matches!(state.kind, Kind::Task(_)) || !c.retry.is_empty();
        let context = self.scope(name, &NULL, vars, entered, entered_time, can_retry.then_some(0)).context();
        let states = json!({"input": input, "context": context});
        let next_or_end = |v: Value| match &c.next {
            Some(n) if !c.end => Step::Next(n.as_str(), v),
            _ => Step::End(v),
        };
        // Assign and Output see the same $states; new variables show from the next state on.
        let finish =
            |states: &Value, assign: Option<&Value>, output: Option<&Value>, default: Value, vars: &mut Vars| -> Result<Value, StatesError> {
                let assigned = assign.map(|a| self.jeval(a, "Assign", states, vars, name, entered)).transpose()?;
                let output = match output {
                    Some(o) => self.jeval(o, "Output", states, vars, name, entered)?,
                    None => default,
                };
                if let Some(Value::Object(a)) = assigned {
                    vars.extend(a);
                }
                Ok(output)
            };
        match &state.kind {
            Kind::Pass(_) | Kind::Succeed => {
                let output = finish(&states, c.assign.as_ref(), c.output.as_ref(), input, vars)?;
                Ok(if matches!(state.kind, Kind::Succeed) { Step::End(output) } else { next_or_end(output) })
            }
            Kind::Fail { error, cause, .. } => {
                let text = |v: &Option<Value>, field: &str| -> Result<Option<String>, StatesError> {
                    Ok(match v {
                        Some(v) => match self.jeval(v, field, &states, vars, name, entered)? {
                            Value::String(s) => Some(s),
                            Value::Null => None,
                            other => Some(compact(&other)),
                        },
                        None => None,
                    })
                };
                Err(StatesError {
                    name: text(error, "Error")?.unwrap_or_default(),
                    cause: text(cause, "Cause")?,
                    from_task: false,
                    from_fail_state: true,
                })
            }
            Kind::Wait(wait) => {
                let now = self.clock.now();
                let until = match wait {
                    WaitFor::Seconds(v) => match self.jeval(v, "Seconds", &states, vars, name, entered)?.as_i64() {
                        Some(s) if s >= 0 => now + chrono::Duration::seconds(s),
                        _ => return Err(query_error("The Seconds field must be a non-negative integer".into())),
                    },
                    WaitFor::Timestamp(v) => {
                        let value = self.jeval(v, "Timestamp", &states, vars, name, entered)?;
                        let text = value.as_str().map(str::to_string).unwrap_or_else(|| compact(&value));
                        parse_timestamp(&text).map(|t| t.with_timezone(&Utc)).ok_or_else(|| {
                            query_error(format!(
                                "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {text}"
                            ))
                        })?
                    }
                    _ => return Err(query_error("SecondsPath and TimestampPath are JSONPath fields".into())),
                };
                if until > now {
                    self.clock.sleep((until - now).to_std().unwrap_or_default()).await;
                }
                let output = finish(&states, c.assign.as_ref(), c.output.as_ref(), input, vars)?;
                Ok(next_or_end(output))
            }
            Kind::Choice { choices, default } => {
                for rule in choices {
                    let Condition::Jsonata(condition) = &rule.condition else { continue };
                    let value = self.jeval(condition, "Condition", &states, vars, name, entered)?;
                    let Some(matched) = value.as_bool() else {
                        return Err(query_error(format!("The Condition field must evaluate to a boolean, but was: {}", compact(&value))));
                    };
                    if matched && let Some(next) = &rule.next {
                        let output = finish(&states, rule.assign.as_ref(), rule.output.as_ref(), input, vars)?;
                        return Ok(Step::Next(next.as_str(), output));
                    }
                }
                match default {
                    Some(next) => {
                        let output = finish(&states, c.assign.as_ref(), c.output.as_ref(), input, vars)?;
                        Ok(Step::Next(next.as_str(), output))
                    }
                    None => Err(StatesError::new(names::NO_CHOICE_MATCHED, format!("No Matches! (state {name})"))),
                }
            }
            Kind::Task(_) | Kind::Parallel(_) | Kind::Map(_) => {
                let mut attempts: HashMap<usize, u32> = HashMap::new();
                loop {
                    let attempt = async {
                        let arguments = match &c.arguments {
                            Some(a) => self.jeval(a, "Arguments", &states, vars, name, entered)?,
                            None => input.clone(),
                        };
                        let result = match &state.kind {
                            Kind::Task(spec) => {
                                let limits = TaskLimits {
                                    timeout: spec.timeout_seconds.as_ref().and_then(Value::as_f64),
                                    heartbeat: spec.heartbeat_seconds.as_ref().and_then(Value::as_f64),
                                };
                                self.task(spec, arguments, limits).await?
                            }
                            Kind::Parallel(branches) => {
                                self.event("ParallelStateStarted", json!({}));
                                let mut outputs = Vec::new();
                                for branch in branches {
                                    let mut child = vars.clone();
                                    outputs.push(Box::pin(self.machine(branch, arguments.clone(), &mut child)).await?);
                                }
                                self.event("ParallelStateSucceeded", json!({}));
                                Value::Array(outputs)
                            }
                            Kind::Map(spec) => {
                                let items = match &spec.items {
                                    Some(items) => {
                                        let value = self.jeval(items, "Items", &states, vars, name, entered)?;
                                        if !value.is_array() {
                                            let expr = items.as_str().and_then(jsonata::expression).unwrap_or_default();
                                            return Err(query_error(format!(
                                                "The JSONata expression '{expr}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was '{}' for value: {}",
                                                type_name(&value),
                                                compact(&value)
                                            )));
                                        }
                                        value
                                    }
                                    None if input.is_array() => input.clone(),
                                    None => return Err(query_error(format!("Map state input must be an array but was: {}", compact(&input)))),
                                };
                                self.event("MapStateStarted", json!({"length": items.as_array().map_or(0, Vec::len)}));
                                let mut outputs = Vec::new();
                                for (index, item) in items.as_array().cloned().unwrap_or_default().into_iter().enumerate() {
                                    let item_input = match &c.parameters {
                                        Some(selector) => {
                                            let mut item_states = states.clone();
                                            item_states["context"]["Map"] = json!({"Item": {"Index": index, "Value": item}});
                                            self.jeval(selector, "ItemSelector", &item_states, vars, name, entered)?
                                        }
                                        None => item,
                                    };
                                    self.state_event("MapIterationStarted", state, Value::from(index));
                                    let mut child = vars.clone();
                                    outputs.push(Box::pin(self.machine(&spec.processor, item_input, &mut child)).await?);
                                    self.state_event("MapIterationSucceeded", state, Value::from(index));
                                }
                                self.event("MapStateSucceeded", json!({}));
                                Value::Array(outputs)
                            }
                            _ => Value::Null,
                        };
                        Ok::<Value, StatesError>(result)
                    }
                    .await;
                    match attempt {
                        Ok(result) => {
                            let mut with_result = states.clone();
                            with_result["result"] = result.clone();
                            let output = finish(&with_result, c.assign.as_ref(), c.output.as_ref(), result, vars)?;
                            return Ok(next_or_end(output));
                        }
                        Err(error) => {
                            let Some(delay) = retry_delay(&c.retry, &error, &mut attempts) else { return Err(error) };
                            self.clock.sleep(std::time::Duration::from_secs_f64(delay.max(0.0))).await;
                        }
                    }
                }
            }
        }
    }

    async fn task(&self, spec: &crate::model::TaskSpec, parameters: Value, limits: TaskLimits) -> Result<Value, StatesError> {
        self.event("TaskScheduled", json!({"resource": spec.resource, "parameters": parameters}));
        self.event("TaskStarted", json!({"resource": spec.resource}));
        let started = self.clock.now();
        let outcome = self.invoker.invoke(&spec.resource, parameters).await;
        let elapsed = (self.clock.now() - started).num_milliseconds() as f64 / 1000.0;
        if limits.timeout.is_some_and(|t| elapsed > t) {
            self.event("TaskTimedOut", json!({"resource": spec.resource}));
            return Err(StatesError { name: names::TIMEOUT.into(), cause: None, from_task: true, from_fail_state: false });
        }
        // Local handlers never send heartbeats: running past HeartbeatSeconds is a missed heartbeat.
        if limits.heartbeat.is_some_and(|h| elapsed > h) {
            self.event("TaskTimedOut", json!({"resource": spec.resource, "error": names::HEARTBEAT_TIMEOUT}));
            return Err(StatesError { name: names::HEARTBEAT_TIMEOUT.into(), cause: None, from_task: true, from_fail_state: false });
        }
        match outcome {
            Ok(v) => {
                self.event("TaskSucceeded", json!({"resource": spec.resource, "output": v}));
                Ok(v)
            }
            Err(e) => {
                self.event("TaskFailed", json!({"resource": spec.resource, "error": e.error, "cause": e.cause}));
                Err(StatesError { name: e.error, cause: e.cause, from_task: true, from_fail_state: false })
            }
        }
    }

    async fn map(&self, state: &State, spec: &MapSpec, scope: &Scope<'_>, vars: &Vars) -> Result<Value, StatesError> {
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
                return Err(scope
                    .runtime(format!("The MaxConcurrencyPath field refers to value \"{}\" which is not a valid integer: {path}", compact(&value))));
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
        self.event("MapStateStarted", json!({"length": items.len()}));
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
            self.state_event("MapIterationStarted", state, Value::from(index));
            let mut child = vars.clone();
            match Box::pin(self.machine(&spec.processor, item_input, &mut child)).await {
                Ok(v) => {
                    self.state_event("MapIterationSucceeded", state, Value::from(index));
                    outputs.push(v);
                }
                Err(e) => {
                    self.state_event("MapIterationFailed", state, Value::from(index));
                    if !tolerant {
                        self.event("MapStateFailed", json!({}));
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
                self.event("MapStateFailed", json!({}));
                return Err(StatesError::new(
                    names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                    "The specified tolerated failure threshold was exceeded".to_string(),
                ));
            }
        }
        self.event("MapStateSucceeded", json!({}));
        Ok(Value::Array(outputs))
    }
}

/// A Task's time limits, seconds.
#[derive(Default, Clone, Copy)]
struct TaskLimits {
    timeout: Option<f64>,
    heartbeat: Option<f64>,
}

fn retry_delay(retriers: &[Retrier], error: &StatesError, attempts: &mut HashMap<usize, u32>) -> Option<f64> {
    if !error.is_catchable() {
        return None;
    }
    let (index, retrier) = retriers.iter().enumerate().find(|(_, r)| error.matches(&r.error_equals))?;
    let done = attempts.entry(index).or_insert(0);
    if *done >= retrier.max_attempts {
        return None;
    }
    let mut delay = retrier.interval_seconds * retrier.backoff_rate.powi(*done as i32);
    *done += 1;
    if let Some(max) = retrier.max_delay_seconds {
        delay = delay.min(max);
    }
    if retrier.full_jitter {
        use rand::Rng;
        delay = rand::rng().random_range(0.0..=delay.max(0.0));
    }
    Some(delay)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn apply_result_path(field: &PathField, raw: Value, result: Value, scope: &Scope<'_>) -> Result<Value, StatesError> {
    match field {
        PathField::Default => Ok(result),
        PathField::Null => Ok(raw),
        PathField::Path(p) => {
            let parsed = scope.run.path(p).map_err(|e| scope.runtime(format!("Invalid ResultPath {p:?}: {e}")))?;
            let input = compact(&raw);
            let mut target = raw;
            path::set(&mut target, &parsed, result).map_err(|e| {
                StatesError::new(names::RESULT_PATH_MATCH_FAILURE, format!("Unable to apply ReferencePath {p} to input {input}: {e}"))
            })?;
            Ok(target)
        }
    }
}

/// Everything a path or template can see.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub run: &'a Run,
    pub input: &'a Value,
    pub vars: &'a Vars,
    pub state: &'a str,
    pub entered: u64,
    pub entered_time: DateTime<Utc>,
    /// `None` for states that cannot retry: AWS omits `$$.State.RetryCount` there.
    pub retry: Option<u32>,
    pub map_item: Option<(usize, &'a Value)>,
}

impl Scope<'_> {
    fn runtime(&self, detail: String) -> StatesError {
        StatesError::runtime(self.state, self.entered, &detail)
    }

    fn context(&self) -> Value {
        let mut context = json!({
            "Execution": self.run.execution,
            "State": {"EnteredTime": iso(self.entered_time), "Name": self.state},
            "StateMachine": self.run.state_machine,
        });
        if let Some(retry) = self.retry {
            context["State"]["RetryCount"] = Value::from(retry);
        }
        if let Some((index, value)) = self.map_item {
            context["Map"] = json!({"Item": {"Index": index, "Value": value}});
        }
        context
    }

    /// The value at `path`: `None` when absent; `Err` for an undefined variable or a bad path.
    fn lookup(&self, path: &Path) -> Result<Option<Value>, String> {
        match &path.root {
            Root::Input => Ok(path.select(self.input)),
            Root::Context => Ok(path.select(&self.context())),
            Root::Variable(name) => match self.vars.get(name) {
                Some(v) => Ok(path.select(v)),
                None => Err(format!("The variable '{name}' is not defined")),
            },
        }
    }

    /// InputPath applied to an owned input: `$` moves it instead of copying.
    fn take_input_path(&self, field: &PathField, input: Value) -> Result<Value, StatesError> {
        match field {
            PathField::Default => Ok(input),
            _ => Scope { input: &input, ..*self }.input_path(field),
        }
    }

    fn input_path(&self, field: &PathField) -> Result<Value, StatesError> {
        match field {
            PathField::Default => Ok(self.input.clone()),
            PathField::Null => Ok(json!({})),
            PathField::Path(p) => self.invalid_path_lookup(p),
        }
    }

    fn output_path(&self, field: &PathField, output: Value) -> Result<Value, StatesError> {
        match field {
            PathField::Default => Ok(output),
            PathField::Null => Ok(json!({})),
            PathField::Path(p) => Scope { input: &output, ..*self }.invalid_path_lookup(p),
        }
    }

    /// InputPath / OutputPath / Variable style: "Invalid path '$.x' : No results for path: $['x']".
    fn invalid_path_lookup(&self, p: &str) -> Result<Value, StatesError> {
        let path = self.run.path(p).map_err(|e| self.runtime(format!("Invalid path '{p}' : {e}")))?;
        match self.lookup(&path) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(self.runtime(format!("Invalid path '{p}' : No results for path: {}", path.bracketed()))),
            Err(e) => Err(self.runtime(format!("Invalid path '{p}' : {e}"))),
        }
    }

    /// A path named by a field (`ErrorPath`, `value.$`...): "The JSONPath ... could not be found in the input ...".
    fn resolve_path(&self, p: &str, field: &str) -> Result<Value, StatesError> {
        let path = self.run.path(p).map_err(|e| self.runtime(format!("The JSONPath '{p}' specified for the field '{field}' is invalid: {e}")))?;
        match self.lookup(&path) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(self
                .runtime(format!("The JSONPath '{p}' specified for the field '{field}' could not be found in the input '{}'", compact(self.input)))),
            Err(e) => Err(self.runtime(e)),
        }
    }

    fn field_path(&self, p: &str, field: &str) -> Result<String, StatesError> {
        let v = self.resolve_path(p, field)?;
        Ok(match v {
            Value::String(s) => s,
            other => compact(&other),
        })
    }

    /// Evaluates a payload template: `.$` keys take paths or intrinsics.
    pub fn template(&self, template: &Value) -> Result<Value, StatesError> {
        match template {
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, value) in map {
                    if let Some(stripped) = key.strip_suffix(".$") {
                        let Value::String(expr) = value else {
                            return Err(self.runtime(format!("The value of the field '{key}' must be a path or an intrinsic function")));
                        };
                        let v = if intrinsics::looks_like_call(expr) {
                            let ast = self
                                .run
                                .call(expr)
                                .map_err(|e| StatesError::new(names::INTRINSIC_FAILURE, format!("Invalid intrinsic function {expr:?}: {e}")))?;
                            intrinsics::eval(&ast, self).map_err(|e| match e {
                                EvalError::Runtime(detail) => self.runtime(detail),
                                EvalError::Intrinsic(detail) => StatesError::new(names::INTRINSIC_FAILURE, detail),
                            })?
                        } else {
                            self.resolve_path(expr, key)?
                        };
                        out.insert(stripped.to_string(), v);
                    } else {
                        out.insert(key.clone(), self.template(value)?);
                    }
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => Ok(Value::Array(items.iter().map(|v| self.template(v)).collect::<Result<_, _>>()?)),
            other => Ok(other.clone()),
        }
    }

    fn rule(&self, rule: &ChoiceRule) -> Result<bool, StatesError> {
        self.condition(&rule.condition)
    }

    fn condition(&self, condition: &Condition) -> Result<bool, StatesError> {
        match condition {
            Condition::And(all) => {
                for c in all {
                    if !self.condition(c)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Or(any) => {
                for c in any {
                    if self.condition(c)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(inner) => Ok(!self.condition(inner)?),
            Condition::Compare { variable, op, operand } => {
                let path = self.run.path(variable).map_err(|e| self.runtime(format!("Invalid path '{variable}' : {e}")))?;
                let value = self.lookup(&path).map_err(|e| self.runtime(format!("Invalid path '{variable}' : {e}")))?;
                if value.is_none() && !matches!(op, crate::choice::Op::IsPresent) {
                    return Err(self.runtime(format!("Invalid path '{variable}' : No results for path: {}", path.bracketed())));
                }
                let operand = match operand {
                    Operand::Literal(v) => v.clone(),
                    Operand::Path(p) => self.invalid_path_lookup(p)?,
                };
                Ok(compare(*op, value.as_ref(), &operand))
            }
            Condition::Jsonata(_) => Err(self.runtime("JSONata conditions are not supported by this engine yet".into())),
        }
    }

    fn wait_until(&self, wait: &WaitFor) -> Result<DateTime<Utc>, StatesError> {
        let now = self.run.clock.now();
        let seconds = |v: &Value, what: &str, p: &str| -> Result<i64, StatesError> {
            match v.as_i64() {
                Some(s) if s >= 0 => Ok(s),
                Some(_) => Err(self.runtime(format!("The {what} parameter references a negative value: {p} == {}", compact(v)))),
                None => Err(self.runtime(format!("The {what} parameter cannot be parsed as a long value: {p} == {}", compact(v)))),
            }
        };
        let timestamp = |v: &Value, p: &str| -> Result<DateTime<Utc>, StatesError> {
            let text = v.as_str().unwrap_or_default();
            parse_timestamp(text).map(|t| t.with_timezone(&Utc)).ok_or_else(|| {
                let shown = match v {
                    Value::String(s) => s.clone(),
                    other => compact(other),
                };
                self.runtime(format!(
                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {p} == {shown}"
                ))
            })
        };
        match wait {
            WaitFor::Seconds(v) => Ok(now + chrono::Duration::seconds(v.as_i64().unwrap_or(0).max(0))),
            WaitFor::SecondsPath(p) => {
                let v = self.invalid_path_lookup(p)?;
                Ok(now + chrono::Duration::seconds(seconds(&v, "SecondsPath", p)?))
            }
            WaitFor::Timestamp(v) => timestamp(v, "Timestamp"),
            WaitFor::TimestampPath(p) => {
                let v = self.invalid_path_lookup(p)?;
                timestamp(&v, p)
            }
        }
    }
}

impl Resolver for Scope<'_> {
    fn resolve(&self, path: &Path) -> Result<Value, String> {
        match self.lookup(path)? {
            Some(v) => Ok(v),
            None => Err(format!("The JSONPath '{}' could not be found in the input '{}'", path.text, compact(self.input))),
        }
    }
}

/// Runs a whole execution.
pub(crate) async fn execute(run: Run, machine: &StateMachine, input: Value) -> Execution {
    run.event("ExecutionStarted", json!({"input": input}));
    let started = run.clock.now();
    let mut vars = Vars::new();
    let result = run.machine(machine, input, &mut vars).await;
    let timed_out = machine.timeout_seconds.is_some_and(|t| (run.clock.now() - started).num_seconds() > t as i64);
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
