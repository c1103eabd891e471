//! Deploy makespan against the per-run oracle, the Fabulaws baseline, and cost
//! per deploy, on the simulated account in virtual time.
//!
//!   cargo bench -p stepdeploy-local --bench deploy [-- --quick] [-- --seeds N] [-- --poll SECONDS] [-- --no-1000]
//!
//! Prints one table row per case, then one JSON line with the summary
//! figures (`makespan_oracle_ratio_max`, `transitions_n100`, `cost_usd_n100`,
//! `api_calls_per_poll`, `min_healthy_ok`, `fabulaws_speedup_min`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use stepdeploy_core::model::LaunchTemplateRef;
use stepdeploy_core::planner::Policy;
use stepdeploy_core::ports::{Alarms, Decrement, GroupReader, GroupUpdate, GroupWriter};
use stepdeploy_local::{SERIAL_DEPLOY, demo, run};
use stepdeploy_sim::{Dist, SimSettings};

#[path = "deploy/instance_refresh.rs"]
mod instance_refresh;

/// `--poll N`: the demo's poll interval for this run (0: its own 15 s), to show what a shorter
/// interval buys against the oracle and costs in transitions.
static POLL_SECONDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Boot-to-healthy, drawn per instance.
const BOOT_MEAN: f64 = 90.0;
/// Target group deregistration delay.
const DEREGISTRATION: i64 = 30;
/// Step Functions standard workflows: $0.025 per 1,000 state transitions.
const USD_PER_TRANSITION: f64 = 0.025 / 1000.0;
/// Lambda arm64: $0.20 per million requests, $0.0000133334 per GB-second.
const USD_PER_REQUEST: f64 = 0.20 / 1_000_000.0;
const USD_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// The functions' memory size (template.yaml Globals).
const MEMORY_GB: f64 = 128.0 / 1024.0;
/// Billed-duration model: each invocation costs this much on top of its AWS calls...
const INVOCATION_OVERHEAD_MS: f64 = 10.0;
/// ...and each AWS API call from a Lambda this much (a typical in-region latency).
const API_CALL_MS: f64 = 50.0;

fn settings() -> SimSettings {
    SimSettings {
        boot_seconds: Dist::around(BOOT_MEAN, 0.2),
        health_seconds: Dist::Fixed(0.0),
        deregistration_delay_seconds: DEREGISTRATION,
        ..SimSettings::default()
    }
}

struct Case {
    n: u32,
    min: i64,
    max: i64,
    makespan: i64,
    oracle: i64,
    min_healthy: u32,
    floor: u32,
    transitions: u64,
    invocations: usize,
    api_calls: usize,
    calls_by_operation: BTreeMap<String, usize>,
    gb_seconds: f64,
    cost_usd: f64,
    fabulaws_makespan: i64,
    fabulaws_min_healthy: u32,
}

/// A serial deploy of the demo environment (which watches two alarms) with a bake of
/// `bake_seconds` and these checkpoints (approved at once): none of either for the makespan
/// table, whose bound is the rollout's alone.
async fn ours(n: u32, min: i64, max: i64, seed: u64, bake_seconds: u64, checkpoints: &[u32]) -> Case {
    let (fleet, demo_config) = demo(seed, n, settings());
    let started = fleet.sim.now();
    let warmup = demo_config.environments["demo"].health.warmup_seconds as i64;
    let mut config = (*demo_config).clone();
    config.environments["demo"].rollout.bake_seconds = bake_seconds;
    config.environments["demo"].rollout.checkpoints = checkpoints.to_vec();
    // Measured without instant rollback: its Standby instances are what `rollback_time` measures.
    config.environments["demo"].rollout.instant_rollback = false;
    let poll = POLL_SECONDS.load(std::sync::atomic::Ordering::Relaxed);
    if poll > 0 {
        config.environments["demo"].health.poll_interval_seconds = poll;
    }
    let config = Arc::new(config);
    let input = json!({"environment": "demo", "launch_template_version": "2", "min_healthy_percent": min, "max_healthy_percent": max});
    let (execution, summary) = run(&fleet.sim, config, SERIAL_DEPLOY, input, &fleet.group, Arc::new(|_| {})).await;
    assert_eq!(summary.status, "SUCCEEDED", "N={n} ({min}, {max}): {summary:?}");
    let policy = Policy::new(min, max, None).unwrap_or_else(|e| panic!("{e}"));
    // Each new instance's actual launch-to-healthy time in this run, in launch order.
    let boots: Vec<i64> = fleet.sim.launch_truth(&fleet.group, started).iter().filter_map(|(at, healthy)| healthy.map(|h| h - at)).collect();
    let invocations = execution.history.iter().filter(|e| e.kind == "TaskScheduled").count();
    let api_calls: usize = summary.api_calls.values().sum();
    let billed_seconds = (invocations as f64 * INVOCATION_OVERHEAD_MS + api_calls as f64 * API_CALL_MS) / 1000.0;
    let gb_seconds = billed_seconds * MEMORY_GB;
    let cost_usd = summary.transitions as f64 * USD_PER_TRANSITION + invocations as f64 * USD_PER_REQUEST + gb_seconds * USD_PER_GB_SECOND;
    let (fabulaws_makespan, fabulaws_min_healthy) = fabulaws(n, seed).await;
    Case {
        n,
        min,
        max,
        makespan: summary.virtual_seconds,
        oracle: oracle(n, &policy, &boots, warmup),
        min_healthy: summary.min_healthy_observed.unwrap_or(0),
        floor: policy.bounds(n).min_healthy,
        transitions: summary.transitions,
        invocations,
        api_calls,
        calls_by_operation: summary.api_calls.clone(),
        gb_seconds,
        cost_usd,
        fabulaws_makespan,
        fabulaws_min_healthy,
    }
}

