//! One HTTP/1.1 exchange on an open connection, as the built-in HTTP check and the courier
//! make it: the request written in one piece, the response head parsed with `httparse`, the
//! body read as it is framed (`Content-Length`, chunked, or up to the end of the connection).
//!
//! A check makes exactly one request per connection and drops the connection after it, so
//! none of a general client's machinery is needed: hyper's client connection keeps about
//! 26 KB per connection whatever the response (a request channel block, an 8 KB header
//! buffer and an 8 KB read buffer) and runs a dispatcher beside the exchange. Here one
//! buffer starts at 2 KB, grows only for a larger response, and becomes the body.
//!
//! The wire is what hyper wrote: `METHOD target HTTP/1.1`, the headers as given (lower
//! case names), `content-length` added for a non-empty body. Responses are read as RFC 9112
//! says a client reads them: 1xx heads skipped (101 is final), no body after `HEAD` or a
//! 1xx/204/304, `Transfer-Encoding` ending in `chunked` before `Content-Length`, differing
//! `Content-Length` values refused, a body without either read to the end of the
//! connection, and a folded field line (obs-fold) read as one value with spaces. The head
//! may take up to [`MAX_HEAD`] bytes and 100 headers (hyper's limits).

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Method};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::failure::{CheckFailure, Reason};

/// The largest response head read (status line, headers and their line ends).
pub const MAX_HEAD: usize = 8192 + 4096 * 100;
/// The most headers in a response head.
const MAX_HEADERS: usize = 100;
/// The longest header name taken (`http::HeaderName`'s limit).
const MAX_NAME: usize = (1 << 16) - 1;
/// The buffer's first size: a typical check's whole response fits.
const FIRST_READ: usize = 2048;
/// The largest chunk-size line (with extensions) read.
const MAX_CHUNK_LINE: usize = 4096;
/// The largest trailer section read (hyper's limit).
const MAX_TRAILERS: usize = 16 * 1024;

/// The request's bytes: request line, headers, then `host` when given (it is not among the
/// headers), the body framed: as one chunk when the given `transfer-encoding` ends with
/// `chunked`, else with a `content-length` of its real size (for a non-empty body, or in place
/// of a given one: a wrong given length would leave the server waiting).
pub fn request(method: &Method, target: &str, headers: &HeaderMap, host: Option<&str>, body: &[u8]) -> Vec<u8> {
    let names: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    let host_len = host.map_or(0, |h| h.len() + 8);
    let mut out = Vec::with_capacity(method.as_str().len() + target.len() + names + host_len + body.len() + 64);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == http::header::CONTENT_LENGTH {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(host) = host {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if request_ends_chunked(headers) == Some(true) {
        out.extend_from_slice(b"\r\n");
        if !body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        return out;
    }
    if !body.is_empty() || headers.contains_key(http::header::CONTENT_LENGTH) {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Whether the `transfer-encoding` values `codings` end with `chunked`; `None` without one.
pub fn ends_chunked<'a>(codings: impl Iterator<Item = &'a [u8]>) -> Option<bool> {
    let mut codings = codings.peekable();
    codings.peek()?;
    // Empty list items are no codings (RFC 9110, 5.6.1): `chunked,` ends with `chunked`.
    let last = codings.filter_map(text).flat_map(|v| v.split(',')).map(str::trim).filter(|c| !c.is_empty()).last();
    Some(last.is_some_and(|coding| coding.eq_ignore_ascii_case("chunked")))
}

/// [`ends_chunked`] for a request's headers.
pub fn request_ends_chunked(headers: &HeaderMap) -> Option<bool> {
    ends_chunked(headers.get_all(http::header::TRANSFER_ENCODING).iter().map(|v| v.as_bytes()))
}

/// A header value as text: visible ASCII and tabs only, as `HeaderValue::to_str` reads one.
pub fn text(value: &[u8]) -> Option<&str> {
    value.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)).then(|| std::str::from_utf8(value).ok()).flatten()
}

/// A response's headers as received (repeats and order kept): names and values are slices of
/// the head's bytes, found by one parse (an `http::HeaderMap` took a name lookup, a hash and
/// two allocations per response, for the two or three headers a check reads).
#[derive(Debug)]
pub struct Headers {
    raw: Bytes,
    spans: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

impl Headers {
    /// The values of header `name` (any case), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.spans
            .iter()
            .filter(move |(n, _)| self.raw[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| &self.raw[v.clone()])
    }

    /// The first value of `name` when it is text (see [`text`]).
    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.get_all(name).next().and_then(text)
    }
}

/// A response's status and headers.
#[derive(Debug)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The headers, in the order received.
    pub headers: Headers,
    /// An HTTP/1.0 response.
    http10: bool,
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Up to the end of the connection.
    Close,
}

