//! What a plain form's server function said went wrong. Forms post without the browser
//! running anything; Leptos sends the browser back to the page with the error in the URL
//! (`__err`), and this shows it.

use leptos::prelude::*;
use leptos::server_fn::error::ServerFnUrlError;
use leptos_router::hooks::use_query_map;

use crate::model::AppError;

#[component]
pub fn FormError() -> impl IntoView {
    let error = use_query_map()
        .with_untracked(|q| q.get("__err"))
        .map(|encoded| ServerFnUrlError::<AppError>::decode_err(&encoded));
    error.map(|error| {
        view! { <p class="form-error" role="alert" data-testid="form-error">{error.to_string()}</p> }
    })
}
