//! What becomes of a failed attempt: the one place that decides it. The job's own
//! `retry_config` (seed 001) decides *whether* a code is retried (its list; empty means
//! every code); a `RetryConfig` stored for the code with `configureRetry` (seed 004,
//! `recovery`) decides *how*: its attempts, its backoff, and its conditions, all of which
//! must hold. Without one, the job's attempts and fixed interval apply. No task runs more
//! than `RECOVERY_LIMITS.attempts_ceiling` times whatever either says.

use std::time::Duration;

use crate::model::dispatch::codes;
use crate::model::{JobKind, RECOVERY_LIMITS};
use crate::server::recovery::{FailureFacts, TypedRetry};

/// A job's retry settings, as `createJob` stored them, and the fields retry conditions
/// may look at.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RetryRules {
    pub max_attempts: i32,
    /// Seconds between a failure and the next attempt.
    pub retry_interval: i32,
    /// Codes worth retrying; empty means every code.
    pub retry_on_errors: Vec<String>,
    #[sqlx(try_from = "String")]
    pub kind: JobKind,
    pub priority: i16,
    pub product_id: Option<String>,
    pub sending_group_id: Option<String>,
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
    /// `failure.attempt` is the attempt that failed (1 for the first run); `typed` is the
    /// stored config for `failure.error_type`, if any; `unit` a uniform random number in
    /// [0, 1) for the backoff's jitter.
    pub fn after_failure(
        &self,
        failure: &FailureFacts<'_>,
        retryable: Option<bool>,
        typed: Option<&TypedRetry>,
        unit: f64,
    ) -> Next {
        let (code, attempt) = (failure.error_type, failure.attempt);
        if code == codes::WORKER_SHUTDOWN && retryable != Some(false) {
            return Next::Release;
        }
        let listed = self.retry_on_errors.is_empty()
            || code == codes::LEASE_EXPIRED
            || self.retry_on_errors.iter().any(|c| c == code);
        if retryable == Some(false) || !listed || attempt >= RECOVERY_LIMITS.attempts_ceiling {
            return Next::Fail;
        }
        match typed {
            Some(typed) => {
                if attempt >= typed.max_attempts
                    || !typed.conditions.iter().all(|c| c.holds(failure))
                {
                    Next::Fail
                } else {
                    Next::Retry {
                        after: typed.backoff.delay(attempt, unit),
                    }
                }
            }
            None if attempt >= self.max_attempts => Next::Fail,
            None => Next::Retry {
                after: Duration::from_secs(self.retry_interval.max(0) as u64),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::RetryCondition;
    use crate::server::recovery::{Backoff, Condition};

    fn rules(max_attempts: i32, on: &[&str]) -> RetryRules {
        RetryRules {
            max_attempts,
            retry_interval: 30,
            retry_on_errors: on.iter().map(|c| c.to_string()).collect(),
            kind: JobKind::Batch,
            priority: 5,
            product_id: Some("p".into()),
            sending_group_id: Some("g".into()),
        }
    }

    fn failure(code: &str, attempt: i32) -> FailureFacts<'_> {
        FailureFacts {
            kind: JobKind::Batch,
            queue: "default",
            priority: 5,
            attempt,
            error_type: code,
            message: "upstream timed out",
            task_name: "t",
            product_id: Some("p"),
            sending_group_id: Some("g"),
        }
    }

    /// Up to 5 attempts, 2 s doubling to at most 10 s; `conditions` as seed 004 writes them.
    fn typed(conditions: serde_json::Value) -> TypedRetry {
        let conditions: Vec<RetryCondition> = serde_json::from_value(conditions).unwrap();
        TypedRetry {
            max_attempts: 5,
            backoff: Backoff {
                initial_delay: 2.0,
                max_delay: 10.0,
                backoff_factor: 2.0,
            },
            conditions: conditions
                .iter()
                .map(|c| Condition::parse(c).unwrap())
                .collect(),
        }
    }

    fn after(secs: u64) -> Next {
        Next::Retry {
            after: Duration::from_secs(secs),
        }
    }

    #[test]
    fn retries_listed_codes_while_attempts_are_left() {
        let r = rules(3, &["TIMEOUT"]);
        assert_eq!(
            r.after_failure(&failure("TIMEOUT", 1), None, None, 0.0),
            after(30)
        );
        assert_eq!(
            r.after_failure(&failure("TIMEOUT", 2), Some(true), None, 0.0),
            after(30)
        );
        assert_eq!(
            r.after_failure(&failure("TIMEOUT", 3), None, None, 0.0),
            Next::Fail
        );
        assert_eq!(
            r.after_failure(&failure("BAD_INPUT", 1), None, None, 0.0),
            Next::Fail
        );
        assert_eq!(
            r.after_failure(&failure("TIMEOUT", 1), Some(false), None, 0.0),
            Next::Fail
        );
        // An empty list retries every code.
        assert_eq!(
            rules(2, &[]).after_failure(&failure("ANYTHING", 1), None, None, 0.0),
            after(30)
        );
    }

    #[test]
    fn a_lost_lease_is_retried_and_a_shutdown_is_released() {
        let r = rules(2, &["TIMEOUT"]);
        assert!(matches!(
            r.after_failure(&failure(codes::LEASE_EXPIRED, 1), None, None, 0.0),
            Next::Retry { .. }
        ));
        assert_eq!(
            r.after_failure(&failure(codes::LEASE_EXPIRED, 2), None, None, 0.0),
            Next::Fail
        );
        assert_eq!(
            r.after_failure(&failure(codes::WORKER_SHUTDOWN, 2), None, None, 0.0),
            Next::Release
        );
    }

    /// A case, the job's rules, the type's config, retryable, the attempt, what follows.
    type Case<'a> = (
        &'a str,
        &'a RetryRules,
        Option<&'a TypedRetry>,
        Option<bool>,
        i32,
        Next,
    );

    /// Job list × type config × conditions × retryable × attempts.
    #[test]
    fn the_decision_table() {
        let none = typed(json!([]));
        let priority_high = typed(json!([{ "field": "priority", "operator": "gte", "value": 5 }]));
        let priority_top = typed(json!([{ "field": "priority", "operator": "eq", "value": 10 }]));
        let two = typed(json!([
            { "field": "message", "operator": "contains", "value": "timed out" },
            { "field": "kind", "operator": "in", "value": ["batch"] },
        ]));
        let listed = rules(2, &["TIMEOUT"]);
        let unlisted = rules(2, &["RATE_LIMITED"]);
        let every = rules(2, &[]);
        #[rustfmt::skip]
        let table: &[Case] = &[
            // The type's config decides how: its attempts (5, past the job's 2) and its backoff.
            ("config, 1st",         &listed,   Some(&none),          None,        1, after(2)),
            ("config, 2nd",         &listed,   Some(&none),          None,        2, after(4)),
            ("config, 3rd",         &listed,   Some(&none),          None,        3, after(8)),
            ("config, 4th: cap",    &listed,   Some(&none),          None,        4, after(10)),
            ("config, 5th: spent",  &listed,   Some(&none),          None,        5, Next::Fail),
            // The job's list decides whether: a config does not retry an unlisted code.
            ("unlisted",            &unlisted, Some(&none),          None,        1, Next::Fail),
            ("empty list",          &every,    Some(&none),          None,        1, after(2)),
            // A worker that says the failure is final is believed.
            ("not retryable",       &listed,   Some(&none),          Some(false), 1, Next::Fail),
            ("retryable",           &listed,   Some(&none),          Some(true),  1, after(2)),
            // Conditions: every one must hold.
            ("condition holds",     &listed,   Some(&priority_high), None,        1, after(2)),
            ("condition fails",     &listed,   Some(&priority_top),  None,        1, Next::Fail),
            ("both hold",           &listed,   Some(&two),           None,        1, after(2)),
            // No config: the job's own attempts and interval.
            ("no config, 1st",      &listed,   None,                 None,        1, after(30)),
            ("no config, spent",    &listed,   None,                 None,        2, Next::Fail),
            ("no config, unlisted", &unlisted, None,                 None,        1, Next::Fail),
        ];
        for (case, rules, typed, retryable, attempt, expected) in table {
            assert_eq!(
                rules.after_failure(&failure("TIMEOUT", *attempt), *retryable, *typed, 0.0),
                *expected,
                "{case}"
            );
        }
    }

    #[test]
    fn no_config_retries_past_the_ceiling() {
        let mut endless = typed(json!([]));
        endless.max_attempts = i32::MAX;
        let ceiling = RECOVERY_LIMITS.attempts_ceiling;
        let r = rules(i32::MAX, &[]);
        assert!(matches!(
            r.after_failure(&failure("TIMEOUT", ceiling - 1), None, Some(&endless), 0.0),
            Next::Retry { .. }
        ));
        assert_eq!(
            r.after_failure(&failure("TIMEOUT", ceiling), None, Some(&endless), 0.0),
            Next::Fail
        );
        assert_eq!(
            r.after_failure(&failure("TIMEOUT", ceiling), None, None, 0.0),
            Next::Fail
        );
    }
}
