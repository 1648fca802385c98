//! monitoring-plugins' `check_dns` (2.x, Debian's), in-process: the same options, status line,
//! perfdata and exit status.
//!
//! The plugin runs `nslookup -sil HOST [SERVER]` and reads its output line by line
//! (`plugins/check_dns.c`, v2.3.3). Here the two halves stay apart: [`nslookup`] makes the
//! lookups `nslookup` (BIND 9.18, Debian 12) makes — A then AAAA for a name, the resolver's
//! search list and `ndots`, PTR for an address, three tries of 5 s per server over UDP — and
//! writes their answers as it writes them; [`judge`] then reads those lines exactly as the
//! plugin reads them (its substring tests, its sorting of the addresses, its quirks: an empty
//! answer counts as "not found", `-a` prefixes are IPv4 only). The elapsed time runs over the
//! whole lookup, as the plugin times `nslookup`; `-t` seconds (10) bound it the way the plugin's
//! alarm does.
//!
//! Not run natively: `-v`, `-h`, `-V`, a server or `-r` given by name, threshold ranges,
//! a resolver configuration with options other than `ndots` (nslookup would honour some).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr as _;
use std::time::Duration;

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::time::Instant;

use super::Parsed;
use super::dns_query::{Exchange, exchange};
use super::options::{self, Opt, switch, value};

/// The resolver configuration `nslookup` reads.
const RESOLV_CONF: &str = "/etc/resolv.conf";
/// nslookup's wait for one answer, and its tries per lookup over UDP.
const TRY_TIMEOUT: Duration = Duration::from_secs(5);
const TRIES: usize = 3;
/// `ADDRESS_LENGTH`: the plugin's buffers for the host, server and expected addresses.
const ADDRESS_LENGTH: usize = 256;

const OPTIONS: &[Opt] = &[
    switch("help", Some('h'), Some("help")),
    switch("version", Some('V'), Some("version")),
    switch("verbose", Some('v'), Some("verbose")),
    value("timeout", Some('t'), Some("timeout")),
    value("hostname", Some('H'), Some("hostname")),
    value("server", Some('s'), Some("server")),
    value("reverse_server", Some('r'), Some("reverse-server")),
    value("expected_address", Some('a'), Some("expected-address")),
    switch("expect_nxdomain", Some('n'), Some("expect-nxdomain")),
    switch("expect_authority", Some('A'), Some("expect-authority")),
    switch("all", Some('L'), Some("all")),
    value("warning", Some('w'), Some("warning")),
    value("critical", Some('c'), Some("critical")),
];

/// What the plugin was asked, and the resolver configuration nslookup would read.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    query: String,
    /// `-s` as given (the plugin compares nslookup's `Server:` line with it), and the address.
    server: Option<(String, IpAddr)>,
    expected: Vec<String>,
    expect_nxdomain: bool,
    expect_authority: bool,
    all_match: bool,
    warning: Option<f64>,
    critical: Option<f64>,
    /// The plugin's alarm, if any (`-t 0` sets none).
    timeout: Option<Duration>,
    resolver: ResolvConf,
}

/// What `nslookup` takes from `/etc/resolv.conf`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvConf {
    nameservers: Vec<IpAddr>,
    search: Vec<String>,
    ndots: usize,
}

impl ResolvConf {
    /// Read as BIND's `irs_resconf` reads it, or why not natively.
    pub fn read(text: &str) -> Result<Self, String> {
        let mut conf = Self { ndots: 1, ..Self::default() };
        for line in text.lines() {
            let line = line.trim_start();
            if line.starts_with(['#', ';']) {
                continue;
            }
            let mut words = line.split_whitespace();
            match words.next() {
                None => {}
                Some("nameserver") => {
                    let server = words.next().unwrap_or_default();
                    let ip = server
                        .parse::<IpAddr>()
                        .map_err(|_| format!("nameserver {server:?} in {RESOLV_CONF} is not supported natively"))?;
                    if conf.nameservers.len() < 3 {
                        conf.nameservers.push(ip);
                    }
                }
                Some("domain") => conf.search = words.next().map(|d| vec![d.to_string()]).unwrap_or_default(),
                Some("search") => {
                    conf.search = words.take_while(|w| !w.starts_with(['#', ';'])).map(str::to_string).collect();
                    if conf.search.len() > 6 {
                        return Err(format!("more than 6 search domains in {RESOLV_CONF} are not supported natively"));
                    }
                }
                Some("options") => {
                    for option in words {
                        match option.strip_prefix("ndots:").map(str::parse::<usize>) {
                            Some(Ok(n)) => conf.ndots = n.min(255),
                            // What nslookup's lookups and lines do not depend on.
                            None if matches!(option, "edns0" | "trust-ad") => {}
                            _ => return Err(format!("option {option} in {RESOLV_CONF} is not supported natively")),
                        }
                    }
                }
                Some(other) => return Err(format!("{other} in {RESOLV_CONF} is not supported natively")),
            }
        }
        Ok(conf)
    }
}