/// The per-run oracle: the makespan of a scheduler that knows each new instance's actual
/// launch-to-healthy time in this run (`boots`, in launch order) and acts the moment anything
/// changes, under the same rules as the planner: the floor and ceiling of `policy`, its batch,
/// terminations that free room at once (Auto Scaling stops counting a terminating instance), and
/// `warmup` seconds healthy before a new instance counts. What it doesn't have is polling: the
/// difference is what reading AWS every few seconds costs.
fn oracle(n: u32, policy: &Policy, boots: &[i64], warmup: i64) -> i64 {
    let bounds = policy.bounds(n);
    let batch = policy.batch_size.unwrap_or(u32::MAX);
    let fallback = BOOT_MEAN as i64;
    let (mut t, mut old, mut ready): (i64, u32, Vec<i64>) = (0, n, Vec::new());
    loop {
        let counted = ready.iter().filter(|r| **r <= t).count() as u32;
        let in_flight = ready.len() as u32 - counted;
        let terminate = (old + counted).saturating_sub(bounds.min_healthy).min(old).min(batch);
        old -= terminate;
        let room = bounds.max_total.saturating_sub(old + ready.len() as u32);
        let launch = (n - ready.len() as u32).min(batch.saturating_sub(in_flight)).min(room);
        for _ in 0..launch {
            let boot = boots.get(ready.len()).copied().unwrap_or(fallback);
            ready.push(t + boot + warmup);
        }
        if old == 0 && ready.len() as u32 == n && in_flight == 0 && launch == 0 {
            return t;
        }
        match ready.iter().copied().filter(|r| *r > t).min() {
            Some(next) => t = next,
            None if launch == 0 && terminate == 0 => return t,
            None => {}
        }
    }
}

/// The Fabulaws serial algorithm, as a planner only this benchmark uses:
/// point the group at the new version, then for each old instance terminate
/// it (the group launches a replacement), sleep 45 s, and wait until the
/// group is back at full healthy capacity. Returns (makespan, lowest healthy).
async fn fabulaws(n: u32, seed: u64) -> (i64, u32) {
    const POLL: i64 = 15;
    let (fleet, _) = demo(seed, n, settings());
    let sim = &fleet.sim;
    let started = sim.now();
    let version = LaunchTemplateRef { version: Some("2".into()), ..fleet.template.clone() };
    let update = GroupUpdate { min_size: None, max_size: None, desired_capacity: None, launch_template: Some(version) };
    sim.update_group(&fleet.group, &update).await.unwrap_or_else(|e| panic!("{e}"));
    let mut lowest = sim.healthy_in_group(&fleet.group).len() as u32;
    let old: Vec<String> = sim.live_in_group(&fleet.group).into_iter().map(|(id, _)| id).collect();
    for id in old {
        sim.terminate_instance(&id, Decrement(false)).await.unwrap_or_else(|e| panic!("{e}"));
        sim.advance(45);
        lowest = lowest.min(sim.healthy_in_group(&fleet.group).len() as u32);
        while (sim.healthy_in_group(&fleet.group).len() as u32) < n {
            sim.advance(POLL);
            lowest = lowest.min(sim.healthy_in_group(&fleet.group).len() as u32);
        }
    }
    (sim.now() - started, lowest)
}

