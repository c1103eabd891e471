//! Virtual time shared by several executions running at once (two deploys on one environment,
//! the second waiting for the first's lock): a discrete-event clock. Each execution runs as a
//! participant ([`SharedVirtualClock::run`]); a wait parks it until the clock reaches its end,
//! and the clock moves only when every participant is waiting, to the earliest end among them.
//! So each execution sees the others' effects at the virtual moment they happen.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use crate::clock::Clock;

/// A parked wait: when it ends, in which order it was made, and how to wake it.
struct Sleeper {
    until: DateTime<Utc>,
    order: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Sleeper {
    fn eq(&self, other: &Self) -> bool {
        (self.until, self.order) == (other.until, other.order)
    }
}
impl Eq for Sleeper {}
impl PartialOrd for Sleeper {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sleeper {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.until, self.order).cmp(&(other.until, other.order))
    }
}

struct State {
    now: DateTime<Utc>,
    participants: usize,
    sleepers: BinaryHeap<Reverse<Sleeper>>,
    order: u64,
}

/// Virtual time for several executions at once.
pub struct SharedVirtualClock {
    state: Mutex<State>,
}

impl SharedVirtualClock {
    /// A clock at `start`, with no participant yet.
    pub fn starting_at(start: DateTime<Utc>) -> Arc<SharedVirtualClock> {
        Arc::new(SharedVirtualClock { state: Mutex::new(State { now: start, participants: 0, sleepers: BinaryHeap::new(), order: 0 }) })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `work` (an execution) as a participant: the clock waits for it before moving. It
    /// joins when `run` is called, not when first polled, so that executions started together
    /// (`tokio::join!`) all count before any of them waits.
    pub fn run<'a, F: Future + 'a>(&'a self, work: F) -> impl Future<Output = F::Output> + 'a {
        self.lock().participants += 1;
        let leaves = Leaves(self);
        async move {
            let _leaves = leaves;
            work.await
        }
    }

    /// When every participant waits, moves to the earliest end and wakes the waits that end then.
    fn advance(state: &mut State) {
        if state.participants == 0 || state.sleepers.len() < state.participants {
            return;
        }
        let Some(Reverse(first)) = state.sleepers.pop() else { return };
        state.now = state.now.max(first.until);
        let until = first.until;
        let _ = first.wake.send(());
        while state.sleepers.peek().is_some_and(|Reverse(s)| s.until <= until) {
            if let Some(Reverse(next)) = state.sleepers.pop() {
                let _ = next.wake.send(());
            }
        }
    }
}

/// A participant leaving (its execution ended, or was dropped): the others may all be waiting now.
struct Leaves<'a>(&'a SharedVirtualClock);

impl Drop for Leaves<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.participants = state.participants.saturating_sub(1);
        SharedVirtualClock::advance(&mut state);
    }
}

#[async_trait]
impl Clock for SharedVirtualClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    async fn sleep(&self, duration: Duration) {
        let step = chrono::Duration::from_std(duration).unwrap_or_default();
        let woken = {
            let mut state = self.lock();
            let until = state.now + step;
            if state.participants == 0 {
                // Nobody else to wait for: time moves at once, as on a VirtualClock.
                state.now = until;
                return;
            }
            let (wake, woken) = oneshot::channel();
            state.order += 1;
            let order = state.order;
            state.sleepers.push(Reverse(Sleeper { until, order, wake }));
            SharedVirtualClock::advance(&mut state);
            woken
        };
        let _ = woken.await;
    }
}
