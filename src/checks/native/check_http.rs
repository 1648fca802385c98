//! monitoring-plugins' `check_http` (the classic plugin of the 2.x series Debian ships),
//! in-process: the same request bytes, the same status line and perfdata, the same exit
//! status.
//!
//! Read from `plugins/check_http.c` (v2.3.3): one request with `Connection: close`, the whole
//! response read to the end; its size (headers included, as the plugin counts it) is the
//! `bytes` and `size` figure; 5xx is CRITICAL, 4xx WARNING, 3xx the `-f` state (OK by
//! default); `-e` replaces the status check with a substring match; `-s`, `-d`, `-r`/`-R`
//! and `-m` add their complaints to the message; `-w`/`-c` are seconds; the whole plugin has
//! `-t` seconds (10), raised above `-c` when needed. TLS (`-S`) does not verify the
//! certificate, as the plugin does not. Not run natively: following redirects, `-C`
//! certificate days, client certificates, `-N`, `-M`, `-L`, `-E`, `-B`, `-v`, threshold
//! ranges, regexes with escapes (POSIX and Rust read them differently).

use std::time::Duration;

use base64::Engine as _;
use regex::bytes::{Regex, RegexBuilder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::Parsed;
use super::options::{self, Opt, switch, value};
use crate::checks::net::{self, CheckTls};

/// Most bytes of a response read; a larger one fails the check (the plugin has no limit).
pub const MAX_RESPONSE: usize = 32 * 1024 * 1024;

const OPTIONS: &[Opt] = &[
    value("timeout", Some('t'), Some("timeout")),
    value("critical", Some('c'), Some("critical")),
    value("warning", Some('w'), Some("warning")),
    value("useragent", Some('A'), Some("useragent")),
    value("header", Some('k'), Some("header")),
    value("hostname", Some('H'), Some("hostname")),
    value("post", Some('P'), Some("post")),
    value("method", Some('j'), Some("method")),
    value("content_type", Some('T'), Some("content-type")),
    value("address", Some('I'), Some("IP-address")),
    value("authorization", Some('a'), Some("authorization")),
    value("proxy_authorization", Some('b'), Some("proxy-authorization")),
    value("header_string", Some('d'), Some("header-string")),
    value("expect", Some('e'), Some("expect")),
    value("port", Some('p'), Some("port")),
    value("string", Some('s'), Some("string")),
    value("eregi", Some('R'), Some("eregi")),
    value("regex", Some('r'), Some("regex")),
    value("ereg", None, Some("ereg")),
    value("url", Some('u'), Some("url")),
    value("onredirect", Some('f'), Some("onredirect")),
    value("certificate", Some('C'), Some("certificate")),
    value("client_cert", Some('J'), Some("client-cert")),
    value("private_key", Some('K'), Some("private-key")),
    value("pagesize", Some('m'), Some("pagesize")),
    value("max_age", Some('M'), Some("max-age")),
    value("max_redirs", None, Some("max-redirs")),
    switch("nohtml", Some('n'), Some("nohtml")),
    switch("linespan", Some('l'), Some("linespan")),
    switch("link", Some('L'), Some("link")),
    switch("ssl", Some('S'), Some("ssl")),
    switch("sni", None, Some("sni")),
    switch("no_body", Some('N'), Some("no-body")),
    switch("extended_perfdata", Some('E'), Some("extended-perfdata")),
    switch("show_body", Some('B'), Some("show-body")),
    switch("invert_regex", None, Some("invert-regex")),
    switch("continue_after_certificate", None, Some("continue-after-certificate")),
    switch("ipv4", Some('4'), Some("use-ipv4")),
    switch("ipv6", Some('6'), Some("use-ipv6")),
    switch("verbose", Some('v'), Some("verbose")),
    switch("version", Some('V'), Some("version")),
    switch("help", Some('h'), Some("help")),
];

/// `check_curl`'s own options, besides `check_http`'s (`-D`, `--ca-cert`, `--http-version`,
/// `--enable-automatic-decompression`). `-S` takes an optional attached value there
/// (`-S1.2`), which reads here as an unknown option: the real plugin runs it.
const CURL_ONLY_OPTIONS: &[Opt] = &[
    value("ca_cert", None, Some("ca-cert")),
    value("http_version", None, Some("http-version")),
    switch("verify_cert", Some('D'), Some("verify-cert")),
    switch("automatic_decompression", None, Some("enable-automatic-decompression")),
];

/// `check_curl`'s whole option table (the order does not matter to [`options::parse`]).
fn curl_options() -> &'static [Opt] {
    static ALL: std::sync::LazyLock<Vec<Opt>> = std::sync::LazyLock::new(|| [OPTIONS, CURL_ONLY_OPTIONS].concat());
    &ALL
}

