//! API tokens: create (shown once), list with last use, revoke. A user's own on the account
//! page; everyone's for admins.

use leptos::prelude::*;

use leptos::server_fn::ServerFn;

use crate::api::accounts::{CreateToken, RevokeToken};
use crate::i18n::*;
use crate::model::{AppError, Role, TokenView};
use crate::ui::form_error::FormError;
use crate::ui::secret_form::SecretForm;

/// The page owns the list's resource (its own tokens or everyone's) and the roles it may
/// grant; this shows them.
#[component]
pub fn TokensPanel(
    tokens: Resource<Result<Vec<TokenView>, AppError>>,
    roles: Vec<Role>,
) -> impl IntoView {
    let i18n = use_i18n();
    let format_time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
    };
    view! {
        <FormError />
        <SecretForm action=CreateToken::url().to_string() testid="create-token".to_string()
            shown_testid="new-token".to_string() secret_field="token".to_string()
            label=untrack(|| t_string!(i18n, token_once).to_string())>
            <label><span>{t!(i18n, name)}</span><input name="name" required maxlength="100" /></label>
            <label><span>{t!(i18n, role)}</span>
                <select name="role">
                    {roles.into_iter().map(|role| view! { <option value=role.as_str()>{role.as_str()}</option> }).collect_view()}
                </select>
            </label>
            <label><span>{t!(i18n, expires_in_days)}</span><input name="expires_in_days" type="number" min="1" max="3650" /></label>
            <button type="submit" class="primary">{t!(i18n, create)}</button>
        </SecretForm>
        <div data-live="tokens">
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match tokens.await {
                    Err(error) => view! { <p class="load-failed">{error.to_string()}</p> }.into_any(),
                    Ok(list) => view! {
                        <div class="table-scroll"><table class="grid" data-testid="tokens">
                            <thead><tr>
                                <th>{t!(i18n, name)}</th><th>{t!(i18n, prefix)}</th><th>{t!(i18n, role)}</th>
                                <th>{t!(i18n, owner)}</th><th>{t!(i18n, created)}</th><th>{t!(i18n, expires)}</th>
                                <th>{t!(i18n, last_used)}</th><th>{t!(i18n, actions)}</th>
                            </tr></thead>
                            <tbody>
                                {list.into_iter().map(|token| {
                                    let live = token.revoked_at.is_none();
                                    view! {
                                        <tr class:revoked=!live>
                                            <td>{token.name.clone()}</td>
                                            <td><code>{token.prefix.clone()}"…"</code></td>
                                            <td>{token.role.as_str()}</td>
                                            <td>{token.owner_email.clone().unwrap_or_else(|| "cli".into())}</td>
                                            <td>{format_time(Some(token.created_at))}</td>
                                            <td>{format_time(token.expires_at).unwrap_or_else(|| t_string!(i18n, never).to_string())}</td>
                                            <td>{format_time(token.last_used_at).unwrap_or_else(|| "—".into())}</td>
                                            <td>{if live {
                                                view! {
                                                    <form method="post" action=RevokeToken::url()>
                                                        <input type="hidden" name="id" value=token.id.to_string() />
                                                        <button type="submit" class="danger">{t!(i18n, revoke)}</button>
                                                    </form>
                                                }.into_any()
                                            } else {
                                                view! { <span class="muted">{t!(i18n, revoked)}</span> }.into_any()
                                            }}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any(),
                }
            })}
        </Transition>
        </div>
    }
}
