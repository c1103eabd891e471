//! The planner itself: one instance's health, and the next decision of a rollout.

use std::collections::BTreeMap;

use super::cadence::{EARLIER_WAVES, LAST_WAVE, may_look_sooner, next_wait};
use super::decision::{Action, Failure, InstanceHealth, Outcome, Plan, Progress};
use super::policy::{Bounds, Policy};
use super::state::{RolloutState, Strategy};
use crate::model::{GroupSnapshot, Instance, Lifecycle, TargetState, Timestamp, VersionMatch};

/// Checks one instance: InService, Auto Scaling healthy, healthy in every
/// target group, and warmed up. Returns the verdict and, if it passes the
/// checks, since when.
pub fn assess(
    instance: &Instance,
    target_group_arns: &[String],
    since: Option<Timestamp>,
    warmup_seconds: u64,
    skip_warmup: bool,
    now: Timestamp,
) -> (bool, Option<String>, Option<Timestamp>) {
    if instance.lifecycle != Lifecycle::InService {
        return (false, Some(format!("lifecycle {}", String::from(instance.lifecycle.clone()))), None);
    }
    if !instance.asg_healthy {
        return (false, Some("Auto Scaling reports it Unhealthy".into()), None);
    }
    for arn in target_group_arns {
        match instance.target_health.get(arn) {
            Some(TargetState::Healthy) => {}
            Some(state) => {
                return (false, Some(format!("{:?} in target group {}", state, short_arn(arn)).to_lowercase()), None);
            }
            None => {
                return (false, Some(format!("not registered in target group {}", short_arn(arn))), None);
            }
        }
    }
    let since = since.unwrap_or(now);
    let warm_for = now.saturating_sub(since);
    if skip_warmup || warm_for >= warmup_seconds as i64 {
        (true, None, Some(since))
    } else {
        (false, Some(format!("warming up ({warm_for} s of {warmup_seconds} s)")), Some(since))
    }
}

/// Picks `count` of `old` (in termination order) so that the zones stay balanced: unhealthy
/// before healthy and unprotected before protected as before, but within that, each pick comes
/// from the zone with the most live instances left. Unbalanced zones would have AZRebalance
/// replace instances with no health gate once the processes resume
/// (<https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-availability-zone-balanced.html>).
fn pick_balanced(old: &[(&Instance, bool)], count: usize, live: &[&Instance]) -> Vec<String> {
    let mut per_zone: BTreeMap<&str, usize> = BTreeMap::new();
    for instance in live {
        *per_zone.entry(instance.availability_zone.as_str()).or_default() += 1;
    }
    let class = |(instance, healthy): &(&Instance, bool)| (*healthy, instance.protected_from_scale_in);
    let mut left: Vec<(&Instance, bool)> = old.to_vec();
    let mut picked = Vec::new();
    while picked.len() < count {
        let Some(first_class) = left.iter().map(class).min() else { break };
        let Some(position) = left
            .iter()
            .enumerate()
            .filter(|(_, candidate)| class(candidate) == first_class)
            .max_by_key(|(position, (instance, _))| {
                (per_zone.get(instance.availability_zone.as_str()).copied().unwrap_or(0), std::cmp::Reverse(*position))
            })
            .map(|(position, _)| position)
        else {
            break;
        };
        let (instance, _) = left.remove(position);
        if let Some(n) = per_zone.get_mut(instance.availability_zone.as_str()) {
            *n = n.saturating_sub(1);
        }
        picked.push(instance.id.clone());
    }
    picked
}

/// How many failed launches, or health replacements, end a rollout at once: one or two can
/// be a zone out of capacity or an unlucky instance, which Auto Scaling works around itself.
pub const FAILED_ACTIVITIES_TOLERATED: u32 = 2;

/// Fails the rollout when Auto Scaling's own activities since it began say it can't finish:
/// launches that keep failing, or instances replaced for health again and again.
fn failing_activities(snapshot: &GroupSnapshot, state: &RolloutState) -> Option<Failure> {
    let since = snapshot.activities.iter().filter(|a| a.started_at >= state.started_at);
    let failed: Vec<_> = since.clone().filter(|a| a.is_failed_launch()).collect();
    if failed.len() as u32 > FAILED_ACTIVITIES_TOLERATED {
        let message = failed[0].message.clone().unwrap_or_else(|| failed[0].description.clone());
        return Some(Failure::LaunchesFailing { failures: failed.len() as u32, message });
    }
    // Only new instances count: an old one failing is what the rollout replaces anyway.
    let replaced: Vec<_> = since
        .filter(|a| a.is_health_replacement())
        .filter(|a| a.description.rsplit(": ").next().is_none_or(|id| !state.is_original(id.trim())))
        .collect();
    if replaced.len() as u32 > FAILED_ACTIVITIES_TOLERATED {
        let latest = format!("{} ({})", replaced[0].description, replaced[0].cause);
        return Some(Failure::HealthReplacements { replaced: replaced.len() as u32, latest });
    }
    None
}

