//! Parsing a definition: every state, with every problem collected.

use serde_json::{Map, Value};

use super::check::{check_references, check_template};
use super::fields::{COMMON_FIELDS, Ctx, allowed_fields, check_states_all_last, error_names, number, path_field, string_field};
use super::language::QueryLanguage;
use super::types::*;
use crate::choice::parse_rule;

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
            if let Some(v) = obj.get("MaxConcurrency")
                && v.as_u64().is_none()
                && query_language == QueryLanguage::JsonPath
            {
                ctx.problem("MaxConcurrency", format!("must be a non-negative integer (0: no limit), got {v}"));
            }
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
