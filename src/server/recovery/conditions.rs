//! Seed 004's `retry_conditions`: `{field, operator, value}` over a failing task and its job,
//! checked once when `configureRetry` stores them ([`Condition::parse`]) and evaluated by the
//! retry decision ([`Condition::holds`]). All of a config's conditions must hold for its
//! type to be retried. Numbers (`priority`, `attempt`) take `eq ne gt gte lt lte in`; text
//! takes `eq ne in contains matches`; a regular expression is Rust's `regex`, which runs in
//! linear time, so no pattern can stall the decision.

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::model::{ConditionField, ConditionOperator, JobKind, RetryCondition, RECOVERY_LIMITS};

/// What a condition can look at, for one failure.
#[derive(Clone, Copy, Debug)]
pub struct FailureFacts<'a> {
    pub kind: JobKind,
    pub queue: &'a str,
    pub priority: i16,
    pub attempt: i32,
    pub error_type: &'a str,
    pub message: &'a str,
    pub task_name: &'a str,
    pub product_id: Option<&'a str>,
    pub sending_group_id: Option<&'a str>,
}

#[derive(Clone, Debug)]
enum Operand {
    Number(f64),
    Numbers(Vec<f64>),
    Text(String),
    Texts(Vec<String>),
    Pattern(Regex),
}

#[derive(Clone, Debug)]
pub struct Condition {
    field: ConditionField,
    operator: ConditionOperator,
    operand: Operand,
}

impl Condition {
    /// The condition, or why its operator or value does not fit its field.
    pub fn parse(raw: &RetryCondition) -> Result<Self, String> {
        use ConditionOperator as Op;
        let (field, operator) = (raw.field, raw.operator);
        let number = field.is_number();
        let operand = match (operator, number) {
            (Op::Contains | Op::Matches, true) => {
                return Err(format!(
                    "{operator} applies to text; {field} is a number (use eq, ne, gt, gte, lt, lte or in)"
                ))
            }
            (op, false) if op.orders() => {
                return Err(format!(
                    "{operator} applies to numbers; {field} is text (use eq, ne, in, contains or matches)"
                ))
            }
            (Op::In, _) => {
                let Value::Array(values) = &raw.value else {
                    return Err("in takes a list of values".into());
                };
                if values.is_empty() || values.len() > RECOVERY_LIMITS.max_in_values {
                    return Err(format!(
                        "in takes 1 to {} values, got {}",
                        RECOVERY_LIMITS.max_in_values,
                        values.len()
                    ));
                }
                if number {
                    Operand::Numbers(values.iter().map(number_of).collect::<Result<_, _>>()?)
                } else {
                    Operand::Texts(values.iter().map(text_of).collect::<Result<_, _>>()?)
                }
            }
            (Op::Matches, false) => {
                let pattern = text_of(&raw.value)?;
                let regex = RegexBuilder::new(&pattern)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|error| format!("not a regular expression: {error}"))?;
                Operand::Pattern(regex)
            }
            (_, true) => Operand::Number(number_of(&raw.value)?),
            (_, false) => Operand::Text(text_of(&raw.value)?),
        };
        Ok(Self {
            field,
            operator,
            operand,
        })
    }

    pub fn holds(&self, facts: &FailureFacts<'_>) -> bool {
        use ConditionOperator as Op;
        match &self.operand {
            Operand::Number(value) => {
                let field = number_field(self.field, facts);
                match self.operator {
                    Op::Eq => field == *value,
                    Op::Ne => field != *value,
                    Op::Gt => field > *value,
                    Op::Gte => field >= *value,
                    Op::Lt => field < *value,
                    Op::Lte => field <= *value,
                    Op::In | Op::Contains | Op::Matches => unreachable!("refused by parse"),
                }
            }
            Operand::Numbers(values) => values.contains(&number_field(self.field, facts)),
            Operand::Text(value) => {
                let field = text_field(self.field, facts);
                match self.operator {
                    Op::Eq => field == value,
                    Op::Ne => field != value,
                    Op::Contains => field.contains(value.as_str()),
                    _ => unreachable!("refused by parse"),
                }
            }
            Operand::Texts(values) => {
                let field = text_field(self.field, facts);
                values.iter().any(|v| v == field)
            }
            Operand::Pattern(regex) => regex.is_match(text_field(self.field, facts)),
        }
    }
}

fn number_of(value: &Value) -> Result<f64, String> {
    value
        .as_f64()
        .ok_or_else(|| format!("must be a number, got {value}"))
}

