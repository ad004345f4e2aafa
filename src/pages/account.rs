//! `/account`: change one's own password and manage one's own API tokens.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::accounts::{list_tokens, ChangePassword};
use crate::i18n::*;
use crate::model::{AppError, CurrentUser, Role, TokenView};
use crate::ui::form_error::FormError;
use crate::ui::signed_in::signed_in;
use crate::ui::tokens_panel::TokensPanel;
use leptos::server_fn::ServerFn;

#[component]
pub fn AccountPage() -> impl IntoView {
    let me = signed_in();
    let roles = grantable_roles(me.as_ref());
    let tokens = Resource::new(|| (), |_| list_tokens(false));
    view! { <AccountBody me roles tokens /> }
}

/// The roles `me` may put on a token.
pub fn grantable_roles(me: Option<&CurrentUser>) -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|role| me.is_some_and(|me| me.role.may_grant(*role)))
        .collect()
}

#[component]
fn AccountBody(
    me: Option<CurrentUser>,
    roles: Vec<Role>,
    tokens: Resource<Result<Vec<TokenView>, AppError>>,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <Title text=untrack(|| format!("{} | Jobdeck", t_string!(i18n, account_title))) />
        <h1>{t!(i18n, account_title)}</h1>
        {me.as_ref().filter(|me| me.must_change_password).map(|_| view! {
            <p class="notice" role="status">{t!(i18n, must_change_password)}</p>
        })}
        <section class="panel">
            <h2>{t!(i18n, change_password)}</h2>
            <FormError />
            // Every session ends with a password change; the server sends the browser to
            // the login page.
            <form method="post" action=ChangePassword::url() class="inline-form" data-testid="change-password">
                <label><span>{t!(i18n, current_password)}</span>
                    <input type="password" name="current" autocomplete="current-password" required /></label>
                <label><span>{t!(i18n, new_password)}</span>
                    <input type="password" name="new" autocomplete="new-password" minlength="10" required /></label>
                <label class="check"><input type="checkbox" name="revoke_tokens" value="on" />{t!(i18n, revoke_tokens_too)}</label>
                <button type="submit" class="primary">{t!(i18n, save)}</button>
            </form>
        </section>
        <section class="panel">
            <h2>{t!(i18n, tokens_title)}</h2>
            <TokensPanel tokens roles />
        </section>
    }
}
