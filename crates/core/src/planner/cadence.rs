//! When a rollout looks again: soon after an instance is due to be healthy by
//! what AWS has reported (its launch time, and how long this rollout's
//! instances that are already healthy took), not on a fixed beat.
//!
//! A wave waits for its slowest instance, and the rollout learns an instance
//! is healthy only when it looks. On a fixed beat of `poll` seconds that costs
//! up to `poll` seconds a wave. Here the wait before the next look is a small
//! share of the age of each instance that may be healthy by now ([`LAST_WAVE`],
//! [`EARLIER_WAVES`]), so the delay is a fixed share of a boot however long
//! boots are, and looks are dense only around the moment an instance is due.
//! The poll interval stays the longest wait.
//!
//! A look reads five APIs once each (more pages only past 1,000 instances). At most one look
//! every 3 s stays far inside EC2's request rate for non-mutating actions, a bucket of 100
//! refilled at 20 a second
//! (<https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html>); a throttled
//! call is retried as any transient error is.

use crate::model::Timestamp;

/// How soon a look follows an instance's due time: within 1/`divisor` of the instance's age,
/// and never sooner than `min_wait_seconds` after the last look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision {
    /// The wait is at most this fraction of the age of an instance that may be healthy by now.
    pub divisor: i64,
    /// The shortest wait between two looks.
    pub min_wait_seconds: u64,
}

/// While the last wave is in flight (every instance the goal needs is launched), the makespan
/// is the slowest instance's boot plus how late the look that finds it is: within 5 %. Looks
/// that dense cost once a rollout.
pub const LAST_WAVE: Precision = Precision { divisor: 20, min_wait_seconds: 3 };

/// Before it, each wave's lateness delays the waves after it, but looks this dense come back
/// every wave: within 10 %, at most every 5 s. Measured against the oracle, with the
/// transitions each costs, in BENCHMARKS.md.
pub const EARLIER_WAVES: Precision = Precision { divisor: 10, min_wait_seconds: 5 };

/// The looks a rollout (or rollback) with this deadline is budgeted at the least (the config
/// check counts them, [`crate::budget`]): one per poll interval, a quarter more, and ten.
pub fn looks_budgeted(timeout_seconds: u64, poll_seconds: u64) -> u64 {
    timeout_seconds.div_ceil(poll_seconds.max(1)).saturating_mul(5) / 4 + 10
}

/// Whether the rollout may look sooner than the poll interval: only while, after this look,
/// every look to the deadline at the interval would still be within `budget` (the rollout's
/// share of the execution's history, [`crate::budget::rollout_looks`]). So no fleet, however
/// it behaves, takes an execution past AWS's quota of history events.
pub fn may_look_sooner(looks: u64, budget: u64, deadline: Timestamp, now: Timestamp, poll_seconds: u64) -> bool {
    let at_the_interval = (deadline.saturating_sub(now).max(0) as u64).div_ceil(poll_seconds.max(1));
    looks.saturating_add(1).saturating_add(at_the_interval) < budget
}

/// Seconds until the next look, given when each instance still booting was launched
/// (`in_flight`), how long each instance of this rollout that is healthy took from launch to the
/// first look that found it healthy (`boots`), and the poll interval.
///
/// - No instance is expected healthy before the soonest any did, less the share of it that
///   look may have been late by; before any did, before one poll interval.
/// - An instance past that is looked at again as `precision` says.
///
/// With nothing booting, the poll interval.
pub fn next_wait(in_flight: &[Timestamp], boots: &[i64], poll_seconds: u64, now: Timestamp, precision: Precision) -> u64 {
    let poll = poll_seconds.max(1);
    let divisor = precision.divisor.max(1);
    let min_wait = precision.min_wait_seconds.max(1);
    let soonest = match boots.iter().copied().filter(|b| *b >= 0).min() {
        Some(boot) => boot.saturating_sub((boot / divisor).max(min_wait as i64)),
        None => poll as i64,
    };
    in_flight
        .iter()
        .map(|launched| {
            let age = now.saturating_sub(*launched);
            if age < soonest { (soonest - age) as u64 } else { ((age / divisor) as u64).max(min_wait) }
        })
        .min()
        .unwrap_or(poll)
        .clamp(1, poll)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FINE: Precision = Precision { divisor: 25, min_wait_seconds: 2 };

    #[test]
    fn with_nothing_booting_the_wait_is_the_poll_interval() {
        assert_eq!(next_wait(&[], &[80], 15, 1000, FINE), 15);
    }

    #[test]
    fn before_any_instance_is_healthy_the_first_look_is_one_interval_after_launch() {
        // Launched 4 s ago: 11 s to the interval; 40 s ago: 40/25 = 1 s, so the shortest wait.
        assert_eq!(next_wait(&[996], &[], 15, 1000, FINE), 11);
        assert_eq!(next_wait(&[960], &[], 15, 1000, FINE), 2);
        // 300 s ago: 12 s; 500 s ago: 20 s, capped at the interval.
        assert_eq!(next_wait(&[700], &[], 15, 1000, FINE), 12);
        assert_eq!(next_wait(&[500], &[], 15, 1000, FINE), 15);
        // Coarser: 300 s ago at 1/10 is 30 s, capped; 60 s ago 6 s; 40 s ago the 5 s floor.
        let coarse = Precision { divisor: 10, min_wait_seconds: 5 };
        assert_eq!(next_wait(&[700], &[], 15, 1000, coarse), 15);
        assert_eq!(next_wait(&[940], &[], 15, 1000, coarse), 6);
        assert_eq!(next_wait(&[960], &[], 15, 1000, coarse), 5);
    }

    #[test]
    fn an_instance_is_not_looked_at_before_the_soonest_any_was_healthy() {
        // The fastest took 75 s: none is expected before 72 s (75 less 3, its 1/25).
        // Launched 10 s ago: wait 15 s (the interval), not the 62 s to go.
        assert_eq!(next_wait(&[990], &[75, 90], 15, 1000, FINE), 15);
        // Launched 65 s ago: 7 s to go.
        assert_eq!(next_wait(&[935], &[75, 90], 15, 1000, FINE), 7);
        // Launched 80 s ago: within 80/25 = 3 s.
        assert_eq!(next_wait(&[920], &[75, 90], 15, 1000, FINE), 3);
    }

    #[test]
    fn the_instance_that_is_soonest_due_sets_the_wait() {
        assert_eq!(next_wait(&[990, 935, 600], &[75], 15, 1000, FINE), 7);
    }

    #[test]
    fn sooner_looks_spend_only_what_the_budget_has_beyond_the_interval() {
        // A 3,600 s deadline at 15 s: 240 looks at the interval; the least budget is 310.
        assert_eq!(looks_budgeted(3600, 15), 310);
        // At the start, 240 looks to go at the interval: 69 may come sooner.
        assert!(may_look_sooner(0, 310, 3600, 0, 15));
        assert!(may_look_sooner(68, 310, 3600, 0, 15));
        assert!(!may_look_sooner(69, 310, 3600, 0, 15));
        // Half-way, with 120 looks taken at the interval, the same is left.
        assert!(may_look_sooner(120 + 68, 310, 3600, 1800, 15));
        assert!(!may_look_sooner(120 + 69, 310, 3600, 1800, 15));
        // A larger share of the history, more.
        assert!(may_look_sooner(500, 800, 3600, 0, 15));
        // Past the deadline nothing is left at the interval; what was taken decides.
        assert!(!may_look_sooner(310, 310, 4000, 4000, 15));
        // A state from before the budget was kept (0) never looks sooner.
        assert!(!may_look_sooner(0, 0, 3600, 0, 15));
    }
}