/// `check_curl`'s options the native path does not run, besides [`NOT_NATIVE`]'s.
const CURL_NOT_NATIVE: &[(&str, &str)] = &[
    ("ca_cert", "--ca-cert"),
    ("verify_cert", "-D"),
    ("http_version", "--http-version"),
    ("automatic_decompression", "--enable-automatic-decompression"),
];

/// Which plugin the arguments are for: `check_http`, or `check_curl` (the same options and
/// checks, made through libcurl: see [`super::check_curl`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `check_http`.
    Http,
    /// `check_curl`.
    Curl,
}

/// Options the native path does not run (the real plugin does, if installed).
const NOT_NATIVE: &[(&str, &str)] = &[
    ("proxy_authorization", "-b"),
    ("certificate", "-C"),
    ("client_cert", "-J"),
    ("private_key", "-K"),
    ("max_age", "-M"),
    ("max_redirs", "--max-redirs"),
    ("link", "-L"),
    ("no_body", "-N"),
    ("extended_perfdata", "-E"),
    ("show_body", "-B"),
    ("continue_after_certificate", "--continue-after-certificate"),
    ("verbose", "-v"),
    ("version", "-V"),
    ("help", "-h"),
];

/// What the plugin was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub(super) address: String,
    pub(super) host_name: Option<String>,
    pub(super) port: u16,
    pub(super) virtual_port: u16,
    pub(super) ssl: bool,
    pub(super) url: String,
    pub(super) method: String,
    pub(super) user_agent: String,
    pub(super) headers: Vec<String>,
    pub(super) authorization: Option<String>,
    pub(super) post: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) expect: Option<String>,
    pub(super) header_string: Option<String>,
    pub(super) string: Option<String>,
    pub(super) regex: Option<Posix>,
    pub(super) invert_regex: bool,
    pub(super) onredirect: i32,
    pub(super) min_page: i64,
    pub(super) max_page: i64,
    pub(super) warning: Option<f64>,
    pub(super) critical: Option<f64>,
    pub(super) timeout: u64,
    pub(super) ipv4: Option<bool>,
    pub(super) sni: bool,
    pub(super) flavor: Flavor,
}

/// A POSIX extended regex as the plugin compiled it, and its text (for comparisons).
#[derive(Debug, Clone)]
pub(super) struct Posix(pub(super) String, pub(super) Regex);

