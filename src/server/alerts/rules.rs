//! Alert rules: what a caller may set, checked once, stored with every parameter's default
//! written out, so the evaluator's SQL reads `params` without guessing.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::AlertError;
use crate::model::{AlertKind, RuleView, ScopeKind, Severity, SCOPE_JOB_KINDS};
use crate::server::audit::{self, Actor, Event, Outcome};
use crate::server::input::InvalidInput;

/// Longest window, pending time and repeat interval: 31 days.
pub const MAX_SECONDS: i64 = 31 * 24 * 3600;
pub const NAME_CHARS: usize = 200;
/// Runs a rule may wait for before it judges a job.
pub const MAX_MIN_RUNS: i64 = 10_000;
/// Channels one rule may notify.
pub const MAX_CHANNELS: usize = 20;

/// A rule as a caller sends it (the page's form, or `createAlertRule`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    pub name: String,
    pub scope: ScopeRequest,
    pub kind: AlertKind,
    #[serde(default)]
    pub params: Map<String, Value>,
    #[serde(default)]
    pub pending_for: i64,
    #[serde(default)]
    pub min_runs: i64,
    #[serde(default = "default_severity")]
    pub severity: Severity,
    #[serde(default)]
    pub channel_ids: Vec<Uuid>,
    pub repeat_interval: Option<i64>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_severity() -> Severity {
    Severity::Warning
}

fn yes() -> bool {
    true
}

/// `{"kind": "all"}`, `{"kind": "job_kind", "value": "script"}`, `{"kind": "job_key", "value": "nightly-backup"}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeRequest {
    pub kind: ScopeKind,
    pub value: Option<String>,
}

impl ScopeRequest {
    pub fn check(&self, field: &'static str) -> Result<Option<String>, InvalidInput> {
        let value = self
            .value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty());
        match (self.kind, value) {
            (ScopeKind::All, None) => Ok(None),
            (ScopeKind::All, Some(_)) => Err(InvalidInput::new(field, "scope all takes no value")),
            (ScopeKind::JobKind, Some(kind)) if SCOPE_JOB_KINDS.contains(&kind) => {
                Ok(Some(kind.to_string()))
            }
            (ScopeKind::JobKind, _) => Err(InvalidInput::new(
                field,
                format!(
                    "a job_kind scope names one of {}",
                    SCOPE_JOB_KINDS.join(", ")
                ),
            )),
            (ScopeKind::JobKey, Some(key)) if key.chars().count() <= 255 => Ok(Some(key.into())),
            (ScopeKind::JobKey, _) => Err(InvalidInput::new(
                field,
                "a job_key scope names a script's key or a job's id (1 to 255 characters)",
            )),
        }
    }
}

