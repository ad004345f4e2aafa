//! Server functions: the browser's door to the services in `server/`. Each one asks
//! [`allowed`] first, so identity and role are checked the same way as on the JSON routes.

pub mod accounts;
pub mod alerts;
pub mod dashboard;
pub mod incidents;
pub mod jobs;
pub mod recovery;
pub mod workers;

/// The state and the caller's principal (put on the request by `http::auth::page_gate`),
/// once the caller's role allows `permission`.
#[cfg(feature = "ssr")]
pub(crate) fn allowed(
    permission: crate::model::Permission,
) -> Result<(crate::server::AppState, crate::server::accounts::Principal), crate::model::AppError> {
    use crate::model::AppError;
    use leptos::prelude::use_context;
    let state = use_context::<crate::server::AppState>().ok_or(AppError::Internal)?;
    let principal = use_context::<axum::http::request::Parts>()
        .and_then(|parts| {
            parts
                .extensions
                .get::<crate::server::accounts::Principal>()
                .cloned()
        })
        .ok_or(AppError::Unauthorized)?;
    principal.require(permission)?;
    Ok((state, principal))
}

/// Gives a failed server function the status code its error means (401, 403, 409, ...),
/// as the JSON routes have, instead of a blanket 500. Not for a plain form post: server_fn
/// answers that with a redirect back to the page carrying the error (`ui::form_error`), and
/// a status set here would replace the redirect's 302, leaving the browser on a JSON body.
#[cfg(feature = "ssr")]
pub(crate) fn answer<T>(
    result: Result<T, crate::model::AppError>,
) -> Result<T, crate::model::AppError> {
    use leptos::prelude::use_context;
    // The call itself, not a page rendering on the server: a page's own request asks for
    // HTML too, and its server functions' statuses are the page's.
    let form_post = use_context::<axum::http::request::Parts>().is_some_and(|parts| {
        parts.method == axum::http::Method::POST
            && parts.uri.path().starts_with("/api/")
            && parts
                .headers
                .get(axum::http::header::ACCEPT)
                .and_then(|accept| accept.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"))
    });
    if let (Err(error), false) = (&result, form_post) {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            if let Ok(status) = axum::http::StatusCode::from_u16(error.status_code()) {
                response.set_status(status);
            }
        }
    }
    result
}
