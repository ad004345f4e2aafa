//! `/incidents`: every job that reports to the webhook, failing ones first (seed 003), one
//! page of 50 at a time. Search, status filter and position are all in the URL.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::alerts::open_alerts;
use crate::api::incidents::get_incidents;
use crate::i18n::*;
use crate::model::{Cursor, IncidentsQuery, IncidentsView, StatusFilter};
use crate::ui::alert_list::AlertList;
use crate::ui::form_error::FormError;
use crate::ui::incident_card::IncidentCard;

#[component]
pub fn IncidentsPage() -> impl IntoView {
    let i18n = use_i18n();
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|p| IncidentsQuery {
            q: p.get("q").unwrap_or_default(),
            status: StatusFilter::parse(&p.get("status").unwrap_or_default()),
            after: p
                .get("after")
                .filter(|a| !a.is_empty())
                .map(Cursor::from_text),
        })
    });
    let incidents = Resource::new(move || query.get(), get_incidents);
    let lang = i18n.get_locale_untracked().as_str().to_string();
    let alerts = Resource::new(move || lang.clone(), open_alerts);
    view! {
        <Title text=untrack(|| format!("{} | Jobdeck", t_string!(i18n, incidents_title))) />
        <h1>{t!(i18n, incidents_title)}</h1>
        <FormError />
        <section class="panel" data-testid="alerts-panel">
            <h2>{t!(i18n, open_alerts)}</h2>
            <div data-live="alerts">
                <Transition fallback=move || view! { <p class="muted">{t!(i18n, loading)}</p> }>
                    {move || Suspend::new(async move {
                        match alerts.await {
                            Ok(view) => {
                                let more = view.total > view.alerts.len() as i64;
                                view! {
                                    <AlertList alerts=view.alerts now=view.now may_act=view.may_act />
                                    {more.then(|| view! { <p class="muted small">{t!(i18n, more_alerts)}" ("{view.total}")"</p> })}
                                }.into_any()
                            }
                            Err(_) => view! { <p class="load-failed">{t!(i18n, load_failed)}</p> }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </section>
        <section class="panel">
            <h2>{t!(i18n, script_monitoring)}</h2>
            <SearchForm query=query.get_untracked() />
            <div data-live="incidents">
                <Transition fallback=move || view! { <p class="muted">{t!(i18n, loading)}</p> }>
                    {move || Suspend::new(async move {
                        match incidents.await {
                            Ok(view) => view! { <JobGroups view query=query.get_untracked() /> }.into_any(),
                            Err(_) => view! { <p class="load-failed">{t!(i18n, load_failed)}</p> }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </section>
    }
}

/// A plain GET form: it works before hydration and leaves everything in the URL.
#[component]
fn SearchForm(query: IncidentsQuery) -> impl IntoView {
    let i18n = use_i18n();
    let option = move |filter: StatusFilter, label: &'static str| {
        view! { <option value=filter.as_str() selected=query.status == filter>{label}</option> }
    };
    view! {
        <form class="search" method="get" action="/incidents" role="search">
            <input type="search" name="q" maxlength="200" value=query.q.clone()
                placeholder=move || t_string!(i18n, search_placeholder)
                aria-label=move || t_string!(i18n, search_placeholder) />
            <select name="status" aria-label=move || t_string!(i18n, status_filter)>
                {untrack(|| option(StatusFilter::All, t_string!(i18n, status_all)))}
                {untrack(|| option(StatusFilter::Failing, t_string!(i18n, failing)))}
                {untrack(|| option(StatusFilter::Healthy, t_string!(i18n, healthy)))}
            </select>
            <button type="submit">{t!(i18n, search)}</button>
        </form>
    }
}

#[component]
fn JobGroups(view: IncidentsView, query: IncidentsQuery) -> impl IntoView {
    let i18n = use_i18n();
    let filtered = !query.q.is_empty() || query.status != StatusFilter::All;
    if view.jobs.is_empty() {
        return if filtered || query.after.is_some() {
            view! { <p class="muted" data-testid="no-matches">{t!(i18n, no_matches)}</p> }
                .into_any()
        } else {
            view! {
                <div class="empty-state">
                    <h3>{t!(i18n, empty_title)}</h3>
                    <p>{t!(i18n, empty_body)}</p>
                </div>
            }
            .into_any()
        };
    }
    let IncidentsView {
        now,
        failing_total,
        jobs,
        next,
    } = view;
    let split = jobs
        .iter()
        .take_while(|job| job.last_status.is_failing())
        .count();
    let mut failing = jobs;
    let healthy = failing.split_off(split);
    let group = move |jobs: Vec<crate::model::IncidentView>| {
        jobs.into_iter()
            .map(|job| view! { <IncidentCard job now /> })
            .collect_view()
    };
    let first_href = IncidentsQuery {
        after: None,
        ..query.clone()
    }
    .href();
    let next_href = next.map(|after| {
        IncidentsQuery {
            after: Some(after),
            ..query.clone()
        }
        .href()
    });
    view! {
        {(!failing.is_empty()).then(|| view! {
            <h3 class="group-title failing">{t!(i18n, failing)}" "<span class="count" data-testid="failing-total">{failing_total}</span></h3>
            <div class="job-list" data-testid="failing-jobs">{group(failing)}</div>
        })}
        {(!healthy.is_empty()).then(|| view! {
            <h3 class="group-title">{t!(i18n, healthy)}</h3>
            <div class="job-list" data-testid="healthy-jobs">{group(healthy)}</div>
        })}
        <nav class="pager" aria-label=move || t_string!(i18n, pages)>
            {query.after.is_some().then(|| view! { <a href=first_href.clone() rel="first">{t!(i18n, first_page)}</a> })}
            {next_href.map(|href| view! { <a href=href rel="next" data-testid="next-page">{t!(i18n, next_page)}</a> })}
        </nav>
    }
    .into_any()
}
