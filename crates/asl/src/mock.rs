//! Mocked runs: AWS Step Functions Local's mock configuration format
//! (<https://docs.aws.amazon.com/step-functions/latest/dg/sfn-local-mock-cfg-file.html>).
//!
//! A `MockConfigFile` names, per state machine, test cases that map Task
//! states to mocked responses; a mocked response answers each invocation of
//! its state (numbered from 0, per state and execution, retries included)
//! with a `Return` value or a `Throw` of an error and cause, by index (`"0"`)
//! or range (`"1-2"`). Mocked Tasks still run their Retry, Catch,
//! ResultSelector, ResultPath and timeouts; states a test case doesn't mock
//! go to the invoker underneath.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use crate::model::{Kind, StateMachine};
use crate::task::{TaskError, TaskInvoker};

/// What one invocation of a mocked state answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Mocked {
    /// The task's result.
    Return(Value),
    /// The task fails with this error and cause.
    Throw {
        /// Error name.
        error: String,
        /// Cause.
        cause: Option<String>,
    },
}

/// A mocked response: answers for invocation indexes `from..=to`.
type Response = Vec<(u64, u64, Mocked)>;

/// A parsed mock configuration file.
#[derive(Debug, Clone, Default)]
pub struct MockConfig {
    /// State machine name → test case name → Task state name → mocked response name.
    machines: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// Mocked response name → its answers.
    responses: BTreeMap<String, Response>,
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a serde_json::Map<String, Value>, String> {
    value.as_object().ok_or_else(|| format!("{at}: expected an object, got {value}"))
}

fn indexes(key: &str, at: &str) -> Result<(u64, u64), String> {
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("{at}: {key:?} is not an invocation index; expected a number such as \"0\" or a range such as \"1-2\""))
    };
    match key.split_once('-') {
        Some((from, to)) => {
            let (from, to) = (number(from)?, number(to)?);
            if from > to {
                return Err(format!("{at}: the range {key:?} ends before it starts"));
            }
            Ok((from, to))
        }
        None => number(key).map(|n| (n, n)),
    }
}

