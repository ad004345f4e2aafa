//! `POST /lang`: the language switch. It keeps the choice in leptos_i18n's cookie (which the
//! server reads on every page) and sends the browser back where it was, so switching needs
//! nothing running in the browser.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use super::error::ApiError;
use super::security::check_same_origin;
use crate::i18n::Locale;
use crate::model::{local_path, HOME};
use crate::server::AppState;
use leptos_i18n::Locale as _;

/// leptos_i18n's cookie name.
const LOCALE_COOKIE: &str = "i18n_pref_locale";

#[derive(Deserialize)]
pub struct LangForm {
    to: String,
}

/// Behind the same-origin check, like every form: another site cannot switch it.
pub async fn switch_language(State(state): State<AppState>, request: Request) -> Response {
    if let Err(error) = check_same_origin(&state, &request) {
        return error.into_response();
    }
    let headers = request.headers().clone();
    let form = match Form::<LangForm>::from_request(request, &state).await {
        Ok(Form(form)) => form,
        Err(error) => return ApiError::invalid(Some("to"), error.body_text()).into_response(),
    };
    let Some(locale) = [Locale::ja, Locale::en]
        .into_iter()
        .find(|locale| locale.as_str() == form.to)
    else {
        return ApiError::invalid(
            Some("to"),
            format!("{:?} is not a language of this site", form.to),
        )
        .into_response();
    };
    let back = headers
        .get(header::REFERER)
        .and_then(|referer| referer.to_str().ok())
        .and_then(path_of)
        .and_then(local_path)
        .unwrap_or(HOME)
        .to_string();
    let cookie = format!(
        "{LOCALE_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        locale.as_str()
    );
    (
        StatusCode::SEE_OTHER,
        [(header::SET_COOKIE, cookie), (header::LOCATION, back)],
    )
        .into_response()
}

/// `/jobs?x=1` of `http://host/jobs?x=1`.
fn path_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map(|slash| &rest[slash..])
}
