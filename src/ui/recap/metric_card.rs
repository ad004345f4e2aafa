//! `MetricCard`: one 24-hour figure and how it moved against the 24 hours before.

use leptos::prelude::*;

/// Whether a rise is good news (success rate), bad news (failures, time) or neither (jobs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    Neither,
}

/// A change against the previous window, already in words: "+2.5 pt", "−12%", "+3".
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub text: String,
    pub delta: f64,
}

impl Change {
    /// Percentage points between two rates.
    pub fn points(now: Option<f64>, before: Option<f64>) -> Option<Self> {
        let delta = now? - before?;
        Some(Self {
            text: format!("{} pt", signed(delta, 1)),
            delta,
        })
    }

    /// Relative change between two amounts, in percent.
    pub fn percent(now: Option<f64>, before: Option<f64>) -> Option<Self> {
        let (now, before) = (now?, before?);
        if before <= 0.0 {
            return None;
        }
        let delta = (now - before) / before * 100.0;
        Some(Self {
            text: format!("{}%", signed(delta, 0)),
            delta,
        })
    }

    /// The difference of two counts.
    pub fn count(now: i64, before: i64) -> Self {
        let delta = (now - before) as f64;
        Self {
            text: signed(delta, 0),
            delta,
        }
    }

    fn tone(&self, better: Better) -> &'static str {
        let up = self.delta > 0.0;
        match better {
            _ if self.delta.abs() < 1e-9 => "same",
            Better::Neither => "same",
            Better::Higher if up => "better",
            Better::Lower if !up => "better",
            _ => "worse",
        }
    }
}

/// "+1.5", "−3", "±0" with a true minus sign.
fn signed(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    if text.trim_start_matches(['0', '.']).is_empty() {
        format!("±{text}")
    } else if value > 0.0 {
        format!("+{text}")
    } else {
        format!("−{text}")
    }
}

#[component]
pub fn MetricCard(
    /// What is measured, in the page's language.
    label: String,
    /// The figure, formatted; "—" when there is nothing to measure.
    value: String,
    /// Against the previous 24 hours; `None` when that window had nothing to compare.
    change: Option<Change>,
    better: Better,
    /// "vs previous 24 h" / "no earlier data", in the page's language.
    compared: String,
    testid: &'static str,
) -> impl IntoView {
    let (tone, change_text) = match &change {
        Some(change) => (change.tone(better), change.text.clone()),
        None => ("none", String::new()),
    };
    view! {
        <article class="metric" data-testid=testid>
            <h2 class="metric-label">{label}</h2>
            <p class="metric-value">{value}</p>
            <p class=format!("metric-change change-{tone}")>
                <span class="change-value">{change_text}</span>" "<span class="muted">{compared}</span>
            </p>
        </article>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_people_write_them() {
        assert_eq!(
            Change::points(Some(92.5), Some(90.0)).unwrap().text,
            "+2.5 pt"
        );
        assert_eq!(
            Change::percent(Some(90.0), Some(100.0)).unwrap().text,
            "−10%"
        );
        assert_eq!(Change::count(3, 3).text, "±0");
        assert_eq!(Change::percent(Some(5.0), Some(0.0)), None);
        assert_eq!(Change::points(None, Some(90.0)), None);
        let slower = Change::percent(Some(120.0), Some(100.0)).unwrap();
        assert_eq!(slower.tone(Better::Lower), "worse");
        assert_eq!(slower.tone(Better::Higher), "better");
        assert_eq!(Change::count(4, 2).tone(Better::Neither), "same");
    }
}
