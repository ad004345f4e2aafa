//! The retry circuit breaker: when one error type has failed `failures` times or more within
//! `window` (across every job), its automatic retries pause: a retry decided meanwhile waits
//! at least the window instead of its backoff, so a broken dependency is not hammered by
//! every task that depends on it. It closes by itself once the failures fall below the
//! threshold. Every portal process reads the same committed records, so they agree.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::PgConnection;

use crate::server::dispatch::retry::Next;

/// `JOBDECK_RETRY_BREAKER_FAILURES` (default 200) and `JOBDECK_RETRY_BREAKER_WINDOW_SECS`
/// (default 60).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryBreaker {
    pub failures: u32,
    pub window: Duration,
}

impl Default for RetryBreaker {
    fn default() -> Self {
        Self {
            failures: 200,
            window: Duration::from_secs(60),
        }
    }
}

/// Of these codes, those with at least `failures` records in the last `window`: each count
/// stops at the threshold, so a storm costs a bounded index range per code.
const OPEN_BREAKERS_SQL: &str = "
    SELECT c.code FROM unnest($1::text[]) AS c(code)
    WHERE (SELECT count(*) FROM (SELECT 1 FROM error_records e
                                 WHERE e.error_type = c.code
                                   AND e.at > now() - make_interval(secs => $2)
                                 LIMIT $3) recent) >= $3";

impl RetryBreaker {
    pub async fn open(
        &self,
        conn: &mut PgConnection,
        codes: &[String],
    ) -> Result<HashSet<String>, sqlx::Error> {
        if codes.is_empty() {
            return Ok(HashSet::new());
        }
        let open: Vec<String> = sqlx::query_scalar(OPEN_BREAKERS_SQL)
            .bind(codes)
            .bind(self.window.as_secs_f64())
            .bind(i64::from(self.failures))
            .fetch_all(conn)
            .await?;
        Ok(open.into_iter().collect())
    }

    /// A retry of an open type's failure waits out the window.
    pub fn hold(&self, next: Next, open: bool) -> Next {
        match next {
            Next::Retry { after } if open => Next::Retry {
                after: after.max(self.window),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_breaker_holds_retries_for_its_window_and_nothing_else() {
        let breaker = RetryBreaker {
            failures: 3,
            window: Duration::from_secs(60),
        };
        let soon = Next::Retry {
            after: Duration::from_secs(2),
        };
        let window = Next::Retry {
            after: Duration::from_secs(60),
        };
        assert_eq!(breaker.hold(soon, true), window);
        assert_eq!(breaker.hold(soon, false), soon);
        let later = Next::Retry {
            after: Duration::from_secs(600),
        };
        assert_eq!(breaker.hold(later, true), later);
        assert_eq!(breaker.hold(Next::Fail, true), Next::Fail);
        assert_eq!(breaker.hold(Next::Release, true), Next::Release);
    }
}
