//! The evaluator: claims the rules that are due (row locks, `SKIP LOCKED`, so each rule is
//! judged by one portal process at a time), asks `judge` what holds at `now`, moves each
//! alert along ok → pending → firing → resolved, and in the same transaction appends every
//! change to `alert_events` with the deliveries it owes (the outbox). `now` is a parameter:
//! the background task passes the clock, the tests a clock of their own.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use super::judge::{self, Finding};
use crate::model::{AlertKind, AlertState, ScopeKind, Severity};

/// Rules judged per transaction: each kind's query has a fixed cost (~40 ms at 100,000
/// scripts), so a cycle is best judged in as few transactions as memory allows.
const BATCH: i64 = 20_000;

#[derive(Clone, Debug, FromRow)]
pub struct ClaimedRule {
    pub id: Uuid,
    pub name: String,
    pub kind: AlertKind,
    pub severity: Severity,
    pub pending_for: i32,
    pub repeat_interval: Option<i32>,
}

/// An alert as stored (one rule, one subject).
#[derive(Clone, Debug, FromRow)]
pub struct Current {
    pub rule_id: Uuid,
    pub subject: String,
    pub job_key: Option<String>,
    pub job_kind: Option<String>,
    pub label: String,
    pub state: AlertState,
    pub pending_since: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    pub notified_at: Option<DateTime<Utc>>,
    pub facts: Value,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub snoozed_until: Option<DateTime<Utc>>,
}

/// What one judgement does to one alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to record (still fine, still pending, firing with no reminder due).
    Stay,
    /// A state change: `from` → `to`.
    Change { from: AlertState, to: AlertState },
    /// Still firing, and a reminder is due.
    Remind,
}

impl Step {
    /// Whether the channels hear of it: firing, a reminder, resolved. Pending and back to
    /// ok are recorded but not sent.
    pub fn notifies(self) -> bool {
        matches!(
            self,
            Step::Remind
                | Step::Change {
                    to: AlertState::Firing,
                    ..
                }
                | Step::Change {
                    to: AlertState::Resolved,
                    ..
                }
        )
    }
}

/// The state machine, alone: `holds` is whether the condition holds at `now`.
pub fn step(
    rule: &ClaimedRule,
    current: Option<&Current>,
    holds: bool,
    now: DateTime<Utc>,
) -> Step {
    let pending_for = Duration::seconds(i64::from(rule.pending_for));
    match (current.map(|c| c.state), holds) {
        (None, false) => Step::Stay,
        (None, true) if pending_for.is_zero() => Step::Change {
            from: AlertState::Ok,
            to: AlertState::Firing,
        },
        (None, true) => Step::Change {
            from: AlertState::Ok,
            to: AlertState::Pending,
        },
        (Some(AlertState::Pending), true) => {
            let since = current.map(|c| c.pending_since).unwrap_or(now);
            if now - since >= pending_for {
                Step::Change {
                    from: AlertState::Pending,
                    to: AlertState::Firing,
                }
            } else {
                Step::Stay
            }
        }
        (Some(AlertState::Pending), false) => Step::Change {
            from: AlertState::Pending,
            to: AlertState::Ok,
        },
        (Some(_), false) => Step::Change {
            from: AlertState::Firing,
            to: AlertState::Resolved,
        },
        (Some(_), true) => {
            let current = current.expect("matched Some");
            let quiet = current.acknowledged_at.is_some()
                || current.snoozed_until.is_some_and(|until| until > now);
            let due = rule.repeat_interval.is_some_and(|every| {
                let last = current.notified_at.or(current.fired_at).unwrap_or(now);
                now - last >= Duration::seconds(i64::from(every))
            });
            if due && !quiet {
                Step::Remind
            } else {
                Step::Stay
            }
        }
    }
}

/// An active silence.
#[derive(Clone, Debug, FromRow)]
pub struct Silence {
    pub scope_kind: ScopeKind,
    pub scope_value: Option<String>,
}

impl Silence {
    pub fn covers(&self, job_key: Option<&str>, job_kind: Option<&str>) -> bool {
        match self.scope_kind {
            ScopeKind::All => true,
            ScopeKind::JobKind => job_kind.is_some() && job_kind == self.scope_value.as_deref(),
            ScopeKind::JobKey => job_key.is_some() && job_key == self.scope_value.as_deref(),
        }
    }
}

