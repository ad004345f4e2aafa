use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::i18n::*;
use crate::model::{incident_path, IncidentView};
use crate::ui::status_badge::StatusBadge;
use crate::ui::time::RelativeTime;

/// One job on the incidents page.
#[component]
pub fn IncidentCard(job: IncidentView, now: DateTime<Utc>) -> impl IntoView {
    let i18n = use_i18n();
    let failing = job.last_status.is_failing();
    let message = job.last_message.clone();
    view! {
        <article class="job-card" class:failing=failing data-job-key=job.job_key.clone()>
            <header class="job-card-head">
                <StatusBadge status=job.last_status />
                <a class="job-title" href=incident_path(&job.job_key)>{job.title.clone()}</a>
            </header>
            <dl class="job-facts">
                <div>
                    <dt>{t!(i18n, job_key)}</dt>
                    <dd><code>{job.job_key.clone()}</code></dd>
                </div>
                {job.tool_name.clone().map(|tool| view! {
                    <div>
                        <dt>{t!(i18n, tool)}</dt>
                        <dd>{tool}</dd>
                    </div>
                })}
                <div>
                    <dt>{t!(i18n, finished)}</dt>
                    <dd><RelativeTime at=job.last_finished_at now=now /></dd>
                </div>
            </dl>
            {match message {
                Some(text) => view! { <p class="job-message">{text}</p> }.into_any(),
                None => view! { <p class="job-message muted">{t!(i18n, no_message)}</p> }.into_any(),
            }}
        </article>
    }
}
