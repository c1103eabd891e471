//! What one execution shares: its clock, invoker, history and parse caches,
//! and the [`Branches`] port through which Map and Parallel run their
//! machines without depending on the driver above them.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::clock::Clock;
use crate::error::StatesError;
use crate::execution::Event;
use crate::intrinsics;
use crate::model::{Common, State, StateMachine};
use crate::path::Path;
use crate::task::TaskInvoker;

/// Variables in scope.
pub type Vars = HashMap<String, Value>;

/// The input of a scope that has none yet.
pub(crate) static NULL: Value = Value::Null;

/// What a state decided; `Next` borrows the name from the definition.
pub(crate) enum Step<'m> {
    /// Go on to the named state with this input.
    Next(&'m str, Value),
    /// The machine ends with this output.
    End(Value),
}

impl<'m> Step<'m> {
    /// Where a state goes once it has its output: its `Next`, or the end.
    pub(crate) fn after(common: &'m Common, output: Value) -> Step<'m> {
        match &common.next {
            Some(next) if !common.end => Step::Next(next.as_str(), output),
            _ => Step::End(output),
        }
    }
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
    /// A Map state's attempt failed: MapStateFailed is recorded only if no retrier runs it
    /// again (AWS-recorded histories show one MapStateFailed, after the last attempt).
    pub map_failed: std::sync::atomic::AtomicBool,
    /// The `.waitForTaskToken` tasks' tokens.
    pub tokens: crate::tokens::TaskTokens,
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
pub(crate) fn event_names(type_name: &str) -> (&'static str, &'static str) {
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

pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Run {
    /// A path, parsed on first use.
    pub(crate) fn path(&self, text: &str) -> Result<Arc<Path>, String> {
        cached(&self.parsed_paths, text, Path::parse)
    }

    /// An intrinsic call, parsed on first use.
    pub(crate) fn call(&self, text: &str) -> Result<Arc<intrinsics::Expr>, String> {
        cached(&self.parsed_calls, text, intrinsics::parse)
    }

    /// Records an execution-level event.
    pub fn event(&self, kind: &'static str, details: Value) -> u64 {
        self.push(kind, None, details)
    }

    /// Marks the current Map attempt failed (see [`Run::map_failed`]).
    pub(crate) fn defer_map_failed(&self) {
        self.map_failed.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// After a state's attempt failed and no retrier takes it: the deferred MapStateFailed, if any.
    pub(crate) fn finish_failed_attempt(&self, final_attempt: bool) {
        if self.map_failed.swap(false, std::sync::atomic::Ordering::Relaxed) && final_attempt {
            self.event("MapStateFailed", serde_json::json!({}));
        }
    }

    /// Puts the events recorded since `mark` (by concurrent lanes) in time order, keeping the
    /// order of events at the same time, drops those after `cutoff` (what AWS would have
    /// stopped), and numbers them again.
    pub(crate) fn interleave_since(&self, mark: usize, cutoff: Option<DateTime<Utc>>) {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let at = mark.min(history.len());
        let tail = &mut history[at..];
        if !tail.is_sorted_by_key(|e| e.timestamp) {
            // Each lane's events are in order already; the stable sort merges those runs.
            tail.sort_by_key(|e| e.timestamp);
            for (n, event) in tail.iter_mut().enumerate() {
                event.id = (at + n + 1) as u64;
            }
        }
        if let Some(cutoff) = cutoff {
            let keep = at + history[at..].partition_point(|e| e.timestamp <= cutoff);
            history.truncate(keep);
        }
    }

    /// The execution's name (`$$.Execution.Name`).
    pub(crate) fn execution_name(&self) -> &str {
        self.execution["Name"].as_str().unwrap_or("execution")
    }

    /// Events so far.
    pub(crate) fn history_len(&self) -> usize {
        self.history.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub(crate) fn state_event(&self, kind: &'static str, state: &State, data: Value) -> u64 {
        self.push(kind, Some(state.label.clone()), data)
    }

    fn push(&self, kind: &'static str, state: Option<Arc<str>>, details: Value) -> u64 {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let id = history.len() as u64 + 1;
        history.push(Event { id, kind, timestamp: self.clock.now(), state, details });
        id
    }
}

/// Runs a branch's or an iteration's machine with its own variables. The
/// driver implements it; Map and Parallel call it.
pub(crate) trait Branches {
    /// Runs `machine` on `input` until it ends or fails.
    fn branch<'a>(&'a self, machine: &'a StateMachine, input: Value, vars: &'a mut Vars) -> BoxFuture<'a, Result<Value, StatesError>>;
}