/// C's `atoi`.
fn atoi(text: &str) -> i64 {
    super::check_http::atoi(text)
}

/// Parse `check_dns`'s arguments.
pub fn parse(argv: &[String]) -> Parsed<Args> {
    let conf = std::fs::read(RESOLV_CONF).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    match parse_with(argv, &conf) {
        Ok(args) => Parsed::Run(args),
        Err(why) => Parsed::Unsupported(why),
    }
}

fn parse_with(argv: &[String], resolv_conf: &str) -> Result<Args, String> {
    let argv: Vec<String> = argv.iter().map(|w| if w == "-to" { "-t".to_string() } else { w.clone() }).collect();
    let given = options::parse(OPTIONS, &argv)?;
    for (key, flag) in [("help", "-h"), ("version", "-V"), ("verbose", "-v")] {
        if given.has(key) {
            return Err(format!("option {flag} is not supported natively"));
        }
    }
    // A server name is resolved first (`host_or_die`), and nslookup prints what it was given.
    let literal = |server: &str| -> Result<IpAddr, String> {
        server
            .parse::<IpAddr>()
            .ok()
            .filter(|ip| ip.to_string() == server)
            .ok_or(format!("a server given by name ({server}) is not supported natively"))
    };
    if let Some(r) = given.get("reverse_server") {
        literal(r)?;
    }
    let mut positional = given.positional().iter();
    let query = match given.get("hostname") {
        Some(h) => h.to_string(),
        None => positional.next().cloned().unwrap_or_default(),
    };
    let server = match given.get("server").map(str::to_string).or_else(|| positional.next().cloned()) {
        Some(s) => Some((s.clone(), literal(&s)?)),
        None => None,
    };
    let expected: Vec<String> =
        given.all("expected_address").iter().flat_map(|a| a.split(',')).map(str::to_string).collect();
    if query.is_empty()
        || query.len() >= ADDRESS_LENGTH
        || given.all("expected_address").iter().any(|a| a.len() >= ADDRESS_LENGTH)
    {
        return Err("arguments the plugin refuses are not run natively".into());
    }
    if !expected.is_empty() && given.has("expect_nxdomain") {
        return Err("--expected-address with --expect-nxdomain is refused by the plugin".into());
    }
    if expected.len() > 30 {
        return Err("more than 30 expected addresses are not run natively".into());
    }
    for cidr in expected.iter().filter_map(|e| e.split_once('/')) {
        if !matches!(cidr.1.parse::<u32>(), Ok(1..=32)) || cidr.1.starts_with('+') {
            return Err(format!("prefix {:?} is not supported natively", cidr.1));
        }
    }
    if query.parse::<IpAddr>().is_err() && !plain_name(&query) {
        return Err(format!("host {query:?} is not a name the native path looks up"));
    }
    let warning = given.seconds("warning", "-w")?;
    let critical = given.seconds("critical", "-c")?;
    let timeout = match given.get("timeout").map(atoi) {
        None => Some(Duration::from_secs(10)),
        Some(0) => None,
        Some(t @ 1..=86_400) => Some(Duration::from_secs(t as u64)),
        Some(t) => return Err(format!("timeout {t} is not one the native path runs")),
    };
    let resolver = ResolvConf::read(resolv_conf)?;
    if server.is_none() && resolver.nameservers.is_empty() {
        return Err(format!("{RESOLV_CONF} without a nameserver is not supported natively"));
    }
    Ok(Args {
        query,
        server,
        expected,
        expect_nxdomain: given.has("expect_nxdomain"),
        expect_authority: given.has("expect_authority"),
        all_match: given.has("all"),
        warning,
        critical,
        timeout,
        resolver,
    })
}

