//! HTTP/1.1 servers with bounds, for the local API's HTTP socket and the scheduler's
//! receiver: at most [`MAX_CONNECTIONS`] connections at once (more wait to be accepted), a
//! client's headers within [`HEADER_TIMEOUT`], and a failed accept (out of file descriptors,
//! say) followed by a pause rather than a spin. Bodies are read by the handlers, each under
//! its own deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send its request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Bind `listen` and serve HTTP/1.1 until `stop`, every request answered by `handle` (one
/// request per connection unless `keep_alive`). Returns the bound address.
pub async fn serve_http<H, F>(
    listen: SocketAddr,
    stop: CancellationToken,
    keep_alive: bool,
    handle: H,
) -> std::io::Result<SocketAddr>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let slot = tokio::select! {
                () = stop.cancelled() => return,
                slot = slots.clone().acquire_owned() => slot,
            };
            let Ok(slot) = slot else { return };
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let answer = handle(req);
                    async move { Ok::<_, std::convert::Infallible>(answer.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .keep_alive(keep_alive)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                drop(slot);
            });
        }
    });
    Ok(bound)
}
