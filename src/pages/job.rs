//! `/jobs/:id`: one job: status, detailed status, its stages as a timeline, tasks, the event
//! trail, errors and log as a live region (`ui::live`), the operators' buttons, and its
//! open alerts and alert history. A
//! `/jobs/<job_key>` link from before the rename goes to `/incidents/<job_key>`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::{use_params_map, use_query_map};
use uuid::Uuid;

use crate::api::alerts::job_alerts;
use crate::api::jobs::{job_detail, ActOnJob};
use crate::i18n::*;
use crate::model::{
    incident_path, JobAction, JobChart, JobCharts, JobDetailView, JobStatus, JobView, Permission,
    StageProgress,
};
use crate::pages::jobs::job_name;
use crate::ui::alert_list::JobAlertHistory;
use crate::ui::form_error::FormError;
use crate::ui::progress_bar::ProgressBar;
use crate::ui::signed_in::signed_in;
use crate::ui::status_badge::StatusBadge;
use crate::ui::time::{duration_text, RelativeTime};
use leptos::server_fn::ServerFn;

#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let raw = params.read_untracked().get("id").unwrap_or_default();
    match raw.parse::<Uuid>() {
        Ok(job_id) => view! { <JobView job_id /> }.into_any(),
        Err(_) => view! { <Redirect path=incident_path(&raw) /> }.into_any(),
    }
}

#[component]
fn JobView(job_id: Uuid) -> impl IntoView {
    let i18n = use_i18n();
    // `?log=<cursor>`: an older page of the log.
    let query = use_query_map();
    let log = Memo::new(move |_| query.with(|q| q.get("log").filter(|c| !c.is_empty())));
    let detail = Resource::new(move || log.get(), move |log| job_detail(job_id, log));
    let may_act = signed_in().is_some_and(|user| user.may(Permission::ActOnJobs));
    let lang = i18n.get_locale_untracked().as_str().to_string();
    // Its own resource and boundary: one resource read in two boundaries can hold the
    // response open (leptos-rs/leptos#4851).
    let alerts = Resource::new(
        move || lang.clone(),
        move |lang| job_alerts(job_id.to_string(), lang),
    );
    view! {
        <p class="back"><a href="/jobs">"← "{t!(i18n, back_to_jobs)}</a></p>
        <FormError />
        <div data-live="job" data-live-stream=format!("/v1/jobs/{job_id}/events")>
        <Transition fallback=move || view! { <p class="muted">{t!(i18n, loading)}</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(Some(detail)) => view! { <JobDetail detail may_act older=log.get_untracked().is_some() /> }.into_any(),
                    Ok(None) => view! {
                        <Title text="Jobdeck" />
                        <h1 data-testid="job-not-found">{t!(i18n, job_missing)}</h1>
                        <p><code>{job_id.to_string()}</code></p>
                    }.into_any(),
                    Err(_) => view! { <p class="load-failed">{t!(i18n, load_failed)}</p> }.into_any(),
                }
            })}
        </Transition>
        </div>
        <div data-live="job-alerts">
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    alerts.await.ok().map(|view| view! {
                        <JobAlertHistory open=view.open history=view.history now=view.now may_act=view.may_act />
                    })
                })}
            </Transition>
        </div>
    }
}

