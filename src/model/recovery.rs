//! Error recovery (seed 004): the names and limits of error records and per-type retry
//! settings, shared by the parser, the retry decision, the OpenAPI document and the tests.

use serde::{Deserialize, Serialize};

use super::wire::wire_enum;

wire_enum! {
    /// Where an error record stands (seed 004's `recovery_status`).
    pub enum RecoveryStatus ("recovery status") {
        /// Not recovered yet; an automatic retry may be waiting.
        Pending = "pending",
        /// A manual recovery is running.
        InProgress = "in_progress",
        /// The work it belongs to later succeeded.
        Recovered = "recovered",
        /// The work ended failed, with no retry left.
        Failed = "failed",
    }
}

impl RecoveryStatus {
    /// A manual recovery may start from it (one under way, or recovered, may not).
    pub fn recoverable(self) -> bool {
        matches!(self, RecoveryStatus::Pending | RecoveryStatus::Failed)
    }
}

wire_enum! {
    /// Why `manualRecover` runs a task again.
    pub enum RerunReason ("rerun reason") {
        /// The task whose failure the record is.
        Failed = "failed",
        /// It depends, directly or not, on that task.
        Downstream = "downstream",
        /// Another task the failure left unfinished (cancelled when the job failed, or failed
        /// on its own): the job cannot complete without it.
        Unfinished = "unfinished",
    }
}

wire_enum! {
    /// A count against the previous period of equal length.
    #[derive(Default)]
    pub enum Trend ("trend") {
        /// None in the previous period.
        New = "new",
        /// Half as many again or more.
        Rising = "rising",
        /// Down by a third or more.
        Falling = "falling",
        #[default]
        Steady = "steady",
    }
}

impl Trend {
    pub fn of(now: i64, before: i64) -> Self {
        if before == 0 {
            if now > 0 {
                Trend::New
            } else {
                Trend::Steady
            }
        } else if now * 2 >= before * 3 {
            Trend::Rising
        } else if now * 3 <= before * 2 {
            Trend::Falling
        } else {
            Trend::Steady
        }
    }
}

wire_enum! {
    /// What an `analyzeErrors` suggestion proposes.
    pub enum SuggestionKind ("suggestion kind") {
        /// Retry the type with backoff: it carries the `configureRetry` config to apply.
        RetryWithBackoff = "retry_with_backoff",
        StopRetrying = "stop_retrying",
        CheckWorker = "check_worker",
        RisingErrors = "rising_errors",
        /// Jobs failing on their memory limit peaked above it: it carries the limit to set.
        RaiseMemoryLimit = "raise_memory_limit",
    }
}

wire_enum! {
    /// What a retry condition looks at: the failing task and its job.
    pub enum ConditionField ("condition field") {
        Kind = "kind",
        Queue = "queue",
        Priority = "priority",
        /// The attempt that failed, 1 for the first run.
        Attempt = "attempt",
        ErrorType = "error_type",
        Message = "message",
        TaskName = "task_name",
        ProductId = "product_id",
        SendingGroupId = "sending_group_id",
    }
}

impl ConditionField {
    /// Numbers compare as numbers; every other field is text.
    pub fn is_number(self) -> bool {
        matches!(self, ConditionField::Priority | ConditionField::Attempt)
    }
}

wire_enum! {
    /// How a retry condition compares its field with its value.
    pub enum ConditionOperator ("condition operator") {
        Eq = "eq",
        Ne = "ne",
        Gt = "gt",
        Gte = "gte",
        Lt = "lt",
        Lte = "lte",
        /// The value is a list; the field is one of it.
        In = "in",
        /// Text fields: the value is a part of the field.
        Contains = "contains",
        /// Text fields: the value is a regular expression (Rust's `regex` syntax) that finds
        /// a match in the field.
        Matches = "matches",
    }
}

impl ConditionOperator {
    /// The operators that order their operands: numbers only.
    pub fn orders(self) -> bool {
        matches!(
            self,
            ConditionOperator::Gt
                | ConditionOperator::Gte
                | ConditionOperator::Lt
                | ConditionOperator::Lte
        )
    }
}

/// Seed 004's `RetryConfig` for one error type, as stored and answered. Delays are seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRetryConfig {
    pub error_type: String,
    pub max_attempts: i32,
    pub initial_delay: f64,
    pub max_delay: f64,
    pub backoff_factor: f64,
    pub retry_conditions: Vec<RetryCondition>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryCondition {
    pub field: ConditionField,
    pub operator: ConditionOperator,
    pub value: serde_json::Value,
}

#[derive(Clone, Copy, Debug)]
pub struct RecoveryLimits {
    /// No task runs more often than this, whatever a config or a manual recovery says.
    pub attempts_ceiling: i32,
    /// Seconds.
    pub max_delay: f64,
    pub backoff_factor: (f64, f64),
    /// The share of a delay jitter may take off, so retries of one burst spread out.
    pub jitter: f64,
    pub max_conditions: usize,
    /// Values in one `in` list.
    pub max_in_values: usize,
    /// Characters of a condition's text value or pattern.
    pub value_chars: usize,
    /// `analyzeErrors`: error types or job ids in one call, and the longest period.
    pub max_filter_values: usize,
    pub max_period_days: i64,
}

pub const RECOVERY_LIMITS: RecoveryLimits = RecoveryLimits {
    attempts_ceiling: 100,
    max_delay: 86_400.0,
    backoff_factor: (1.0, 10.0),
    jitter: 0.2,
    max_conditions: 20,
    max_in_values: 100,
    value_chars: 500,
    max_filter_values: 50,
    max_period_days: 400,
};
