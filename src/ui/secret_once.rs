use leptos::prelude::*;

use crate::model::AppError;

/// The outcome of an action that hands out a secret (a token, a generated password): the
/// secret, shown this once with what it is, or what went wrong.
pub fn secret_once(
    label: impl IntoView + 'static,
    testid: &'static str,
    outcome: Option<Result<String, AppError>>,
) -> Option<AnyView> {
    Some(match outcome? {
        Ok(secret) => view! {
            <div class="once" data-testid=testid><p>{label}</p><code>{secret}</code></div>
        }
        .into_any(),
        Err(error) => {
            view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any()
        }
    })
}
