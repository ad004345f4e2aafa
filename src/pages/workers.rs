//! `/workers`: each worker seen in the last hour (what it serves, declared and holds, and
//! when it last asked), and each queue's depth. A live region (`ui::live`).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::workers::list_workers;
use crate::i18n::*;
use crate::model::dispatch::WorkersView;

#[component]
pub fn WorkersPage() -> impl IntoView {
    let i18n = use_i18n();
    let workers = Resource::new(|| (), |_| list_workers());
    view! {
        <Title text=untrack(|| format!("{} | Jobdeck", t_string!(i18n, workers_title))) />
        <h1>{t!(i18n, workers_title)}</h1>
        <div data-live="workers">
            <Transition fallback=move || view! { <p class="muted">{t!(i18n, loading)}</p> }>
                {move || Suspend::new(async move {
                    match workers.await {
                        Ok(view) => view! { <WorkersBody view /> }.into_any(),
                        Err(_) => view! { <p class="load-failed">{t!(i18n, load_failed)}</p> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

#[component]
fn WorkersBody(view: WorkersView) -> impl IntoView {
    let i18n = use_i18n();
    let WorkersView {
        now,
        workers,
        queues,
    } = view;
    let ago = move |t: chrono::DateTime<chrono::Utc>| {
        let secs = (now - t).num_seconds().max(0);
        if secs < 120 {
            format!("{secs} s")
        } else {
            format!("{} min", secs / 60)
        }
    };
    let bound = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    view! {
        <section class="panel">
            <h2>{t!(i18n, queues_title)}</h2>
            {if queues.is_empty() {
                view! { <p class="muted" data-testid="no-queues">{t!(i18n, no_queued_work)}</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll"><table class="grid" data-testid="queues">
                        <thead><tr>
                            <th>{t!(i18n, queue)}</th><th>{t!(i18n, pending_tasks)}</th>
                            <th>{t!(i18n, running_tasks)}</th><th>{t!(i18n, jobs_title)}</th>
                        </tr></thead>
                        <tbody>
                            {queues.into_iter().map(|q| view! {
                                <tr><td><code>{q.queue}</code></td><td>{q.pending}</td><td>{q.running}</td><td>{q.jobs}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
        <section class="panel">
            <h2>{t!(i18n, workers_seen)}</h2>
            {if workers.is_empty() {
                view! { <p class="muted" data-testid="no-workers">{t!(i18n, no_workers)}</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll"><table class="grid" data-testid="workers">
                        <thead><tr>
                            <th>{t!(i18n, worker)}</th><th>{t!(i18n, queues_title)}</th>
                            <th>{t!(i18n, memory_mb)}</th><th>{t!(i18n, cpus)}</th>
                            <th>{t!(i18n, tasks_held)}</th><th>{t!(i18n, last_seen)}</th><th>{t!(i18n, token)}</th>
                        </tr></thead>
                        <tbody>
                            {workers.into_iter().map(|w| {
                                let quiet = (now - w.last_seen_at).num_seconds() > 60;
                                view! {
                                    <tr class:quiet=quiet>
                                        <td><code>{w.id}</code></td>
                                        <td>{w.queues.join(", ")}</td>
                                        <td>{bound(w.memory_mb.map(|m| m.to_string()))}</td>
                                        <td>{bound(w.cpus.map(|c| format!("{c}")))}</td>
                                        <td>{w.held}</td>
                                        <td>{ago(w.last_seen_at)}</td>
                                        <td class="muted">{w.actor}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}
