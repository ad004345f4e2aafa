//! Live pages at almost no WASM cost. The server renders every page; this one island
//! refreshes the parts of it marked `data-live="<name>"` from a fresh render of the same URL
//! every 5 s (seed 002's and 003's interval), while the tab is visible, and at once when it
//! becomes visible again. A page that names an event stream (`data-live-stream`, seed 000's
//! real-time monitoring) is also refreshed when the stream says something changed, at most
//! once a second; the 5 s poll goes on behind it (counted from the last refresh), for what
//! no stream announces (cached figures, script reports) and for when the stream is down. A failed
//! refresh keeps the last good data and says since when it is stale. The views stay on the
//! server, so a page's size costs the bundle nothing.

use leptos::prelude::*;

/// Seed 002 and 003 both refresh every 5 s.
pub const POLL_INTERVAL_MS: u32 = 5_000;

/// Changes a page's stream announces are refreshed at most this often.
pub const STREAM_FLOOR_MS: u32 = 1_000;

/// The attribute a page puts on an element to name its event stream.
pub const STREAM_ATTRIBUTE: &str = "data-live-stream";

/// The event another island sends (`window`) when it has changed something on the page.
pub const REFRESH_EVENT: &str = "jobdeck:refresh";

#[island]
pub fn LiveRefresh(
    /// "stale since" in the page's language; the time follows.
    stale_label: String,
) -> impl IntoView {
    let (stale_since, set_stale_since) = signal(None::<String>);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        client::start(set_stale_since);
        #[cfg(not(feature = "hydrate"))]
        let _ = set_stale_since;
    });
    view! {
        <span class="live-status" role="status" data-testid="live-status"
            class:stale=move || stale_since.with(Option::is_some)>
            {move || stale_since.get().map(|at| format!("{stale_label} {at}"))}
        </span>
    }
}

#[cfg(feature = "hydrate")]
mod client {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::rc::Rc;

    use leptos::prelude::*;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{Document, DomParser, Element, EventSource, RequestCache, RequestInit, Response};

    use super::{POLL_INTERVAL_MS, REFRESH_EVENT, STREAM_ATTRIBUTE, STREAM_FLOOR_MS};

    /// The events of `/v1/events` and `/v1/jobs/{id}/events` that mean "read the page again".
    const STREAM_EVENTS: [&str; 6] = ["job", "jobs", "activity", "transition", "deleted", "resync"];

    /// What each region last received, so an unchanged region is left alone (a selection or
    /// a hover in it survives).
    type Applied = Rc<RefCell<HashMap<String, String>>>;

    pub fn start(stale: WriteSignal<Option<String>>) {
        let window = window();
        let document = document();
        localize_times(&document);
        let busy = Rc::new(Cell::new(false));
        let applied: Applied = Rc::default();
        // Whether it started one (none starts while one is under way).
        let refresh = Rc::new(move || -> bool {
            if busy.replace(true) {
                return false;
            }
            let (busy, applied) = (busy.clone(), applied.clone());
            leptos::task::spawn_local(async move {
                match refresh_page(&applied).await {
                    Ok(()) => stale.set(None),
                    Err(_) => stale.update(|since| {
                        since.get_or_insert_with(clock_time);
                    }),
                }
                busy.set(false);
            });
            true
        });
        let changed = Rc::new(Cell::new(false));
        if let Some(stream) = open_stream(&document) {
            let changed = changed.clone();
            let heard = Closure::<dyn Fn()>::new(move || changed.set(true));
            for name in STREAM_EVENTS {
                let _ =
                    stream.add_event_listener_with_callback(name, heard.as_ref().unchecked_ref());
            }
            heard.forget();
            // Open for the page's life.
            std::mem::forget(stream);
        }
        // Every second: what the stream announced, else the poll 5 s after the last refresh.
        let tick = refresh.clone();
        let waited = Cell::new(0u32);
        gloo_timers::callback::Interval::new(STREAM_FLOOR_MS, move || {
            waited.set(waited.get() + STREAM_FLOOR_MS);
            if document_hidden() {
                return;
            }
            // News that came during a refresh under way waits for the next tick, since that
            // refresh may have been rendered before the change.
            if (changed.get() || waited.get() >= POLL_INTERVAL_MS) && tick() {
                changed.set(false);
                waited.set(0);
            }
        })
        .forget();
        let shown = refresh.clone();
        let on_visibility = Closure::<dyn Fn()>::new(move || {
            if !document_hidden() {
                shown();
            }
        });
        let _ = document.add_event_listener_with_callback(
            "visibilitychange",
            on_visibility.as_ref().unchecked_ref(),
        );
        on_visibility.forget();
        let asked = Closure::<dyn Fn()>::new(move || {
            refresh();
        });
        let _ =
            window.add_event_listener_with_callback(REFRESH_EVENT, asked.as_ref().unchecked_ref());
        asked.forget();
        // A marker for the browser tests: the page is live.
        let _ = js_sys::Reflect::set(&window, &"__jobdeckHydrated".into(), &true.into());
    }

