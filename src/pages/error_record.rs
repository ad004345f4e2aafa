//! `/recovery/:id`: one error record: its message and stack, its recovery attempts, and
//! what a recovery would run again (`manualRecover`'s dry run, drawn on the job's task
//! graph) with the operators' recover button. A live region on the job's event stream, so a
//! recovery's progress shows as it happens.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

use crate::api::recovery::{error_record, RecoverRecord};
use crate::i18n::*;
use crate::model::{ErrorRecordView, Permission, RecoveryPlan, RerunReason};
use crate::ui::form_error::FormError;
use crate::ui::signed_in::signed_in;
use crate::ui::status_badge::StatusBadge;
use crate::ui::time::RelativeTime;
use leptos::server_fn::ServerFn;

#[component]
pub fn ErrorRecordPage() -> impl IntoView {
    let i18n = use_i18n();
    let params = use_params_map();
    let id = params
        .read_untracked()
        .get("id")
        .and_then(|raw| raw.parse::<Uuid>().ok());
    let record = Resource::new(
        move || id,
        |id| async move {
            match id {
                Some(id) => error_record(id).await,
                None => Ok(None),
            }
        },
    );
    let may_act = signed_in().is_some_and(|user| user.may(Permission::ActOnJobs));
    view! {
        <p class="back"><a href="/recovery">"← "{t!(i18n, back_to_recovery)}</a></p>
        <FormError />
        <div data-live="record">
            <Transition fallback=move || view! { <p class="muted">{t!(i18n, loading)}</p> }>
                {move || Suspend::new(async move {
                    match record.await {
                        Ok(Some(record)) => view! { <RecordDetail record may_act /> }.into_any(),
                        Ok(None) => view! {
                            <Title text="Jobdeck" />
                            <h1 data-testid="record-not-found">{t!(i18n, record_missing)}</h1>
                        }.into_any(),
                        Err(_) => view! {
                            <Title text="Jobdeck" />
                            <p class="load-failed">{t!(i18n, load_failed)}</p>
                        }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

#[component]
fn RecordDetail(record: ErrorRecordView, may_act: bool) -> impl IntoView {
    let i18n = use_i18n();
    let ErrorRecordView {
        now,
        id,
        error_type,
        error_class,
        message,
        stack_trace,
        pattern,
        fingerprint,
        at,
        retry_count,
        recovery_status,
        recovered_at,
        worker_id,
        attempts,
        job_id,
        job_label,
        job_status,
        task_name,
        task_status,
        job_key,
        plan,
    } = record;
    let stream = job_id.map(|job| format!("/v1/jobs/{job}/events"));
    let owner = match (job_id, &job_key) {
        (Some(job), _) => view! {
            <a href=format!("/jobs/{job}") data-testid="record-job">{job_label.clone().unwrap_or_else(|| job.to_string())}</a>
            {job_status.map(|status| view! { " " <span data-testid="record-job-status"><StatusBadge status /></span> })}
        }
        .into_any(),
        (None, Some(key)) => view! {
            <a href=crate::model::incident_path(key)>{key.clone()}</a>
        }
        .into_any(),
        (None, None) => "—".into_any(),
    };
    view! {
        <Title text=format!("{error_type} | Jobdeck") />
        <span hidden data-live-stream=stream></span>
        <header class="job-head">
            <span data-testid="record-status"><StatusBadge status=recovery_status /></span>
            <h1><code>{error_type.clone()}</code>" "<small class="muted">{error_class}</small></h1>
        </header>
        <p class="record-message" data-testid="record-message">{message}</p>
        <dl class="job-facts wide">
            <div><dt>{t!(i18n, job)}</dt><dd>{owner}</dd></div>
            {task_name.map(|task| view! {
                <div><dt>{t!(i18n, task)}</dt><dd><code>{task}</code>{task_status.map(|status| view! { " " <StatusBadge status /> })}</dd></div>
            })}
            <div><dt>{t!(i18n, when)}</dt><dd><RelativeTime at now /></dd></div>
            <div><dt>{t!(i18n, retry_count)}</dt><dd>{retry_count}</dd></div>
            {worker_id.map(|w| view! { <div><dt>{t!(i18n, worker)}</dt><dd><code>{w}</code></dd></div> })}
            {recovered_at.map(|at| view! { <div><dt>{t!(i18n, recovered_at)}</dt><dd><RelativeTime at now /></dd></div> })}
            <div><dt>{t!(i18n, pattern)}</dt><dd>
                <a href=format!("/recovery?fingerprint={fingerprint}&status=all&period=30d")>{pattern}</a>
            </dd></div>
        </dl>
        {match plan {
            // A record being recovered, or recovered, has nothing left to recover.
            Some(plan) => {
                view! { <PlanPanel id plan may_act=may_act && recovery_status.recoverable() /> }.into_any()
            }
            None => view! { <p class="muted">{t!(i18n, script_recovers)}</p> }.into_any(),
        }}
        <section class="panel">
            <h2>{t!(i18n, recovery_attempts)}</h2>
            {if attempts.is_empty() {
                view! { <p class="muted" data-testid="no-attempts">{t!(i18n, no_attempts)}</p> }.into_any()
            } else {
                view! {
                    <ul class="runs" data-testid="attempts">
                        {attempts.into_iter().map(|a| view! {
                            <li class="run">
                                {a.timestamp.map(|at| view! { <RelativeTime at now /> })}
                                <span>{a.method}</span>
                                <span class="muted">{a.actor}</span>
                                <span class="run-message">{a.result}</span>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
        <section class="panel">
            <h2>{t!(i18n, stack_trace)}</h2>
            {match stack_trace {
                Some(stack) => view! { <pre class="stack" data-testid="stack">{stack}</pre> }.into_any(),
                None => view! { <p class="muted">{t!(i18n, no_stack)}</p> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn PlanPanel(id: Uuid, plan: RecoveryPlan, may_act: bool) -> impl IntoView {
    let i18n = use_i18n();
    let RecoveryPlan {
        rerun,
        kept,
        refusal,
        graph_svg,
        tasks,
    } = plan;
    let reason = move |r: RerunReason| match r {
        RerunReason::Failed => t_string!(i18n, reason_failed),
        RerunReason::Downstream => t_string!(i18n, reason_downstream),
        RerunReason::Unfinished => t_string!(i18n, reason_unfinished),
    };
    let allowed = refusal.is_none();
    view! {
        <section class="panel" data-testid="recovery-plan">
            <h2>{t!(i18n, recovery_plan)}</h2>
            {refusal.map(|why| view! {
                <p class="notice" data-testid="plan-refused">{t!(i18n, refused_now)}" "{why}</p>
            })}
            {(!rerun.is_empty()).then(|| view! {
                <p>
                    {t!(i18n, rerun_set)}": "
                    <span data-testid="rerun-set">
                        {rerun.into_iter().map(|(name, r)| view! {
                            <span class="rerun-task" data-rerun=r.as_str()><code>{name}</code>" "<small class="muted">{reason(r)}</small></span>
                        }).collect_view()}
                    </span>
                    <span class="muted small">{format!(" · {kept} ")}{t!(i18n, kept_tasks)}</span>
                </p>
            })}
            {if graph_svg.is_empty() {
                (tasks > 0).then(|| view! { <p class="muted small">{t!(i18n, graph_too_big)}</p> }).into_any()
            } else {
                view! { <div class="graph-scroll" data-testid="task-graph" inner_html=graph_svg></div> }.into_any()
            }}
            {may_act.then(|| view! {
                <form method="post" action=RecoverRecord::url() class="recover-form" data-testid="recover-form">
                    <input type="hidden" name="error_record_id" value=id.to_string() />
                    <label><input type="checkbox" name="force" />" "{t!(i18n, force)}</label>
                    <label><input type="checkbox" name="ignore_conditions" />" "{t!(i18n, ignore_conditions)}</label>
                    // A refused plan may still go with force or ignore_conditions ticked; the
                    // server says why if not.
                    <button type="submit" class:primary=allowed data-action="recover">{t!(i18n, recover)}</button>
                </form>
            })}
        </section>
    }
}