/// One connection, for one exchange.
pub struct Connection<S> {
    stream: S,
    buf: BytesMut,
}

fn http_failure(message: String) -> CheckFailure {
    CheckFailure::new(Reason::Http, message)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// A connection over `stream` (connected, TLS set up if any).
    pub fn new(stream: S) -> Self {
        Self { stream, buf: BytesMut::new() }
    }

    /// Write the request ([`request`]'s bytes); a failure is [`sending_failure`]'s to tell,
    /// once it is known the server did not answer anyway.
    pub async fn send(&mut self, request: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(request).await?;
        self.stream.flush().await
    }

    /// Read at most `room` (at least 1) more bytes into the buffer: the number read, 0 at the
    /// end of the stream. The buffer grows by doubling (from [`FIRST_READ`]), to at most
    /// `room` more bytes, so a limit is exact.
    async fn fill(&mut self, room: usize) -> std::io::Result<usize> {
        let spare = self.buf.capacity() - self.buf.len();
        if spare < 512 {
            self.buf.reserve(self.buf.len().max(FIRST_READ).min(room.max(512)));
        }
        (&mut self.stream).take(room.max(1) as u64).read_buf(&mut self.buf).await
    }

    /// Read the response head (1xx heads other than 101 skipped).
    pub async fn head(&mut self) -> Result<Head, CheckFailure> {
        loop {
            // Parsed again only when a line has ended since the last try: a head trickled in
            // byte by byte costs a parse per line (at most 100 header lines), not per read.
            let (mut scanned, mut blank) = (0usize, 0usize);
            let head = loop {
                // Empty lines before the status line (which httparse skips) are taken out of
                // the buffer, counted in the head's size: else each line ending later would
                // have them all parsed again.
                let leading = self.buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
                if leading > 0 {
                    self.buf.advance(leading);
                    blank += leading;
                    scanned = scanned.saturating_sub(leading);
                }
                if self.buf[scanned..].contains(&b'\n')
                    && let Some(head) = parse_head(&mut self.buf)?
                {
                    break head;
                }
                if blank + self.buf.len() >= MAX_HEAD {
                    return Err(http_failure(format!("response head larger than {MAX_HEAD} bytes")));
                }
                scanned = self.buf.len();
                match self.fill(MAX_HEAD - blank - self.buf.len()).await {
                    Ok(0) if self.buf.is_empty() => {
                        return Err(http_failure("no HTTP response: the server closed the connection".into()));
                    }
                    Ok(0) => {
                        return Err(http_failure(
                            "no HTTP response: the connection closed in the response head".into(),
                        ));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(http_failure(format!("no HTTP response: {e}"))),
                }
            };
            if head.status >= 200 || head.status == 101 {
                return Ok(head);
            }
        }
    }

    /// Read the body of the response whose head is `head` (to a `HEAD` request if
    /// `to_head`: none then); larger than `max` bytes fails with [`Reason::BodySize`].
    pub async fn body(&mut self, to_head: bool, head: &Head, max: usize) -> Result<Bytes, CheckFailure> {
        let too_large =
            || CheckFailure::new(Reason::BodySize, format!("{}: body larger than {max} bytes", head.status));
        match framing(to_head, head)? {
            Framing::Empty => Ok(Bytes::new()),
            Framing::Length(length) => {
                let length = usize::try_from(length).ok().filter(|l| *l <= max).ok_or_else(too_large)?;
                while self.buf.len() < length {
                    self.read_body_bytes(length - self.buf.len()).await?;
                }
                Ok(self.buf.split_to(length).freeze())
            }
            Framing::Close => loop {
                if self.buf.len() > max {
                    return Err(too_large());
                }
                if self.fill(max.saturating_add(1) - self.buf.len()).await.map_err(reading)? == 0 {
                    return Ok(std::mem::take(&mut self.buf).freeze());
                }
            },
            // Boxed: its state (the body being put together, the size line, the trailers) is
            // the largest of the four; inline, every check's future would carry it.
            Framing::Chunked => Box::pin(self.chunked(max, too_large)).await,
        }
    }

    /// Read at least one more byte of a body that needs `left` more.
    async fn read_body_bytes(&mut self, left: usize) -> Result<(), CheckFailure> {
        match self.fill(left).await {
            Ok(0) => Err(http_failure("reading the body: the connection closed before the body was complete".into())),
            Ok(_) => Ok(()),
            Err(e) => Err(reading(e)),
        }
    }

    /// A chunked body put together (trailers read and dropped).
    async fn chunked(&mut self, max: usize, too_large: impl Fn() -> CheckFailure) -> Result<Bytes, CheckFailure> {
        let mut body = BytesMut::new();
        loop {
            let size = loop {
                // httparse reads a size line without digits as 0 (a body cut short that
                // would pass); RFC 9112 wants at least one hex digit.
                if self.buf.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                    return Err(http_failure("reading the body: invalid chunk size line".into()));
                }
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.buf.advance(used);
                        break size;
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() < MAX_CHUNK_LINE => {
                        self.read_body_bytes(MAX_CHUNK_LINE - self.buf.len()).await?;
                    }
                    _ => return Err(http_failure("reading the body: invalid chunk size line".into())),
                }
            };
            if size == 0 {
                return self.trailers().await.map(|()| body.freeze());
            }
            let size = usize::try_from(size)
                .ok()
                .filter(|s| *s <= max - body.len() && *s < usize::MAX / 2)
                .ok_or_else(&too_large)?;
            // The chunk's data and its line end.
            while self.buf.len() < size + 2 {
                // The next size line may come in the same read.
                self.read_body_bytes((size + 2 - self.buf.len()).max(FIRST_READ)).await?;
            }
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(http_failure("reading the body: a chunk does not end with CRLF".into()));
            }
            if body.is_empty() && self.buf.len() == size + 2 && size > FIRST_READ {
                // A large chunk read on its own: the buffer becomes the body.
                body = self.buf.split_to(size);
                self.buf.advance(2);
            } else {
                body.extend_from_slice(&self.buf[..size]);
                self.buf.advance(size + 2);
            }
        }
    }

    /// Read the trailer section after the last chunk, up to its empty line (lines end with
    /// CRLF or, as RFC 9112 (2.2) lets a recipient take them, a bare LF).
    async fn trailers(&mut self) -> Result<(), CheckFailure> {
        let (mut read, mut scanned) = (0, 0usize);
        loop {
            // Searched from where the last search ended (a line trickled in stays linear).
            if let Some(end) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = end + scanned;
                let empty = self.buf[..end] == *b"" || self.buf[..end] == *b"\r";
                self.buf.advance(end + 1);
                if empty {
                    return Ok(());
                }
                read += end + 1;
                scanned = 0;
                continue;
            }
            if read + self.buf.len() > MAX_TRAILERS {
                return Err(http_failure(format!("reading the body: trailers larger than {MAX_TRAILERS} bytes")));
            }
            scanned = self.buf.len();
            self.read_body_bytes(MAX_TRAILERS + 1 - read - self.buf.len()).await?;
        }
    }
}

