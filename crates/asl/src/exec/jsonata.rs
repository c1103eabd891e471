//! JSONata states: Arguments, Output, Assign and the rest are `{% %}`
//! expressions over `$states`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::map::Lanes;
use super::parallel;
use super::retry::retry_delay;
use super::run::{Branches, NULL, Run, Step, Vars};
use super::scope::Scope;
use super::task::{self, TaskLimits};
use super::values::{compact, type_name};
use crate::choice::{Condition, parse_timestamp};
use crate::error::{StatesError, names};
use crate::jsonata::{self, Evaluated};
use crate::model::{Kind, State, WaitFor};
use crate::tokens::WAIT_FOR_TASK_TOKEN;

/// Evaluates a JSONata field: `{% %}` strings anywhere inside it, with `$states` and the variables bound.
pub(crate) fn jeval(value: &Value, field: &str, states: &Value, vars: &Vars, state: &str, entered: u64) -> Result<Value, StatesError> {
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
                out.insert(k.clone(), jeval(v, &format!("{field}/{k}"), states, vars, state, entered)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => Ok(Value::Array(
            items.iter().enumerate().map(|(i, v)| jeval(v, &format!("{field}[{i}]"), states, vars, state, entered)).collect::<Result<_, _>>()?,
        )),
        other => Ok(other.clone()),
    }
}

/// A JSONata state: Arguments, Output, Assign and the rest are `{% %}` expressions over `$states`.
pub(crate) async fn state<'m>(
    run: &Run,
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
    let context = Scope::at(run, name, &NULL, vars, entered, entered_time, can_retry.then_some(0)).context();
    let states = json!({"input": input, "context": context});
    // Assign and Output see the same $states; new variables show from the next state on.
    let finish = |states: &Value, assign: Option<&Value>, output: Option<&Value>, default: Value, vars: &mut Vars| -> Result<Value, StatesError> {
        let assigned = assign.map(|a| jeval(a, "Assign", states, vars, name, entered)).transpose()?;
        let output = match output {
            Some(o) => jeval(o, "Output", states, vars, name, entered)?,
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
            Ok(if matches!(state.kind, Kind::Succeed) { Step::End(output) } else { Step::after(c, output) })
        }
        Kind::Fail { error, cause, .. } => {
            let text = |v: &Option<Value>, field: &str| -> Result<Option<String>, StatesError> {
                Ok(match v {
                    Some(v) => match jeval(v, field, &states, vars, name, entered)? {
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
            let now = run.clock.now();
            let until = match wait {
                WaitFor::Seconds(v) => match jeval(v, "Seconds", &states, vars, name, entered)?.as_i64() {
                    Some(s) if s >= 0 => now + chrono::Duration::seconds(s),
                    _ => return Err(query_error("The Seconds field must be a non-negative integer".into())),
                },
                WaitFor::Timestamp(v) => {
                    let value = jeval(v, "Timestamp", &states, vars, name, entered)?;
                    let text = value.as_str().map(str::to_string).unwrap_or_else(|| compact(&value));
                    parse_timestamp(&text).map(|t| t.with_timezone(&Utc)).ok_or_else(|| {
                        query_error(format!("The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {text}"))
                    })?
                }
                _ => return Err(query_error("SecondsPath and TimestampPath are JSONPath fields".into())),
            };
            if until > now {
                run.clock.sleep((until - now).to_std().unwrap_or_default()).await;
            }
            let output = finish(&states, c.assign.as_ref(), c.output.as_ref(), input, vars)?;
            Ok(Step::after(c, output))
        }
        Kind::Choice { choices, default } => {
            for rule in choices {
                let Condition::Jsonata(condition) = &rule.condition else { continue };
                let value = jeval(condition, "Condition", &states, vars, name, entered)?;
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
                    // A `.waitForTaskToken` Task's Arguments see its token as `$states.context.Task.Token`.
                    let token = match &state.kind {
                        Kind::Task(spec) if spec.resource.ends_with(WAIT_FOR_TASK_TOKEN) => Some(run.tokens.issue(run.execution_name(), name)),
                        _ => None,
                    };
                    let with_token;
                    let states = match &token {
                        Some(token) => {
                            let mut s = states.clone();
                            s["context"]["Task"] = json!({"Token": token});
                            with_token = s;
                            &with_token
                        }
                        None => &states,
                    };
                    let arguments = match &c.arguments {
                        Some(a) => jeval(a, "Arguments", states, vars, name, entered)?,
                        None => input.clone(),
                    };
                    let result = match &state.kind {
                        Kind::Task(spec) => {
                            let limits = TaskLimits {
                                timeout: spec.timeout_seconds.as_ref().and_then(Value::as_f64),
                                heartbeat: spec.heartbeat_seconds.as_ref().and_then(Value::as_f64),
                            };
                            task::invoke(run, &state.name, spec, arguments, limits, token.as_deref()).await?
                        }
                        Kind::Parallel(branches) => parallel::branches(run, branches, arguments.clone(), vars, false).await?,
                        Kind::Map(spec) => {
                            let items = match &spec.items {
                                Some(items) => {
                                    let value = jeval(items, "Items", states, vars, name, entered)?;
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
                            // MaxConcurrency: a number, or a JSONata expression giving one (0: no limit).
                            let max_concurrency = match &spec.max_concurrency {
                                Some(v @ Value::String(_)) => jeval(v, "MaxConcurrency", states, vars, name, entered)?.as_u64().unwrap_or(0),
                                Some(v) => v.as_u64().unwrap_or(0),
                                None => 0,
                            };
                            run.event("MapStateStarted", json!({"length": items.as_array().map_or(0, Vec::len)}));
                            // On a clock with lanes, iterations that can take time run concurrently in virtual
                            // time, as the JSONPath Map's do (see `map.rs`).
                            let mut lanes = Lanes::new(run, max_concurrency, run.clock.lanes() && spec.processor.can_take_time());
                            let mut outputs = Vec::new();
                            for (index, item) in items.as_array().cloned().unwrap_or_default().into_iter().enumerate() {
                                let item_input = match &c.parameters {
                                    Some(selector) => {
                                        let mut item_states = states.clone();
                                        item_states["context"]["Map"] = json!({"Item": {"Index": index, "Value": item}});
                                        jeval(selector, "ItemSelector", &item_states, vars, name, entered)?
                                    }
                                    None => item,
                                };
                                let iteration = async {
                                    run.state_event("MapIterationStarted", state, Value::from(index));
                                    let mut child = vars.clone();
                                    let result = run.branch(&spec.processor, item_input, &mut child).await;
                                    if result.is_ok() {
                                        run.state_event("MapIterationSucceeded", state, Value::from(index));
                                    }
                                    result
                                };
                                match lanes.run(iteration).await {
                                    Some(Ok(output)) => outputs.push(output),
                                    Some(Err(e)) if !lanes.enabled() => return Err(e),
                                    Some(Err(_)) => {}
                                    None => break,
                                }
                            }
                            lanes.finish()?;
                            run.event("MapStateSucceeded", json!({}));
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
                        return Ok(Step::after(c, output));
                    }
                    Err(error) => {
                        let Some(delay) = retry_delay(&c.retry, &error, &mut attempts) else { return Err(error) };
                        run.clock.sleep(std::time::Duration::from_secs_f64(delay.max(0.0))).await;
                    }
                }
            }
        }
    }
}
