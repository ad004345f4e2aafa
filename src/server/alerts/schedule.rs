//! A script's expected schedule (a cron expression in a time zone, or a period) and its
//! start signals. The next expected run is counted from the script's latest sign of life:
//! its last report, its last start signal, or the moment the schedule was set, whichever is
//! latest (as Healthchecks.io does), so a schedule never fires for runs before it existed.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;
use sqlx::{FromRow, PgPool};

use super::AlertError;
use crate::model::REPORT_LIMITS;
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::input::InvalidInput;

/// The longest period and grace a schedule may have: 366 days.
pub const MAX_SECONDS: i32 = 366 * 24 * 3600;
/// The period of a schedule given neither a cron expression nor a period.
pub const DEFAULT_PERIOD: i64 = 24 * 3600;

#[derive(Clone, Debug)]
pub enum Expected {
    Cron { cron: Box<Cron>, zone: Tz },
    Every(Duration),
}

/// A schedule as stored, checked.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub expected: Expected,
    pub grace: Duration,
}

impl Schedule {
    /// Checks what a caller sent: exactly one of `cron` (five fields, or an alias such as
    /// `@daily`) and `period_seconds`; a time zone of the IANA database.
    pub fn parse(
        cron: Option<&str>,
        timezone: Option<&str>,
        period_seconds: Option<i64>,
        grace_seconds: Option<i64>,
    ) -> Result<Self, InvalidInput> {
        let grace = match grace_seconds {
            None => 300,
            Some(seconds) if (0..=i64::from(MAX_SECONDS)).contains(&seconds) => seconds,
            Some(_) => {
                return Err(InvalidInput::new(
                    "grace_seconds",
                    format!("must be between 0 and {MAX_SECONDS}"),
                ))
            }
        };
        let expected = match (
            cron.map(str::trim).filter(|c| !c.is_empty()),
            period_seconds,
        ) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(InvalidInput::new(
                    "cron",
                    "give either cron (with timezone) or period_seconds, not both",
                ))
            }
            (Some(cron), None) => {
                let zone = timezone.unwrap_or("UTC");
                let zone = Tz::from_str(zone).map_err(|_| {
                    InvalidInput::new("timezone", format!("unknown time zone {zone:?}"))
                })?;
                let parsed = Cron::from_str(cron)
                    .map_err(|error| InvalidInput::new("cron", format!("{cron:?}: {error}")))?;
                Expected::Cron {
                    cron: Box::new(parsed),
                    zone,
                }
            }
            (None, Some(seconds)) if (60..=i64::from(MAX_SECONDS)).contains(&seconds) => {
                Expected::Every(Duration::seconds(seconds))
            }
            (None, Some(_)) => {
                return Err(InvalidInput::new(
                    "period_seconds",
                    format!("must be between 60 and {MAX_SECONDS}"),
                ))
            }
        };
        Ok(Schedule {
            expected,
            grace: Duration::seconds(grace),
        })
    }

    /// The first expected run after `anchor`; `None` when a cron expression has none left.
    pub fn next_after(&self, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.expected {
            Expected::Every(period) => anchor.checked_add_signed(*period),
            // Counted in the zone's wall clock, so a daily 09:00 stays 09:00 across a
            // daylight-saving change.
            Expected::Cron { cron, zone } => cron
                .find_next_occurrence(&anchor.with_timezone(zone), false)
                .ok()
                .map(|next| next.with_timezone(&Utc)),
        }
    }

    /// When a run not seen since `anchor` counts as missed.
    pub fn deadline_after(&self, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_after(anchor)
            .and_then(|next| next.checked_add_signed(self.grace))
    }
}

/// What a schedule counts its next run from: the latest of when it was set, the script's
/// last report and its last start signal. Each only moves forward.
pub fn last_seen(
    set_at: DateTime<Utc>,
    last_report: Option<DateTime<Utc>>,
    last_start: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    [last_report, last_start]
        .into_iter()
        .flatten()
        .fold(set_at, DateTime::max)
}

