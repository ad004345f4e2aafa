//! `JobHistoryTable`: the newest finished recap jobs; each row links to its job page. Under
//! 640 px the rows stack as cards (`data-label`), so nothing scrolls sideways.

use leptos::prelude::*;

use crate::i18n::*;
use crate::model::RecentJob;
use crate::ui::recap::active_job_card::trigger_text;
use crate::ui::status_badge::StatusBadge;
use crate::ui::time::{duration_text, RelativeTime};

#[component]
pub fn JobHistoryTable(jobs: Vec<RecentJob>, now: chrono::DateTime<chrono::Utc>) -> impl IntoView {
    let i18n = use_i18n();
    if jobs.is_empty() {
        return view! { <p class="muted" data-testid="no-history">{t!(i18n, no_recent_jobs)}</p> }
            .into_any();
    }
    // Column names, repeated on each cell for the stacked layout of narrow windows.
    let [l_status, l_job, l_trigger, l_started, l_duration, l_articles, l_genres, l_error] =
        untrack(|| {
            [
                t_string!(i18n, status).to_string(),
                t_string!(i18n, job).to_string(),
                t_string!(i18n, trigger).to_string(),
                t_string!(i18n, started).to_string(),
                t_string!(i18n, duration).to_string(),
                t_string!(i18n, articles).to_string(),
                t_string!(i18n, genres).to_string(),
                t_string!(i18n, error).to_string(),
            ]
        });
    view! {
        <table class="grid history" data-testid="job-history">
            <thead><tr>
                <th>{l_status.clone()}</th><th>{l_job.clone()}</th><th>{l_trigger.clone()}</th>
                <th>{l_started.clone()}</th><th class="num">{l_duration.clone()}</th>
                <th class="num">{l_articles.clone()}</th><th class="num">{l_genres.clone()}</th>
                <th>{l_error.clone()}</th>
            </tr></thead>
            <tbody>
                {jobs.into_iter().map(|job| {
                    let href = format!("/jobs/{}", job.id);
                    let short = job.id.to_string()[..8].to_string();
                    view! {
                        <tr data-job-id=job.id.to_string() data-status=job.status.as_str()
                            class=(job.status == crate::model::JobStatus::Failed).then_some("failing")>
                            <td data-label=l_status.clone()><StatusBadge status=job.status /></td>
                            <td data-label=l_job.clone()><a href=href><code>{short}</code></a></td>
                            <td data-label=l_trigger.clone()>{trigger_text(job.trigger_source, job.user_id.as_deref())}</td>
                            <td data-label=l_started.clone()>{job.started_at.map(|at| view! { <RelativeTime at now /> })}</td>
                            <td data-label=l_duration.clone() class="num">{job.duration_ms.map(duration_text)}</td>
                            <td data-label=l_articles.clone() class="num">{job.articles}</td>
                            <td data-label=l_genres.clone() class="num">{job.genres}</td>
                            <td data-label=l_error.clone() class="history-error">
                                {job.last_error.map(|e| view! { <code>{e.code}</code>" "{e.message} })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
