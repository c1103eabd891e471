//! Runs a definition ROUNDS times in virtual time and prints the best
//! in-process time and the transitions, for scripts/bench-asl:
//! `{"ms": N, "transitions": N, "ok": bool}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use stepdeploy_asl::{Definition, Engine, NoTasks, Status, VirtualClock};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| {
        eprintln!("usage: asl_throughput DEFINITION.json [ROUNDS]");
        std::process::exit(2)
    });
    let rounds: u32 = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2)
    });
    let definition = Definition::parse(&text, &HashMap::new()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let mut best = f64::INFINITY;
    let mut transitions = 0;
    let mut ok = true;
    for _ in 0..rounds {
        let engine = Engine::new(Arc::new(VirtualClock::starting_at(chrono::Utc::now())), Arc::new(NoTasks));
        let started = Instant::now();
        let execution = engine.run(&definition, serde_json::json!({}), "bench").await;
        best = best.min(started.elapsed().as_secs_f64() * 1000.0);
        transitions = execution.transitions;
        ok &= execution.status == Status::Succeeded;
    }
    println!("{}", serde_json::json!({"ms": best, "transitions": transitions, "ok": ok}));
}
