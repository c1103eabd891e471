//! Several executions at once on one virtual clock: time moves only when every execution waits,
//! so each sees what the others did at the virtual moment they did it (#15: a second deploy that
//! waits for the first's lock).

use std::sync::{Arc, Mutex};

use chrono::TimeZone;
use futures::FutureExt;
use serde_json::{Value, json};
use stepdeploy_asl::invoke::{LambdaTasks, LocalFunctions};
use stepdeploy_asl::{Clock, Definition, Engine, Execution, SharedVirtualClock, Status};

fn start() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap()
}

fn seconds(clock: &SharedVirtualClock) -> i64 {
    (clock.now() - start()).num_seconds()
}

#[tokio::test]
async fn two_executions_that_wait_take_the_longer_wait_not_the_sum() {
    let clock = SharedVirtualClock::starting_at(start());
    let engine = Engine::new(clock.clone(), Arc::new(stepdeploy_asl::NoTasks));
    let wait = |s: u64| {
        Definition::from_value(
            &json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": s, "Next": "Done"}, "Done": {"Type": "Pass", "End": true}}}),
        )
        .unwrap()
    };
    let (long, short) = (wait(60), wait(30));
    let (a, b) = tokio::join!(clock.run(engine.run(&long, json!({}), "a")), clock.run(engine.run(&short, json!({}), "b")));
    assert_eq!((a.status, b.status), (Status::Succeeded, Status::Succeeded));
    assert_eq!(seconds(&clock), 60, "max(60, 30)");
    let ended = |e: &Execution| e.history.last().map(|ev| (ev.timestamp - start()).num_seconds());
    assert_eq!((ended(&a), ended(&b)), (Some(60), Some(30)), "each ends at its own moment");
}

/// A lock the two executions' Lambdas share: `acquire` takes it if free, `release` gives it back;
/// each call is recorded with the virtual time it happened at.
fn lock_functions(clock: Arc<SharedVirtualClock>, log: Arc<Mutex<Vec<(String, i64)>>>) -> LocalFunctions {
    let holder: Arc<Mutex<Option<String>>> = Arc::default();
    let (h1, l1, c1) = (holder.clone(), log.clone(), clock.clone());
    let (h2, l2, c2) = (holder, log, clock);
    LocalFunctions::default()
        .with(
            "acquire",
            Arc::new(move |payload: Value| {
                let (holder, log, clock) = (h1.clone(), l1.clone(), c1.clone());
                async move {
                    let me = payload["who"].as_str().unwrap_or("?").to_string();
                    let mut held = holder.lock().unwrap();
                    let got = held.is_none();
                    if got {
                        *held = Some(me.clone());
                        log.lock().unwrap().push((format!("{me} acquired"), seconds(&clock)));
                    }
                    Ok(json!({"got": got}))
                }
                .boxed()
            }),
        )
        .with(
            "release",
            Arc::new(move |payload: Value| {
                let (holder, log, clock) = (h2.clone(), l2.clone(), c2.clone());
                async move {
                    let me = payload["who"].as_str().unwrap_or("?").to_string();
                    *holder.lock().unwrap() = None;
                    log.lock().unwrap().push((format!("{me} released"), seconds(&clock)));
                    Ok(json!({}))
                }
                .boxed()
            }),
        )
}

#[tokio::test]
async fn a_second_execution_waits_for_the_firsts_lock_and_runs_when_it_is_released() {
    // Take the lock (or wait 30 s and try again), hold it for the work's time, release it.
    let deploy = |work: u64| {
        Definition::from_value(&json!({"StartAt": "Acquire", "States": {
            "Acquire": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": "acquire", "Payload": {"who.$": "$.who"}},
                        "ResultSelector": {"got.$": "$.Payload.got"}, "ResultPath": "$.lock", "Next": "Got"},
            "Got": {"Type": "Choice", "Choices": [{"Variable": "$.lock.got", "BooleanEquals": true, "Next": "Work"}], "Default": "Queued"},
            "Queued": {"Type": "Wait", "Seconds": 30, "Next": "Acquire"},
            "Work": {"Type": "Wait", "Seconds": work, "Next": "Release"},
            "Release": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": "release", "Payload": {"who.$": "$.who"}}, "ResultPath": null, "End": true}
        }}))
        .unwrap()
    };
    let clock = SharedVirtualClock::starting_at(start());
    let log = Arc::new(Mutex::new(Vec::new()));
    let engine = Engine::new(clock.clone(), Arc::new(LambdaTasks::new(lock_functions(clock.clone(), log.clone()))));
    let (first, second) = (deploy(95), deploy(50));
    let (a, b) = tokio::join!(
        clock.run(engine.run(&first, json!({"who": "first"}), "first")),
        // The second starts 10 s later: a second's head start would be enough; this is clearer.
        clock.run(async {
            clock.sleep(std::time::Duration::from_secs(10)).await;
            engine.run(&second, json!({"who": "second"}), "second").await
        })
    );
    assert_eq!((a.status, b.status), (Status::Succeeded, Status::Succeeded), "{:?} {:?}", a.cause, b.cause);
    // Worked out by hand: the first holds 0..95; the second tries at 10, 40 and 70 (held), then
    // at 100 takes it, and releases it at 150. Neither fails; the clock ends when the second does.
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            ("first acquired".to_string(), 0),
            ("first released".to_string(), 95),
            ("second acquired".to_string(), 100),
            ("second released".to_string(), 150)
        ]
    );
    assert_eq!(seconds(&clock), 150);
}
