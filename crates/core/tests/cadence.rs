//! When the planner looks again (#18): around the moment a booting instance is due by what AWS
//! reported (launch times, and how long this rollout's healthy instances took), not on the
//! 15 s beat; and never past the looks the history budget allows. Expected waits are worked
//! out by hand in the comments.

mod common;

use common::*;
use stepdeploy_core::model::Lifecycle;
use stepdeploy_core::planner::{Outcome, Policy, RolloutState, plan};

/// Two old instances and two new ones: i-002 healthy since START - 5 (launched at START - 80:
/// it took 75 s), i-003 launched `age` seconds before START and still booting.
fn two_new(age: i64, policy: Policy) -> (Fleet, RolloutState) {
    let mut fleet = Fleet::test().with_old(2);
    let mut state = fleet.rollout(policy);
    fleet = fleet.add(NEW, Lifecycle::InService, true, false, START - 80);
    fleet = fleet.add(NEW, Lifecycle::Pending, false, false, START - age);
    fleet.desired = 4;
    state.healthy_since.insert("i-002".into(), START - 5);
    (fleet, state)
}

fn wait_of(fleet: &Fleet, state: &RolloutState, now: i64) -> u64 {
    match plan(&fleet.snapshot(), state, now).outcome {
        Outcome::Wait { seconds } => seconds,
        other => panic!("expected a wait, got {other:?}"),
    }
}

#[test]
fn in_the_last_wave_a_booting_instance_is_looked_at_when_it_is_due_and_then_within_a_twentieth_of_its_age() {
    // Every instance the goal (2) needs is launched: the last wave, 1/20 and at least 3 s.
    // The fastest boot seen is 75 s, so none is due before 75 - max(75/20, 3) = 72 s.
    let policy = Policy::new(100, 200, None).unwrap();
    let (fleet, state) = two_new(70, policy);
    // i-003 is 70 s old: due in 2 s (i-002's warm-up ends in 25 s; the beat is 15 s).
    assert_eq!(wait_of(&fleet, &state, START), 2);
    // 10 s later it is 80 s old and due: 80/20 = 4 s.
    assert_eq!(wait_of(&fleet, &state, START + 10), 4);
    // 50 s old: 22 s to go, so the beat.
    let (fleet, state) = two_new(50, policy);
    assert_eq!(wait_of(&fleet, &state, START), 15);
}

#[test]
fn before_the_last_wave_the_looks_are_within_a_tenth_of_an_instances_age() {
    // A batch of one: i-003 is the only one in flight, and the goal needs another after it.
    // 130 s old (past the 72 s): 130/10 = 13 s, where the last wave's 1/20 would be 6 s.
    let (mut fleet, state) = two_new(130, Policy::new(100, 200, Some(1)).unwrap());
    fleet.instances.remove(2);
    fleet.desired = 3;
    let mut state = state;
    state.healthy_since.clear();
    // No boot seen yet: nothing is expected before one interval (15 s); at 130 s, 13 s.
    assert_eq!(wait_of(&fleet, &state, START), 13);
    // At 60 s old, 60/10 = 6 s; at 30 s, the 5 s floor.
    assert_eq!(wait_of(&fleet, &state, START - 70), 6);
    assert_eq!(wait_of(&fleet, &state, START - 100), 5);
}

#[test]
fn past_the_looks_the_budget_allows_every_wait_is_the_interval() {
    let (fleet, mut state) = two_new(70, Policy::new(100, 200, None).unwrap());
    // The deadline is 3,600 s away: 240 looks at the interval. With 300 in the budget, 59
    // looks can still come sooner.
    state.looks_budget = 300;
    state.looks = 58;
    assert_eq!(wait_of(&fleet, &state, START), 2);
    state.looks = 59;
    assert_eq!(wait_of(&fleet, &state, START), 15);
    // A rollout state saved before the budget was kept reads 0: the interval.
    state.looks = 0;
    state.looks_budget = 0;
    assert_eq!(wait_of(&fleet, &state, START), 15);
}
