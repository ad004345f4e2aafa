//! A job's progress as a bar with its percentage.

use leptos::prelude::*;

#[component]
pub fn ProgressBar(percent: f64) -> impl IntoView {
    let width = format!("width: {:.1}%", percent.clamp(0.0, 100.0));
    view! {
        <span class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100"
            aria-valuenow=format!("{percent:.0}")>
            <span class="progress-fill" style=width></span>
            <span class="progress-text">{format!("{percent:.0}%")}</span>
        </span>
    }
}