fn text_of(value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) if text.chars().count() <= RECOVERY_LIMITS.value_chars => {
            Ok(text.clone())
        }
        Value::String(_) => Err(format!(
            "longer than {} characters",
            RECOVERY_LIMITS.value_chars
        )),
        other => Err(format!("must be a string, got {other}")),
    }
}

fn number_field(field: ConditionField, facts: &FailureFacts<'_>) -> f64 {
    match field {
        ConditionField::Priority => f64::from(facts.priority),
        ConditionField::Attempt => f64::from(facts.attempt),
        _ => unreachable!("a text field"),
    }
}

/// A field the job does not have (a recap job's product) reads as "".
fn text_field<'a>(field: ConditionField, facts: &FailureFacts<'a>) -> &'a str {
    match field {
        ConditionField::Kind => facts.kind.as_str(),
        ConditionField::Queue => facts.queue,
        ConditionField::ErrorType => facts.error_type,
        ConditionField::Message => facts.message,
        ConditionField::TaskName => facts.task_name,
        ConditionField::ProductId => facts.product_id.unwrap_or(""),
        ConditionField::SendingGroupId => facts.sending_group_id.unwrap_or(""),
        ConditionField::Priority | ConditionField::Attempt => unreachable!("a number field"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn facts() -> FailureFacts<'static> {
        FailureFacts {
            kind: JobKind::Batch,
            queue: "default",
            priority: 7,
            attempt: 2,
            error_type: "TIMEOUT",
            message: "upstream timed out after 30 s",
            task_name: "fetch-tech",
            product_id: Some("p1"),
            sending_group_id: None,
        }
    }

    fn check(field: &str, operator: &str, value: Value) -> Result<bool, String> {
        let raw: RetryCondition =
            serde_json::from_value(json!({ "field": field, "operator": operator, "value": value }))
                .map_err(|e| e.to_string())?;
        Condition::parse(&raw).map(|c| c.holds(&facts()))
    }

    #[test]
    fn each_operator_on_the_facts_of_a_failure() {
        let table: &[(&str, &str, Value, bool)] = &[
            ("priority", "eq", json!(7), true),
            ("priority", "ne", json!(7), false),
            ("priority", "gt", json!(6.5), true),
            ("priority", "gte", json!(7), true),
            ("priority", "lt", json!(7), false),
            ("attempt", "lte", json!(2), true),
            ("attempt", "in", json!([1, 3]), false),
            ("attempt", "in", json!([2]), true),
            ("kind", "eq", json!("batch"), true),
            ("kind", "in", json!(["recap", "batch"]), true),
            ("queue", "ne", json!("gpu"), true),
            ("error_type", "eq", json!("TIMEOUT"), true),
            ("message", "contains", json!("timed out"), true),
            ("message", "contains", json!("refused"), false),
            ("message", "matches", json!("after \\d+ s$"), true),
            ("task_name", "matches", json!("^fetch-"), true),
            ("product_id", "eq", json!("p1"), true),
            ("sending_group_id", "eq", json!(""), true),
            ("sending_group_id", "ne", json!("g1"), true),
        ];
        for (field, operator, value, expected) in table {
            assert_eq!(
                check(field, operator, value.clone()),
                Ok(*expected),
                "{field} {operator} {value}"
            );
        }
    }

    #[test]
    fn an_operator_or_value_that_does_not_fit_its_field_is_refused() {
        let table: &[(&str, &str, Value, &str)] = &[
            ("priority", "contains", json!("7"), "applies to text"),
            ("attempt", "matches", json!("2"), "applies to text"),
            ("message", "gt", json!("a"), "applies to numbers"),
            ("priority", "eq", json!("7"), "must be a number"),
            ("kind", "eq", json!(1), "must be a string"),
            ("kind", "in", json!("batch"), "a list"),
            ("kind", "in", json!([]), "1 to 100"),
            ("attempt", "in", json!([1, "2"]), "must be a number"),
            (
                "message",
                "matches",
                json!("(unclosed"),
                "regular expression",
            ),
            ("message", "eq", json!("x".repeat(501)), "longer than 500"),
        ];
        for (field, operator, value, why) in table {
            let error = check(field, operator, value.clone()).unwrap_err();
            assert!(error.contains(why), "{field} {operator}: {error}");
        }
        // Unknown fields and operators are refused by the enums, naming the choices.
        assert!(check("hostname", "eq", json!("a"))
            .unwrap_err()
            .contains("unknown condition field"));
        assert!(check("kind", "like", json!("a"))
            .unwrap_err()
            .contains("unknown condition operator"));
    }
}