/// The demo's warm-up, which both stepdeploy and Instance Refresh wait out after an instance is healthy.
const WARMUP: i64 = 20;

/// Instance Refresh on the demo fleet of `n` under (min, max): its makespan and lowest healthy count.
async fn instance_refresh_run(n: u32, seed: u64, policy: (u32, u32)) -> instance_refresh::Refresh {
    let (fleet, _) = demo(seed, n, settings());
    let to = LaunchTemplateRef { version: Some("2".into()), ..fleet.template.clone() };
    instance_refresh::refresh(&fleet.sim, &fleet.group, &to, &fleet.new.image_id, n, policy, WARMUP).await
}

/// Instance Refresh's rollback: after a refresh to version 2 completes, an alarm, and the refresh
/// back to version 1 by the same algorithm (its auto-rollback); seconds from the alarm to full
/// old capacity serving (exact, from the sim's instances).
async fn instance_refresh_rollback(n: u32, seed: u64, policy: (u32, u32)) -> i64 {
    let settings = SimSettings { health_seconds: Dist::Fixed(HEALTH_CHECKS), ..settings() };
    let (fleet, _) = demo(seed, n, settings);
    let forward = LaunchTemplateRef { version: Some("2".into()), ..fleet.template.clone() };
    instance_refresh::refresh(&fleet.sim, &fleet.group, &forward, &fleet.new.image_id, n, policy, WARMUP).await;
    let alarm_at = fleet.sim.now();
    let back = LaunchTemplateRef { version: Some("1".into()), ..fleet.template.clone() };
    instance_refresh::refresh(&fleet.sim, &fleet.group, &back, &fleet.old.image_id, n, policy, WARMUP).await;
    let serving = fleet.sim.serving_since(&fleet.group, &fleet.old.image_id);
    serving.iter().copied().max().unwrap_or(alarm_at) - alarm_at
}

/// AWS calls of one reconcile poll, for fleets of different sizes: what replace reads (the
/// alarms, the snapshot's three services, the scaling activities).
async fn calls_per_poll() -> BTreeMap<u32, usize> {
    let mut out = BTreeMap::new();
    for n in [1, 20, 100] {
        let (fleet, config) = demo(1, n, settings());
        let env = &config.environments["demo"];
        let before = fleet.sim.calls().len();
        stepdeploy_core::fleet::read_snapshot(&fleet.sim, &fleet.sim, &fleet.sim, &fleet.group, &env.target_group_arns, fleet.sim.now())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        fleet.sim.scaling_activities(&fleet.group, fleet.sim.now()).await.unwrap_or_else(|e| panic!("{e}"));
        fleet.sim.describe_alarms(&env.alarms).await.unwrap_or_else(|e| panic!("{e}"));
        out.insert(n, fleet.sim.calls().len() - before);
    }
    out
}

/// Target group health checks for the rollback comparison: both paths pay them (an instance
/// back from Standby is registered and checked again, like a new one): a 10 s interval and a
/// healthy threshold of 2.
const HEALTH_CHECKS: f64 = 20.0;

/// A rollback during the bake, with or without instant rollback, in seconds of virtual time.
struct Rollback {
    /// From the alarm to the original version's full capacity serving again (exact, from the
    /// sim's instances): includes the wait until the next poll sees the alarm.
    from_alarm: i64,
    /// From the rollback's first step to the same moment: the rollback alone.
    from_rollback: i64,
    /// Instances launched from the alarm on.
    launches: usize,
}

