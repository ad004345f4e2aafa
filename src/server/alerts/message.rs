//! What an alert says, in Japanese or English: its one-line summary (from the facts the
//! rule measured), and a notification's subject and body.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::{AlertKind, AlertState, MessageLanguage};

fn number(facts: &Value, name: &str) -> Option<f64> {
    facts.get(name).and_then(Value::as_f64)
}

fn time(facts: &Value, name: &str) -> String {
    facts
        .get(name)
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|| "?".into())
}

/// Seconds as the largest whole unit that fits (90 → 1.5 min, 7200 → 2 h).
fn span(seconds: f64, language: MessageLanguage) -> String {
    let (value, ja, en) = if seconds >= 86_400.0 {
        (seconds / 86_400.0, "日", "d")
    } else if seconds >= 3600.0 {
        (seconds / 3600.0, "時間", "h")
    } else if seconds >= 60.0 {
        (seconds / 60.0, "分", "min")
    } else {
        (seconds, "秒", "s")
    };
    let value = (value * 10.0).round() / 10.0;
    match language {
        MessageLanguage::Ja => format!("{value}{ja}"),
        MessageLanguage::En => format!("{value} {en}"),
    }
}

/// What the rule measured, in one line.
pub fn summary(kind: AlertKind, facts: &Value, language: MessageLanguage) -> String {
    use MessageLanguage::{En, Ja};
    let n = |name| number(facts, name).unwrap_or(0.0);
    match (kind, language) {
        (AlertKind::MissedRun, Ja) => format!(
            "{} に予定された実行の報告がありません（期限 {}）",
            time(facts, "expected_at"),
            time(facts, "deadline")
        ),
        (AlertKind::MissedRun, En) => format!(
            "no report of the run expected at {} (deadline {})",
            time(facts, "expected_at"),
            time(facts, "deadline")
        ),
        (AlertKind::Stuck, _) => {
            let since = facts
                .get("started_at")
                .map(|_| time(facts, "started_at"))
                .unwrap_or_else(|| time(facts, "last_sign"));
            let grace = span(n("grace_seconds"), language);
            match language {
                Ja => format!("{since} に開始してから {grace} 以上、完了も応答もありません"),
                En => format!("started or last seen at {since}, nothing since for over {grace}"),
            }
        }
        (AlertKind::FailureRate, _) if facts.get("consecutive").is_some() => {
            let count = n("consecutive");
            match language {
                Ja => format!("{count} 回連続で失敗しました"),
                En if count <= 1.0 => "the latest run failed".to_string(),
                En => format!("{count} failures in a row"),
            }
        }
        (AlertKind::FailureRate, _) => {
            let window = span(n("window_seconds"), language);
            let (failed, total, percent) = (n("failed"), n("total"), n("percent"));
            match language {
                Ja => format!(
                    "直近 {window} で {total} 回中 {failed} 回失敗（{percent}%、しきい値 {}%）",
                    n("threshold_percent")
                ),
                En => format!(
                    "{failed} of {total} runs failed in the last {window} ({percent}%, threshold {}%)",
                    n("threshold_percent")
                ),
            }
        }
        (AlertKind::DurationAnomaly, _) => {
            let took = span(n("seconds"), language);
            let usual = number(facts, "p95_seconds")
                .map(|p| span(p, language))
                .unwrap_or_else(|| "-".into());
            match language {
                Ja => format!("実行時間 {took}（通常の p95 は {usual}）"),
                En => format!("took {took} (usual p95 {usual})"),
            }
        }
        (AlertKind::ErrorSpike, _) => {
            let error_type = facts
                .get("error_type")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let window = span(n("window_seconds"), language);
            match language {
                Ja => format!("{error_type} が直近 {window} で {} 回発生", n("count")),
                En => format!("{error_type} {} times in the last {window}", n("count")),
            }
        }
    }
}

pub fn state_word(to: AlertState, reminder: bool, language: MessageLanguage) -> &'static str {
    match (to, reminder, language) {
        (_, true, MessageLanguage::Ja) => "継続中",
        (_, true, MessageLanguage::En) => "STILL FIRING",
        (AlertState::Firing, _, MessageLanguage::Ja) => "発生",
        (AlertState::Firing, _, MessageLanguage::En) => "FIRING",
        (AlertState::Resolved, _, MessageLanguage::Ja) => "解決",
        (AlertState::Resolved, _, MessageLanguage::En) => "RESOLVED",
        (AlertState::Pending, _, MessageLanguage::Ja) => "保留",
        (AlertState::Pending, _, MessageLanguage::En) => "PENDING",
        (AlertState::Ok, _, MessageLanguage::Ja) => "正常",
        (AlertState::Ok, _, MessageLanguage::En) => "OK",
    }
}

/// A notification, ready for any channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub subject: String,
    pub body: String,
}

pub struct NoticeFacts<'a> {
    pub rule_name: &'a str,
    pub kind: AlertKind,
    pub severity: &'a str,
    pub label: &'a str,
    pub to: AlertState,
    pub reminder: bool,
    pub facts: &'a Value,
    pub at: DateTime<Utc>,
    /// An absolute link when the portal knows its public address, else a path.
    pub link: Option<String>,
}

pub fn notice(facts: &NoticeFacts, language: MessageLanguage) -> Notice {
    let word = state_word(facts.to, facts.reminder, language);
    let subject = format!("[Jobdeck] {word}: {} — {}", facts.rule_name, facts.label);
    let summary = summary(facts.kind, facts.facts, language);
    let at = facts.at.format("%Y-%m-%d %H:%M:%S UTC");
    let mut body = match language {
        MessageLanguage::Ja => format!(
            "{word}: {}\n対象: {}\n内容: {summary}\n重要度: {}\n日時: {at}\n",
            facts.rule_name, facts.label, facts.severity
        ),
        MessageLanguage::En => format!(
            "{word}: {}\nSubject: {}\nWhat: {summary}\nSeverity: {}\nAt: {at}\n",
            facts.rule_name, facts.label, facts.severity
        ),
    };
    if let Some(link) = &facts.link {
        body.push_str(match language {
            MessageLanguage::Ja => "詳細: ",
            MessageLanguage::En => "Details: ",
        });
        body.push_str(link);
        body.push('\n');
    }
    Notice { subject, body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries_read_in_both_languages() {
        let facts = json!({"failed": 3, "total": 4, "percent": 75.0, "window_seconds": 3600, "threshold_percent": 50.0});
        assert_eq!(
            summary(AlertKind::FailureRate, &facts, MessageLanguage::En),
            "3 of 4 runs failed in the last 1 h (75%, threshold 50%)"
        );
        assert_eq!(
            summary(AlertKind::FailureRate, &facts, MessageLanguage::Ja),
            "直近 1時間 で 4 回中 3 回失敗（75%、しきい値 50%）"
        );
        let streak = json!({"consecutive": 1});
        assert_eq!(
            summary(AlertKind::FailureRate, &streak, MessageLanguage::En),
            "the latest run failed"
        );
    }
}
