//! JSONPath states: Fail, Succeed, Wait and Choice, and the retry loop
//! around the states that have a result (Pass, Task, Parallel, Map).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::map;
use super::parallel;
use super::retry::retry_delay;
use super::run::{NULL, Run, Step, Vars};
use super::scope::{Scope, apply_result_path};
use super::task::{self, TaskLimits};
use super::values::quoted_in_cause;
use crate::error::{StatesError, names};
use crate::model::{Kind, PathField, State};
use crate::tokens::WAIT_FOR_TASK_TOKEN;

/// Runs one JSONPath state: its output and where to go next.
pub(crate) async fn state<'m>(
    run: &Run,
    state: &'m State,
    input: Value,
    vars: &mut Vars,
    entered: u64,
    entered_time: DateTime<Utc>,
) -> Result<Step<'m>, StatesError> {
    let c = &state.common;
    let base = Scope::at(run, &state.name, &NULL, vars, entered, entered_time, None);
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
            let now = run.clock.now();
            if until > now {
                run.clock.sleep((until - now).to_std().unwrap_or_default()).await;
            }
            Ok(Step::after(c, base.output_path(&c.output_path, effective)?))
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
                match work(run, state, attempt, vars, entered, entered_time, retry_count).await {
                    Ok((output, assigned)) => {
                        if let Some(Value::Object(a)) = assigned {
                            vars.extend(a);
                        }
                        return Ok(Step::after(c, output));
                    }
                    Err(error) => {
                        let delay = retry_delay(&c.retry, &error, &mut attempts);
                        run.finish_failed_attempt(delay.is_none());
                        let Some(delay) = delay else { return Err(error) };
                        retry_count += 1;
                        run.clock.sleep(std::time::Duration::from_secs_f64(delay.max(0.0))).await;
                    }
                }
            }
        }
    }
}

/// The body of a state that has a result: Pass, Task, Parallel, Map.
async fn work(
    run: &Run,
    state: &State,
    raw: Value,
    vars: &Vars,
    entered: u64,
    entered_time: DateTime<Utc>,
    retry: u32,
) -> Result<(Value, Option<Value>), StatesError> {
    let c = &state.common;
    let can_retry = matches!(state.kind, Kind::Task(_)) || !c.retry.is_empty();
    let base = Scope::at(run, &state.name, &NULL, vars, entered, entered_time, can_retry.then_some(retry));
    // Only a ResultPath other than `$` needs the raw input again.
    let (raw, effective) = if matches!(c.result_path, PathField::Default) {
        (Value::Null, base.take_input_path(&c.input_path, raw)?)
    } else {
        let effective = Scope { input: &raw, ..base }.input_path(&c.input_path)?;
        (raw, effective)
    };
    let result = match &state.kind {
        Kind::Pass(Some(result)) => result.clone(),
        Kind::Map(spec) => map::run(run, state, spec, &Scope { input: &effective, ..base }, vars).await?,
        kind => {
            // A `.waitForTaskToken` Task's Parameters see its token as `$$.Task.Token`.
            let token = match kind {
                Kind::Task(spec) if spec.resource.ends_with(WAIT_FOR_TASK_TOKEN) => Some(run.tokens.issue(run.execution_name(), &state.name)),
                _ => None,
            };
            let eff = Scope { input: &effective, task_token: token.as_deref(), ..base };
            let seconds = |value: &Option<Value>, path: &Option<String>, field: &str| -> Result<Option<f64>, StatesError> {
                Ok(match (value, path) {
                    (Some(v), _) => v.as_f64(),
                    (None, Some(p)) => {
                        let found = eff.resolve_path(p, field)?;
                        let seconds = found.as_u64().filter(|s| *s > 0);
                        if seconds.is_none() {
                            return Err(eff.runtime(format!(
                                "The {field} field refers to value \"{}\" which is not a valid integer: {p}",
                                quoted_in_cause(&found)
                            )));
                        }
                        seconds.map(|s| s as f64)
                    }
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
                Kind::Task(spec) => task::invoke(run, &state.name, spec, parameters, limits, token.as_deref()).await?,
                Kind::Parallel(branches) => parallel::branches(run, branches, parameters, vars, true).await?,
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
