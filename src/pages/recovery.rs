//! `/recovery`: error records grouped by fingerprint and listed newest first, filtered by
//! type, status, job and period in the URL; the analysis of the period (`analyzeErrors`)
//! with its charts and suggestions, each of which an operator can apply; and the types whose
//! retries the circuit breaker holds. A live region (`ui::live`), polled.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::recovery::{recovery_page, ApplySuggestion, RaiseMemoryLimit};
use crate::i18n::*;
use crate::model::{
    incident_path, AppError, ErrorRecordLine, ErrorRetryConfig, PatternLine, Permission,
    RecoveryPeriod, RecoveryQuery, RecoveryView, StatusChoice, SuggestionLine, Trend, TypeLine,
    WorkerLine,
};
use crate::ui::form_error::FormError;
use crate::ui::signed_in::signed_in;
use crate::ui::status_badge::StatusBadge;
use crate::ui::time::RelativeTime;
use leptos::server_fn::ServerFn;

#[component]
pub fn RecoveryPage() -> impl IntoView {
    let i18n = use_i18n();
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(|p| RecoveryQuery::from_params(|name| p.get(name))));
    let page = Resource::new(move || query.get(), recovery_page);
    let may_act = signed_in().is_some_and(|user| user.may(Permission::ActOnJobs));
    view! {
        <Title text=untrack(|| format!("{} | Jobdeck", t_string!(i18n, recovery_title))) />
        <h1>{t!(i18n, recovery_title)}</h1>
        <FormError />
        <section class="panel">
            <FilterForm query=query.get_untracked() />
        </section>
        // Polled, not on `/v1/events`: every job's change would redo the whole analysis.
        <div data-live="recovery">
            <Transition fallback=move || view! { <p class="muted">{t!(i18n, loading)}</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(view) => view! { <RecoveryBody view query=query.get_untracked() may_act /> }.into_any(),
                        Err(AppError::Invalid { message, .. }) => view! {
                            <p class="form-error" role="alert" data-testid="recovery-error">{message}</p>
                        }.into_any(),
                        Err(_) => view! { <p class="load-failed">{t!(i18n, load_failed)}</p> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

#[component]
fn FilterForm(query: RecoveryQuery) -> impl IntoView {
    let i18n = use_i18n();
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let status = query
        .status
        .clone()
        .unwrap_or_else(|| StatusChoice::default().as_str().into());
    let period = query
        .period
        .clone()
        .unwrap_or_else(|| RecoveryPeriod::default().as_str().into());
    let status_label = move |choice: StatusChoice| match choice {
        StatusChoice::Open => t_string!(i18n, status_open),
        StatusChoice::Pending => t_string!(i18n, status_pending),
        StatusChoice::InProgress => t_string!(i18n, status_in_progress),
        StatusChoice::Failed => t_string!(i18n, status_failed),
        StatusChoice::Recovered => t_string!(i18n, status_recovered),
        StatusChoice::All => t_string!(i18n, all),
    };
    let period_label = move |p: RecoveryPeriod| match p {
        RecoveryPeriod::Day => t_string!(i18n, period_24h),
        RecoveryPeriod::Week => t_string!(i18n, period_7d),
        RecoveryPeriod::Month => t_string!(i18n, period_30d),
    };
    view! {
        <form class="search job-filters" method="get" action="/recovery" role="search" data-testid="recovery-filters">
            <input type="search" name="type" value=text(&query.error_type)
                placeholder=move || t_string!(i18n, error_type) aria-label=move || t_string!(i18n, error_type) />
            <select name="status" aria-label=move || t_string!(i18n, status)>
                {StatusChoice::ALL.into_iter().map(|choice| view! {
                    <option value=choice.as_str() selected=status == choice.as_str()>{status_label(choice)}</option>
                }).collect_view()}
            </select>
            <input type="search" name="job" value=text(&query.job)
                placeholder=move || t_string!(i18n, job_id_filter) aria-label=move || t_string!(i18n, job_id_filter) />
            <select name="period" aria-label=move || t_string!(i18n, period)>
                {RecoveryPeriod::ALL.into_iter().map(|p| view! {
                    <option value=p.as_str() selected=period == p.as_str()>{period_label(p)}</option>
                }).collect_view()}
            </select>
            {query.fingerprint.clone().map(|f| view! { <input type="hidden" name="fingerprint" value=f /> })}
            <button type="submit">{t!(i18n, filter)}</button>
            <a href="/recovery" class="clear">{t!(i18n, clear_filter)}</a>
        </form>
    }
}

#[component]
fn RecoveryBody(view: RecoveryView, query: RecoveryQuery, may_act: bool) -> impl IntoView {
    let i18n = use_i18n();
    let RecoveryView {
        now,
        period,
        paused_types,
        breaker_failures,
        breaker_window_secs,
        total_errors,
        previous_total_errors,
        patterns,
        records,
        next,
        types,
        workers,
        suggestions,
        errors_svg,
        recovery_svg,
        ..
    } = view;
    let next_href = next.map(|cursor| {
        RecoveryQuery {
            cursor: Some(cursor.as_str().to_string()),
            ..query.clone()
        }
        .href()
    });
    let first_href = query.cursor.is_some().then(|| query.with(|_| ()).href());
    view! {
        {(!paused_types.is_empty()).then(|| view! {
            <p class="notice" role="status" data-testid="breaker-paused">
                {t!(i18n, breaker_paused)}" "<strong>{paused_types.join(", ")}</strong>
                <span class="muted small">{format!(" (≥ {breaker_failures} / {breaker_window_secs} s)")}</span>
            </p>
        })}
        <dl class="aggregate-cards">
            <div><dt>{t!(i18n, errors_in_period)}</dt><dd data-testid="total-errors">{total_errors}</dd></div>
            <div><dt>{t!(i18n, previous_period)}</dt><dd>{previous_total_errors}</dd></div>
        </dl>
        <Patterns patterns query=query.clone() now />
        <section class="panel">
            <h2>{t!(i18n, records)}</h2>
            <RecordTable records now />
            <nav class="pager" aria-label=move || t_string!(i18n, pages)>
                {first_href.map(|href| view! { <a href=href rel="first">{t!(i18n, first_page)}</a> })}
                {next_href.map(|href| view! { <a href=href rel="next" data-testid="records-next">{t!(i18n, next_page)}</a> })}
            </nav>
        </section>
        <div class="charts">
            <section class="panel chart-card">
                <h2>{t!(i18n, errors_per_hour)}</h2>
                <div class="chart" data-testid="chart-errors" inner_html=errors_svg></div>
            </section>
            <section class="panel chart-card">
                <h2>{t!(i18n, recovery_rate_by_type)}</h2>
                {if recovery_svg.is_empty() {
                    view! { <p class="muted">{t!(i18n, no_closed_records)}</p> }.into_any()
                } else {
                    view! { <div class="chart" data-testid="chart-recovery" inner_html=recovery_svg></div> }.into_any()
                }}
            </section>
        </div>
        <TypeTable types query=query.clone() />
        <Suggestions suggestions may_act period />
        <WorkerTable workers />
    }
}

#[component]
fn TrendBadge(trend: Trend) -> impl IntoView {
    let i18n = use_i18n();
    let label = move || match trend {
        Trend::New => t_string!(i18n, trend_new),
        Trend::Rising => t_string!(i18n, trend_rising),
        Trend::Falling => t_string!(i18n, trend_falling),
        Trend::Steady => t_string!(i18n, trend_steady),
    };
    view! { <span class=format!("trend trend-{}", trend.as_str()) data-trend=trend.as_str()>{label}</span> }
}

fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

#[component]
fn Patterns(
    patterns: Vec<PatternLine>,
    query: RecoveryQuery,
    now: chrono::DateTime<chrono::Utc>,
) -> impl IntoView {
    let i18n = use_i18n();
    if patterns.is_empty() {
        return view! {
            <section class="panel"><h2>{t!(i18n, patterns)}</h2><p class="muted" data-testid="no-patterns">{t!(i18n, no_patterns)}</p></section>
        }
        .into_any();
    }
    view! {
        <section class="panel">
            <h2>{t!(i18n, patterns)}</h2>
            <div class="table-scroll"><table class="grid" data-testid="patterns">
                <thead><tr>
                    <th>{t!(i18n, error_type)}</th><th>{t!(i18n, pattern)}</th><th>{t!(i18n, count)}</th>
                    <th>{t!(i18n, share)}</th><th>{t!(i18n, trend)}</th><th>{t!(i18n, affected)}</th>
                    <th>{t!(i18n, last_error)}</th>
                </tr></thead>
                <tbody>
                    {patterns.into_iter().map(|p| {
                        let href = query.with(|q| q.fingerprint = Some(p.fingerprint.clone())).href();
                        view! {
                            <tr data-fingerprint=p.fingerprint.clone()>
                                <td><code>{p.error_type}</code></td>
                                <td><a href=href>{p.pattern}</a></td>
                                <td class="num">{p.count}<small class="muted">{format!(" / {}", p.previous)}</small></td>
                                <td class="num">{percent(p.share)}</td>
                                <td><TrendBadge trend=p.trend /></td>
                                <td class="affected">
                                    {p.affected_jobs.into_iter().map(|job| view! {
                                        <a href=format!("/jobs/{job}")><code>{job.to_string()[..8].to_string()}</code></a>" "
                                    }).collect_view()}
                                    {p.affected_scripts.into_iter().map(|key| view! {
                                        <a href=incident_path(&key)>{key.clone()}</a>" "
                                    }).collect_view()}
                                </td>
                                <td>{p.last_at.map(|at| view! { <RelativeTime at now /> })}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table></div>
        </section>
    }
    .into_any()
}

#[component]
fn RecordTable(records: Vec<ErrorRecordLine>, now: chrono::DateTime<chrono::Utc>) -> impl IntoView {
    let i18n = use_i18n();
    if records.is_empty() {
        return view! { <p class="muted" data-testid="no-records">{t!(i18n, no_records)}</p> }
            .into_any();
    }
    view! {
        <div class="table-scroll"><table class="grid" data-testid="records">
            <thead><tr>
                <th>{t!(i18n, when)}</th><th>{t!(i18n, status)}</th><th>{t!(i18n, error_type)}</th>
                <th>{t!(i18n, message)}</th><th>{t!(i18n, job)}</th><th>{t!(i18n, retry_count)}</th>
            </tr></thead>
            <tbody>
                {records.into_iter().map(|r| {
                    let href = format!("/recovery/{}", r.id);
                    let owner = match (&r.job_label, &r.job_key) {
                        (Some(label), _) => format!("{label}{}", r.task_name.as_ref().map(|t| format!(" · {t}")).unwrap_or_default()),
                        (None, Some(key)) => key.clone(),
                        (None, None) => "—".into(),
                    };
                    view! {
                        <tr data-record=r.id.to_string()>
                            <td><a href=href.clone()><RelativeTime at=r.at now /></a></td>
                            <td><StatusBadge status=r.recovery_status /></td>
                            <td><code>{r.error_type}</code></td>
                            <td class="run-message"><a href=href>{r.message}</a></td>
                            <td>{owner}</td>
                            <td class="num">{r.retry_count}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
    }
    .into_any()
}

#[component]
fn TypeTable(types: Vec<TypeLine>, query: RecoveryQuery) -> impl IntoView {
    let i18n = use_i18n();
    if types.is_empty() {
        return ().into_any();
    }
    let rate = |r: Option<f64>| r.map(percent).unwrap_or_else(|| "—".into());
    view! {
        <section class="panel">
            <h2>{t!(i18n, by_type)}</h2>
            <div class="table-scroll"><table class="grid" data-testid="types">
                <thead><tr>
                    <th>{t!(i18n, error_type)}</th><th>{t!(i18n, count)}</th><th>{t!(i18n, trend)}</th>
                    <th>{t!(i18n, recovered)}</th><th>{t!(i18n, failed_for_good)}</th>
                    <th>{t!(i18n, recovery_rate)}</th><th>{t!(i18n, mean_attempts)}</th>
                </tr></thead>
                <tbody>
                    {types.into_iter().map(|t| {
                        let href = query.with(|q| q.error_type = Some(t.error_type.clone())).href();
                        let key = t.error_type.clone();
                        let rising = t.trend == Trend::Rising;
                        view! {
                            <tr data-type=key class:rising=rising>
                                <td>
                                    <a href=href><code>{t.error_type}</code></a>
                                    {t.paused.then(|| view! { <span class="status status-paused" data-testid="type-paused">{t!(i18n, retries_paused)}</span> })}
                                </td>
                                <td class="num">{t.count}<small class="muted">{format!(" / {}", t.previous)}</small></td>
                                <td><TrendBadge trend=t.trend /></td>
                                <td class="num">{t.recovered}</td>
                                <td class="num">{t.failed}</td>
                                <td class="num">{rate(t.recovery_rate)}</td>
                                <td class="num">{t.mean_attempts_to_recover.map(|a| format!("{a:.1}")).unwrap_or_else(|| "—".into())}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table></div>
        </section>
    }
    .into_any()
}

#[component]
fn Suggestions(
    suggestions: Vec<SuggestionLine>,
    may_act: bool,
    period: RecoveryPeriod,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <section class="panel">
            <h2>{t!(i18n, suggestions)}</h2>
            {if suggestions.is_empty() {
                view! { <p class="muted" data-testid="no-suggestions">{t!(i18n, no_suggestions)}</p> }.into_any()
            } else {
                view! {
                    <ul class="suggestions" data-testid="suggestions">
                        {suggestions.into_iter().map(|s| view! {
                            <li data-kind=s.kind.as_str()>
                                <span>{s.text}</span>
                                {s.proposed_config.filter(|_| may_act).map(|config| view! { <ApplyForm config /> })}
                                {s.proposed_max_memory.filter(|_| may_act).map(|max_memory| view! {
                                    <form method="post" action=RaiseMemoryLimit::url() class="inline">
                                        <input type="hidden" name="max_memory" value=max_memory.to_string() />
                                        <input type="hidden" name="period" value=period.as_str() />
                                        <button type="submit" data-action="raise-limit">{t!(i18n, apply)}</button>
                                    </form>
                                })}
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}

/// One click: the proposed config, posted as it is to `configureRetry` (audited there).
#[component]
fn ApplyForm(config: ErrorRetryConfig) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <form method="post" action=ApplySuggestion::url() class="inline">
            <input type="hidden" name="error_type" value=config.error_type.clone() />
            <input type="hidden" name="max_attempts" value=config.max_attempts.to_string() />
            <input type="hidden" name="initial_delay" value=config.initial_delay.to_string() />
            <input type="hidden" name="max_delay" value=config.max_delay.to_string() />
            <input type="hidden" name="backoff_factor" value=config.backoff_factor.to_string() />
            <button type="submit" data-action="apply" data-type=config.error_type>{t!(i18n, apply)}</button>
        </form>
    }
}

#[component]
fn WorkerTable(workers: Vec<WorkerLine>) -> impl IntoView {
    let i18n = use_i18n();
    if workers.is_empty() {
        return ().into_any();
    }
    view! {
        <section class="panel">
            <h2>{t!(i18n, failures_by_worker)}</h2>
            <div class="table-scroll"><table class="grid" data-testid="worker-failures">
                <thead><tr>
                    <th>{t!(i18n, worker)}</th><th>{t!(i18n, failures)}</th>
                    <th>{t!(i18n, failure_rate)}</th><th>{t!(i18n, share)}</th>
                </tr></thead>
                <tbody>
                    {workers.into_iter().map(|w| view! {
                        <tr>
                            <td><code>{w.worker_id}</code></td>
                            <td class="num">{w.failed}<small class="muted">{format!(" / {}", w.failed + w.completed)}</small></td>
                            <td class="num">{w.failure_rate.map(percent).unwrap_or_else(|| "—".into())}</td>
                            <td class="num">{percent(w.share_of_failures)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table></div>
        </section>
    }
    .into_any()
}
