//! Who is signed in, for the sidebar and the pages' buttons: a plain context value taken once
//! from the request's `Principal` (put there by `server::http::auth`), never a resource, so
//! nothing awaits it in two `<Suspense>` boundaries (leptos-rs/leptos#4851 left such a
//! response open for ever). Pages render only on the server; in the browser it is `None`.

use leptos::prelude::*;

use crate::model::CurrentUser;

#[derive(Clone, Debug, Default)]
struct SignedIn(Option<CurrentUser>);

/// Called once by `app::App`.
pub fn provide_signed_in() {
    #[cfg(feature = "ssr")]
    let user = use_context::<axum::http::request::Parts>().and_then(|parts| {
        parts
            .extensions
            .get::<crate::server::accounts::Principal>()
            .map(|principal| principal.current_user())
    });
    #[cfg(not(feature = "ssr"))]
    let user = None;
    provide_context(SignedIn(user));
}

/// The signed-in user; `None` on the login page.
pub fn signed_in() -> Option<CurrentUser> {
    use_context::<SignedIn>().and_then(|signed_in| signed_in.0)
}
