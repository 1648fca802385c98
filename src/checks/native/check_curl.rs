//! monitoring-plugins' `check_curl` (2.3.3, as Debian ships it), in-process: `check_http`'s
//! options and checks (parsed by [`super::check_http`] with [`Flavor::Curl`]), made as
//! libcurl 7.88 makes the request and as the plugin reads what libcurl hands it.
//!
//! Read from `plugins/check_curl.c` (v2.3.3) and checked against the real plugin: an HTTP/1.1
//! request with curl's own headers (`Host`, `Authorization`, `User-Agent`, `Accept: */*`) and
//! then the plugin's (`Connection: close`, `-k`, `-T`); the response read as curl reads it
//! (`Content-Length`, chunks put together, 1xx responses and trailers kept with the headers),
//! its size the header bytes plus the body's; curl's errors (`cURL returned 7 - Failed to
//! connect…`, `28 - Operation timed out…`) as the plugin prints them; the status line as the
//! plugin parses it (the last `HTTP/` line; HTTP/1.x always shown as `HTTP/1.1`); each
//! complaint (`-d`, `-s`, `-r`, `-m`) replacing the one before, as the plugin's `snprintf` of
//! the message into itself does with glibc. `-t` is curl's limit for the whole transfer.
//! TLS (`-S`) verifies nothing, as the plugin without `-D`/`--ca-cert`, names the host (SNI)
//! and offers HTTP/1.1 only (curl also offers HTTP/2: a server that picks it answers curl in
//! HTTP/2, which the native path does not speak). Not run natively, besides what
//! `check_http`'s native path leaves aside: `-D`, `--ca-cert`, `--http-version`,
//! `--enable-automatic-decompression`, `-S` with a TLS version, `-f follow|sticky|stickyport|curl`,
//! `HEAD`, `CONNECT`, `PUT` with data (curl's `Expect: 100-continue`), `-l` or `-r` with `-R`
//! (the plugin compiles the regex as the options come), headers curl makes itself, URLs curl
//! would rewrite, names curl would refuse.

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::Parsed;
use super::check_http::{self, Args, Flavor, MAX_RESPONSE, contains, shown, state_text, worse};
use super::options::Given;
use crate::checks::net::{self, CheckTls};

/// The plugin's default `User-Agent` on Debian 12 (it names the libcurl it runs with).
pub const USER_AGENT: &str = "check_curl/v2.3.3 (monitoring-plugins 2.3.3, libcurl/7.88.1 OpenSSL/3.0.22 zlib/1.2.13 brotli/1.0.9 zstd/1.5.4 libidn2/2.3.3 libpsl/0.21.2 (+libidn2/2.3.3) libssh2/1.10.0 nghttp2/1.52.0 librtmp/2.3 OpenLDAP/2.5.13)";

/// Headers curl makes itself (a `-k` naming one changes what curl sends): the real plugin
/// runs those.
const CURL_HEADERS: &[&str] = &[
    "host",
    "user-agent",
    "accept",
    "authorization",
    "content-type",
    "content-length",
    "expect",
    "transfer-encoding",
    "connection",
    "cookie",
    "referer",
    "range",
    "accept-encoding",
    "te",
    "proxy-connection",
];

/// Parse `check_curl`'s arguments.
pub fn parse(argv: &[String]) -> Parsed<Args> {
    check_http::parse_as(argv, Flavor::Curl)
}

/// The regex options as the plugin reads them: each `-r`/`-R` compiles at once with the flags
/// so far, so mixing them or `-l` depends on their order; the native path does not run those.
pub(super) fn refuse_regexes(given: &Given) -> Result<(), String> {
    let (regex, ereg, eregi) = (given.all("regex"), given.all("ereg"), given.all("eregi"));
    let kinds = [regex, ereg, eregi].iter().filter(|v| !v.is_empty()).count();
    if kinds > 1 {
        return Err("-r and -R (or --ereg) together are not run natively".into());
    }
    if kinds == 1 && given.has("linespan") {
        return Err("-l with a regex is not run natively (the plugin reads them in order)".into());
    }
    if regex.iter().chain(ereg).chain(eregi).any(|p| p.len() > 1023) {
        return Err("a regex longer than the plugin's 1023 bytes is not run natively".into());
    }
    Ok(())
}

fn token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn plain_name(name: &str) -> bool {
    name.parse::<std::net::Ipv6Addr>().is_ok()
        || (!name.is_empty()
            && name.len() < 254
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b)))
}

