//! A deploy's reconcile step as one line, the same in `stepdeploy local` and when following an
//! execution on AWS: both read it from the record the step returns (locally the record itself,
//! on AWS the state's output in the history), so both print what AWS would report.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// A reconcile step's counts, read from the record a deploy step returns; all from one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollout {
    /// Healthy instances on the new version (replaced so far).
    pub replaced: u32,
    /// How many the rollout ends with.
    pub total: u32,
    /// Healthy instances, both versions.
    pub healthy: u32,
    /// The healthy floor.
    pub min_healthy: u32,
    /// Live instances on the new version.
    pub new: u32,
    /// Live instances on the old version.
    pub old: u32,
    /// Healthy instances on the old version.
    pub old_healthy: u32,
    /// Live instances of a version nothing reports yet.
    pub unknown: u32,
    /// Whether this is the rollback.
    pub rolling_back: bool,
    /// `wait`, `done`, `pause` or `failed`.
    pub next: String,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Instances not healthy yet, with why (`i-1: warming up (5 s of 30 s)`).
    pub waiting_on: Vec<String>,
    /// Alarms read by the step, all OK (0: none watched, or a rollback, which doesn't read them).
    pub alarms_ok: u32,
    /// Seconds of bake left, while baking.
    pub bake_remaining_seconds: Option<u64>,
    /// The live ceiling.
    pub max_total: u32,
    /// Old instances waiting in Standby for an instant rollback.
    pub kept_in_standby: u32,
    /// Seconds to the rollout's deadline, once it is near (its last quarter) and the step waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_in: Option<i64>,
}

impl Rollout {
    /// Finds a deploy step's progress in a state's output (the record itself, or the record
    /// under one top-level key, `$.deployment`), as of `now` (the event's or the sim's time).
    pub fn from_payload(payload: &Value, now: i64) -> Option<Rollout> {
        let record = if payload["step"]["progress"].is_object() {
            payload
        } else {
            payload.as_object()?.values().find(|v| v["step"]["progress"].is_object())?
        };
        let step = &record["step"];
        let progress = &step["progress"];
        let count = |key: &str| progress[key].as_u64().and_then(|n| u32::try_from(n).ok());
        let waiting_on = step["not_healthy"]
            .as_array()
            .map(|list| {
                list.iter().filter_map(|i| Some(format!("{}: {}", i["id"].as_str()?, i["reason"].as_str().unwrap_or("not healthy")))).collect()
            })
            .unwrap_or_default();
        let next = step["next"].as_str().unwrap_or_default().to_string();
        let (started, deadline) = (record["rollout"]["started_at"].as_i64(), record["rollout"]["deadline"].as_i64());
        let deadline_in = match (started, deadline) {
            (Some(started), Some(deadline)) if next == "wait" && deadline - now < (deadline - started) / 4 => Some(deadline - now),
            _ => None,
        };
        Some(Rollout {
            replaced: count("new_healthy")?,
            total: count("goal")?,
            healthy: count("new_healthy")? + count("old_healthy")?,
            min_healthy: count("min_healthy")?,
            new: count("new")?,
            old: count("old")?,
            old_healthy: count("old_healthy")?,
            unknown: count("unknown").unwrap_or(0),
            rolling_back: record["rolling_back"].as_bool().unwrap_or(false),
            next,
            reason: step["reason"].as_str().map(str::to_string),
            waiting_on,
            alarms_ok: step["alarms_ok"].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            bake_remaining_seconds: step["bake_remaining_seconds"].as_u64(),
            max_total: count("max_total").unwrap_or(0),
            kept_in_standby: count("kept_in_standby").unwrap_or(0),
            deadline_in,
        })
    }

    /// The line, e.g. `deploying: 2/6 on target (2 healthy), 6 old (6 healthy); healthy 8 (floor
    /// 5), live 8 (ceiling 12); not healthy yet: 2 lifecycle Pending; next: wait`. Why
    /// instances don't count is grouped by reason, without the seconds that change every poll,
    /// so that a line repeats only when nothing in it changed.
    pub fn summary(&self) -> String {
        let phase = match (self.rolling_back, self.bake_remaining_seconds) {
            (true, _) => "rolling back".to_string(),
            (false, Some(left)) => format!("baking ({left} s left)"),
            (false, None) => "deploying".to_string(),
        };
        let kept = if self.kept_in_standby > 0 { format!(" + {} old in Standby", self.kept_in_standby) } else { String::new() };
        let alarms = if self.alarms_ok > 0 { format!("; {} alarm(s) OK", self.alarms_ok) } else { String::new() };
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for waiting in &self.waiting_on {
            let reason = waiting.split_once(": ").map_or("not healthy", |(_, r)| r);
            *reasons.entry(reason.split(" (").next().unwrap_or(reason)).or_default() += 1;
        }
        let waiting = if reasons.is_empty() || self.next != "wait" {
            String::new()
        } else {
            let each: Vec<String> = reasons.iter().take(3).map(|(reason, n)| format!("{n} {reason}")).collect();
            format!("; not healthy yet: {}", each.join(", "))
        };
        let deadline = self.deadline_in.map(|left| format!("; {left} s to the deadline")).unwrap_or_default();
        format!(
            "{phase}: {}/{} on target ({} healthy), {} old ({} healthy); healthy {} (floor {}), live {}{kept} (ceiling {}){alarms}{waiting}{deadline}; next: {}{}",
            self.new,
            self.total,
            self.replaced,
            self.old,
            self.old_healthy,
            self.healthy,
            self.min_healthy,
            self.new + self.old + self.unknown,
            self.max_total,
            self.next,
            self.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
        )
    }
}

/// The time stamp of every progress line: minutes and seconds since the start.
pub fn stamp(seconds: i64) -> String {
    format!("[{:02}:{:02}]", seconds / 60, seconds % 60)
}
