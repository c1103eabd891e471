//! Several executions at once on one simulated account and one virtual clock: two deploys of one
//! environment, the second waiting in the lock queue while the first runs. Each execution is a
//! participant of a [`SharedVirtualClock`]; time moves only when all of them wait, and the sim
//! follows it, so each sees the other's effects at the virtual moment they happen.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::{LocalBoxFuture, join_all};
use serde_json::Value;
use stepdeploy_asl::tokens::TaskTokens;
use stepdeploy_asl::{Clock, Execution, SharedVirtualClock};
use stepdeploy_core::config::Config;
use stepdeploy_sim::Sim;

use crate::checkpoints::{self, AfterAdvance, Approve};
use crate::{ConfigFrom, Observer, StepObserver, Summary, engine_for, failed_to_start, sim_functions, summarize, watching};

/// The shared clock as one execution sees it: a wait parks until every execution waits, then
/// the sim moves to the new time (and alarms and answers are delivered, as [`crate::SimClock`] does).
struct SharedSimClock {
    shared: Arc<SharedVirtualClock>,
    sim: Sim,
    after_advance: AfterAdvance,
}

#[async_trait]
impl Clock for SharedSimClock {
    fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }

    async fn sleep(&self, duration: Duration) {
        // Whole seconds, as the sim keeps time.
        self.shared.sleep(Duration::from_secs(duration.as_secs_f64().ceil() as u64)).await;
        let behind = self.shared.now().timestamp() - self.sim.now();
        if behind > 0 {
            self.sim.advance(behind);
        }
        (self.after_advance)().await;
    }
}

/// One execution of [`run_together`]: its state machine, input, and observers of its steps.
pub struct Run<'a> {
    /// The state machine's definition.
    pub definition: &'a str,
    /// The execution input.
    pub input: Value,
    /// Called after each of its steps, with the step's name and record.
    pub steps: StepObserver,
    /// Called after each of its reconcile steps, with the deployment record.
    pub observer: Option<Observer>,
}

/// Runs `runs` at once on `sim`, on one virtual clock, checkpoints answered as `approve` says;
/// returns each one's execution and summary.
pub async fn run_together(sim: &Sim, config: Arc<Config>, runs: Vec<Run<'_>>, group: &str, approve: Approve) -> Vec<(Execution, Summary)> {
    let started = sim.now();
    let shared = SharedVirtualClock::starting_at(DateTime::from_timestamp(started, 0).unwrap_or_default());
    // One token space for all of them: an answer reaches whichever execution paused.
    let tokens = TaskTokens::new().looking_every(crate::TOKEN_LOOK_SECONDS);
    checkpoints::wire_task_answers(sim, &tokens);
    let calls_before = sim.call_counts();
    let mut prepared = Vec::new();
    for (i, run) in runs.into_iter().enumerate() {
        let (observe, min_healthy) = watching(sim, group, run.observer, run.steps);
        let functions = sim_functions(sim.clone(), config.clone(), observe, ConfigFrom::Given);
        let after_advance = checkpoints::after_advance(sim.clone(), functions.clone(), config.clone(), approve);
        let clock: Arc<dyn Clock> = Arc::new(SharedSimClock { shared: shared.clone(), sim: sim.clone(), after_advance });
        let engine = engine_for(clock, functions, &tokens, run.definition);
        // Each its own name: the lock tells executions apart by it.
        prepared.push((engine, run.input, format!("local-{started}-{}", i + 1), min_healthy));
    }
    // Every execution joins the clock (collect runs `shared.run` for each) before any of them
    // is polled, and so before any waits.
    let executions: Vec<LocalBoxFuture<'_, Execution>> = prepared
        .iter()
        .map(|(engine, input, name, _)| match engine {
            Ok((engine, definition)) => shared.run(engine.run(definition, input.clone(), name)).boxed_local(),
            Err(e) => futures::future::ready(failed_to_start(e.to_string())).boxed_local(),
        })
        .collect();
    let finished = join_all(executions).await;
    finished
        .into_iter()
        .zip(&prepared)
        .map(|(execution, (_, _, _, min_healthy))| {
            let low = *min_healthy.lock().unwrap_or_else(|p| p.into_inner());
            let summary = summarize(sim, group, &execution, started, &calls_before, low);
            (execution, summary)
        })
        .collect()
}
