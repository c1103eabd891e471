//! Step Functions' history budget: AWS ends an execution at 25,000 history
//! events (<https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html>),
//! and every poll loop of a workflow spends about nine of them per turn. How
//! often a step polls, and the most events a workflow can take at the
//! longest timeouts a config sets, computed from the same schedule the steps use.

use crate::config::Environment;

/// AWS's quota of history events per execution.
pub const HISTORY_EVENTS_QUOTA: u64 = 25_000;

/// What stepdeploy allows itself of it: the rest is margin for retries.
pub const HISTORY_EVENTS_BUDGET: u64 = 20_000;

/// Events one turn of a poll loop costs: Task (entered, scheduled, started,
/// succeeded, exited), Choice (entered, exited), Wait (entered, exited).
pub const EVENTS_PER_POLL: u64 = 9;

/// Events outside the poll loops (prepare, lock, page, finish...), with room for retries.
const FIXED_EVENTS: u64 = 300;

/// The longest wait between two polls of a running command.
pub const MAX_COMMAND_POLL_SECONDS: u64 = 300;

/// The wait before the next poll of a command that has run `elapsed` seconds:
/// the poll interval at first, then a tenth of the time it has run, at most
/// [`MAX_COMMAND_POLL_SECONDS`]. A 48-hour migration takes about 600 polls, not 11,520.
pub fn command_wait(elapsed: i64, poll_seconds: u64) -> u64 {
    let poll = poll_seconds.max(1);
    (elapsed.max(0) as u64 / 10).clamp(poll, MAX_COMMAND_POLL_SECONDS.max(poll))
}

/// The most polls a command with this timeout can take (it is given up 60 s after its timeout).
pub fn command_polls(timeout_seconds: u64, poll_seconds: u64) -> u64 {
    let (mut elapsed, mut polls) = (0u64, 0u64);
    while elapsed <= timeout_seconds.saturating_add(60) {
        elapsed += command_wait(elapsed as i64, poll_seconds);
        polls += 1;
    }
    polls
}

/// One poll every this many seconds: the bake's budget.
pub const BAKE_POLL_SECONDS: u64 = 30;

/// What a bake of `bake_seconds` is budgeted, in polls. A bake waits on a task token (a few
/// events however long), but a group that changes during it (an instance replaced) is
/// reconciled by polling until it settles: budgeted as one poll every 30 s throughout.
pub fn bake_polls(bake_seconds: u64, poll_seconds: u64) -> u64 {
    if bake_seconds == 0 { 0 } else { bake_seconds.div_ceil(poll_seconds.max(BAKE_POLL_SECONDS)) + 1 }
}

/// The most polls a loop bounded by a deadline takes at one poll every `poll_seconds`, with
/// a quarter more: a wait is cut short when an instance's warm-up falls due (once per wave).
/// A rollout looks sooner than the interval only within the same count
/// ([`crate::planner::may_look_sooner`]).
fn deadline_polls(timeout_seconds: u64, poll_seconds: u64) -> u64 {
    crate::planner::looks_budgeted(timeout_seconds, poll_seconds)
}

/// Polls of a serial or full deploy besides its rollout and rollback: the worker deploy and the
/// migration commands, the bake, and a queued prepare (retried, scheduled, started, failed: 3
/// events every 30 s, a third of a poll).
fn deploy_polls_besides_rollouts(env: &Environment) -> u64 {
    let poll = env.health.poll_interval_seconds;
    let commands = &env.commands;
    command_polls(commands.worker_deploy.timeout_seconds, poll)
        + command_polls(commands.migrate.timeout_seconds, poll)
        + bake_polls(env.rollout.bake_seconds, poll)
        + env.lock.wait_seconds.div_ceil(crate::config::LOCK_QUEUE_POLL_SECONDS).div_ceil(3)
}

