//! How long a failed attempt waits before the next one, from a per-type `RetryConfig`:
//! `min(max_delay, initial_delay × backoff_factor^(attempt − 1))`, less up to
//! `RECOVERY_LIMITS.jitter` of it at random, so the retries of one burst of failures spread
//! out instead of arriving together, and never past `max_delay`.

use std::time::Duration;

use crate::model::RECOVERY_LIMITS;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Seconds, all three validated by `recovery::input` (0 ≤ initial ≤ max, factor ≥ 1).
    pub initial_delay: f64,
    pub max_delay: f64,
    pub backoff_factor: f64,
}

impl Backoff {
    /// The wait before the next attempt, before jitter; `attempt` is the one that failed
    /// (1 for the first run).
    pub fn base(&self, attempt: i32) -> f64 {
        let exponent = attempt.max(1) - 1;
        // `powi` overflows to infinity for large exponents, and min() takes it back to the cap.
        let grown = self.initial_delay * self.backoff_factor.powi(exponent);
        if grown.is_nan() {
            0.0
        } else {
            grown.min(self.max_delay)
        }
    }

    /// `unit` is a uniform random number in [0, 1): 0 waits the whole base delay.
    pub fn delay(&self, attempt: i32, unit: f64) -> Duration {
        let cut = RECOVERY_LIMITS.jitter * unit.clamp(0.0, 1.0);
        Duration::from_secs_f64(self.base(attempt) * (1.0 - cut))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_delay_grows_by_the_factor_until_the_cap() {
        let backoff = Backoff {
            initial_delay: 2.0,
            max_delay: 60.0,
            backoff_factor: 3.0,
        };
        let bases: Vec<f64> = (1..=6).map(|a| backoff.base(a)).collect();
        assert_eq!(bases, [2.0, 6.0, 18.0, 54.0, 60.0, 60.0]);
        assert_eq!(backoff.delay(3, 0.0), Duration::from_secs(18));
        // The most jitter takes off: 20 % of 18 s.
        assert!((backoff.delay(3, 0.999_999).as_secs_f64() - 14.4).abs() < 1e-4);
        // An attempt number below 1 counts as the first.
        assert_eq!(backoff.base(0), 2.0);
    }

    #[test]
    fn a_factor_of_one_is_a_fixed_interval_and_a_huge_exponent_stays_at_the_cap() {
        let fixed = Backoff {
            initial_delay: 30.0,
            max_delay: 30.0,
            backoff_factor: 1.0,
        };
        assert!((1..=100).all(|a| fixed.base(a) == 30.0));
        let steep = Backoff {
            initial_delay: 1.0,
            max_delay: 86_400.0,
            backoff_factor: 10.0,
        };
        assert_eq!(steep.base(i32::MAX), 86_400.0);
        let none = Backoff {
            initial_delay: 0.0,
            max_delay: 86_400.0,
            backoff_factor: 10.0,
        };
        assert_eq!(none.base(i32::MAX), 0.0);
    }

    fn backoffs() -> impl Strategy<Value = Backoff> {
        (0.0..=3_600.0f64, 0.0..=86_400.0f64, 1.0..=10.0f64).prop_map(
            |(initial_delay, extra, backoff_factor)| Backoff {
                initial_delay,
                max_delay: (initial_delay + extra).min(RECOVERY_LIMITS.max_delay),
                backoff_factor,
            },
        )
    }

    proptest! {
        #[test]
        fn every_delay_is_within_its_jitter_band_and_the_cap(
            backoff in backoffs(), attempt in 1..=200i32, unit in 0.0..1.0f64,
        ) {
            let base = backoff.base(attempt);
            let delay = backoff.delay(attempt, unit).as_secs_f64();
            prop_assert!(base <= backoff.max_delay);
            prop_assert!(delay <= base + 1e-9);
            prop_assert!(delay >= base * (1.0 - RECOVERY_LIMITS.jitter) - 1e-9);
            // The uncapped formula, written out independently.
            let formula = backoff.initial_delay * backoff.backoff_factor.powf(f64::from(attempt - 1));
            prop_assert!((base - formula.min(backoff.max_delay)).abs() <= 1e-6 * base.max(1.0));
        }

        #[test]
        fn delays_never_shrink_from_one_attempt_to_the_next(
            backoff in backoffs(), attempt in 1..=200i32,
        ) {
            prop_assert!(backoff.base(attempt + 1) >= backoff.base(attempt));
        }
    }
}
