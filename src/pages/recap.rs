//! `/desktop/recap/job-status` (seed 002): the Recap job-status dashboard. The 24-hour
//! figures, the live jobs with their pipelines and genres, two charts and the recent jobs,
//! each a live region (`ui::live`) refreshed every 5 s from the server's cached figures.
//! `?user_id=` narrows it to one user's jobs and survives reloads and sharing.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::dashboard::get_recap_dashboard;
use crate::i18n::*;
use crate::model::{AppError, JobStats, RecapDashboard};
use crate::ui::recap::active_job_card::ActiveJobCard;
use crate::ui::recap::job_history_table::JobHistoryTable;
use crate::ui::recap::metric_card::{Better, Change, MetricCard};
use crate::ui::time::duration_text;

pub const PATH: &str = "/desktop/recap/job-status";

#[component]
pub fn RecapJobStatusPage() -> impl IntoView {
    let i18n = use_i18n();
    let user_id = use_query_map()
        .read_untracked()
        .get("user_id")
        .filter(|id| !id.trim().is_empty());
    let filter = user_id.clone();
    let data = Resource::new(|| (), move |_| get_recap_dashboard(filter.clone()));
    view! {
        <Title text=untrack(|| format!("{} | Jobdeck", t_string!(i18n, recap_title))) />
        <header class="dash-head">
            <h1>{t!(i18n, recap_title)}</h1>
            <UserFilter user_id=user_id.clone() />
        </header>
        <Transition fallback=move || view! { <p class="muted">{t!(i18n, loading)}</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(dashboard) => view! { <Dashboard dashboard /> }.into_any(),
                    Err(AppError::Invalid { message, .. }) => view! {
                        <p class="form-error" data-testid="filter-error">{message}</p>
                    }.into_any(),
                    Err(_) => view! { <p class="load-failed">{t!(i18n, load_failed)}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// A plain GET form, so the filter is in the URL.
#[component]
fn UserFilter(user_id: Option<String>) -> impl IntoView {
    let i18n = use_i18n();
    let filtered = user_id.is_some();
    view! {
        <form class="search dash-filter" method="get" action=PATH role="search">
            <input type="search" name="user_id" value=user_id.unwrap_or_default()
                placeholder=move || t_string!(i18n, user_filter_placeholder)
                aria-label=move || t_string!(i18n, user_filter_placeholder)
                data-testid="user-filter" />
            <button type="submit">{t!(i18n, filter)}</button>
            {filtered.then(|| view! { <a class="clear-filter" href=PATH>{t!(i18n, clear_filter)}</a> })}
        </form>
    }
}

#[component]
fn Dashboard(dashboard: RecapDashboard) -> impl IntoView {
    let i18n = use_i18n();
    let RecapDashboard {
        stats,
        progress,
        charts,
    } = dashboard;
    let now = progress.generated_at;
    let nothing_yet = progress.active.is_empty()
        && progress.recent.is_empty()
        && stats.last_24h.jobs == 0
        && stats.previous_24h.jobs == 0;
    let active_count = if progress.more_active {
        format!("{}+", progress.active.len())
    } else {
        progress.active.len().to_string()
    };
    view! {
        <section class="metrics" data-live="recap-metrics" data-live-stream="/v1/events" aria-label=move || t_string!(i18n, last_24h)>
            <Metrics stats=stats.clone() />
        </section>
        <section class="panel" data-live="recap-active">
            {if nothing_yet {
                view! {
                    <div class="empty-state" data-testid="no-recap-jobs">
                        <p>{t!(i18n, no_recap_jobs)}</p>
                    </div>
                }.into_any()
            } else if progress.active.is_empty() {
                view! {
                    <h2>{t!(i18n, active_jobs)}</h2>
                    <p class="muted" data-testid="no-active-job">{t!(i18n, no_active_job)}</p>
                    {progress.last_finished.map(|job| view! {
                        <h3>{t!(i18n, last_run)}</h3>
                        <ActiveJobCard job now />
                    })}
                }.into_any()
            } else {
                view! {
                    <h2>{t!(i18n, active_jobs)}" "<small class="muted count">{active_count}</small></h2>
                    <div class="active-jobs">
                        {progress.active.into_iter().map(|job| view! { <ActiveJobCard job now /> }).collect_view()}
                    </div>
                }.into_any()
            }}
        </section>
        <div class="charts" data-live="recap-charts">
            <section class="panel chart-card">
                <h2>{t!(i18n, jobs_per_hour)}</h2>
                <p class="legend small">
                    <span class="key key-jobs"></span>{t!(i18n, legend_jobs)}
                    <span class="key key-failures"></span>{t!(i18n, legend_failures)}
                </p>
                <div class="chart" data-testid="chart-per-hour" inner_html=charts.per_hour_svg></div>
            </section>
            <section class="panel chart-card">
                <h2>{t!(i18n, stage_durations)}</h2>
                {if stats.stages.is_empty() {
                    view! { <p class="muted">{t!(i18n, no_stage_runs)}</p> }.into_any()
                } else {
                    view! { <div class="chart" data-testid="chart-stages" inner_html=charts.stages_svg></div> }.into_any()
                }}
            </section>
        </div>
        <section class="panel" data-live="recap-history">
            <h2>{t!(i18n, recent_jobs)}</h2>
            <JobHistoryTable jobs=progress.recent now />
        </section>
    }
}

#[component]
fn Metrics(stats: JobStats) -> impl IntoView {
    let i18n = use_i18n();
    let (now, before) = (&stats.last_24h, &stats.previous_24h);
    let some_before = before.jobs > 0;
    let [compared, no_earlier, success, avg, failures, jobs] = untrack(|| {
        [
            t_string!(i18n, vs_previous_24h).to_string(),
            t_string!(i18n, no_earlier_data).to_string(),
            t_string!(i18n, success_rate).to_string(),
            t_string!(i18n, avg_duration).to_string(),
            t_string!(i18n, failures).to_string(),
            t_string!(i18n, jobs_24h).to_string(),
        ]
    });
    let compared = move |change: &Option<Change>| {
        if change.is_some() {
            compared.clone()
        } else {
            no_earlier.clone()
        }
    };
    let dash = || "—".to_string();
    let rate = Change::points(now.success_rate, before.success_rate);
    let time = Change::percent(now.avg_duration_ms, before.avg_duration_ms);
    let failed = some_before.then(|| Change::count(now.failed, before.failed));
    let count = some_before.then(|| Change::count(now.jobs, before.jobs));
    view! {
        <MetricCard label=success testid="metric-success-rate" better=Better::Higher
            value=now.success_rate.map_or_else(dash, |r| format!("{r:.1}%"))
            compared=compared(&rate) change=rate />
        <MetricCard label=avg testid="metric-avg-duration" better=Better::Lower
            value=now.avg_duration_ms.map_or_else(dash, |ms| duration_text(ms.round() as i64))
            compared=compared(&time) change=time />
        <MetricCard label=failures testid="metric-failures" better=Better::Lower
            value=now.failed.to_string()
            compared=compared(&failed) change=failed />
        <MetricCard label=jobs testid="metric-jobs" better=Better::Neither
            value=now.jobs.to_string()
            compared=compared(&count) change=count />
    }
}
