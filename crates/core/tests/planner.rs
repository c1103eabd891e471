//! Hand-built snapshots for the planner's corner cases (the property tests
//! in crates/sim cover random fleets).

mod common;

use common::*;
use stepdeploy_core::model::Lifecycle;
use stepdeploy_core::planner::{Action, Failure, Outcome, Policy, RolloutState, plan};

#[test]
fn standby_instances_are_neither_replaced_nor_counted() {
    // GIVEN two healthy old instances and one old instance in Standby (outside desired capacity)
    let fleet = Fleet::test().with_old(2).add(OLD, Lifecycle::Standby, false, false, START - 2000);
    let state = fleet.rollout(Policy::new(0, 100, None).unwrap());
    // WHEN planning
    let decision = plan(&fleet.snapshot(), &state, START);
    // THEN only the live instances are replaced, and the Standby one is reported
    assert_eq!(terminated(&decision.actions), ["i-000", "i-001"]);
    assert_eq!(decision.progress.standby, 1);
    assert_eq!(decision.progress.goal, 2);
}

#[test]
fn protected_old_instances_are_replaced_last() {
    let fleet = Fleet::test().add(OLD, Lifecycle::InService, true, true, START - 3000).with_old(2);
    let state = fleet.rollout(Policy::new(0, 100, Some(1)).unwrap());
    let decision = plan(&fleet.snapshot(), &state, START);
    assert_eq!(terminated(&decision.actions), ["i-001"], "the oldest unprotected instance goes first");
}

#[test]
fn unhealthy_old_instances_go_first_and_cost_no_healthy_capacity() {
    // GIVEN min 100 %: no healthy capacity may be given up
    let mut fleet = Fleet::test().with_old(2).add(OLD, Lifecycle::InService, false, false, START - 10);
    fleet.desired = 3;
    let state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    let decision = plan(&fleet.snapshot(), &state, START);
    assert_eq!(terminated(&decision.actions), ["i-002"]);
    assert!(decision.actions.contains(&Action::SetDesiredCapacity { desired_capacity: 5 }), "{:?}", decision.actions);
}

#[test]
fn a_group_at_min_size_gets_its_floor_lowered_before_a_decrementing_termination() {
    let mut fleet = Fleet::test().with_old(2);
    fleet.min = 2;
    fleet.max = 2;
    let state = fleet.rollout(Policy::new(50, 100, None).unwrap());
    let decision = plan(&fleet.snapshot(), &state, START);
    // The snapshot already points at version 2, so no template change is planned.
    assert_eq!(
        decision.actions,
        [
            Action::SetSizeBounds { min_size: 1, max_size: 2 },
            Action::Terminate { instance_ids: vec!["i-000".into()] },
            Action::SetDesiredCapacity { desired_capacity: 2 },
        ]
    );
}

#[test]
fn a_new_instance_counts_only_after_its_warm_up() {
    let before = Fleet::test().with_old(1);
    let mut state = before.rollout(Policy::new(100, 200, None).unwrap());
    let fleet = before.add(NEW, Lifecycle::InService, true, false, START);
    let first = plan(&fleet.snapshot(), &state, START + 100);
    assert!(terminated(&first.actions).is_empty());
    let new = first.health.iter().find(|h| h.on_target).unwrap();
    assert_eq!(new.reason.as_deref(), Some("warming up (0 s of 30 s)"));
    state.healthy_since = first.healthy_since;
    let later = plan(&fleet.snapshot(), &state, START + 130);
    assert_eq!(terminated(&later.actions), ["i-000"]);
}

#[test]
fn a_new_instance_unhealthy_past_the_health_timeout_fails_the_rollout() {
    let fleet = Fleet::test().with_old(1).add(NEW, Lifecycle::InService, false, false, START);
    let state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    let decision = plan(&fleet.snapshot(), &state, START + 601);
    let Outcome::Failed(Failure::NewInstancesUnhealthy { unhealthy, timeout_seconds }) = &decision.outcome else { panic!("{:?}", decision.outcome) };
    assert_eq!(*timeout_seconds, 600);
    assert_eq!(unhealthy, &[("i-001".to_string(), "not registered in target group web".to_string())]);
    assert!(decision.actions.is_empty(), "a failed step changes nothing");
}

#[test]
fn the_rollout_deadline_fails_with_the_instances_still_unhealthy() {
    let fleet = Fleet::test().with_old(1).add(NEW, Lifecycle::Pending, false, false, START + 3500);
    let state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    let decision = plan(&fleet.snapshot(), &state, START + 3600);
    let Outcome::Failed(failure) = &decision.outcome else { panic!("{:?}", decision.outcome) };
    assert!(matches!(failure, Failure::DeadlinePassed { elapsed_seconds: 3600, .. }));
    assert_eq!(failure.describe(), "the rollout did not finish within its deadline (3600 s elapsed); not healthy: i-001 (lifecycle Pending)");
}