/// What curl or the plugin would read otherwise than the native path: the real plugin runs it.
pub(super) fn refuse(args: &Args) -> Result<(), String> {
    let no_controls = |text: &str| !text.bytes().any(|b| b.is_ascii_control());
    if !plain_name(&args.address) {
        return Err(format!("address {:?} is not one the native path runs like curl", args.address));
    }
    if let Some(host) = &args.host_name
        && (host.len() > 1024 || !no_controls(host) || (args.ssl && !plain_name(host)))
    {
        return Err(format!("host name {host:?} is not one the native path runs like curl"));
    }
    let url_ok = args.url.starts_with('/')
        && args.url.len() < 1024
        && args.url.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~:/?[]@!$&'()*+,;=%".contains(&b))
        && !args.url.split('?').next().unwrap_or_default().split('/').any(|s| s == "." || s == "..");
    if !url_ok {
        return Err(format!("URL {:?} is not one the native path sends like curl", args.url));
    }
    if args.timeout > i32::MAX as u64 {
        return Err(format!("timeout {} is not one the native path runs", args.timeout));
    }
    match args.method.as_str() {
        "HEAD" | "CONNECT" => return Err(format!("method {} is not supported natively", args.method)),
        "PUT" if args.post.as_deref().is_some_and(|p| !p.is_empty()) => {
            return Err("PUT with data (curl's Expect: 100-continue) is not supported natively".into());
        }
        m if !token(m) => return Err(format!("method {m:?} is not supported natively")),
        _ => {}
    }
    if args.user_agent.len() > 2047 || !no_controls(&args.user_agent) {
        return Err("this user agent is not one the native path sends like curl".into());
    }
    for header in &args.headers {
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        let ours = header.starts_with("Host:");
        if !no_controls(header)
            || !token(name)
            || value.trim().is_empty()
            || (!ours && CURL_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)))
        {
            return Err(format!("header {header:?} is not one the native path sends like curl"));
        }
    }
    if let Some(auth) = &args.authorization
        && (auth.len() > 8191 || !no_controls(auth) || auth.split(':').next().is_some_and(|user| user.contains(';')))
    {
        return Err("this -a is not one the native path sends like curl".into());
    }
    if let Some(ct) = &args.content_type
        && (ct.len() > 1024 || !no_controls(ct))
    {
        return Err("this content type is not one the native path sends like curl".into());
    }
    let long = |s: &Option<String>| s.as_deref().is_some_and(|s| s.len() > 8191);
    if long(&args.string) || long(&args.header_string) || long(&args.expect) {
        return Err("a search string longer than the plugin's 8191 bytes is not run natively".into());
    }
    if args.post.as_deref().is_some_and(|p| p.len() > 1024 * 1024) {
        return Err("post data over 1 MiB (curl's Expect: 100-continue) is not run natively".into());
    }
    Ok(())
}

/// The host in the URL the plugin gives curl (without IPv6 brackets).
fn url_host(args: &Args) -> &str {
    match &args.host_name {
        Some(host) if args.ssl => host,
        _ => &args.address,
    }
}

/// The address as the plugin prints it after bracketing an IPv6 literal.
fn shown_address(address: &str) -> String {
    if address.parse::<std::net::Ipv6Addr>().is_ok() { format!("[{address}]") } else { address.to_string() }
}

