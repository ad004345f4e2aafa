//! Times as people read them: "3分前" / "3 minutes ago", the exact time on hover.

use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::i18n::{use_i18n, Locale};

/// How long ago `at` was, seen from `now`, in the locale's words.
pub fn relative_text(now: DateTime<Utc>, at: DateTime<Utc>, locale: Locale) -> String {
    let secs = (now - at).num_seconds().max(0);
    let (n, unit) = match secs {
        0..45 => {
            return if locale == Locale::ja {
                "たった今".into()
            } else {
                "just now".into()
            }
        }
        45..3_600 => ((secs + 30) / 60, Unit::Minute),
        3_600..86_400 => ((secs + 1_800) / 3_600, Unit::Hour),
        86_400..2_592_000 => ((secs + 43_200) / 86_400, Unit::Day),
        2_592_000..31_536_000 => (secs / 2_592_000, Unit::Month),
        _ => (secs / 31_536_000, Unit::Year),
    };
    let n = n.max(1);
    match locale {
        Locale::ja => format!("{n}{}前", unit.ja()),
        Locale::en => format!("{n} {}{} ago", unit.en(), if n == 1 { "" } else { "s" }),
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Minute,
    Hour,
    Day,
    Month,
    Year,
}

impl Unit {
    fn ja(self) -> &'static str {
        match self {
            Unit::Minute => "分",
            Unit::Hour => "時間",
            Unit::Day => "日",
            Unit::Month => "か月",
            Unit::Year => "年",
        }
    }

    fn en(self) -> &'static str {
        match self {
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Month => "month",
            Unit::Year => "year",
        }
    }
}

/// The exact time in UTC; `ui::live` rewrites it in the viewer's zone in the browser.
pub fn exact_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A duration such as "1.2s", "3m 05s" or "2h 04m".
pub fn duration_text(ms: i64) -> String {
    match ms {
        ..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{}h {:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// `<time>` showing how long ago `at` was, relative to the server's `now` of the same data.
#[component]
pub fn RelativeTime(at: DateTime<Utc>, now: DateTime<Utc>) -> impl IntoView {
    let locale = use_i18n().get_locale_untracked();
    view! {
        <time datetime=at.to_rfc3339() title=exact_text(at)>{relative_text(now, at, locale)}</time>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn says_minutes_ago_in_both_languages() {
        let now = Utc::now();
        let at = now - Duration::minutes(3);
        assert_eq!(relative_text(now, at, Locale::ja), "3分前");
        assert_eq!(relative_text(now, at, Locale::en), "3 minutes ago");
        assert_eq!(
            relative_text(now, now - Duration::hours(1), Locale::en),
            "1 hour ago"
        );
        assert_eq!(relative_text(now, now, Locale::ja), "たった今");
    }

    #[test]
    fn formats_durations() {
        assert_eq!(duration_text(950), "950ms");
        assert_eq!(duration_text(2_500), "2.5s");
        assert_eq!(duration_text(185_000), "3m 05s");
        assert_eq!(duration_text(7_440_000), "2h 04m");
    }
}
