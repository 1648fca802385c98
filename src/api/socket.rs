//! The JSON socket (`Sensu::Client::Socket`), TCP and UDP on the same address.
//!
//! TCP: received bytes accumulate; after every chunk a 0.5 s watchdog restarts, `ping`
//! (whitespace-trimmed) is answered `pong`, and the whole buffer is tried as JSON (once
//! an object or array in it has closed, see [`Framing`]). Once
//! it parses, the result (or array of results) is processed and answered `ok`, or
//! `invalid` if it fails validation; if it never parses, the watchdog answers `invalid`
//! (at once when the bytes there already cannot be JSON, whatever follows them). At most
//! 64 connections are served at once, each for at most a minute.
//! Replies are bare words without a newline, and the connection is then closed.
//! UDP: each datagram is processed alone and never answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::{ApiState, LocalResultError, process_local_results};

/// sensu-client's watchdog: silence this long after a chunk ends the exchange.
pub const WATCHDOG: Duration = Duration::from_millis(500);
/// A connection that sends nothing at all is closed after this long, and whatever it sends,
/// its exchange ends this long after it was accepted (`invalid` if it sent anything).
const IDLE: Duration = Duration::from_secs(60);
/// Largest buffer accepted on one connection.
const MAX_BUFFER: usize = 16 * 1024 * 1024;

/// Bind TCP and UDP on `addr` and serve until `shutdown`. Returns the TCP address.
pub async fn start(addr: SocketAddr, state: Arc<ApiState>, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    let tcp = TcpListener::bind(addr).await?;
    let bound = tcp.local_addr()?;
    let udp = UdpSocket::bind(bound).await?;
    let tcp_state = state.clone();
    let tcp_shutdown = shutdown.clone();
    let slots = Arc::new(tokio::sync::Semaphore::new(crate::serve::MAX_CONNECTIONS));
    tokio::spawn(async move {
        while let Some((stream, peer, slot)) = crate::serve::accept(&tcp, &slots, &tcp_shutdown).await {
            let state = tcp_state.clone();
            tokio::spawn(async move {
                serve_tcp(stream, peer, state).await;
                drop(slot);
            });
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                received = udp.recv_from(&mut buf) => {
                    if let Ok((n, peer)) = received {
                        serve_datagram(&buf[..n], peer, &state).await;
                    }
                }
            }
        }
    });
    tracing::info!(%bound, "listening for check results (TCP and UDP)");
    Ok(bound)
}

/// Buffers at most this long are tried as `ping` and as a bare JSON scalar after every chunk.
const SMALL: usize = 64 * 1024;

/// Follows the bytes as they arrive, in one pass, to tell when the buffer may hold a whole
/// JSON object or array: only then is it parsed. (Parsing the whole buffer after every
/// 16 KiB chunk is quadratic: seconds of CPU for a 16 MiB result, on the runtime thread.)
#[derive(Default)]
struct Framing {
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// A `{` or `[` has been seen outside strings.
    opened: bool,
}

impl Framing {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.opened = true;
                }
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    /// Whether the `len` bytes fed so far may parse as one JSON document: an object or array
    /// that has closed, or (anything else) a small buffer.
    fn may_be_complete(&self, len: usize) -> bool {
        if self.opened { self.depth == 0 && !self.in_string } else { len <= SMALL }
    }
}