#[test]
fn done_restores_the_original_size_bounds() {
    let fleet = Fleet::test().with_old(2);
    let state = fleet.rollout(Policy::new(100, 200, None).unwrap());
    let mut after = Fleet::test();
    for _ in 0..2 {
        after = after.add(NEW, Lifecycle::InService, true, false, START);
    }
    after.desired = 2;
    after.min = 0;
    after.max = 4;
    let decision = plan(&after.snapshot(), &RolloutState { warmup_seconds: 0, ..state }, START + 200);
    assert_eq!(decision.outcome, Outcome::Done);
    assert_eq!(decision.actions, [Action::SetSizeBounds { min_size: 0, max_size: 10 }]);
}

mod in_place_batches {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use stepdeploy_core::steps::inplace::next_batch;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// A batch never takes healthy capacity below the floor, only takes
        /// live instances still to update, respects the batch size, and is
        /// never empty when some instance could go.
        #[test]
        fn a_batch_keeps_the_floor_and_makes_progress(
            n in 1usize..30,
            todo_mask in any::<u32>(),
            healthy_mask in any::<u32>(),
            live_mask in any::<u32>(),
            min_healthy in 0u32..30,
            batch_size in 1u32..10,
        ) {
            let ids: Vec<String> = (0..n).map(|i| format!("i-{i:02}")).collect();
            let pick = |mask: u32| ids.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, id)| id.clone()).collect::<Vec<_>>();
            let todo = pick(todo_mask);
            let live: BTreeSet<String> = pick(live_mask).into_iter().collect();
            let healthy: BTreeSet<String> = pick(healthy_mask).into_iter().filter(|id| live.contains(id)).collect();
            let batch = next_batch(&todo, &healthy, &live, min_healthy, batch_size);
            let taken_healthy = batch.iter().filter(|id| healthy.contains(*id)).count();
            prop_assert!(healthy.len() - taken_healthy >= (min_healthy as usize).min(healthy.len()));
            prop_assert!(batch.iter().all(|id| todo.contains(id) && live.contains(id)));
            prop_assert!(batch.len() <= batch_size as usize);
            let could_go = todo.iter().any(|id| live.contains(id) && (!healthy.contains(id) || healthy.len() as u32 > min_healthy));
            prop_assert_eq!(!batch.is_empty(), could_go);
        }
    }
}

#[test]
fn an_instance_of_unknown_version_is_never_terminated_and_counts_as_in_flight() {
    // GIVEN min 0 %, two old instances and one Auto Scaling just launched, of which
    // nothing says the version yet (no version reported, EC2 doesn't list it: no AMI)
    let mut fleet = Fleet::test().with_old(2).add(NEW, Lifecycle::Pending, false, false, START);
    fleet.instances[2].image_id = None;
    fleet.instances[2].launched_at = None;
    fleet.desired = 3;
    let state = fleet.rollout(Policy::new(0, 150, None).unwrap());
    let decision = plan(&fleet.snapshot(), &state, START);
    // THEN only old instances are terminated, and it takes a launch slot rather than another launch
    assert_eq!(terminated(&decision.actions), ["i-000", "i-001"]);
    assert_eq!((decision.progress.unknown, decision.progress.old, decision.progress.new), (1, 2, 0));
    let unknown = decision.health.iter().find(|h| h.id == "i-002").unwrap();
    assert!(unknown.version_unknown && !unknown.on_target);
    assert_ne!(decision.outcome, stepdeploy_core::planner::Outcome::Done, "not done while a version is unknown");
}

#[test]
fn a_reported_version_decides_even_where_the_ami_is_the_same() {
    // GIVEN version 2 keeps version 1's AMI; Auto Scaling reports each instance's version
    let mut fleet = Fleet::test().with_old(2);
    for instance in &mut fleet.instances {
        instance.image_id = Some(NEW.into());
        instance.launch_template_version = Some("1".into());
    }
    let state = fleet.rollout(Policy::new(0, 100, None).unwrap());
    let decision = plan(&fleet.snapshot(), &state, START);
    assert_eq!(terminated(&decision.actions), ["i-000", "i-001"], "instances of version 1 are old whatever their AMI");
    // An instance of another launch template is old too, even at the same version number.
    let mut other = Fleet::test().with_old(1);
    other.instances[0].launch_template_id = Some("lt-other".into());
    other.instances[0].launch_template_version = Some("2".into());
    let mut state = other.rollout(Policy::new(0, 100, None).unwrap());
    state.target.template_id = Some("lt-1".into());
    assert_eq!(terminated(&plan(&other.snapshot(), &state, START).actions), ["i-000"]);
}

#[test]
fn terminations_keep_the_zones_balanced() {
    // GIVEN three old instances in us-east-1b and the oldest one alone in us-east-1a
    let mut fleet = Fleet::test().with_old(4);
    for (n, zone) in ["us-east-1a", "us-east-1b", "us-east-1b", "us-east-1b"].iter().enumerate() {
        fleet.instances[n].availability_zone = zone.to_string();
    }
    let state = fleet.rollout(Policy::new(50, 100, None).unwrap());
    let decision = plan(&fleet.snapshot(), &state, START);
    // THEN the two terminations both come from the crowded zone, oldest first there
    assert_eq!(terminated(&decision.actions), ["i-001", "i-002"]);
}