/// A host name nslookup looks up as it is: letters, digits, `-`, `_`, dots between labels.
fn plain_name(name: &str) -> bool {
    let labels = name.strip_suffix('.').unwrap_or(name);
    !labels.is_empty()
        && labels.len() < 254
        && labels.split('.').all(|l| {
            !l.is_empty() && l.len() < 64 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && !labels.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// What `nslookup` wrote, and whether it exited non-zero.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lookup {
    /// Its standard output, line by line.
    pub lines: Vec<String>,
    /// Whether it exited with an error status.
    pub failed: bool,
}

/// The answer to one question from the first server that answers, or the lines nslookup
/// writes when none does.
async fn ask(servers: &[IpAddr], name: &Name, record_type: RecordType) -> Result<(IpAddr, Message), Vec<String>> {
    let mut errors = Vec::new();
    // An answer nslookup does not settle for while another server is left (SERVFAIL, or no
    // recursion available): the next server is asked, and this one stands if none does better.
    let mut fallback = None;
    for _ in 0..TRIES {
        for (i, ip) in servers.iter().enumerate() {
            let server = SocketAddr::new(*ip, 53);
            let answer = match exchange(server, name, record_type, TRY_TIMEOUT).await {
                Ok(message) if message.metadata.truncation => tcp_exchange(server, name, record_type).await.ok_or(()),
                Ok(message) => Ok(message),
                Err(failure) => {
                    errors.push(exchange_error(server, failure));
                    continue;
                }
            };
            match answer {
                Err(()) => errors.push(format!(";; communications error to {}: end of file", port_text(server))),
                Ok(message)
                    if i + 1 < servers.len()
                        && (message.metadata.response_code == ResponseCode::ServFail
                            || !message.metadata.recursion_available) =>
                {
                    fallback = Some((*ip, message));
                }
                Ok(message) => return Ok((*ip, message)),
            }
        }
        if let Some(answer) = fallback.take() {
            return Ok(answer);
        }
    }
    errors.push(";; no servers could be reached".into());
    Err(errors)
}

/// How nslookup reports a try that got no answer.
fn exchange_error(server: SocketAddr, failure: Exchange) -> String {
    match failure {
        Exchange::Refused => format!(";; communications error to {}: connection refused", port_text(server)),
        Exchange::TimedOut => format!(";; communications error to {}: timed out", port_text(server)),
        Exchange::Failed(why) => format!(";; communications error to {}: {why}", port_text(server)),
    }
}

/// `127.0.0.1#53`, as BIND prints a server.
fn port_text(server: SocketAddr) -> String {
    format!("{}#{}", server.ip(), server.port())
}

/// A truncated UDP answer asked again over TCP, as nslookup does.
async fn tcp_exchange(server: SocketAddr, name: &Name, record_type: RecordType) -> Option<Message> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (id, bytes) = super::dns_query::question(name, record_type)?;
    let talk = async {
        let mut stream = tokio::net::TcpStream::connect(server).await.ok()?;
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).await.ok()?;
        let length = stream.read_u16().await.ok()?;
        let mut buf = vec![0u8; usize::from(length)];
        stream.read_exact(&mut buf).await.ok()?;
        Message::from_vec(&buf).ok().filter(|m| m.metadata.id == id)
    };
    tokio::time::timeout(TRY_TIMEOUT, talk).await.ok().flatten()
}

/// A name as nslookup prints it: no final dot.
fn shown(name: &Name) -> String {
    let text = name.to_ascii();
    text.strip_suffix('.').map(str::to_string).unwrap_or(text)
}

/// BIND's text for a response code.
fn rcode_text(code: ResponseCode) -> String {
    match code {
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        other => format!("RESERVED{}", u16::from(other)),
    }
}

