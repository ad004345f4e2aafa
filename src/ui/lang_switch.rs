use leptos::prelude::*;

use crate::i18n::*;

/// Flips between Japanese and English; leptos_i18n keeps the choice in a cookie.
#[component]
pub fn LangSwitch() -> impl IntoView {
    let i18n = use_i18n();
    let switch = move |_| {
        let next = match i18n.get_locale() {
            Locale::ja => Locale::en,
            Locale::en => Locale::ja,
        };
        i18n.set_locale(next);
    };
    view! {
        <button type="button" class="lang-switch" on:click=switch
            aria-label=move || t_string!(i18n, switch_language_label)>
            {t!(i18n, switch_language)}
        </button>
    }
}
