//! Retry: the delay before the next attempt, or none when the retriers are spent.

use std::collections::HashMap;

use crate::error::StatesError;
use crate::model::Retrier;

/// The delay before retrying `error`, counting attempts per retrier; `None` when no retrier applies or it is spent.
pub(crate) fn retry_delay(retriers: &[Retrier], error: &StatesError, attempts: &mut HashMap<usize, u32>) -> Option<f64> {
    if !error.is_catchable() {
        return None;
    }
    let (index, retrier) = retriers.iter().enumerate().find(|(_, r)| error.matches(&r.error_equals))?;
    let done = attempts.entry(index).or_insert(0);
    if *done >= retrier.max_attempts {
        return None;
    }
    let mut delay = retrier.interval_seconds * retrier.backoff_rate.powi(*done as i32);
    *done += 1;
    if let Some(max) = retrier.max_delay_seconds {
        delay = delay.min(max);
    }
    if retrier.full_jitter {
        use rand::Rng;
        delay = rand::rng().random_range(0.0..=delay.max(0.0));
    }
    Some(delay)
}
