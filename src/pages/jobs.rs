//! `/jobs`: seed 001's jobs, newest first, 50 per page, filtered by status and kind in the
//! URL; the table is a live region (`ui::live`).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::jobs::list_jobs;
use crate::i18n::*;
use crate::model::{Cursor, JobKind, JobStatus, JobView, JobsQuery, JobsView};
use crate::ui::progress_bar::ProgressBar;
use crate::ui::status_badge::StatusBadge;
use crate::ui::time::{duration_text, RelativeTime};

#[component]
pub fn JobsPage() -> impl IntoView {
    let i18n = use_i18n();
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|p| JobsQuery {
            status: p.get("status").as_deref().and_then(JobStatus::parse),
            kind: p.get("kind").as_deref().and_then(JobKind::parse),
            after: p
                .get("after")
                .filter(|a| !a.is_empty())
                .map(Cursor::from_text),
        })
    });
    let jobs = Resource::new(move || query.get(), list_jobs);
    view! {
        <Title text=untrack(|| format!("{} | Jobdeck", t_string!(i18n, jobs_title))) />
        <h1>{t!(i18n, jobs_title)}</h1>
        <section class="panel">
            <FilterForm query=query.get_untracked() />
            <div data-live="jobs">
                <Transition fallback=move || view! { <p class="muted">{t!(i18n, loading)}</p> }>
                    {move || Suspend::new(async move {
                        match jobs.await {
                            Ok(view) => view! { <JobsTable view query=query.get_untracked() /> }.into_any(),
                            Err(_) => view! { <p class="load-failed">{t!(i18n, load_failed)}</p> }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </section>
    }
}

#[component]
fn FilterForm(query: JobsQuery) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <form class="search" method="get" action="/jobs" role="search">
            <select name="status" aria-label=move || t_string!(i18n, status_filter)>
                <option value="" selected=query.status.is_none()>{t!(i18n, status_all)}</option>
                {JobStatus::ALL.into_iter().map(|status| view! {
                    <option value=status.as_str() selected=query.status == Some(status)>{status.as_str()}</option>
                }).collect_view()}
            </select>
            <select name="kind" aria-label=move || t_string!(i18n, kind)>
                <option value="" selected=query.kind.is_none()>{t!(i18n, kind_all)}</option>
                {JobKind::ALL.into_iter().map(|kind| view! {
                    <option value=kind.as_str() selected=query.kind == Some(kind)>{kind.as_str()}</option>
                }).collect_view()}
            </select>
            <button type="submit">{t!(i18n, filter)}</button>
        </form>
    }
}

#[component]
fn JobsTable(view: JobsView, query: JobsQuery) -> impl IntoView {
    let i18n = use_i18n();
    if view.jobs.is_empty() {
        return view! { <p class="muted" data-testid="no-jobs">{t!(i18n, no_jobs)}</p> }.into_any();
    }
    let JobsView { now, jobs, next } = view;
    let next_href = next.map(|after| {
        JobsQuery {
            after: Some(after),
            ..query.clone()
        }
        .href()
    });
    let first_href = JobsQuery {
        after: None,
        ..query.clone()
    }
    .href();
    view! {
        <div class="table-scroll">
            <table class="grid jobs-table" data-testid="jobs-table">
                <thead>
                    <tr>
                        <th>{t!(i18n, status)}</th>
                        <th>{t!(i18n, job)}</th>
                        <th>{t!(i18n, kind)}</th>
                        <th>{t!(i18n, priority)}</th>
                        <th>{t!(i18n, progress)}</th>
                        <th>{t!(i18n, phase)}</th>
                        <th>{t!(i18n, started)}</th>
                        <th>{t!(i18n, duration)}</th>
                    </tr>
                </thead>
                <tbody>
                    {jobs.into_iter().map(|job| view! { <JobRow job now /> }).collect_view()}
                </tbody>
            </table>
        </div>
        <nav class="pager" aria-label=move || t_string!(i18n, pages)>
            {query.after.is_some().then(|| view! { <a href=first_href.clone() rel="first">{t!(i18n, first_page)}</a> })}
            {next_href.map(|href| view! { <a href=href rel="next" data-testid="next-page">{t!(i18n, next_page)}</a> })}
        </nav>
    }
    .into_any()
}

#[component]
fn JobRow(job: JobView, now: chrono::DateTime<chrono::Utc>) -> impl IntoView {
    let href = format!("/jobs/{}", job.id);
    let name = job_name(&job);
    let progress = job.detailed_status.progress_percentage;
    let duration = job.started_at.map(|start| {
        (job.finished_at.unwrap_or(now) - start)
            .num_milliseconds()
            .max(0)
    });
    view! {
        <tr data-job-id=job.id.to_string()>
            <td><StatusBadge status=job.status /></td>
            <td><a href=href>{name}</a></td>
            <td>{job.kind.as_str()}</td>
            <td class="num">{job.priority}</td>
            <td><ProgressBar percent=progress /></td>
            <td>{job.detailed_status.current_phase.clone().unwrap_or_else(|| "—".into())}</td>
            <td>{job.started_at.map(|at| view! { <RelativeTime at now /> })}</td>
            <td class="num">{duration.map(duration_text)}</td>
        </tr>
    }
}

/// How a job is named on the pages: its product and sending group, or its kind and user.
pub fn job_name(job: &JobView) -> String {
    match (&job.product_id, &job.sending_group_id, &job.user_id) {
        (Some(product), Some(group), _) => format!("{product} / {group}"),
        (_, _, Some(user)) => format!("{} · {user}", job.kind.as_str()),
        _ => format!("{} {}", job.kind.as_str(), &job.id.to_string()[..8]),
    }
}
