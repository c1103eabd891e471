//! JSONata expressions (`{% ... %}`), evaluated by the jsonata-rs crate.
//!
//! jsonata-rs is incomplete: whatever it cannot evaluate, including a panic
//! inside it, becomes an error that names the expression. It never passes
//! for a result.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use bumpalo::Bump;
use jsonata_rs::{FunctionContext, JsonAta, Value as JValue};
use serde_json::Value;

/// What an expression produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluated {
    /// A JSON value.
    Value(Value),
    /// Nothing (JSONata's `undefined`).
    Undefined,
    /// A function, which can't leave JSONata.
    Function,
}

/// The expression inside `{% ... %}`, if `text` is one: a string that begins with `{%` and
/// ends with `%}` exactly. With anything around them (even whitespace) it is a literal, as AWS
/// reads it (<https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html>).
pub fn expression(text: &str) -> Option<&str> {
    text.strip_prefix("{%").and_then(|r| r.strip_suffix("%}")).map(str::trim)
}

/// Evaluates `expr` with `input` as `$` and `bindings` as `$name` variables.
/// The error reads as AWS prints it: `T1006: Attempted to invoke a non-function`.
pub fn evaluate(expr: &str, input: &Value, bindings: &HashMap<&str, &Value>) -> Result<Evaluated, String> {
    let input_text = serde_json::to_string(input).unwrap_or_else(|_| "null".into());
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let arena = Bump::new();
        let jsonata = JsonAta::new(expr, &arena).map_err(|e| message(&e))?;
        jsonata.register_function("partition", 2, partition);
        jsonata.register_function("range", 3, range);
        jsonata.register_function("parse", 1, parse);
        jsonata.register_function("hash", 2, hash);
        let result = jsonata.evaluate(Some(&input_text), Some(bindings)).map_err(|e| message(&e))?;
        if result.is_undefined() {
            return Ok(Evaluated::Undefined);
        }
        if result.is_function() {
            return Ok(Evaluated::Function);
        }
        serde_json::from_str(&result.serialize(false)).map(Evaluated::Value).map_err(|e| format!("the result could not be read as JSON: {e}"))
    }));
    outcome.unwrap_or_else(|_| Err("this JSONata expression is not supported by the local engine (jsonata-rs could not evaluate it)".into()))
}

/// `T1006 @ 12: Attempted...` → `T1006: Attempted...`.
fn message(e: &jsonata_rs::Error) -> String {
    let text = e.to_string();
    match text.split_once(" @ ") {
        Some((code, rest)) => format!("{code}: {}", rest.split_once(": ").map(|(_, m)| m).unwrap_or(rest)),
        None => text,
    }
}

fn to_json<'a>(v: &'a JValue<'a>) -> Value {
    serde_json::from_str(&v.serialize(false)).unwrap_or(Value::Null)
}

fn from_json<'a>(arena: &'a Bump, v: &Value) -> &'a JValue<'a> {
    match v {
        Value::Null => JValue::null(arena),
        Value::Bool(b) => JValue::bool(*b),
        Value::Number(n) => JValue::number(arena, n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => JValue::string(arena, s),
        Value::Array(items) => {
            let array = JValue::array_with_capacity(arena, items.len(), jsonata_rs::ArrayFlags::empty());
            for item in items {
                array.push(from_json(arena, item));
            }
            array
        }
        Value::Object(map) => {
            let object = JValue::object_with_capacity(arena, map.len());
            for (k, item) in map {
                object.insert(k, from_json(arena, item));
            }
            object
        }
    }
}

fn error<'a>(name: &str, detail: &str) -> jsonata_rs::Result<&'a JValue<'a>> {
    Err(jsonata_rs::Error::D3137Error(format!("${name}: {detail}")))
}

/// AWS's `$partition(array, size)`.
fn partition<'a>(context: FunctionContext<'a, '_>, args: &[&'a JValue<'a>]) -> jsonata_rs::Result<&'a JValue<'a>> {
    let (items, size) = (to_json(args[0]), args[1].as_f64());
    let Value::Array(items) = items else { return error("partition", "the first argument must be an array") };
    if size < 1.0 || size.fract() != 0.0 {
        return error("partition", "the chunk size must be a positive integer");
    }
    let chunks: Vec<Value> = items.chunks(size as usize).map(|c| Value::Array(c.to_vec())).collect();
    Ok(from_json(context.arena, &Value::Array(chunks)))
}

/// AWS's `$range(start, end, step)`, end included.
fn range<'a>(context: FunctionContext<'a, '_>, args: &[&'a JValue<'a>]) -> jsonata_rs::Result<&'a JValue<'a>> {
    let (start, end, step) = (args[0].as_f64() as i64, args[1].as_f64() as i64, args[2].as_f64() as i64);
    if step == 0 {
        return error("range", "the step must not be 0");
    }
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i <= end) || (step < 0 && i >= end) {
        out.push(Value::from(i));
        if out.len() > 1000 {
            return error("range", "at most 1000 items");
        }
        i += step;
    }
    // A single item comes back unwrapped, as JSONata sequences do.
    Ok(if out.len() == 1 { from_json(context.arena, &out[0]) } else { from_json(context.arena, &Value::Array(out)) })
}

/// AWS's `$parse(jsonString)`.
fn parse<'a>(context: FunctionContext<'a, '_>, args: &[&'a JValue<'a>]) -> jsonata_rs::Result<&'a JValue<'a>> {
    if !args[0].is_string() {
        return error("parse", "the argument must be a string");
    }
    match serde_json::from_str::<Value>(&args[0].as_str()) {
        Ok(v) => Ok(from_json(context.arena, &v)),
        Err(e) => error("parse", &e.to_string()),
    }
}

/// AWS's `$hash(data, algorithm)`.
fn hash<'a>(context: FunctionContext<'a, '_>, args: &[&'a JValue<'a>]) -> jsonata_rs::Result<&'a JValue<'a>> {
    let data = match to_json(args[0]) {
        Value::String(s) => s,
        other => other.to_string(),
    };
    match crate::intrinsics::hash(&data, &args[1].as_str()) {
        Ok(digest) => Ok(JValue::string(context.arena, &digest)),
        Err(e) => error("hash", &e),
    }
}