/// A rule's parameters, checked, with defaults filled in.
fn check_params(kind: AlertKind, params: &Map<String, Value>) -> Result<Value, InvalidInput> {
    let allowed: &[&str] = match kind {
        AlertKind::MissedRun => &[],
        AlertKind::Stuck => &["grace_seconds"],
        AlertKind::FailureRate => &["window_seconds", "threshold_percent", "consecutive"],
        AlertKind::DurationAnomaly => &["max_seconds", "factor", "last_runs"],
        AlertKind::ErrorSpike => &["count", "window_seconds", "fingerprint"],
    };
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(InvalidInput::new(
            format!("params.{unknown}"),
            format!(
                "{kind} takes {}",
                if allowed.is_empty() {
                    "no parameters".to_string()
                } else {
                    allowed.join(", ")
                }
            ),
        ));
    }
    let number = |name: &'static str, min: f64, max: f64| -> Result<Option<f64>, InvalidInput> {
        match params.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => match value.as_f64() {
                Some(n) if n.is_finite() && (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(InvalidInput::new(
                    format!("params.{name}"),
                    format!("must be a number from {min} to {max}"),
                )),
            },
        }
    };
    let whole = |name: &'static str, min: i64, max: i64| -> Result<Option<i64>, InvalidInput> {
        match params.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => match value.as_i64() {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(InvalidInput::new(
                    format!("params.{name}"),
                    format!("must be a whole number from {min} to {max}"),
                )),
            },
        }
    };
    Ok(match kind {
        AlertKind::MissedRun => json!({}),
        // Without one, a script's schedule's grace, else an hour.
        AlertKind::Stuck => match whole("grace_seconds", 1, MAX_SECONDS)? {
            Some(grace) => json!({ "grace_seconds": grace }),
            None => json!({}),
        },
        AlertKind::FailureRate => {
            let window = whole("window_seconds", 60, MAX_SECONDS)?.unwrap_or(3600);
            let threshold = number("threshold_percent", 0.01, 100.0)?;
            let consecutive = whole("consecutive", 1, 100)?;
            if threshold.is_none() == consecutive.is_none() {
                return Err(InvalidInput::new(
                    "params",
                    "failure_rate takes threshold_percent (over window_seconds) or consecutive, one of the two",
                ));
            }
            json!({ "window_seconds": window, "threshold_percent": threshold, "consecutive": consecutive })
        }
        AlertKind::DurationAnomaly => json!({
            "max_seconds": number("max_seconds", 1.0, MAX_SECONDS as f64)?,
            "factor": number("factor", 1.0, 100.0)?.unwrap_or(3.0),
            "last_runs": whole("last_runs", 3, 1000)?.unwrap_or(20),
        }),
        AlertKind::ErrorSpike => {
            let fingerprint = match params.get("fingerprint") {
                None | Some(Value::Null) => None,
                Some(Value::String(fp)) if !fp.trim().is_empty() && fp.len() <= 128 => {
                    Some(fp.trim().to_ascii_lowercase())
                }
                Some(_) => {
                    return Err(InvalidInput::new(
                        "params.fingerprint",
                        "must be an error fingerprint (as on the recovery page)",
                    ))
                }
            };
            json!({
                "count": whole("count", 1, 1_000_000)?.unwrap_or(10),
                "window_seconds": whole("window_seconds", 60, MAX_SECONDS)?.unwrap_or(3600),
                "fingerprint": fingerprint,
            })
        }
    })
}

/// A rule ready to store.
pub struct CheckedRule {
    pub name: String,
    pub scope_kind: ScopeKind,
    pub scope_value: Option<String>,
    pub kind: AlertKind,
    pub params: Value,
    pub pending_for: i32,
    pub min_runs: i32,
    pub severity: Severity,
    pub channel_ids: Vec<Uuid>,
    pub repeat_interval: Option<i32>,
    pub enabled: bool,
}

impl RuleRequest {
    pub fn check(&self) -> Result<CheckedRule, InvalidInput> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > NAME_CHARS {
            return Err(InvalidInput::new(
                "name",
                format!("must be 1 to {NAME_CHARS} characters"),
            ));
        }
        let seconds = |field: &'static str, value: i64, min: i64| {
            if (min..=MAX_SECONDS).contains(&value) {
                Ok(value as i32)
            } else {
                Err(InvalidInput::new(
                    field,
                    format!("must be {min} to {MAX_SECONDS} seconds"),
                ))
            }
        };
        if !(0..=MAX_MIN_RUNS).contains(&self.min_runs) {
            return Err(InvalidInput::new(
                "min_runs",
                format!("must be 0 to {MAX_MIN_RUNS}"),
            ));
        }
        if self.channel_ids.len() > MAX_CHANNELS {
            return Err(InvalidInput::new(
                "channel_ids",
                format!("at most {MAX_CHANNELS} channels"),
            ));
        }
        let scope_value = self.scope.check("scope")?;
        // Combinations no query judges would be rules that never fire.
        let controlled_kind =
            self.scope.kind == ScopeKind::JobKind && scope_value.as_deref() != Some("script");
        if controlled_kind && self.kind == AlertKind::MissedRun {
            return Err(InvalidInput::new(
                "scope",
                "missed_run watches scheduled scripts: scope it to all, job_kind script or a script's key",
            ));
        }
        if controlled_kind
            && self.kind == AlertKind::FailureRate
            && self.params.get("consecutive").is_some_and(|c| !c.is_null())
        {
            return Err(InvalidInput::new(
                "params.consecutive",
                "controlled jobs are judged by threshold_percent over a window, not consecutive",
            ));
        }
        Ok(CheckedRule {
            name: name.to_string(),
            scope_kind: self.scope.kind,
            scope_value,
            kind: self.kind,
            params: check_params(self.kind, &self.params)?,
            pending_for: seconds("pending_for", self.pending_for, 0)?,
            min_runs: self.min_runs as i32,
            severity: self.severity,
            channel_ids: self.channel_ids.clone(),
            repeat_interval: self
                .repeat_interval
                .map(|r| seconds("repeat_interval", r, 60))
                .transpose()?,
            enabled: self.enabled,
        })
    }
}

