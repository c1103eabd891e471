//! Time as the engine sees it: real, or virtual (a wait moves the clock at once).

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Time as the engine sees it.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
    /// Waits (or, in virtual time, moves the clock).
    async fn sleep(&self, duration: Duration);
    /// Whether Parallel branches and Map iterations run as lanes of their own time
    /// ([`run_lane`]), so that they take the time of the longest, not the sum.
    fn lanes(&self) -> bool {
        false
    }
    /// Moves now (the current lane's, or the clock's) forward to `t` if it is behind.
    fn catch_up(&self, t: DateTime<Utc>) {
        let _ = t;
    }
}

tokio::task_local! {
    /// The time of the branch or iteration this task runs, on a clock with lanes.
    static LANE: std::cell::Cell<Option<DateTime<Utc>>>;
}

/// How many lanes run anywhere in the process: while none do, reading the time skips the
/// task-local lookup (which costs about a tenth of a loop's throughput).
static OPEN_LANES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn lane_now() -> Option<DateTime<Utc>> {
    if OPEN_LANES.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        return None;
    }
    LANE.try_with(std::cell::Cell::get).ok().flatten()
}

/// Counts a lane as open while it lives, even if its future is dropped part-way.
struct OpenLane;

impl OpenLane {
    fn open() -> OpenLane {
        OPEN_LANES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenLane
    }
}

impl Drop for OpenLane {
    fn drop(&mut self) {
        OPEN_LANES.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs `work` in a lane starting at `start`: on a clock with lanes, its waits move only its own
/// time. Returns its output and the lane's time when it ended.
pub(crate) async fn run_lane<F: std::future::Future>(start: DateTime<Utc>, work: F) -> (F::Output, DateTime<Utc>) {
    let _open = OpenLane::open();
    LANE.scope(std::cell::Cell::new(Some(start)), async move {
        let output = work.await;
        (output, lane_now().unwrap_or(start))
    })
    .await
}

/// Wall-clock time: waits really wait.
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Virtual time: a wait moves the clock at once.
pub struct VirtualClock {
    now: Mutex<DateTime<Utc>>,
}

impl VirtualClock {
    /// A clock starting at `start`.
    pub fn starting_at(start: DateTime<Utc>) -> VirtualClock {
        VirtualClock { now: Mutex::new(start) }
    }

    /// Moves the clock forward.
    pub fn advance(&self, duration: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += chrono::Duration::from_std(duration).unwrap_or_default();
    }
}

#[async_trait]
impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        lane_now().unwrap_or_else(|| *self.now.lock().unwrap_or_else(|p| p.into_inner()))
    }

    async fn sleep(&self, duration: Duration) {
        let step = chrono::Duration::from_std(duration).unwrap_or_default();
        let in_lane = LANE.try_with(|lane| lane.get().map(|t| lane.set(Some(t + step)))).ok().flatten().is_some();
        if !in_lane {
            self.advance(duration);
        }
    }

    fn lanes(&self) -> bool {
        true
    }

    fn catch_up(&self, t: DateTime<Utc>) {
        let in_lane = LANE.try_with(|lane| lane.get().map(|now| lane.set(Some(now.max(t))))).ok().flatten().is_some();
        if !in_lane {
            let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
            *now = (*now).max(t);
        }
    }
}
