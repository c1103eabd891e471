//! EC2 Auto Scaling Instance Refresh, as a planner only this benchmark uses: the peer a user
//! would pick instead of stepdeploy, on the same simulated account and seeds.
//!
//! Modelled from AWS's documentation:
//! - <https://docs.aws.amazon.com/autoscaling/ec2/userguide/understand-instance-refresh-default-values.html>:
//!   MinHealthyPercentage 90 and MaxHealthyPercentage 100 by default (no instance maintenance
//!   policy); instance warm-up is DefaultInstanceWarmup, else the health check grace period.
//! - <https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RefreshPreferences.html>:
//!   the minimum is a percentage of desired capacity, rounded up; at 100 % maximum the refresh
//!   terminates before it launches, above it launches first, up to the maximum.
//! - <https://docs.aws.amazon.com/autoscaling/ec2/userguide/instance-refresh-rollback.html>:
//!   a rollback replaces the instances already replaced, with the previous configuration, by the
//!   same algorithm.
//!
//! Guessed, where AWS doesn't say: a replaced instance counts once it is InService, healthy in
//! its target group (the group uses the ELB health check type) and warmed up; the refresh looks
//! every 15 s (as stepdeploy's poll); a batch is `max - min` instances, as the instance
//! maintenance policy's page says ("the group can only increase and decrease capacity within
//! that minimum-maximum range when replacing instances"): it launches up to the maximum and
//! terminates down to the minimum at once, then, when the new ones count, terminates as many
//! old ones as it launched above the group. Where rounding leaves no room to replace anything,
//! one instance at a time (as stepdeploy's policy does). Its page:
//! <https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-instance-maintenance-policy.html>.

use std::collections::BTreeMap;

use stepdeploy_core::model::LaunchTemplateRef;
use stepdeploy_core::ports::{Decrement, GroupUpdate, GroupWriter};
use stepdeploy_sim::Sim;

/// How often the refresh looks (a guess: AWS doesn't document it).
const POLL: i64 = 15;

/// What one refresh did: seconds it took and the lowest healthy count seen.
pub struct Refresh {
    pub seconds: i64,
    pub lowest_healthy: u32,
}

/// Refreshes `group` (of `desired` instances) to `template` under (min %, max %), the group's
/// instances counting after `warmup` seconds healthy; `image` is what the refresh goes to.
pub async fn refresh(
    sim: &Sim,
    group: &str,
    template: &LaunchTemplateRef,
    image: &str,
    desired: u32,
    (min, max): (u32, u32),
    warmup: i64,
) -> Refresh {
    let started = sim.now();
    let mut floor = (u64::from(desired) * u64::from(min)).div_ceil(100) as u32;
    let mut ceiling = ((u64::from(desired) * u64::from(max)) / 100).max(u64::from(desired)) as u32;
    // Rounding can leave no room to replace anything; the refresh still replaces one at a time
    // (a guess: launching one more above 100 %, else letting one go).
    if ceiling <= floor {
        if max > 100 { ceiling = floor + 1 } else { floor = ceiling.saturating_sub(1) }
    }
    let update = GroupUpdate { max_size: Some(ceiling.max(desired)), launch_template: Some(template.clone()), ..GroupUpdate::default() };
    sim.update_group(group, &update).await.unwrap_or_else(|e| panic!("{e}"));
    // When each instance was first seen healthy: it counts `warmup` seconds later.
    let mut healthy_since: BTreeMap<String, i64> = BTreeMap::new();
    let mut lowest = u32::MAX;
    loop {
        let now = sim.now();
        let healthy = sim.healthy_in_group(group);
        lowest = lowest.min(healthy.len() as u32);
        healthy_since.retain(|id, _| healthy.contains(id));
        for id in &healthy {
            healthy_since.entry(id.clone()).or_insert(now);
        }
        let live = sim.live_in_group(group);
        let ready = |id: &String| healthy_since.get(id).is_some_and(|since| now - since >= warmup);
        let new: Vec<&String> = live.iter().filter(|(_, ami)| ami == image).map(|(id, _)| id).collect();
        let old: Vec<&String> = live.iter().filter(|(_, ami)| ami != image).map(|(id, _)| id).collect();
        let in_flight = new.iter().filter(|id| !ready(id)).count();
        if old.is_empty() && in_flight == 0 && new.len() as u32 >= desired {
            return Refresh { seconds: now - started, lowest_healthy: lowest };
        }
        if in_flight == 0 {
            if live.len() as u32 > desired {
                // The batch's surge counts now: as many old instances go, with the decrement.
                let surplus = live.len() - desired as usize;
                for id in old.iter().take(surplus) {
                    sim.terminate_instance(id, Decrement(true)).await.unwrap_or_else(|e| panic!("{e}"));
                }
                if old.len() < surplus {
                    sim.set_desired_capacity(group, desired).await.unwrap_or_else(|e| panic!("{e}"));
                }
            } else {
                // A batch of (max - min): launch up to the maximum and, at once, terminate down to
                // the minimum (Auto Scaling replaces those).
                let up = (ceiling - desired).min(old.len() as u32);
                let down = (desired - floor).min(old.len() as u32 - up);
                if up > 0 {
                    sim.set_desired_capacity(group, desired + up).await.unwrap_or_else(|e| panic!("{e}"));
                }
                for id in old.iter().skip(up as usize).take(down as usize) {
                    sim.terminate_instance(id, Decrement(false)).await.unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
        sim.advance(POLL);
    }
}
