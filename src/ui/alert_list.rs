//! Open alerts as the incidents page and the job pages list them, with what an operator
//! can do about each: plain forms posting to the server functions, so they work unhydrated;
//! and a job's alert history.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use crate::api::alerts::{AcknowledgeAlert, NoteAlert, SnoozeAlert};
use crate::i18n::*;
use crate::model::{AlertEventView, AlertLine, AlertState};
use crate::ui::time::{exact_text, RelativeTime};

#[component]
pub fn AlertList(alerts: Vec<AlertLine>, now: DateTime<Utc>, may_act: bool) -> impl IntoView {
    let i18n = use_i18n();
    if alerts.is_empty() {
        return view! { <p class="muted" data-testid="no-open-alerts">{t!(i18n, no_open_alerts)}</p> }
            .into_any();
    }
    view! {
        <ul class="alert-list" data-testid="open-alerts">
            {alerts.into_iter().map(|alert| view! { <AlertItem alert now may_act /> }).collect_view()}
        </ul>
    }
    .into_any()
}

#[component]
fn AlertItem(alert: AlertLine, now: DateTime<Utc>, may_act: bool) -> impl IntoView {
    let i18n = use_i18n();
    let firing = alert.state == AlertState::Firing;
    let state_label = move || {
        if firing {
            t_string!(i18n, alert_state_firing)
        } else {
            t_string!(i18n, alert_state_pending)
        }
    };
    let snoozed = alert.snoozed_until.filter(|until| *until > now);
    let class = format!(
        "alert-item severity-{} state-{}{}",
        alert.severity.as_str(),
        alert.state.as_str(),
        if alert.acknowledged_by.is_some() {
            " acknowledged"
        } else {
            ""
        }
    );
    let label = match alert.link.clone() {
        Some(href) => view! { <a href=href>{alert.label.clone()}</a> }.into_any(),
        None => view! { <span>{alert.label.clone()}</span> }.into_any(),
    };
    let (rule_id, subject) = (alert.rule_id.to_string(), alert.subject.clone());
    let hidden = move || {
        view! {
            <input type="hidden" name="rule_id" value=rule_id.clone() />
            <input type="hidden" name="subject" value=subject.clone() />
        }
    };
    view! {
        <li class=class data-testid="alert" data-kind=alert.kind.as_str() data-state=alert.state.as_str()
            data-subject=alert.subject.clone()>
            <div class="alert-head">
                <span class=format!("pill severity-{}", alert.severity.as_str())>{alert.severity.as_str()}</span>
                <span class="pill">{state_label}</span>
                <strong>{alert.rule_name.clone()}</strong>
                " — "{label}
                <span class="muted small">" "<RelativeTime at=alert.since now /></span>
            </div>
            <p class="alert-summary">{alert.summary.clone()}</p>
            {alert.acknowledged_by.clone().map(|who| view! {
                <p class="muted small" data-testid="acknowledged">{t!(i18n, acknowledged_by)}" "{who}</p>
            })}
            {snoozed.map(|until| view! {
                <p class="muted small" data-testid="snoozed">{t!(i18n, snoozed_until)}" "{exact_text(until)}</p>
            })}
            {(!alert.notes.is_empty()).then(|| view! {
                <ul class="alert-notes">
                    {alert.notes.iter().map(|note| view! {
                        <li><span class="muted small">{note.created_by.clone()}" · "<RelativeTime at=note.created_at now />": "</span>{note.body.clone()}</li>
                    }).collect_view()}
                </ul>
            })}
            {(may_act && firing).then(|| view! {
                <div class="alert-actions">
                    {alert.acknowledged_by.is_none().then(|| view! {
                        <form method="post" action=AcknowledgeAlert::url() class="inline">
                            {hidden()}
                            <button type="submit" data-testid="acknowledge">{t!(i18n, acknowledge)}</button>
                        </form>
                    })}
                    <form method="post" action=SnoozeAlert::url() class="inline">
                        {hidden()}
                        <select name="hours" aria-label=move || t_string!(i18n, snooze)>
                            <option value="1">"1h"</option>
                            <option value="4">"4h"</option>
                            <option value="24">"24h"</option>
                        </select>
                        <button type="submit" data-testid="snooze">{t!(i18n, snooze)}</button>
                    </form>
                    <form method="post" action=NoteAlert::url() class="inline">
                        {hidden()}
                        <input type="text" name="body" maxlength="2000" required
                            aria-label=move || t_string!(i18n, add_note) placeholder=move || t_string!(i18n, add_note) />
                        <button type="submit">{t!(i18n, add_note)}</button>
                    </form>
                </div>
            })}
        </li>
    }
}

/// A job's open alerts and the latest changes of its alerts, newest first.
#[component]
pub fn JobAlertHistory(
    open: Vec<AlertLine>,
    history: Vec<AlertEventView>,
    now: DateTime<Utc>,
    may_act: bool,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <section class="panel">
            <h2>{t!(i18n, open_alerts)}</h2>
            <AlertList alerts=open now may_act />
        </section>
        <section class="panel">
            <h2>{t!(i18n, alert_history)}</h2>
            {if history.is_empty() {
                view! { <p class="muted">{t!(i18n, no_alert_history)}</p> }.into_any()
            } else {
                view! {
                    <table class="table" data-testid="alert-history">
                        <tbody>
                            {history.into_iter().map(|e| view! {
                                <tr data-to=e.to_state.as_str()>
                                    <td><RelativeTime at=e.at now /></td>
                                    <td>{e.rule_name}</td>
                                    <td>{format!("{} → {}{}", e.from_state.as_str(), e.to_state.as_str(), if e.reminder { " (reminder)" } else { "" })}</td>
                                    <td>{e.summary}{e.silenced.then_some(" 🔇")}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}