/// An answer record as nslookup prints it.
fn record_lines(record: &Record, out: &mut Vec<String>) {
    let owner = shown(&record.name);
    match &record.data {
        RData::A(a) => out.extend([format!("Name:\t{owner}"), format!("Address: {a}")]),
        RData::AAAA(a) => out.extend([format!("Name:\t{owner}"), format!("Address: {a}")]),
        RData::CNAME(target) => out.push(format!("{owner}\tcanonical name = {}", target.0.to_ascii())),
        RData::PTR(target) => out.push(format!("{owner}\tname = {}", target.0.to_ascii())),
        other => out.push(format!("{owner}\t{} = {other}", record.record_type().to_string().to_ascii_lowercase())),
    }
}

/// The end of the answer's CNAME chain when the answer has no record for it.
fn dangling(answers: &[Record]) -> Option<Name> {
    let mut target = None;
    for record in answers {
        if let RData::CNAME(cname) = &record.data {
            target = Some(cname.0.clone());
        }
    }
    let target = target?;
    (!answers.iter().any(|r| r.name == target && r.record_type() != RecordType::CNAME)).then_some(target)
}

/// The names nslookup tries for `query`, in order: as it is first when it has `ndots` dots,
/// else after the search list; a final dot means as it is only.
fn candidates(query: &str, conf: &ResolvConf) -> Vec<Name> {
    let absolute = |text: &str| Name::from_str(&format!("{}.", text.trim_end_matches('.'))).ok();
    if query.ends_with('.') {
        return absolute(query).into_iter().collect();
    }
    let searched: Vec<Name> = conf.search.iter().filter_map(|domain| absolute(&format!("{query}.{domain}"))).collect();
    let itself = absolute(query);
    if query.matches('.').count() >= conf.ndots {
        itself.into_iter().chain(searched).collect()
    } else {
        searched.into_iter().chain(itself).collect()
    }
}

/// The reverse name of an address (`10.2.0.192.in-addr.arpa.`).
fn reverse(ip: IpAddr) -> Name {
    let text = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut t = String::new();
            for byte in v6.octets().iter().rev() {
                t.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            t + "ip6.arpa."
        }
    };
    Name::from_str(&text).expect("a reverse name is a name")
}

/// What `nslookup -sil QUERY [SERVER]` prints.
pub async fn nslookup(args: &Args) -> Lookup {
    let servers: Vec<IpAddr> = match &args.server {
        Some((_, ip)) => vec![*ip],
        None => args.resolver.nameservers.clone(),
    };
    let mut out = Lookup::default();
    if let Ok(ip) = args.query.parse::<IpAddr>() {
        let name = reverse(ip);
        match ask(&servers, &name, RecordType::PTR).await {
            Err(lines) => return Lookup { lines, failed: true },
            Ok((_, response)) if response.metadata.response_code != ResponseCode::NoError => {
                out.lines.push(format!(
                    "** server can't find {}: {}",
                    shown(&name),
                    rcode_text(response.metadata.response_code)
                ));
                out.failed = true;
            }
            // No "Non-authoritative answer:" line for a PTR lookup.
            Ok((_, response)) => {
                if response.answers.is_empty() {
                    out.lines.push(format!("*** Can't find {}: No answer", shown(&name)));
                }
                for record in &response.answers {
                    record_lines(record, &mut out.lines);
                }
            }
        }
        out.lines.push(String::new());
        return out;
    }
    let names = candidates(&args.query, &args.resolver);
    let mut header = false;
    for (i, name) in names.iter().enumerate() {
        let (server, response) = match ask(&servers, name, RecordType::A).await {
            Ok(answer) => answer,
            Err(lines) => {
                out.lines.extend(lines);
                out.failed = true;
                return out;
            }
        };
        if !header {
            header = true;
            let given = args.server.as_ref().map_or_else(|| server.to_string(), |(text, _)| text.clone());
            out.lines.extend([
                format!("Server:\t\t{given}"),
                format!("Address:\t{}", port_text(SocketAddr::new(server, 53))),
                String::new(),
            ]);
        }
        let code = response.metadata.response_code;
        if code == ResponseCode::NXDomain && i + 1 < names.len() {
            continue;
        }
        if code != ResponseCode::NoError {
            out.lines.push(format!("** server can't find {}: {}", shown(name), rcode_text(code)));
            out.failed = true;
            break;
        }
        if !response.metadata.authoritative {
            out.lines.push("Non-authoritative answer:".into());
        }
        let a_noanswer = response.answers.is_empty();
        for record in &response.answers {
            record_lines(record, &mut out.lines);
        }
        // A CNAME whose target the answer leaves out is followed with a lookup of its own.
        if let Some(target) = dangling(&response.answers) {
            match ask(&[server], &target, RecordType::A).await {
                Err(lines) => {
                    out.lines.extend(lines);
                    out.failed = true;
                    return out;
                }
                Ok((_, chased)) if chased.metadata.response_code != ResponseCode::NoError => {
                    out.lines.push(format!(
                        "** server can't find {}: {}",
                        shown(&target),
                        rcode_text(chased.metadata.response_code)
                    ));
                    out.failed = true;
                    break;
                }
                Ok((_, chased)) => {
                    for record in &chased.answers {
                        record_lines(record, &mut out.lines);
                    }
                }
            }
        }
        match ask(&[server], name, RecordType::AAAA).await {
            Err(lines) => {
                out.lines.extend(lines);
                out.failed = true;
                return out;
            }
            Ok((_, aaaa)) if aaaa.metadata.response_code != ResponseCode::NoError => {
                out.lines.push(format!(
                    "** server can't find {}: {}",
                    shown(name),
                    rcode_text(aaaa.metadata.response_code)
                ));
                out.failed = true;
            }
            Ok((_, aaaa)) => {
                if aaaa.answers.is_empty() && a_noanswer {
                    out.lines.push(format!("*** Can't find {}: No answer", shown(name)));
                }
                for record in aaaa.answers.iter().filter(|r| r.record_type() != RecordType::CNAME) {
                    record_lines(record, &mut out.lines);
                }
            }
        }
        break;
    }
    out.lines.push(String::new());
    out
}

