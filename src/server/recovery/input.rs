//! The bodies of `POST /error-operations` as seed 004 prints them, parsed into values that
//! can only be valid; the checks that span fields are in each `check`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::conditions::Condition;
use super::TypedRetry;
use crate::model::{ErrorCall, RetryCondition, RECOVERY_LIMITS};
use crate::server::input::{bounded, InvalidInput, Name};
use crate::server::recovery::Backoff;

bounded!(MaxAttempts, i32, (1, RECOVERY_LIMITS.attempts_ceiling));

/// Seconds, 0 to `RECOVERY_LIMITS.max_delay`, fractions allowed.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Delay(f64);

impl TryFrom<f64> for Delay {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, String> {
        let max = RECOVERY_LIMITS.max_delay;
        if value.is_finite() && (0.0..=max).contains(&value) {
            Ok(Delay(value))
        } else {
            Err(format!("must be between 0 and {max} seconds, got {value}"))
        }
    }
}

/// 1 (a fixed interval) to `RECOVERY_LIMITS.backoff_factor.1`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Factor(f64);

impl TryFrom<f64> for Factor {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, String> {
        let (min, max) = RECOVERY_LIMITS.backoff_factor;
        if value.is_finite() && (min..=max).contains(&value) {
            Ok(Factor(value))
        } else {
            Err(format!("must be between {min} and {max}, got {value}"))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "action", content = "data", rename_all = "camelCase")]
pub enum ErrorOperation {
    ConfigureRetry(ConfigureRetry),
    ManualRecover(ManualRecover),
    AnalyzeErrors(AnalyzeErrors),
}

impl ErrorOperation {
    pub fn call(&self) -> ErrorCall {
        match self {
            ErrorOperation::ConfigureRetry(_) => ErrorCall::ConfigureRetry,
            ErrorOperation::ManualRecover(_) => ErrorCall::ManualRecover,
            ErrorOperation::AnalyzeErrors(_) => ErrorCall::AnalyzeErrors,
        }
    }

    pub fn name(&self) -> &'static str {
        self.call().as_str()
    }

    /// What the audit log names as the action's target.
    pub fn target(&self) -> Option<String> {
        match self {
            ErrorOperation::ConfigureRetry(request) => Some(request.error_type.as_str().into()),
            ErrorOperation::ManualRecover(request) => Some(request.error_record_id.to_string()),
            ErrorOperation::AnalyzeErrors(_) => None,
        }
    }
}

/// `analyzeErrors`: `{period?: {start, end}, error_types?, job_ids?}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeErrors {
    pub period: Option<Period>,
    #[serde(default)]
    pub error_types: Vec<Name>,
    #[serde(default)]
    pub job_ids: Vec<Uuid>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl AnalyzeErrors {
    pub fn check(&self) -> Result<(), InvalidInput> {
        let max = RECOVERY_LIMITS.max_filter_values;
        for (field, len) in [
            ("data.error_types", self.error_types.len()),
            ("data.job_ids", self.job_ids.len()),
        ] {
            if len > max {
                return Err(InvalidInput::new(
                    field,
                    format!("at most {max} values, got {len}"),
                ));
            }
        }
        if let Some(period) = &self.period {
            if period.start >= period.end {
                return Err(InvalidInput::new(
                    "data.period",
                    format!(
                        "start ({}) must be before end ({})",
                        period.start, period.end
                    ),
                ));
            }
            let days = (period.end - period.start).num_days();
            if days > RECOVERY_LIMITS.max_period_days {
                return Err(InvalidInput::new(
                    "data.period",
                    format!(
                        "at most {} days, got {days}",
                        RECOVERY_LIMITS.max_period_days
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `manualRecover`: `{error_record_id, recovery_options?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualRecover {
    pub error_record_id: Uuid,
    pub recovery_options: Option<RecoveryOptions>,
}

/// Seed 004's options, each optional; `dry_run` beyond the seed answers what would run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryOptions {
    /// Past the attempts the type or job allows (never past the ceiling).
    pub force: Option<bool>,
    /// Past the type's retry conditions.
    pub ignore_conditions: Option<bool>,
    /// Merged into the payload of every task that runs again.
    pub custom_params: Option<serde_json::Map<String, serde_json::Value>>,
    pub dry_run: Option<bool>,
}

/// `configureRetry`: `{error_type, config: RetryConfig}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigureRetry {
    pub error_type: Name,
    pub config: RetryConfigBody,
}

/// Seed 004's `RetryConfig`; its own `error_type` may be left out, or must match.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfigBody {
    pub error_type: Option<Name>,
    pub max_attempts: MaxAttempts,
    pub initial_delay: Delay,
    pub max_delay: Delay,
    pub backoff_factor: Factor,
    #[serde(default)]
    pub retry_conditions: Vec<RetryCondition>,
}

impl ConfigureRetry {
    /// The config as the retry decision will read it, or the field at fault.
    pub fn check(&self) -> Result<TypedRetry, InvalidInput> {
        let config = &self.config;
        if let Some(inner) = &config.error_type {
            if inner != &self.error_type {
                return Err(InvalidInput::new(
                    "data.config.error_type",
                    format!(
                        "names {:?}, but data.error_type is {:?}",
                        inner.as_str(),
                        self.error_type.as_str()
                    ),
                ));
            }
        }
        if config.max_delay.0 < config.initial_delay.0 {
            return Err(InvalidInput::new(
                "data.config.max_delay",
                format!(
                    "must be at least initial_delay ({}), got {}",
                    config.initial_delay.0, config.max_delay.0
                ),
            ));
        }
        let conditions = &config.retry_conditions;
        if conditions.len() > RECOVERY_LIMITS.max_conditions {
            return Err(InvalidInput::new(
                "data.config.retry_conditions",
                format!(
                    "at most {} conditions, got {}",
                    RECOVERY_LIMITS.max_conditions,
                    conditions.len()
                ),
            ));
        }
        let conditions = conditions
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                Condition::parse(raw).map_err(|message| {
                    InvalidInput::new(format!("data.config.retry_conditions[{i}]"), message)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TypedRetry {
            max_attempts: config.max_attempts.get(),
            backoff: Backoff {
                initial_delay: config.initial_delay.0,
                max_delay: config.max_delay.0,
                backoff_factor: config.backoff_factor.0,
            },
            conditions,
        })
    }
}