#[derive(FromRow)]
struct RuleRow {
    id: Uuid,
    name: String,
    scope_kind: ScopeKind,
    scope_value: Option<String>,
    kind: AlertKind,
    params: Value,
    pending_for: i32,
    min_runs: i32,
    severity: Severity,
    repeat_interval: Option<i32>,
    enabled: bool,
    built_in: bool,
    channel_ids: Vec<Uuid>,
}

impl From<RuleRow> for RuleView {
    fn from(row: RuleRow) -> Self {
        RuleView {
            id: row.id,
            name: row.name,
            scope_kind: row.scope_kind,
            scope_value: row.scope_value,
            kind: row.kind,
            params: row.params,
            pending_for: row.pending_for,
            min_runs: row.min_runs,
            severity: row.severity,
            repeat_interval: row.repeat_interval,
            enabled: row.enabled,
            built_in: row.built_in,
            channel_ids: row.channel_ids,
        }
    }
}

const RULE_COLUMNS: &str = "r.id, r.name, r.scope_kind, r.scope_value, r.kind, r.params, r.pending_for,
    r.min_runs, r.severity, r.repeat_interval, r.enabled, r.built_in,
    array(SELECT channel_id FROM alert_rule_channels c WHERE c.rule_id = r.id ORDER BY channel_id) AS channel_ids";

/// Every rule, built-in ones first. Rules are few (one per watched job at most): the page
/// lists them whole, up to `limit`.
pub async fn list_rules(pool: &PgPool, limit: i64) -> Result<Vec<RuleView>, sqlx::Error> {
    let sql = format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules r ORDER BY r.built_in DESC, r.name, r.id LIMIT $1"
    );
    let rows: Vec<RuleRow> = sqlx::query_as(&sql).bind(limit).fetch_all(pool).await?;
    Ok(rows.into_iter().map(RuleView::from).collect())
}

pub async fn load_rule(pool: &PgPool, id: Uuid) -> Result<RuleView, AlertError> {
    let sql = format!("SELECT {RULE_COLUMNS} FROM alert_rules r WHERE r.id = $1");
    let row: Option<RuleRow> = sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?;
    row.map(RuleView::from)
        .ok_or(AlertError::NotFound("rule", id))
}