/// Run the plugin: its text and exit status.
pub async fn run(args: &Args) -> (String, i32) {
    let started = Instant::now();
    let lookup = match args.timeout {
        Some(limit) => match tokio::time::timeout(limit, nslookup(args)).await {
            Ok(lookup) => lookup,
            Err(_) => return ("CRITICAL - Plugin timed out while executing system call\n".into(), 2),
        },
        None => nslookup(args).await,
    };
    judge(args, &lookup, started.elapsed().as_secs_f64())
}

/// `error_scan`: the line's verdict, or the plugin's last word (it `die`s); and whether it
/// says the name does not exist.
fn error_scan(line: &str, server: &str, nxdomain: &mut bool) -> Result<i32, (String, i32)> {
    if line.contains("Non-existent")
        || line.contains("** server can't find")
        || line.contains("** Can't find")
        || line.contains("NXDOMAIN")
    {
        *nxdomain = true;
    }
    let die = |text: String| Err((text, 2));
    if line.contains("Note: nslookup is deprecated and may be removed from future releases.")
        || line.contains("Consider using the `dig' or `host' programs instead.  Run nslookup with")
        || line.contains("the `-sil[ent]' option to prevent this message from appearing.")
    {
        Ok(0)
    } else if line.contains("No response from server") || line.contains("no servers could be reached") {
        die(format!("No response from DNS {server}\n"))
    } else if line.contains("No records") {
        die(format!("DNS {server} has no records\n"))
    } else if line.contains("Connection refused")
        || line.contains("Couldn't find server")
        || line.contains("Refused")
        || (line.contains("** server can't find") && line.contains(": REFUSED"))
    {
        die(format!("Connection to DNS {server} was refused\n"))
    } else if line.contains("Query refused") {
        die(format!("Query was refused by DNS server at {server}\n"))
    } else if line.contains("No information") {
        die(format!("No information returned by DNS server at {server}\n"))
    } else if line.contains("Network is unreachable") {
        die("Network is unreachable\n".into())
    } else if line.contains("Server failure") {
        die(format!("DNS failure for {server}\n"))
    } else if line.contains("Format error") || line.contains("Timed out") {
        Ok(1)
    } else {
        Ok(0)
    }
}

