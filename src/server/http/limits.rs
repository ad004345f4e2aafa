//! Limits every route gets, present and future: they wrap the whole router, so the count of
//! requests in flight is one count for the portal. The header-read timeout is set on the
//! connection instead (`serve.rs`), since headers arrive before there is a request.

use std::convert::Infallible;

use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{BoxError, Service, ServiceBuilder};
use tower_http::timeout::RequestBodyTimeoutLayer;

use super::error::{ApiError, OVERLOADED};
use crate::server::config::HttpLimits;

/// The router behind the load limits: past `max_in_flight` requests a new one is refused at
/// once with 503 (shed, not queued), and a body that pauses longer than `body_timeout`
/// fails to read (the webhook answers 408).
pub fn with_limits<B>(
    router: Router,
    limits: &HttpLimits,
) -> impl Service<Request<B>, Response = Response, Error = Infallible, Future: Send> + Clone + Send
where
    B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|error: BoxError| async move {
            if error.is::<tower::load_shed::error::Overloaded>() {
                ApiError::Unavailable(OVERLOADED).into_response()
            } else {
                tracing::error!(%error, "request failed in the HTTP layer");
                ApiError::Internal("internal error".into()).into_response()
            }
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(limits.max_in_flight))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .service(router)
}