/// What one cycle did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cycle {
    pub rules: usize,
    pub events: usize,
    pub deliveries: usize,
}

/// Judges every rule due at `now` (in batches, each its own transaction) and schedules
/// each one's next judgement `every` later.
pub async fn evaluate_due(
    pool: &PgPool,
    now: DateTime<Utc>,
    every: StdDuration,
) -> Result<Cycle, sqlx::Error> {
    let mut total = Cycle::default();
    loop {
        let batch = evaluate_batch(pool, now, every).await?;
        total.rules += batch.rules;
        total.events += batch.events;
        total.deliveries += batch.deliveries;
        if batch.rules < BATCH as usize {
            return Ok(total);
        }
    }
}

const CLAIM_SQL: &str = "
    WITH due AS (
        SELECT id FROM alert_rules
        WHERE enabled AND next_evaluation_at <= $1
        ORDER BY next_evaluation_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    UPDATE alert_rules r SET next_evaluation_at = $1 + make_interval(secs => $3)
    FROM due WHERE r.id = due.id
    RETURNING r.id, r.name, r.kind, r.severity, r.pending_for, r.repeat_interval";

async fn evaluate_batch(
    pool: &PgPool,
    now: DateTime<Utc>,
    every: StdDuration,
) -> Result<Cycle, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // The judging queries' estimated costs cross PostgreSQL's JIT threshold, and compiling
    // them took ~0.6 s a query on this machine, far more than running them (~0.08 s).
    // A plan for the rules actually claimed: a generic plan cannot tell that no claimed rule
    // is a broad one and scans every script for nothing.
    sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
        .execute(&mut *tx)
        .await?;
    let rules: Vec<ClaimedRule> = sqlx::query_as(CLAIM_SQL)
        .bind(now)
        .bind(BATCH)
        .bind(every.as_secs_f64())
        .fetch_all(&mut *tx)
        .await?;
    if rules.is_empty() {
        return Ok(Cycle::default());
    }
    let mut by_kind: HashMap<AlertKind, Vec<Uuid>> = HashMap::new();
    for rule in &rules {
        by_kind.entry(rule.kind).or_default().push(rule.id);
    }
    let mut found: HashMap<(Uuid, String), Finding> = HashMap::new();
    for (kind, ids) in &by_kind {
        let started = std::time::Instant::now();
        let findings = judge::findings(&mut tx, *kind, ids, now).await?;
        tracing::debug!(%kind, rules = ids.len(), found = findings.len(), ms = started.elapsed().as_millis() as u64, "judged");
        for finding in findings {
            found.insert((finding.rule_id, finding.subject.clone()), finding);
        }
    }
    let started = std::time::Instant::now();
    let ids: Vec<Uuid> = rules.iter().map(|r| r.id).collect();
    let current: Vec<Current> = sqlx::query_as(
        "SELECT rule_id, subject, job_key, job_kind, label, state, pending_since, fired_at,
                notified_at, facts, acknowledged_at, snoozed_until
         FROM alert_states WHERE rule_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let silences: Vec<Silence> =
        sqlx::query_as("SELECT scope_kind, scope_value FROM alert_silences WHERE ends_at > $1")
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
    let plan = plan(&rules, current, found, &silences, now);
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "states read and planned"
    );
    let started = std::time::Instant::now();
    let cycle = write(&mut tx, &plan, now).await?;
    tx.commit().await?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "written");
    Ok(Cycle {
        rules: rules.len(),
        ..cycle
    })
}

/// One alert's outcome of a judgement.
#[derive(Debug)]
pub struct Outcome {
    pub rule: ClaimedRule,
    pub step: Step,
    /// The alert as it was before this judgement.
    pub previous: Option<Current>,
    /// The alert as it is to be stored; `None` when it is fine again (the row goes).
    pub next: Option<Current>,
    pub silenced: bool,
}