/// `ip2long`: `%3lu.%3lu.%3lu.%3lu` read from the start of the text, each below 256; else 0.
fn ip2long(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut parts = [0u64; 4];
    for (i, part) in parts.iter_mut().enumerate() {
        if i > 0 {
            if bytes.get(at) != Some(&b'.') {
                return 0;
            }
            at += 1;
        }
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        // `%3lu`: a sign counts in the field's three characters.
        let field = at;
        if bytes.get(at) == Some(&b'+') {
            at += 1;
        }
        let start = at;
        while at < field + 3 && bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return 0;
        }
        *part = text[start..at].parse().unwrap_or(256);
        if *part > 255 {
            return 0;
        }
    }
    parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]
}

/// `ip_match_cidr`: whether `address` is in `cidr` (`a.b.c.d/n`) as the plugin computes it.
fn ip_match_cidr(address: &str, cidr: &str) -> bool {
    let mut parts = cidr.split('/').filter(|p| !p.is_empty());
    let (Some(subnet), Some(mask)) = (parts.next(), parts.next()) else { return false };
    let shift = 32 - atoi(mask).clamp(1, 32) as u32;
    // An `int` mask widened to `unsigned long`, as C does it.
    let keep = (!(1i32.wrapping_shl(shift).wrapping_sub(1))) as i64 as u64;
    (ip2long(address) & keep) == (ip2long(subnet) >> shift) << shift
}

/// `fperfdata("time", …)`.
fn perfdata(elapsed: f64, warning: Option<f64>, critical: Option<f64>) -> String {
    let limit = |t: Option<f64>| t.map(|t| format!("{t:.6}")).unwrap_or_default();
    format!("time={elapsed:.6}s;{};{};{:.6}", limit(warning), limit(critical), 0.0)
}

