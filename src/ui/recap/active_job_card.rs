//! `ActiveJobCard`: a live recap job (or, with none live, the last run): id, trigger source
//! and user, when it started, how long it has run, the current stage, its last error, its
//! pipeline and its genres.

use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::i18n::*;
use crate::model::{ActiveJob, TriggerSource};
use crate::ui::progress_bar::ProgressBar;
use crate::ui::recap::genre_progress_list::GenreProgressList;
use crate::ui::recap::pipeline_progress::PipelineProgress;
use crate::ui::status_badge::StatusBadge;
use crate::ui::time::{duration_text, RelativeTime};

/// "system", or "user · alice".
pub fn trigger_text(trigger_source: TriggerSource, user_id: Option<&str>) -> String {
    match user_id {
        Some(user) => format!("{trigger_source} · {user}"),
        None => trigger_source.to_string(),
    }
}

#[component]
pub fn ActiveJobCard(job: ActiveJob, now: DateTime<Utc>) -> impl IntoView {
    let i18n = use_i18n();
    let href = format!("/jobs/{}", job.id);
    let short = job.id.to_string()[..8].to_string();
    let failed = job.last_error.is_some() && job.status == crate::model::JobStatus::Failed;
    view! {
        <article class=if failed { "active-job failed" } else { "active-job" }
            data-testid="active-job" data-job-id=job.id.to_string() data-status=job.status.as_str()>
            <header class="active-job-head">
                <StatusBadge status=job.status />
                <a class="job-title" href=href><code>{short}</code></a>
                <ProgressBar percent=job.progress_percentage />
            </header>
            <dl class="job-facts">
                <div><dt>{t!(i18n, trigger)}</dt><dd>{trigger_text(job.trigger_source, job.user_id.as_deref())}</dd></div>
                <div><dt>{t!(i18n, started)}</dt><dd>{job.started_at.map(|at| view! { <RelativeTime at now /> })}</dd></div>
                <div><dt>{t!(i18n, elapsed)}</dt><dd class="count" data-testid="elapsed">{duration_text(job.elapsed_ms)}</dd></div>
                <div><dt>{t!(i18n, current_stage)}</dt><dd data-testid="current-stage">{job.current_stage.clone().unwrap_or_else(|| "—".into())}</dd></div>
            </dl>
            {job.last_error.map(|error| view! {
                <p class="job-error" data-testid="job-error">
                    <code>{error.code}</code>" "{error.message}
                </p>
            })}
            <PipelineProgress stages=job.stages />
            <GenreProgressList genres=job.genres />
        </article>
    }
}
