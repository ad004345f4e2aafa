use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::{path, SsrMode};

use crate::api::incidents::get_job_error_count;
use crate::i18n::I18nContextProvider;
use crate::pages::account::AccountPage;
use crate::pages::admin::{AuditLogPage, TokensPage, UsersPage};
use crate::pages::alerts::AlertsPage;
use crate::pages::error_record::ErrorRecordPage;
use crate::pages::incident::IncidentPage;
use crate::pages::incidents::IncidentsPage;
use crate::pages::job::JobPage;
use crate::pages::jobs::JobsPage;
use crate::pages::login::LoginPage;
use crate::pages::not_found::NotFound;
use crate::pages::recap::RecapJobStatusPage;
use crate::pages::recovery::RecoveryPage;
use crate::pages::workers::WorkersPage;
use crate::ui::live::LiveRefresh;
use crate::ui::sidebar::Sidebar;
use crate::ui::signed_in::{provide_signed_in, signed_in};

/// The HTML document around the app; `<html lang>` is set by the i18n provider. Pages render
/// in `SsrMode::Async`: the first response already holds the data and the error badge.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <AutoReload options=options.clone() />
                <link id="leptos" rel="stylesheet" href=stylesheet_href(&options) />
                <HydrationScripts options islands=true />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The stylesheet's hashed URL, which the server looked up once at start.
fn stylesheet_href(options: &LeptosOptions) -> String {
    #[cfg(feature = "ssr")]
    if let Some(state) = use_context::<crate::server::AppState>() {
        return state.stylesheet_href;
    }
    format!("/{}/{}.css", options.site_pkg_dir, options.output_name)
}

/// The page's live refresh (`ui::live`), told in the page's language how to say it is stale.
#[component]
fn Stale() -> impl IntoView {
    let i18n = crate::i18n::use_i18n();
    view! { <LiveRefresh stale_label=untrack(|| crate::i18n::t_string!(i18n, stale_since).to_string()) /> }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_signed_in();
    view! {
        <I18nContextProvider>
            <Title text="Jobdeck" />
            <Router>
                <div class="layout">
                    {signed_in().map(|user| {
                        let error_count = Resource::new(|| (), |_| get_job_error_count());
                        view! { <Sidebar user error_count /> }
                    })}
                    <main class="content">
                        <Stale />
                        <Routes fallback=NotFound>
                            <Route path=path!("/") view=|| view! { <Redirect path="/incidents" /> } />
                            <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                            <Route path=path!("/incidents") view=IncidentsPage ssr=SsrMode::Async />
                            <Route path=path!("/incidents/:job_key") view=IncidentPage ssr=SsrMode::Async />
                            <Route path=path!("/jobs") view=JobsPage ssr=SsrMode::Async />
                            <Route path=path!("/jobs/:id") view=JobPage ssr=SsrMode::Async />
                            <Route path=path!("/workers") view=WorkersPage ssr=SsrMode::Async />
                            <Route path=path!("/recovery") view=RecoveryPage ssr=SsrMode::Async />
                            <Route path=path!("/recovery/:id") view=ErrorRecordPage ssr=SsrMode::Async />
                            <Route path=path!("/alerts") view=AlertsPage ssr=SsrMode::Async />
                            <Route path=path!("/desktop/recap/job-status") view=RecapJobStatusPage ssr=SsrMode::Async />
                            <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                            <Route path=path!("/admin/users") view=UsersPage ssr=SsrMode::Async />
                            <Route path=path!("/admin/tokens") view=TokensPage ssr=SsrMode::Async />
                            <Route path=path!("/admin/audit") view=AuditLogPage ssr=SsrMode::Async />
                        </Routes>
                    </main>
                </div>
            </Router>
        </I18nContextProvider>
    }
}
