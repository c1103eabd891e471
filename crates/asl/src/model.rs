//! The state machine definition, parsed and validated.
//!
//! Parsing collects every problem with the state it belongs to, instead of
//! stopping at the first: a definition either parses cleanly or yields the
//! full list.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::choice::{ChoiceRule, parse_rule};

/// `JSONPath` (the default) or `JSONata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLanguage {
    /// Paths, `.$` keys and intrinsics.
    JsonPath,
    /// JSONata expressions in `{% %}`.
    JsonAta,
}

/// An optional path field: absent, JSON `null`, or a path.
#[derive(Debug, Clone, PartialEq)]
pub enum PathField {
    /// Not given: the default (`$`).
    Default,
    /// `null`.
    Null,
    /// A path string.
    Path(String),
}

/// A retrier.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    /// Error names it handles.
    pub error_equals: Vec<String>,
    /// First delay, seconds (default 1).
    pub interval_seconds: f64,
    /// Retries (default 3).
    pub max_attempts: u32,
    /// Delay multiplier (default 2.0).
    pub backoff_rate: f64,
    /// Cap on the delay.
    pub max_delay_seconds: Option<f64>,
    /// `FULL` jitter, or none.
    pub full_jitter: bool,
}

/// Default retry interval, seconds.
pub const DEFAULT_INTERVAL_SECONDS: f64 = 1.0;
/// Default retry count.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default backoff multiplier.
pub const DEFAULT_BACKOFF_RATE: f64 = 2.0;

/// A catcher.
#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    /// Error names it handles.
    pub error_equals: Vec<String>,
    /// Where the error output goes (default `$`).
    pub result_path: PathField,
    /// Variables to assign.
    pub assign: Option<Value>,
    /// JSONata output.
    pub output: Option<Value>,
    /// The state to go to.
    pub next: String,
}

/// Fields every state may carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    /// Next state, unless `end`.
    pub next: Option<String>,
    /// Terminal state.
    pub end: bool,
    /// InputPath.
    pub input_path: PathField,
    /// OutputPath.
    pub output_path: PathField,
    /// ResultPath.
    pub result_path: PathField,
    /// Parameters (or Map's ItemSelector).
    pub parameters: Option<Value>,
    /// ResultSelector.
    pub result_selector: Option<Value>,
    /// Assign.
    pub assign: Option<Value>,
    /// JSONata Arguments.
    pub arguments: Option<Value>,
    /// JSONata Output.
    pub output: Option<Value>,
    /// Retriers.
    pub retry: Vec<Retrier>,
    /// Catchers.
    pub catch: Vec<Catcher>,
    /// The effective query language.
    pub query_language: QueryLanguage,
}

/// Wait's duration or deadline.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitFor {
    /// Seconds (a number, or a JSONata expression string).
    Seconds(Value),
    /// A path to seconds.
    SecondsPath(String),
    /// A timestamp (a string, or a JSONata expression).
    Timestamp(Value),
    /// A path to a timestamp.
    TimestampPath(String),
}

/// Map's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MapSpec {
    /// The iteration's machine.
    pub processor: Box<StateMachine>,
    /// ItemsPath (JSONPath).
    pub items_path: PathField,
    /// Items (JSONata).
    pub items: Option<Value>,
    /// MaxConcurrency (0 = unlimited).
    pub max_concurrency: Option<Value>,
    /// MaxConcurrencyPath.
    pub max_concurrency_path: Option<String>,
    /// ToleratedFailureCount.
    pub tolerated_failure_count: Option<Value>,
    /// ToleratedFailurePercentage.
    pub tolerated_failure_percentage: Option<Value>,
    /// ToleratedFailureCountPath.
    pub tolerated_failure_count_path: Option<String>,
    /// ToleratedFailurePercentagePath.
    pub tolerated_failure_percentage_path: Option<String>,
}

/// Task's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The Resource ARN.
    pub resource: String,
    /// TimeoutSeconds (or a JSONata expression).
    pub timeout_seconds: Option<Value>,
    /// TimeoutSecondsPath.
    pub timeout_seconds_path: Option<String>,
    /// HeartbeatSeconds.
    pub heartbeat_seconds: Option<Value>,
    /// HeartbeatSecondsPath.
    pub heartbeat_seconds_path: Option<String>,
}