/// The request, byte for byte as curl 7.88 writes it for the plugin.
fn request(args: &Args) -> Vec<u8> {
    let mut r = format!("{} {} HTTP/1.1\r\n", args.method, args.url);
    // A Host header in the list (a -k one, else the plugin's for -H) takes the place of
    // curl's own, first; curl sends the first one.
    let default_port = if args.ssl { 443 } else { 80 };
    match (args.headers.iter().find(|h| h.starts_with("Host:")), &args.host_name) {
        (Some(h), _) => r.push_str(&format!("{h}\r\n")),
        (None, Some(host)) if args.virtual_port == default_port => r.push_str(&format!("Host: {host}\r\n")),
        (None, Some(host)) => r.push_str(&format!("Host: {host}:{}\r\n", args.virtual_port)),
        (None, None) if args.port == default_port => {
            r.push_str(&format!("Host: {}\r\n", shown_address(&args.address)));
        }
        (None, None) => r.push_str(&format!("Host: {}:{}\r\n", shown_address(&args.address), args.port)),
    }
    if let Some(auth) = args.authorization.as_deref().filter(|a| !a.is_empty()) {
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        r.push_str(&format!("Authorization: Basic {basic}\r\n"));
    }
    r.push_str(&format!("User-Agent: {}\r\nAccept: */*\r\n", args.user_agent));
    // The rest of the plugin's list: Connection: close, -k, then -T for POST and PUT.
    r.push_str("Connection: close\r\n");
    for h in args.headers.iter().filter(|h| !h.starts_with("Host:")) {
        r.push_str(&format!("{h}\r\n"));
    }
    let body = matches!(args.method.as_str(), "POST" | "PUT");
    if body && let Some(ct) = &args.content_type {
        r.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    let data = args.post.as_deref().unwrap_or_default();
    if body {
        r.push_str(&format!("Content-Length: {}\r\n", data.len()));
        if args.method == "POST" && args.content_type.is_none() {
            r.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
    }
    r.push_str("\r\n");
    if body {
        r.push_str(data);
    }
    r.into_bytes()
}

/// How far the transfer got, for curl's timeout message.
#[derive(Debug, Default)]
struct Progress {
    resolved: bool,
    connected: bool,
    /// Body bytes received, and the `Content-Length` when known.
    body: usize,
    size: Option<usize>,
}

/// What curl hands the plugin: the header lines (every response's, and trailers) and the body.
#[derive(Debug, Default)]
struct Response {
    header: Vec<u8>,
    body: Vec<u8>,
    /// The status code as curl read it.
    code: i64,
}

/// A failed transfer: the whole line the plugin prints (always CRITICAL).
type Failed = String;

fn curl_error(args: &Args, code: u32, text: &str) -> Failed {
    format!(
        "HTTP CRITICAL - Invalid HTTP response received from host on port {}: cURL returned {code} - {text}\n",
        args.port
    )
}

/// What the run printed and its exit status.
pub(super) async fn run(args: &Args) -> (String, i32) {
    let started = Instant::now();
    let mut progress = Progress::default();
    let done = tokio::time::timeout(Duration::from_secs(args.timeout), transfer(args, &mut progress, started)).await;
    match done {
        Ok(Ok(response)) => judge(args, &response, started.elapsed().as_secs_f64()),
        Ok(Err(failed)) => (failed, 2),
        Err(_) => {
            let ms = started.elapsed().as_millis();
            let text = if !progress.resolved {
                format!("Resolving timed out after {ms} milliseconds")
            } else if !progress.connected {
                format!("Connection timed out after {ms} milliseconds")
            } else if let Some(size) = progress.size {
                format!(
                    "Operation timed out after {ms} milliseconds with {} out of {size} bytes received",
                    progress.body
                )
            } else {
                format!("Operation timed out after {ms} milliseconds with {} bytes received", progress.body)
            };
            (curl_error(args, 28, &text), 2)
        }
    }
}

/// `getaddrinfo`'s error number for its message, as the plugin prints it.
fn gai_code(why: &str) -> i32 {
    match why {
        "Temporary failure in name resolution" => -3,
        "Non-recoverable failure in name resolution" => -4,
        "No address associated with hostname" => -5,
        "Address family for hostname not supported" => -9,
        _ => -2,
    }
}

async fn transfer(args: &Args, progress: &mut Progress, started: Instant) -> Result<Response, Failed> {
    let host = url_host(args);
    let addrs = if args.ssl && args.host_name.is_some() {
        // The plugin looks the address up itself (the last answer) and pins the name to it.
        match super::resolve(&args.address, args.port, args.ipv4).await {
            Ok(addrs) => addrs[addrs.len() - 1..].to_vec(),
            Err(error) => {
                let why = match error {
                    super::ConnectError::Resolve(why) => why,
                    super::ConnectError::Connect(_) => "Name or service not known".to_string(),
                };
                return Err(format!(
                    "HTTP CRITICAL - Unable to lookup IP address for '{}': getaddrinfo returned {} - {why}\n",
                    args.address,
                    gai_code(&why)
                ));
            }
        }
    } else {
        super::resolve(&args.address, args.port, args.ipv4)
            .await
            .map_err(|_| curl_error(args, 6, &format!("Could not resolve host: {}", args.address)))?
    };
    progress.resolved = true;
    let tcp = super::connect_to(&addrs).await.map_err(|_| {
        let ms = started.elapsed().as_millis();
        curl_error(
            args,
            7,
            &format!("Failed to connect to {host} port {} after {ms} ms: Couldn't connect to server", args.port),
        )
    })?;
    if args.ssl {
        let config = net::client_config(&CheckTls { insecure: true, ..CheckTls::default() }, true)
            .map_err(|failure| format!("HTTP CRITICAL - {}\n", failure.message))?;
        let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|_| {
            curl_error(
                args,
                35,
                &format!("OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to {host}:{} ", args.port),
            )
        })?;
        let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| {
            let text = match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    format!("OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to {host}:{} ", args.port)
                }
                std::io::ErrorKind::ConnectionReset => {
                    format!("OpenSSL SSL_connect: Connection reset by peer in connection to {host}:{} ", args.port)
                }
                _ => "SSL connect error".to_string(),
            };
            curl_error(args, 35, &text)
        })?;
        progress.connected = true;
        exchange(tls, args, progress, true).await
    } else {
        progress.connected = true;
        exchange(tcp, args, progress, false).await
    }
}

