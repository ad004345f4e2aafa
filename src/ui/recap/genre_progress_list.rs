//! `GenreProgressList`: each genre of a recap job with its status and article and cluster
//! counts. A compact grid, so thirty or more fit without a scroll box of their own.

use leptos::prelude::*;

use crate::i18n::*;
use crate::model::{GenreProgress, TaskStatus};
use crate::ui::status_badge::StatusBadge;

#[component]
pub fn GenreProgressList(genres: Vec<GenreProgress>) -> impl IntoView {
    let i18n = use_i18n();
    if genres.is_empty() {
        return view! { <p class="muted small">{t!(i18n, no_genres)}</p> }.into_any();
    }
    let done = genres
        .iter()
        .filter(|g| g.status == TaskStatus::Completed)
        .count();
    let total = genres.len();
    view! {
        <h3>{t!(i18n, genres)}" "<small class="muted count">{format!("{done}/{total}")}</small></h3>
        <ul class="genres" data-testid="genres">
            {genres.into_iter().map(|genre| {
                let key = genre.genre.clone();
                view! {
                <li class=format!("genre genre-{}", genre.status.as_str()) data-genre=key
                    title=genre.message.clone()>
                    <span class="genre-name">{genre.genre}</span>
                    <StatusBadge status=genre.status />
                    <span class="genre-counts muted">
                        {format!("{} / {}", genre.articles, genre.clusters)}
                    </span>
                </li>
            }}).collect_view()}
        </ul>
        <p class="muted small">{t!(i18n, genre_counts_legend)}</p>
    }
    .into_any()
}
