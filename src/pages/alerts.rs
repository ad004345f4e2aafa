//! `/alerts`: the alert rules, the channels they notify and the silences in force. Every
//! signed-in role sees them; operators and admins change them (plain forms, except the new
//! channel's, which shows a webhook's signing secret once).

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

use crate::api::alerts::{
    alert_settings, CreateAlertChannel, CreateSilence, DeleteAlertChannel, DeleteAlertRule,
    EndSilence, SaveAlertRule, TestAlertChannel,
};
use crate::i18n::*;
use crate::model::{AlertKind, AlertSettingsView, ChannelKind, Severity, SCOPE_JOB_KINDS};
use crate::ui::form_error::FormError;
use crate::ui::secret_form::SecretForm;
use crate::ui::time::exact_text;

#[component]
pub fn AlertsPage() -> impl IntoView {
    let i18n = use_i18n();
    let settings = Resource::new(|| (), |_| alert_settings());
    view! {
        <Title text=untrack(|| format!("{} | Jobdeck", t_string!(i18n, nav_alerts))) />
        <h1>{t!(i18n, nav_alerts)}</h1>
        <FormError />
        <div data-live="alert-settings">
            <Transition fallback=move || view! { <p class="muted">{t!(i18n, loading)}</p> }>
                {move || Suspend::new(async move {
                    match settings.await {
                        Ok(view) => view! { <Settings view /> }.into_any(),
                        Err(_) => view! { <p class="load-failed">{t!(i18n, load_failed)}</p> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

fn scope_text(kind: crate::model::ScopeKind, value: &Option<String>) -> String {
    match value {
        Some(value) => format!("{}: {value}", kind.as_str()),
        None => kind.as_str().to_string(),
    }
}

#[component]
fn Settings(view: AlertSettingsView) -> impl IntoView {
    let i18n = use_i18n();
    let AlertSettingsView {
        rules,
        channels,
        silences,
        may_edit,
    } = view;
    let channel_name = {
        let channels = channels.clone();
        move |id: &uuid::Uuid| {
            channels
                .iter()
                .find(|c| c.id == *id)
                .map(|c| c.name.clone())
                .unwrap_or_else(|| id.to_string())
        }
    };
    let channel_options = channels
        .iter()
        .map(|c| view! {
            <label><input type="checkbox" name="channel_ids[]" value=c.id.to_string() />" "{c.name.clone()}</label>
        })
        .collect_view();
    view! {
        <section class="panel">
            <h2>{t!(i18n, alert_rules)}</h2>
            <table class="table" data-testid="alert-rules">
                <thead><tr>
                    <th>{t!(i18n, rule_name)}</th><th>{t!(i18n, rule_kind)}</th><th>{t!(i18n, rule_scope)}</th>
                    <th>{t!(i18n, rule_params)}</th><th>{t!(i18n, severity)}</th><th>{t!(i18n, alert_channels)}</th><th></th>
                </tr></thead>
                <tbody>
                    {rules.into_iter().map(|rule| {
                        let channels = rule.channel_ids.iter().map(&channel_name).collect::<Vec<_>>().join(", ");
                        view! {
                            <tr data-rule=rule.name.clone()>
                                <td>{rule.name.clone()}{rule.built_in.then(|| view! { " "<span class="pill">{t!(i18n, built_in)}</span> })}</td>
                                <td><code>{rule.kind.as_str()}</code></td>
                                <td>{scope_text(rule.scope_kind, &rule.scope_value)}</td>
                                <td><code class="small">{rule.params.to_string()}</code>
                                    {(rule.pending_for > 0).then(|| format!(" pending {} s", rule.pending_for))}
                                    {(rule.min_runs > 0).then(|| format!(" min_runs {}", rule.min_runs))}
                                    {rule.repeat_interval.map(|r| format!(" repeat {} min", r / 60))}
                                </td>
                                <td>{rule.severity.as_str()}</td>
                                <td>{if channels.is_empty() { "—".to_string() } else { channels }}</td>
                                <td>{may_edit.then(|| view! {
                                    <form method="post" action=DeleteAlertRule::url() class="inline">
                                        <input type="hidden" name="rule_id" value=rule.id.to_string() />
                                        <button type="submit" class="danger">{t!(i18n, delete)}</button>
                                    </form>
                                })}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            {may_edit.then(|| view! {
                <h3>{t!(i18n, new_rule)}</h3>
                <form method="post" action=SaveAlertRule::url() class="inline-form rule-form" data-testid="new-rule">
                    <label>{t!(i18n, rule_name)}" "<input type="text" name="name" required maxlength="200" /></label>
                    <label>{t!(i18n, rule_kind)}" "<select name="kind">
                        {AlertKind::ALL.map(|k| view! { <option value=k.as_str()>{k.as_str()}</option> }).collect_view()}
                    </select></label>
                    <label>{t!(i18n, rule_scope)}" "<select name="scope_kind">
                        <option value="job_key">"job_key"</option>
                        <option value="job_kind">"job_kind"</option>
                        <option value="all">"all"</option>
                    </select></label>
                    <input type="text" name="scope_value" placeholder=format!("job key / {}", SCOPE_JOB_KINDS.join(" | ")) />
                    <label>{t!(i18n, rule_params)}" "<input type="text" name="params" placeholder=r#"{"consecutive": 3}"# /></label>
                    <label>{t!(i18n, pending_for)}" "<input type="number" name="pending_for" value="0" min="0" /></label>
                    <label>{t!(i18n, min_runs)}" "<input type="number" name="min_runs" value="0" min="0" /></label>
                    <label>{t!(i18n, severity)}" "<select name="severity">
                        {Severity::ALL.map(|s| view! { <option value=s.as_str() selected=s == Severity::Warning>{s.as_str()}</option> }).collect_view()}
                    </select></label>
                    <label>{t!(i18n, repeat_minutes)}" "<input type="number" name="repeat_minutes" min="1" /></label>
                    <fieldset class="channel-picks">
                        <legend>{t!(i18n, alert_channels)}</legend>
                        {channel_options}
                    </fieldset>
                    <button type="submit">{t!(i18n, save)}</button>
                </form>
            })}
        </section>
        <section class="panel">
            <h2>{t!(i18n, alert_channels)}</h2>
            <table class="table" data-testid="alert-channels">
                <tbody>
                    {channels.into_iter().map(|c| view! {
                        <tr data-channel=c.name.clone()>
                            <td>{c.name.clone()}</td>
                            <td><code>{c.kind.as_str()}</code></td>
                            <td><code class="small">{c.target.clone()}</code></td>
                            <td>{c.language.as_str()}</td>
                            <td>{may_edit.then(|| view! {
                                <form method="post" action=TestAlertChannel::url() class="inline">
                                    <input type="hidden" name="channel_id" value=c.id.to_string() />
                                    <button type="submit" data-testid="send-test">{t!(i18n, send_test)}</button>
                                </form>
                                <form method="post" action=DeleteAlertChannel::url() class="inline">
                                    <input type="hidden" name="channel_id" value=c.id.to_string() />
                                    <button type="submit" class="danger">{t!(i18n, delete)}</button>
                                </form>
                            })}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            {may_edit.then(|| view! {
                <h3>{t!(i18n, new_channel)}</h3>
                <SecretForm action=CreateAlertChannel::url().to_string() testid="new-channel".to_string()
                    shown_testid="channel-secret".to_string() secret_field="secret".to_string()
                    label=t_string!(i18n, channel_secret_once).to_string()>
                    <label>{t!(i18n, rule_name)}" "<input type="text" name="name" required maxlength="100" /></label>
                    <select name="kind" aria-label=move || t_string!(i18n, rule_kind)>
                        {ChannelKind::ALL.map(|k| view! { <option value=k.as_str()>{k.as_str()}</option> }).collect_view()}
                    </select>
                    <label>{t!(i18n, target)}" "<input type="text" name="target" required placeholder="https://… / ops@example.com" /></label>
                    <select name="language" aria-label=move || t_string!(i18n, language)>
                        <option value="ja">"日本語"</option>
                        <option value="en">"English"</option>
                    </select>
                    <button type="submit">{t!(i18n, save)}</button>
                </SecretForm>
            })}
        </section>
        <section class="panel">
            <h2>{t!(i18n, alert_silences)}</h2>
            <table class="table" data-testid="alert-silences">
                <tbody>
                    {silences.into_iter().map(|s| view! {
                        <tr>
                            <td>{scope_text(s.scope_kind, &s.scope_value)}</td>
                            <td>{t!(i18n, ends_at)}" "{exact_text(s.ends_at)}</td>
                            <td>{s.reason.clone()}</td>
                            <td>{s.created_by.clone()}</td>
                            <td>{may_edit.then(|| view! {
                                <form method="post" action=EndSilence::url() class="inline">
                                    <input type="hidden" name="silence_id" value=s.id.to_string() />
                                    <button type="submit">{t!(i18n, end_silence)}</button>
                                </form>
                            })}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            {may_edit.then(|| view! {
                <h3>{t!(i18n, new_silence)}</h3>
                <form method="post" action=CreateSilence::url() class="inline-form" data-testid="new-silence">
                    <select name="scope_kind" aria-label=move || t_string!(i18n, rule_scope)>
                        <option value="job_key">"job_key"</option>
                        <option value="job_kind">"job_kind"</option>
                        <option value="all">"all"</option>
                    </select>
                    <input type="text" name="scope_value" placeholder="job key / script" />
                    <label>{t!(i18n, hours)}" "<input type="number" name="hours" value="2" min="1" /></label>
                    <label>{t!(i18n, reason)}" "<input type="text" name="reason" maxlength="500" /></label>
                    <button type="submit">{t!(i18n, save)}</button>
                </form>
            })}
        </section>
    }
}