/// Creates a rule (`id` None) or replaces one, with its channels, audited.
pub async fn save_rule(
    pool: &PgPool,
    actor: &Actor,
    id: Option<Uuid>,
    request: &RuleRequest,
) -> Result<RuleView, AlertError> {
    super::actions::may_act(actor)?;
    let rule = request.check()?;
    let mut tx = pool.begin().await?;
    // KEY SHARE keeps the channels from being deleted before this transaction commits.
    let known: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM alert_channels WHERE id = ANY($1) FOR KEY SHARE")
            .bind(&rule.channel_ids)
            .fetch_all(&mut *tx)
            .await?;
    let distinct: std::collections::HashSet<_> = rule.channel_ids.iter().collect();
    if known.len() != distinct.len() {
        return Err(InvalidInput::new("channel_ids", "names a channel that does not exist").into());
    }
    // A changed rule is judged afresh at once: its next evaluation is due now. Its open
    // alerts stay: the next judgement resolves (and announces) what no longer holds.
    let saved = match id {
        None => sqlx::query_scalar::<_, Uuid>(
            "INSERT INTO alert_rules (name, scope_kind, scope_value, kind, params, pending_for,
                 min_runs, severity, repeat_interval, enabled, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             RETURNING id",
        ),
        Some(_) => sqlx::query_scalar(
            "UPDATE alert_rules SET name = $1, scope_kind = $2, scope_value = $3, kind = $4,
                 params = $5, pending_for = $6, min_runs = $7, severity = $8, repeat_interval = $9,
                 enabled = $10, updated_at = now(), next_evaluation_at = '-infinity'
             WHERE id = $11::uuid
             RETURNING id",
        ),
    }
    .bind(&rule.name)
    .bind(rule.scope_kind)
    .bind(&rule.scope_value)
    .bind(rule.kind)
    .bind(&rule.params)
    .bind(rule.pending_for)
    .bind(rule.min_runs)
    .bind(rule.severity)
    .bind(rule.repeat_interval)
    .bind(rule.enabled);
    // $11: who creates it, or which rule is replaced.
    let saved: Option<Uuid> = match id {
        None => saved.bind(actor.label.clone()),
        Some(id) => saved.bind(id.to_string()),
    }
    .fetch_optional(&mut *tx)
    .await?;
    let saved = saved.ok_or(AlertError::NotFound("rule", id.unwrap_or_default()))?;
    sqlx::query("DELETE FROM alert_rule_channels WHERE rule_id = $1")
        .bind(saved)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO alert_rule_channels (rule_id, channel_id)
         SELECT $1, c FROM unnest($2::uuid[]) AS c ON CONFLICT DO NOTHING",
    )
    .bind(saved)
    .bind(&rule.channel_ids)
    .execute(&mut *tx)
    .await?;
    let target = saved.to_string();
    let event = Event {
        action: if id.is_some() {
            "updateAlertRule"
        } else {
            "createAlertRule"
        },
        target: Some(&target),
        details: json!({
            "name": rule.name, "kind": rule.kind, "scope_kind": rule.scope_kind,
            "scope_value": rule.scope_value, "params": rule.params, "severity": rule.severity,
            "pending_for": rule.pending_for, "min_runs": rule.min_runs,
            "repeat_interval": rule.repeat_interval, "channel_ids": rule.channel_ids,
            "enabled": rule.enabled,
        }),
        outcome: Outcome::Success,
    };
    audit::record(&mut tx, actor, event).await?;
    tx.commit().await?;
    load_rule(pool, saved).await
}

pub async fn delete_rule(pool: &PgPool, actor: &Actor, id: Uuid) -> Result<(), AlertError> {
    super::actions::delete_named(
        pool,
        actor,
        "DELETE FROM alert_rules WHERE id = $1 RETURNING name",
        "deleteAlertRule",
        "rule",
        id,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: AlertKind, params: Value) -> RuleRequest {
        RuleRequest {
            name: "r".into(),
            scope: ScopeRequest {
                kind: ScopeKind::All,
                value: None,
            },
            kind,
            params: params.as_object().cloned().unwrap(),
            pending_for: 0,
            min_runs: 0,
            severity: Severity::Warning,
            channel_ids: vec![],
            repeat_interval: None,
            enabled: true,
        }
    }

    #[test]
    fn parameters_get_their_defaults_and_bad_ones_name_their_field() {
        let rule = request(AlertKind::DurationAnomaly, json!({}))
            .check()
            .ok()
            .unwrap();
        assert_eq!(
            rule.params,
            json!({"max_seconds": null, "factor": 3.0, "last_runs": 20})
        );
        let field = |kind, params| request(kind, params).check().err().unwrap().field;
        assert_eq!(field(AlertKind::FailureRate, json!({})), "params");
        assert_eq!(
            field(AlertKind::FailureRate, json!({"consecutive": 0})),
            "params.consecutive"
        );
        assert_eq!(
            field(AlertKind::ErrorSpike, json!({"count": "many"})),
            "params.count"
        );
        assert_eq!(
            field(AlertKind::MissedRun, json!({"grace": 1})),
            "params.grace"
        );
    }
}
