//! Every page is a lazy route: with `cargo leptos build --split` its code is a separate WASM
//! chunk, loaded when the page is first opened, so the first load stays small however many
//! pages the portal has.

use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};

macro_rules! lazy_page {
    ($route:ident, $page:path) => {
        #[derive(Debug)]
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                $page().into_any()
            }
        }
    };
}

lazy_page!(LoginRoute, crate::pages::login::LoginPage);
lazy_page!(IncidentsRoute, crate::pages::incidents::IncidentsPage);
lazy_page!(IncidentRoute, crate::pages::incident::IncidentPage);
lazy_page!(AccountRoute, crate::pages::account::AccountPage);
lazy_page!(UsersRoute, crate::pages::admin::UsersPage);
lazy_page!(TokensRoute, crate::pages::admin::TokensPage);
lazy_page!(AuditRoute, crate::pages::admin::AuditLogPage);