/// Desired capacity after `actions`, from `desired` before them.
fn desired_after(desired: u32, actions: &[Action]) -> u32 {
    actions.iter().fold(desired, |d, action| match action {
        Action::Terminate { instance_ids } => d.saturating_sub(instance_ids.len() as u32),
        Action::EnterStandby { instance_ids } => d.saturating_sub(instance_ids.len() as u32),
        Action::ExitStandby { instance_ids } => d.saturating_add(instance_ids.len() as u32),
        Action::SetDesiredCapacity { desired_capacity } => *desired_capacity,
        _ => d,
    })
}

fn version_of(health: &InstanceHealth) -> VersionMatch {
    match (health.on_target, health.version_unknown) {
        (true, _) => VersionMatch::Target,
        (false, true) => VersionMatch::Unknown,
        (false, false) => VersionMatch::Other,
    }
}

fn short_arn(arn: &str) -> &str {
    arn.split(":targetgroup/").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or(arn)
}

/// The floor, ceiling and wave of a rollout to `goal` instances: the policy's, or for all at
/// once, a whole second fleet beside the first.
pub fn strategy_bounds(strategy: Strategy, policy: &Policy, goal: u32) -> Bounds {
    match strategy {
        Strategy::Rolling => policy.bounds(goal),
        Strategy::AllAtOnce => Bounds { min_healthy: goal, max_total: goal.saturating_mul(2), wave: goal.max(1) },
    }
}