async fn serve_tcp(mut stream: TcpStream, peer: SocketAddr, state: Arc<ApiState>) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16384];
    let mut framing = Framing::default();
    // Bytes of `buffer` known to be valid UTF-8; `None` once a bad sequence was reported.
    let mut utf8_checked = Some(0);
    // Whatever it sends (a byte every 0.4 s keeps the watchdog from firing), the exchange ends.
    let deadline = tokio::time::Instant::now() + IDLE;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let wait = if buffer.is_empty() { IDLE } else { WATCHDOG }.min(left);
        let n = match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
            Err(_) => {
                if !buffer.is_empty() {
                    tracing::warn!(%peer, "discarding data buffer for sender and closing connection");
                    let _ = stream.write_all(b"invalid").await;
                }
                break;
            }
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
        };
        buffer.extend_from_slice(&chunk[..n]);
        framing.feed(&chunk[..n]);
        if buffer.len() > MAX_BUFFER {
            let _ = stream.write_all(b"invalid").await;
            break;
        }
        if buffer.len() <= SMALL && String::from_utf8_lossy(&buffer).trim() == "ping" {
            let _ = stream.write_all(b"pong").await;
            break;
        }
        if let Some(checked) = utf8_checked {
            // Only the new bytes; a sequence cut at the end of the chunk waits for the next.
            utf8_checked = match std::str::from_utf8(&buffer[checked..]) {
                Ok(_) => Some(buffer.len()),
                Err(e) if e.error_len().is_none() => Some(checked + e.valid_up_to()),
                Err(_) => {
                    tracing::warn!(%peer, "data from socket is not a valid UTF-8 sequence, processing it anyways");
                    None
                }
            };
        }
        if !framing.may_be_complete(buffer.len()) {
            continue;
        }
        let value = match serde_json::from_slice::<Value>(&buffer) {
            Ok(value) => value,
            // Cut short, or not a document that opened with `{` or `[` (`pi` may become
            // `ping`, which sensu-client waits for): the rest may come.
            Err(e) if e.is_eof() || !framing.opened => continue,
            // Anything else is in the bytes already there, and no byte to come mends it:
            // answered now, not parsed again (from the start) at every chunk to come.
            Err(_) => {
                tracing::warn!(%peer, "discarding data buffer for sender and closing connection (not JSON)");
                let _ = stream.write_all(b"invalid").await;
                break;
            }
        };
        let reply: &[u8] = match process_local_results(&state, value).await {
            Ok(()) => b"ok",
            Err(error) => {
                log_failure(peer, &error);
                b"invalid"
            }
        };
        let _ = stream.write_all(reply).await;
        break;
    }
    let _ = stream.shutdown().await;
}

async fn serve_datagram(data: &[u8], peer: SocketAddr, state: &ApiState) {
    if String::from_utf8_lossy(data).trim() == "ping" {
        return;
    }
    match serde_json::from_slice::<Value>(data) {
        Ok(value) => {
            if let Err(error) = process_local_results(state, value).await {
                log_failure(peer, &error);
            }
        }
        Err(_) => tracing::warn!(%peer, "discarding data buffer for sender (not JSON)"),
    }
}

fn log_failure(peer: SocketAddr, error: &LocalResultError) {
    let message = match error {
        LocalResultError::NotAnObject => "check result must be a JSON object",
        LocalResultError::Invalid(message) => message,
    };
    tracing::warn!(%peer, error = message, "failed to process check result from socket");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete_after(chunks: &[&str]) -> Vec<bool> {
        let mut framing = Framing::default();
        let mut len = 0;
        chunks
            .iter()
            .map(|c| {
                framing.feed(c.as_bytes());
                len += c.len();
                framing.may_be_complete(len)
            })
            .collect()
    }

    #[test]
    fn framing_follows_nesting_strings_and_escapes() {
        assert_eq!(complete_after(&[r#"{"name":"a","#, r#""output":"}]{[ \" }"}"#]), [false, true]);
        assert_eq!(
            complete_after(&[r#"[{"name":"a"},"#, r#"{"name":"b","output":"x\\"}"#, "]\n"]),
            [false, false, true]
        );
        assert_eq!(complete_after(&["  ", "{", "}"]), [true, false, true]);
        // Anything that is not an object or array is tried while it is small.
        assert_eq!(complete_after(&["pi", "ng"]), [true, true]);
        let big = "x".repeat(SMALL);
        assert_eq!(complete_after(&[&big, "1"]), [true, false]);
    }
}
