//! Property tests of the rollout planners, applied to the simulated account.
//!
//! Each case builds a random fleet and policy, then repeatedly reads a
//! snapshot, plans, applies the plan through the ports and advances the
//! virtual clock, checking the invariants after every action and every wait.
//!
//! Stated bound (property 3): when new instances come up healthy, a rollout
//! finishes within `(waves + 1) × (boot + health + warm-up + poll)` seconds,
//! `waves` being the number of replacement waves the policy forces.

use std::collections::BTreeSet;

use futures::executor::block_on;
use proptest::prelude::*;
use proptest::strategy::Strategy as _;
use stepdeploy_core::fleet::{apply, read_snapshot};
use stepdeploy_core::planner::{Action, Bounds, Checkpoint, Outcome, Policy, RolloutSpec, RolloutState, Strategy, Timing, plan};
use stepdeploy_sim::demo::{DemoFleet, DemoSize};
use stepdeploy_sim::{Dist, ExternalEvent, SimSettings};

const CASES: u32 = 1000;

#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    size: DemoSize,
    policy: Policy,
    strategy: Strategy,
    boot: f64,
    health: f64,
    warmup: u64,
    poll: u64,
    /// How long EC2 lists an instance after Auto Scaling does (its AMI and launch time unknown till then).
    ec2_lag: i64,
    /// Percents of the group to pause at (none but in the checkpoint property).
    checkpoints: Vec<u32>,
    /// Keep replaced instances in Standby (only in the instant-rollback properties).
    instant_rollback: bool,
}

fn case() -> impl proptest::strategy::Strategy<Value = Case> {
    (1u32..=12, any::<u64>(), 0i64..=100, 100i64..=200, prop::option::of(1i64..=4), 0u32..=12, 0u32..=12)
        .prop_flat_map(|(n, seed, min, max, batch, min_size, extra_max)| {
            let max = if min == 100 && max == 100 { 101 } else { max };
            let policy = Policy::new(min, max, batch).unwrap();
            let size = DemoSize { desired: n, min: min_size.min(n), max: n + extra_max % (n + 1) };
            (
                Just((seed, size, policy)),
                prop_oneof![4 => Just(Strategy::Rolling), 1 => Just(Strategy::AllAtOnce)],
                20.0f64..120.0,
                0.0f64..60.0,
                0u64..=30,
                5u64..=30,
                prop_oneof![Just(0i64), 1i64..=90],
            )
        })
        .prop_map(|((seed, size, policy), strategy, boot, health, warmup, poll, ec2_lag)| Case {
            seed,
            size,
            policy,
            strategy,
            boot,
            health,
            warmup,
            poll,
            ec2_lag,
            checkpoints: Vec::new(),
            instant_rollback: false,
        })
}

/// What one driven rollout observed.
#[derive(Debug, Default)]
struct Run {
    outcome: Option<Outcome>,
    elapsed: i64,
    min_healthy_seen: u32,
    max_live_seen: u32,
    terminated_new: Vec<String>,
    violations: Vec<String>,
    /// Each pause: the checkpoint, and the live instances on the target version then.
    pauses: Vec<(Checkpoint, u32)>,
    /// Original instances moved to Standby, and terminated.
    entered_standby: Vec<String>,
    terminated_old: Vec<String>,
    /// Every wait the planner asked for.
    waits: Vec<u64>,
}

fn settings(case: &Case) -> SimSettings {
    SimSettings {
        boot_seconds: Dist::around(case.boot, 0.2),
        health_seconds: Dist::around(case.health, 0.2),
        deregistration_delay_seconds: 30,
        health_check_grace_seconds: 60,
        ec2_listing_lag_seconds: case.ec2_lag,
        ..SimSettings::default()
    }
}

fn begin(fleet: &DemoFleet, case: &Case, rollout_timeout: u64, instance_timeout: u64) -> RolloutState {
    let snapshot =
        block_on(read_snapshot(&fleet.sim, &fleet.sim, &fleet.sim, &fleet.group, std::slice::from_ref(&fleet.target_group_arn), fleet.sim.now()))
            .unwrap();
    let spec = RolloutSpec {
        target: fleet.new.clone(),
        previous: Some(fleet.old.clone()),
        strategy: case.strategy,
        policy: case.policy,
        target_group_arns: vec![fleet.target_group_arn.clone()],
        timing: Timing {
            rollout_timeout_seconds: rollout_timeout,
            instance_timeout_seconds: instance_timeout,
            warmup_seconds: case.warmup,
            poll_seconds: case.poll,
            looks_budget: 1000,
        },
        checkpoints: case.checkpoints.clone(),
        instant_rollback: case.instant_rollback,
    };
    RolloutState::begin(&snapshot, spec, fleet.sim.now())
}

