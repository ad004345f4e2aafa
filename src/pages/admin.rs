//! The admin pages: users, every API token, the audit log. The sidebar shows them only to
//! admins, and their server functions refuse everyone else (403).

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::accounts::{
    list_audit, list_tokens, list_users, CreateUser, ResetPassword, UpdateUser,
};
use crate::i18n::*;
use crate::model::{AuditOutcome, Cursor, Role};
use crate::pages::account::grantable_roles;
use crate::ui::form_error::FormError;
use crate::ui::secret_form::SecretForm;
use crate::ui::signed_in::signed_in;
use crate::ui::tokens_panel::TokensPanel;

#[component]
pub fn UsersPage() -> impl IntoView {
    let i18n = use_i18n();
    let users = Resource::new(|| (), |_| list_users());
    let password_once = untrack(|| t_string!(i18n, new_password_once).to_string());
    let role_options = move |selected: Option<Role>| {
        Role::USER_ROLES
            .into_iter()
            .map(|role| view! { <option value=role.as_str() selected=Some(role) == selected>{role.as_str()}</option> })
            .collect_view()
    };
    view! {
        <Title text=untrack(|| format!("{} | Jobdeck", t_string!(i18n, users_title))) />
        <h1>{t!(i18n, users_title)}</h1>
        <section class="panel">
            <h2>{t!(i18n, create_user)}</h2>
            <FormError />
            <SecretForm action=CreateUser::url().to_string() testid="create-user".to_string()
                shown_testid="new-password".to_string() label=password_once.clone()>
                <label><span>{t!(i18n, email)}</span><input type="email" name="email" required /></label>
                <label><span>{t!(i18n, name)}</span><input name="name" maxlength="100" /></label>
                <label><span>{t!(i18n, role)}</span><select name="role">{role_options(Some(Role::Viewer))}</select></label>
                <button type="submit" class="primary">{t!(i18n, create)}</button>
            </SecretForm>
        </section>
        <section class="panel" data-live="users">
            <Transition fallback=|| ()>
                {move || { let password_once = password_once.clone(); Suspend::new(async move {
                    match users.await {
                        Err(error) => view! { <p class="load-failed">{error.to_string()}</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-scroll"><table class="grid" data-testid="users">
                                <thead><tr>
                                    <th>{t!(i18n, email)}</th><th>{t!(i18n, name)}</th><th>{t!(i18n, role)}</th>
                                    <th>{t!(i18n, state)}</th><th>{t!(i18n, actions)}</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|user| {
                                        let id = user.id.to_string();
                                        let (id_role, id_state, id_reset) = (id.clone(), id.clone(), id);
                                        let password_once = password_once.clone();
                                        view! {
                                            <tr class:revoked=user.disabled data-email=user.email.clone()>
                                                <td>{user.email.clone()}</td>
                                                <td>{user.display_name.clone()}</td>
                                                <td>
                                                    <form method="post" action=UpdateUser::url() class="row-form">
                                                        <input type="hidden" name="id" value=id_role.clone() />
                                                        <select name="role">{role_options(Some(user.role))}</select>
                                                        <button type="submit">{t!(i18n, save)}</button>
                                                    </form>
                                                </td>
                                                <td>{if user.disabled { t_string!(i18n, disabled) } else { t_string!(i18n, enabled) }}</td>
                                                <td><div class="row-actions">
                                                    <form method="post" action=UpdateUser::url() class="row-form">
                                                        <input type="hidden" name="id" value=id_state.clone() />
                                                        <input type="hidden" name="disabled" value=(!user.disabled).to_string() />
                                                        <button type="submit" class:danger=!user.disabled>
                                                            {if user.disabled { t_string!(i18n, enable) } else { t_string!(i18n, disable) }}
                                                        </button>
                                                    </form>
                                                    <SecretForm action=ResetPassword::url().to_string()
                                                        testid=format!("reset-{id_reset}") shown_testid="new-password".to_string()
                                                        label=password_once class="row-form".to_string()>
                                                        <input type="hidden" name="id" value=id_reset.clone() />
                                                        <label class="check"><input type="checkbox" name="revoke_tokens" value="on" />{t!(i18n, revoke_tokens_too)}</label>
                                                        <button type="submit">{t!(i18n, reset_password)}</button>
                                                    </SecretForm>
                                                </div></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table></div>
                        }.into_any(),
                    }
                })}}
            </Transition>
        </section>
    }
}

#[component]
pub fn TokensPage() -> impl IntoView {
    let i18n = use_i18n();
    let roles = grantable_roles(signed_in().as_ref());
    let tokens = Resource::new(|| (), |_| list_tokens(true));
    view! {
        <Title text=untrack(|| format!("{} | Jobdeck", t_string!(i18n, tokens_title))) />
        <h1>{t!(i18n, tokens_title)}</h1>
        <section class="panel">
            <TokensPanel tokens roles />
        </section>
    }
}

#[component]
pub fn AuditLogPage() -> impl IntoView {
    let i18n = use_i18n();
    let params = use_query_map();
    let filter = Memo::new(move |_| {
        params.with(|p| {
            (
                p.get("actor").filter(|s| !s.is_empty()),
                p.get("action").filter(|s| !s.is_empty()),
                p.get("after")
                    .filter(|a| !a.is_empty())
                    .map(Cursor::from_text),
            )
        })
    });
    let page = Resource::new(
        move || filter.get(),
        |(actor, action, after)| list_audit(actor, action, after),
    );
    let (actor, action, _) = filter.get_untracked();
    view! {
        <Title text=untrack(|| format!("{} | Jobdeck", t_string!(i18n, audit_title))) />
        <h1>{t!(i18n, audit_title)}</h1>
        <section class="panel">
            <form class="search" method="get" action="/admin/audit">
                <input name="actor" value=actor.clone().unwrap_or_default() placeholder=move || t_string!(i18n, actor) aria-label=move || t_string!(i18n, actor) />
                <input name="action" value=action.clone().unwrap_or_default() placeholder=move || t_string!(i18n, action) aria-label=move || t_string!(i18n, action) />
                <button type="submit">{t!(i18n, filter)}</button>
            </form>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match page.await {
                        Err(error) => view! { <p class="load-failed">{error.to_string()}</p> }.into_any(),
                        Ok(page) => {
                            let (actor, action, _) = filter.get_untracked();
                            let older = page.next.map(|after| {
                                let mut href = format!("/admin/audit?after={}", after.as_str());
                                if let Some(actor) = &actor { href.push_str(&format!("&actor={}", crate::model::encode_component(actor))); }
                                if let Some(action) = &action { href.push_str(&format!("&action={}", crate::model::encode_component(action))); }
                                href
                            });
                            view! {
                                <div class="table-scroll"><table class="grid" data-testid="audit">
                                    <thead><tr>
                                        <th>{t!(i18n, when)}</th><th>{t!(i18n, actor)}</th><th>{t!(i18n, action)}</th>
                                        <th>{t!(i18n, target)}</th><th>{t!(i18n, outcome)}</th><th>{t!(i18n, client)}</th><th>{t!(i18n, details)}</th>
                                    </tr></thead>
                                    <tbody>
                                        {page.events.into_iter().map(|event| {
                                            let failed = event.outcome != AuditOutcome::Success;
                                            view! {
                                            <tr class:failing=failed>
                                                <td>{event.at.format("%Y-%m-%d %H:%M:%S").to_string()}</td>
                                                <td>{event.actor}</td>
                                                <td><code>{event.action}</code></td>
                                                <td>{event.target.unwrap_or_default()}</td>
                                                <td>{event.outcome.as_str()}</td>
                                                <td>{event.client_addr.unwrap_or_default()}</td>
                                                <td><code class="details">{event.details.to_string()}</code></td>
                                            </tr>
                                        }}).collect_view()}
                                    </tbody>
                                </table></div>
                                {older.map(|href| view! { <nav class="pager"><a href=href rel="next">{t!(i18n, older)}</a></nav> })}
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}
