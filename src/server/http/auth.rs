//! Identity at the door: every protected route resolves its caller from a bearer token or a
//! session cookie (one lookup, or a cached token), then hands handlers a [`Principal`].
//! Without one a page redirects to `/login?next=...` and anything else answers 401 JSON.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use axum_extra::extract::cookie::CookieJar;
use leptos::server_fn::ServerFn;

use super::client_addr::client_addr;
use super::error::{ApiError, DATABASE_UNAVAILABLE};
use crate::api::accounts::ChangePassword;
use crate::model::encode_component;
use crate::server::accounts::sessions::find_session;
use crate::server::accounts::tokens::authenticate_token;
use crate::server::accounts::Principal;
use crate::server::AppState;

/// Pages anyone may open.
pub const PUBLIC_PAGES: &[&str] = &["/login"];
/// Where a user whose password must change is sent.
const ACCOUNT_PAGE: &str = "/account";
const LOGOUT: &str = "/logout";

/// The session id in a request's cookies, if any.
pub fn session_cookie(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let jar = CookieJar::from_headers(headers);
    jar.get(state.accounts.session_cookie())
        .map(|cookie| cookie.value().to_string())
        .filter(|value| !value.is_empty())
}

/// Who is calling: a bearer token wins over a cookie. A token that is malformed, unknown,
/// expired or revoked is refused outright; a stale cookie is treated as no identity, so a
/// person is simply asked to sign in again.
async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::Unauthorized("expected Authorization: Bearer <token>".into())
            })?;
        return match authenticate_token(&state.pool, &state.tokens, token.trim()).await? {
            Err(malformed) => Err(ApiError::Unauthorized(malformed.to_string().into())),
            Ok(None) => Err(ApiError::Unauthorized(
                "the token is unknown, expired or revoked".into(),
            )),
            Ok(Some(principal)) => Ok(Some(principal)),
        };
    }
    match session_cookie(state, headers) {
        Some(id) => Ok(find_session(&state.pool, &id, &state.accounts).await?),
        None => Ok(None),
    }
}

async fn identify(state: &AppState, request: &mut Request) -> Result<Option<Principal>, ApiError> {
    if !state.readiness.is_ready() {
        return Err(ApiError::Unavailable(DATABASE_UNAVAILABLE));
    }
    let addr = client_addr(
        &state.accounts.trusted_proxies,
        request.extensions(),
        request.headers(),
    );
    let principal = resolve(state, request.headers())
        .await?
        .map(|mut principal| {
            principal.client_addr = addr;
            principal
        });
    if let Some(principal) = &principal {
        request.extensions_mut().insert(principal.clone());
    }
    Ok(principal)
}

/// A user whose password was set by someone else changes it before doing anything else:
/// every request that is not a read is refused, but the password change and logout.
fn must_change_password_first(principal: &Principal, request: &Request) -> Option<ApiError> {
    let path = request.uri().path();
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    let allowed = reads || path == LOGOUT || path == <ChangePassword as ServerFn>::PATH;
    (principal.must_change_password && !allowed)
        .then(|| ApiError::Forbidden("change your password first (on /account)".into()))
}

/// Around the JSON routes: no identity, 401.
pub async fn api_gate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    match identify(&state, &mut request).await {
        Ok(Some(principal)) => match must_change_password_first(&principal, &request) {
            Some(refused) => refused.into_response(),
            None => next.run(request).await,
        },
        Ok(None) => ApiError::Unauthorized("sign in or send Authorization: Bearer <token>".into())
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// Around the Leptos routes: pages redirect to the login page, server functions (under
/// `/api/`) answer 401 like the JSON routes.
pub async fn page_gate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let is_page = !path.starts_with("/api/");
    if is_page && PUBLIC_PAGES.contains(&path) {
        return next.run(request).await;
    }
    match identify(&state, &mut request).await {
        // A password set by an admin (or the command line) is changed before anything else.
        Ok(Some(principal))
            if principal.must_change_password
                && is_page
                && request.uri().path() != ACCOUNT_PAGE
                && request.method() == Method::GET =>
        {
            Redirect::to(ACCOUNT_PAGE).into_response()
        }
        Ok(Some(principal)) => match must_change_password_first(&principal, &request) {
            Some(refused) => refused.into_response(),
            None => next.run(request).await,
        },
        Ok(None) if is_page && request.method() == Method::GET => {
            let here = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
            Redirect::to(&format!("/login?next={}", encode_component(here))).into_response()
        }
        Ok(None) => ApiError::Unauthorized("sign in or send Authorization: Bearer <token>".into())
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// The caller of a protected JSON route, put there by a gate.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            ApiError::Unauthorized("sign in or send Authorization: Bearer <token>".into())
        })
    }
}
