//! The built-in DNS check (`"extension": "dns"`): with a `server`, its question over UDP
//! (the message encoded and decoded by hickory-proto, sent on a socket of the check's own);
//! over TCP, from the system configuration, or after a truncated answer, through
//! hickory-resolver with its cache off. Either way every run really asks the server and the
//! resolution time is real.
//!
//! The name is always queried as absolute (a trailing dot is implied), so a container's
//! `ndots`/`search` settings cannot multiply the queries or change the answer.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::{DnsRequest, DnsRequestOptions, Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::Interest;
use tokio::time::Instant;

use super::compiled::{Compiled, Weigh};
use super::failure::{CheckFailure, Reason};
use super::net::{self, DnsProtocol};
use super::plugin::{self, Perf, Report, Status, Thresholds};
use super::{Builtin, BuiltinContext, BuiltinFuture};
use crate::proto::Object;

/// Parameters of `"dns": {…}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsParams {
    /// The name to resolve (for `PTR`, an IP address is turned into its reverse name).
    pub name: String,
    /// Record type: A, AAAA, CNAME, MX, NS, TXT, SOA, SRV, PTR. Default A.
    #[serde(default, rename = "type")]
    pub record_type: Option<String>,
    /// Server IP (`"192.0.2.53"`, `"127.0.0.1:5353"`, `"[::1]:53"`). Default: the
    /// system resolver configuration.
    #[serde(default)]
    pub server: Option<String>,
    /// Server port, when `server` has none. Default 53.
    #[serde(default)]
    pub port: Option<u16>,
    /// `udp` (default) or `tcp` (needs `server`).
    #[serde(default)]
    pub protocol: DnsProtocol,
    /// The exact set of expected answers of the queried type (order does not matter;
    /// addresses compare as addresses, names without their trailing dot).
    #[serde(default)]
    pub expect: Option<Vec<String>>,
    /// At least one answer must match this regex.
    #[serde(default)]
    pub expect_match: Option<String>,
    /// No answer may match this regex.
    #[serde(default)]
    pub expect_not_match: Option<String>,
    /// Accepted response codes. Default `["NOERROR"]`; e.g. `["NXDOMAIN"]` to check that
    /// a name does not exist.
    #[serde(default)]
    pub rcodes: Option<Vec<String>>,
    /// Accept a NOERROR answer with no record of the type. Default false.
    #[serde(default)]
    pub allow_empty: bool,
    /// Seconds for the query. Default 5.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Warning above this many seconds.
    #[serde(default)]
    pub warning: Option<f64>,
    /// Critical above this many seconds.
    #[serde(default)]
    pub critical: Option<f64>,
    /// Graphite scheme for `type: metric`. Default `<client>.dns.<check>`.
    #[serde(default)]
    pub scheme: Option<String>,
}

fn default_timeout() -> f64 {
    5.0
}

/// Response codes by their usual mnemonic.
const RCODES: &[(&str, u16)] = &[
    ("NOERROR", 0),
    ("FORMERR", 1),
    ("SERVFAIL", 2),
    ("NXDOMAIN", 3),
    ("NOTIMP", 4),
    ("REFUSED", 5),
    ("YXDOMAIN", 6),
    ("YXRRSET", 7),
    ("NXRRSET", 8),
    ("NOTAUTH", 9),
    ("NOTZONE", 10),
];

fn rcode_name(code: ResponseCode) -> String {
    let n = u16::from(code);
    RCODES.iter().find(|(_, v)| *v == n).map_or_else(|| format!("RCODE{n}"), |(name, _)| (*name).to_string())
}

const TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "PTR"];

#[derive(Debug)]
struct Query {
    record_type: RecordType,
    server: Option<SocketAddr>,
    protocol: DnsProtocol,
    expect: Option<Vec<String>>,
    expect_match: Option<Regex>,
    expect_not_match: Option<Regex>,
    rcodes: Vec<String>,
    allow_empty: bool,
    timeout: Duration,
    thresholds: Thresholds,
    scheme: Option<String>,
    /// `127.0.0.1:53` or `system resolver`, and `NAME TYPE`: as they are shown, written once.
    server_label: String,
    query_text: String,
    /// The name as asked (parsed as the resolver parses it).
    question: Name,
    /// The UDP question as sent, ID 0 (each run writes its own): encoded once, as hickory's
    /// UDP client encodes it (recursion desired, EDNS with a 1,232-byte payload).
    wire: Vec<u8>,
    /// The question section an answer must repeat.
    asked: hickory_resolver::proto::op::Query,
}

