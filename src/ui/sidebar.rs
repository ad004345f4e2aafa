use leptos::prelude::*;
use leptos_router::components::A;

use crate::i18n::*;
use crate::model::{AppError, CurrentUser, Permission};
use crate::ui::lang_switch::LangSwitch;

/// Navigation on every page, with the count of failing jobs on the incidents entry
/// (a live region: `ui::live` refreshes it), the admin pages for admins,
/// and who is signed in. The page shell owns the count's resource; this only shows it.
#[component]
pub fn Sidebar(user: CurrentUser, error_count: Resource<Result<i64, AppError>>) -> impl IntoView {
    let i18n = use_i18n();
    // Awaited inside `Suspend`, not read with `.get()`: a `.get()` read inside a boundary
    // can leave an SSR response open (leptos-rs/leptos#4578).
    let badge = move || {
        Suspend::new(async move {
            error_count
                .await
                .ok()
                .filter(|count| *count > 0)
                .map(|count| {
                    view! {
                        <span class="badge" data-testid="error-badge"
                            title=move || format!("{count} {}", t_string!(i18n, failing_jobs))>
                            {count}
                        </span>
                    }
                })
        })
    };

    let admin = user.may(Permission::Administer);
    view! {
        <nav class="sidebar" aria-label=move || t_string!(i18n, nav_label)>
            <a class="brand" href="/incidents">"Jobdeck"</a>
            <ul class="nav">
                <li>
                    <A href="/incidents" attr:class="nav-item">
                        <span>{t!(i18n, nav_incidents)}</span>
                        <span data-live="badge"><Transition fallback=|| ()>{badge}</Transition></span>
                    </A>
                </li>
                <li><A href="/desktop/recap/job-status" attr:class="nav-item">{t!(i18n, nav_recap)}</A></li>
                <li><A href="/jobs" attr:class="nav-item">{t!(i18n, nav_jobs)}</A></li>
                <li><A href="/workers" attr:class="nav-item">{t!(i18n, nav_workers)}</A></li>
                <li><A href="/recovery" attr:class="nav-item">{t!(i18n, nav_recovery)}</A></li>
                <li><A href="/alerts" attr:class="nav-item">{t!(i18n, nav_alerts)}</A></li>
            </ul>
            {admin.then(|| view! {
                <ul class="nav admin-nav" data-testid="admin-nav">
                    <li><A href="/admin/users" attr:class="nav-item">{t!(i18n, nav_users)}</A></li>
                    <li><A href="/admin/tokens" attr:class="nav-item">{t!(i18n, nav_tokens)}</A></li>
                    <li><A href="/admin/audit" attr:class="nav-item">{t!(i18n, nav_audit)}</A></li>
                </ul>
            })}
            <div class="who" data-testid="who">
                <A href="/account" attr:class="nav-item">
                    <span class="who-name" data-testid="user-name">{user.name.clone()}</span>
                    <small class="who-role" data-testid="user-role">{user.role.as_str()}</small>
                </A>
                <form method="post" action="/logout">
                    <button type="submit" class="link" data-testid="sign-out">{t!(i18n, sign_out)}</button>
                </form>
            </div>
            <LangSwitch />
        </nav>
    }
}