fn plan(
    rules: &[ClaimedRule],
    current: Vec<Current>,
    mut found: HashMap<(Uuid, String), Finding>,
    silences: &[Silence],
    now: DateTime<Utc>,
) -> Vec<Outcome> {
    let rules: HashMap<Uuid, &ClaimedRule> = rules.iter().map(|r| (r.id, r)).collect();
    let mut outcomes = Vec::new();
    let judge = |rule: &ClaimedRule, current: Option<Current>, finding: Option<Finding>| {
        let step = step(rule, current.as_ref(), finding.is_some(), now);
        let previous = current.clone();
        let next = match (current, finding) {
            (_, None) => None,
            (None, Some(f)) => Some(Current {
                rule_id: rule.id,
                subject: f.subject,
                job_key: f.job_key,
                job_kind: f.job_kind,
                label: f.label,
                state: AlertState::Pending,
                pending_since: now,
                fired_at: None,
                notified_at: None,
                facts: f.facts,
                acknowledged_at: None,
                snoozed_until: None,
            }),
            (Some(c), Some(f)) => Some(Current {
                label: f.label,
                facts: f.facts,
                ..c
            }),
        };
        // A silence is judged by what the alert is, or for one fine again, was about.
        let covered = next.as_ref().or(previous.as_ref()).is_some_and(|about| {
            silences
                .iter()
                .any(|s| s.covers(about.job_key.as_deref(), about.job_kind.as_deref()))
        });
        let mut step = step;
        // Firing while silenced is recorded but not announced (`notified_at` stays empty), so
        // it is announced once the silence is over, and only an announced alert's resolution is.
        if step == Step::Stay
            && !covered
            && next
                .as_ref()
                .is_some_and(|n| n.state == AlertState::Firing && n.notified_at.is_none())
        {
            step = Step::Remind;
        }
        let next = next.map(|mut n| {
            match step {
                Step::Change {
                    to: AlertState::Firing,
                    ..
                } => {
                    n.state = AlertState::Firing;
                    n.fired_at = Some(now);
                    n.notified_at = (!covered).then_some(now);
                }
                Step::Remind if !covered => n.notified_at = Some(now),
                _ => {}
            }
            n
        });
        let unannounced = matches!(
            step,
            Step::Change {
                to: AlertState::Resolved,
                ..
            }
        ) && previous.as_ref().is_some_and(|p| p.notified_at.is_none());
        let silenced = covered || unannounced;
        Outcome {
            rule: rule.clone(),
            step,
            previous,
            next,
            silenced,
        }
    };
    for alert in current {
        let key = (alert.rule_id, alert.subject.clone());
        let Some(rule) = rules.get(&alert.rule_id) else {
            continue;
        };
        let finding = found.remove(&key);
        outcomes.push(judge(rule, Some(alert), finding));
    }
    for finding in found.into_values() {
        if let Some(rule) = rules.get(&finding.rule_id) {
            outcomes.push(judge(rule, None, Some(finding)));
        }
    }
    outcomes
}

