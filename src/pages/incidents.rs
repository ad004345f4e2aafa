//! `/incidents`: every job that reports to the webhook, failing ones first (seed 003).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::job_status::get_incidents;
use crate::i18n::*;
use crate::model::IncidentsView;
use crate::ui::incident_card::IncidentCard;
use crate::ui::poll::use_poll;

#[component]
pub fn IncidentsPage() -> impl IntoView {
    let i18n = use_i18n();
    let poll = use_poll();
    let incidents = Resource::new(move || poll.tick(), |_| get_incidents());
    view! {
        <Title text=move || format!("{} | Jobdeck", t_string!(i18n, incidents_title)) />
        <h1>{t!(i18n, incidents_title)}</h1>
        <section class="panel">
            <h2>{t!(i18n, script_monitoring)}</h2>
            <Transition fallback=move || view! { <p class="muted">{t!(i18n, loading)}</p> }>
                {move || Suspend::new(async move {
                    match incidents.await {
                        Ok(view) => view! { <JobGroups view /> }.into_any(),
                        Err(_) => view! { <p class="load-failed">{t!(i18n, load_failed)}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn JobGroups(view: IncidentsView) -> impl IntoView {
    let i18n = use_i18n();
    if view.failing.is_empty() && view.healthy.is_empty() {
        return view! {
            <div class="empty-state">
                <h3>{t!(i18n, empty_title)}</h3>
                <p>{t!(i18n, empty_body)}</p>
            </div>
        }
        .into_any();
    }
    let IncidentsView {
        now,
        failing,
        healthy,
    } = view;
    let group = move |jobs: Vec<crate::model::JobStatusView>| {
        jobs.into_iter()
            .map(|job| view! { <IncidentCard job now /> })
            .collect_view()
    };
    view! {
        {(!failing.is_empty()).then(|| view! {
            <h3 class="group-title failing">{t!(i18n, failing)}" ("{failing.len()}")"</h3>
            <div class="job-list" data-testid="failing-jobs">{group(failing)}</div>
        })}
        {(!healthy.is_empty()).then(|| view! {
            <h3 class="group-title">{t!(i18n, healthy)}" ("{healthy.len()}")"</h3>
            <div class="job-list" data-testid="healthy-jobs">{group(healthy)}</div>
        })}
    }
    .into_any()
}
