//! What the rollout took out of service counts as leaving for a minute, whatever a late read of
//! Auto Scaling lists (planner::leaving). Worked out by hand in the comments.

mod common;

use common::*;
use stepdeploy_core::model::Lifecycle;
use stepdeploy_core::planner::{Action, LEAVING_MEMORY_SECONDS, Outcome, Policy, plan};

#[test]
fn an_old_instance_terminated_a_moment_ago_but_listed_in_service_is_not_terminated_again() {
    // Two new instances, healthy and warm; one old one (i-000) this rollout terminated 2 s ago,
    // which a late read still lists InService and healthy.
    let mut fleet = Fleet::test().with_old(1);
    let mut state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    state.original.desired_capacity = 2;
    for _ in 0..2 {
        fleet = fleet.add(NEW, Lifecycle::InService, true, false, START - 300);
    }
    fleet.desired = 2;
    state.healthy_since.insert("i-001".into(), START - 200);
    state.healthy_since.insert("i-002".into(), START - 200);
    // Without the memo it is old and is terminated again (AWS would refuse: already terminating).
    let decision = plan(&fleet.snapshot(), &state, START);
    assert_eq!(terminated(&decision.actions), ["i-000"]);
    // With it, it is leaving: every instance is new and healthy, and the rollout is done.
    state.remember_leaving(&[Action::Terminate { instance_ids: vec!["i-000".into()] }], START - 2);
    let decision = plan(&fleet.snapshot(), &state, START);
    assert!(terminated(&decision.actions).is_empty(), "{:?}", decision.actions);
    assert_eq!(decision.outcome, Outcome::Done);
    // A minute on, a read that still lists it in service is believed again.
    let decision = plan(&fleet.snapshot(), &state, START - 2 + LEAVING_MEMORY_SECONDS);
    assert_eq!(terminated(&decision.actions), ["i-000"]);
}

#[test]
fn the_memo_keeps_only_what_left_the_service_in_the_last_minute() {
    let fleet = Fleet::test().with_old(3);
    let mut state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    state.remember_leaving(
        &[
            Action::Terminate { instance_ids: vec!["i-000".into()] },
            Action::EnterStandby { instance_ids: vec!["i-001".into()] },
            Action::SetDesiredCapacity { desired_capacity: 5 },
        ],
        START,
    );
    assert_eq!((state.left_to_standby("i-000", START), state.left_to_standby("i-001", START)), (Some(false), Some(true)));
    assert_eq!(state.left_to_standby("i-002", START), None);
    // An instance moved to Standby a moment ago and still listed InService is entering Standby:
    // not live capacity, and not yet one a rollback can bring back.
    let decision = plan(&fleet.snapshot(), &state, START + 3);
    assert_eq!((decision.progress.old, decision.progress.standby), (1, 1), "{:?}", decision.progress);
    // 59 s on both are kept; at 60 s (a new step's actions) both are forgotten.
    state.remember_leaving(&[], START + LEAVING_MEMORY_SECONDS - 1);
    assert_eq!(state.leaving.len(), 2, "one list per way out: {:?}", state.leaving);
    assert_eq!(state.left_to_standby("i-001", START + LEAVING_MEMORY_SECONDS - 1), Some(true));
    state.remember_leaving(&[Action::TerminateStandby { instance_ids: vec!["i-002".into()] }], START + LEAVING_MEMORY_SECONDS);
    assert_eq!(state.left_to_standby("i-000", START + LEAVING_MEMORY_SECONDS), None);
    assert_eq!(state.left_to_standby("i-002", START + LEAVING_MEMORY_SECONDS), Some(false));
    assert_eq!(state.leaving.len(), 1);
}

#[test]
fn an_instance_a_rollback_brings_back_from_standby_is_no_longer_leaving() {
    // The rollout moved i-000 to Standby; the rollback brings it back 20 s later: a read that
    // lists it InService is right, and it is live capacity again.
    let fleet = Fleet::test().with_old(2);
    let mut state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    state.remember_leaving(&[Action::EnterStandby { instance_ids: vec!["i-000".into(), "i-001".into()] }], START);
    assert_eq!(plan(&fleet.snapshot(), &state, START + 20).progress.old, 0, "both entering Standby");
    state.remember_leaving(&[Action::ExitStandby { instance_ids: vec!["i-000".into()] }], START + 20);
    assert_eq!(state.left_to_standby("i-000", START + 20), None);
    assert_eq!(state.left_to_standby("i-001", START + 20), Some(true));
    assert_eq!(plan(&fleet.snapshot(), &state, START + 21).progress.old, 1, "i-000 is back in service");
    state.remember_leaving(&[Action::ExitStandby { instance_ids: vec!["i-001".into()] }], START + 22);
    assert!(state.leaving.is_empty(), "{:?}", state.leaving);
}