/// A stored schedule row.
#[derive(Clone, Debug, FromRow, serde::Serialize)]
pub struct StoredSchedule {
    pub job_key: String,
    pub cron: Option<String>,
    pub timezone: String,
    pub period_seconds: Option<i32>,
    pub grace_seconds: i32,
    pub updated_at: DateTime<Utc>,
}

impl StoredSchedule {
    pub fn schedule(&self) -> Result<Schedule, InvalidInput> {
        Schedule::parse(
            self.cron.as_deref(),
            Some(&self.timezone),
            self.period_seconds.map(i64::from),
            Some(i64::from(self.grace_seconds)),
        )
    }
}

/// What `setSchedule` stores for a script (its page's form, or `POST /alert-operations`).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    pub job_key: String,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub period_seconds: Option<i64>,
    pub grace_seconds: Option<i64>,
}

fn check_job_key(job_key: &str) -> Result<(), InvalidInput> {
    let chars = job_key.chars().count();
    if chars == 0 || chars > REPORT_LIMITS.job_key_chars {
        return Err(InvalidInput::new(
            "job_key",
            format!("must be 1 to {} characters", REPORT_LIMITS.job_key_chars),
        ));
    }
    Ok(())
}

/// Stores (or replaces) a script's schedule, audited. `now` dates it: the first deadline is
/// counted from it when the script has not run since.
pub async fn set_schedule(
    pool: &PgPool,
    actor: &Actor,
    request: &ScheduleRequest,
    now: DateTime<Utc>,
) -> Result<StoredSchedule, AlertError> {
    super::actions::may_act(actor)?;
    check_job_key(&request.job_key)?;
    // Neither a cron expression nor a period: a run a day, as Healthchecks.io does.
    let period = match (&request.cron, request.period_seconds) {
        (None, None) => Some(DEFAULT_PERIOD),
        (_, period) => period,
    };
    let schedule = Schedule::parse(
        request.cron.as_deref(),
        request.timezone.as_deref(),
        period,
        request.grace_seconds,
    )?;
    let (cron, timezone, period) = match &schedule.expected {
        Expected::Cron { zone, .. } => (
            request.cron.as_deref().map(str::trim),
            zone.name().to_string(),
            None,
        ),
        Expected::Every(period) => (None, "UTC".to_string(), Some(period.num_seconds() as i32)),
    };
    let mut tx = pool.begin().await?;
    let stored: StoredSchedule = sqlx::query_as(
        "INSERT INTO job_schedules (job_key, cron, timezone, period_seconds, grace_seconds, updated_by, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (job_key) DO UPDATE SET cron = $2, timezone = $3, period_seconds = $4,
             grace_seconds = $5, updated_by = $6, updated_at = $7, deadline_at = NULL
         RETURNING job_key, cron, timezone, period_seconds, grace_seconds, updated_at",
    )
    .bind(&request.job_key)
    .bind(cron)
    .bind(&timezone)
    .bind(period)
    .bind(schedule.grace.num_seconds() as i32)
    .bind(&actor.label)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let event = Event {
        action: "setSchedule",
        target: Some(&request.job_key),
        details: serde_json::json!({
            "cron": stored.cron, "timezone": stored.timezone,
            "period_seconds": stored.period_seconds, "grace_seconds": stored.grace_seconds,
        }),
        outcome: Outcome::Success,
    };
    audit::record(&mut tx, actor, event).await?;
    tx.commit().await?;
    Ok(stored)
}

/// Removes a script's schedule; false when it had none.
pub async fn remove_schedule(
    pool: &PgPool,
    actor: &Actor,
    job_key: &str,
) -> Result<bool, AlertError> {
    super::actions::may_act(actor)?;
    let mut tx = pool.begin().await?;
    let removed = sqlx::query("DELETE FROM job_schedules WHERE job_key = $1")
        .bind(job_key)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    if removed {
        let event = Event {
            action: "removeSchedule",
            target: Some(job_key),
            details: serde_json::json!({}),
            outcome: Outcome::Success,
        };
        audit::record(&mut tx, actor, event).await?;
    }
    tx.commit().await?;
    Ok(removed)
}

