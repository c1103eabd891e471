//! Runs every AWS-recorded case in shared/asl-conformance/cases.
//!
//! `conformance-known-failures.txt` lists the cases that don't pass yet, one
//! per line with the reason. The test fails when an unlisted case fails, and
//! when a listed case passes (so the list only shrinks).
//!
//! The folder comes from `STEPDEPLOY_ASL_CONFORMANCE_DIR`, else
//! `$STEPDEPLOY_SHARED_DIR/asl-conformance/cases`, else
//! `../shared/asl-conformance/cases` beside the checkout; a missing folder
//! fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::TimeZone;
use serde_json::Value;
use stepdeploy_asl::{Definition, Engine, NoTasks, Status, VirtualClock};

const KNOWN_FAILURES: &str = include_str!("conformance-known-failures.txt");

fn cases_dir() -> Option<PathBuf> {
    let dir = std::env::var("STEPDEPLOY_ASL_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("STEPDEPLOY_SHARED_DIR").map(|d| PathBuf::from(d).join("asl-conformance/cases")))
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/asl-conformance/cases")));
    if dir.is_dir() {
        return Some(dir);
    }
    // A missing folder fails the test, in CI or not: a skipped conformance run proves nothing.
    panic!("{} is missing (set STEPDEPLOY_ASL_CONFORMANCE_DIR or STEPDEPLOY_SHARED_DIR)", dir.display())
}

/// Matches a string that may hold `<placeholder>`s from `wildcards`.
fn text_matches(expected: &str, actual: &str, wildcards: &[String]) -> bool {
    let mut pieces = vec![expected.to_string()];
    for w in wildcards {
        pieces = pieces.iter().flat_map(|p| p.split(w.as_str()).map(str::to_string).collect::<Vec<_>>()).collect();
    }
    if pieces.len() == 1 {
        return expected == actual;
    }
    let (first, last) = (&pieces[0], &pieces[pieces.len() - 1]);
    if !actual.starts_with(first.as_str()) || !actual[first.len()..].ends_with(last.as_str()) {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece.as_str()) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

fn value_matches(expected: &Value, actual: &Value, wildcards: &[String]) -> bool {
    match (expected, actual) {
        (Value::String(e), _) if wildcards.iter().any(|w| w == e) => true,
        (Value::String(e), Value::String(a)) => text_matches(e, a, wildcards),
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        (Value::Array(e), Value::Array(a)) => e.len() == a.len() && e.iter().zip(a).all(|(e, a)| value_matches(e, a, wildcards)),
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len() && e.iter().all(|(k, v)| a.get(k).is_some_and(|av| value_matches(v, av, wildcards)))
        }
        (e, a) => e == a,
    }
}

/// `None` when the case passes, else what differed.
async fn run_case(case: &Value) -> Option<String> {
    let wildcards: Vec<String> =
        case["wildcards"].as_array().map(|w| w.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
    let definition = match Definition::from_value(&case["definition"]) {
        Ok(d) => d,
        Err(e) => return Some(format!("definition rejected: {e}")),
    };
    let start = chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single()?;
    let engine = Engine::new(Arc::new(VirtualClock::starting_at(start)), Arc::new(NoTasks)).with_name("conformance");
    let execution = engine.run(&definition, case["input"].clone(), "case").await;
    let expected = &case["expected"];
    let status = match execution.status {
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
        Status::TimedOut => "TIMED_OUT",
    };
    if expected["status"] != status {
        return Some(format!("status {status} (error {:?}, cause {:?}), expected {}", execution.error, execution.cause, expected["status"]));
    }
    if status == "SUCCEEDED" {
        let output = execution.output.unwrap_or(Value::Null);
        if !value_matches(&expected["output"], &output, &wildcards) {
            return Some(format!("output {output}, expected {}", expected["output"]));
        }
        return None;
    }
    let error = execution.error.map(Value::String).unwrap_or(Value::Null);
    if !value_matches(&expected["error"], &error, &wildcards) {
        return Some(format!("error {error}, expected {}", expected["error"]));
    }
    let cause_ok = match (&expected["cause"], &execution.cause) {
        (Value::Null, None) => true,
        (Value::String(e), Some(a)) => text_matches(e, a, &wildcards),
        (e @ Value::Object(_), Some(a)) => serde_json::from_str::<Value>(a).is_ok_and(|a| value_matches(e, &a, &wildcards)),
        _ => false,
    };
    if !cause_ok {
        return Some(format!("cause {:?}, expected {}", execution.cause, expected["cause"]));
    }
    None
}

#[tokio::test]
async fn aws_recorded_cases_pass_except_the_known_failures() {
    let Some(dir) = cases_dir() else { return };
    let known: BTreeMap<&str, &str> = KNOWN_FAILURES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(char::is_whitespace).map(|(name, reason)| (name, reason.trim())).unwrap_or((l, "")))
        .collect();
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    files.sort();
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let name = case["name"].as_str().unwrap_or_default().to_string();
        let language = case["query_language"].as_str().unwrap_or("jsonpath").to_string();
        seen.insert(name.clone());
        let failure = run_case(&case).await;
        let entry = counts.entry(language).or_default();
        entry.1 += 1;
        match (&failure, known.contains_key(name.as_str())) {
            (None, false) => entry.0 += 1,
            (None, true) => {
                entry.0 += 1;
                fixed.push(name);
            }
            (Some(_), true) => {}
            (Some(why), false) => unexpected.push(format!("{name}: {why}")),
        }
    }
    for (language, (passed, total)) in &counts {
        println!("conformance {language}: {passed}/{total} passed");
    }
    // An empty or partial folder would pass vacuously: the recorded set has 537 JSONPath and 85 JSONata cases.
    let totals: BTreeMap<&str, usize> = counts.iter().map(|(language, (_, total))| (language.as_str(), *total)).collect();
    assert_eq!(totals, BTreeMap::from([("jsonata", 85), ("jsonpath", 537)]), "the conformance folder {} is not the full recorded set", dir.display());
    let stale: Vec<&&str> = known.keys().filter(|k| !seen.contains(**k)).collect();
    assert!(stale.is_empty(), "known-failures lists cases that don't exist: {stale:?}");
    assert!(fixed.is_empty(), "these cases pass now; remove them from conformance-known-failures.txt:\n{}", fixed.join("\n"));
    assert!(unexpected.is_empty(), "{} case(s) fail that are not known failures:\n{}", unexpected.len(), unexpected.join("\n"));
}
