//! A bound on every page render and server function: the answer is rendered in full within
//! `JOBDECK_RENDER_TIMEOUT_MS` or it is logged with its path and answered 503 (504 for a
//! server function that may have changed something), never left open. A render that never ends (the stall of leptos-rs/leptos#4851) would otherwise hold
//! a connection and a slot of `max_in_flight` for ever. The body is read inside the bound,
//! so a response whose headers went out but whose stream stalls is caught too.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Far above any page; a page larger than this is a bug worth a 500.
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

pub const RENDER_TOO_SLOW: &str = "the page did not finish rendering in time";

pub async fn render_bound(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    let render = async {
        let (parts, body) = next.run(request).await.into_parts();
        axum::body::to_bytes(body, MAX_PAGE_BYTES)
            .await
            .map(|bytes| Response::from_parts(parts, Body::from(bytes)))
    };
    match tokio::time::timeout(limit, render).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            tracing::error!(path, %error, "a page's body failed");
            ApiError::Internal("internal error".into()).into_response()
        }
        Err(_) => {
            tracing::error!(
                path,
                limit_ms = limit.as_millis() as u64,
                "{RENDER_TOO_SLOW}"
            );
            // A server function that changes something may have done it before the bound:
            // 504 says so; a read was simply not answered (503, retry).
            if reads {
                ApiError::Unavailable(RENDER_TOO_SLOW).into_response()
            } else {
                ApiError::OutcomeUnknown(
                    "the server did not finish in time; it may or may not have been done".into(),
                )
                .into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Bytes;
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    /// One chunk, then nothing ever again.
    fn stalling() -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
        let mut sent = false;
        futures::stream::poll_fn(move |_| {
            if sent {
                std::task::Poll::Pending
            } else {
                sent = true;
                std::task::Poll::Ready(Some(Ok(Bytes::from_static(b"<html><body>"))))
            }
        })
    }

    fn app() -> Router {
        Router::new()
            .route("/fine", get(|| async { "<html></html>" }))
            .route("/never", get(std::future::pending::<&'static str>))
            .route(
                "/write",
                axum::routing::post(std::future::pending::<&'static str>),
            )
            // Headers go out at once, then the body stalls for ever.
            .route(
                "/stalls",
                get(|| async { Response::new(Body::from_stream(stalling())) }),
            )
            .route_layer(from_fn_with_state(Duration::from_millis(100), render_bound))
    }

    async fn status_of(path: &str) -> u16 {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(5), app().oneshot(request))
            .await
            .expect("the bound answered")
            .unwrap();
        response.status().as_u16()
    }

    #[tokio::test]
    async fn a_render_that_never_finishes_is_answered_503() {
        assert_eq!(status_of("/fine").await, 200);
        assert_eq!(status_of("/never").await, 503);
        assert_eq!(status_of("/stalls").await, 503);
        let post = Request::builder()
            .method("POST")
            .uri("/write")
            .body(Body::empty())
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(5), app().oneshot(post))
            .await
            .expect("the bound answered")
            .unwrap();
        assert_eq!(response.status().as_u16(), 504);
    }
}
