//! What becomes of a failed attempt, from seed 001's `retry_config`: the one place that
//! decides it (the error-recovery issue adds per-error-type backoff here).

use std::time::Duration;

use crate::model::dispatch::codes;

/// A job's retry settings, as `createJob` stored them.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RetryRules {
    pub max_attempts: i32,
    /// Seconds between a failure and the next attempt.
    pub retry_interval: i32,
    /// Codes worth retrying; empty means every code.
    pub retry_on_errors: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Pending again, claimable after this long.
    Retry { after: Duration },
    /// Pending again at once, the attempt not counted (the worker shut down).
    Release,
    /// Failed for good; the job fails with it.
    Fail,
}

impl RetryRules {
    /// `attempt` is the attempt that failed (1 for the first run).
    pub fn after_failure(&self, attempt: i32, code: &str, retryable: Option<bool>) -> Next {
        if code == codes::WORKER_SHUTDOWN && retryable != Some(false) {
            return Next::Release;
        }
        let listed = self.retry_on_errors.is_empty()
            || code == codes::LEASE_EXPIRED
            || self.retry_on_errors.iter().any(|c| c == code);
        if retryable == Some(false) || !listed || attempt >= self.max_attempts {
            return Next::Fail;
        }
        Next::Retry {
            after: Duration::from_secs(self.retry_interval.max(0) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(max_attempts: i32, on: &[&str]) -> RetryRules {
        RetryRules {
            max_attempts,
            retry_interval: 30,
            retry_on_errors: on.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn retries_listed_codes_while_attempts_are_left() {
        let later = Next::Retry {
            after: Duration::from_secs(30),
        };
        let r = rules(3, &["TIMEOUT"]);
        assert_eq!(r.after_failure(1, "TIMEOUT", None), later);
        assert_eq!(r.after_failure(2, "TIMEOUT", Some(true)), later);
        assert_eq!(r.after_failure(3, "TIMEOUT", None), Next::Fail);
        assert_eq!(r.after_failure(1, "BAD_INPUT", None), Next::Fail);
        assert_eq!(r.after_failure(1, "TIMEOUT", Some(false)), Next::Fail);
        // An empty list retries every code.
        assert_eq!(rules(2, &[]).after_failure(1, "ANYTHING", None), later);
    }

    #[test]
    fn a_lost_lease_is_retried_and_a_shutdown_is_released() {
        let r = rules(2, &["TIMEOUT"]);
        assert!(matches!(
            r.after_failure(1, codes::LEASE_EXPIRED, None),
            Next::Retry { .. }
        ));
        assert_eq!(r.after_failure(2, codes::LEASE_EXPIRED, None), Next::Fail);
        assert_eq!(
            r.after_failure(2, codes::WORKER_SHUTDOWN, None),
            Next::Release
        );
    }
}