/// The response read as curl reads it.
struct Reader<S> {
    stream: S,
    buf: Vec<u8>,
    at: usize,
    eof: bool,
    tls: bool,
}

impl<S: AsyncRead + Unpin> Reader<S> {
    /// Read more; false at the end of the stream.
    async fn fill(&mut self, args: &Args) -> Result<bool, Failed> {
        if self.eof {
            return Ok(false);
        }
        if self.buf.len() > MAX_RESPONSE {
            return Err(format!("HTTP CRITICAL - response larger than {MAX_RESPONSE} bytes (Concierge's limit)\n"));
        }
        let mut chunk = vec![0u8; 16384];
        match self.stream.read(&mut chunk).await {
            Ok(0) => {
                self.eof = true;
                Ok(false)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if self.tls && e.kind() == std::io::ErrorKind::UnexpectedEof => Err(curl_error(
                args,
                56,
                "OpenSSL SSL_read: error:0A000126:SSL routines::unexpected eof while reading, errno 0",
            )),
            Err(e) => Err(curl_error(args, 56, &format!("Recv failure: {}", super::strerror(&e)))),
        }
    }

    /// The next line, with its line end; `None` at the end of the stream (a partial line is
    /// dropped, as curl drops it).
    async fn line(&mut self, args: &Args) -> Result<Option<Vec<u8>>, Failed> {
        // Only what arrived since the last look is searched again (a long line stays linear).
        let mut searched = self.at;
        loop {
            if let Some(end) = self.buf[searched..].iter().position(|&b| b == b'\n') {
                let end = searched + end;
                let line = self.buf[self.at..=end].to_vec();
                self.at = end + 1;
                return Ok(Some(line));
            }
            searched = self.buf.len();
            if !self.fill(args).await? {
                return Ok(None);
            }
        }
    }

    /// Up to `n` bytes (fewer at the end of the stream).
    async fn take(&mut self, n: usize, args: &Args, progress: &mut Progress) -> Result<Vec<u8>, Failed> {
        while self.buf.len() - self.at < n {
            progress.body = self.buf.len() - self.at;
            if !self.fill(args).await? {
                break;
            }
        }
        let n = n.min(self.buf.len() - self.at);
        let out = self.buf[self.at..self.at + n].to_vec();
        self.at += n;
        Ok(out)
    }
}

/// curl's reading of a status line: the code, or its error.
fn curl_status(line: &[u8]) -> Result<i64, (u32, &'static str)> {
    const VERSION: (u32, &str) = (1, "Unsupported HTTP version in response");
    let line = line.trim_ascii_start();
    if line.len() < 5 || !line[..5].eq_ignore_ascii_case(b"HTTP/") {
        return Err((1, "Received HTTP/0.9 when not allowed"));
    }
    let rest = &line[5..];
    let digits = |text: &[u8], most: usize| -> Option<i64> {
        let text = text.trim_ascii_start();
        let n = text.iter().take(most).take_while(|b| b.is_ascii_digit()).count();
        std::str::from_utf8(&text[..n]).ok()?.parse().ok()
    };
    let code = match rest {
        [b'1', b'.', minor, b' ', code @ ..] if minor.is_ascii_digit() => digits(code, 3).ok_or(VERSION)?,
        [b'2' | b'3', b' ', code @ ..] => digits(code, 18).ok_or(VERSION)?,
        _ => return Err(VERSION),
    };
    if !(100..=999).contains(&code) {
        return Err((1, "Unsupported response code in HTTP response"));
    }
    Ok(code)
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    args: &Args,
    progress: &mut Progress,
    tls: bool,
) -> Result<Response, Failed> {
    if let Err(e) = stream.write_all(&request(args)).await {
        return Err(curl_error(args, 55, &format!("Send failure: {}", super::strerror(&e))));
    }
    let _ = stream.flush().await;
    let mut reader = Reader { stream, buf: Vec::new(), at: 0, eof: false, tls };
    let mut response = Response::default();
    let (mut content_length, mut chunked);
    // Header blocks: 1xx ones, then the response's.
    loop {
        let Some(status) = reader.line(args).await? else {
            // Bytes that end without a line end: curl still reads them as a status line.
            let rest = &reader.buf[reader.at..];
            return Err(match curl_status(rest) {
                Err((code, text)) if !rest.is_empty() => curl_error(args, code, text),
                _ => curl_error(args, 52, "Empty reply from server"),
            });
        };
        response.code = curl_status(&status).map_err(|(code, text)| curl_error(args, code, text))?;
        response.header.extend_from_slice(&status);
        (content_length, chunked) = (None, false);
        let mut ended = false;
        while let Some(line) = reader.line(args).await? {
            response.header.extend_from_slice(&line);
            if line == b"\r\n" || line == b"\n" {
                ended = true;
                break;
            }
            let text = String::from_utf8_lossy(&line);
            if let Some((name, value)) = text.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.to_ascii_lowercase().contains("chunked");
                }
            }
        }
        if !ended {
            // The headers end with the connection: what came of them, a partial line dropped.
            return Ok(response);
        }
        if !(100..200).contains(&response.code) || response.code == 101 {
            break;
        }
    }
    if matches!(response.code, 204 | 304) {
        return Ok(response);
    }
    if chunked {
        loop {
            let Some(line) = reader.line(args).await? else {
                return Err(curl_error(args, 18, "transfer closed with outstanding read data remaining"));
            };
            let text = String::from_utf8_lossy(&line);
            let hex = text.split([';', '\r', '\n']).next().unwrap_or_default().trim();
            let Ok(size) = usize::from_str_radix(hex, 16) else {
                return Err(curl_error(args, 56, "Illegal or missing hexadecimal sequence in chunked-encoding"));
            };
            if size == 0 {
                // Trailers go to the headers, without the empty line that ends them.
                while let Some(line) = reader.line(args).await? {
                    if line == b"\r\n" || line == b"\n" {
                        break;
                    }
                    response.header.extend_from_slice(&line);
                }
                return Ok(response);
            }
            if size > MAX_RESPONSE.saturating_sub(response.body.len()) {
                return Err(format!("HTTP CRITICAL - response larger than {MAX_RESPONSE} bytes (Concierge's limit)\n"));
            }
            let data = reader.take(size, args, progress).await?;
            if data.len() < size {
                return Err(curl_error(args, 18, "transfer closed with outstanding read data remaining"));
            }
            response.body.extend_from_slice(&data);
            progress.body = response.body.len();
            // The chunk's line end.
            if reader.line(args).await?.is_none() {
                return Err(curl_error(args, 18, "transfer closed with outstanding read data remaining"));
            }
        }
    }
    if let Some(size) = content_length {
        if size > MAX_RESPONSE {
            return Err(format!("HTTP CRITICAL - response larger than {MAX_RESPONSE} bytes (Concierge's limit)\n"));
        }
        progress.size = Some(size);
        response.body = reader.take(size, args, progress).await?;
        if response.body.len() < size {
            let left = size - response.body.len();
            return Err(curl_error(args, 18, &format!("transfer closed with {left} bytes remaining to read")));
        }
        return Ok(response);
    }
    while reader.fill(args).await? {
        progress.body = reader.buf.len() - reader.at;
    }
    response.body = reader.buf[reader.at..].to_vec();
    Ok(response)
}