async fn write(
    conn: &mut PgConnection,
    plan: &[Outcome],
    now: DateTime<Utc>,
) -> Result<Cycle, sqlx::Error> {
    // A firing alert that stays as it was costs no write.
    let kept: Vec<&Current> = plan
        .iter()
        .filter(|o| {
            let seen = |c: &Current| (c.facts.clone(), c.label.clone());
            o.step != Step::Stay || o.previous.as_ref().map(seen) != o.next.as_ref().map(seen)
        })
        .filter_map(|o| o.next.as_ref())
        .collect();
    let gone: Vec<(Uuid, &str)> = plan
        .iter()
        .filter(|o| o.next.is_none() && o.previous.is_some())
        .map(|o| (o.rule.id, subject_of(o)))
        .collect();
    if !kept.is_empty() {
        sqlx::query(
            "INSERT INTO alert_states (rule_id, subject, job_key, job_kind, label, state,
                 pending_since, fired_at, notified_at, facts)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                 $6::text[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::jsonb[])
             ON CONFLICT (rule_id, subject) DO UPDATE SET label = EXCLUDED.label,
                 state = EXCLUDED.state, fired_at = EXCLUDED.fired_at,
                 notified_at = EXCLUDED.notified_at, facts = EXCLUDED.facts",
        )
        .bind(kept.iter().map(|c| c.rule_id).collect::<Vec<_>>())
        .bind(kept.iter().map(|c| c.subject.as_str()).collect::<Vec<_>>())
        .bind(
            kept.iter()
                .map(|c| c.job_key.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            kept.iter()
                .map(|c| c.job_kind.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(kept.iter().map(|c| c.label.as_str()).collect::<Vec<_>>())
        .bind(kept.iter().map(|c| c.state.as_str()).collect::<Vec<_>>())
        .bind(kept.iter().map(|c| c.pending_since).collect::<Vec<_>>())
        .bind(kept.iter().map(|c| c.fired_at).collect::<Vec<_>>())
        .bind(kept.iter().map(|c| c.notified_at).collect::<Vec<_>>())
        .bind(kept.iter().map(|c| &c.facts).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    if !gone.is_empty() {
        sqlx::query(
            "DELETE FROM alert_states s USING unnest($1::uuid[], $2::text[]) AS g(rule_id, subject)
             WHERE s.rule_id = g.rule_id AND s.subject = g.subject",
        )
        .bind(gone.iter().map(|g| g.0).collect::<Vec<_>>())
        .bind(gone.iter().map(|g| g.1).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    let events: Vec<&Outcome> = plan.iter().filter(|o| o.step != Step::Stay).collect();
    if events.is_empty() {
        return Ok(Cycle::default());
    }
    let (from, to): (Vec<&str>, Vec<&str>) = events
        .iter()
        .map(|o| match o.step {
            Step::Change { from, to } => (from.as_str(), to.as_str()),
            _ => ("firing", "firing"),
        })
        .unzip();
    // The event and the deliveries it owes are one statement: both or neither.
    let deliveries: i64 = sqlx::query_scalar(
        "WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                 $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bool[],
                 $12::bool[], $13::jsonb[], $15::bool[])
             WITH ORDINALITY AS i(rule_id, rule_name, kind, severity, subject, job_key, job_kind,
                 label, from_state, to_state, reminder, silenced, facts, notifies, ord)
         ), events AS (
             INSERT INTO alert_events (rule_id, rule_name, kind, severity, subject, job_key,
                 job_kind, label, from_state, to_state, reminder, silenced, facts, at)
             SELECT rule_id, rule_name, kind, severity, subject, job_key, job_kind, label,
                 from_state, to_state, reminder, silenced, facts, $14
             FROM input ORDER BY ord
             RETURNING id, rule_id, subject
         ), owed AS (
             INSERT INTO alert_deliveries (event_id, channel_id, next_attempt_at)
             SELECT e.id, c.channel_id, now()
             FROM events e
             JOIN input i ON i.rule_id = e.rule_id AND i.subject = e.subject
             JOIN alert_rule_channels c ON c.rule_id = e.rule_id
             WHERE i.notifies AND NOT i.silenced
             RETURNING 1
         )
         SELECT count(*) FROM owed",
    )
    .bind(events.iter().map(|o| o.rule.id).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|o| o.rule.name.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|o| o.rule.kind.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|o| o.rule.severity.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|o| subject_of(o)).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|o| detail_of(o).job_key.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|o| detail_of(o).job_kind.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|o| detail_of(o).label.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(from)
    .bind(to)
    .bind(
        events
            .iter()
            .map(|o| o.step == Step::Remind)
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|o| o.silenced).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|o| &detail_of(o).facts)
            .collect::<Vec<_>>(),
    )
    .bind(now)
    .bind(events.iter().map(|o| o.step.notifies()).collect::<Vec<_>>())
    .fetch_one(&mut *conn)
    .await?;
    Ok(Cycle {
        rules: 0,
        events: events.len(),
        deliveries: deliveries as usize,
    })
}

fn subject_of(outcome: &Outcome) -> &str {
    &detail_of(outcome).subject
}

/// The alert an outcome is about: the next state, or for one that is fine again, what it was.
fn detail_of(outcome: &Outcome) -> &Current {
    outcome
        .next
        .as_ref()
        .or(outcome.previous.as_ref())
        .expect("an outcome is about an alert")
}