/// Drives `state` to Done or Failed, checking the floor (when `floor` is
/// given), the ceiling and that no on-target instance is ever terminated.
fn drive(fleet: &DemoFleet, state: &mut RolloutState, floor: Option<u32>, ceiling: u32) -> Run {
    drive_for(fleet, state, floor, ceiling, 5_000)
}

/// [`drive`] for at most `steps` reconcile steps (the rollout may be stopped part-way, as an
/// alarm stops it).
fn drive_for(fleet: &DemoFleet, state: &mut RolloutState, floor: Option<u32>, ceiling: u32, steps: usize) -> Run {
    let sim = &fleet.sim;
    let started = sim.now();
    let tgs = vec![fleet.target_group_arn.clone()];
    let mut run = Run { min_healthy_seen: u32::MAX, ..Run::default() };
    let observe = |run: &mut Run, when: &str| {
        let healthy = sim.healthy_in_group(&fleet.group).len() as u32;
        // The ceiling counts the instances the rollout keeps in Standby (an instant rollback's).
        let live = sim.live_in_group(&fleet.group).len() as u32 + sim.standby_in_group(&fleet.group).len() as u32;
        run.min_healthy_seen = run.min_healthy_seen.min(healthy);
        run.max_live_seen = run.max_live_seen.max(live);
        if run.violations.len() >= 5 {
            return; // the first few tell the story
        }
        if let Some(floor) = floor
            && healthy < floor
        {
            run.violations.push(format!("{when}: healthy {healthy} < floor {floor}"));
        }
        if live > ceiling {
            run.violations.push(format!("{when}: live {live} > ceiling {ceiling}"));
        }
    };
    for step in 0..steps {
        let snapshot = block_on(read_snapshot(sim, sim, sim, &fleet.group, &tgs, sim.now())).unwrap();
        let decision = plan(&snapshot, state, sim.now());
        // As the replace step does: one more look, and the warm-up memo stored back.
        state.looks += 1;
        state.healthy_since = decision.healthy_since.clone();
        // As the replace step does: what desired capacity the actions leave.
        state.expected_desired = Some(decision.desired_after);
        // Counted by the sim's own truth (not the planner's verdicts): live instances on the target version.
        // Before the next checkpoint is passed, never more of them than it allows.
        let cap = state.checkpoints.first().map(|c| c.instances);
        let live_new = snapshot
            .instances
            .iter()
            .filter(|i| i.lifecycle.is_live())
            .filter(|i| i.launch_template_version.as_deref() == Some(state.target.launch_template_version.as_str()))
            .count() as u32;
        let live_old = snapshot.instances.iter().filter(|i| i.lifecycle.is_live()).count() as u32 - live_new;
        for action in &decision.actions {
            if let Action::EnterStandby { instance_ids } = action {
                run.entered_standby.extend(instance_ids.iter().cloned());
            }
            if let Action::Terminate { instance_ids } = action {
                run.terminated_old.extend(instance_ids.iter().filter(|id| state.is_original(id)).cloned());
                // Trimming capacity beyond the goal once every old instance is gone is allowed;
                // terminating a new instance otherwise is not.
                let trimming_surplus = live_old == 0 && live_new >= state.original.desired_capacity + instance_ids.len() as u32;
                for id in instance_ids.iter().filter(|_| !trimming_surplus) {
                    let instance = snapshot.instances.iter().find(|i| &i.id == id).unwrap();
                    // The sim reports each instance's version truthfully (as AWS does): the oracle.
                    let new = instance.launch_template_version.as_deref() == Some(state.target.launch_template_version.as_str());
                    if new || state.keep_instance_ids.contains(id) {
                        run.terminated_new.push(id.clone());
                    }
                }
            }
        }
        block_on(apply(&decision.actions, &fleet.group, &fleet.template, sim, sim))
            .unwrap_or_else(|e| panic!("step {step}: {e} applying {:?}", decision.actions));
        state.remember_leaving(&decision.actions, sim.now());
        observe(&mut run, &format!("step {step} after {:?}", decision.actions));
        if let Some(cap) = cap {
            let (_, _, desired, _) = sim.group_state(&fleet.group).unwrap_or_default();
            // What the actions ask for: every instance launched from here on is on the target version.
            let asked_new = live_new + desired.saturating_sub(sim.live_in_group(&fleet.group).len() as u32);
            if asked_new > cap && run.violations.len() < 5 {
                run.violations.push(format!("step {step}: {asked_new} new instances asked for before the checkpoint at {cap}"));
            }
        }
        match decision.outcome {
            Outcome::Wait { seconds } => {
                run.waits.push(seconds);
                sim.advance(seconds as i64);
                observe(&mut run, &format!("step {step} after waiting"));
            }
            // Approved at once, as the replace step after an approval does: on to the next one.
            Outcome::Pause(checkpoint) => {
                run.pauses.push((checkpoint, live_new));
                state.checkpoints.remove(0);
                sim.advance(state.poll_seconds as i64);
            }
            outcome => {
                run.outcome = Some(outcome);
                break;
            }
        }
    }
    run.elapsed = sim.now() - started;
    run
}