    /// The page's event stream, when it names one; `EventSource` reconnects by itself, with
    /// `Last-Event-ID`.
    fn open_stream(document: &Document) -> Option<EventSource> {
        let url = document
            .query_selector(&format!("[{STREAM_ATTRIBUTE}]"))
            .ok()
            .flatten()?
            .get_attribute(STREAM_ATTRIBUTE)?;
        let stream = EventSource::new(&url).ok()?;
        // A marker for the browser tests: which stream the page follows.
        let _ = js_sys::Reflect::set(&window(), &"__jobdeckStream".into(), &url.into());
        Some(stream)
    }

    fn document_hidden() -> bool {
        document().hidden()
    }

    async fn refresh_page(applied: &Applied) -> Result<(), JsValue> {
        let window = window();
        let here = window.location().href()?;
        let init = RequestInit::new();
        init.set_cache(RequestCache::NoStore);
        let headers = web_sys::Headers::new()?;
        headers.set("Accept", "text/html")?;
        init.set_headers(&headers);
        let response: Response = JsFuture::from(window.fetch_with_str_and_init(&here, &init))
            .await?
            .dyn_into()?;
        if response.redirected() {
            // Signed out meanwhile: follow the server to the login page.
            return window.location().assign(&response.url());
        }
        if !response.ok() {
            return Err(JsValue::from(response.status()));
        }
        let html = JsFuture::from(response.text()?)
            .await?
            .as_string()
            .unwrap_or_default();
        let fresh = DomParser::new()?.parse_from_string(&html, web_sys::SupportedType::TextHtml)?;
        swap_regions(&document(), &fresh, applied);
        Ok(())
    }

    fn swap_regions(page: &Document, fresh: &Document, applied: &Applied) {
        let Ok(regions) = page.query_selector_all("[data-live]") else {
            return;
        };
        let focused = page.active_element();
        for i in 0..regions.length() {
            let Some(region) = regions.item(i).and_then(|n| n.dyn_into::<Element>().ok()) else {
                continue;
            };
            let name = region.get_attribute("data-live").unwrap_or_default();
            // A region someone is working in (typing, an open confirmation) waits.
            let busy = focused
                .as_ref()
                .is_some_and(|f| f.tag_name() != "BODY" && region.contains(Some(f)))
                || region
                    .query_selector("details[open]")
                    .ok()
                    .flatten()
                    .is_some();
            if busy {
                continue;
            }
            let selector = format!("[data-live=\"{name}\"]");
            let Some(new) = fresh.query_selector(&selector).ok().flatten() else {
                continue;
            };
            let html = new.inner_html();
            let mut applied = applied.borrow_mut();
            if applied.get(&name) != Some(&html) {
                region.set_inner_html(&html);
                applied.insert(name, html);
            }
        }
        localize_times(page);
    }

    /// Exact times on hover in the viewer's own zone (the server writes UTC).
    fn localize_times(page: &Document) {
        let Ok(times) = page.query_selector_all("time[datetime]") else {
            return;
        };
        for i in 0..times.length() {
            let Some(time) = times.item(i).and_then(|n| n.dyn_into::<Element>().ok()) else {
                continue;
            };
            let Some(at) = time.get_attribute("datetime") else {
                continue;
            };
            let date = js_sys::Date::new(&JsValue::from_str(&at));
            if date.get_time().is_nan() {
                continue;
            }
            let offset = -(date.get_timezone_offset() as i32);
            let title = format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} (UTC{}{:02}:{:02})",
                date.get_full_year(),
                date.get_month() + 1,
                date.get_date(),
                date.get_hours(),
                date.get_minutes(),
                date.get_seconds(),
                if offset < 0 { '-' } else { '+' },
                offset.abs() / 60,
                offset.abs() % 60
            );
            let _ = time.set_attribute("title", &title);
        }
    }

    /// Now on the viewer's clock, "14:05:09".
    fn clock_time() -> String {
        let now = js_sys::Date::new_0();
        format!(
            "{:02}:{:02}:{:02}",
            now.get_hours(),
            now.get_minutes(),
            now.get_seconds()
        )
    }
}