/// A serial deploy of `n` whose bake sees an alarm `into_bake` seconds after it began (CloudWatch
/// evaluates on its own period, so the alarm falls anywhere between two polls).
async fn rollback_time(n: u32, seed: u64, instant: bool, into_bake: i64) -> Rollback {
    let settings = SimSettings { health_seconds: Dist::Fixed(HEALTH_CHECKS), ..settings() };
    let configured = |config: &stepdeploy_core::config::Config| {
        let mut config = config.clone();
        config.environments["demo"].rollout.bake_seconds = 600;
        config.environments["demo"].rollout.checkpoints = Vec::new();
        config.environments["demo"].rollout.instant_rollback = instant;
        Arc::new(config)
    };
    let input = json!({"environment": "demo", "launch_template_version": "2"});
    // A clean run of the same seed says when the bake begins (the sim is deterministic).
    let (fleet, config) = demo(seed, n, settings.clone());
    let bake_began = Arc::new(std::sync::Mutex::new(None::<i64>));
    let seen = bake_began.clone();
    let observer = Arc::new(move |d: &stepdeploy_core::steps::Deployment| {
        if let Some(until) = d.bake_until {
            seen.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(until - 600);
        }
    });
    run(&fleet.sim, configured(&config), SERIAL_DEPLOY, input.clone(), &fleet.group, observer).await;
    let bake_began = bake_began.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(|| panic!("no bake"));
    // The same deploy, with the alarm.
    let (fleet, config) = demo(seed, n, settings);
    let fired_at = bake_began + into_bake;
    let reason = "Threshold Crossed: 1 out of the last 1 datapoints [37.0] was greater than the threshold (5.0).".to_string();
    fleet.sim.schedule(fired_at, stepdeploy_sim::ExternalEvent::AlarmFires { alarm: stepdeploy_sim::demo::DEMO_ALARMS[0].into(), reason });
    let rollback_began = Arc::new(std::sync::Mutex::new(None::<i64>));
    let (seen, sim) = (rollback_began.clone(), fleet.sim.clone());
    let observer = Arc::new(move |d: &stepdeploy_core::steps::Deployment| {
        if d.rolling_back {
            seen.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(sim.now());
        }
    });
    let (_, summary) = run(&fleet.sim, configured(&config), SERIAL_DEPLOY, input, &fleet.group, observer).await;
    assert_eq!(summary.status, "FAILED", "the alarm rolls it back: {summary:?}");
    let serving = fleet.sim.serving_since(&fleet.group, &fleet.old.image_id);
    assert_eq!(serving.len() as u32, n, "full old capacity at the end");
    let restored_at = serving.iter().copied().max().unwrap_or(fired_at);
    let rollback_began = rollback_began.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or(fired_at);
    Rollback {
        from_alarm: restored_at - fired_at,
        from_rollback: restored_at - rollback_began,
        launches: fleet.sim.launches_since(&fleet.group, fired_at),
    }
}