/// The plugin reading nslookup's lines: its text and exit status.
pub fn judge(args: &Args, lookup: &Lookup, elapsed: f64) -> (String, i32) {
    let server = args.server.as_ref().map_or("", |(text, _)| text.as_str());
    let query = args.query.as_str();
    let mut msg = String::new();
    let mut result = 3;
    if lookup.failed {
        msg = "nslookup returned an error status".into();
        result = 1;
    }
    let mut addresses: Option<Vec<String>> = None;
    let mut parse_address = false;
    let mut non_authoritative = false;
    let mut nxdomain = false;
    for line in &lookup.lines {
        let found = addresses.get_or_insert_with(Vec::new);
        let lower = line.to_ascii_lowercase();
        if lower.contains(".in-addr.arpa") || lower.contains(".ip6.arpa") {
            match line.find("name = ") {
                Some(at) => found.push(line[at + 7..].to_string()),
                // The plugin sets WARNING here, which the line's own scan below overwrites.
                None => msg = "Warning plugin error".into(),
            }
        }
        if line.contains("Server:") && !server.is_empty() {
            let after = &line[line.find(':').map_or(0, |at| at + 1)..];
            let given = after.trim_start_matches('\t').trim_end();
            if given.is_empty() {
                return ("DNS CRITICAL - '/usr/bin/nslookup -sil' returned empty server string\n".into(), 2);
            }
            if given != server {
                return (format!("DNS CRITICAL - No response from DNS {server}\n"), 2);
            }
        }
        if line.contains("Name:") {
            parse_address = true;
        } else if parse_address && (line.contains("Address:") || line.contains("Addresses:")) {
            let after = &line[line.find(':').map_or(0, |at| at + 1)..];
            let address = after.trim_start_matches(' ').trim_end();
            if address.is_empty() {
                return ("DNS CRITICAL - '/usr/bin/nslookup -sil' returned empty host name string\n".into(), 2);
            }
            found.push(address.to_string());
        } else if line.contains("Non-authoritative answer:") {
            non_authoritative = true;
        }
        match error_scan(line, server, &mut nxdomain) {
            Err(last_word) => return last_word,
            Ok(0) => result = 0,
            Ok(state) => {
                result = state;
                msg = line.find(':').map_or(String::new(), |at| line[at + 1..].to_string());
                break;
            }
        }
    }
    if nxdomain && !args.expect_nxdomain {
        return (format!("Domain '{query}' was not found by the server\n"), 2);
    }
    let Some(mut found) = addresses else {
        return ("DNS CRITICAL - '/usr/bin/nslookup -sil' msg parsing exited with no address\n".into(), 2);
    };
    found.sort();
    let mut address = found.join(",");
    if result == 0 && !args.expected.is_empty() {
        result = 2;
        // The plugin's bit masks are `int`s widened to `unsigned long`.
        let mask = |n: usize| 1i32.wrapping_shl(n as u32).wrapping_sub(1) as i64 as u64;
        let bit = |n: usize| !(1i32.wrapping_shl(n as u32)) as i64 as u64;
        let mut expect_match = mask(args.expected.len());
        let mut addr_match = mask(found.len());
        for (i, expected) in args.expected.iter().enumerate() {
            for (j, got) in found.iter().enumerate() {
                if got == expected || ip_match_cidr(got, expected) {
                    result = 0;
                    addr_match &= bit(j);
                    expect_match &= bit(i);
                }
            }
        }
        if args.all_match && (expect_match != 0 || addr_match != 0) {
            result = 2;
        }
        if result == 2 {
            msg = format!("expected '{}' but got '{address}'", args.expected.join("; "));
        }
    }
    if args.expect_nxdomain {
        if !nxdomain {
            result = 2;
            msg = format!("Domain '{query}' was found by the server: '{address}'\n");
        } else {
            address = "NXDOMAIN".into();
        }
    }
    if result == 0 && args.expect_authority && non_authoritative {
        result = 2;
        msg = format!("server {server} is not authoritative for {query}");
    }
    if result == 0 {
        result = super::time_state(elapsed, args.warning, args.critical);
        let state = ["OK", "WARNING", "CRITICAL"][result as usize];
        // ngettext's count is the elapsed time cut to whole seconds.
        let unit = if elapsed as u64 == 1 { "second" } else { "seconds" };
        let text = format!(
            "DNS {state}: {elapsed:.3} {unit} response time. {query} returns {address}|{}\n",
            perfdata(elapsed, args.warning, args.critical)
        );
        return (text, result);
    }
    let msg = if msg.is_empty() { " Probably a non-existent host/domain".to_string() } else { msg };
    match result {
        1 => (format!("DNS WARNING - {msg}\n"), 1),
        2 => (format!("DNS CRITICAL - {msg}\n"), 2),
        _ => (format!("DNS UNKNOWN - {msg}\n"), 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str, conf: &str) -> Result<Args, String> {
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        parse_with(&words, conf)
    }

    fn lookup(lines: &[&str], failed: bool) -> Lookup {
        Lookup { lines: lines.iter().map(|l| l.to_string()).collect(), failed }
    }

    #[test]
    fn options_parse_as_the_plugin_reads_them() {
        let conf = "nameserver 10.0.0.53\n";
        let a = args("-H www.example -s 127.0.0.77 -a 192.0.2.1,192.0.2.2 -a 10.0.0.0/8 -A -L -w 1 -c 2 -to 5", conf)
            .unwrap();
        assert_eq!(a.query, "www.example");
        assert_eq!(a.server.as_ref().unwrap().0, "127.0.0.77");
        assert_eq!(a.expected, ["192.0.2.1", "192.0.2.2", "10.0.0.0/8"]);
        assert!(a.expect_authority && a.all_match && !a.expect_nxdomain);
        assert_eq!((a.warning, a.critical, a.timeout), (Some(1.0), Some(2.0), Some(Duration::from_secs(5))));
        let b = args("www.example 127.0.0.77", conf).unwrap();
        assert_eq!((b.query.as_str(), b.server.unwrap().0.as_str()), ("www.example", "127.0.0.77"));
        assert_eq!(args("-H www.example -t 0", conf).unwrap().timeout, None);
        for refused in [
            "-H www.example -s dns.example",
            "-H www.example -r dns.example",
            "-H www.example -v",
            "-H www.example -w 1:2",
            "-H www.example -a 10.0.0.0/0",
            "-H www.example -a 10.0.0.0/33",
            "-H www.example -a 192.0.2.1 -n",
            "-H 'a b'",
            "-H 1.2.3",
            "-s 127.0.0.1",
            "-H www.example -s 127.000.0.1",
        ] {
            assert!(args(refused, conf).is_err(), "{refused}");
        }
        assert!(args("-H www.example", "").is_err(), "no nameserver");
        assert!(args("-H www.example", "nameserver 10.0.0.53\noptions rotate\n").is_err());
        let c = args("-H www", "# c\nnameserver 10.0.0.53\nsearch a.example b.example\noptions ndots:2\n").unwrap();
        assert_eq!((c.resolver.search.len(), c.resolver.ndots), (2, 2));
    }

    #[test]
    fn the_search_list_comes_first_below_ndots() {
        let conf = ResolvConf { nameservers: vec![], search: vec!["a.example".into()], ndots: 1 };
        let text = |q: &str| candidates(q, &conf).iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(text("www"), ["www.a.example.", "www."]);
        assert_eq!(text("www.b"), ["www.b.", "www.b.a.example."]);
        assert_eq!(text("www.b."), ["www.b."]);
        assert_eq!(reverse("192.0.2.10".parse().unwrap()).to_string(), "10.2.0.192.in-addr.arpa.");
        assert!(reverse("2001:db8::1".parse().unwrap()).to_string().starts_with("1.0.0.0.0.0.0.0"));
    }

    #[test]
    fn nslookup_lines_are_read_as_the_plugin_reads_them() {
        let a = args("-H www.example -s 127.0.0.77", "").unwrap();
        let found = lookup(
            &[
                "Server:\t\t127.0.0.77",
                "Address:\t127.0.0.77#53",
                "",
                "Name:\twww.example",
                "Address: 192.0.2.11",
                "Name:\twww.example",
                "Address: 192.0.2.10",
                "",
            ],
            false,
        );
        let (text, status) = judge(&a, &found, 0.0123);
        assert_eq!(
            (text.as_str(), status),
            (
                "DNS OK: 0.012 seconds response time. www.example returns 192.0.2.10,192.0.2.11|time=0.012300s;;;0.000000\n",
                0
            )
        );
        assert_eq!(judge(&a, &found, 1.5).0.split(' ').nth(3), Some("second"));
        let other = lookup(&["Server:\t\t127.0.0.1", "Name:\tx", "Address: 192.0.2.1"], false);
        assert_eq!(judge(&a, &other, 0.01), ("DNS CRITICAL - No response from DNS 127.0.0.77\n".into(), 2));
        let timed_out = lookup(&[";; connection timed out; no servers could be reached"], true);
        assert_eq!(judge(&a, &timed_out, 0.01), ("No response from DNS 127.0.0.77\n".into(), 2));
        let format = lookup(&["Server:\t\t127.0.0.77", "x: Format error here"], false);
        assert_eq!(judge(&a, &format, 0.01), ("DNS WARNING -  Format error here\n".into(), 1));
        let dangling = lookup(&["Server:\t\t127.0.0.77", "cname.example\tcanonical name = gone.example."], false);
        assert_eq!(
            judge(&a, &dangling, 0.01).0,
            "DNS OK: 0.010 seconds response time. www.example returns |time=0.010000s;;;0.000000\n"
        );
        assert_eq!(judge(&a, &Lookup::default(), 0.01).1, 2);
    }

    #[test]
    fn prefixes_match_as_the_plugin_computes_them() {
        assert!(ip_match_cidr("192.0.2.10", "192.0.2.0/24"));
        assert!(!ip_match_cidr("192.0.3.10", "192.0.2.0/24"));
        assert!(ip_match_cidr("192.0.2.10", "192.0.2.10/32"));
        assert!(ip_match_cidr("10.1.2.3", "10.0.0.0/8"));
        // IPv6 addresses read as 0 on both sides, so any IPv6 prefix matches them.
        assert!(ip_match_cidr("2001:db8::10", "2001:db8::/32"));
        assert!(!ip_match_cidr("192.0.2.10", "192.0.2.0"));
        assert_eq!(ip2long("1.2.3.4"), 0x01020304);
        assert_eq!(ip2long("1.2.3.256"), 0);
        assert_eq!(ip2long("1.2.3"), 0);
    }
}
