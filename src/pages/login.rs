//! `/login`: a plain form posted to `POST /login`, so it works before hydration, after it,
//! and without JavaScript at all. The server answers with a redirect either way.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::i18n::*;
use crate::model::{local_path, HOME};
use crate::ui::lang_switch::LangSwitch;

#[component]
pub fn LoginPage() -> impl IntoView {
    let i18n = use_i18n();
    let query = use_query_map();
    let next = move || {
        query.with(|q| {
            q.get("next")
                .filter(|next| local_path(next).is_some())
                .unwrap_or_else(|| HOME.to_string())
        })
    };
    let error = move || {
        query
            .with(|q| q.get("error"))
            .map(|code| match code.as_str() {
                "disabled" => t_string!(i18n, login_disabled),
                "limited" => t_string!(i18n, login_limited),
                "busy" => t_string!(i18n, login_busy),
                _ => t_string!(i18n, login_invalid),
            })
    };
    view! {
        <Title text=untrack(|| format!("{} | Jobdeck", t_string!(i18n, login_title))) />
        <div class="login">
            <form class="login-card panel" method="post" action="/login">
                <h1>"Jobdeck"</h1>
                <h2>{t!(i18n, login_title)}</h2>
                {move || error().map(|message| view! { <p class="form-error" role="alert" data-testid="login-error">{message}</p> })}
                <label>
                    <span>{t!(i18n, email)}</span>
                    <input type="email" name="email" autocomplete="username" required autofocus />
                </label>
                <label>
                    <span>{t!(i18n, password)}</span>
                    <input type="password" name="password" autocomplete="current-password" required />
                </label>
                <input type="hidden" name="next" value=next />
                <button type="submit" class="primary">{t!(i18n, sign_in)}</button>
            </form>
            <LangSwitch />
        </div>
    }
}