/// Why the request could not be sent.
pub fn sending_failure(e: std::io::Error) -> CheckFailure {
    http_failure(format!("sending the request: {e}"))
}

fn reading(e: std::io::Error) -> CheckFailure {
    http_failure(format!("reading the body: {e}"))
}

fn parser() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config.allow_multiple_spaces_in_response_status_delimiters(true);
    // RFC 9112, 5.2: a user agent takes a field line folded onto the next (obs-fold), each
    // fold read as spaces (see `parse_head`), as curl and Go's client do.
    config.allow_obsolete_multiline_headers_in_responses(true);
    config
}

/// The head at the start of `buf`, once it is all there, taken out of `buf`: its headers are
/// spans of its bytes (no copy each); `None` while it is not all there.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, CheckFailure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let length = match parser().parse_response(&mut response, buf) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(http_failure(format!("invalid HTTP response: {e}"))),
    };
    let status = response
        .code
        .filter(|code| (100..=999).contains(code))
        .ok_or_else(|| http_failure(format!("invalid HTTP response: status {}", response.code.unwrap_or_default())))?;
    let start = buf.as_ptr() as usize;
    let span = |part: &[u8]| {
        let at = part.as_ptr() as usize - start;
        at..at + part.len()
    };
    // httparse took names that are tokens and values without control characters (DEL
    // included): what `http::HeaderName` and `HeaderValue` take, but for HeaderName's length.
    if response.headers.iter().any(|h| h.name.len() > MAX_NAME) {
        return Err(http_failure(format!("invalid HTTP response: a header name longer than {MAX_NAME} bytes")));
    }
    let spans: Vec<_> = response.headers.iter().map(|h| (span(h.name.as_bytes()), span(h.value))).collect();
    let http10 = response.version == Some(0);
    // A folded value keeps its line breaks (httparse took the fold's CR LF and leading
    // whitespace into it): each becomes a space, in place, as RFC 9112 asks.
    for (_, value) in &spans {
        for byte in &mut buf[value.clone()] {
            if matches!(*byte, b'\r' | b'\n') {
                *byte = b' ';
            }
        }
    }
    let headers = Headers { raw: buf.split_to(length).freeze(), spans };
    Ok(Some(Head { status, headers, http10 }))
}

