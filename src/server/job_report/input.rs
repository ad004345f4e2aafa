//! Parsing a webhook body into a [`NewReport`]: every later layer trusts what this builds.

use chrono::{DateTime, Datelike, Duration, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::model::{ReportStatus, REPORT_LIMITS};

/// A report that passed every check; only [`NewReport::from_json`] builds one, and its
/// fields are visible only to the job_report service that stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewReport {
    pub(super) job_key: String,
    pub(super) title: String,
    pub(super) status: ReportStatus,
    pub(super) finished_at: DateTime<Utc>,
    pub(super) started_at: Option<DateTime<Utc>>,
    pub(super) duration_ms: Option<i64>,
    pub(super) message: Option<String>,
    pub(super) tool_id: Option<Uuid>,
}

/// Why a body was refused. `field` is `None` when the body as a whole is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidReport {
    pub field: Option<&'static str>,
    pub message: String,
}

impl crate::server::failure::DomainError for InvalidReport {
    fn failure(self) -> crate::server::failure::Failure {
        let refusal =
            crate::server::failure::Refusal::new(axum::http::StatusCode::BAD_REQUEST, self.message);
        match self.field {
            Some(field) => refusal.field(field).into(),
            None => refusal.into(),
        }
    }
}

impl InvalidReport {
    fn body(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }

    fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            message: message.into(),
        }
    }
}

impl NewReport {
    pub fn job_key(&self) -> &str {
        &self.job_key
    }

    /// Parses a request body, checking the reported times against `now`.
    pub fn from_json(body: &[u8], now: DateTime<Utc>) -> Result<Self, InvalidReport> {
        // Parsed whole (not field by field) so serde_json's nesting limit covers unknown
        // fields too; a repeated key keeps its last value, as JavaScript's JSON.parse does.
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| InvalidReport::body(format!("Invalid JSON body: {e}")))?;
        let Value::Object(mut fields) = value else {
            return Err(InvalidReport::body(
                "Invalid JSON body: expected an object of report fields",
            ));
        };
        let mut take = |name: &str| fields.remove(name);

        let job_key = required_text("job_key", take("job_key"), REPORT_LIMITS.job_key_chars)?;
        let title = required_text("title", take("title"), REPORT_LIMITS.title_chars)?;
        let status = match take("status") {
            Some(Value::String(s)) => ReportStatus::parse(&s),
            _ => None,
        }
        .ok_or_else(|| InvalidReport::field("status", "status must be 'success' or 'error'"))?;
        let finished_at = match take("finished_at") {
            None => {
                return Err(InvalidReport::field(
                    "finished_at",
                    "finished_at is required",
                ))
            }
            Some(value) => timestamp("finished_at", value, now)?,
        };
        let started_at = optional(take("started_at"))
            .map(|value| timestamp("started_at", value, now))
            .transpose()?;
        if started_at.is_some_and(|started| started > finished_at) {
            return Err(InvalidReport::field(
                "started_at",
                "started_at must not be after finished_at",
            ));
        }
        let duration_ms = match optional(take("duration_ms")) {
            Some(value) => Some(duration("duration_ms", value)?),
            None => started_at.map(|started| (finished_at - started).num_milliseconds()),
        };
        if duration_ms.is_some_and(|ms| ms > REPORT_LIMITS.max_duration_ms) {
            return Err(InvalidReport::field(
                "duration_ms",
                format!(
                    "duration_ms must be at most {} (31 days)",
                    REPORT_LIMITS.max_duration_ms
                ),
            ));
        }
        let message = optional_text("message", take("message"), REPORT_LIMITS.message_chars)?;
        let tool_id = optional_text("tool_id", take("tool_id"), 64)?
            .map(|s| Uuid::parse_str(&s))
            .transpose()
            .map_err(|_| InvalidReport::field("tool_id", "tool_id must be a UUID"))?;

        Ok(Self {
            job_key,
            title,
            status,
            finished_at,
            started_at,
            duration_ms,
            message,
            tool_id,
        })
    }
}