/// Floor, ceiling and wave of a rolling policy, by the README's rules, worked out by counting
/// instances rather than by calling `Policy::bounds`: a wrong rounding rule in the product must
/// not agree with itself here (#19, item 4).
fn expected_bounds(desired: u32, policy: &Policy) -> Bounds {
    if desired == 0 {
        return Bounds { min_healthy: 0, max_total: 0, wave: 1 };
    }
    // The floor: the fewest instances that are at least min % of desired.
    let at_least = |k: &u32| k * 100 >= desired * policy.min_healthy_percent;
    let mut floor = (0..=desired).find(at_least).unwrap_or(desired);
    // The ceiling: the most instances that are at most max % of desired, never fewer than desired.
    let at_most = |k: &u32| k * 100 <= desired * policy.max_healthy_percent;
    let mut ceiling = (desired..=2 * desired).rev().find(at_most).unwrap_or(desired);
    // No room for a batch of one: a policy that allows any surge gets one more, else one fewer healthy.
    if ceiling <= floor {
        if policy.max_healthy_percent > 100 {
            ceiling = floor + 1;
        } else {
            floor = ceiling - 1;
        }
    }
    let wave = (ceiling - floor).min(policy.batch_size.unwrap_or(u32::MAX)).max(1);
    Bounds { min_healthy: floor, max_total: ceiling, wave }
}

/// How many waves of `wave` instances replace `desired`, counted one wave at a time.
fn expected_waves(desired: u32, wave: u32) -> i64 {
    let (mut replaced, mut waves) = (0, 0);
    while replaced < desired {
        replaced += wave;
        waves += 1;
    }
    waves
}

/// The floor and ceiling a case's rollout keeps: its policy's, or a full deploy's surge.
fn bounds_of(case: &Case) -> Bounds {
    match case.strategy {
        Strategy::Rolling => expected_bounds(case.size.desired, &case.policy),
        Strategy::AllAtOnce => Bounds { min_healthy: case.size.desired, max_total: 2 * case.size.desired, wave: case.size.desired },
    }
}

/// The launch template version the group launches from.
fn group_version(fleet: &DemoFleet) -> Option<String> {
    let group = block_on(stepdeploy_core::ports::GroupReader::describe_group(&fleet.sim, &fleet.group)).unwrap();
    group.settings.launch_template.and_then(|t| t.version)
}

