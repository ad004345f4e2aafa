//! `/jobs`: the job history (seed 000's `fetchJobHistory`): filters by status, kind, day
//! created, error type and user, a sort by column, cursor paging and the aggregate cards
//! over every job the filters select, all in the URL so a view can be bookmarked and shared.
//! The cards and the table are a live region (`ui::live`).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::jobs::list_jobs;
use crate::i18n::*;
use crate::model::{
    AppError, HistorySort, JobKind, JobStatus, JobView, JobsAggregates, JobsQuery, JobsView,
    SortOrder,
};
use crate::ui::progress_bar::ProgressBar;
use crate::ui::status_badge::StatusBadge;
use crate::ui::time::{duration_text, RelativeTime};

#[component]
pub fn JobsPage() -> impl IntoView {
    let i18n = use_i18n();
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|p| JobsQuery::from_params(|name| p.get_all(name).unwrap_or_default()))
    });
    let jobs = Resource::new(move || query.get(), list_jobs);
    view! {
        <Title text=untrack(|| format!("{} | Jobdeck", t_string!(i18n, jobs_title))) />
        <h1>{t!(i18n, jobs_title)}</h1>
        <section class="panel">
            <FilterForm query=query.get_untracked() />
            <div data-live="jobs" data-live-stream="/v1/events">
                <Transition fallback=move || view! { <p class="muted">{t!(i18n, loading)}</p> }>
                    {move || Suspend::new(async move {
                        match jobs.await {
                            Ok(view) => view! { <JobsResult view query=query.get_untracked() /> }.into_any(),
                            Err(AppError::Invalid { message, .. }) => view! {
                                <p class="form-error" role="alert" data-testid="jobs-error">{message}</p>
                            }.into_any(),
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
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    view! {
        <form class="search job-filters" method="get" action="/jobs" role="search" data-testid="job-filters">
            <fieldset class="status-choices">
                <legend>{t!(i18n, status_filter)}</legend>
                {JobStatus::ALL.into_iter().map(|status| view! {
                    <label>
                        <input type="checkbox" name="status" value=status.as_str()
                            checked=query.status.iter().any(|s| s == status.as_str()) />
                        {status.as_str()}
                    </label>
                }).collect_view()}
            </fieldset>
            <select name="kind" aria-label=move || t_string!(i18n, kind)>
                <option value="" selected=query.kind.is_none()>{t!(i18n, kind_all)}</option>
                {JobKind::ALL.into_iter().map(|kind| view! {
                    <option value=kind.as_str() selected=query.kind.as_deref() == Some(kind.as_str())>{kind.as_str()}</option>
                }).collect_view()}
            </select>
            <label>{t!(i18n, created_from)} <input type="date" name="from"
                value=query.effective_from(chrono::Utc::now().date_naive()).unwrap_or_default() /></label>
            <label>{t!(i18n, created_to)} <input type="date" name="to" value=text(&query.to) /></label>
            <input type="search" name="error" value=text(&query.error)
                placeholder=move || t_string!(i18n, error_type_filter)
                aria-label=move || t_string!(i18n, error_type_filter) />
            <input type="search" name="user" value=text(&query.user)
                placeholder=move || t_string!(i18n, user_id) aria-label=move || t_string!(i18n, user_id) />
            // A new filter keeps the sort and starts from the first page.
            {query.sort.clone().map(|sort| view! { <input type="hidden" name="sort" value=sort /> })}
            {query.order.clone().map(|order| view! { <input type="hidden" name="order" value=order /> })}
            <button type="submit">{t!(i18n, filter)}</button>
            <a href="/jobs" class="clear">{t!(i18n, clear_filter)}</a>
        </form>
    }
}

#[component]
fn JobsResult(view: JobsView, query: JobsQuery) -> impl IntoView {
    let i18n = use_i18n();
    let JobsView {
        now,
        jobs,
        next,
        aggregates,
    } = view;
    let cards = view! { <AggregateCards totals=aggregates /> };
    if jobs.is_empty() {
        return view! {
            {cards}
            <p class="muted" data-testid="no-jobs">{t!(i18n, no_jobs)}</p>
        }
        .into_any();
    }
    let next_href = next.map(|cursor| {
        JobsQuery {
            cursor: Some(cursor.as_str().to_string()),
            ..query.clone()
        }
        .href()
    });
    let first_href = JobsQuery {
        cursor: None,
        ..query.clone()
    }
    .href();
    let header = |field: HistorySort, label: AnyView| {
        let sorted = query.sort_field() == field;
        let arrow = match (sorted, query.sort_order()) {
            (false, _) => "",
            (true, SortOrder::Desc) => " ↓",
            (true, SortOrder::Asc) => " ↑",
        };
        let aria = match (sorted, query.sort_order()) {
            (false, _) => "none",
            (true, SortOrder::Desc) => "descending",
            (true, SortOrder::Asc) => "ascending",
        };
        view! {
            <th aria-sort=aria>
                <a href=query.sorted_by(field).href() data-sort=field.as_str()>{label}{arrow}</a>
            </th>
        }
    };
    view! {
        {cards}
        <div class="table-scroll">
            <table class="grid jobs-table" data-testid="jobs-table">
                <thead>
                    <tr>
                        <th>{t!(i18n, status)}</th>
                        <th>{t!(i18n, job)}</th>
                        <th>{t!(i18n, kind)}</th>
                        {header(HistorySort::Priority, t!(i18n, priority).into_any())}
                        <th>{t!(i18n, progress)}</th>
                        <th>{t!(i18n, phase)}</th>
                        {header(HistorySort::CreatedAt, t!(i18n, created).into_any())}
                        {header(HistorySort::StartedAt, t!(i18n, started).into_any())}
                        {header(HistorySort::Duration, t!(i18n, duration).into_any())}
                    </tr>
                </thead>
                <tbody>
                    {jobs.into_iter().map(|job| view! { <JobRow job now /> }).collect_view()}
                </tbody>
            </table>
        </div>
        <nav class="pager" aria-label=move || t_string!(i18n, pages)>
            {query.cursor.is_some().then(|| view! { <a href=first_href.clone() rel="first">{t!(i18n, first_page)}</a> })}
            {next_href.map(|href| view! { <a href=href rel="next" data-testid="next-page">{t!(i18n, next_page)}</a> })}
        </nav>
    }
    .into_any()
}

/// Over every job the filters select, not only this page.
#[component]
fn AggregateCards(totals: JobsAggregates) -> impl IntoView {
    let i18n = use_i18n();
    let percent =
        |rate: Option<f64>| rate.map_or_else(|| "—".to_string(), |r| format!("{:.1} %", r * 100.0));
    let duration = totals
        .avg_duration_ms
        .map_or_else(|| "—".to_string(), |ms| duration_text(ms.round() as i64));
    view! {
        <dl class="aggregate-cards" data-testid="job-aggregates">
            <div data-testid="aggregate-total"><dt>{t!(i18n, jobs_matching)}</dt><dd>{totals.total}</dd></div>
            <div data-testid="aggregate-success"><dt>{t!(i18n, success_rate)}</dt><dd>{percent(totals.success_rate)}</dd></div>
            <div data-testid="aggregate-duration"><dt>{t!(i18n, avg_duration)}</dt><dd>{duration}</dd></div>
            <div data-testid="aggregate-errors"><dt>{t!(i18n, error_rate)}</dt><dd>{percent(totals.error_rate)}</dd></div>
        </dl>
    }
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
            <td><RelativeTime at=job.created_at now /></td>
            <td>{job.started_at.map(|at| view! { <RelativeTime at now /> })}</td>
            <td class="num">{duration.map(duration_text)}</td>
        </tr>
    }
}

/// How a job is named on the pages: its product and sending group, or its kind and user.
pub fn job_name(job: &JobView) -> String {
    crate::model::job_label(
        job.kind,
        job.product_id.as_deref(),
        job.sending_group_id.as_deref(),
        job.user_id.as_deref(),
        job.id,
    )
}