impl PartialEq for Posix {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

/// C's `atoi`: leading blanks, a sign, digits; 0 when none.
pub(super) fn atoi(text: &str) -> i64 {
    super::ruby_cli::to_i(&text.replace('_', " "))
}

pub(super) fn nonneg_int(text: &str) -> Option<u64> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

/// Parse `check_http`'s arguments.
pub fn parse(argv: &[String]) -> Parsed<Args> {
    parse_as(argv, Flavor::Http)
}

/// Parse the arguments of `check_http` or `check_curl`.
pub fn parse_as(argv: &[String], flavor: Flavor) -> Parsed<Args> {
    match parse_given(argv, flavor) {
        Ok(args) => Parsed::Run(args),
        Err(why) => Parsed::Unsupported(why),
    }
}

fn parse_given(argv: &[String], flavor: Flavor) -> Result<Args, String> {
    let curl = flavor == Flavor::Curl;
    // check_http's own aliases of the older option names.
    let argv: Vec<String> = argv
        .iter()
        .map(|w| {
            match w.as_str() {
                "-to" => "-t",
                "-hn" => "-H",
                "-wt" => "-w",
                "-ct" => "-c",
                "-nohtml" if curl => "-n",
                other => other,
            }
            .to_string()
        })
        .collect();
    let given = options::parse(if curl { curl_options() } else { OPTIONS }, &argv)?;
    let not_native = if curl { CURL_NOT_NATIVE } else { &[] };
    if let Some((_, flag)) = NOT_NATIVE.iter().chain(not_native).find(|(key, _)| given.has(key)) {
        return Err(format!("option {flag} is not supported natively"));
    }
    let ssl = given.has("ssl");
    let mut port: u16 = if ssl { 443 } else { 80 };
    let mut specified_port = false;
    if let Some(p) = given.get("port") {
        match nonneg_int(p) {
            Some(p @ 1..=65535) => {
                port = p as u16;
                specified_port = true;
            }
            _ => return Err(format!("port {p:?} is not one the native path runs")),
        }
    }
    let mut virtual_port = 0u16;
    let mut host_name = given.get("hostname").map(str::to_string);
    if let Some(host) = host_name.clone() {
        if host.starts_with('[') {
            return Err("bracketed IPv6 host names are not run natively".into());
        }
        if let Some((name, p)) = host.split_once(':')
            && !p.contains(':')
        {
            virtual_port =
                u16::try_from(atoi(p)).map_err(|_| format!("host {host:?} is not one the native path runs"))?;
            if !specified_port {
                // `-S` sets the port to 443 or not depending on whether it comes before or
                // after `-H host:port`.
                // (check_curl takes the port of `host:port` either way.)
                if ssl && !curl {
                    return Err(format!("-S with -H {host} and no -p is not run natively"));
                }
                port = virtual_port;
            }
            host_name = Some(name.to_string());
        }
    }
    let mut address = given.get("address").map(str::to_string);
    let mut rest = given.positional().iter();
    if address.is_none() {
        address = rest.next().cloned();
    }
    if host_name.is_none() {
        host_name = rest.next().cloned();
    }
    let address = match (address, &host_name) {
        (Some(a), _) => a,
        (None, Some(h)) => h.clone(),
        (None, None) => return Err("no server address or host name given".into()),
    };
    if port == 0 {
        return Err("port 0 is not one the native path runs".into());
    }
    if virtual_port == 0 {
        virtual_port = port;
    }
    let timeout = match given.get("timeout") {
        Some(t) => match nonneg_int(t) {
            Some(t) if t > 0 => t,
            _ => return Err(format!("timeout {t:?} is not one the native path runs")),
        },
        None => 10,
    };
    let warning = given.seconds("warning", "-w")?;
    let critical = given.seconds("critical", "-c")?;
    // The plugin gives itself a second more than the critical time.
    let timeout = match critical {
        Some(c) if c > timeout as f64 => c as u64 + 1,
        _ => timeout,
    };
    let onredirect = match given.get("onredirect") {
        None | Some("ok") => 0,
        Some("warning") => 1,
        Some("critical") => 2,
        Some("unknown") => 3,
        Some(other) => return Err(format!("-f {other} is not supported natively")),
    };
    let (min_page, max_page) = match given.get("pagesize") {
        Some(m) if m.contains(':') => {
            let mut parts = m.split(':').filter(|p| !p.is_empty());
            match (parts.next(), parts.next()) {
                (Some(min), Some(max)) => (atoi(min), atoi(max)),
                _ => return Err(format!("-m {m:?} is not one the native path runs")),
            }
        }
        Some(m) => (atoi(m), 0),
        None => (0, 0),
    };
    if curl {
        super::check_curl::refuse_regexes(&given)?;
    }
    let (pattern, icase) = match (given.get("regex").or(given.get("ereg")), given.get("eregi")) {
        (_, Some(p)) => (Some(p), true),
        (Some(p), None) => (Some(p), false),
        (None, None) => (None, false),
    };
    let regex = match pattern {
        Some(p) if p.contains('\\') || p.contains("(?") || p.contains("[[") || p.contains("{,") => {
            return Err(format!("regex {p:?} is not one the native path reads like POSIX"));
        }
        Some(p) => Some(Posix(
            p.to_string(),
            RegexBuilder::new(p)
                .case_insensitive(icase)
                .multi_line(!given.has("linespan"))
                .dot_matches_new_line(given.has("linespan"))
                .unicode(false)
                .build()
                .map_err(|_| format!("regex {p:?} is not one the native path reads"))?,
        )),
        None => None,
    };
    // check_curl keeps the first -P (check_http here, the last).
    let post = if curl { given.all("post").first().map(String::as_str) } else { given.get("post") }.map(str::to_string);
    let method = match given.get("method") {
        Some(m) if m.contains(':') => return Err("CONNECT proxy methods are not supported natively".into()),
        Some(m) => m.to_string(),
        None if post.is_some() => "POST".into(),
        None => "GET".into(),
    };
    let ipv4 = match (given.has("ipv4"), given.has("ipv6")) {
        (false, false) => None,
        _ => {
            // The last of -4/-6 wins.
            let last = argv.iter().rev().find(|w| ["-4", "-6", "--use-ipv4", "--use-ipv6"].contains(&w.as_str()));
            Some(last.is_some_and(|w| w.contains('4')))
        }
    };
    let args = Args {
        address,
        host_name,
        port,
        virtual_port,
        ssl,
        url: given.or("url", "/").to_string(),
        method,
        user_agent: given.get("useragent").map_or_else(
            || {
                if curl { super::check_curl::USER_AGENT } else { "check_http/v2.3.3 (monitoring-plugins 2.3.3)" }
                    .to_string()
            },
            str::to_string,
        ),
        headers: given.all("header").to_vec(),
        authorization: given.get("authorization").map(str::to_string),
        post,
        content_type: given.get("content_type").map(str::to_string),
        expect: given.get("expect").map(str::to_string),
        header_string: given.get("header_string").map(str::to_string),
        string: given.get("string").map(str::to_string),
        regex,
        invert_regex: given.has("invert_regex"),
        onredirect,
        min_page,
        max_page,
        warning,
        critical,
        timeout,
        ipv4,
        sni: curl || given.has("sni"),
        flavor,
    };
    if curl {
        super::check_curl::refuse(&args)?;
    }
    Ok(args)
}

/// The request, byte for byte as the plugin writes it.
fn request(args: &Args) -> Vec<u8> {
    let version = if args.host_name.is_some() { "HTTP/1.1" } else { "HTTP/1.0" };
    let mut r =
        format!("{} {} {version}\r\nUser-Agent: {}\r\nConnection: close\r\n", args.method, args.url, args.user_agent);
    let forced_host = args.headers.iter().rev().find(|h| h.starts_with("Host:"));
    if let Some(host) = &args.host_name {
        match forced_host {
            Some(h) => r.push_str(&format!("{h}\r\n")),
            None if (!args.ssl && args.virtual_port == 80) || (args.ssl && args.virtual_port == 443) => {
                r.push_str(&format!("Host: {host}\r\n"));
            }
            None => r.push_str(&format!("Host: {host}:{}\r\n", args.virtual_port)),
        }
    }
    for h in &args.headers {
        // The plugin drops a `Host:` header from the list whether or not it sends a host line.
        if Some(h) == forced_host {
            continue;
        }
        r.push_str(&format!("{h}\r\n"));
    }
    if let Some(auth) = args.authorization.as_deref().filter(|a| !a.is_empty()) {
        r.push_str(&format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode(auth)));
    }
    match &args.post {
        Some(data) => {
            let ct = args.content_type.as_deref().unwrap_or("application/x-www-form-urlencoded");
            r.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{data}", data.len()));
        }
        None => r.push_str("\r\n"),
    }
    r.into_bytes()
}

