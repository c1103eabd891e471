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
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}
