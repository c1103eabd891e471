//! From an execution's history events to what an operator watches: the
//! current state, instances replaced against the total, healthy counts
//! against the floor, and the error and cause at the end. Pure: the AWS
//! poller and the tests feed it events, and it says what changed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// One history event, in the fields following needs (from GetExecutionHistory).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    /// The event id (1-based, increasing).
    pub id: i64,
    /// The event type, e.g. `TaskStateEntered`.
    pub kind: String,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// The state's name, for state events.
    pub state: Option<String>,
    /// The state's input or output, or the task's or execution's output (JSON text).
    pub payload: Option<String>,
    /// The error name, for failure events.
    pub error: Option<String>,
    /// The cause, for failure events.
    pub cause: Option<String>,
}

impl HistoryEvent {
    /// Reads an event as the AWS CLI and API print it
    /// (`{"id", "type", "timestamp", "stateEnteredEventDetails": {...}, ...}`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn from_aws_json(event: &Value) -> Option<HistoryEvent> {
        let kind = event["type"].as_str()?.to_string();
        let timestamp = match &event["timestamp"] {
            Value::String(text) => DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc),
            Value::Number(n) => DateTime::from_timestamp_millis((n.as_f64()? * 1000.0) as i64)?,
            _ => return None,
        };
        let details = event
            .as_object()?
            .iter()
            .find(|(key, value)| key.ends_with("EventDetails") && value.is_object())
            .map(|(_, value)| value.clone())
            .unwrap_or(Value::Null);
        let text = |key: &str| details[key].as_str().map(str::to_string);
        Some(HistoryEvent {
            id: event["id"].as_i64()?,
            kind,
            timestamp,
            state: text("name"),
            payload: text("output").or_else(|| text("input")),
            error: text("error"),
            cause: text("cause"),
        })
    }
}

/// An execution's status, as DescribeExecution names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// Still going.
    Running,
    /// Done.
    Succeeded,
    /// Failed.
    Failed,
    /// Ran past its timeout.
    TimedOut,
    /// Stopped by someone.
    Aborted,
}

impl ExecutionStatus {
    /// Whether the execution has ended.
    pub fn is_final(self) -> bool {
        self != ExecutionStatus::Running
    }

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
        }
    }
}

pub use crate::stepline::Rollout;

/// What an event changed, for the display.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The execution started.
    Started,
    /// A state was entered.
    Entered(String),
    /// A deploy step reported its counts.
    Rollout(Rollout),
    /// A nested execution started (release, rebake).
    Nested(String),
    /// The execution ended.
    Finished(ExecutionStatus),
}

/// What is known of an execution so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Follow {
    /// Its status.
    pub status: ExecutionStatus,
    /// When it started (the first event).
    pub started_at: Option<DateTime<Utc>>,
    /// The latest event's time.
    pub updated_at: Option<DateTime<Utc>>,
    /// The state it is in (or ended in).
    pub state: Option<String>,
    /// The latest deploy step's counts.
    pub rollout: Option<Rollout>,
    /// Nested executions it started.
    pub nested: Vec<String>,
    /// Its output, on success.
    pub output: Option<Value>,
    /// The error name, on failure.
    pub error: Option<String>,
    /// The cause, on failure.
    pub cause: Option<String>,
    /// The last event applied.
    pub last_event_id: i64,
    /// The execution input's environment (for the commands a pause prints).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// States entered so far: a reconcile loop re-entering one is not news (its counts are).
    #[serde(skip)]
    entered: std::collections::BTreeSet<String>,
}

impl Default for Follow {
    fn default() -> Self {
        Follow {
            status: ExecutionStatus::Running,
            started_at: None,
            updated_at: None,
            state: None,
            rollout: None,
            nested: Vec::new(),
            output: None,
            error: None,
            cause: None,
            last_event_id: 0,
            environment: None,
            entered: std::collections::BTreeSet::new(),
        }
    }
}

impl Follow {
    /// Applies events in id order, skipping any already applied; returns what changed.
    pub fn apply_all(&mut self, events: &[HistoryEvent]) -> Vec<Update> {
        let mut sorted: Vec<&HistoryEvent> = events.iter().filter(|e| e.id > self.last_event_id).collect();
        sorted.sort_by_key(|e| e.id);
        sorted.dedup_by_key(|e| e.id);
        sorted.into_iter().filter_map(|e| self.apply(e)).collect()
    }

