//! The planner at the edges where a `>` or an `&&` decides (each test kills mutants that
//! `scripts/mutants --quick` found alive): tolerances, timeouts, and what every action does to
//! desired capacity. Expected values are worked out by hand in the comments.

mod common;

use common::*;
use stepdeploy_core::model::{Lifecycle, ScalingActivity};
use stepdeploy_core::planner::{Action, Failure, Outcome, Policy, plan};

fn activity(description: &str, status: &str, cause: &str) -> ScalingActivity {
    ScalingActivity {
        started_at: START + 5,
        status: status.into(),
        description: description.into(),
        cause: cause.into(),
        message: Some("no capacity".into()),
    }
}

fn failed_launches(n: usize) -> Vec<ScalingActivity> {
    (0..n).map(|i| activity(&format!("Launching a new EC2 instance. Status Reason: attempt {i}"), "Failed", "")).collect()
}

fn replacements(ids: &[&str]) -> Vec<ScalingActivity> {
    let cause = "an instance was taken out of service in response to an ELB system health check failure.";
    ids.iter().map(|id| activity(&format!("Terminating EC2 instance: {id}"), "Successful", cause)).collect()
}

#[test]
fn failed_launches_end_the_rollout_only_past_the_two_tolerated() {
    let fleet = Fleet::test().with_old(2);
    let state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    let mut snapshot = fleet.snapshot();
    snapshot.activities = failed_launches(2);
    assert!(matches!(plan(&snapshot, &state, START + 10).outcome, Outcome::Wait { .. }), "two failures are tolerated");
    snapshot.activities = failed_launches(3);
    match plan(&snapshot, &state, START + 10).outcome {
        Outcome::Failed(Failure::LaunchesFailing { failures, message }) => assert_eq!((failures, message.as_str()), (3, "no capacity")),
        other => panic!("three failed launches end it: {other:?}"),
    }
    snapshot.activities = failed_launches(4);
    assert!(matches!(plan(&snapshot, &state, START + 10).outcome, Outcome::Failed(Failure::LaunchesFailing { failures: 4, .. })));
}

#[test]
fn health_replacements_of_new_instances_end_it_past_the_tolerance_and_of_originals_never() {
    let fleet = Fleet::test().with_old(2);
    let state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    let mut snapshot = fleet.snapshot();
    snapshot.activities = replacements(&["i-new1", "i-new2"]);
    assert!(matches!(plan(&snapshot, &state, START + 10).outcome, Outcome::Wait { .. }), "two are tolerated");
    snapshot.activities = replacements(&["i-new1", "i-new2", "i-new3"]);
    assert!(matches!(plan(&snapshot, &state, START + 10).outcome, Outcome::Failed(Failure::HealthReplacements { replaced: 3, .. })));
    snapshot.activities = replacements(&["i-new1", "i-new2", "i-new3", "i-new4"]);
    assert!(matches!(plan(&snapshot, &state, START + 10).outcome, Outcome::Failed(Failure::HealthReplacements { replaced: 4, .. })));
    // The originals (i-000, i-001) failing is what the rollout replaces anyway.
    snapshot.activities = replacements(&["i-000", "i-001", "i-000"]);
    assert!(matches!(plan(&snapshot, &state, START + 10).outcome, Outcome::Wait { .. }));
}

#[test]
fn a_new_instance_fails_the_rollout_only_once_its_whole_timeout_has_passed() {
    // The timeout is 600 s (the fixture's); the new instance never became healthy.
    for (age, stuck) in [(600, false), (601, true)] {
        let mut fleet = Fleet::test().with_old(2);
        let state = fleet.rollout(Policy::new(100, 200, None).unwrap());
        fleet = fleet.add(NEW, Lifecycle::InService, false, false, START + 10 - age);
        fleet.desired = 3;
        let outcome = plan(&fleet.snapshot(), &state, START + 10).outcome;
        assert_eq!(matches!(outcome, Outcome::Failed(Failure::NewInstancesUnhealthy { .. })), stuck, "{age} s old: {outcome:?}");
    }
}