/// The bytes up to the first NUL, as the plugin's string functions see a buffer.
fn c_str(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())]
}

/// The status line as `curlhelp_parse_statusline` reads it.
#[derive(Debug, PartialEq)]
struct StatusLine {
    first_line: Vec<u8>,
    major: i64,
    minor: i64,
    code: i64,
    msg: Vec<u8>,
}

/// `strtol` over a whole token: `None` unless it reads every byte.
fn strtol_all(token: &[u8]) -> Option<i64> {
    let text = token.trim_ascii_start();
    let digits = text.strip_prefix(b"-").or_else(|| text.strip_prefix(b"+")).unwrap_or(text);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = std::str::from_utf8(digits).ok()?.parse::<i64>().unwrap_or(i64::MAX);
    Some(if text.starts_with(b"-") { -value } else { value })
}

/// C's `strtok` over `buf` from `from` (`None`: where the last call left off): the token's
/// start and end; the byte after it becomes NUL as C's does.
fn strtok(buf: &mut [u8], from: usize, delims: &[u8]) -> Option<(usize, usize)> {
    let at = |i: usize, buf: &[u8]| buf.get(i).copied().unwrap_or(0);
    let mut start = from;
    while at(start, buf) != 0 && delims.contains(&at(start, buf)) {
        start += 1;
    }
    if at(start, buf) == 0 {
        return None;
    }
    let mut end = start;
    while at(end, buf) != 0 && !delims.contains(&at(end, buf)) {
        end += 1;
    }
    if end < buf.len() {
        buf[end] = 0;
    }
    Some((start, end))
}