fn all_on(fleet: &DemoFleet, image: &str) -> bool {
    fleet.sim.live_in_group(&fleet.group).iter().all(|(_, ami)| ami == image)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The product's bounds agree with the counted ones, up to 1,000 instances.
    #[test]
    fn policy_bounds_match_the_counted_floor_and_ceiling(
        desired in 0u32..=1000, min in 0i64..=100, max in 100i64..=200, batch in prop::option::of(1i64..=50)
    ) {
        prop_assume!(!(min == 100 && max == 100));
        let policy = Policy::new(min, max, batch).unwrap();
        let expected = expected_bounds(desired, &policy);
        prop_assert_eq!(policy.bounds(desired), expected);
        prop_assert_eq!(i64::from(policy.waves(desired)), expected_waves(desired, expected.wave));
    }

    /// Healthy capacity never drops below the floor when only new instances
    /// can fail; the group never exceeds the ceiling; no new instance is terminated.
    #[test]
    fn healthy_capacity_never_drops_below_the_floor(case in case(), new_ok in any::<bool>()) {
        let fleet = DemoFleet::build(case.seed, case.size, settings(&case));
        if !new_ok {
            fleet.sim.make_image_unhealthy(&fleet.new.image_id);
        }
        let mut state = begin(&fleet, &case, 4 * 3600, 900);
        let bounds = bounds_of(&case);
        let run = drive(&fleet, &mut state, Some(bounds.min_healthy), bounds.max_total);
        prop_assert!(run.violations.is_empty(), "{:?}", run.violations);
        prop_assert!(run.terminated_new.is_empty(), "terminated new instances {:?}", run.terminated_new);
        if new_ok {
            prop_assert_eq!(run.outcome, Some(Outcome::Done));
        } else {
            prop_assert!(matches!(run.outcome, Some(Outcome::Failed(_))), "{:?}", run.outcome);
        }
    }

    /// However the fleet behaves, a rollout takes no more looks than its budget (its share of
    /// AWS's 25,000 history events) when that covers one look per interval to the deadline, and
    /// never waits longer than the interval.
    #[test]
    fn the_looks_stay_within_their_budget_and_no_wait_passes_the_interval(
        case in case(), new_ok in any::<bool>(), timeout in 300u64..=1800, spare in 1u64..=40
    ) {
        let fleet = DemoFleet::build(case.seed, case.size, settings(&case));
        if !new_ok {
            fleet.sim.make_image_unhealthy(&fleet.new.image_id);
        }
        let mut state = begin(&fleet, &case, timeout, 900);
        state.looks_budget = timeout.div_ceil(case.poll) + spare;
        let run = drive(&fleet, &mut state, None, u32::MAX);
        prop_assert!(run.outcome.is_some(), "{:?}", run.outcome);
        prop_assert!(state.looks <= state.looks_budget, "{} looks, budget {}", state.looks, state.looks_budget);
        prop_assert!(run.waits.iter().all(|w| (1..=case.poll).contains(w)), "poll {}: {:?}", case.poll, run.waits);
    }

    /// When new instances come up healthy the rollout finishes within the
    /// stated bound, every instance on the new version, bounds restored.
    #[test]
    fn a_healthy_rollout_finishes_within_the_bound(case in case()) {
        let fleet = DemoFleet::build(case.seed, case.size, settings(&case));
        let mut state = begin(&fleet, &case, 4 * 3600, 900);
        let waves = match case.strategy {
            Strategy::Rolling => expected_waves(case.size.desired, expected_bounds(case.size.desired, &case.policy).wave),
            Strategy::AllAtOnce => 1,
        };
        // A new instance is first seen healthy up to one poll after it is, and
        // counted once a later poll sees it still healthy after the warm-up.
        let poll = case.poll as i64;
        let warmup_polls = (case.warmup as i64 + poll - 1) / poll;
        let per_wave = (case.boot * 1.2 + case.health * 1.2).ceil() as i64 + 1 + poll + warmup_polls * poll;
        let bound = (waves + 1) * per_wave;
        let run = drive(&fleet, &mut state, None, u32::MAX);
        prop_assert_eq!(run.outcome, Some(Outcome::Done));
        prop_assert!(run.elapsed <= bound, "took {} s, bound {} s ({} waves of {} s)", run.elapsed, bound, waves, per_wave);
        prop_assert!(all_on(&fleet, &fleet.new.image_id));
        prop_assert_eq!(fleet.sim.healthy_in_group(&fleet.group).len() as u32, case.size.desired);
        let (min, max, desired, _) = fleet.sim.group_state(&fleet.group).unwrap();
        prop_assert_eq!((min, max, desired), (case.size.min, case.size.max, case.size.desired));
    }

    /// A failed rollout of never-healthy instances rolls back to the old
    /// version at full healthy capacity with the original bounds.
    #[test]
    fn rollback_restores_the_old_version_and_capacity(case in case()) {
        let fleet = DemoFleet::build(case.seed, case.size, settings(&case));
        fleet.sim.make_image_unhealthy(&fleet.new.image_id);
        let mut state = begin(&fleet, &case, 4 * 3600, 600);
        let bounds = bounds_of(&case);
        let run = drive(&fleet, &mut state, Some(bounds.min_healthy), bounds.max_total);
        prop_assert!(matches!(run.outcome, Some(Outcome::Failed(_))), "{:?}", run.outcome);
        let mut back = state.rollback(fleet.sim.now(), 4 * 3600).unwrap();
        // The rollback rolls with the case's policy: its floor holds throughout (#19 item 3).
        let floor = expected_bounds(case.size.desired, &case.policy).min_healthy.min(bounds.min_healthy);
        let run = drive(&fleet, &mut back, Some(floor), u32::MAX);
        prop_assert!(run.violations.is_empty(), "{:?}", run.violations);
        prop_assert_eq!(run.outcome, Some(Outcome::Done));
        prop_assert!(run.terminated_new.is_empty(), "rollback terminated original-version instances {:?}", run.terminated_new);
        prop_assert!(all_on(&fleet, &fleet.old.image_id));
        // The group itself points at the original version again, not only its instances.
        prop_assert_eq!(group_version(&fleet), Some(fleet.old.launch_template_version.clone()));
        prop_assert_eq!(fleet.sim.healthy_in_group(&fleet.group).len() as u32, case.size.desired);
        let (min, max, desired, _) = fleet.sim.group_state(&fleet.group).unwrap();
        prop_assert_eq!((min, max, desired), (case.size.min, case.size.max, case.size.desired));
    }

    /// A healthy rollout stopped at any step (an alarm fires, during the rollout or after its last
    /// wave) rolls back without dropping below the floor, to the old version at full capacity.
    #[test]
    fn a_rollback_from_any_point_of_a_healthy_rollout_holds_the_floor(case in case(), stop in 0usize..40) {
        let fleet = DemoFleet::build(case.seed, case.size, settings(&case));
        let mut state = begin(&fleet, &case, 4 * 3600, 900);
        let bounds = expected_bounds(case.size.desired, &case.policy);
        let floor = match case.strategy {
            Strategy::Rolling => bounds.min_healthy,
            Strategy::AllAtOnce => case.size.desired,
        };
        let run = drive_for(&fleet, &mut state, Some(floor), u32::MAX, stop);
        prop_assert!(run.violations.is_empty(), "before the stop: {:?}", run.violations);
        fleet.sim.advance(1);
        let mut back = state.rollback(fleet.sim.now(), 4 * 3600).unwrap();
        // The rollback rolls with the case's policy: its floor is the policy's.
        let run = drive(&fleet, &mut back, Some(bounds.min_healthy.min(floor)), u32::MAX);
        prop_assert!(run.violations.is_empty(), "stopped after {} steps, then: {:?}", stop, run.violations);
        prop_assert_eq!(run.outcome, Some(Outcome::Done));
        prop_assert!(all_on(&fleet, &fleet.old.image_id));
        prop_assert_eq!(group_version(&fleet), Some(fleet.old.launch_template_version.clone()));
        prop_assert_eq!(fleet.sim.healthy_in_group(&fleet.group).len() as u32, case.size.desired);
    }

    /// With checkpoints, a healthy rollout pauses at each one (in order, each once), never with more
    /// new instances than its share, holds the floor and the ceiling throughout, and finishes.
    #[test]
    fn a_rollout_pauses_at_each_checkpoint_without_overshooting_it(
        case in case(),
        percents in prop::collection::btree_set(1u32..=99, 1..=4),
    ) {
        let case = Case { checkpoints: percents.iter().copied().collect(), ..case };
        let fleet = DemoFleet::build(case.seed, case.size, settings(&case));
        let mut state = begin(&fleet, &case, 4 * 3600, 900);
        let bounds = bounds_of(&case);
        // Expected independently: each percent's share rounded up, kept when below the group and above the last.
        let goal = case.size.desired;
        let mut expected: Vec<u32> = Vec::new();
        for percent in &percents {
            let share = (goal * percent).div_ceil(100).max(1);
            if share < goal && expected.last().is_none_or(|last| share > *last) {
                expected.push(share);
            }
        }
        let run = drive(&fleet, &mut state, Some(bounds.min_healthy), bounds.max_total);
        prop_assert!(run.violations.is_empty(), "{:?}", run.violations);
        prop_assert_eq!(run.outcome, Some(Outcome::Done));
        let paused_at: Vec<u32> = run.pauses.iter().map(|(c, _)| c.instances).collect();
        prop_assert_eq!(&paused_at, &expected);
        for (checkpoint, live_new) in &run.pauses {
            prop_assert_eq!(*live_new, checkpoint.instances, "paused at {:?} with {} new", checkpoint, live_new);
        }
        prop_assert!(all_on(&fleet, &fleet.new.image_id));
    }

    /// Instances that vanish or appear mid-rollout (someone else's scale-in,
    /// scale-out or a dying instance) don't stop it finishing on the new version.
    #[test]
    fn external_scaling_mid_rollout_still_converges(case in case(), event in 0u8..3, at in 0i64..300) {
        let fleet = DemoFleet::build(case.seed, case.size, settings(&case));
        let event = match event {
            0 => ExternalEvent::ScaleIn { group: fleet.group.clone(), count: 1 },
            1 => ExternalEvent::ScaleOut { group: fleet.group.clone(), count: 1 },
            _ => ExternalEvent::TerminateOne { group: fleet.group.clone() },
        };
        fleet.sim.schedule(fleet.sim.now() + at, event);
        let mut state = begin(&fleet, &case, 4 * 3600, 900);
        let run = drive(&fleet, &mut state, None, u32::MAX);
        prop_assert_eq!(run.outcome, Some(Outcome::Done));
        prop_assert!(run.terminated_new.is_empty());
        prop_assert!(all_on(&fleet, &fleet.new.image_id));
        prop_assert!(fleet.sim.healthy_in_group(&fleet.group).len() as u32 >= case.size.desired.min(1));
    }
}

