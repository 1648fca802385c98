//! Servers with bounds, for the local API's sockets and the scheduler's receivers: at most
//! [`MAX_CONNECTIONS`] connections at once (more wait to be accepted), a failed accept (out
//! of file descriptors, say) followed by a pause rather than a spin ([`accept`]), and for
//! HTTP/1.1 a client's headers within [`HEADER_TIMEOUT`] ([`serve_http`]) and, for the
//! handlers that take one, its body within [`BODY_TIMEOUT`] ([`read_body`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send its request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's body, once its headers came.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request's body was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// Not all there within [`BODY_TIMEOUT`].
    Late,
    /// Larger than the handler takes, or the connection failed.
    Refused,
}

/// A request's body, at most `max` bytes, within [`BODY_TIMEOUT`].
pub async fn read_body(body: Incoming, max: usize) -> Result<Bytes, Unread> {
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, max).collect()).await {
        Ok(Ok(body)) => Ok(body.to_bytes()),
        Ok(Err(_)) => Err(Unread::Refused),
        Err(_) => Err(Unread::Late),
    }
}

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
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        while let Some((stream, _, slot)) = accept(&listener, &slots, &stop).await {
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

/// The next connection on `listener`, with one of `slots` held for it (while every slot is
/// held, connections wait in the kernel's backlog); `None` once `stop` fires. A failed
/// accept (out of file descriptors, say) is logged and tried again after a pause, not in a
/// spin.
pub async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    stop: &CancellationToken,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    loop {
        let slot = tokio::select! {
            () = stop.cancelled() => return None,
            slot = slots.clone().acquire_owned() => slot.ok()?,
        };
        let accepted = tokio::select! {
            () = stop.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => return Some((stream, peer, slot)),
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