/// How the body of the response with `head` (to a `HEAD` request if `to_head`) is delimited
/// (RFC 9112, 6.3).
fn framing(to_head: bool, head: &Head) -> Result<Framing, CheckFailure> {
    if to_head || head.status < 200 || head.status == 204 || head.status == 304 {
        return Ok(Framing::Empty);
    }
    match ends_chunked(head.headers.get_all("transfer-encoding")) {
        // RFC 9112, 6.1: the framing of an HTTP/1.0 message with one is faulty.
        Some(_) if head.http10 => {
            return Err(http_failure("invalid HTTP response: transfer-encoding in an HTTP/1.0 response".into()));
        }
        Some(true) => return Ok(Framing::Chunked),
        Some(false) => return Ok(Framing::Close),
        None => {}
    }
    let mut length = None;
    for value in head.headers.get_all("content-length") {
        for item in text(value).unwrap_or("x").split(',') {
            let item = item.trim();
            let parsed = (!item.is_empty() && item.bytes().all(|b| b.is_ascii_digit()))
                .then(|| item.parse::<u64>().ok())
                .flatten();
            match (parsed, length) {
                (None, _) => return Err(http_failure(format!("invalid HTTP response: content-length {item:?}"))),
                (Some(n), Some(m)) if n != m => {
                    return Err(http_failure("invalid HTTP response: differing content-length values".into()));
                }
                (Some(n), _) => length = Some(n),
            }
        }
    }
    Ok(length.map_or(Framing::Close, Framing::Length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// Serve `response` (in pieces of `piece` bytes, then close) and make one exchange.
    async fn exchange(
        method: Method,
        response: &[u8],
        piece: usize,
        max: usize,
    ) -> Result<(Head, Bytes), CheckFailure> {
        let (client, mut server) = tokio::io::duplex(64);
        let response = response.to_vec();
        let served = tokio::spawn(async move {
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && server.read(&mut byte).await.unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            for part in response.chunks(piece.max(1)) {
                if server.write_all(part).await.is_err() {
                    break;
                }
            }
            request
        });
        let mut connection = Connection::new(client);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, HeaderValue::from_static("example.test"));
        connection.send(&request(&method, "/x?y=1", &headers, None, b"")).await.map_err(sending_failure)?;
        let head = connection.head().await?;
        let body = connection.body(method == Method::HEAD, &head, max).await?;
        drop(connection);
        let request = served.await.unwrap();
        assert_eq!(request, b"GET /x?y=1 HTTP/1.1\r\nhost: example.test\r\n\r\n".replace_method(&method));
        Ok((head, body))
    }

    trait ReplaceMethod {
        fn replace_method(&self, method: &Method) -> Vec<u8>;
    }
    impl ReplaceMethod for [u8] {
        fn replace_method(&self, method: &Method) -> Vec<u8> {
            [method.as_str().as_bytes(), &self[3..]].concat()
        }
    }

    async fn ok(response: &str, piece: usize) -> (u16, String) {
        let (head, body) = exchange(Method::GET, response.as_bytes(), piece, 1 << 20).await.unwrap();
        (head.status, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn failure(response: &[u8], max: usize) -> CheckFailure {
        exchange(Method::GET, response, 7, max).await.unwrap_err()
    }

    #[tokio::test]
    async fn bodies_by_framing_in_any_pieces() {
        for piece in [1, 3, 64, 4096] {
            assert_eq!(ok("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", piece).await, (200, "hello".into()));
            assert_eq!(
                ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-t: 1\r\n\r\n", piece)
                    .await,
                (200, "abcde".into())
            );
            assert_eq!(
                ok("HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nto the end", piece).await,
                (404, "to the end".into())
            );
            assert_eq!(
                ok("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", piece)
                    .await,
                (201, "ok".into())
            );
            assert_eq!(ok("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", piece).await, (204, "".into()));
            assert_eq!(ok("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", piece).await, (304, "".into()));
            // Chunked wins over Content-Length; repeated equal lengths are one length.
            assert_eq!(
                ok("HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n", piece).await,
                (200, "z".into())
            );
            assert_eq!(ok("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nab", piece).await, (200, "ab".into()));
            // Empty lines before the status line are skipped.
            assert_eq!(ok("\r\n\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", piece).await, (200, "ok".into()));
        }
        // ... and count in the head's size limit.
        let blank = "\r\n".repeat(MAX_HEAD / 2);
        let too_many = failure(format!("{blank}HTTP/1.1 200 OK\r\n\r\n").as_bytes(), 100).await;
        assert_eq!(too_many.message, format!("response head larger than {MAX_HEAD} bytes"));
        // A body after HEAD is not read.
        let (head, body) =
            exchange(Method::HEAD, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 64, 100).await.unwrap();
        assert_eq!((head.status, body.len()), (200, 0));
        // A large body, in one buffer.
        let big = "x".repeat(300_000);
        let (_, body) = ok(&format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{big}", big.len()), 65536).await;
        assert_eq!(body, big);
        let chunked = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
            big.len(),
            big.len()
        );
        assert_eq!(ok(&chunked, 65536).await.1.len(), 600_000);
    }

    #[tokio::test]
    async fn framed_bodies_end_where_they_say_on_a_connection_left_open() {
        for response in [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n".as_slice(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\ngarbage",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            // An empty coding after `chunked` is none; trailer lines may end with a bare LF.
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n5\r\nhello\r\n0\r\nx-t: 1\n\n",
        ] {
            // The server keeps its end open: reading past the message would wait forever.
            let (client, mut server) = tokio::io::duplex(1 << 16);
            server.write_all(response).await.unwrap();
            let mut connection = Connection::new(client);
            let read = async {
                let head = connection.head().await?;
                let body = connection.body(false, &head, 100).await?;
                Ok::<_, CheckFailure>((head.status, body))
            };
            let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(5), read).await.unwrap().unwrap();
            assert_eq!(body, if status == 304 { "" } else { "hello" });
            drop(server);
        }
    }

    #[tokio::test]
    async fn a_folded_field_line_is_read_as_one_value_with_spaces() {
        for piece in [1, 7, 4096] {
            let response = b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\n\tthree\r\nContent-Length:\r\n 2\r\n\r\nok";
            let (head, body) = exchange(Method::GET, response, piece, 100).await.unwrap();
            assert_eq!((head.status, &body[..]), (200, &b"ok"[..]));
            assert_eq!(head.headers.get("x-folded"), Some("one   two  \tthree"));
            // A fold is no way to hide a second field: what follows it is the value's.
            assert_eq!(head.headers.get_all("two").count(), 0);
        }
    }

    #[tokio::test]
    async fn headers_keep_repeats_and_order() {
        let (head, _) = exchange(
            Method::GET,
            b"HTTP/1.1 302 Found\r\nLocation: /b\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n",
            5,
            10,
        )
        .await
        .unwrap();
        assert_eq!(head.headers.get("location"), Some("/b"));
        assert_eq!(head.headers.get("LOCATION"), Some("/b"));
        let cookies: Vec<_> = head.headers.get_all("Set-Cookie").map(|v| text(v).unwrap()).collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(head.headers.get("content-length"), Some("0"));
        assert_eq!(head.headers.get("x-absent"), None);
    }

    #[tokio::test]
    async fn header_values_beyond_ascii_are_kept_but_not_text() {
        // obs-text (RFC 9110, 5.5) is allowed in a value; like HeaderValue::to_str, it is not text.
        let (head, body) = exchange(
            Method::GET,
            b"HTTP/1.1 200 OK\r\nX-Name: caf\xc3\xa9\r\nX-Tab: a\tb\r\nContent-Length: 2\r\n\r\nok",
            7,
            10,
        )
        .await
        .unwrap();
        assert_eq!(head.headers.get_all("x-name").collect::<Vec<_>>(), [b"caf\xc3\xa9".as_slice()]);
        assert_eq!(head.headers.get("x-name"), None);
        assert_eq!(head.headers.get("x-tab"), Some("a\tb"));
        assert_eq!(body, "ok");
    }

    #[tokio::test]
    async fn bad_responses_fail_with_a_reason() {
        let cases: &[(&[u8], usize, Reason, &str)] = &[
            (b"", 10, Reason::Http, "no HTTP response: the server closed the connection"),
            (b"HTTP/1.1 200 OK\r\nContent-", 10, Reason::Http, "the connection closed in the response head"),
            (b"SSH-2.0-OpenSSH\r\n\r\n", 10, Reason::Http, "invalid HTTP response"),
            (b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", 10, Reason::Http, "invalid HTTP response"),
            // Control characters in a value (DEL included), as http::HeaderValue refused them:
            // httparse refuses them first.
            (b"HTTP/1.1 200 OK\r\nX-Del: a\x7fb\r\n\r\n", 10, Reason::Http, "invalid header value"),
            (b"HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\n\r\n", 10, Reason::Http, "invalid header value"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
                10,
                Reason::Http,
                "closed before the body was complete",
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 10, Reason::Http, "content-length \"-1\""),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 10, Reason::Http, "differing"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
                10,
                Reason::BodySize,
                "200: body larger than 10 bytes",
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", 10, Reason::Http, "content-length"),
            (b"HTTP/1.1 500 Oops\r\n\r\n0123456789A", 10, Reason::BodySize, "500: body larger than 10 bytes"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 10, Reason::Http, "invalid chunk size"),
            // A size line without digits is not a last chunk (httparse reads it as 0).
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n\r\n2\r\nde\r\n0\r\n\r\n",
                10,
                Reason::Http,
                "invalid chunk size",
            ),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;ext\r\n", 10, Reason::Http, "invalid chunk size"),
            (b"HTTP/1.1 000 X\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 10, Reason::Http, "invalid HTTP response: status 0"),
            (b"HTTP/1.1 099 X\r\n\r\n", 10, Reason::Http, "invalid HTTP response: status 99"),
            (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 10, Reason::Http, "HTTP/1.0"),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nx-t: 1\r\n",
                10,
                Reason::Http,
                "closed before",
            ),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 10, Reason::Http, "CRLF"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 10, Reason::Http, "closed before"),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n",
                10,
                Reason::BodySize,
                "larger than 10",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
                10,
                Reason::BodySize,
                "larger than 10",
            ),
        ];
        for (response, max, reason, text) in cases {
            let failure = failure(response, *max).await;
            assert_eq!(failure.reason, *reason, "{failure:?} for {:?}", String::from_utf8_lossy(response));
            assert!(failure.message.contains(text), "{failure:?} for {:?}", String::from_utf8_lossy(response));
        }
        // A head that never ends stops at the header count or at the size limit.
        let many = [b"HTTP/1.1 200 OK\r\n".as_slice(), &b"x-pad: 0123456789abcdef\r\n".repeat(20_000)].concat();
        assert!(failure(&many, 10).await.message.contains("too many headers"));
        let long = [b"HTTP/1.1 200 OK\r\n".as_slice(), &[b'x'; 65_536], b": 1\r\n\r\n"].concat();
        assert!(failure(&long, 10).await.message.contains("a header name longer than 65535 bytes"));
        let longest =
            [b"HTTP/1.1 200 OK\r\n".as_slice(), &[b'x'; 65_535], b": 1\r\nContent-Length: 0\r\n\r\n"].concat();
        assert!(exchange(Method::GET, &longest, 4096, 10).await.is_ok());
        let line = [b"x-pad: ".as_slice(), &[b'a'; 8000], b"\r\n"].concat();
        let long = [b"HTTP/1.1 200 OK\r\n".as_slice(), &line.repeat(60)].concat();
        let failure = failure(&long, 10).await;
        assert!(failure.message.contains(&format!("response head larger than {MAX_HEAD} bytes")), "{failure:?}");
    }

    #[test]
    fn requests_as_hyper_wrote_them() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::USER_AGENT, HeaderValue::from_static("agent"));
        assert_eq!(
            request(&Method::POST, "/p", &headers, Some("h:81"), b"{}"),
            b"POST /p HTTP/1.1\r\nuser-agent: agent\r\nhost: h:81\r\ncontent-length: 2\r\n\r\n{}"
        );
        assert_eq!(
            request(&Method::GET, "/", &headers, Some("h:81"), b""),
            b"GET / HTTP/1.1\r\nuser-agent: agent\r\nhost: h:81\r\n\r\n"
        );
        // A given length is replaced by the body's.
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("9"));
        assert_eq!(
            request(&Method::PUT, "/", &headers, None, b"ab"),
            b"PUT / HTTP/1.1\r\nuser-agent: agent\r\ncontent-length: 2\r\n\r\nab"
        );
        assert!(request(&Method::PUT, "/", &headers, None, b"").ends_with(b"content-length: 0\r\n\r\n"));
        // Chunked: no length at all.
        headers.insert(http::header::TRANSFER_ENCODING, HeaderValue::from_static("gzip, chunked"));
        assert!(
            !String::from_utf8(request(&Method::PUT, "/", &headers, None, b"ab")).unwrap().contains("content-length")
        );
        headers.remove(http::header::CONTENT_LENGTH);
        headers.insert(http::header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert!(
            request(&Method::PUT, "/", &headers, None, b"ab")
                .ends_with(b"transfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n")
        );
    }
}