/// `null` counts as absent, as in the seed's reporter.
fn optional(value: Option<Value>) -> Option<Value> {
    value.filter(|v| !v.is_null())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A key or title: present, not blank, one line, within its limit.
fn required_text(
    field: &'static str,
    value: Option<Value>,
    max_chars: usize,
) -> Result<String, InvalidReport> {
    let text = match optional(value) {
        None => return Err(InvalidReport::field(field, format!("{field} is required"))),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(InvalidReport::field(
                field,
                format!("{field} must be a string, not {}", type_name(&other)),
            ))
        }
    };
    if text.trim().is_empty() {
        return Err(InvalidReport::field(field, format!("{field} is required")));
    }
    if text.chars().any(char::is_control) {
        return Err(InvalidReport::field(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    check_length(field, &text, max_chars)?;
    Ok(text)
}

/// A free text such as `message`: absent, null or empty mean none; NUL is refused because
/// Postgres `text` cannot hold it.
fn optional_text(
    field: &'static str,
    value: Option<Value>,
    max_chars: usize,
) -> Result<Option<String>, InvalidReport> {
    let text = match optional(value) {
        None => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(InvalidReport::field(
                field,
                format!("{field} must be a string, not {}", type_name(&other)),
            ))
        }
    };
    if text.contains('\0') {
        return Err(InvalidReport::field(
            field,
            format!("{field} must not contain NUL characters"),
        ));
    }
    check_length(field, &text, max_chars)?;
    Ok(Some(text))
}

fn check_length(field: &'static str, text: &str, max_chars: usize) -> Result<(), InvalidReport> {
    // Bytes bound chars from above, so most texts skip the count.
    if text.len() > max_chars && text.chars().count() > max_chars {
        return Err(InvalidReport::field(
            field,
            format!("{field} must be at most {max_chars} characters"),
        ));
    }
    Ok(())
}

/// An RFC 3339 timestamp (the ISO 8601 profile every reporter emits) between
/// `REPORT_LIMITS.min_year` and a day from now.
fn timestamp(
    field: &'static str,
    value: Value,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, InvalidReport> {
    let Value::String(text) = value else {
        return Err(InvalidReport::field(
            field,
            format!("{field} must be valid ISO 8601"),
        ));
    };
    let at = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| InvalidReport::field(field, format!("{field} must be valid ISO 8601")))?
        .with_timezone(&Utc);
    if at.year() < REPORT_LIMITS.min_year {
        return Err(InvalidReport::field(
            field,
            format!(
                "{field} is out of range: earlier than the year {}",
                REPORT_LIMITS.min_year
            ),
        ));
    }
    if at > now + Duration::seconds(REPORT_LIMITS.future_skew_secs) {
        return Err(InvalidReport::field(
            field,
            format!("{field} is out of range: more than a day in the future"),
        ));
    }
    Ok(at)
}

fn duration(field: &'static str, value: Value) -> Result<i64, InvalidReport> {
    match value.as_i64() {
        Some(ms) if ms >= 0 => Ok(ms),
        _ => Err(InvalidReport::field(
            field,
            format!("{field} must be a whole number of milliseconds, 0 or more"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<NewReport, InvalidReport> {
        NewReport::from_json(body.as_bytes(), Utc::now())
    }

    #[test]
    fn accepts_the_seed_reporter_payload() {
        let report = parse(
            r#"{"job_key":"minpaku-in-report","title":"minpaku-IN レポート作成","status":"success",
                "finished_at":"2026-01-25T10:00:00.123456+00:00","message":null}"#,
        )
        .unwrap();
        assert_eq!(report.job_key, "minpaku-in-report");
        assert_eq!(report.status, ReportStatus::Success);
        assert_eq!(report.message, None);
        assert_eq!(report.duration_ms, None);
    }

    #[test]
    fn derives_duration_from_started_at() {
        let report = parse(
            r#"{"job_key":"k","title":"t","status":"error","started_at":"2026-01-25T09:59:58Z",
                "finished_at":"2026-01-25T10:00:00.5Z"}"#,
        )
        .unwrap();
        assert_eq!(report.duration_ms, Some(2500));
    }

    #[test]
    fn names_the_field_of_a_wrong_type() {
        let err = parse(
            r#"{"job_key":7,"title":"t","status":"success","finished_at":"2026-01-25T10:00:00Z"}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, Some("job_key"));
        assert_eq!(err.message, "job_key must be a string, not a number");
    }

    #[test]
    fn refuses_a_report_from_the_far_future() {
        let err = parse(r#"{"job_key":"k","title":"t","status":"success","finished_at":"2999-01-01T00:00:00Z"}"#)
            .unwrap_err();
        assert_eq!(err.field, Some("finished_at"));
    }
}
