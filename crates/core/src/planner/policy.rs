//! The rollout policy: min/max healthy percent and batch size, and the
//! capacity bounds they give at a desired capacity.

use serde::{Deserialize, Serialize};

/// The rollout policy, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// 0..=100.
    pub min_healthy_percent: u32,
    /// 100..=200.
    pub max_healthy_percent: u32,
    /// Replace at most this many instances at a time (at least 1).
    pub batch_size: Option<u32>,
}

/// A policy value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {value} is not allowed; expected {expected}")]
pub struct PolicyError {
    /// The field's name.
    pub field: &'static str,
    /// The value given.
    pub value: i64,
    /// What is allowed.
    pub expected: &'static str,
}

impl Policy {
    /// Checks ranges; the fields are named as in the config and execution input.
    pub fn new(min_healthy_percent: i64, max_healthy_percent: i64, batch_size: Option<i64>) -> Result<Policy, PolicyError> {
        if !(0..=100).contains(&min_healthy_percent) {
            return Err(PolicyError { field: "min_healthy_percent", value: min_healthy_percent, expected: "0..=100" });
        }
        if !(100..=200).contains(&max_healthy_percent) {
            return Err(PolicyError { field: "max_healthy_percent", value: max_healthy_percent, expected: "100..=200" });
        }
        if min_healthy_percent == 100 && max_healthy_percent == 100 {
            return Err(PolicyError {
                field: "max_healthy_percent",
                value: 100,
                expected: "above 100 when min_healthy_percent is 100 (otherwise nothing can be replaced)",
            });
        }
        let batch_size = match batch_size {
            None => None,
            Some(b) if (1..=i64::from(u32::MAX)).contains(&b) => Some(b as u32),
            Some(b) => {
                return Err(PolicyError { field: "batch_size", value: b, expected: "at least 1" });
            }
        };
        Ok(Policy { min_healthy_percent: min_healthy_percent as u32, max_healthy_percent: max_healthy_percent as u32, batch_size })
    }

    /// The capacity bounds for a rollout of `desired` live instances.
    pub fn bounds(&self, desired: u32) -> Bounds {
        if desired == 0 {
            return Bounds { min_healthy: 0, max_total: 0, wave: 1 };
        }
        let d = u64::from(desired);
        let mut min_healthy = (d * u64::from(self.min_healthy_percent)).div_ceil(100) as u32;
        let mut max_total = ((d * u64::from(self.max_healthy_percent)) / 100).max(d) as u32;
        if max_total <= min_healthy {
            if self.max_healthy_percent > 100 {
                max_total = min_healthy + 1;
            } else {
                min_healthy = max_total - 1;
            }
        }
        let wave = (max_total - min_healthy).min(self.batch_size.unwrap_or(u32::MAX)).max(1);
        Bounds { min_healthy, max_total, wave }
    }

    /// How many replacement waves the policy forces for `desired` instances.
    pub fn waves(&self, desired: u32) -> u32 {
        desired.div_ceil(self.bounds(desired).wave)
    }
}

/// Capacity bounds for one rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Healthy capacity floor.
    pub min_healthy: u32,
    /// Live instance ceiling.
    pub max_total: u32,
    /// Instances replaced per wave.
    pub wave: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(min: i64, max: i64) -> Policy {
        Policy::new(min, max, None).unwrap()
    }

    #[test]
    fn bounds_follow_ecs_rounding() {
        // (min%, max%, desired) -> (min_healthy, max_total, wave)
        let cases = [
            (100, 200, 4, (4, 8, 4)),
            (90, 110, 10, (9, 11, 2)),
            (50, 100, 4, (2, 4, 2)),
            (100, 150, 1, (1, 2, 1)),
            (90, 110, 1, (1, 2, 1)),
            (90, 100, 1, (0, 1, 1)),
            (0, 100, 3, (0, 3, 3)),
            (100, 101, 100, (100, 101, 1)),
        ];
        for (min, max, d, (floor, ceiling, wave)) in cases {
            let b = policy(min, max).bounds(d);
            assert_eq!((b.min_healthy, b.max_total, b.wave), (floor, ceiling, wave), "policy ({min}, {max}) at {d}");
        }
    }

    #[test]
    fn batch_size_caps_the_wave_and_is_never_zero() {
        let p = Policy::new(0, 200, Some(3)).unwrap();
        assert_eq!(p.bounds(10).wave, 3);
        assert_eq!(p.waves(10), 4);
        assert!(Policy::new(0, 200, Some(0)).is_err());
    }

    #[test]
    fn out_of_range_policy_names_the_field_and_value() {
        let e = Policy::new(120, 200, None).unwrap_err();
        assert_eq!(e.to_string(), "min_healthy_percent: 120 is not allowed; expected 0..=100");
        let e = Policy::new(100, 250, None).unwrap_err();
        assert_eq!(e.field, "max_healthy_percent");
        assert!(Policy::new(100, 100, None).is_err());
    }
}