/// Decides the next step of a rollout.
pub fn plan(snapshot: &GroupSnapshot, state: &RolloutState, now: Timestamp) -> Plan {
    // What this rollout took out of service in the last minute counts as leaving, whatever a
    // late read says.
    let known;
    let snapshot = if state.leaving.is_empty() {
        snapshot
    } else {
        known = super::leaving::as_known(snapshot, state, now);
        &known
    };
    let standby = snapshot.instances.iter().filter(|i| i.lifecycle.is_standby()).count() as u32;
    // Standby instances are outside desired capacity (as on AWS) and left alone, but for the
    // originals this rollout moved there (an operator's were never live originals): the ceiling
    // counts them, and a rollback brings them back.
    let kept: Vec<&Instance> = snapshot.instances.iter().filter(|i| i.lifecycle.is_standby() && state.is_original(&i.id)).collect();
    let kept_ready: Vec<String> = kept.iter().filter(|i| i.lifecycle == Lifecycle::Standby).map(|i| i.id.clone()).collect();
    let goal = state.original.desired_capacity;
    let bounds = strategy_bounds(state.strategy, &state.policy, goal);

    let mut healthy_since = BTreeMap::new();
    let mut health = Vec::new();
    for instance in snapshot.instances.iter().filter(|i| i.lifecycle.is_live()) {
        let (healthy, reason, since) = assess(
            instance,
            &state.target_group_arns,
            state.healthy_since.get(&instance.id).copied(),
            state.warmup_seconds,
            state.is_original(&instance.id),
            now,
        );
        if let Some(since) = since {
            healthy_since.insert(instance.id.clone(), since);
        }
        let version = state.version_of(instance);
        health.push(InstanceHealth {
            id: instance.id.clone(),
            on_target: version == VersionMatch::Target,
            version_unknown: version == VersionMatch::Unknown,
            healthy,
            reason,
        });
    }
    let count = |version: VersionMatch, healthy: Option<bool>| {
        health.iter().filter(|h| version_of(h) == version && healthy.is_none_or(|want| h.healthy == want)).count() as u32
    };
    let progress = Progress {
        new: count(VersionMatch::Target, None),
        new_healthy: count(VersionMatch::Target, Some(true)),
        old: count(VersionMatch::Other, None),
        old_healthy: count(VersionMatch::Other, Some(true)),
        unknown: count(VersionMatch::Unknown, None),
        standby,
        kept_in_standby: kept.len() as u32,
        goal,
        min_healthy: bounds.min_healthy,
        max_total: bounds.max_total,
    };
    let finish = |actions: Vec<Action>, outcome: Outcome| {
        let desired_after = desired_after(snapshot.settings.desired_capacity, &actions);
        Plan { actions, outcome, progress, health: health.clone(), healthy_since: healthy_since.clone(), desired_after }
    };
    // Capacity beyond the goal is the rollout's own (a rollback's surge, or the replacement of an
    // old instance Auto Scaling terminated itself) when desired capacity is what the last step left;
    // an operator who changed it meant the extra.
    let surplus_is_ours = state.undoing || state.expected_desired == Some(snapshot.settings.desired_capacity);

    let mut actions = Vec::new();
    let version = &state.target.launch_template_version;
    if snapshot.settings.launch_template.as_ref().and_then(|lt| lt.version.as_deref()) != Some(version.as_str()) {
        actions.push(Action::SetLaunchTemplateVersion { version: version.clone() });
    }

    if state.undoing && !kept.is_empty() {
        // Instant rollback: the originals come back from Standby before anything else changes
        // (those still entering it can't yet: https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-enter-exit-standby.html).
        if !kept_ready.is_empty() {
            // ExitStandby raises desired capacity by one each: the maximum must allow it first.
            let desired = snapshot.settings.desired_capacity.saturating_add(kept_ready.len() as u32);
            if desired > snapshot.settings.max_size {
                actions.push(Action::SetSizeBounds { min_size: snapshot.settings.min_size, max_size: desired });
            }
            actions.push(Action::ExitStandby { instance_ids: kept_ready });
        }
        return finish(actions, Outcome::Wait { seconds: state.poll_seconds });
    }

    if progress.old == 0 && progress.unknown == 0 && progress.new_healthy >= goal {
        if !state.undoing && !state.keep_old_in_standby && !kept.is_empty() {
            // The bake is over: the old instances kept for an instant rollback go (once in Standby).
            if !kept_ready.is_empty() {
                actions.push(Action::TerminateStandby { instance_ids: kept_ready });
            }
            // Those terminating is all that is left: look again once Auto Scaling lists them so.
            let seconds = if kept.len() == kept.iter().filter(|i| i.lifecycle == Lifecycle::Standby).count() {
                state.poll_seconds.min(SETTLE_SECONDS)
            } else {
                state.poll_seconds
            };
            return finish(actions, Outcome::Wait { seconds });
        }
        if surplus_is_ours && progress.new > goal {
            // A rollback with more on target than the goal (the rollout's surge, launched at the
            // version it goes back to): trim the surplus, unhealthy and newest first, originals last.
            // (In a rollout, capacity beyond the goal is an operator's scale-out: kept.)
            let mut surplus: Vec<&Instance> =
                snapshot.instances.iter().filter(|i| i.lifecycle.is_live() && state.version_of(i) == VersionMatch::Target).collect();
            let healthy = |i: &Instance| health.iter().any(|h| h.id == i.id && h.healthy);
            surplus.sort_by_key(|i| (healthy(i), state.is_original(&i.id), std::cmp::Reverse(i.launched_at), i.id.clone()));
            let trim: Vec<String> = surplus.iter().take((progress.new - goal) as usize).map(|i| i.id.clone()).collect();
            let desired_after = snapshot.settings.desired_capacity.saturating_sub(trim.len() as u32);
            if desired_after < snapshot.settings.min_size {
                actions.push(Action::SetSizeBounds { min_size: desired_after, max_size: snapshot.settings.max_size });
            }
            actions.push(Action::Terminate { instance_ids: trim });
            return finish(actions, Outcome::Wait { seconds: state.poll_seconds });
        }
        // Done: after a rollback, desired back to what is live (launches the rollout's surge still
        // asks for would overshoot the goal); the original bounds, widened only as far as needed.
        let desired = if surplus_is_ours { snapshot.settings.desired_capacity.min(progress.new) } else { snapshot.settings.desired_capacity };
        if desired != snapshot.settings.desired_capacity {
            actions.push(Action::SetDesiredCapacity { desired_capacity: desired });
        }
        let min_size = state.original.min_size.min(desired);
        let max_size = state.original.max_size.max(desired);
        if (min_size, max_size) != (snapshot.settings.min_size, snapshot.settings.max_size) {
            actions.push(Action::SetSizeBounds { min_size, max_size });
        }
        return finish(actions, Outcome::Done);
    }

    if now >= state.deadline {
        let unhealthy = health.iter().filter(|h| !h.healthy).map(|h| (h.id.clone(), h.reason.clone().unwrap_or_default())).collect();
        let failure = Failure::DeadlinePassed { elapsed_seconds: now - state.started_at, unhealthy };
        return finish(Vec::new(), Outcome::Failed(failure));
    }
    if let Some(failure) = failing_activities(snapshot, state) {
        return finish(Vec::new(), Outcome::Failed(failure));
    }
    let instance_timeout = state.instance_timeout_seconds as i64;
    let stuck: Vec<(String, String)> = snapshot
        .instances
        .iter()
        .filter(|i| i.lifecycle.is_live() && state.version_of(i) == VersionMatch::Target && !state.keep_instance_ids.contains(&i.id))
        .filter(|i| i.launched_at.is_some_and(|at| now - at > instance_timeout))
        .filter_map(|i| health.iter().find(|h| h.id == i.id && !h.healthy))
        .map(|h| (h.id.clone(), h.reason.clone().unwrap_or_default()))
        .collect();
    if !stuck.is_empty() {
        let failure = Failure::NewInstancesUnhealthy { unhealthy: stuck, timeout_seconds: state.instance_timeout_seconds };
        return finish(Vec::new(), Outcome::Failed(failure));
    }

    // Old instances in termination order: unhealthy first, protected last, oldest first.
    // An instance of unknown version is never among them: it is most likely one just launched.
    let mut old: Vec<(&Instance, bool)> = snapshot
        .instances
        .iter()
        .filter(|i| i.lifecycle.is_live() && state.version_of(i) == VersionMatch::Other)
        .map(|i| (i, health.iter().any(|h| h.id == i.id && h.healthy)))
        .collect();
    old.sort_by_key(|(i, healthy)| (*healthy, i.protected_from_scale_in, i.launched_at, i.id.clone()));

    // A full deploy replaces everything at once: batch size is a rolling setting.
    let batch = match state.strategy {
        Strategy::Rolling => state.policy.batch_size.unwrap_or(u32::MAX),
        Strategy::AllAtOnce => u32::MAX,
    };
    let terminate_count = match state.strategy {
        Strategy::Rolling => {
            let spare_healthy = progress.healthy().saturating_sub(bounds.min_healthy);
            let old_unhealthy = progress.old - progress.old_healthy;
            (old_unhealthy + spare_healthy.min(progress.old_healthy)).min(batch)
        }
        Strategy::AllAtOnce if progress.new_healthy >= goal => progress.old,
        Strategy::AllAtOnce => 0,
    };
    let live: Vec<&Instance> = snapshot.instances.iter().filter(|i| i.lifecycle.is_live()).collect();
    let to_remove = pick_balanced(&old, terminate_count as usize, &live);
    // For an instant rollback, healthy old instances wait in Standby instead (a rollback has
    // nothing to keep); an unhealthy one is no use to come back to.
    // The ceiling counts them: at the end the goal is live, so at most `max_total - goal` wait
    // (all of them at a 200 % ceiling); the rest are terminated as usual.
    let mut standby_room =
        if state.keep_old_in_standby && !state.undoing { bounds.max_total.saturating_sub(goal).saturating_sub(progress.kept_in_standby) } else { 0 };
    let (mut to_standby, mut to_terminate) = (Vec::new(), Vec::new());
    for id in to_remove {
        if standby_room > 0 && old.iter().any(|(i, healthy)| *healthy && i.id == id) {
            standby_room -= 1;
            to_standby.push(id);
        } else {
            to_terminate.push(id);
        }
    }
    let removed = (to_terminate.len() + to_standby.len()) as u32;

    let live_after = progress.new + progress.old + progress.unknown - removed;
    let kept_after = progress.kept_in_standby + to_standby.len() as u32;
    let in_flight = progress.new - progress.new_healthy + progress.unknown;
    let mut wanted = goal.saturating_sub(progress.new + progress.unknown).min(batch.saturating_sub(in_flight));
    // Never past the next checkpoint: instances of unknown version may be new ones.
    let checkpoint = state.checkpoints.first().copied();
    if let Some(checkpoint) = checkpoint {
        wanted = wanted.min(checkpoint.instances.saturating_sub(progress.new + progress.unknown));
    }
    let launch = wanted.min(bounds.max_total.saturating_sub(live_after + kept_after));
    // Below a 200 % ceiling the instances kept in Standby can fill the surge room the rollout
    // still needs (a floor at 100 % can only replace by launching first): let enough of them go.
    let release: Vec<String> = if launch == 0 && removed == 0 { kept_ready.iter().take(wanted as usize).cloned().collect() } else { Vec::new() };
    let paused = checkpoint.filter(|c| launch == 0 && removed == 0 && in_flight == 0 && progress.new_healthy >= c.instances);
    let desired = live_after + launch;

    // Both a termination and a move to Standby decrement desired capacity.
    let desired_after_terminations = snapshot.settings.desired_capacity.saturating_sub(removed);
    let min_size = snapshot.settings.min_size.min(desired_after_terminations).min(desired);
    let max_size = snapshot.settings.max_size.max(desired);
    if (min_size, max_size) != (snapshot.settings.min_size, snapshot.settings.max_size) {
        actions.push(Action::SetSizeBounds { min_size, max_size });
    }
    if !to_terminate.is_empty() {
        actions.push(Action::Terminate { instance_ids: to_terminate });
    }
    if !to_standby.is_empty() {
        actions.push(Action::EnterStandby { instance_ids: to_standby });
    }
    if !release.is_empty() {
        actions.push(Action::TerminateStandby { instance_ids: release });
    }
    if desired != desired_after_terminations {
        actions.push(Action::SetDesiredCapacity { desired_capacity: desired });
    }
    if let Some(checkpoint) = paused {
        return finish(actions, Outcome::Pause(checkpoint));
    }
    finish(
        actions,
        Outcome::Wait {
            seconds: next_look(
                snapshot,
                state,
                &health,
                &healthy_since,
                (removes_the_last_old(&progress, removed, launch), progress.new + progress.unknown + launch >= goal),
                now,
            ),
        },
    )
}