/// A state's type and its own fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Pass, with its optional Result.
    Pass(Option<Value>),
    /// Task.
    Task(TaskSpec),
    /// Choice.
    Choice {
        /// Rules, in order.
        choices: Vec<ChoiceRule>,
        /// Default next state.
        default: Option<String>,
    },
    /// Wait.
    Wait(WaitFor),
    /// Succeed.
    Succeed,
    /// Fail.
    Fail {
        /// Error (or JSONata).
        error: Option<Value>,
        /// ErrorPath.
        error_path: Option<String>,
        /// Cause (or JSONata).
        cause: Option<Value>,
        /// CausePath.
        cause_path: Option<String>,
    },
    /// Parallel.
    Parallel(Vec<StateMachine>),
    /// Map (inline).
    Map(MapSpec),
}

impl Kind {
    /// The ASL type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Pass(_) => "Pass",
            Kind::Task(_) => "Task",
            Kind::Choice { .. } => "Choice",
            Kind::Wait(_) => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail { .. } => "Fail",
            Kind::Parallel(_) => "Parallel",
            Kind::Map(_) => "Map",
        }
    }
}

/// One state.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Its name.
    pub name: String,
    /// Its name, shared by the history events that mention it.
    pub label: std::sync::Arc<str>,
    /// Type-specific fields.
    pub kind: Kind,
    /// Shared fields.
    pub common: Common,
}

/// A (sub-)machine: the top level, a Parallel branch or a Map processor.
#[derive(Debug, Clone, PartialEq)]
pub struct StateMachine {
    /// StartAt.
    pub start_at: String,
    /// States by name.
    pub states: rustc_hash::FxHashMap<String, State>,
    /// State names in definition order.
    pub order: Vec<String>,
    /// TimeoutSeconds of the whole machine.
    pub timeout_seconds: Option<u64>,
    /// Default query language of its states.
    pub query_language: QueryLanguage,
}

/// A definition problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `States.Name.Field`, or `(definition)`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

struct Ctx<'a> {
    problems: &'a mut Vec<Problem>,
    prefix: String,
}

impl Ctx<'_> {
    fn problem(&mut self, field: &str, message: impl Into<String>) {
        let location = if field.is_empty() { self.prefix.clone() } else { format!("{}.{field}", self.prefix) };
        self.problems.push(Problem { location, message: message.into() });
    }
}

fn string_field(obj: &Map<String, Value>, key: &str, ctx: &mut Ctx<'_>) -> Option<String> {
    match obj.get(key) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            ctx.problem(key, format!("must be a string, got {other}"));
            None
        }
    }
}

