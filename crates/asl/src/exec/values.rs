//! How values appear in messages, as AWS shows them.

use serde_json::Value;

/// The JSON type name of a value, as JSONata errors name it.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Compact JSON text.
pub(crate) fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A value quoted in a States.Runtime cause, as AWS renders it there: a string as its
/// text (the cause's own quotes surround it, no doubled quotes), anything else as JSON.
pub(crate) fn quoted_in_cause(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => compact(other),
    }
}
