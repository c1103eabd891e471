//! Event sequences against AWS-recorded histories: each fixture in
//! `fixtures/history/` holds the event types of one recorded execution (from
//! the LocalStack snapshot its conformance case names) and the engine must
//! record the same ones in the same order, which is what AWS's 25,000-event
//! quota counts.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::TimeZone;
use serde_json::Value;
use stepdeploy_asl::{Definition, Engine, NoTasks, VirtualClock};

fn cases_dir() -> PathBuf {
    let dir = std::env::var("STEPDEPLOY_ASL_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("STEPDEPLOY_SHARED_DIR").map(|d| PathBuf::from(d).join("asl-conformance/cases")))
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/asl-conformance/cases")));
    assert!(dir.is_dir(), "{} is missing (set STEPDEPLOY_ASL_CONFORMANCE_DIR or STEPDEPLOY_SHARED_DIR)", dir.display());
    dir
}

#[tokio::test]
async fn recorded_event_sequences_are_reproduced() {
    let fixtures = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/history"));
    let mut checked = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let case_name = fixture["case"].as_str().unwrap();
        let case: Value = serde_json::from_str(&std::fs::read_to_string(cases_dir().join(format!("{case_name}.json"))).unwrap()).unwrap();
        let definition = Definition::from_value(&case["definition"]).unwrap();
        let clock = Arc::new(VirtualClock::starting_at(chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()));
        let execution = Engine::new(clock, Arc::new(NoTasks)).run(&definition, case["input"].clone(), "history").await;
        let recorded: Vec<&str> = fixture["types"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let ours: Vec<&str> = execution.history.iter().map(|e| e.kind).collect();
        assert_eq!(ours, recorded, "{}: the event types differ from the recorded history", path.display());
        checked += 1;
    }
    assert!(checked >= 1, "no fixture in {}", fixtures.display());
}