#[test]
fn a_missed_deadline_names_every_unhealthy_instance_old_and_new() {
    let mut fleet = Fleet::test().with_old(1).add(OLD, Lifecycle::InService, false, false, START - 900);
    fleet.desired = 2;
    let mut state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    fleet = fleet.add(NEW, Lifecycle::InService, false, false, START - 60);
    state.deadline = START;
    match plan(&fleet.snapshot(), &state, START).outcome {
        Outcome::Failed(Failure::DeadlinePassed { unhealthy, .. }) => {
            let ids: Vec<&str> = unhealthy.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(ids, ["i-001", "i-002"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn desired_after_follows_a_launch_and_a_move_to_standby() {
    // A launch: two old, 100..200 %: two more launch, desired 2 → 4.
    let fleet = Fleet::test().with_old(2);
    let state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    let decision = plan(&fleet.snapshot(), &state, START);
    assert!(decision.actions.contains(&Action::SetDesiredCapacity { desired_capacity: 4 }), "{:?}", decision.actions);
    assert_eq!(decision.desired_after, 4);

    // Instant rollback: two healthy new ones are warm, so the two old ones go to Standby
    // (room for both at 200 %), which takes desired 4 → 2.
    let mut fleet = Fleet::test().with_old(2);
    let mut state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    state.keep_old_in_standby = true;
    fleet = fleet.add(NEW, Lifecycle::InService, true, false, START - 200).add(NEW, Lifecycle::InService, true, false, START - 200);
    fleet.desired = 4;
    state.healthy_since.insert("i-002".into(), START - 100);
    state.healthy_since.insert("i-003".into(), START - 100);
    let decision = plan(&fleet.snapshot(), &state, START);
    assert!(decision.actions.contains(&Action::EnterStandby { instance_ids: vec!["i-000".into(), "i-001".into()] }), "{:?}", decision.actions);
    assert_eq!(decision.desired_after, 2);
}

#[test]
fn an_instant_rollback_raises_the_maximum_only_when_exit_standby_needs_it() {
    // The originals wait in Standby; two new ones serve; desired 2. ExitStandby adds 2 → 4.
    for (max, raised) in [(4, false), (3, true)] {
        let mut fleet = Fleet::test().with_old(2);
        let state = fleet.rollout(Policy::new(100, 200, None).unwrap());
        for original in &mut fleet.instances {
            original.lifecycle = Lifecycle::Standby;
        }
        fleet = fleet.add(NEW, Lifecycle::InService, true, false, START - 200).add(NEW, Lifecycle::InService, true, false, START - 200);
        fleet.max = max;
        let back = state.rollback(START, 3600).unwrap();
        let decision = plan(&fleet.snapshot(), &back, START + 1);
        let exit = Action::ExitStandby { instance_ids: vec!["i-000".into(), "i-001".into()] };
        // The group goes back to version 1 first (the fixture's group is on 2).
        let back_to_1 = Action::SetLaunchTemplateVersion { version: "1".into() };
        let expected = if raised { vec![back_to_1, Action::SetSizeBounds { min_size: 0, max_size: 4 }, exit] } else { vec![back_to_1, exit] };
        assert_eq!(decision.actions, expected, "max {max}");
        assert_eq!(decision.desired_after, 4);
    }
}

#[test]
fn a_rollbacks_surplus_goes_unhealthy_first_live_only_and_lowers_min_only_when_it_must() {
    // Goal 4, five live on the version the rollback goes back to (the fixture calls it NEW),
    // one of them unhealthy and not the newest, plus one already terminating (not live).
    for (min, lowered) in [(5, true), (4, false)] {
        let mut fleet = Fleet::test();
        for n in 0..5 {
            let healthy = n != 1;
            fleet = fleet.add(NEW, Lifecycle::InService, healthy, false, START - 500 + n);
        }
        fleet = fleet.add(NEW, Lifecycle::Terminating, false, false, START - 100);
        fleet.desired = 5;
        fleet.min = min;
        let mut state = Fleet::test().with_old(4).rollout(Policy::new(100, 200, None).unwrap());
        state.healthy_since = fleet.instances.iter().map(|i| (i.id.clone(), START - 400)).collect();
        state.expected_desired = Some(5);
        let decision = plan(&fleet.snapshot(), &state, START);
        assert_eq!(terminated(&decision.actions), ["i-001"], "the unhealthy one, not the newest nor the terminating one");
        let bounds = decision.actions.iter().find(|a| matches!(a, Action::SetSizeBounds { .. })).cloned();
        assert_eq!(bounds, lowered.then_some(Action::SetSizeBounds { min_size: 4, max_size: 10 }), "min {min}");
        assert_eq!(decision.desired_after, 4);
    }
}

#[test]
fn instant_rollback_keeps_only_healthy_old_instances_and_only_as_many_as_the_ceiling_has_room_for() {
    // Goal 4 at 100..125 %: floor 4, ceiling 5, so one old instance may wait in Standby.
    // Four new ones are healthy; the four old ones go (the oldest, i-000, is unhealthy).
    let mut fleet = Fleet::test().add(OLD, Lifecycle::InService, false, false, START - 2000).with_old(3);
    fleet.desired = 4;
    let mut state = fleet.rollout(Policy::new(100, 125, None).unwrap());
    state.keep_old_in_standby = true;
    for _ in 0..4 {
        fleet = fleet.add(NEW, Lifecycle::InService, true, false, START - 300);
    }
    fleet.desired = 8;
    for id in ["i-004", "i-005", "i-006", "i-007"] {
        state.healthy_since.insert(id.into(), START - 200);
    }
    let decision = plan(&fleet.snapshot(), &state, START);
    // The unhealthy one is terminated; of the healthy ones, one waits, the others are terminated.
    assert!(decision.actions.contains(&Action::EnterStandby { instance_ids: vec!["i-001".into()] }), "{:?}", decision.actions);
    assert_eq!(terminated(&decision.actions), ["i-000", "i-002", "i-003"]);
}

/// Two originals wait in Standby (instant rollback), two still serve, two new ones are healthy:
/// goal 4 at 100..150 %, ceiling 6, which the kept ones fill (2 + 2 + 2).
fn ceiling_filled_by_standby(checkpoint: Option<u32>) -> (Fleet, stepdeploy_core::planner::RolloutState) {
    let mut fleet = Fleet::test().with_old(4);
    let mut state = fleet.rollout(Policy::new(100, 150, None).unwrap());
    state.keep_old_in_standby = true;
    if let Some(instances) = checkpoint {
        state.checkpoints = vec![stepdeploy_core::planner::Checkpoint { percent: 75, instances }];
    }
    fleet.instances[0].lifecycle = Lifecycle::Standby;
    fleet.instances[1].lifecycle = Lifecycle::Standby;
    fleet = fleet.add(NEW, Lifecycle::InService, true, false, START - 300).add(NEW, Lifecycle::InService, true, false, START - 300);
    fleet.desired = 4;
    state.healthy_since.insert("i-004".into(), START - 200);
    state.healthy_since.insert("i-005".into(), START - 200);
    (fleet, state)
}

#[test]
fn instances_kept_in_standby_count_against_the_ceiling_and_make_room_by_going() {
    // Two more new ones are wanted, but 4 live + 2 kept is the ceiling: nothing launches, and the
    // kept ones go instead (the next step then has room).
    let (fleet, state) = ceiling_filled_by_standby(None);
    let decision = plan(&fleet.snapshot(), &state, START);
    assert_eq!(decision.actions, [Action::TerminateStandby { instance_ids: vec!["i-000".into(), "i-001".into()] }]);
    assert!(matches!(decision.outcome, Outcome::Wait { .. }));
    // With a checkpoint at 3 not yet reached (2 healthy new), the rollout doesn't pause: one goes.
    let (fleet, state) = ceiling_filled_by_standby(Some(3));
    let decision = plan(&fleet.snapshot(), &state, START);
    assert_eq!(decision.actions, [Action::TerminateStandby { instance_ids: vec!["i-000".into()] }]);
    assert!(matches!(decision.outcome, Outcome::Wait { .. }), "{:?}", decision.outcome);
}

#[test]
fn the_next_poll_comes_when_a_warm_up_ends_and_never_early_for_instances_that_need_none() {
    // One new instance healthy since 25 s ago, warm-up 30 s, poll 15 s: poll again in 5 s.
    let mut fleet = Fleet::test().with_old(2);
    let mut state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    fleet = fleet.add(NEW, Lifecycle::InService, true, false, START - 100);
    fleet.desired = 3;
    state.healthy_since.insert("i-002".into(), START - 25);
    assert_eq!(plan(&fleet.snapshot(), &state, START).outcome, Outcome::Wait { seconds: 5 });
    // Originals need no warm-up: seen for the first time, they don't bring the poll forward.
    let fleet = Fleet::test().with_old(2);
    let mut state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    state.warmup_seconds = 5;
    assert_eq!(plan(&fleet.snapshot(), &state, START).outcome, Outcome::Wait { seconds: 15 });
}

#[test]
fn removing_the_last_old_instances_looks_again_in_seconds_and_removing_fewer_at_the_interval() {
    use stepdeploy_core::planner::SETTLE_SECONDS;
    // Two old, two new healthy and warm: both old go now, and nothing else is left, so the next
    // look (which finds the rollout done) comes in SETTLE_SECONDS, not the 15 s poll.
    let mut fleet = Fleet::test().with_old(2);
    let mut state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    for _ in 0..2 {
        fleet = fleet.add(NEW, Lifecycle::InService, true, false, START - 200);
    }
    fleet.desired = 4;
    state.healthy_since.insert("i-002".into(), START - 100);
    state.healthy_since.insert("i-003".into(), START - 100);
    let decision = plan(&fleet.snapshot(), &state, START);
    assert_eq!(terminated(&decision.actions).len(), 2, "{:?}", decision.actions);
    assert_eq!(decision.outcome, Outcome::Wait { seconds: SETTLE_SECONDS });
    // With one new instance still warming up, one old must stay: the interval (or the warm-up) decides.
    let mut state = state.clone();
    state.healthy_since.insert("i-003".into(), START - 1);
    let decision = plan(&fleet.snapshot(), &state, START);
    assert_eq!(terminated(&decision.actions).len(), 1, "{:?}", decision.actions);
    assert_eq!(decision.outcome, Outcome::Wait { seconds: 15 }, "29 s of warm-up left is past the 15 s poll");
}

#[test]
fn a_checkpoint_at_the_whole_group_is_dropped_it_would_pause_at_the_end() {
    use stepdeploy_core::planner::Checkpoint;
    assert_eq!(Checkpoint::for_goal(&[100], 4), []);
    assert_eq!(Checkpoint::for_goal(&[50, 100], 4), [Checkpoint { percent: 50, instances: 2 }]);
    // 99 % of 4 rounds up to 4: the whole group, dropped too.
    assert_eq!(Checkpoint::for_goal(&[25, 99], 4), [Checkpoint { percent: 25, instances: 1 }]);
}

#[test]
fn a_rollback_starts_its_own_clock_and_rolls_whatever_the_deploy_was() {
    let fleet = Fleet::test().with_old(2);
    let mut state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    state.strategy = stepdeploy_core::planner::Strategy::AllAtOnce;
    state.expected_desired = Some(4);
    state.checkpoints = vec![stepdeploy_core::planner::Checkpoint { percent: 50, instances: 1 }];
    state.keep_old_in_standby = true;
    let back = state.rollback(START + 500, 900).unwrap();
    assert_eq!(back.strategy, stepdeploy_core::planner::Strategy::Rolling);
    assert_eq!((back.started_at, back.deadline), (START + 500, START + 1400));
    assert!(back.undoing);
    // It never pauses, brings back what waits in Standby, and owns no desired capacity yet.
    assert!(back.checkpoints.is_empty());
    assert!(!back.keep_old_in_standby);
    assert_eq!(back.expected_desired, None);
}

#[test]
fn an_instance_of_unknown_version_counts_toward_the_next_checkpoint() {
    // Goal 4, checkpoint at 2. One new instance is healthy, one more is live but EC2 doesn't list
    // its image yet (most likely new too): with both, the checkpoint is reached, so nothing more
    // launches; the spare healthy capacity (5 healthy, floor 4) still lets one old one go.
    let mut fleet = Fleet::test().with_old(4);
    let mut state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    state.checkpoints = vec![stepdeploy_core::planner::Checkpoint { percent: 50, instances: 2 }];
    fleet = fleet.add(NEW, Lifecycle::InService, true, false, START - 300).add(NEW, Lifecycle::InService, false, false, START - 20);
    fleet.instances[5].image_id = None;
    fleet.desired = 6;
    state.healthy_since.insert("i-004".into(), START - 200);
    let decision = plan(&fleet.snapshot(), &state, START);
    assert_eq!(terminated(&decision.actions), ["i-000"]);
    assert!(!decision.actions.iter().any(|a| matches!(a, Action::SetDesiredCapacity { .. })), "{:?}", decision.actions);
    assert_eq!(decision.desired_after, 5);
}