impl DnsParams {
    fn compile(self) -> Result<Query, String> {
        let type_name = self.record_type.as_deref().unwrap_or("A").to_ascii_uppercase();
        if !TYPES.contains(&type_name.as_str()) {
            return Err(format!("unknown record type {type_name:?} (expected one of {})", TYPES.join(", ")));
        }
        let record_type = RecordType::from_str(&type_name).map_err(|e| e.to_string())?;
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        let name = match (record_type, self.name.parse::<IpAddr>()) {
            (RecordType::PTR, Ok(ip)) => reverse_name(ip),
            _ if self.name.ends_with('.') => self.name.clone(),
            _ => format!("{}.", self.name),
        };
        let server = self
            .server
            .as_deref()
            .map(|s| {
                s.parse::<SocketAddr>()
                    .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, self.port.unwrap_or(53))))
                    .map_err(|_| format!("server {s:?} must be an IP address, optionally with a port"))
            })
            .transpose()?;
        if server.is_none() && self.protocol == DnsProtocol::Tcp {
            return Err("protocol tcp needs a server".into());
        }
        let rcodes: Vec<String> =
            self.rcodes.unwrap_or_else(|| vec!["NOERROR".into()]).into_iter().map(|r| r.to_ascii_uppercase()).collect();
        if let Some(bad) = rcodes.iter().find(|r| !RCODES.iter().any(|(n, _)| n == r)) {
            return Err(format!("unknown rcode {bad:?}"));
        }
        let re = |what: &str, p: &Option<String>| {
            p.as_ref().map(|p| Regex::new(p).map_err(|e| format!("{what} is not a valid regex: {e}"))).transpose()
        };
        let timeout = plugin::timeout_param(self.timeout)?;
        let question = Name::from_utf8(&name).map_err(|e| format!("name {name:?} is not a valid DNS name: {e}"))?;
        let asked = hickory_resolver::proto::op::Query::query(question.clone(), record_type);
        let mut request = DnsRequest::from_query(asked.clone(), DnsRequestOptions::default());
        request.metadata.id = 0;
        let wire = request.to_vec().map_err(|e| format!("name {name:?} cannot be asked: {e}"))?;
        Ok(Query {
            server_label: server.map_or_else(|| "system resolver".to_string(), |s| s.to_string()),
            query_text: format!("{name} {record_type}"),
            question,
            wire,
            asked,
            record_type,
            server,
            protocol: self.protocol,
            expect: self.expect,
            expect_match: re("expect_match", &self.expect_match)?,
            expect_not_match: re("expect_not_match", &self.expect_not_match)?,
            rcodes,
            allow_empty: self.allow_empty,
            timeout,
            thresholds: Thresholds::new(self.warning, self.critical),
            scheme: self.scheme,
        })
    }
}

/// `d.c.b.a.in-addr.arpa.` / nibble form for IPv6.
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut out = String::new();
            for byte in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            out.push_str("ip6.arpa.");
            out
        }
    }
}

impl Weigh for Query {
    /// Kept unless it holds a regex (whose lazy DFA cache grows with use): its strings plus
    /// a fixed share for the rest.
    fn weight(&self) -> Option<usize> {
        if self.expect_match.is_some() || self.expect_not_match.is_some() {
            return None;
        }
        let strings = |list: &[String]| list.iter().map(|s| 24 + s.len()).sum::<usize>();
        Some(
            512 + 2 * self.question.len()
                + self.wire.len()
                + self.query_text.len()
                + self.server_label.len()
                + self.expect.as_deref().map_or(0, strings)
                + strings(&self.rcodes)
                + self.scheme.as_ref().map_or(0, String::len),
        )
    }
}

/// The DNS built-in: its queries compiled once per check definition.
#[derive(Debug, Default)]
pub struct Dns {
    queries: Compiled<Query>,
}

impl Dns {
    /// How many times this built-in compiled a query (a request whose parameters were
    /// compiled before and kept does not count).
    pub fn compiles(&self) -> usize {
        self.queries.compiles()
    }
}

