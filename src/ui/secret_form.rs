//! A form that hands out a secret (an API token, a generated password) and shows it exactly
//! once, on this page, without the secret ever being in a URL or stored. The only form that
//! needs the browser: it posts the form's fields to its server function as a form would and
//! reads the JSON answer. The page's live regions are refreshed at once afterwards.

use leptos::prelude::*;

#[island]
pub fn SecretForm(
    /// The server function's URL.
    action: String,
    /// `data-testid` of the form and of the secret when shown.
    testid: String,
    shown_testid: String,
    /// The field of the JSON answer that holds the secret; the answer itself when `None`.
    #[prop(optional)]
    secret_field: Option<String>,
    /// What the secret is and that it is shown once, in the page's language.
    label: String,
    #[prop(optional)] class: Option<String>,
    children: Children,
) -> impl IntoView {
    let (outcome, set_outcome) = signal(None::<Result<String, String>>);
    let url = action.clone();
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let form = event
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok());
            if let Some(form) = form {
                let (action, field) = (url.clone(), secret_field.clone());
                leptos::task::spawn_local(async move {
                    let result = client::post(&form, &action, field.as_deref()).await;
                    if result.is_ok() {
                        form.reset();
                        client::ask_for_refresh();
                    }
                    set_outcome.set(Some(result));
                });
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (&url, &secret_field, set_outcome);
    };
    view! {
        <form method="post" action=action.clone() class=class.unwrap_or_else(|| "inline-form".into())
            data-testid=testid on:submit=submit>
            {children()}
        </form>
        {move || outcome.get().map(|outcome| match outcome {
            Ok(secret) => view! {
                <div class="once" data-testid=shown_testid.clone()><p>{label.clone()}</p><code>{secret}</code></div>
            }.into_any(),
            Err(message) => view! { <p class="form-error" role="alert">{message}</p> }.into_any(),
        })}
    }
}

#[cfg(feature = "hydrate")]
mod client {
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{FormData, HtmlFormElement, RequestInit, Response, UrlSearchParams};

    /// Posts the form urlencoded, as the browser would, asking for JSON back. `Err` holds what
    /// to show: the server's message when it gave one.
    pub async fn post(
        form: &HtmlFormElement,
        action: &str,
        field: Option<&str>,
    ) -> Result<String, String> {
        let sent = async {
            let data = FormData::new_with_form(form)?;
            let body = UrlSearchParams::new_with_str_sequence_sequence(&data)?.to_string();
            let init = RequestInit::new();
            init.set_method("POST");
            let headers = web_sys::Headers::new()?;
            headers.set("Content-Type", "application/x-www-form-urlencoded")?;
            headers.set("Accept", "application/json")?;
            init.set_headers(&headers);
            init.set_body(&JsValue::from(String::from(body)));
            let window = web_sys::window().ok_or(JsValue::NULL)?;
            let response: Response = JsFuture::from(window.fetch_with_str_and_init(action, &init))
                .await?
                .dyn_into()?;
            let text = JsFuture::from(response.text()?)
                .await?
                .as_string()
                .unwrap_or_default();
            Ok::<_, JsValue>((response.ok(), text))
        };
        let (ok, text) = sent.await.map_err(|_| "network error".to_string())?;
        let answer = js_sys::JSON::parse(&text).unwrap_or(JsValue::from_str(&text));
        if ok {
            let secret = match field {
                Some(field) => {
                    js_sys::Reflect::get(&answer, &field.into()).unwrap_or(JsValue::NULL)
                }
                None => answer,
            };
            secret
                .as_string()
                .ok_or_else(|| "unexpected answer".to_string())
        } else {
            Err(message_of(&answer).unwrap_or(text))
        }
    }

    /// The text of a server function's error (`{"Invalid":{"message":...}}`, `"Forbidden"`).
    fn message_of(error: &JsValue) -> Option<String> {
        if let Some(text) = error.as_string() {
            return Some(text);
        }
        let variant = js_sys::Object::keys(error.dyn_ref::<js_sys::Object>()?)
            .get(0)
            .as_string()?;
        let inner = js_sys::Reflect::get(error, &variant.clone().into()).ok()?;
        let message = inner.as_string().or_else(|| {
            js_sys::Reflect::get(&inner, &"message".into())
                .ok()?
                .as_string()
        });
        Some(message.unwrap_or(variant))
    }

    pub fn ask_for_refresh() {
        if let (Some(window), Ok(event)) = (
            web_sys::window(),
            web_sys::Event::new(crate::ui::live::REFRESH_EVENT),
        ) {
            let _ = window.dispatch_event(&event);
        }
    }
}
