//! Reading a state's fields while collecting every problem with where it is.

use serde_json::{Map, Value};

use super::types::{PathField, Problem};

pub(super) struct Ctx<'a> {
    pub(super) problems: &'a mut Vec<Problem>,
    pub(super) prefix: String,
}

impl Ctx<'_> {
    pub(super) fn problem(&mut self, field: &str, message: impl Into<String>) {
        let location = if field.is_empty() { self.prefix.clone() } else { format!("{}.{field}", self.prefix) };
        self.problems.push(Problem { location, message: message.into() });
    }
}

pub(super) fn string_field(obj: &Map<String, Value>, key: &str, ctx: &mut Ctx<'_>) -> Option<String> {
    match obj.get(key) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            ctx.problem(key, format!("must be a string, got {other}"));
            None
        }
    }
}

pub(super) fn path_field(obj: &Map<String, Value>, key: &str, ctx: &mut Ctx<'_>) -> PathField {
    match obj.get(key) {
        None => PathField::Default,
        Some(Value::Null) => PathField::Null,
        Some(Value::String(s)) => {
            if let Err(e) = crate::path::Path::parse(s) {
                ctx.problem(key, format!("{s:?} is not a valid path: {e}"));
            }
            PathField::Path(s.clone())
        }
        Some(other) => {
            ctx.problem(key, format!("must be a path string or null, got {other}"));
            PathField::Default
        }
    }
}

pub(super) fn error_names(value: Option<&Value>, field: &str, ctx: &mut Ctx<'_>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .filter_map(|v| match v.as_str() {
                Some(s) => Some(s.to_string()),
                None => {
                    ctx.problem(field, format!("ErrorEquals holds {v}, not an error name"));
                    None
                }
            })
            .collect(),
        _ => {
            ctx.problem(field, "ErrorEquals must be a non-empty list of error names");
            Vec::new()
        }
    }
}

pub(super) fn check_states_all_last(names: &[Vec<String>], field: &str, ctx: &mut Ctx<'_>) {
    for (i, list) in names.iter().enumerate() {
        if list.iter().any(|n| n == "States.ALL") && (list.len() > 1 || i + 1 != names.len()) {
            ctx.problem(field, "States.ALL must appear alone and in the last retrier or catcher");
        }
    }
}

pub(super) fn number(value: Option<&Value>, field: &str, default: f64, ctx: &mut Ctx<'_>) -> f64 {
    match value {
        None => default,
        Some(v) => v.as_f64().unwrap_or_else(|| {
            ctx.problem(field, format!("must be a number, got {v}"));
            default
        }),
    }
}

pub(super) const COMMON_FIELDS: &[&str] = &[
    "Type",
    "Comment",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Assign",
    "Arguments",
    "Output",
    "Retry",
    "Catch",
    "QueryLanguage",
];

pub(super) fn allowed_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pass" => &["Result"],
        "Task" => &["Resource", "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath", "Credentials"],
        "Choice" => &["Choices", "Default"],
        "Wait" => &["Seconds", "SecondsPath", "Timestamp", "TimestampPath"],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &["Branches"],
        "Map" => &[
            "Iterator",
            "ItemProcessor",
            "ItemsPath",
            "Items",
            "ItemSelector",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailureCount",
            "ToleratedFailurePercentage",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentagePath",
            "Label",
            "ItemReader",
            "ResultWriter",
            "ItemBatcher",
        ],
        _ => &[],
    }
}