impl Builtin for Dns {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn run(&self, check: Arc<Object>, ctx: BuiltinContext) -> BuiltinFuture {
        let query = self.queries.get(&check, "dns", |params| {
            plugin::deserialize::<DnsParams>(params)?.compile().map_err(CheckFailure::parameters)
        });
        Box::pin(async move {
            let query = match query {
                Ok(q) => q,
                Err(problem) => return plugin::invalid_parameters("DNS", problem),
            };
            let scheme =
                || query.scheme.clone().unwrap_or_else(|| plugin::default_scheme(&ctx.client_name, &check, "dns"));
            run_query(&query).await.into_outcome(&check, scheme)
        })
    }
}

/// Normalise an answer or expectation for comparison.
fn normalise(text: &str) -> String {
    let t = text.trim().trim_end_matches('.').to_ascii_lowercase();
    t.parse::<IpAddr>().map_or(t, |ip| ip.to_string())
}

/// What asking gave: the response code and the answers (type, data), or why there is none.
enum Asked {
    Answered(String, Vec<(RecordType, String)>),
    TimedOut,
    /// What went wrong, as the check says it.
    Failed(String),
    Unbuildable(CheckFailure),
}

/// Ask `q`: one UDP question to its server, or through a resolver (the system
/// configuration, TCP, or a truncated UDP answer asked again over TCP).
async fn ask(q: &Query) -> Asked {
    // The resolver has its own timeout; this one also bounds the system configuration
    // (several servers, attempts) and a truncated answer's second try.
    let started = Instant::now();
    let deadline = || started + q.timeout + Duration::from_millis(250);
    if q.server.is_some() && q.protocol == DnsProtocol::Udp {
        match ask_udp(q, started + q.timeout).await {
            Ok(Udp::NoAnswer(None)) => return Asked::TimedOut,
            Ok(Udp::NoAnswer(Some(why))) => return Asked::Failed(format!("no readable answer: {why}")),
            Err(error) => return Asked::Failed(error),
            Ok(Udp::Answer(response)) if !response.metadata.truncation => {
                let answers = response.answers.iter().map(|r| (r.record_type(), rdata_text(&r.data))).collect();
                return Asked::Answered(rcode_name(response.metadata.response_code), answers);
            }
            // Truncated (or too large to read): the whole answer is asked for over TCP, as
            // resolvers do.
            Ok(Udp::Answer(_) | Udp::TooLarge) => return Box::pin(resolve(q, DnsProtocol::Tcp, deadline())).await,
        }
    }
    // Boxed: a resolver's lookup is a large future; inline, every check asking its server
    // over UDP would carry it, and its own future would outgrow the allocator's per-thread
    // cache (a box of 1,000+ bytes costs glibc ten times more to allocate and free).
    Box::pin(resolve(q, q.protocol, deadline())).await
}

/// How long a UDP question waits for its answer before it is sent again, and how many times
/// it is sent at most (as hickory's UDP client and resolver: 333 ms, three times).
const RETRY_AFTER: Duration = Duration::from_millis(333);
const SENDS: u32 = 3;

/// Largest UDP answer read. A larger one is asked for again over TCP, as a truncated one is
/// (the question offers 1,232 bytes through EDNS, so a server keeping to it never sends more).
const MAX_ANSWER: usize = 4096;

/// What one question over UDP gave.
enum Udp {
    /// A response to the question.
    Answer(Message),
    /// A response larger than [`MAX_ANSWER`]: to be asked for over TCP.
    TooLarge,
    /// Nothing taken by the deadline; why the last answer with the run's ID could not be
    /// read, if one came.
    NoAnswer(Option<String>),
}

