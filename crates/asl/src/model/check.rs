//! Checks across a parsed definition: payload templates and state references.

use std::collections::BTreeSet;

use serde_json::Value;

use super::fields::Ctx;
use super::types::{Kind, Problem, State, StateMachine};

/// Checks every `.$` value of a payload template: a path or an intrinsic call that parses.
pub(super) fn check_template(template: &Value, field: &str, ctx: &mut Ctx<'_>) {
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

pub(super) fn check_references(machine: &StateMachine, prefix: &str, problems: &mut Vec<Problem>) {
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