/// What the run printed and its exit status.
pub async fn run(args: &Args) -> (String, i32) {
    if args.flavor == Flavor::Curl {
        return super::check_curl::run(args).await;
    }
    let started = Instant::now();
    match tokio::time::timeout(Duration::from_secs(args.timeout), exchange(args, started)).await {
        Ok(done) => done,
        Err(_) => (format!("CRITICAL - Socket timeout after {} seconds\n", args.timeout), 2),
    }
}

async fn exchange(args: &Args, started: Instant) -> (String, i32) {
    const UNABLE: &str = "HTTP CRITICAL - Unable to open TCP socket\n";
    let tcp = match super::connect_any(&args.address, args.port, args.ipv4).await {
        Ok(tcp) => tcp,
        Err(super::ConnectError::Resolve(why)) => return (format!("{why}\n{UNABLE}"), 2),
        Err(super::ConnectError::Connect(error)) => {
            let why = super::strerror(&error);
            return (format!("connect to address {} and port {}: {why}\n{UNABLE}", args.address, args.port), 2);
        }
    };
    let response = if args.ssl {
        let config = match net::client_config(&CheckTls { insecure: true, ..CheckTls::default() }, false) {
            Ok(config) => config,
            Err(failure) => return (format!("HTTP CRITICAL - {}\n", failure.message), 2),
        };
        // The plugin names the server (SNI) only with `--sni`.
        let config = if args.sni {
            config
        } else {
            let mut quiet = (*config).clone();
            quiet.enable_sni = false;
            std::sync::Arc::new(quiet)
        };
        let name = args.host_name.clone().unwrap_or_else(|| args.address.clone());
        let name = rustls::pki_types::ServerName::try_from(name)
            .unwrap_or_else(|_| rustls::pki_types::ServerName::try_from("localhost").expect("a valid name"));
        match tokio_rustls::TlsConnector::from(config).connect(name.to_owned(), tcp).await {
            Ok(tls) => talk(tls, args).await,
            Err(_) => return ("CRITICAL - Cannot make SSL connection.\n".into(), 2),
        }
    } else {
        talk(tcp, args).await
    };
    let page = match response {
        Ok(page) => page,
        Err(message) => return (message, 2),
    };
    let elapsed = started.elapsed().as_secs_f64();
    judge(args, &page, elapsed)
}