/// The most reconcile steps a rollout (and its rollback, each) may take: what the history
/// budget has left for the two after the deploy's other loops, and at least one per poll
/// interval to the deadline with a quarter more (what the config check requires to fit). The
/// planner looks sooner than the interval only within it ([`crate::planner::may_look_sooner`]).
pub fn rollout_looks(env: &Environment) -> u64 {
    let least = deadline_polls(env.rollout.timeout_seconds, env.health.poll_interval_seconds);
    let polls = HISTORY_EVENTS_BUDGET.saturating_sub(FIXED_EVENTS) / EVENTS_PER_POLL;
    (polls.saturating_sub(deploy_polls_besides_rollouts(env)) / 2).max(least)
}

/// The most history events each workflow can take for `env` at its longest timeouts, with each
/// rollout at its least budget (a config that fits then lets [`rollout_looks`] fill the rest).
pub fn worst_case_events(env: &Environment) -> Vec<(&'static str, u64)> {
    let poll = env.health.poll_interval_seconds;
    let commands = &env.commands;
    let rollout = deadline_polls(env.rollout.timeout_seconds, poll);
    let worker = command_polls(commands.worker_deploy.timeout_seconds, poll);
    // Rollout and rollback share the rollout's timeout.
    let deploy = deploy_polls_besides_rollouts(env) + 2 * rollout;
    // An in-place batch drains, runs its command and rejoins within the health and command
    // timeouts; the rollout's deadline is checked between batches.
    let in_place = rollout + deadline_polls(2 * env.health.timeout_seconds, poll) + command_polls(commands.in_place_deploy.timeout_seconds, poll);
    let images = &env.images;
    let bake = deadline_polls(images.builder_online_timeout_seconds, images.poll_interval_seconds)
        + command_polls(commands.bake.timeout_seconds, images.poll_interval_seconds)
        + deadline_polls(images.available_timeout_seconds, images.poll_interval_seconds);
    [("serial-deploy", deploy), ("full-deploy", deploy), ("deploy-worker", worker), ("in-place-deploy", in_place), ("bake", bake)]
        .into_iter()
        .map(|(workflow, polls)| (workflow, FIXED_EVENTS + EVENTS_PER_POLL * polls))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rollouts_share_fills_the_history_budget_and_never_passes_it() {
        let mut env = Environment::default();
        env.health.poll_interval_seconds = 15;
        let looks = rollout_looks(&env);
        // Counted again here: the rollout and the rollback at `looks` each, with the rest.
        let events = FIXED_EVENTS + EVENTS_PER_POLL * (deploy_polls_besides_rollouts(&env) + 2 * looks);
        assert!(events <= HISTORY_EVENTS_BUDGET, "{events}");
        assert!(events + 2 * EVENTS_PER_POLL > HISTORY_EVENTS_BUDGET, "{events}: the rest is left unused");
        assert!(looks > deadline_polls(env.rollout.timeout_seconds, 15), "{looks}");
        // A config that leaves nothing over still gets its least budget (the config check refuses
        // one where that doesn't fit).
        env.commands.migrate.timeout_seconds = 172_800;
        env.health.poll_interval_seconds = 1;
        assert_eq!(rollout_looks(&env), deadline_polls(env.rollout.timeout_seconds, 1));
    }

    #[test]
    fn a_long_command_is_polled_ever_less_often_up_to_five_minutes() {
        assert_eq!(command_wait(0, 15), 15);
        assert_eq!(command_wait(600, 15), 60);
        assert_eq!(command_wait(48 * 3600, 15), 300);
        assert_eq!(command_wait(10, 600), 600, "never more often than the poll interval");
        // Counted independently: 15 s until 150 s (10 polls), then a tenth of the elapsed time
        // (growing 10 % a poll) until 3,000 s, then every 300 s until 48 h and a minute.
        let polls = command_polls(48 * 3600, 15);
        let tail = (48 * 3600 + 60 - 3000) / 300;
        assert!((tail + 30..tail + 50).contains(&polls), "{polls} polls");
        assert!(EVENTS_PER_POLL * polls < HISTORY_EVENTS_BUDGET / 2);
    }
}