    /// Applies one event.
    pub fn apply(&mut self, event: &HistoryEvent) -> Option<Update> {
        if event.id <= self.last_event_id {
            return None;
        }
        self.last_event_id = event.id;
        self.updated_at = Some(event.timestamp);
        let payload = || event.payload.as_deref().and_then(|text| serde_json::from_str::<Value>(text).ok());
        let kind = event.kind.as_str();
        match kind {
            "ExecutionStarted" => {
                self.started_at = Some(event.timestamp);
                self.environment = payload().and_then(|input| input["environment"].as_str().map(str::to_string));
                Some(Update::Started)
            }
            "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionTimedOut" | "ExecutionAborted" => {
                self.status = match kind {
                    "ExecutionSucceeded" => ExecutionStatus::Succeeded,
                    "ExecutionFailed" => ExecutionStatus::Failed,
                    "ExecutionTimedOut" => ExecutionStatus::TimedOut,
                    _ => ExecutionStatus::Aborted,
                };
                self.output = payload();
                self.error = event.error.clone().or(self.error.take());
                self.cause = event.cause.clone().or(self.cause.take());
                Some(Update::Finished(self.status))
            }
            _ if kind.ends_with("StateEntered") => {
                let state = event.state.clone()?;
                self.state = Some(state.clone());
                // A line when something changes: the loop's second Replace or Wait says nothing new,
                // but a checkpoint's pause says what to run each time.
                (self.entered.insert(state.clone()) || state == "Checkpoint").then_some(Update::Entered(state))
            }
            _ if kind.ends_with("StateExited") => {
                let rollout = Rollout::from_payload(&payload()?, event.timestamp.timestamp())?;
                // Nothing new to say: a Choice or Wait passing the record on, or a step whose line
                // is the last one's (a boot's seconds ticking by).
                if self.rollout.as_ref().map(Rollout::summary) == Some(rollout.summary()) {
                    return None;
                }
                self.rollout = Some(rollout.clone());
                Some(Update::Rollout(rollout))
            }
            "TaskSubmitted" => {
                let arn = payload()?["ExecutionArn"].as_str()?.to_string();
                self.nested.push(arn.clone());
                Some(Update::Nested(arn))
            }
            _ => None,
        }
    }

    /// Seconds from the start to the latest event.
    pub fn elapsed_seconds(&self) -> i64 {
        match (self.started_at, self.updated_at) {
            (Some(start), Some(now)) => (now - start).num_seconds(),
            _ => 0,
        }
    }

    /// The plain line for an update (no terminal needed), or none.
    pub fn line(&self, update: &Update) -> Option<String> {
        let elapsed = self.elapsed_seconds();
        let stamp = crate::stepline::stamp(elapsed);
        Some(match update {
            Update::Started => format!("{stamp} started"),
            // A checkpoint's pause: what to run, as `status` and the notification say.
            Update::Entered(state) if state == "Checkpoint" => {
                let env = self.environment.as_deref().unwrap_or("ENV");
                format!(
                    "{stamp} Checkpoint: paused; go on: stepdeploy approve {env}; stop: stepdeploy reject {env} --reason TEXT (`stepdeploy status {env}` shows the token for the AWS CLI)"
                )
            }
            Update::Entered(state) => format!("{stamp} {state}"),
            Update::Rollout(rollout) => format!("{stamp}   {}", rollout.summary()),
            Update::Nested(arn) => format!("{stamp}   nested execution {arn}"),
            Update::Finished(status) => {
                let mut line = format!("{stamp} {}", status.as_str());
                if let Some(error) = &self.error {
                    line += &format!(": {error}");
                }
                if let Some(cause) = &self.cause {
                    line += &format!("\n{}", readable_cause(cause));
                }
                line
            }
        })
    }
}

