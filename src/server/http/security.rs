//! Cross-site protection and security headers for every response.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::session_cookie;
use super::client_addr::request_scheme;
use super::error::ApiError;
use crate::server::AppState;

/// The nonce of this response's inline scripts (Leptos's hydration loader); also in its CSP.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

/// A state-changing request from another site is refused before it reaches a handler: its
/// `Origin` must be this site's, and one carrying a session cookie must prove it (Origin or
/// `Sec-Fetch-Site: same-origin`). Bearer-token callers without a cookie (scripts, CI) and
/// the webhook send neither, and need not.
///
/// It guards the routes that accept a session (and `POST /login`); the webhook and the
/// health check take no cookie, so a forged request there gains nothing.
pub async fn same_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match check_same_origin(&state, &request) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

pub fn check_same_origin(state: &AppState, request: &Request) -> Result<(), ApiError> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return Ok(());
    }
    let headers = request.headers();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let same = match origin {
        Some(origin) => {
            let scheme = request_scheme(
                &state.accounts.trusted_proxies,
                request.extensions(),
                headers,
            );
            is_this_site(state, headers, scheme, origin)
        }
        None if session_cookie(state, headers).is_some() => headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"same-origin"),
        None => true,
    };
    if same {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "cross-site request refused: its Origin is not this site".into(),
        ))
    }
}

/// The origin must be `JOBDECK_PUBLIC_URL`'s, or else the request's own: the scheme it
/// arrived by (`http`, or `https` from a trusted proxy) and its `Host`.
fn is_this_site(state: &AppState, headers: &HeaderMap, scheme: &str, origin: &str) -> bool {
    let origin = origin.to_ascii_lowercase();
    match &state.accounts.public_origin {
        Some(site) => origin == *site,
        None => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            host.is_some_and(|host| origin == format!("{scheme}://{}", host.to_ascii_lowercase()))
        }
    }
}

/// Pages may run only this site's scripts (the hydration loader by nonce, the WASM by
/// `wasm-unsafe-eval`); nothing may frame them; everything else gets the strictest policy.
/// `https` is whether the site is served as https (`JOBDECK_PUBLIC_URL`), for HSTS; the
/// layer holds only that, so no request clones the whole state for it.
pub async fn security_headers(
    State(https): State<bool>,
    mut request: Request,
    next: Next,
) -> Response {
    let nonce = crate::server::accounts::secret::random_base62(22);
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let policy = if is_html {
        format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
             style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    } else {
        "default-src 'none'; frame-ancestors 'none'".to_string()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Served as https (JOBDECK_PUBLIC_URL): browsers keep to https for a year.
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}
