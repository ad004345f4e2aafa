//! One cursor for every list paged by key (incidents, jobs, the audit log, and next, job
//! history): the position just after the last row of a page, as the list gave it out. It is
//! opaque to whoever holds it (the key's parts, hex-encoded, so it is safe in a URL), and
//! every list refuses one it did not write with the same 400.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

/// The part separator; the key's parts are numbers, ids and job keys, which never hold it
/// (job keys are printable).
const SEPARATOR: char = '\u{1f}';

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`after` is not a position this list gave out")]
pub struct BadCursor;

impl Cursor {
    pub fn new(parts: &[&str]) -> Self {
        let text = parts.join(&SEPARATOR.to_string());
        Self(text.bytes().map(|b| format!("{b:02x}")).collect())
    }

    /// As it came in a URL or a body; checked when a list reads it.
    pub fn from_text(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's parts, exactly `N` of them.
    pub fn parts<const N: usize>(&self) -> Result<[String; N], BadCursor> {
        let hex = self.0.as_bytes();
        if !hex.len().is_multiple_of(2) {
            return Err(BadCursor);
        }
        let bytes = hex
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or(BadCursor)
            })
            .collect::<Result<Vec<u8>, BadCursor>>()?;
        let text = String::from_utf8(bytes).map_err(|_| BadCursor)?;
        let parts: Vec<String> = text.split(SEPARATOR).map(String::from).collect();
        parts.try_into().map_err(|_| BadCursor)
    }
}

/// A timestamp part, in microseconds.
pub fn time_part(time: DateTime<Utc>) -> String {
    time.timestamp_micros().to_string()
}

pub fn parse_time(part: &str) -> Result<DateTime<Utc>, BadCursor> {
    let micros: i64 = part.parse().map_err(|_| BadCursor)?;
    DateTime::from_timestamp_micros(micros).ok_or(BadCursor)
}

pub fn parse_id(part: &str) -> Result<Uuid, BadCursor> {
    part.parse().map_err(|_| BadCursor)
}

pub fn parse_number(part: &str) -> Result<i64, BadCursor> {
    part.parse().map_err(|_| BadCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_gives_back_its_parts_and_nothing_else_reads_as_one() {
        let cursor = Cursor::new(&["f", "1700000000000000", "nightly/backup ~ x"]);
        assert!(cursor.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        let [a, b, c] = cursor.parts().unwrap();
        assert_eq!(
            (a.as_str(), b.as_str(), c.as_str()),
            ("f", "1700000000000000", "nightly/backup ~ x")
        );
        assert_eq!(cursor.parts::<2>(), Err(BadCursor));
        for bad in ["", "zz", "abc", "f1700~x", "ff"] {
            let parsed = Cursor::from_text(bad).parts::<3>();
            assert_eq!(parsed, Err(BadCursor), "{bad:?}");
        }
        assert_eq!(parse_time("x"), Err(BadCursor));
        assert_eq!(
            parse_time(&time_part(DateTime::UNIX_EPOCH)),
            Ok(DateTime::UNIX_EPOCH)
        );
    }
}