#[component]
fn JobDetail(detail: JobDetailView, may_act: bool, older: bool) -> impl IntoView {
    let i18n = use_i18n();
    let JobDetailView {
        now,
        job,
        counts,
        tasks,
        stages,
        events,
        errors,
        logs,
        older_logs,
        charts,
        articles,
        waiting,
    } = detail;
    let job_href = format!("/jobs/{}", job.id);
    let older_href = older_logs.map(|cursor| format!("{job_href}?log={}", cursor.as_str()));
    let why: std::collections::HashMap<String, String> = waiting
        .into_iter()
        .map(|w| {
            (
                w.name,
                w.reasons
                    .iter()
                    .map(|r| r.text())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
        .collect();
    let explained = !why.is_empty();
    let name = job_name(&job);
    let status = job.status;
    view! {
        <Title text=format!("{name} | Jobdeck") />
        <header class="job-head">
            <StatusBadge status=job.status />
            <h1 data-testid="job-name">{name.clone()}</h1>
        </header>
        {may_act.then(|| view! { <JobButtons job_id=job.id status /> })}
        <JobFacts job=job.clone() now />
        <section class="panel">
            <h2>{t!(i18n, stages)}</h2>
            <StageTimeline stages />
        </section>
        <ResourceCharts charts />
        <section class="panel">
            <h2>{t!(i18n, tasks)}" "<small class="muted">{format!("{}/{}", counts.completed, counts.total)}</small></h2>
            {if tasks.is_empty() {
                view! { <p class="muted">{t!(i18n, no_tasks)}</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll">
                        <table class="grid" data-testid="tasks-table">
                            <thead><tr>
                                <th>{t!(i18n, status)}</th><th>{t!(i18n, task)}</th>
                                <th>{t!(i18n, attempt)}</th><th>{t!(i18n, articles)}</th>
                                <th>{t!(i18n, clusters)}</th><th>{t!(i18n, message)}</th>
                                {explained.then(|| view! { <th>{t!(i18n, waiting_why)}</th> })}
                            </tr></thead>
                            <tbody>
                                {tasks.into_iter().map(|task| {
                                    let key = task.name.clone();
                                    let reason = why.get(&task.name).cloned();
                                    view! {
                                    <tr data-task=key>
                                        <td><StatusBadge status=task.status /></td>
                                        <td>{task.name}</td>
                                        <td class="num">{task.attempt}</td>
                                        <td class="num">{task.articles}</td>
                                        <td class="num">{task.clusters}</td>
                                        <td>{task.message}</td>
                                        {explained.then(|| view! { <td class="muted" data-testid="waiting-why">{reason}</td> })}
                                    </tr>
                                }}).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            {(articles > 0).then(|| view! { <p class="muted small">{t!(i18n, articles)}": "{articles}</p> })}
        </section>
        {(!errors.is_empty()).then(|| view! {
            <section class="panel">
                <h2>{t!(i18n, errors)}</h2>
                <ul class="runs" data-testid="job-errors">
                    {errors.into_iter().map(|error| view! {
                        <li class="run">
                            <code>{error.code}</code>
                            <span class="muted small">{error.class.as_str()}</span>
                            <RelativeTime at=error.at now />
                            <span class="run-message">{error.task.map(|t| format!("[{t}] "))}{error.message}</span>
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        })}
        <section class="panel">
            <h2>{t!(i18n, events)}</h2>
            <ul class="runs" data-testid="job-events">
                {events.into_iter().map(|event| view! {
                    <li class="run">
                        <RelativeTime at=event.at now />
                        <span>{event.from_status.map_or("∅", |s| s.as_str())}" → "{event.to_status.as_str()}</span>
                        <span class="muted">{event.actor}</span>
                        <span class="run-message">{event.reason}</span>
                    </li>
                }).collect_view()}
            </ul>
        </section>
        {(!logs.is_empty() || older).then(|| view! {
            <section class="panel">
                <h2>{t!(i18n, log)}</h2>
                <ul class="log" data-testid="job-log">
                    {logs.into_iter().map(|line| view! {
                        <li class=format!("log-{}", line.level)>
                            <RelativeTime at=line.at now />" "
                            {line.task_name.map(|t| format!("[{t}] "))}{line.message}
                        </li>
                    }).collect_view()}
                </ul>
                <nav class="pager" aria-label=move || t_string!(i18n, pages)>
                    {older.then(|| view! { <a href=job_href.clone() rel="first">{t!(i18n, first_page)}</a> })}
                    {older_href.map(|href| view! { <a href=href rel="next" data-testid="older-log">{t!(i18n, next_page)}</a> })}
                </nav>
            </section>
        })}
    }
}

/// Cpu, memory and throughput over the job's life, from its samples' rollups.
#[component]
fn ResourceCharts(charts: JobCharts) -> impl IntoView {
    let i18n = use_i18n();
    let JobCharts {
        interval,
        cpu,
        memory,
        throughput,
    } = charts;
    if cpu.points + memory.points + throughput.points == 0 {
        return view! {
            <section class="panel" data-testid="job-resources">
                <h2>{t!(i18n, resources)}</h2>
                <p class="muted">{t!(i18n, no_samples)}</p>
            </section>
        }
        .into_any();
    }
    let one = |name: &'static str, title: AnyView, chart: JobChart| {
        view! {
            <figure class="resource-chart" data-testid=format!("chart-{name}") data-points=chart.points data-samples=chart.samples>
                <figcaption>{title}</figcaption>
                {if chart.points == 0 {
                    view! { <p class="muted small">{t!(i18n, no_samples)}</p> }.into_any()
                } else {
                    view! { <div class="chart" inner_html=chart.svg></div> }.into_any()
                }}
            </figure>
        }
    };
    view! {
        <section class="panel" data-testid="job-resources">
            <h2>{t!(i18n, resources)}" "<small class="muted">{interval}</small></h2>
            <div class="resource-charts">
                {one("cpu", t!(i18n, cpu_chart).into_any(), cpu)}
                {one("memory", t!(i18n, memory_chart).into_any(), memory)}
                {one("throughput", t!(i18n, throughput_chart).into_any(), throughput)}
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn JobFacts(job: JobView, now: chrono::DateTime<chrono::Utc>) -> impl IntoView {
    let i18n = use_i18n();
    let d = &job.detailed_status;
    let duration = job.started_at.map(|start| {
        (job.finished_at.unwrap_or(now) - start)
            .num_milliseconds()
            .max(0)
    });
    view! {
        <dl class="job-facts wide">
            <div><dt>{t!(i18n, progress)}</dt><dd><ProgressBar percent=d.progress_percentage /></dd></div>
            <div><dt>{t!(i18n, phase)}</dt><dd data-testid="job-phase">{d.current_phase.clone().unwrap_or_else(|| "—".into())}</dd></div>
            <div><dt>{t!(i18n, active_tasks)}</dt><dd>{d.active_tasks}</dd></div>
            <div><dt>{t!(i18n, error_count)}</dt><dd>{d.error_count}</dd></div>
            <div><dt>{t!(i18n, kind)}</dt><dd>{job.kind.as_str()}" · "{job.trigger_source.as_str()}</dd></div>
            <div><dt>{t!(i18n, priority)}</dt><dd>{job.priority}</dd></div>
            <div><dt>{t!(i18n, max_parallel_tasks)}</dt><dd>{job.max_parallel_tasks}</dd></div>
            <div><dt>{t!(i18n, queue)}</dt><dd>{job.driver.as_str()}" · "<code>{job.queue.clone()}</code></dd></div>
            <div><dt>{t!(i18n, retries)}</dt><dd>{format!("{} × {}s", job.retry_config.max_attempts, job.retry_config.retry_interval)}</dd></div>
            <div><dt>{t!(i18n, created)}</dt><dd><RelativeTime at=job.created_at now /></dd></div>
            <div><dt>{t!(i18n, duration)}</dt><dd>{duration.map(duration_text).unwrap_or_else(|| "—".into())}</dd></div>
            <div><dt>"ID"</dt><dd><code>{job.id.to_string()}</code></dd></div>
        </dl>
    }
}

/// The stages in order: done, current or still to come, with how long each took.
/// The stages as the server decided them (`model::stage_progress`).
#[component]
fn StageTimeline(stages: Vec<StageProgress>) -> impl IntoView {
    let i18n = use_i18n();
    if stages.is_empty() {
        return view! { <p class="muted">{t!(i18n, no_stages)}</p> }.into_any();
    }
    view! {
        <ol class="timeline" data-testid="stage-timeline">
            {stages.into_iter().map(|stage| {
                let state = stage.state.as_str();
                let took = stage.elapsed_ms.map(duration_text);
                let key = stage.name.clone();
                view! {
                    <li class=format!("stage stage-{state}") data-stage=key data-state=state>
                        <span class="stage-name">{stage.name}</span>
                        <small class="muted">{took}</small>
                    </li>
                }
            }).collect_view()}
        </ol>
    }
    .into_any()
}

/// Plain forms to the `jobs/act` server function: they work without the browser running
/// anything, and the server sends the browser back to this page (with an error, if any).
/// Deleting asks first, in a disclosure rather than a script.
#[component]
fn JobButtons(job_id: Uuid, status: JobStatus) -> impl IntoView {
    let i18n = use_i18n();
    let button = move |action: JobAction,
                       enabled: bool,
                       label: &'static str,
                       class: &'static str| {
        view! {
            <form method="post" action=ActOnJob::url()>
                <input type="hidden" name="job_id" value=job_id.to_string() />
                <input type="hidden" name="action" value=action.as_str() />
                <button type="submit" class=class disabled=!enabled data-action=action.as_str()>{label}</button>
            </form>
        }
    };
    untrack(|| {
        view! {
            <div class="job-actions" data-testid="job-actions">
                {button(JobAction::Pause, JobAction::Pause.allowed(status), t_string!(i18n, pause), "")}
                {button(JobAction::Resume, JobAction::Resume.allowed(status), t_string!(i18n, resume), "")}
                {button(JobAction::Retry, JobAction::Retry.allowed(status), t_string!(i18n, retry), "")}
                {button(JobAction::Cancel, JobAction::Cancel.allowed(status), t_string!(i18n, cancel), "danger")}
                <details class="confirm">
                    <summary class="button danger" data-action="ask-delete">{t!(i18n, delete)}</summary>
                    <div class="confirm-body">
                        <p>{t!(i18n, confirm_delete)}</p>
                        {button(JobAction::Delete, true, t_string!(i18n, delete), "danger")}
                    </div>
                </details>
            </div>
        }
    })
}
