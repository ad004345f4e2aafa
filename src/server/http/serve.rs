//! The accept loop: axum's `serve` has no header-read timeout and no bound on the shutdown
//! drain, so connections are served by hyper directly, each watched for graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

use crate::server::config::HttpLimits;

/// Serves `app` until `shutdown` resolves, then stops accepting, lets requests in flight
/// finish for up to `limits.shutdown_drain`, and closes whatever is still open (logged).
/// Each request carries the client's address as `ConnectInfo<SocketAddr>`.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: Service<Request<hyper::body::Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    // Every connection task holds a clone: the strong count tells how many are still open.
    let open = Arc::new(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = app.clone().map_request(move |mut request: Request<_>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        let open = open.clone();
        tokio::spawn(async move {
            let _ = connection.await;
            drop(open);
        });
    }
    drop(listener);
    let in_flight = Arc::strong_count(&open) - 1;
    tracing::info!(
        connections = in_flight,
        "shutting down: no new connections; finishing requests in flight"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("every request in flight was answered"),
        () = tokio::time::sleep(limits.shutdown_drain) => tracing::warn!(
            connections = Arc::strong_count(&open) - 1,
            "shutdown drain of {:?} ran out: closing connections with requests still in flight",
            limits.shutdown_drain
        ),
    }
    Ok(())
}
