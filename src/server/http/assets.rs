//! The site's build output under `/pkg`: served as cargo-leptos wrote it, brotli or gzip
//! when the browser takes it and the release build precompressed it (`--precompress`).
//! With hashed file names (`hash-files`, the default here) a file's name changes with its
//! content, so browsers may keep it for a year without asking again.

use std::path::Path;

use axum::http::{header, HeaderValue, Response};
use axum::Router;
use leptos::config::LeptosOptions;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// A year, and never revalidated: the name is the version.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Unhashed names can change content under the same URL: ask each time (a 304 is cheap).
const REVALIDATE: &str = "no-cache";

/// The stylesheet's URL: its hashed name from the hash file beside the binary (what
/// Leptos's `HashedStylesheet` would read on every render), read once at start.
pub fn stylesheet_href(options: &LeptosOptions) -> String {
    let hash = options
        .hash_files
        .then(|| {
            let exe = std::env::current_exe().ok()?;
            let hashes = std::fs::read_to_string(exe.parent()?.join(&*options.hash_file)).ok()?;
            hashes.lines().find_map(|line| {
                let (kind, hash) = line.split_once(':')?;
                (kind.trim() == "css").then(|| format!(".{}", hash.trim()))
            })
        })
        .flatten()
        .unwrap_or_default();
    format!(
        "/{}/{}{hash}.css",
        options.site_pkg_dir, options.output_name
    )
}

pub fn pkg_router<S: Clone + Send + Sync + 'static>(options: &LeptosOptions) -> Router<S> {
    let dir = Path::new(&*options.site_root).join(&*options.site_pkg_dir);
    let policy = HeaderValue::from_static(if options.hash_files {
        IMMUTABLE
    } else {
        REVALIDATE
    });
    // Only found files are cacheable: a 404 for a file not yet deployed must not stick.
    let cache_control =
        move |response: &Response<_>| response.status().is_success().then(|| policy.clone());
    let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    Router::new().nest_service(
        &format!("/{}", options.site_pkg_dir),
        tower::ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                cache_control,
            ))
            .service(files),
    )
}