fn parse_statusline(header: &[u8]) -> Option<StatusLine> {
    // The last "\r\nHTTP/" starts the final response's status line.
    let needle = b"\r\nHTTP/";
    let mut start = 0;
    let mut at = 0;
    while let Some(found) = header[at..].windows(needle.len()).position(|w| w == needle) {
        start = at + found + 2;
        at += found + needle.len();
    }
    let buf = &header[start..];
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    let first_line = buf[..end].to_vec();
    let mut line = first_line.clone();
    let (s, e) = strtok(&mut line, 0, b"/")?;
    if &line[s..e] != b"HTTP" {
        return None;
    }
    let (s, e) = strtok(&mut line, e + 1, b" ")?;
    let version = line[s..e].to_vec();
    let (major, minor, mut p) = if version.contains(&b'.') {
        let (ms, me) = strtok(&mut line, s, b".")?;
        let major = strtol_all(&line[ms..me])?;
        // The plugin reads the minor version from the major's text again.
        (major, major, s + 4)
    } else {
        let text = &line[s..e];
        let n = text.trim_ascii_start().iter().take_while(|b| b.is_ascii_digit() || **b == b'-').count();
        let major = std::str::from_utf8(&text.trim_ascii_start()[..n]).ok()?.parse().unwrap_or(0);
        (major, 0, s + 2)
    };
    let (cs, ce) = strtok(&mut line, p, b" ")?;
    let token = line[cs..ce].to_vec();
    let code = if token.contains(&b'.') {
        let (a, b) = token.split_at(token.iter().position(|&b| b == b'.').unwrap_or(0));
        strtol_all(&b[1..])?;
        p = cs + 6;
        strtol_all(a)?
    } else {
        p = cs + 4;
        strtol_all(&token)?
    };
    let msg = if p < line.len() && line[p] != 0 {
        // strtok(p, ""): the rest of the copy, up to a NUL strtok left.
        let rest = &line[p..];
        first_line[p..p + rest.iter().position(|&b| b == 0).unwrap_or(rest.len())].to_vec()
    } else {
        Vec::new()
    };
    Some(StatusLine { first_line, major, minor, code: code as i32 as i64, msg })
}

/// `string_statuscode`: `HTTP/1.1` (the minor read as the major), `HTTP/2`.
fn version(status: &StatusLine) -> String {
    if status.major == 1 { format!("HTTP/{}.{}", status.major, status.minor) } else { format!("HTTP/{}", status.major) }
}

