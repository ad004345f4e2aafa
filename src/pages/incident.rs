//! `/incidents/:job_key`: one reported job's recent runs and its duration/outcome chart.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::alerts::{job_alerts, JobAlertsView, SetSchedule};
use crate::api::incidents::get_incident_detail;
use crate::i18n::*;
use crate::model::IncidentDetailView;
use crate::ui::alert_list::JobAlertHistory;
use crate::ui::form_error::FormError;
use crate::ui::status_badge::StatusBadge;
use crate::ui::time::{duration_text, exact_text, RelativeTime};

#[component]
pub fn IncidentPage() -> impl IntoView {
    let i18n = use_i18n();
    let params = use_params_map();
    let job_key = move || params.read().get("job_key").unwrap_or_default();
    let detail = Resource::new(job_key, get_incident_detail);
    let lang = i18n.get_locale_untracked().as_str().to_string();
    let alerts = Resource::new(
        move || (job_key(), lang.clone()),
        |(key, lang)| job_alerts(key, lang),
    );
    view! {
        <p class="back"><a href="/incidents">"← "{t!(i18n, back_to_incidents)}</a></p>
        <FormError />
        <div data-live="incident">
            <Transition fallback=move || view! { <p class="muted">{t!(i18n, loading)}</p> }>
                {move || Suspend::new(async move {
                    match detail.await {
                        Ok(Some(detail)) => view! { <IncidentDetail detail /> }.into_any(),
                        Ok(None) => view! {
                            <Title text="Jobdeck" />
                            <h1>{t!(i18n, job_not_found)}</h1>
                            <p><code>{job_key()}</code></p>
                        }.into_any(),
                        Err(_) => view! { <p class="load-failed">{t!(i18n, load_failed)}</p> }.into_any(),
                    }
                })}
            </Transition>
        </div>
        <div data-live="job-alerts">
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    alerts.await.ok().map(|view| view! { <JobAlerts view job_key=job_key() /> })
                })}
            </Transition>
        </div>
    }
}

/// The script's schedule (and the form that sets it), its open alerts and their history.
#[component]
fn JobAlerts(view: JobAlertsView, job_key: String) -> impl IntoView {
    let i18n = use_i18n();
    let JobAlertsView {
        now,
        schedule,
        open,
        history,
        may_act,
    } = view;
    let (cron, timezone, period, grace) = schedule
        .as_ref()
        .map(|s| {
            (
                s.cron.clone().unwrap_or_default(),
                s.timezone.clone(),
                s.period_seconds
                    .map(|p| (p / 60).to_string())
                    .unwrap_or_default(),
                (s.grace_seconds / 60).to_string(),
            )
        })
        .unwrap_or_else(|| {
            (
                String::new(),
                "Asia/Tokyo".into(),
                String::new(),
                "5".into(),
            )
        });
    view! {
        <section class="panel" data-testid="schedule">
            <h2>{t!(i18n, schedule)}</h2>
            {match schedule {
                None => view! { <p class="muted" data-testid="no-schedule">{t!(i18n, no_schedule)}</p> }.into_any(),
                Some(s) => view! {
                    <dl class="job-facts">
                        <div><dt>{t!(i18n, schedule)}</dt><dd><code>{s.cron.clone().map(|c| format!("{c} ({})", s.timezone)).unwrap_or_else(|| format!("every {} min", s.period_seconds.unwrap_or(0) / 60))}</code></dd></div>
                        <div><dt>{t!(i18n, grace)}</dt><dd>{format!("{} min", s.grace_seconds / 60)}</dd></div>
                        <div><dt>{t!(i18n, next_expected)}</dt><dd data-testid="next-expected">{match s.next_expected {
                            Ok(at) => exact_text(at),
                            Err(why) => why,
                        }}</dd></div>
                        {s.last_start.map(|at| view! { <div><dt>{t!(i18n, last_start)}</dt><dd><RelativeTime at now /></dd></div> })}
                    </dl>
                }.into_any(),
            }}
            {may_act.then(|| view! {
                <form method="post" action=SetSchedule::url() class="inline-form schedule-form" data-testid="schedule-form">
                    <input type="hidden" name="job_key" value=job_key.clone() />
                    <label>"cron "<input type="text" name="cron" value=cron placeholder="0 9 * * *" /></label>
                    <label>{t!(i18n, timezone)}" "<input type="text" name="timezone" value=timezone /></label>
                    <label>{t!(i18n, period_minutes)}" "<input type="number" name="period_minutes" min="1" value=period /></label>
                    <label>{t!(i18n, grace_minutes)}" "<input type="number" name="grace_minutes" min="0" value=grace /></label>
                    <button type="submit">{t!(i18n, save)}</button>
                </form>
            })}
        </section>
        <JobAlertHistory open history now may_act />
    }
}

#[component]
fn IncidentDetail(detail: IncidentDetailView) -> impl IntoView {
    let i18n = use_i18n();
    let IncidentDetailView {
        now,
        job,
        runs,
        total_runs,
        success_runs,
        chart_svg,
    } = detail;
    let success_rate = (total_runs > 0)
        .then(|| format!("{:.1}%", success_runs as f64 * 100.0 / total_runs as f64));
    view! {
        <Title text=format!("{} | Jobdeck", job.title) />
        <header class="job-head">
            <StatusBadge status=job.last_status />
            <h1>{job.title.clone()}</h1>
        </header>
        <dl class="job-facts">
            <div><dt>{t!(i18n, job_key)}</dt><dd><code>{job.job_key.clone()}</code></dd></div>
            {job.tool_name.clone().map(|tool| view! { <div><dt>{t!(i18n, tool)}</dt><dd>{tool}</dd></div> })}
            <div><dt>{t!(i18n, finished)}</dt><dd><RelativeTime at=job.last_finished_at now /></dd></div>
            <div><dt>{t!(i18n, runs_total)}</dt><dd>{total_runs}</dd></div>
            <div><dt>{t!(i18n, success_rate)}</dt><dd>{success_rate.unwrap_or_else(|| "—".into())}</dd></div>
        </dl>
        {job.last_message.clone().map(|message| view! { <p class="job-message">{message}</p> })}
        <section class="panel">
            <h2>{t!(i18n, chart_title)}</h2>
            <div class="chart" inner_html=chart_svg></div>
            <p class="muted small">{t!(i18n, chart_legend)}</p>
        </section>
        <section class="panel">
            <h2>{t!(i18n, recent_runs)}</h2>
            <ul class="runs">
                {runs.into_iter().map(|run| view! {
                    <li class="run">
                        <StatusBadge status=run.status />
                        <RelativeTime at=run.finished_at now />
                        <span class="run-duration">{run.duration_ms.map(duration_text)}</span>
                        <span class="run-message">{run.message}</span>
                    </li>
                }).collect_view()}
            </ul>
        </section>
    }
}