fn path_field(obj: &Map<String, Value>, key: &str, ctx: &mut Ctx<'_>) -> PathField {
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

fn error_names(value: Option<&Value>, field: &str, ctx: &mut Ctx<'_>) -> Vec<String> {
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

fn check_states_all_last(names: &[Vec<String>], field: &str, ctx: &mut Ctx<'_>) {
    for (i, list) in names.iter().enumerate() {
        if list.iter().any(|n| n == "States.ALL") && (list.len() > 1 || i + 1 != names.len()) {
            ctx.problem(field, "States.ALL must appear alone and in the last retrier or catcher");
        }
    }
}

fn number(value: Option<&Value>, field: &str, default: f64, ctx: &mut Ctx<'_>) -> f64 {
    match value {
        None => default,
        Some(v) => v.as_f64().unwrap_or_else(|| {
            ctx.problem(field, format!("must be a number, got {v}"));
            default
        }),
    }
}

const COMMON_FIELDS: &[&str] = &[
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

fn allowed_fields(kind: &str) -> &'static [&'static str] {
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

/// Parses a whole definition, returning every problem found.
pub fn parse_definition(definition: &Value) -> Result<StateMachine, Vec<Problem>> {
    let mut problems = Vec::new();
    let machine = parse_machine(definition, "", QueryLanguage::JsonPath, &mut problems);
    if let Some(machine) = &machine {
        check_references(machine, "", &mut problems);
    }
    match machine {
        Some(m) if problems.is_empty() => Ok(m),
        _ => Err(problems),
    }
}

fn parse_query_language(obj: &Map<String, Value>, default: QueryLanguage, ctx: &mut Ctx<'_>) -> QueryLanguage {
    match obj.get("QueryLanguage").and_then(Value::as_str) {
        None => default,
        Some("JSONPath") => QueryLanguage::JsonPath,
        Some("JSONata") => QueryLanguage::JsonAta,
        Some(other) => {
            ctx.problem("QueryLanguage", format!("{other:?} is not JSONPath or JSONata"));
            default
        }
    }
}

fn parse_machine(value: &Value, prefix: &str, inherited: QueryLanguage, problems: &mut Vec<Problem>) -> Option<StateMachine> {
    let mut ctx = Ctx { problems, prefix: if prefix.is_empty() { "(definition)".into() } else { prefix.to_string() } };
    let Some(obj) = value.as_object() else {
        ctx.problem("", "a state machine must be a JSON object");
        return None;
    };
    let query_language = parse_query_language(obj, inherited, &mut ctx);
    for key in obj.keys() {
        if !["StartAt", "States", "Comment", "TimeoutSeconds", "Version", "QueryLanguage", "ProcessorConfig"].contains(&key.as_str()) {
            ctx.problem(key, "unknown field");
        }
    }
    let start_at = string_field(obj, "StartAt", &mut ctx).unwrap_or_else(|| {
        ctx.problem("StartAt", "required");
        String::new()
    });
    let timeout_seconds = match obj.get("TimeoutSeconds") {
        None => None,
        Some(v) => v.as_u64().or_else(|| {
            ctx.problem("TimeoutSeconds", format!("must be a positive integer, got {v}"));
            None
        }),
    };
    let Some(states_obj) = obj.get("States").and_then(Value::as_object) else {
        ctx.problem("States", "required: an object of states");
        return None;
    };
    let mut states = rustc_hash::FxHashMap::default();
    let mut order = Vec::new();
    let state_prefix = if prefix.is_empty() { "States".to_string() } else { format!("{prefix}.States") };
    for (name, state_value) in states_obj {
        if name.len() > 80 {
            ctx.problems.push(Problem { location: format!("{state_prefix}.{name}"), message: "state names are at most 80 characters".into() });
        }
        if let Some(state) = parse_state(name, state_value, &format!("{state_prefix}.{name}"), query_language, ctx.problems) {
            order.push(name.clone());
            states.insert(name.clone(), state);
        }
    }
    Some(StateMachine { start_at, states, order, timeout_seconds, query_language })
}

fn parse_state(name: &str, value: &Value, prefix: &str, inherited: QueryLanguage, problems: &mut Vec<Problem>) -> Option<State> {
    let mut ctx = Ctx { problems, prefix: prefix.to_string() };
    let Some(obj) = value.as_object() else {
        ctx.problem("", "a state must be a JSON object");
        return None;
    };
    let Some(type_name) = obj.get("Type").and_then(Value::as_str).map(str::to_string) else {
        ctx.problem("Type", "required");
        return None;
    };
    if !["Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"].contains(&type_name.as_str()) {
        ctx.problem("Type", format!("{type_name:?} is not a state type"));
        return None;
    }
    let extra = allowed_fields(&type_name);
    for key in obj.keys() {
        if !COMMON_FIELDS.contains(&key.as_str()) && !extra.contains(&key.as_str()) {
            ctx.problem(key, format!("is not a field of a {type_name} state"));
        }
    }
    let query_language = parse_query_language(obj, inherited, &mut ctx);
    let next = string_field(obj, "Next", &mut ctx);
    let end = match obj.get("End") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            ctx.problem("End", format!("must be a boolean, got {other}"));
            false
        }
    };
    let terminal = matches!(type_name.as_str(), "Choice" | "Succeed" | "Fail");
    if !terminal {
        match (&next, end) {
            (None, false) => ctx.problem("", "has neither Next nor End"),
            (Some(_), true) => ctx.problem("", "has both Next and End"),
            _ => {}
        }
    }

    let mut retry = Vec::new();
    let mut retry_names = Vec::new();
    if let Some(list) = obj.get("Retry") {
        for (i, r) in list.as_array().cloned().unwrap_or_default().iter().enumerate() {
            let field = format!("Retry[{i}]");
            let empty = Map::new();
            let r = r.as_object().unwrap_or(&empty);
            let names = error_names(r.get("ErrorEquals"), &field, &mut ctx);
            retry_names.push(names.clone());
            let max_attempts = match r.get("MaxAttempts") {
                None => DEFAULT_MAX_ATTEMPTS,
                Some(v) => v.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or_else(|| {
                    ctx.problem(&field, format!("MaxAttempts must be a non-negative integer, got {v}"));
                    DEFAULT_MAX_ATTEMPTS
                }),
            };
            let backoff_rate = number(r.get("BackoffRate"), &field, DEFAULT_BACKOFF_RATE, &mut ctx);
            if backoff_rate < 1.0 {
                ctx.problem(&field, format!("BackoffRate must be at least 1.0, got {backoff_rate}"));
            }
            retry.push(Retrier {
                error_equals: names,
                interval_seconds: number(r.get("IntervalSeconds"), &field, DEFAULT_INTERVAL_SECONDS, &mut ctx),
                max_attempts,
                backoff_rate,
                max_delay_seconds: r.get("MaxDelaySeconds").and_then(Value::as_f64),
                full_jitter: r.get("JitterStrategy").and_then(Value::as_str) == Some("FULL"),
            });
        }
    }
    check_states_all_last(&retry_names, "Retry", &mut ctx);
    let mut catch = Vec::new();
    let mut catch_names = Vec::new();
    if let Some(list) = obj.get("Catch") {
        for (i, c) in list.as_array().cloned().unwrap_or_default().iter().enumerate() {
            let field = format!("Catch[{i}]");
            let empty = Map::new();
            let c = c.as_object().unwrap_or(&empty);
            let names = error_names(c.get("ErrorEquals"), &field, &mut ctx);
            catch_names.push(names.clone());
            let next = c.get("Next").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| {
                ctx.problem(&field, "Next is required");
                String::new()
            });
            catch.push(Catcher {
                error_equals: names,
                result_path: path_field(c, "ResultPath", &mut ctx),
                assign: c.get("Assign").cloned(),
                output: c.get("Output").cloned(),
                next,
            });
        }
    }
    check_states_all_last(&catch_names, "Catch", &mut ctx);

    let jsonpath_only = ["InputPath", "OutputPath", "ResultPath", "Parameters", "ResultSelector", "ItemsPath"];
    if query_language == QueryLanguage::JsonAta {
        for key in jsonpath_only {
            if obj.contains_key(key) {
                ctx.problem(key, "is a JSONPath field; a JSONata state uses Arguments, Output and Assign");
            }
        }
    }
    if query_language == QueryLanguage::JsonPath {
        for field in ["Parameters", "ResultSelector", "ItemSelector", "Assign"] {
            if let Some(template) = obj.get(field) {
                check_template(template, field, &mut ctx);
            }
        }
    }
    let common = Common {
        next,
        end,
        input_path: path_field(obj, "InputPath", &mut ctx),
        output_path: path_field(obj, "OutputPath", &mut ctx),
        result_path: path_field(obj, "ResultPath", &mut ctx),
        parameters: obj.get("Parameters").or_else(|| obj.get("ItemSelector")).cloned(),
        result_selector: obj.get("ResultSelector").cloned(),
        assign: obj.get("Assign").cloned(),
        arguments: obj.get("Arguments").cloned(),
        output: obj.get("Output").cloned(),
        retry,
        catch,
        query_language,
    };
    let kind = match type_name.as_str() {
        "Pass" => Kind::Pass(obj.get("Result").cloned()),
        "Task" => {
            if let (Some(heartbeat), Some(timeout)) =
                (obj.get("HeartbeatSeconds").and_then(Value::as_f64), obj.get("TimeoutSeconds").and_then(Value::as_f64))
                && heartbeat >= timeout
            {
                ctx.problem("HeartbeatSeconds", format!("{heartbeat} must be below TimeoutSeconds ({timeout})"));
            }
            for field in ["TimeoutSeconds", "HeartbeatSeconds"] {
                if let Some(v) = obj.get(field)
                    && v.as_u64().is_none_or(|n| n == 0)
                    && query_language == QueryLanguage::JsonPath
                {
                    ctx.problem(field, format!("must be a positive integer, got {v}"));
                }
            }
            Kind::Task(TaskSpec {
                resource: string_field(obj, "Resource", &mut ctx).unwrap_or_else(|| {
                    ctx.problem("Resource", "required");
                    String::new()
                }),
                timeout_seconds: obj.get("TimeoutSeconds").cloned(),
                timeout_seconds_path: string_field(obj, "TimeoutSecondsPath", &mut ctx),
                heartbeat_seconds: obj.get("HeartbeatSeconds").cloned(),
                heartbeat_seconds_path: string_field(obj, "HeartbeatSecondsPath", &mut ctx),
            })
        }
        "Choice" => {
            let mut choices = Vec::new();
            match obj.get("Choices").and_then(Value::as_array) {
                Some(list) if !list.is_empty() => {
                    for (i, rule) in list.iter().enumerate() {
                        match parse_rule(rule, true, query_language) {
                            Ok(r) => choices.push(r),
                            Err(e) => ctx.problem(&format!("Choices[{i}]"), e),
                        }
                    }
                }
                _ => ctx.problem("Choices", "required: a non-empty list of rules"),
            }
            Kind::Choice { choices, default: string_field(obj, "Default", &mut ctx) }
        }
        "Wait" => {
            let given: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"].into_iter().filter(|k| obj.contains_key(*k)).collect();
            if given.len() != 1 {
                ctx.problem("", "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath");
            }
            let path = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            match given.first().copied() {
                Some("SecondsPath") => Kind::Wait(WaitFor::SecondsPath(path("SecondsPath"))),
                Some("Timestamp") => Kind::Wait(WaitFor::Timestamp(obj["Timestamp"].clone())),
                Some("TimestampPath") => Kind::Wait(WaitFor::TimestampPath(path("TimestampPath"))),
                Some(_) => Kind::Wait(WaitFor::Seconds(obj["Seconds"].clone())),
                None => Kind::Wait(WaitFor::Seconds(Value::from(0))),
            }
        }
        "Succeed" => Kind::Succeed,
        "Fail" => Kind::Fail {
            error: obj.get("Error").cloned(),
            error_path: string_field(obj, "ErrorPath", &mut ctx),
            cause: obj.get("Cause").cloned(),
            cause_path: string_field(obj, "CausePath", &mut ctx),
        },
        "Parallel" => {
            let mut branches = Vec::new();
            match obj.get("Branches").and_then(Value::as_array) {
                Some(list) => {
                    for (i, b) in list.iter().enumerate() {
                        if let Some(m) = parse_machine(b, &format!("{prefix}.Branches[{i}]"), query_language, ctx.problems) {
                            branches.push(m);
                        }
                    }
                }
                None => ctx.problem("Branches", "required: a list of branches"),
            }
            Kind::Parallel(branches)
        }
        _ => {
            let (field, processor) = match (obj.get("ItemProcessor"), obj.get("Iterator")) {
                (Some(p), _) => ("ItemProcessor", p),
                (None, Some(p)) => ("Iterator", p),
                (None, None) => {
                    ctx.problem("ItemProcessor", "required");
                    return None;
                }
            };
            if let Some(mode) = processor.get("ProcessorConfig").and_then(|c| c.get("Mode")).and_then(Value::as_str)
                && mode != "INLINE"
            {
                ctx.problem(&format!("{field}.ProcessorConfig.Mode"), format!("{mode:?} is unsupported: only INLINE Map runs locally"));
            }
            let processor = parse_machine(processor, &format!("{prefix}.{field}"), query_language, ctx.problems)?;
            let opt_string = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
            Kind::Map(MapSpec {
                processor: Box::new(processor),
                items_path: path_field(obj, "ItemsPath", &mut ctx),
                items: obj.get("Items").cloned(),
                max_concurrency: obj.get("MaxConcurrency").cloned(),
                max_concurrency_path: opt_string("MaxConcurrencyPath"),
                tolerated_failure_count: obj.get("ToleratedFailureCount").cloned(),
                tolerated_failure_percentage: obj.get("ToleratedFailurePercentage").cloned(),
                tolerated_failure_count_path: opt_string("ToleratedFailureCountPath"),
                tolerated_failure_percentage_path: opt_string("ToleratedFailurePercentagePath"),
            })
        }
    };
    Some(State { name: name.to_string(), label: name.into(), kind, common })
}