async fn talk<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, args: &Args) -> Result<Vec<u8>, String> {
    let _ = stream.write_all(&request(args)).await;
    let mut page = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if page.len() + n > MAX_RESPONSE {
                    return Err(format!(
                        "HTTP CRITICAL - response larger than {MAX_RESPONSE} bytes (Concierge's limit)\n"
                    ));
                }
                page.extend_from_slice(&buf[..n]);
            }
            // The plugin reads a reset connection as its end.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            // A TLS peer that closes without close_notify: the end, as OpenSSL reads it.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(_) => return Err("HTTP CRITICAL - Error on receive\n".into()),
        }
    }
    if page.is_empty() {
        return Err("HTTP CRITICAL - No data received from host\n".into());
    }
    Ok(page)
}

pub(super) fn state_text(state: i32) -> &'static str {
    match state {
        0 => "OK",
        1 => "WARNING",
        2 => "CRITICAL",
        _ => "UNKNOWN",
    }
}

/// `max_state_alt`: the worse state, UNKNOWN ranking between WARNING and CRITICAL.
pub(super) fn worse(a: i32, b: i32) -> i32 {
    let rank = |s: i32| match s {
        0 => 0,
        1 => 1,
        3 => 2,
        _ => 3,
    };
    if rank(a) >= rank(b) { a } else { b }
}