/// One question to `q`'s server over UDP, as a stub resolver asks it, by `deadline`. A fresh
/// socket on a random port, connected to the server, so the kernel drops any datagram from
/// another source (and an ICMP error, such as "port unreachable", ends the run at once, as
/// "Connection refused"). The question is sent at most three times, 333 ms apart, while no
/// answer came. An answer is taken when it is a response with the run's random ID and the
/// question asked; anything else is ignored.
///
/// No resolver, and not hickory's UDP client either: the message is still hickory-proto's
/// (encoded once per compiled check, decoded once per answer), but the client's layers
/// (encoding the question on every run and parsing it back twice, a socket per attempt, a
/// timer per layer) were 19,500 of the 31,700 instructions a run took (callgrind).
async fn ask_udp(q: &Query, deadline: Instant) -> Result<Udp, String> {
    // Read here, not passed in: every byte held across the awaits is in every running check.
    let Some(server) = q.server else { return Err("no server to ask".into()) };
    let socket = connected_udp(server)?;
    let id: u16 = rand::random();
    let mut question = q.wire.clone();
    question[..2].copy_from_slice(&id.to_be_bytes());
    socket.send(&question).await.map_err(|e| e.to_string())?;
    let mut sends = 1;
    // One timer: the next send, or the deadline after the last.
    let timer = tokio::time::sleep_until(deadline.min(Instant::now() + RETRY_AFTER));
    tokio::pin!(timer);
    // One byte more than the largest answer taken: a datagram filling it was cut short.
    let mut answer = Vec::with_capacity(MAX_ANSWER + 1);
    let mut unreadable = None;
    loop {
        answer.clear();
        // The socket first, then the timer; by hand rather than `select!`, whose futures
        // would make every running check larger than the allocator's per-thread cache. The
        // socket is awaited for an error too: an ICMP error makes it report only that.
        let received = {
            let ready = socket.ready(Interest::READABLE | Interest::ERROR);
            tokio::pin!(ready);
            std::future::poll_fn(|cx| match ready.as_mut().poll(cx) {
                Poll::Ready(ready) => Poll::Ready(Some(ready)),
                Poll::Pending => timer.as_mut().poll(cx).map(|()| None),
            })
            .await
        };
        match received {
            // An error reported (tokio's `try_recv` would not even try: the socket is not
            // readable): the socket's pending error is why.
            Some(Ok(ready)) if ready.is_error() => {
                let error = socket.take_error().map_err(|e| e.to_string())?;
                return Err(error.map_or_else(|| "the socket reported an error".to_string(), |e| e.to_string()));
            }
            Some(ready) => match ready.and_then(|_| socket.try_recv_buf(&mut answer)) {
                // Nothing after all (tokio clears the readiness; `answer` stays empty): on to
                // the deadline check.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                got => {
                    got.map_err(|e| e.to_string())?;
                }
            },
            None => {
                if Instant::now() >= deadline {
                    return Ok(Udp::NoAnswer(unreadable));
                }
                socket.send(&question).await.map_err(|e| e.to_string())?;
                sends += 1;
                let next = if sends < SENDS { deadline.min(Instant::now() + RETRY_AFTER) } else { deadline };
                timer.as_mut().reset(next);
                continue;
            }
        }
        if answer.get(..2) == Some(&id.to_be_bytes()[..]) {
            if answer.len() > MAX_ANSWER {
                return Ok(Udp::TooLarge);
            }
            match Message::from_vec(&answer) {
                Ok(response)
                    if response.metadata.message_type == MessageType::Response
                        && response.queries.len() == 1
                        && response.queries[0] == q.asked =>
                {
                    return Ok(Udp::Answer(response));
                }
                Ok(_) => {}
                Err(e) => unreadable = Some(e.to_string()),
            }
        }
        // Ignored, but not past the deadline: datagrams arriving without pause keep the
        // socket ready, and the timer, polled second, would never fire.
        if Instant::now() >= deadline {
            return Ok(Udp::NoAnswer(unreadable));
        }
    }
}

/// A UDP socket connected to `server`, on a port the kernel picks at random (connecting an
/// unbound socket binds it: a `bind` fewer than tokio's `bind` then `connect`).
fn connected_udp(server: SocketAddr) -> Result<tokio::net::UdpSocket, String> {
    use nix::sys::socket::{self, SockType, SockaddrStorage};
    use std::os::fd::AsRawFd;
    let fd = net::socket_for(server, SockType::Datagram)
        .map_err(|e| format!("cannot open a UDP socket: {}", std::io::Error::from(e)))?;
    socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(server)).map_err(|e| std::io::Error::from(e).to_string())?;
    tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(fd)).map_err(|e| e.to_string())
}

/// An answer's data as hickory's `Display` writes it; an IPv4 address digit by digit (through
/// `fmt`, 1,000 instructions of every A answer).
fn rdata_text(data: &RData) -> String {
    match data {
        RData::A(a) => {
            let mut text = String::with_capacity(15);
            net::push_ipv4(&mut text, a.0);
            text
        }
        other => other.to_string(),
    }
}