/// Whether this step removes the last old instances with every new one counted: what is left
/// is Auto Scaling listing them as terminating (or in Standby).
fn removes_the_last_old(progress: &Progress, removed: u32, launch: u32) -> bool {
    removed > 0 && progress.old == removed && progress.unknown == 0 && progress.new_healthy >= progress.goal && launch == 0
}

/// Seconds to the next look of a rollout that goes on: when the soonest instance still booting
/// may be healthy ([`super::cadence::next_wait`]), when the first warm-up ends, or, once the
/// last old instances are removed, [`SETTLE_SECONDS`]; whichever is soonest. Past the looks the
/// history budget allows, the poll interval.
fn next_look(
    snapshot: &GroupSnapshot,
    state: &RolloutState,
    health: &[InstanceHealth],
    healthy_since: &BTreeMap<String, Timestamp>,
    (last_removed, last_wave): (bool, bool),
    now: Timestamp,
) -> u64 {
    let poll = state.poll_seconds.max(1);
    if !may_look_sooner(state.looks, state.looks_budget, state.deadline, now, poll) {
        return poll;
    }
    // This rollout's own instances (the originals' boots say nothing about it): those not yet
    // passing the checks, and how long those that pass took from launch to the first look that
    // found them passing (what AWS reported: LaunchTime, and the health the looks saw).
    let ours =
        || snapshot.instances.iter().filter(|i| i.lifecycle.is_live() && state.version_of(i) != VersionMatch::Other && !state.is_original(&i.id));
    let in_flight: Vec<Timestamp> = ours().filter(|i| !healthy_since.contains_key(&i.id)).filter_map(|i| i.launched_at).collect();
    let boots: Vec<i64> = ours().filter_map(|i| Some(healthy_since.get(&i.id)?.saturating_sub(i.launched_at?))).collect();
    let precision = if last_wave { LAST_WAVE } else { EARLIER_WAVES };
    let mut seconds = next_wait(&in_flight, &boots, poll, now, precision);
    // The first instance in warm-up is due when its warm-up ends.
    let warm_due = health
        .iter()
        .filter(|h| !h.healthy)
        .filter_map(|h| healthy_since.get(&h.id))
        .map(|since| since.saturating_add(state.warmup_seconds as i64).saturating_sub(now))
        .filter(|due| *due > 0)
        .min();
    if let Some(due) = warm_due {
        seconds = seconds.min(due as u64);
    }
    // Auto Scaling lists the last old instances as terminating within seconds, and the rollout
    // is done at that look: not a whole interval later.
    if last_removed {
        seconds = seconds.min(SETTLE_SECONDS);
    }
    seconds.clamp(1, poll)
}

/// How long after removing the last old instances the rollout looks again: DescribeAutoScalingGroups
/// lists an instance as Terminating (or EnteringStandby) once the call has returned
/// (<https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html>). A read
/// that still lists one InService is not acted on: the rollout remembers what it terminated
/// ([`super::leaving`]). A look costs the same however soon it comes, and every second here is
/// on every deploy's makespan.
pub const SETTLE_SECONDS: u64 = 2;