impl MockConfig {
    /// Parses a `MockConfigFile`; every problem names where it is.
    pub fn parse(text: &str) -> Result<MockConfig, String> {
        let root: Value = serde_json::from_str(text).map_err(|e| format!("the mock config is not JSON: {e}"))?;
        let root = object(&root, "the mock config")?;
        if let Some(unknown) = root.keys().find(|k| *k != "StateMachines" && *k != "MockedResponses") {
            return Err(format!("{unknown}: unknown field; expected StateMachines and MockedResponses"));
        }
        let mut config = MockConfig::default();
        for (name, response) in object(root.get("MockedResponses").unwrap_or(&Value::Null), "MockedResponses")? {
            let mut answers = Vec::new();
            for (key, answer) in object(response, &format!("MockedResponses.{name}"))? {
                let at = format!("MockedResponses.{name}.{key}");
                let (from, to) = indexes(key, &at)?;
                let answer = object(answer, &at)?;
                let mocked = match (answer.get("Return"), answer.get("Throw")) {
                    (Some(value), None) => Mocked::Return(value.clone()),
                    (None, Some(thrown)) => {
                        let thrown = object(thrown, &format!("{at}.Throw"))?;
                        let error = thrown.get("Error").and_then(Value::as_str).ok_or_else(|| format!("{at}.Throw.Error: required, a string"))?;
                        Mocked::Throw { error: error.to_string(), cause: thrown.get("Cause").and_then(Value::as_str).map(str::to_string) }
                    }
                    _ => return Err(format!("{at}: expected exactly one of Return and Throw")),
                };
                if let Some((a, b, _)) = answers.iter().find(|(a, b, _)| from <= *b && *a <= to) {
                    return Err(format!("{at}: invocations {from}-{to} overlap {a}-{b}"));
                }
                answers.push((from, to, mocked));
            }
            config.responses.insert(name.clone(), answers);
        }
        for (machine, spec) in object(root.get("StateMachines").unwrap_or(&Value::Null), "StateMachines")? {
            let at = format!("StateMachines.{machine}");
            let cases = object(object(spec, &at)?.get("TestCases").unwrap_or(&Value::Null), &format!("{at}.TestCases"))?;
            let mut parsed = BTreeMap::new();
            for (case, states) in cases {
                let mut mocked = BTreeMap::new();
                for (state, response) in object(states, &format!("{at}.TestCases.{case}"))? {
                    let response = response.as_str().ok_or_else(|| format!("{at}.TestCases.{case}.{state}: expected a mocked response's name"))?;
                    if !config.responses.contains_key(response) {
                        return Err(format!(
                            "{at}.TestCases.{case}.{state}: {response:?} is not in MockedResponses (it has {})",
                            config.responses.keys().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    mocked.insert(state.clone(), response.to_string());
                }
                parsed.insert(case.clone(), mocked);
            }
            config.machines.insert(machine.clone(), parsed);
        }
        Ok(config)
    }

    /// The invoker for test case `case` of state machine `machine` (whose definition is
    /// `definition`), over `inner` for the states the case doesn't mock.
    pub fn test_case(&self, machine: &str, case: &str, definition: &StateMachine, inner: Arc<dyn TaskInvoker>) -> Result<MockedTasks, String> {
        fn names<V>(map: &BTreeMap<String, V>) -> String {
            map.keys().cloned().collect::<Vec<_>>().join(", ")
        }
        let cases = self
            .machines
            .get(machine)
            .ok_or_else(|| format!("state machine {machine:?} is not in the mock config's StateMachines (it has {})", names(&self.machines)))?;
        let states = cases.get(case).ok_or_else(|| format!("test case {case:?} is not a test case of {machine} (it has {})", names(cases)))?;
        let mut tasks = Vec::new();
        task_states(definition, &mut tasks);
        let mut mocked = HashMap::new();
        for (state, response) in states {
            if !tasks.contains(state) {
                return Err(format!("test case {case}: {state:?} is not a Task state of {machine} (its Task states: {})", tasks.join(", ")));
            }
            mocked.insert(state.clone(), (response.clone(), self.responses.get(response).cloned().unwrap_or_default()));
        }
        Ok(MockedTasks { mocked, invocations: Mutex::new(HashMap::new()), inner })
    }
}

/// Every Task state's name, Map and Parallel insides included.
fn task_states(machine: &StateMachine, out: &mut Vec<String>) {
    for name in &machine.order {
        let Some(state) = machine.states.get(name) else { continue };
        match &state.kind {
            Kind::Task(_) => out.push(name.clone()),
            Kind::Parallel(branches) => branches.iter().for_each(|b| task_states(b, out)),
            Kind::Map(spec) => task_states(&spec.processor, out),
            _ => {}
        }
    }
}

/// Answers mocked Task states from their mocked responses, the rest through the inner invoker.
pub struct MockedTasks {
    /// State → (response name, its answers).
    mocked: HashMap<String, (String, Response)>,
    /// Invocations so far, per state.
    invocations: Mutex<HashMap<String, u64>>,
    inner: Arc<dyn TaskInvoker>,
}

#[async_trait]
impl TaskInvoker for MockedTasks {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        self.inner.invoke(resource, input).await
    }

    async fn invoke_state(&self, state: &str, resource: &str, input: Value) -> Result<Value, TaskError> {
        let Some((name, answers)) = self.mocked.get(state) else {
            return self.inner.invoke_state(state, resource, input).await;
        };
        let index = {
            let mut invocations = self.invocations.lock().unwrap_or_else(|p| p.into_inner());
            let count = invocations.entry(state.to_string()).or_insert(0);
            *count += 1;
            *count - 1
        };
        match answers.iter().find(|(from, to, _)| (*from..=*to).contains(&index)).map(|(_, _, m)| m) {
            Some(Mocked::Return(value)) => Ok(value.clone()),
            Some(Mocked::Throw { error, cause }) => Err(TaskError { error: error.clone(), cause: cause.clone() }),
            None => Err(TaskError {
                error: "States.Runtime".into(),
                cause: Some(format!("the mocked response {name} of {state} has no answer for invocation {index} (they are numbered from 0)")),
            }),
        }
    }
}
