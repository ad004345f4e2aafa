//! `/incidents/:job_key`: one reported job's recent runs and its duration/outcome chart.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::incidents::get_incident_detail;
use crate::i18n::*;
use crate::model::IncidentDetailView;
use crate::ui::status_badge::StatusBadge;
use crate::ui::time::{duration_text, RelativeTime};

#[component]
pub fn IncidentPage() -> impl IntoView {
    let i18n = use_i18n();
    let params = use_params_map();
    let job_key = move || params.read().get("job_key").unwrap_or_default();
    let detail = Resource::new(job_key, get_incident_detail);
    view! {
        <p class="back"><a href="/incidents">"← "{t!(i18n, back_to_incidents)}</a></p>
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
