//! `PipelineProgress`: seed 002's eight stages, each pending, running, done or failed; the
//! running one says how long it has run and how that compares with its usual time.

use leptos::prelude::*;

use crate::i18n::*;
use crate::model::{StageProgress, StageState};
use crate::ui::time::duration_text;

/// A running stage this much over its usual time is marked slow.
const SLOW: f64 = 1.5;

#[component]
pub fn PipelineProgress(stages: Vec<StageProgress>) -> impl IntoView {
    let i18n = use_i18n();
    let usual_label = untrack(|| t_string!(i18n, usual).to_string());
    view! {
        <ol class="pipeline" data-testid="pipeline">
            {stages.into_iter().map(|stage| {
                let slow = stage.state == StageState::Running
                    && matches!((stage.elapsed_ms, stage.usual_ms), (Some(e), Some(u)) if u > 0 && e as f64 > u as f64 * SLOW);
                let class = format!("pipe pipe-{}{}", stage.state.as_str(), if slow { " slow" } else { "" });
                let took = stage.elapsed_ms.map(duration_text);
                let usual = (stage.state == StageState::Running)
                    .then_some(stage.usual_ms)
                    .flatten()
                    .map(|ms| format!("{} {}", usual_label, duration_text(ms)));
                let key = stage.name.clone();
                view! {
                    <li class=class data-stage=key data-state=stage.state.as_str()
                        aria-current=(stage.state == StageState::Running).then_some("step")>
                        <span class="pipe-name">{stage.name}</span>
                        <span class="pipe-time">{took}</span>
                        {usual.map(|usual| view! { <span class="pipe-usual">{usual}</span> })}
                    </li>
                }
            }).collect_view()}
        </ol>
    }
}