pub async fn load_schedule(
    pool: &PgPool,
    job_key: &str,
) -> Result<Option<StoredSchedule>, sqlx::Error> {
    sqlx::query_as(
        "SELECT job_key, cron, timezone, period_seconds, grace_seconds, updated_at
         FROM job_schedules WHERE job_key = $1",
    )
    .bind(job_key)
    .fetch_optional(pool)
    .await
}

/// A start signal: the script's run began at `started_at` (the arrival time when absent).
/// Only the latest start is kept.
pub async fn record_start(
    pool: &PgPool,
    job_key: &str,
    started_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, AlertError> {
    check_job_key(job_key)?;
    let given = started_at.unwrap_or(now);
    if given > now + Duration::seconds(REPORT_LIMITS.future_skew_secs) {
        return Err(InvalidInput::new(
            "started_at",
            "started_at is out of range: more than a day in the future",
        )
        .into());
    }
    // A start ahead of the portal's clock (a skewed host) counts as now: kept as it was, it
    // would outlive the report that ends the run and hold the missed-run deadline off.
    let started_at = given.min(now);
    sqlx::query(
        "INSERT INTO job_starts (job_key, started_at, received_at) VALUES ($1, $2, $3)
         ON CONFLICT (job_key) DO UPDATE
             SET started_at = GREATEST(job_starts.started_at, EXCLUDED.started_at),
                 received_at = EXCLUDED.received_at",
    )
    .bind(job_key)
    .bind(started_at)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(started_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn a_daily_cron_keeps_its_wall_clock_hour_across_daylight_saving() {
        let schedule =
            Schedule::parse(Some("0 9 * * *"), Some("Europe/Berlin"), None, Some(600)).unwrap();
        // 2026-03-29 02:00 CET becomes 03:00 CEST: 09:00 is 08:00 UTC before, 07:00 after.
        assert_eq!(
            schedule.next_after(at("2026-03-27T08:30:00Z")),
            Some(at("2026-03-28T08:00:00Z"))
        );
        assert_eq!(
            schedule.next_after(at("2026-03-28T08:01:00Z")),
            Some(at("2026-03-29T07:00:00Z"))
        );
        assert_eq!(
            schedule.deadline_after(at("2026-03-28T08:01:00Z")),
            Some(at("2026-03-29T07:10:00Z"))
        );
        // And back in October: 09:00 CEST is 07:00 UTC, 09:00 CET 08:00 UTC.
        assert_eq!(
            schedule.next_after(at("2026-10-24T07:05:00Z")),
            Some(at("2026-10-25T08:00:00Z"))
        );
    }

    #[test]
    fn a_period_counts_from_the_anchor() {
        let schedule = Schedule::parse(None, None, Some(3600), Some(60)).unwrap();
        assert_eq!(
            schedule.deadline_after(at("2026-01-01T00:00:00Z")),
            Some(at("2026-01-01T01:01:00Z"))
        );
    }

    #[test]
    fn bad_schedules_name_their_field() {
        let field = |r: Result<Schedule, InvalidInput>| r.unwrap_err().field;
        assert_eq!(
            field(Schedule::parse(Some("61 * * * *"), None, None, None)),
            "cron"
        );
        assert_eq!(
            field(Schedule::parse(
                Some("0 9 * * *"),
                Some("Mars/Base"),
                None,
                None
            )),
            "timezone"
        );
        assert_eq!(
            field(Schedule::parse(Some("@daily"), None, Some(3600), None)),
            "cron"
        );
        assert_eq!(field(Schedule::parse(None, None, None, None)), "cron");
        assert_eq!(
            field(Schedule::parse(None, None, Some(10), None)),
            "period_seconds"
        );
        assert_eq!(
            field(Schedule::parse(None, None, Some(3600), Some(-1))),
            "grace_seconds"
        );
    }
}