#[test]
fn a_group_at_its_max_size_surges_within_policy_and_restores_max() {
    let case = Case {
        seed: 7,
        size: DemoSize { desired: 4, min: 4, max: 4 },
        policy: Policy::new(100, 150, None).unwrap(),
        strategy: Strategy::Rolling,
        boot: 60.0,
        health: 20.0,
        warmup: 10,
        poll: 15,
        ec2_lag: 30,
        checkpoints: Vec::new(),
        instant_rollback: false,
    };
    let fleet = DemoFleet::build(case.seed, case.size, settings(&case));
    let mut state = begin(&fleet, &case, 3600, 600);
    let run = drive(&fleet, &mut state, Some(4), 6);
    assert!(run.violations.is_empty(), "{:?}", run.violations);
    assert_eq!(run.outcome, Some(Outcome::Done));
    assert_eq!(run.max_live_seen, 6, "surged to 150 %");
    assert_eq!(fleet.sim.group_state(&fleet.group).map(|g| (g.0, g.1, g.2)), Some((4, 4, 4)));
    let calls: BTreeSet<String> = fleet.sim.calls().into_iter().map(|c| c.operation).collect();
    assert!(calls.contains("UpdateAutoScalingGroup"));
}

#[test]
fn a_poll_costs_the_same_calls_whatever_the_fleet_size() {
    let mut per_poll = Vec::new();
    for n in [1, 10, 100] {
        let fleet = DemoFleet::build(1, DemoSize::of(n), SimSettings::default());
        let before = fleet.sim.calls().len();
        block_on(read_snapshot(&fleet.sim, &fleet.sim, &fleet.sim, &fleet.group, std::slice::from_ref(&fleet.target_group_arn), fleet.sim.now()))
            .unwrap();
        per_poll.push(fleet.sim.calls().len() - before);
    }
    assert_eq!(per_poll, [3, 3, 3]);
}