/// Checks every `.$` value of a payload template: a path or an intrinsic call that parses.
fn check_template(template: &Value, field: &str, ctx: &mut Ctx<'_>) {
    match template {
        Value::Object(map) => {
            for (key, value) in map {
                let at = format!("{field}.{key}");
                if key.ends_with(".$") {
                    match value.as_str() {
                        Some(expr) if crate::intrinsics::looks_like_call(expr) => {
                            if let Err(e) = crate::intrinsics::parse(expr) {
                                ctx.problem(&at, format!("{expr:?} is not a valid intrinsic function call: {e}"));
                            }
                        }
                        Some(expr) => {
                            if let Err(e) = crate::path::Path::parse(expr) {
                                ctx.problem(&at, format!("{expr:?} is not a valid path: {e}"));
                            }
                        }
                        None => ctx.problem(&at, format!("a '.$' field takes a path or an intrinsic function, got {value}")),
                    }
                } else {
                    check_template(value, &at, ctx);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_template(item, &format!("{field}[{i}]"), ctx);
            }
        }
        _ => {}
    }
}

fn check_references(machine: &StateMachine, prefix: &str, problems: &mut Vec<Problem>) {
    let at = |name: &str| if prefix.is_empty() { format!("States.{name}") } else { format!("{prefix}.States.{name}") };
    if !machine.states.contains_key(&machine.start_at) {
        let location = if prefix.is_empty() { "StartAt".to_string() } else { format!("{prefix}.StartAt") };
        problems.push(Problem { location, message: format!("{:?} is not a state", machine.start_at) });
    }
    let mut reachable = BTreeSet::new();
    let mut stack = vec![machine.start_at.clone()];
    while let Some(name) = stack.pop() {
        let Some(state) = machine.states.get(&name) else { continue };
        if !reachable.insert(name.clone()) {
            continue;
        }
        for target in successors(state) {
            if machine.states.contains_key(&target) {
                stack.push(target);
            }
        }
    }
    for name in &machine.order {
        let state = &machine.states[name];
        for target in successors(state) {
            if !machine.states.contains_key(&target) {
                problems.push(Problem { location: at(name), message: format!("refers to {target:?}, which is not a state") });
            }
        }
        if !reachable.contains(name) {
            problems.push(Problem { location: at(name), message: "is unreachable from StartAt".into() });
        }
        match &state.kind {
            Kind::Parallel(branches) => {
                for (i, b) in branches.iter().enumerate() {
                    check_references(b, &format!("{}.Branches[{i}]", at(name)), problems);
                }
            }
            Kind::Map(spec) => check_references(&spec.processor, &format!("{}.ItemProcessor", at(name)), problems),
            _ => {}
        }
    }
}

fn successors(state: &State) -> Vec<String> {
    let mut out: Vec<String> = state.common.next.iter().cloned().collect();
    out.extend(state.common.catch.iter().map(|c| c.next.clone()));
    if let Kind::Choice { choices, default } = &state.kind {
        out.extend(choices.iter().filter_map(|c| c.next.clone()));
        out.extend(default.iter().cloned());
    }
    out
}