/// Ask through a resolver (caching off, one attempt), built for this run, by `deadline`.
async fn resolve(q: &Query, protocol: DnsProtocol, deadline: Instant) -> Asked {
    let resolver = match net::resolver(q.server, protocol, q.timeout) {
        Ok(r) => r,
        Err(failure) => return Asked::Unbuildable(failure),
    };
    match tokio::time::timeout_at(deadline, resolver.lookup(q.question.clone(), q.record_type)).await {
        Err(_) | Ok(Err(NetError::Timeout)) => Asked::TimedOut,
        Ok(Ok(lookup)) => Asked::Answered(
            "NOERROR".into(),
            lookup.answers().iter().map(|r| (r.record_type(), rdata_text(&r.data))).collect(),
        ),
        Ok(Err(NetError::Dns(DnsError::NoRecordsFound(nr)))) => {
            Asked::Answered(rcode_name(nr.response_code), Vec::new())
        }
        Ok(Err(NetError::Dns(DnsError::ResponseCode(code)))) => Asked::Answered(rcode_name(code), Vec::new()),
        Ok(Err(other)) => Asked::Failed(other.to_string()),
    }
}

async fn run_query(q: &Query) -> Report {
    let started = Instant::now();
    let asked = ask(q).await;
    let took = started.elapsed().as_secs_f64();
    // Made after the question, not held across it: every byte of this future is in every
    // running check, which must fit the allocator's per-thread cache.
    let mut report = Report::new("DNS");
    let server_label = &q.server_label;
    report.details.set("server", server_label.clone());
    report.details.set("query", q.query_text.clone());
    report.timings = vec![("resolve", took), ("total", took)];
    let time = Perf::seconds("time", took).thresholds(q.thresholds.warning, q.thresholds.critical);
    let (rcode, answers) = match asked {
        Asked::Answered(rcode, answers) => (rcode, answers),
        Asked::Unbuildable(failure) => return report.fail(Status::Unknown, failure.reason, failure.message),
        Asked::TimedOut => {
            report.perf = vec![time];
            return report.fail(
                Status::Critical,
                Reason::Timeout,
                format!(
                    "{} timed out after {} s ({server_label})",
                    q.query_text,
                    plugin::trim_secs(q.timeout.as_secs_f64())
                ),
            );
        }
        Asked::Failed(error) => {
            report.perf = vec![time];
            return report.fail(
                Status::Critical,
                Reason::Dns,
                format!("{} failed: {error} ({server_label})", q.query_text),
            );
        }
    };
    let typed: Vec<String> = answers.iter().filter(|(t, _)| *t == q.record_type).map(|(_, v)| v.clone()).collect();
    report.perf = vec![time, Perf::number("answers", typed.len() as f64)];
    report.details.set("rcode", rcode.clone());
    // `<type> <data>` and `<query> <rcode> in <seconds> s: <answers> (<server>)`, piece by
    // piece (`format!` took some 1,400 instructions for each).
    let answers = answers.iter().map(|(t, v)| {
        let t: &str = (*t).into();
        let mut text = String::with_capacity(t.len() + 1 + v.len());
        text.push_str(t);
        text.push(' ');
        text.push_str(v);
        Value::String(text)
    });
    report.details.set("answers", Value::Array(answers.collect()));
    let mut summary = String::with_capacity(q.query_text.len() + rcode.len() + server_label.len() + 64);
    summary.push_str(&q.query_text);
    summary.push(' ');
    summary.push_str(&rcode);
    summary.push_str(" in ");
    plugin::push_secs(&mut summary, took);
    summary.push_str(" s: ");
    if typed.is_empty() {
        summary.push_str("no records");
    }
    for (i, answer) in typed.iter().enumerate() {
        if i > 0 {
            summary.push_str(", ");
        }
        summary.push_str(answer);
    }
    summary.push_str(" (");
    summary.push_str(server_label);
    summary.push(')');
    if !q.rcodes.contains(&rcode) {
        return report.fail(Status::Critical, Reason::Rcode, format!("{summary}; expected {}", q.rcodes.join(" or ")));
    }
    if rcode == "NOERROR" && typed.is_empty() && !q.allow_empty && q.expect.as_ref().is_none_or(|e| !e.is_empty()) {
        return report.fail(Status::Critical, Reason::Answer, summary);
    }
    if let Some(expected) = &q.expect {
        let mut want: Vec<String> = expected.iter().map(|e| normalise(e)).collect();
        let mut got: Vec<String> = typed.iter().map(|a| normalise(a)).collect();
        want.sort();
        want.dedup();
        got.sort();
        got.dedup();
        if want != got {
            return report.fail(
                Status::Critical,
                Reason::Answer,
                format!("{summary}; expected {}", expected.join(", ")),
            );
        }
    }
    if let Some(re) = &q.expect_match
        && !typed.iter().any(|a| re.is_match(a))
    {
        return report.fail(Status::Critical, Reason::Answer, format!("{summary}; no answer matches /{re}/"));
    }
    if let Some(re) = &q.expect_not_match
        && let Some(bad) = typed.iter().find(|a| re.is_match(a))
    {
        return report.fail(Status::Critical, Reason::Answer, format!("{summary}; answer {bad} matches /{re}/"));
    }
    report.message = summary;
    let status = q.thresholds.status(took);
    if status != Status::Ok {
        let limit = if status == Status::Critical { q.thresholds.critical } else { q.thresholds.warning };
        report.message.push_str(&format!(" (slower than {} s)", plugin::trim_secs(limit.unwrap_or_default())));
        report.escalate(status, Reason::Latency);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// glibc serves allocations up to 1,032 bytes from a per-thread cache; a larger box
    /// took ten times the instructions to allocate and free, on every check.
    #[test]
    fn a_running_check_fits_the_allocators_per_thread_cache() {
        let check = json!({"name": "d", "extension": "dns", "dns": {"name": "a.test", "server": "127.0.0.1:53"}});
        let check = Arc::new(check.as_object().cloned().unwrap());
        let running = Dns::default().run(check, BuiltinContext { client_name: "c".into() });
        assert!(std::mem::size_of_val(&*running) <= 1032, "{} bytes", std::mem::size_of_val(&*running));
    }

    fn compile(v: Value) -> Result<Query, String> {
        DnsParams::deserialize(v).map_err(|e| e.to_string()).and_then(DnsParams::compile)
    }

    #[test]
    fn parameters() {
        let q = compile(json!({"name": "www.example.test", "type": "mx", "server": "127.0.0.1:5353"})).unwrap();
        assert_eq!(q.question.to_string(), "www.example.test.");
        assert_eq!(q.record_type, RecordType::MX);
        assert_eq!(q.server, Some("127.0.0.1:5353".parse().unwrap()));
        let q = compile(json!({"name": "192.0.2.10", "type": "PTR", "server": "::1", "port": 5300})).unwrap();
        assert_eq!(q.question.to_string(), "10.2.0.192.in-addr.arpa.");
        assert_eq!(q.server, Some("[::1]:5300".parse().unwrap()));
        assert!(compile(json!({"name": "x", "type": "ANY"})).unwrap_err().contains("unknown record type \"ANY\""));
        assert!(compile(json!({"name": "x", "server": "dns.google"})).unwrap_err().contains("must be an IP address"));
        assert!(compile(json!({"name": "x", "expect_match": "("})).unwrap_err().contains("not a valid regex"));
        assert!(compile(json!({"name": "x", "rcodes": ["NOPE"]})).unwrap_err().contains("unknown rcode"));
        assert!(compile(json!({"name": "x", "protocol": "tcp"})).unwrap_err().contains("needs a server"));
    }

    #[test]
    fn a_negative_zero_threshold_is_compiled_as_zero() {
        // Equal parameters share one kept query, and -0.0 == 0.0: both must print `0`.
        let q = compile(json!({"name": "x", "warning": -0.0, "critical": -0.0})).unwrap();
        for limit in [q.thresholds.warning, q.thresholds.critical] {
            assert!(limit.unwrap().is_sign_positive());
        }
        assert_eq!(plugin::trim_secs(q.thresholds.warning.unwrap()), "0");
    }

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_name("2001:db8::1".parse().unwrap()).len(), "x.".len() * 32 + "ip6.arpa.".len());
        assert!(reverse_name("2001:db8::1".parse().unwrap()).starts_with("1.0.0.0."));
    }

    #[test]
    fn answers_compare_loosely() {
        assert_eq!(normalise("WWW.Example.Test."), "www.example.test");
        assert_eq!(normalise("2001:0db8::0001"), "2001:db8::1");
    }
}