fn instant_case() -> impl proptest::strategy::Strategy<Value = Case> {
    // Half the cases at a 200 % ceiling, where every old instance can wait in Standby.
    (case(), any::<bool>()).prop_map(|(case, full)| {
        let max = if full { 200 } else { i64::from(case.policy.max_healthy_percent) };
        Case {
            policy: Policy::new(i64::from(case.policy.min_healthy_percent), max, case.policy.batch_size.map(i64::from)).unwrap(),
            instant_rollback: true,
            ..case
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES / 2))]

    /// With instant rollback, a healthy rollout keeps as many healthy old instances in Standby as
    /// the ceiling has room for beyond the group (every one at 200 %), holds the floor and the
    /// ceiling counting them, and once the bake is over (the flag cleared) terminates them and
    /// finishes with none left in Standby.
    #[test]
    fn instant_rollback_keeps_the_old_instances_in_standby_until_the_bake_ends(case in instant_case()) {
        let fleet = DemoFleet::build(case.seed, case.size, settings(&case));
        let mut state = begin(&fleet, &case, 4 * 3600, 900);
        let bounds = bounds_of(&case);
        let run = drive(&fleet, &mut state, Some(bounds.min_healthy), bounds.max_total);
        prop_assert!(run.violations.is_empty(), "{:?}", run.violations);
        prop_assert_eq!(run.outcome, Some(Outcome::Done));
        // As many originals wait as the ceiling leaves room for beyond the group (all of them at 200 %).
        let goal = case.size.desired;
        let room = bounds.max_total.saturating_sub(goal).min(goal) as usize;
        let originals: BTreeSet<String> = state.original.instance_ids.iter().cloned().collect();
        let standby: BTreeSet<String> = fleet.sim.standby_in_group(&fleet.group).into_iter().collect();
        prop_assert!(standby.is_subset(&originals), "only originals wait: {:?}", standby);
        prop_assert!(standby.len() <= room, "{} of {} originals wait in Standby, room for {}", standby.len(), goal, room);
        if bounds.max_total >= 2 * goal {
            prop_assert_eq!(&standby, &originals, "at a 200 % ceiling every original waits");
            prop_assert!(run.terminated_old.is_empty(), "terminated {:?}", run.terminated_old);
        }
        // The bake ends.
        state.keep_old_in_standby = false;
        let run = drive(&fleet, &mut state, Some(case.size.desired), u32::MAX);
        prop_assert_eq!(run.outcome, Some(Outcome::Done));
        prop_assert!(fleet.sim.standby_in_group(&fleet.group).is_empty());
        prop_assert!(all_on(&fleet, &fleet.new.image_id));
        let (min, max, desired, _) = fleet.sim.group_state(&fleet.group).unwrap();
        prop_assert_eq!((min, max, desired), (case.size.min, case.size.max, case.size.desired));
    }

    /// With instant rollback, a rollout stopped at any step rolls back by bringing the originals
    /// back from Standby: the floor holds, the ceiling (Standby counted) holds, no instance is
    /// launched once the last original has left, and the group ends on the old version at full
    /// capacity with its original bounds.
    #[test]
    fn an_instant_rollback_brings_the_originals_back_without_launching(case in instant_case(), stop in 0usize..40) {
        let fleet = DemoFleet::build(case.seed, case.size, settings(&case));
        let mut state = begin(&fleet, &case, 4 * 3600, 900);
        let bounds = bounds_of(&case);
        let run = drive_for(&fleet, &mut state, Some(bounds.min_healthy), bounds.max_total, stop);
        prop_assert!(run.violations.is_empty(), "before the stop: {:?}", run.violations);
        let all_in_standby = fleet.sim.live_in_group(&fleet.group).iter().all(|(_, ami)| *ami == fleet.new.image_id);
        fleet.sim.advance(1);
        let launched_before: BTreeSet<String> = fleet.sim.launched_in_group(&fleet.group).into_iter().collect();
        let mut back = state.rollback(fleet.sim.now(), 4 * 3600).unwrap();
        let run = drive(&fleet, &mut back, Some(expected_bounds(case.size.desired, &case.policy).min_healthy.min(bounds.min_healthy)), bounds.max_total);
        prop_assert!(run.violations.is_empty(), "stopped after {} steps, then: {:?}", stop, run.violations);
        prop_assert_eq!(run.outcome, Some(Outcome::Done));
        prop_assert!(all_on(&fleet, &fleet.old.image_id));
        prop_assert_eq!(group_version(&fleet), Some(fleet.old.launch_template_version.clone()));
        prop_assert!(fleet.sim.standby_in_group(&fleet.group).is_empty());
        prop_assert_eq!(fleet.sim.healthy_in_group(&fleet.group).len() as u32, case.size.desired);
        if all_in_standby && bounds.max_total >= 2 * case.size.desired {
            // Every original was in Standby: the rollback launched nothing.
            let launched: BTreeSet<String> = fleet.sim.launched_in_group(&fleet.group).into_iter().collect();
            prop_assert_eq!(launched, launched_before);
        }
        let (min, max, desired, _) = fleet.sim.group_state(&fleet.group).unwrap();
        prop_assert_eq!((min, max, desired), (case.size.min, case.size.max, case.size.desired));
    }
}
