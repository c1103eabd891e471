//! What a path, payload template or condition can see: the state's input,
//! the context object and the variables; and the JSONPath input/output
//! processing built on it (InputPath, OutputPath, ResultPath).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::run::{Run, Vars, iso};
use super::values::compact;
use crate::choice::{ChoiceRule, Condition, Op, Operand, compare, parse_timestamp};
use crate::error::{StatesError, names};
use crate::intrinsics::{self, EvalError, Resolver};
use crate::model::{PathField, WaitFor};
use crate::path::{self, Path, Root};

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
    /// `$$.Task.Token`, in a `.waitForTaskToken` Task's Parameters.
    pub task_token: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// A scope for `state` of `run`, with no input yet.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn at(
        run: &'a Run,
        state: &'a str,
        input: &'a Value,
        vars: &'a Vars,
        entered: u64,
        entered_time: DateTime<Utc>,
        retry: Option<u32>,
    ) -> Scope<'a> {
        Scope { run, input, vars, state, entered, entered_time, retry, map_item: None, task_token: None }
    }

    pub(crate) fn runtime(&self, detail: String) -> StatesError {
        StatesError::runtime(self.state, self.entered, &detail)
    }

    pub(crate) fn context(&self) -> Value {
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
        if let Some(token) = self.task_token {
            context["Task"] = json!({"Token": token});
        }
        context
    }

    /// The value at `path`: `None` when absent; `Err` for an undefined variable or a bad path.
    pub(crate) fn lookup(&self, path: &Path) -> Result<Option<Value>, String> {
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
    pub(crate) fn take_input_path(&self, field: &PathField, input: Value) -> Result<Value, StatesError> {
        match field {
            PathField::Default => Ok(input),
            _ => Scope { input: &input, ..*self }.input_path(field),
        }
    }

    pub(crate) fn input_path(&self, field: &PathField) -> Result<Value, StatesError> {
        match field {
            PathField::Default => Ok(self.input.clone()),
            PathField::Null => Ok(json!({})),
            PathField::Path(p) => self.invalid_path_lookup(p),
        }
    }

    pub(crate) fn output_path(&self, field: &PathField, output: Value) -> Result<Value, StatesError> {
        match field {
            PathField::Default => Ok(output),
            PathField::Null => Ok(json!({})),
            PathField::Path(p) => Scope { input: &output, ..*self }.invalid_path_lookup(p),
        }
    }

    /// InputPath / OutputPath / Variable style: "Invalid path '$.x' : No results for path: $['x']".
    pub(crate) fn invalid_path_lookup(&self, p: &str) -> Result<Value, StatesError> {
        let path = self.run.path(p).map_err(|e| self.runtime(format!("Invalid path '{p}' : {e}")))?;
        match self.lookup(&path) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(self.runtime(format!("Invalid path '{p}' : No results for path: {}", path.bracketed()))),
            Err(e) => Err(self.runtime(format!("Invalid path '{p}' : {e}"))),
        }
    }

    /// A path named by a field (`ErrorPath`, `value.$`...): "The JSONPath ... could not be found in the input ...".
    pub(crate) fn resolve_path(&self, p: &str, field: &str) -> Result<Value, StatesError> {
        let path = self.run.path(p).map_err(|e| self.runtime(format!("The JSONPath '{p}' specified for the field '{field}' is invalid: {e}")))?;
        match self.lookup(&path) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(self
                .runtime(format!("The JSONPath '{p}' specified for the field '{field}' could not be found in the input '{}'", compact(self.input)))),
            Err(e) => Err(self.runtime(e)),
        }
    }

    /// A Fail state's `ErrorPath` or `CausePath`: a path, or an intrinsic function such as
    /// `States.Format(...)`, as AWS accepts there
    /// (<https://docs.aws.amazon.com/step-functions/latest/dg/state-fail.html>).
    pub(crate) fn field_path(&self, p: &str, field: &str) -> Result<String, StatesError> {
        let v = self.path_or_call(p, field)?;
        Ok(match v {
            Value::String(s) => s,
            other => compact(&other),
        })
    }

    /// The value of a field that takes a path or an intrinsic function.
    fn path_or_call(&self, expr: &str, field: &str) -> Result<Value, StatesError> {
        if !intrinsics::looks_like_call(expr) {
            return self.resolve_path(expr, field);
        }
        let ast = self.run.call(expr).map_err(|e| StatesError::new(names::INTRINSIC_FAILURE, format!("Invalid intrinsic function {expr:?}: {e}")))?;
        intrinsics::eval(&ast, self).map_err(|e| match e {
            EvalError::Runtime(detail) => self.runtime(detail),
            EvalError::Intrinsic(detail) => StatesError::new(names::INTRINSIC_FAILURE, detail),
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
                        out.insert(stripped.to_string(), self.path_or_call(expr, key)?);
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

    pub(crate) fn rule(&self, rule: &ChoiceRule) -> Result<bool, StatesError> {
        self.condition(&rule.condition)
    }

    pub(crate) fn condition(&self, condition: &Condition) -> Result<bool, StatesError> {
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
                if value.is_none() && !matches!(op, Op::IsPresent) {
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

    pub(crate) fn wait_until(&self, wait: &WaitFor) -> Result<DateTime<Utc>, StatesError> {
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

/// Applies ResultPath: where a state's result goes in its raw input.
pub(crate) fn apply_result_path(field: &PathField, raw: Value, result: Value, scope: &Scope<'_>) -> Result<Value, StatesError> {
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