/// A search string as the plugin shows it: 26 bytes and `...` when it has 30 or more.
pub(super) fn shown(search: &str) -> String {
    if search.len() >= 30 {
        format!("{}...", String::from_utf8_lossy(&search.as_bytes()[..26]))
    } else {
        search.to_string()
    }
}

/// Whether the headers match `Transfer-Encoding: *chunked *`, case-insensitively, as the
/// plugin's regex does (anywhere in the header block).
fn is_chunked(header: &str) -> bool {
    let lower = header.to_ascii_lowercase();
    lower
        .match_indices("transfer-encoding:")
        .any(|(at, name)| lower[at + name.len()..].trim_start_matches(' ').starts_with("chunked"))
}

/// A chunked body put together; `None` when it is not well formed.
fn unchunk(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// Whether `needle` occurs in `haystack` (`strstr`).
pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The status line (trailing blanks stripped), the header block and the body, cut as the
/// plugin cuts its buffer: the status line ends at the first CR or LF; header lines follow
/// until an empty one, a CR LF (or LF) pair counting as one line end; every CR and LF after
/// the header block is skipped.
fn split_response(page: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let eol = |b: &u8| *b == b'\r' || *b == b'\n';
    let run = |from: usize, pred: &dyn Fn(&u8) -> bool| page[from..].iter().take_while(|b| pred(b)).count();
    let status_end = page.iter().position(eol).unwrap_or(page.len());
    let mut status = &page[..status_end];
    while let [rest @ .., b' ' | b'\r' | b'\n' | b'\t'] = status {
        status = rest;
    }
    let mut at = status_end + run(status_end, &eol);
    let header_start = at;
    let mut header_end = at;
    loop {
        let line = page[at..].iter().position(eol).unwrap_or(page.len() - at);
        if line == 0 {
            break;
        }
        at += line;
        header_end = at;
        let ends = run(at, &eol);
        let crs = run(at, &|b: &u8| *b == b'\r');
        let lfs = run(at, &|b: &u8| *b == b'\n');
        at = (at + if (crs == 1 || lfs == 1) && ends >= 2 { 2 } else { 1 }).min(page.len());
    }
    at += run(at, &eol);
    (status, &page[header_start..header_end], &page[at..])
}

fn judge(args: &Args, raw: &[u8], elapsed: f64) -> (String, i32) {
    // NUL bytes read as blanks, as the plugin's string functions see them.
    let page: Vec<u8> = raw.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
    let (status, header, body) = split_response(&page);
    let status_line = String::from_utf8_lossy(status).into_owned();
    let scheme = if args.ssl { "https" } else { "http" };
    let expect = args.expect.as_deref().unwrap_or("HTTP/1.");
    if !expect.split(',').filter(|e| !e.is_empty()).any(|e| contains(status, e.as_bytes())) {
        let message = if args.port == 80 {
            format!("Invalid HTTP response received from host: {status_line}\n")
        } else {
            format!("Invalid HTTP response received from host on port {}: {status_line}\n", args.port)
        };
        return (format!("HTTP CRITICAL - {message}"), 2);
    }
    let mut result = 0;
    let mut msg;
    if let Some(expect) = &args.expect {
        msg = format!("Status line output matched \"{expect}\" - ");
    } else {
        let code_text = status_line.split_once(' ').map_or("", |(_, rest)| rest);
        if code_text.bytes().take_while(u8::is_ascii_digit).count() != 3 {
            return (format!("HTTP CRITICAL: Invalid Status Line ({status_line})\n"), 2);
        }
        let code: u16 = code_text[..3].parse().unwrap_or(0);
        if !(100..600).contains(&code) {
            return (format!("HTTP CRITICAL: Invalid Status ({status_line})\n"), 2);
        }
        if code >= 500 {
            result = 2;
        } else if code >= 400 {
            result = worse(1, result);
        } else if code >= 300 {
            result = worse(args.onredirect, result);
        }
        msg = format!("{status_line} - ");
    }
    let host = args.host_name.as_deref().unwrap_or(&args.address);
    if let Some(search) = &args.header_string
        && !search.is_empty()
        && !contains(header, search.as_bytes())
    {
        msg.push_str(&format!(
            "header '{}' not found on '{scheme}://{host}:{}{}', ",
            shown(search),
            args.port,
            args.url
        ));
        result = 2;
    }
    let chunked = is_chunked(&String::from_utf8_lossy(header));
    let unchunked;
    let body: &[u8] = if chunked {
        match unchunk(body) {
            Some(b) => {
                unchunked = b;
                &unchunked
            }
            None => return ("HTTP UNKNOWN: Failed to unchunk message body\n".into(), 3),
        }
    } else {
        body
    };
    if let Some(search) = &args.string
        && !search.is_empty()
        && !contains(body, search.as_bytes())
    {
        msg.push_str(&format!(
            "string '{}' not found on '{scheme}://{host}:{}{}', ",
            shown(search),
            args.port,
            args.url
        ));
        result = 2;
    }
    if let Some(re) = &args.regex {
        let found = re.1.is_match(body);
        if found == args.invert_regex {
            msg.push_str(if args.invert_regex { "pattern found, " } else { "pattern not found, " });
            result = 2;
        }
    }
    let page_len = raw.len() as i64;
    if args.max_page > 0 && page_len > args.max_page {
        msg.push_str(&format!("page size {page_len} too large, "));
        result = worse(1, result);
    } else if args.min_page > 0 && page_len < args.min_page {
        msg.push_str(&format!("page size {page_len} too small, "));
        result = worse(1, result);
    }
    // Cut off the trailing ", " or " - ".
    let cut = if msg.as_bytes().get(msg.len().wrapping_sub(2)) == Some(&b',') { 2 } else { 3 };
    msg.truncate(msg.len().saturating_sub(cut));
    msg.push_str(&format!(
        " - {page_len} bytes in {elapsed:.3} second response time |{}",
        perfdata(args, elapsed, page_len)
    ));
    result = worse(timed_state(args, elapsed), result);
    (format!("HTTP {}: {msg}\n", state_text(result)), result)
}

/// The plugin's perfdata: `time=…s;warn;crit;0.000000;timeout size=…B;min;0;0;`.
pub(super) fn perfdata(args: &Args, elapsed: f64, page_len: i64) -> String {
    let threshold = |t: Option<f64>| t.map(|t| format!("{t:.6}")).unwrap_or_default();
    let size_min = if args.min_page > 0 { args.min_page.to_string() } else { String::new() };
    let size_crit = if args.min_page > 0 { "0" } else { "" };
    format!(
        "time={elapsed:.6}s;{};{};0.000000;{:.6} size={page_len}B;{size_min};{size_crit};0;",
        threshold(args.warning),
        threshold(args.critical),
        args.timeout as f64
    )
}

/// The state `-w` and `-c` give the response time.
pub(super) fn timed_state(args: &Args, elapsed: f64) -> i32 {
    super::time_state(elapsed, args.warning, args.critical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Parsed<Args> {
        parse(&crate::checks::native::words::split(line).unwrap())
    }

    #[test]
    fn options_parse_as_the_plugin_reads_them() {
        let Parsed::Run(a) = args("-H example:8080 -u /x -k 'X-A: 1' -k 'Host: other' -a u:p -P d=1 -w 1 -c 20") else {
            panic!()
        };
        assert_eq!(
            (a.address.as_str(), a.host_name.as_deref(), a.port, a.virtual_port),
            ("example", Some("example"), 8080, 8080)
        );
        assert_eq!((a.method.as_str(), a.timeout, a.headers.len()), ("POST", 21, 2));
        let bytes = String::from_utf8(request(&a)).unwrap();
        assert_eq!(
            bytes,
            "POST /x HTTP/1.1\r\nUser-Agent: check_http/v2.3.3 (monitoring-plugins 2.3.3)\r\nConnection: close\r\nHost: other\r\nX-A: 1\r\nAuthorization: Basic dTpw\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\nd=1"
        );
        let Parsed::Run(a) = args("-I 127.0.0.1 -p 81 -S") else { panic!() };
        assert_eq!((a.host_name.as_deref(), a.port, a.ssl, a.url.as_str()), (None, 81, true, "/"));
        assert!(String::from_utf8(request(&a)).unwrap().starts_with("GET / HTTP/1.0\r\n"));
        let Parsed::Run(a) = args("127.0.0.1 example.org -p 8080") else { panic!() };
        assert_eq!((a.address.as_str(), a.host_name.as_deref()), ("127.0.0.1", Some("example.org")));
        for (line, why) in [
            ("-H h -C 30", "option -C"),
            ("-H h -f follow", "-f follow"),
            ("-H h -w 5:10", "-w \"5:10\""),
            ("-H h -r 'a\\d'", "not one the native path reads like POSIX"),
            ("-u /", "no server address"),
            ("-H h -t 0", "timeout \"0\""),
            ("-H h -c 2e19", "-c \"2e19\""),
            ("-H h:8443 -S", "-S with -H h:8443"),
        ] {
            match args(line) {
                Parsed::Unsupported(got) => assert!(got.contains(why), "{line}: {got}"),
                Parsed::Run(a) => panic!("{line}: {a:?}"),
            }
        }
    }

    #[test]
    fn a_host_header_replaces_the_host_line_and_never_goes_twice() {
        let Parsed::Run(a) = args("-I 127.0.0.1 -k 'Host: vhost' -k 'X: 1'") else { panic!() };
        let bytes = String::from_utf8(request(&a)).unwrap();
        assert!(!bytes.contains("Host:") && bytes.contains("X: 1\r\n"), "{bytes}");
        let Parsed::Run(a) = args("-H h -p 8080 -k 'Host: vhost'") else { panic!() };
        assert_eq!(String::from_utf8(request(&a)).unwrap().matches("Host:").count(), 1);
    }

    #[test]
    fn responses_are_cut_as_the_plugin_cuts_its_buffer() {
        let (status, header, body) = split_response(b"HTTP/1.1 200 OK \r\nA: 1\r\nB: 2\r\n\r\n\r\nbody\xff\n");
        assert_eq!((status, header, body), (&b"HTTP/1.1 200 OK"[..], &b"A: 1\r\nB: 2"[..], &b"body\xff\n"[..]));
        for garbage in [&b""[..], b"\r\n\r\n", b"no status", b"HTTP/1.1 200\nA", b"\xff\xfe\x00\r"] {
            let _ = split_response(garbage);
        }
        let Parsed::Run(a) = args("-H h -s caf") else { panic!() };
        // A chunked binary body is searched byte for byte.
        let (text, status) =
            judge(&a, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n\xe9caf\r\n0\r\n\r\n", 0.001);
        assert_eq!(status, 0, "{text}");
        let (text, status) = judge(&a, b"HTTP/1.1 OK\r\n\r\n", 0.001);
        assert_eq!((text.as_str(), status), ("HTTP CRITICAL: Invalid Status Line (HTTP/1.1 OK)\n", 2));
    }

    #[test]
    fn search_strings_are_shown_as_the_plugin_shows_them() {
        assert_eq!(shown("short"), "short");
        assert_eq!(shown(&"x".repeat(29)), "x".repeat(29));
        assert_eq!(shown(&"y".repeat(30)), format!("{}...", "y".repeat(26)));
        assert_eq!(unchunk(b"3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n").unwrap(), b"abcde");
        assert!(is_chunked("Server: x\r\ntransfer-encoding:   chunked") && !is_chunked("Transfer-Encoding: gzip"));
    }
}
