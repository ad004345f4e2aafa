use leptos::prelude::*;

use crate::i18n::*;
use crate::model::ReportStatus;

#[component]
pub fn StatusBadge(status: ReportStatus) -> impl IntoView {
    let i18n = use_i18n();
    let label = move || match status {
        ReportStatus::Success => t_string!(i18n, status_success),
        ReportStatus::Error => t_string!(i18n, status_error),
    };
    view! { <span class=format!("status status-{}", status.as_str())>{label}</span> }
}
