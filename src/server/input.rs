//! Validated newtypes that every domain's request bodies are made of: parse, don't
//! validate. Each can only be built valid, so a service function trusts what it is given;
//! serde builds them (`#[serde(try_from = ...)]`) and names the field that failed.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;

use crate::model::JOB_LIMITS;

/// A request that is well formed JSON but not acceptable: which field, and why.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InvalidInput {
    pub field: Cow<'static, str>,
    pub message: Cow<'static, str>,
}

impl InvalidInput {
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An id, code, phase or task name: 1 to `JOB_LIMITS.name_chars` characters, not blank.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Name(String);

impl TryFrom<String> for Name {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        if value.trim().is_empty() {
            Err("must not be empty".into())
        } else if value.chars().any(char::is_control) {
            Err("must not contain control characters".into())
        } else if value.chars().count() > JOB_LIMITS.name_chars {
            Err(format!("longer than {} characters", JOB_LIMITS.name_chars))
        } else {
            Ok(Name(value))
        }
    }
}

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A queue's name: 1 to 64 of `a-z 0-9 _ . -`, starting with a letter or digit
/// (`default`, `recap.fast`, `gpu-1`), so it can be typed on a command line and in a URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct QueueName(String);

impl QueueName {
    pub const DEFAULT: &'static str = "default";

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for QueueName {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        match value.chars().next() {
            Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit() => {}
            _ => return Err("must start with a lowercase letter or a digit".into()),
        }
        if value.len() > 64 {
            Err("longer than 64 characters".into())
        } else if !value.chars().all(allowed) {
            Err("may hold only a-z, 0-9, '_', '.' and '-'".into())
        } else {
            Ok(QueueName(value))
        }
    }
}

/// Free text up to `N` characters.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Text<const N: usize>(String);

impl<const N: usize> TryFrom<String> for Text<N> {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        if value.chars().count() > N {
            Err(format!("longer than {N} characters"))
        } else if value.contains('\0') {
            Err("must not contain NUL characters".into())
        } else {
            Ok(Text(value))
        }
    }
}

impl<const N: usize> Text<N> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub type Message = Text<{ JOB_LIMITS.message_chars }>;
pub type Stack = Text<{ JOB_LIMITS.stack_chars }>;

/// An integer within a documented range; the range is in the error message.
macro_rules! bounded {
    ($name:ident, $ty:ty, $range:expr) => {
        #[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
        #[serde(try_from = "i64")]
        pub struct $name($ty);

        impl TryFrom<i64> for $name {
            type Error = String;

            fn try_from(value: i64) -> Result<Self, String> {
                let (min, max) = $range;
                if (min as i64..=max as i64).contains(&value) {
                    Ok($name(value as $ty))
                } else {
                    Err(format!("must be between {min} and {max}, got {value}"))
                }
            }
        }

        impl $name {
            pub fn get(self) -> $ty {
                self.0
            }
        }
    };
}

pub(crate) use bounded;

bounded!(Count, i32, (0, i32::MAX));
bounded!(Counter, i64, (0, i64::MAX));

/// 0 to 100.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Percent(f64);

impl TryFrom<f64> for Percent {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, String> {
        if value.is_finite() && (0.0..=100.0).contains(&value) {
            Ok(Percent(value))
        } else {
            Err(format!("must be between 0 and 100, got {value}"))
        }
    }
}

impl Percent {
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A measure that cannot be negative: cores, megabytes, a CPU percentage.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Measure(f64);

impl TryFrom<f64> for Measure {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, String> {
        if value.is_finite() && value >= 0.0 {
            Ok(Measure(value))
        } else {
            Err(format!("must be a number of at least 0, got {value}"))
        }
    }
}

impl Measure {
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A list of one to `max` items in one call.
pub fn check_batch(field: &'static str, len: usize, max: usize) -> Result<(), InvalidInput> {
    if len == 0 {
        Err(InvalidInput::new(field, "must not be empty"))
    } else if len > max {
        Err(InvalidInput::new(
            field,
            format!("at most {max} per call, got {len}"),
        ))
    } else {
        Ok(())
    }
}

pub fn first_duplicate<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = HashSet::new();
    names.into_iter().find(|name| !seen.insert(*name))
}

#[cfg(test)]
impl Name {
    pub fn for_test(name: &str) -> Self {
        Name(name.to_string())
    }
}
