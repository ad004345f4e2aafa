//! Sign in and out, and `GET /api/me`.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;

use super::auth::session_cookie;
use super::client_addr::client_addr;
use super::error::ApiError;
use super::security::check_same_origin;
use crate::model::{encode_component, local_path, CurrentUser, HOME};
use crate::server::accounts::login::{self, LoginError};
use crate::server::accounts::{secret, Principal};
use crate::server::AppState;

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`: the login page's plain form (answered with redirects, so it works without
/// JavaScript) or JSON `{email, password}` (answered with JSON and status codes).
pub async fn login(State(state): State<AppState>, request: Request) -> Response {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if let Err(error) = check_same_origin(&state, &request) {
        return error.into_response();
    }
    let addr = client_addr(
        &state.accounts.trusted_proxies,
        request.extensions(),
        request.headers(),
    );
    let old_session = session_cookie(&state, request.headers()).map(|id| secret::sha256(&id));
    let form = if is_json {
        Json::<LoginForm>::from_request(request, &state)
            .await
            .map(|Json(form)| form)
            .map_err(|e| ApiError::invalid(None, e.body_text()))
    } else {
        Form::<LoginForm>::from_request(request, &state)
            .await
            .map(|Form(form)| form)
            .map_err(|e| ApiError::invalid(None, e.body_text()))
    };
    let form = match form {
        Ok(form) => form,
        Err(error) => return error.into_response(),
    };
    let attempt = login::Attempt {
        email: &form.email,
        password: form.password,
        client_addr: addr,
        old_session,
        idle: state.accounts.session_idle,
    };
    let result = login::login(&state.pool, &state.login_gate, attempt).await;
    let next = local_path(&form.next).unwrap_or(HOME);
    match result {
        Ok(done) => {
            let mut response = if is_json {
                Json(json!({ "user": done.user })).into_response()
            } else {
                Redirect::to(next).into_response()
            };
            set_cookie(&mut response, &state, &done.session);
            response
        }
        Err(error) if !is_json && !matches!(error, LoginError::Database(_)) => {
            let code = match error {
                LoginError::Disabled => "disabled",
                LoginError::Limited { .. } => "limited",
                LoginError::Busy => "busy",
                _ => "invalid",
            };
            Redirect::to(&format!(
                "/login?error={code}&next={}",
                encode_component(next)
            ))
            .into_response()
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}

fn set_cookie(response: &mut Response, state: &AppState, session: &str) {
    let secure = if state.accounts.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let name = state.accounts.session_cookie();
    let cookie = format!("{name}={session}; Path=/; HttpOnly; SameSite=Lax{secure}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// `POST /logout`: ends the session on the server and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    login::logout(&state.pool, &principal).await?;
    let mut response = Redirect::to("/login").into_response();
    let secure = if state.accounts.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let name = state.accounts.session_cookie();
    let cleared = format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}");
    if let Ok(value) = HeaderValue::from_str(&cleared) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `GET /api/me`: who the caller is. The cheapest authenticated read, used by the benchmark.
pub async fn me(principal: Principal) -> Json<CurrentUser> {
    Json(principal.current_user())
}
