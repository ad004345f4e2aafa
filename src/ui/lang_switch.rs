use leptos::prelude::*;

use crate::i18n::*;

/// Flips between Japanese and English: a plain form to `POST /lang`, which keeps the choice
/// in leptos_i18n's cookie and sends the browser back to the page.
#[component]
pub fn LangSwitch() -> impl IntoView {
    let i18n = use_i18n();
    let other = match i18n.get_locale_untracked() {
        Locale::ja => Locale::en,
        Locale::en => Locale::ja,
    };
    view! {
        <form method="post" action="/lang" class="lang-form">
            <input type="hidden" name="to" value=other.as_str() />
            <button type="submit" class="lang-switch"
                aria-label=untrack(|| t_string!(i18n, switch_language_label))>
                {t!(i18n, switch_language)}
            </button>
        </form>
    }
}