/// What `with` (a deploy with `what`) adds to `plain`: makespan, transitions and cost.
fn print_added(what: &str, plain: &Case, with: &Case) {
    println!(
        "N={} ({}, {}) with {what}: makespan {} s (+{}), {} transitions (+{}), cost ${:.5} (+${:.5})",
        with.n,
        with.min,
        with.max,
        with.makespan,
        with.makespan - plain.makespan,
        with.transitions,
        with.transitions - plain.transitions,
        with.cost_usd,
        with.cost_usd - plain.cost_usd
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let seeds: u64 =
        args.iter().position(|a| a == "--seeds").and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok()).unwrap_or(if quick { 1 } else { 5 });
    let policies = [(100, 200), (90, 110), (50, 100)];
    let poll: u64 = args.iter().position(|a| a == "--poll").and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    POLL_SECONDS.store(poll, std::sync::atomic::Ordering::Relaxed);
    // What the demo environment sets, as the runs read it.
    let (_, demo_config) = demo(1, 1, settings());
    let health = &demo_config.environments["demo"].health;
    let shown_poll = if poll > 0 { poll } else { health.poll_interval_seconds };
    println!(
        "Deploy makespan, virtual time: boot-to-healthy {BOOT_MEAN} s ± 20 %, deregistration {DEREGISTRATION} s, longest wait between looks {shown_poll} s, warm-up {} s; worst of {seeds} seed(s)",
        health.warmup_seconds
    );
    println!(
        "| N | policy (min, max) | makespan | oracle | ratio | lowest healthy (floor) | Fabulaws makespan | speed-up | Fabulaws lowest healthy | transitions | Lambda invocations | GB-s | AWS calls | cost |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut ratio_max: f64 = 0.0;
    let mut speedup_min = f64::INFINITY;
    let mut floors_kept = true;
    let mut n100_transitions = 0;
    let mut n100_cost: f64 = 0.0;
    let mut by_operation = Vec::new();
    let sizes: &[u32] = if args.iter().any(|a| a == "--no-1000") { &[1, 5, 20, 100] } else { &[1, 5, 20, 100, 1000] };
    for &n in sizes {
        for (min, max) in policies {
            let mut worst: Option<Case> = None;
            for seed in 1..=seeds {
                let case = ours(n, min, max, seed, 0, &[]).await;
                floors_kept &= case.min_healthy >= case.floor;
                let ratio = case.makespan as f64 / case.oracle as f64;
                if worst.as_ref().is_none_or(|w| ratio > w.makespan as f64 / w.oracle as f64) {
                    worst = Some(case);
                }
            }
            let Some(c) = worst else { continue };
            let ratio = c.makespan as f64 / c.oracle as f64;
            let speedup = c.fabulaws_makespan as f64 / c.makespan as f64;
            ratio_max = ratio_max.max(ratio);
            speedup_min = speedup_min.min(speedup);
            if n == 100 && (min, max) == (100, 200) {
                n100_transitions = c.transitions;
            }
            if n == 100 {
                n100_cost = n100_cost.max(c.cost_usd);
                by_operation.push(format!("N=100 ({min}, {max}): {:?}", c.calls_by_operation));
            }
            println!(
                "| {} | ({}, {}) | {} s | {} s | {:.2} | {} ({}) | {} s | {:.1}x | {} | {} | {} | {:.2} | {} | ${:.5} |",
                c.n,
                c.min,
                c.max,
                c.makespan,
                c.oracle,
                ratio,
                c.min_healthy,
                c.floor,
                c.fabulaws_makespan,
                speedup,
                c.fabulaws_min_healthy,
                c.transitions,
                c.invocations,
                c.gb_seconds,
                c.api_calls,
                c.cost_usd
            );
        }
    }
    println!("AWS API calls by operation:");
    for line in &by_operation {
        println!("  {line}");
    }
    // What a 10-minute bake adds to a 100-instance deploy (#16: under $0.01 in all).
    let (unbaked, baked) = (ours(100, 100, 200, 1, 0, &[]).await, ours(100, 100, 200, 1, 600, &[]).await);
    print_added("a 600 s bake", &unbaked, &baked);
    // What checkpoints at 10 % and 50 % (each approved at once) add: the pause is a task token, so
    // a pause costs its Task's few events whatever it lasts; the waves split at each share.
    let paused = ours(100, 100, 200, 1, 0, &[10, 50]).await;
    print_added("checkpoints at 10 % and 50 %", &unbaked, &paused);
    // Rollback during the bake: relaunching the old version against bringing it back from Standby,
    // on the same seeds and alarm times (#16: at least 5x faster).
    let (mut ratio_from_alarm, mut ratio_from_rollback) = (f64::INFINITY, f64::INFINITY);
    println!(
        "Rollback during a 600 s bake (waited out on a task token), to full old capacity in service; health checks {HEALTH_CHECKS} s on both paths:"
    );
    println!(
        "| N | seed | alarm at | relaunch: from alarm | from rollback | launches | Standby: from alarm | from rollback | launches | speed-up from alarm | from rollback |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in [6u32, 20, 100] {
        for seed in 1..=seeds.min(3) {
            // Anywhere between two polls: 60 s into the bake, plus a seed-dependent part of a poll.
            let into_bake = 60 + (seed as i64 * 13) % 30;
            let relaunch = rollback_time(n, seed, false, into_bake).await;
            let instant = rollback_time(n, seed, true, into_bake).await;
            let from_alarm = relaunch.from_alarm as f64 / instant.from_alarm.max(1) as f64;
            let from_rollback = relaunch.from_rollback as f64 / instant.from_rollback.max(1) as f64;
            ratio_from_alarm = ratio_from_alarm.min(from_alarm);
            ratio_from_rollback = ratio_from_rollback.min(from_rollback);
            println!(
                "| {n} | {seed} | +{into_bake} s | {} s | {} s | {} | {} s | {} s | {} | {from_alarm:.1}x | {from_rollback:.1}x |",
                relaunch.from_alarm, relaunch.from_rollback, relaunch.launches, instant.from_alarm, instant.from_rollback, instant.launches
            );
        }
    }
    // Instance Refresh, the peer a user would pick instead, at the same settings and seeds.
    println!(
        "Instance Refresh (modelled from AWS's documentation; see benches/deploy/instance_refresh.rs) against stepdeploy, worst seed of {seeds}:"
    );
    println!(
        "| N | policy (min, max) | stepdeploy makespan | lowest healthy | Instance Refresh makespan | lowest healthy | floor | IR / stepdeploy |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    let (mut ir_ratio_min, mut ir_floor_violations, mut ours_floor_violations) = (f64::INFINITY, 0u32, 0u32);
    for n in [5u32, 20, 100] {
        for (min, max) in policies {
            let mut worst: Option<(i64, u32, i64, u32)> = None;
            for seed in 1..=seeds {
                let ours_case = ours(n, min, max, seed, 0, &[]).await;
                let ir = instance_refresh_run(n, seed, (min as u32, max as u32)).await;
                let floor = Policy::new(min, max, None).map(|p| p.bounds(n).min_healthy).unwrap_or(0);
                ir_floor_violations += u32::from(ir.lowest_healthy < floor);
                ours_floor_violations += u32::from(ours_case.min_healthy < floor);
                let ratio = ir.seconds as f64 / ours_case.makespan as f64;
                if worst.is_none_or(|(o, _, i, _)| ratio < i as f64 / o as f64) {
                    worst = Some((ours_case.makespan, ours_case.min_healthy, ir.seconds, ir.lowest_healthy));
                }
            }
            let Some((o, o_low, i, i_low)) = worst else { continue };
            let floor = Policy::new(min, max, None).map(|p| p.bounds(n).min_healthy).unwrap_or(0);
            let ratio = i as f64 / o as f64;
            ir_ratio_min = ir_ratio_min.min(ratio);
            println!("| {n} | ({min}, {max}) | {o} s | {o_low} | {i} s | {i_low} | {floor} | {ratio:.2} |");
        }
    }
    println!("floor violations: stepdeploy {ours_floor_violations}, Instance Refresh {ir_floor_violations}");
    // Rollback after an alarm, once the new version serves everywhere: Instance Refresh relaunches
    // the previous configuration; stepdeploy's instant rollback brings the old instances back.
    let mut rollback_vs_ir = f64::INFINITY;
    println!(
        "Rollback from the alarm to full old capacity (health checks {HEALTH_CHECKS} s): Instance Refresh's auto-rollback at its defaults (90, 100) and at (100, 200), against stepdeploy's instant rollback:"
    );
    println!("| N | seed | Instance Refresh (90, 100) | Instance Refresh (100, 200) | stepdeploy (Standby) | speed-up against (100, 200) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for n in [6u32, 20, 100] {
        for seed in 1..=seeds.min(3) {
            let defaults = instance_refresh_rollback(n, seed, (90, 100)).await;
            let surge = instance_refresh_rollback(n, seed, (100, 200)).await;
            let instant = rollback_time(n, seed, true, 60 + (seed as i64 * 13) % 30).await.from_alarm;
            let speedup = surge as f64 / instant.max(1) as f64;
            rollback_vs_ir = rollback_vs_ir.min(speedup);
            println!("| {n} | {seed} | {defaults} s | {surge} s | {instant} s | {speedup:.1}x |");
        }
    }
    let per_poll = calls_per_poll().await;
    println!("AWS calls per reconcile poll by fleet size: {per_poll:?}");
    let constant = per_poll.values().min() == per_poll.values().max();
    println!(
        "{}",
        json!({
            "makespan_oracle_ratio_max": (ratio_max * 100.0).round() / 100.0,
            "fabulaws_speedup_min": (speedup_min * 10.0).round() / 10.0,
            "min_healthy_ok": floors_kept,
            "transitions_n100": n100_transitions,
            "cost_usd_n100": (n100_cost * 1e5).round() / 1e5,
            "api_calls_per_poll_constant": constant,
            "bake_600_cost_usd_n100": (baked.cost_usd * 1e5).round() / 1e5,
            "bake_600_extra_transitions_n100": baked.transitions - unbaked.transitions,
            "checkpoints_10_50_extra_transitions_n100": paused.transitions - unbaked.transitions,
            "checkpoints_10_50_extra_cost_usd_n100": ((paused.cost_usd - unbaked.cost_usd) * 1e5).round() / 1e5,
            "instant_rollback_speedup_from_alarm_min": (ratio_from_alarm * 10.0).round() / 10.0,
            "instant_rollback_speedup_from_rollback_min": (ratio_from_rollback * 10.0).round() / 10.0,
            "ir_makespan_ratio_min": (ir_ratio_min * 100.0).round() / 100.0,
            "ir_floor_violations": ir_floor_violations,
            "rollback_speedup_vs_ir": (rollback_vs_ir * 10.0).round() / 10.0,
        })
    );
}