/// A Lambda failure's cause is JSON (`{"errorMessage", "errorType", ...}`);
/// an operator wants the message.
pub fn readable_cause(cause: &str) -> String {
    // A cause the state machine extended (`{error document} (what else happened)`): the document's
    // message, then the rest.
    let mut values = serde_json::Deserializer::from_str(cause).into_iter::<Value>();
    if let Some(Ok(Value::Object(_))) = values.next() {
        let (head, rest) = cause.split_at(values.byte_offset());
        if !rest.trim().is_empty() {
            return format!("{} {}", readable_cause(head), rest.trim());
        }
    }
    match serde_json::from_str::<Value>(cause) {
        Ok(value) => match value["errorMessage"].as_str() {
            Some(message) => message.to_string(),
            None => match value["Cause"].as_str() {
                // A nested execution's failure wraps the child's cause.
                Some(inner) => readable_cause(inner),
                None => cause.to_string(),
            },
        },
        Err(_) => cause.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_the_state_machine_extended_reads_as_the_message_then_the_rest() {
        let cause = r#"{"errorMessage":"migrate failed on i-1","errorType":"StepDeploy.CommandFailed"} (The maintenance page stays up.)"#;
        assert_eq!(super::readable_cause(cause), "migrate failed on i-1 (The maintenance page stays up.)");
        assert_eq!(super::readable_cause("plain text (with parentheses)"), "plain text (with parentheses)");
    }

    use std::sync::Arc;

    use serde_json::json;
    use stepdeploy_local::{SERIAL_DEPLOY, demo, demo_input, run};
    use stepdeploy_sim::SimSettings;

    use super::*;

    /// An engine event in the shape GetExecutionHistory gives it.
    fn as_aws(event: &stepdeploy_asl::Event) -> Value {
        let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        let mut out = json!({"id": event.id, "type": event.kind, "timestamp": event.timestamp.to_rfc3339(), "previousEventId": 0});
        let kind = event.kind;
        let details = if let Some(state) = &event.state {
            if kind.ends_with("Entered") {
                ("stateEnteredEventDetails".to_string(), json!({"name": &**state, "input": text(&event.details)}))
            } else {
                ("stateExitedEventDetails".to_string(), json!({"name": &**state, "output": text(&event.details)}))
            }
        } else {
            let mut d = event.details.clone();
            for key in ["input", "output"] {
                if let Some(v) = d.get(key).cloned() {
                    d[key] = json!(text(&v));
                }
            }
            let mut name = kind.to_string();
            name[..1].make_ascii_lowercase();
            (format!("{name}EventDetails"), d)
        };
        out[details.0.as_str()] = details.1;
        out
    }

    fn local_serial(instances: u32, unhealthy_new: bool) -> (Vec<HistoryEvent>, stepdeploy_local::Summary) {
        let (fleet, config) = demo(3, instances, SimSettings::default());
        if unhealthy_new {
            fleet.sim.make_image_unhealthy(&fleet.new.image_id);
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (execution, summary) = runtime.block_on(run(&fleet.sim, config, SERIAL_DEPLOY, demo_input(), &fleet.group, Arc::new(|_| {})));
        let events = execution.history.iter().map(|e| HistoryEvent::from_aws_json(&as_aws(e)).unwrap()).collect();
        (events, summary)
    }

    #[test]
    fn a_serial_deploy_history_shows_states_counts_and_success() {
        let (events, summary) = local_serial(6, false);
        assert_eq!(summary.status, "SUCCEEDED");
        let mut follow = Follow::default();
        let updates = follow.apply_all(&events);
        assert_eq!(follow.status, ExecutionStatus::Succeeded);
        let rollout = follow.rollout.clone().expect("the replace steps carry counts");
        assert_eq!((rollout.replaced, rollout.total, rollout.rolling_back), (6, 6, false));
        let counts: Vec<&Rollout> = updates.iter().filter_map(|u| if let Update::Rollout(r) = u { Some(r) } else { None }).collect();
        assert!(counts.len() >= 3, "one line per changed reconcile step: {counts:?}");
        assert!(counts.iter().all(|r| r.healthy >= r.min_healthy), "the floor holds in every reported step");
        assert!(counts.windows(2).all(|w| w[0] != w[1]), "unchanged counts are not repeated");
        let lines: Vec<String> = updates.iter().filter_map(|u| follow.line(u)).collect();
        let text = lines.join("\n");
        assert!(text.contains("] Prepare") && text.contains("] Replace"), "{text}");
        // Each state's name once: the reconcile loop's repeats print nothing unless the counts change.
        let states: Vec<&Update> = updates.iter().filter(|u| matches!(u, Update::Entered(s) if s != "Checkpoint")).collect();
        let distinct: std::collections::BTreeSet<String> =
            states.iter().filter_map(|u| if let Update::Entered(s) = u { Some(s.clone()) } else { None }).collect();
        assert_eq!(states.len(), distinct.len(), "{text}");
        let entries = events.iter().filter(|e| e.kind.ends_with("StateEntered") && e.state.as_deref() == Some("Replace")).count();
        assert!(entries > 1, "the history enters Replace {entries} times; the display says so once");
        assert!(text.contains("deploying: 6/6 on target (6 healthy)"), "{text}");
        assert!(text.contains("; not healthy yet: 3 lifecycle Pending; next: wait"), "a waiting step says what it waits for: {text}");
        assert!(lines.last().unwrap().contains("SUCCEEDED"), "{text}");
        assert_eq!(follow.error, None);
        // The demo pauses at 50 %: the line says what to run, for the input's environment.
        assert!(text.contains("] Checkpoint: paused; go on: stepdeploy approve demo; stop: stepdeploy reject demo --reason TEXT"), "{text}");
    }

    #[test]
    fn a_rolled_back_deploy_reports_the_rollback_and_the_readable_cause() {
        let (events, summary) = local_serial(4, true);
        assert_eq!(summary.status, "FAILED");
        let mut follow = Follow::default();
        let updates = follow.apply_all(&events);
        assert_eq!(follow.status, ExecutionStatus::Failed);
        assert_eq!(follow.error.as_deref(), Some("StepDeploy.RolloutFailed"));
        assert!(updates.iter().any(|u| matches!(u, Update::Rollout(r) if r.rolling_back)), "the rollback's steps are shown as such");
        let last = follow.line(updates.last().unwrap()).unwrap();
        assert!(last.contains("FAILED: StepDeploy.RolloutFailed"), "{last}");
        assert!(!last.contains("errorType"), "the cause is the message, not Lambda's JSON: {last}");
        assert!(last.contains("not healthy"), "{last}");
    }

    #[test]
    fn polling_in_pieces_out_of_order_and_with_repeats_ends_where_one_read_does() {
        let (events, _) = local_serial(6, false);
        let mut whole = Follow::default();
        let all = whole.apply_all(&events);
        let mut pieces = Follow::default();
        let mut seen = Vec::new();
        let mut start = 0;
        for (i, size) in [1usize, 7, 3, 40, 2, 19, 11].iter().cycle().enumerate() {
            if start >= events.len() {
                break;
            }
            // Each poll re-reads a few old events, newest first (reverse_order).
            let from = start.saturating_sub(i % 3);
            let end = (start + size).min(events.len());
            let mut page: Vec<HistoryEvent> = events[from..end].to_vec();
            page.reverse();
            seen.extend(pieces.apply_all(&page));
            start = end;
        }
        assert_eq!(pieces, whole);
        assert_eq!(seen, all);
    }

    #[test]
    fn an_aws_format_release_history_names_the_nested_executions_and_unwraps_the_cause() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/release-failed.history.json")).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let events: Vec<HistoryEvent> = value["events"].as_array().unwrap().iter().map(|e| HistoryEvent::from_aws_json(e).unwrap()).collect();
        let mut follow = Follow::default();
        let updates = follow.apply_all(&events);
        assert_eq!(follow.nested.len(), 2);
        assert!(follow.nested[1].ends_with(":staging-release-deploy"));
        assert_eq!(follow.state.as_deref(), Some("DeployFailed"));
        assert_eq!(follow.elapsed_seconds(), 31 * 60 + 2);
        let last = follow.line(updates.last().unwrap()).unwrap();
        assert_eq!(
            last,
            "[31:02] FAILED: StepDeploy.RolloutFailed\ni-0a1 not healthy 600 s after launch: unhealthy in target group web; rolled back to version 6"
        );
        let epoch = HistoryEvent::from_aws_json(&json!({"id": 1, "type": "ExecutionStarted", "timestamp": 1763632800.5})).unwrap();
        assert_eq!(epoch.timestamp.timestamp_millis(), 1_763_632_800_500, "the CLI's epoch-seconds form reads too");
        assert_eq!(HistoryEvent::from_aws_json(&json!({"type": "ExecutionStarted"})), None, "no id, no event");
    }

    /// Recorded with `aws stepfunctions get-execution-history` (AWS CLI 1.46:
    /// epoch-second timestamps) from moto's interpreter running a Pass/Choice/
    /// Wait/Fail stand-in of a serial deploy that rolls back.
    #[test]
    fn a_recorded_cli_history_of_a_rollback_reads_the_same_way() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/serial-rollback.moto.history.json")).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let events: Vec<HistoryEvent> = value["events"].as_array().unwrap().iter().map(|e| HistoryEvent::from_aws_json(e).unwrap()).collect();
        assert_eq!(events.len(), 15);
        let mut follow = Follow::default();
        let updates = follow.apply_all(&events);
        let lines: Vec<String> = updates.iter().filter_map(|u| follow.line(u)).collect();
        let rollouts: Vec<&Rollout> = updates.iter().filter_map(|u| if let Update::Rollout(r) = u { Some(r) } else { None }).collect();
        assert_eq!(rollouts.len(), 3, "Replace, ReplaceAgain, BeginRollback; the Choice passing the record on adds none: {lines:#?}");
        assert!(rollouts[2].rolling_back);
        assert!(
            lines.iter().any(|l| l.ends_with(
                "deploying: 1/4 on target (0 healthy), 4 old (4 healthy); healthy 4 (floor 3), live 5 (ceiling 5); not healthy yet: 1 lifecycle Pending; next: wait"
            )),
            "{lines:#?}"
        );
        assert_eq!(follow.status, ExecutionStatus::Failed);
        assert_eq!(follow.state.as_deref(), Some("DeployFailed"));
        assert!(follow.elapsed_seconds() >= 1, "the Wait state took a second");
        let last = lines.last().unwrap();
        assert!(
            last.ends_with(
                "FAILED: StepDeploy.RolloutFailed\ni-0new1 not healthy 600 s after launch: unhealthy in target group web; rolled back to version 1"
            ),
            "{last}"
        );
    }

    #[test]
    fn counts_are_found_in_the_record_or_one_level_down_and_nowhere_else() {
        let record = json!({"rolling_back": true, "step": {"next": "wait", "progress": {"new": 1, "new_healthy": 1, "old": 3, "old_healthy": 3, "standby": 0, "goal": 4, "min_healthy": 3, "max_total": 5},
                      "not_healthy": [{"id": "i-1", "on_target": false, "healthy": false, "reason": "draining"}]}});
        let direct = Rollout::from_payload(&record, 0).unwrap();
        assert_eq!(Rollout::from_payload(&json!({"environment": "s", "deployment": record}), 0), Some(direct.clone()));
        assert_eq!(
            direct.summary(),
            "rolling back: 1/4 on target (1 healthy), 3 old (3 healthy); healthy 4 (floor 3), live 4 (ceiling 5); not healthy yet: 1 draining; next: wait"
        );
        assert_eq!(direct.waiting_on, ["i-1: draining"]);
        assert_eq!(Rollout::from_payload(&json!({"a": {"b": record}}), 0), None, "two levels down is someone else's data");
        assert_eq!(Rollout::from_payload(&json!({"step": {"progress": {"new": 1}}}), 0), None, "partial counts are not shown");
    }

    #[test]
    fn old_instances_waiting_in_standby_show_beside_the_bake() {
        let record = json!({"step": {"next": "wait", "bake_remaining_seconds": 45, "progress": {"new": 4, "new_healthy": 4, "old": 0, "old_healthy": 0,
                      "standby": 4, "kept_in_standby": 4, "goal": 4, "min_healthy": 4, "max_total": 8}, "not_healthy": []}});
        let rollout = Rollout::from_payload(&record, 0).unwrap();
        assert_eq!(
            rollout.summary(),
            "baking (45 s left): 4/4 on target (4 healthy), 0 old (0 healthy); healthy 4 (floor 4), live 4 + 4 old in Standby (ceiling 8); next: wait"
        );
    }

    #[test]
    fn the_readmes_sample_of_follow_is_what_it_prints_for_the_demo_deploy() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        let after = readme.split("Elsewhere (CI, pipes) it prints").nth(1).expect("the README's follow section");
        let block = after.split("```").nth(1).expect("its sample output");
        let sample: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty() && l.trim() != "...").collect();
        let (events, _) = local_serial(6, false);
        let mut follow = Follow::default();
        // As `follow` prints them: each line when its event arrives.
        let mut printed: Vec<String> = Vec::new();
        for event in &events {
            if let Some(update) = follow.apply(event) {
                printed.extend(follow.line(&update));
            }
        }
        // Every sample line, in order (the sample leaves lines out where it says `...`).
        let mut rest = printed.iter();
        for line in &sample {
            assert!(rest.any(|p| p == line), "README line {line:?} is not printed (in this order):\n{}", printed.join("\n"));
        }
        assert!(sample.len() >= 6, "{sample:?}");
    }

    #[test]
    fn the_deadline_shows_in_its_last_quarter_while_the_step_waits() {
        let record = |next: &str| {
            json!({"rollout": {"started_at": 1000, "deadline": 1600}, "step": {"next": next, "progress": {"new": 2, "new_healthy": 0, "old": 2,
                   "old_healthy": 2, "goal": 2, "min_healthy": 2, "max_total": 4}, "not_healthy": [{"id": "i-1", "reason": "warming up (5 s of 30 s)"}, {"id": "i-2", "reason": "warming up (9 s of 30 s)"}]}})
        };
        // 600 s in all: the last quarter is the last 150 s.
        assert_eq!(Rollout::from_payload(&record("wait"), 1450).unwrap().deadline_in, None, "150 s left is not yet inside");
        let near = Rollout::from_payload(&record("wait"), 1451).unwrap();
        assert!(near.summary().ends_with("; not healthy yet: 2 warming up; 149 s to the deadline; next: wait"), "{}", near.summary());
        assert_eq!(Rollout::from_payload(&record("done"), 1590).unwrap().deadline_in, None, "a step that doesn't wait has no deadline to show");
    }
}