/// C's `%.3g`.
fn g3(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let exp = x.abs().log10().floor() as i32;
    let trim = |s: String| {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    };
    if !(-4..3).contains(&exp) {
        let text = format!("{x:.2e}");
        let (mantissa, e) = text.split_once('e').unwrap_or((&text, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        format!("{}e{}{:02}", trim(mantissa.to_string()), if e < 0 { '-' } else { '+' }, e.abs())
    } else {
        trim(format!("{x:.*}", (2 - exp) as usize))
    }
}

fn judge(args: &Args, response: &Response, elapsed: f64) -> (String, i32) {
    let page_len = (response.header.len() + response.body.len()) as i64;
    let perf = check_http::perfdata(args, elapsed, page_len);
    let (header, body) = (c_str(&response.header), c_str(&response.body));
    if header.is_empty() && body.is_empty() {
        return ("HTTP CRITICAL - No header received from host\n".into(), 2);
    }
    let Some(status) = parse_statusline(header) else {
        return (
            format!(
                "HTTP CRITICAL HTTP/x.x 0 unknown - Unparsable status line in {} seconds response time|{perf}\n",
                g3(elapsed)
            ),
            2,
        );
    };
    let first_line = String::from_utf8_lossy(&status.first_line);
    let status_msg = String::from_utf8_lossy(&status.msg);
    let expect = args.expect.as_deref().unwrap_or("HTTP/");
    if !expect.split(',').filter(|e| !e.is_empty()).any(|e| contains(&status.first_line, e.as_bytes())) {
        let message = if args.port == 80 {
            format!("Invalid HTTP response received from host: {first_line}\n")
        } else {
            format!("Invalid HTTP response received from host on port {}: {first_line}\n", args.port)
        };
        return (format!("HTTP CRITICAL - {message}"), 2);
    }
    let code = response.code;
    let mut result = 0;
    let mut msg = String::new();
    if let Some(expect) = &args.expect {
        msg = format!("Status line output matched \"{expect}\" - ");
    } else if !(100..600).contains(&code) {
        let shown_msg = String::from_utf8_lossy(&status.msg[..status.msg.len().min(40)]).into_owned();
        return (format!("HTTP CRITICAL: Invalid Status ({}, {shown_msg})\n", status.code), 2);
    } else if code >= 500 {
        result = 2;
    } else if code >= 400 {
        result = 1;
    } else if code >= 300 {
        result = worse(args.onredirect, result);
    }
    if status.code != code {
        return (
            format!(
                "HTTP CRITICAL {} {} {status_msg} - different HTTP codes (cUrl has {code})\n",
                version(&status),
                status.code
            ),
            2,
        );
    }
    let scheme = if args.ssl { "https" } else { "http" };
    let host = args.host_name.clone().unwrap_or_else(|| shown_address(&args.address));
    let place = format!("{scheme}://{host}:{}{}", args.port, args.url);
    // Each complaint replaces the message so far: the plugin prints the message into itself,
    // and glibc's snprintf empties it first.
    if let Some(search) = args.header_string.as_deref().filter(|s| !s.is_empty())
        && !contains(header, search.as_bytes())
    {
        msg = format!("header '{}' not found on '{place}', ", shown(search));
        result = 2;
    }
    if let Some(search) = args.string.as_deref().filter(|s| !s.is_empty())
        && !contains(body, search.as_bytes())
    {
        msg = format!("string '{}' not found on '{place}', ", shown(search));
        result = 2;
    }
    if let Some(re) = &args.regex {
        let found = re.1.is_match(body);
        if found == args.invert_regex {
            msg = if args.invert_regex { "pattern found, " } else { "pattern not found, " }.to_string();
            result = 2;
        }
    }
    if args.max_page > 0 && page_len > args.max_page {
        msg = format!("page size {page_len} too large, ");
        result = worse(1, result);
    } else if args.min_page > 0 && page_len < args.min_page {
        msg = format!("page size {page_len} too small, ");
        result = worse(1, result);
    }
    result = worse(check_http::timed_state(args, elapsed), result);
    if msg.len() >= 2 {
        let cut = if msg.as_bytes()[msg.len() - 2] == b',' { 2 } else { 3 };
        msg.truncate(msg.len() - cut);
    }
    let sep = if msg.is_empty() { "" } else { " - " };
    (
        format!(
            "HTTP {}: {} {} {status_msg}{sep}{msg} - {page_len} bytes in {elapsed:.3} second response time |{perf}\n",
            state_text(result),
            version(&status),
            status.code
        ),
        result,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Parsed<Args> {
        parse(&crate::checks::native::words::split(line).unwrap())
    }

    #[test]
    fn options_parse_as_the_plugin_reads_them() {
        let Parsed::Run(a) = args("-H example:8080 -u /x -k 'X-A: 1' -a u:p -P d=1 -P d=2 -w 1 -c 20") else {
            panic!()
        };
        assert_eq!((a.address.as_str(), a.port, a.virtual_port, a.timeout), ("example", 8080, 8080, 21));
        assert_eq!((a.method.as_str(), a.post.as_deref(), a.sni), ("POST", Some("d=1"), true));
        assert_eq!(
            String::from_utf8(request(&a)).unwrap(),
            format!(
                "POST /x HTTP/1.1\r\nHost: example:8080\r\nAuthorization: Basic dTpw\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\nConnection: close\r\nX-A: 1\r\nContent-Length: 3\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nd=1"
            )
        );
        // -S after -H host:port keeps the port (check_http's native path steps aside there).
        let Parsed::Run(a) = args("-H example:8443 -S") else { panic!() };
        assert_eq!((a.port, a.ssl), (8443, true));
        let Parsed::Run(a) = args("-I 127.0.0.1 -p 81 -j PUT -T text/plain -k 'Host:vhost' -nohtml") else { panic!() };
        assert_eq!(
            String::from_utf8(request(&a)).unwrap(),
            format!(
                "PUT / HTTP/1.1\r\nHost:vhost\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
            )
        );
        let Parsed::Run(a) = args("-I ::1 -p 81 -a user") else { panic!() };
        let bytes = String::from_utf8(request(&a)).unwrap();
        assert!(bytes.contains("Host: [::1]:81\r\n") && bytes.contains("Basic dXNlcjo=\r\n"), "{bytes}");
        for (line, why) in [
            ("-H h -f follow", "-f follow"),
            ("-H h -f curl", "-f curl"),
            ("-H h -D", "option -D"),
            ("-H h --ca-cert /etc/x", "option --ca-cert"),
            ("-H h --http-version 1.1", "option --http-version"),
            ("-H h --enable-automatic-decompression", "--enable-automatic-decompression"),
            ("-H h -S1.2", "invalid option"),
            ("-H h -N", "option -N"),
            ("-H h -r a -R b", "-r and -R"),
            ("-H h -l -r a", "-l with a regex"),
            ("-H h -j HEAD", "method HEAD"),
            ("-H h -j PUT -P x", "PUT with data"),
            ("-H h -k 'Accept: x'", "header"),
            ("-H h -k 'host: x'", "header"),
            ("-H h -k 'X-Empty:'", "header"),
            ("-H h -u ok", "URL"),
            ("-H h -u '/a/../b'", "URL"),
            ("-H h -u 'http://proxy/'", "URL"),
            ("-H Example.COM", "address"),
            ("-H h -w 1:2", "-w \"1:2\""),
        ] {
            match args(line) {
                Parsed::Unsupported(got) => assert!(got.contains(why), "{line}: {got}"),
                Parsed::Run(a) => panic!("{line}: {a:?}"),
            }
        }
    }

    #[test]
    fn status_lines_are_read_as_curl_and_the_plugin_read_them() {
        assert_eq!(curl_status(b"HTTP/1.0 200 OK\r\n"), Ok(200));
        assert_eq!(curl_status(b"HTTP/2 204\r\n"), Ok(204));
        assert_eq!(curl_status(b"HTTP/1.1 20 OK\r\n").unwrap_err().0, 1);
        assert_eq!(curl_status(b"HTTP/1.1 abc\r\n"), Err((1, "Unsupported HTTP version in response")));
        assert_eq!(curl_status(b"hello\r\n"), Err((1, "Received HTTP/0.9 when not allowed")));
        let s = parse_statusline(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 404 Not Found\r\nA: b\r\n\r\n").unwrap();
        assert_eq!((version(&s), s.code, s.msg.as_slice()), ("HTTP/1.1".into(), 404, &b"Not Found"[..]));
        assert_eq!(s.first_line, b"HTTP/1.0 404 Not Found");
        let s = parse_statusline(b"HTTP/1.1 299\r\n\r\n").unwrap();
        assert_eq!((s.code, s.msg.as_slice()), (299, &b""[..]));
        let s = parse_statusline(b"HTTP/2 200\r\n\r\n").unwrap();
        assert_eq!((version(&s), s.code), ("HTTP/2".into(), 200));
        assert_eq!(parse_statusline(b"HTTP/1.1 200 OK\nA: b\n\n"), None);
        for garbage in [&b""[..], b"\r\n", b"HTTP/\r\n", b"HTTP/1.1\r\n", b"HTTP/1.1 \xff\r\n", b"/ / /\r\n"] {
            let _ = parse_statusline(garbage);
        }
        assert_eq!(
            (g3(0.00947), g3(0.0123), g3(1.5), g3(12.34), g3(1234.0)),
            ("0.00947".into(), "0.0123".into(), "1.5".into(), "12.3".into(), "1.23e+03".into())
        );
    }

    #[test]
    fn complaints_replace_each_other_as_in_the_plugin() {
        let Parsed::Run(a) = args("-H h -p 8080 -u /x -e 200 -d absent -s absent -m 10:20") else { panic!() };
        let response = Response {
            header: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec(),
            body: b"hello".to_vec(),
            code: 200,
        };
        let (text, status) = judge(&a, &response, 0.001);
        // CRITICAL from the string and header, but only the last complaint is said.
        assert_eq!(status, 2, "{text}");
        assert!(
            text.starts_with("HTTP CRITICAL: HTTP/1.1 200 OK - page size 43 too large - 43 bytes in 0.001"),
            "{text}"
        );
        let Parsed::Run(a) = args("-H h -e 200") else { panic!() };
        let (text, _) = judge(&a, &response, 0.001);
        assert!(text.starts_with("HTTP OK: HTTP/1.1 200 OK - Status line output matched \"200\" - 43 bytes"), "{text}");
    }
}