#[test]
fn the_floor_and_ceiling_match_a_table_worked_out_by_hand() {
    // (desired, min %, max %) → (floor, ceiling), by the README's rules, not by the code:
    // floor = ceil(D × min %), ceiling = floor(D × max %); no room for a batch of one
    // raises the ceiling by one if the policy allows any surge, else lowers the floor by one.
    let table = [
        ((1, 100, 200), (1, 2)),
        ((2, 100, 150), (2, 3)),
        ((5, 90, 110), (5, 6)), // 4.5 → 5 and 5.5 → 5: no room; surge allowed: ceiling 6
        ((3, 90, 100), (2, 3)), // 2.7 → 3 and 3: no room; no surge: floor 2
        ((4, 75, 100), (3, 4)),
        ((7, 50, 120), (4, 8)), // 3.5 → 4 and 8.4 → 8
        ((20, 50, 100), (10, 20)),
        ((100, 100, 200), (100, 200)),
    ];
    for ((desired, min, max), (floor, ceiling)) in table {
        let bounds = Policy::new(min, max, None).unwrap().bounds(desired);
        assert_eq!((bounds.min_healthy, bounds.max_total), (floor, ceiling), "D={desired}, {min}..{max} %");
    }
}

#[test]
fn surplus_new_capacity_is_trimmed_only_when_the_rollout_made_it() {
    // GIVEN four healthy instances of version 2 and one more (Auto Scaling replaced an old
    // instance that failed, at the rollout's desired capacity), goal 4
    let mut fleet = Fleet::test();
    for n in 0..5 {
        fleet = fleet.add(NEW, Lifecycle::InService, true, false, START - 500 + n);
    }
    fleet.desired = 5;
    let mut state = Fleet::test().with_old(4).rollout(Policy::new(100, 200, None).unwrap());
    state.healthy_since = fleet.instances.iter().map(|i| (i.id.clone(), START - 400)).collect();
    // WHEN desired capacity is what the rollout's last step left: the extra is its own, trimmed (newest first)
    state.expected_desired = Some(5);
    let decision = plan(&fleet.snapshot(), &state, START);
    assert_eq!(terminated(&decision.actions), ["i-004"]);
    assert_eq!(decision.desired_after, 4);
    // BUT when someone else raised desired capacity, the extra is theirs: done, nothing terminated
    state.expected_desired = Some(4);
    let decision = plan(&fleet.snapshot(), &state, START);
    assert!(terminated(&decision.actions).is_empty());
    assert_eq!(decision.outcome, stepdeploy_core::planner::Outcome::Done);
}

#[test]
fn a_rollback_after_the_last_wave_keeps_the_warmed_new_instances_until_the_originals_are_back() {
    // GIVEN a rollout of 3 that finished: the originals are gone, 3 new instances healthy and warm
    // (an alarm fires during the bake, say)
    let before = Fleet::test().with_old(3);
    let mut state = before.rollout(Policy::new(100, 200, None).unwrap());
    let mut fleet = Fleet::test().with_old(3);
    for _ in 0..3 {
        fleet = fleet.add(NEW, Lifecycle::InService, true, false, START);
    }
    fleet.instances.retain(|i| i.image_id.as_deref() == Some(NEW)); // i-003..i-005; the originals are gone
    let first = plan(&fleet.snapshot(), &state, START + 200);
    state.healthy_since = first.healthy_since;
    let warmed = plan(&fleet.snapshot(), &state, START + 300);
    assert_eq!(warmed.progress.new_healthy, 3, "warm after 100 s: {:?}", warmed.health);
    state.healthy_since = warmed.healthy_since;
    // WHEN it turns into a rollback
    let back = state.rollback(START + 310, 3600).expect("the original version is known");
    let step = plan(&fleet.snapshot(), &back, START + 310);
    // THEN none of the three serving instances is terminated before old ones are healthy:
    // they count as healthy (3 of the floor's 3), and the rollback surges instead.
    assert!(terminated(&step.actions).is_empty(), "{:?}", step.actions);
    assert_eq!(step.progress.healthy(), 3, "{:?}", step.health);
    // (once the group launches the original version again, the next step surges, still terminating nothing)
    let mut pointed = fleet.snapshot();
    if let Some(lt) = pointed.settings.launch_template.as_mut() {
        lt.version = Some("1".into());
    }
    let mut back = back;
    back.healthy_since = step.healthy_since;
    let surge = plan(&pointed, &back, START + 325);
    assert!(terminated(&surge.actions).is_empty(), "{:?}", surge.actions);
    assert_eq!(surge.progress.healthy(), 3, "{:?}", surge.health);
    assert!(surge.actions.iter().any(|a| matches!(a, Action::SetDesiredCapacity { .. })), "{:?}", surge.actions);
}
