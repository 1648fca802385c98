//! `concierge http|dns|tls|tcp`: a built-in check from command-line flags. Each turns its
//! flags into the same check definition a Sensu server would send
//! (`{"extension": "http", "http": {…}}`), so the CLI and the fleet run one
//! implementation and print the same output.

use std::process::ExitCode;

use clap::Args;
use serde_json::{Value, json};

use super::args::{Auth, Common, finish, set, set_headers};
use super::{Complaint, Context, exit, for_one_check};
use crate::proto::Object;

/// A built-in's flags, as a check definition.
pub trait ToCheck {
    /// The check definition these flags describe.
    fn to_check(&self) -> Result<Object, String>;
}

/// Run the built-in the flags describe, once, as `concierge check` runs a definition.
pub async fn run(context: &Context, args: &(impl ToCheck + AsRef<Common>)) -> ExitCode {
    let definition = match args.to_check() {
        Ok(d) => d,
        Err(problem) => {
            eprintln!("UNKNOWN: {problem}");
            return ExitCode::from(exit::UNKNOWN);
        }
    };
    let settings = match for_one_check(&context.sources(false), Complaint::Plugin) {
        Ok(s) => s,
        Err(code) => return code,
    };
    super::check::run_once(context, settings, definition, args.as_ref().json).await
}

/// `concierge http URL`.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// http:// or https:// URL
    pub url: String,
    /// Request method [default: GET]
    #[arg(short = 'X', long)]
    pub method: Option<String>,
    /// Request header "Name: value" (repeatable)
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request body
    #[arg(long = "data")]
    pub body: Option<String>,
    /// Accepted status codes: 200, 2xx, 200-299 (repeatable) [default: 200-399]
    #[arg(long = "status")]
    pub status: Vec<String>,
    /// Follow redirects
    #[arg(long = "follow")]
    pub follow: bool,
    /// The body must match this regex
    #[arg(long = "match")]
    pub body_match: Option<String>,
    /// The body must not match this regex
    #[arg(long = "no-match")]
    pub body_not_match: Option<String>,
    /// Response header that must match "Name: REGEX" (repeatable)
    #[arg(long = "header-match", value_name = "NAME: REGEX")]
    pub headers_match: Vec<String>,
    #[command(flatten)]
    pub auth: Auth,
    /// Do not verify the TLS certificate
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// PEM file of CA certificates to trust
    #[arg(long)]
    pub ca: Option<String>,
    /// TLS server name (SNI)
    #[arg(long)]
    pub server_name: Option<String>,
    /// Address family: ipv4_first, ipv6_first, ipv4, ipv6
    #[arg(long)]
    pub ip: Option<String>,
    /// Warning above this many seconds
    #[arg(long)]
    pub warning: Option<f64>,
    /// Critical above this many seconds
    #[arg(long)]
    pub critical: Option<f64>,
    #[command(flatten)]
    pub common: Common,
}

/// `concierge dns NAME`.
#[derive(Debug, Clone, Args)]
pub struct DnsArgs {
    /// Name to resolve (an IP with --type PTR)
    pub name: String,
    /// Record type: A, AAAA, CNAME, MX, NS, TXT, SOA, SRV, PTR [default: A]
    #[arg(long = "type")]
    pub record_type: Option<String>,
    /// Server IP[:port] [default: the system resolver]
    #[arg(short = 's', long)]
    pub server: Option<String>,
    /// Query over TCP (needs --server)
    #[arg(long)]
    pub tcp: bool,
    /// Expected answer (repeatable; the set must match exactly)
    #[arg(short = 'e', long = "expect")]
    pub expect: Vec<String>,
    /// At least one answer must match this regex
    #[arg(long = "match")]
    pub expect_match: Option<String>,
    /// No answer may match this regex
    #[arg(long = "no-match")]
    pub expect_not_match: Option<String>,
    /// Accepted response code (repeatable) [default: NOERROR]
    #[arg(long = "rcode")]
    pub rcodes: Vec<String>,
    /// Warning above this many seconds
    #[arg(long)]
    pub warning: Option<f64>,
    /// Critical above this many seconds
    #[arg(long)]
    pub critical: Option<f64>,
    #[command(flatten)]
    pub common: Common,
}

/// `concierge tls HOST[:PORT]` or `concierge tls --file cert.pem`.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Host or host:port [default port: 443]
    #[arg(required_unless_present = "file")]
    pub host: Option<String>,
    /// Check a PEM file instead of a server
    #[arg(long)]
    pub file: Option<String>,
    /// TLS server name (SNI)
    #[arg(long)]
    pub server_name: Option<String>,
    /// Warning when fewer days are left [default: 14]
    #[arg(long)]
    pub warning: Option<f64>,
    /// Critical when fewer days are left [default: 7]
    #[arg(long)]
    pub critical: Option<f64>,
    /// Which expiry counts: leaf or chain [default: leaf]
    #[arg(long)]
    pub scope: Option<String>,
    /// Do not make an unverifiable chain critical
    #[arg(long)]
    pub no_verify: bool,
    /// PEM file of CA certificates to trust
    #[arg(long)]
    pub ca: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

impl ToCheck for HttpArgs {
    fn to_check(&self) -> Result<Object, String> {
        let mut p = Object::new();
        p.insert("url".into(), self.url.clone().into());
        set(&mut p, "method", self.method.clone().map(Value::from));
        set_headers(&mut p, "headers", &self.headers)?;
        set(&mut p, "body", self.body.clone().map(Value::from));
        if !self.status.is_empty() {
            let codes: Vec<Value> =
                self.status.iter().flat_map(|s| s.split(',')).map(|s| Value::String(s.trim().to_string())).collect();
            p.insert("status".into(), Value::Array(codes));
        }
        if self.follow {
            p.insert("follow_redirects".into(), true.into());
        }
        set(&mut p, "body_match", self.body_match.clone().map(Value::from));
        set(&mut p, "body_not_match", self.body_not_match.clone().map(Value::from));
        set_headers(&mut p, "headers_match", &self.headers_match)?;
        self.auth.apply(&mut p);
        let mut tls = Object::new();
        if self.insecure {
            tls.insert("insecure".into(), true.into());
        }
        set(&mut tls, "ca_file", self.ca.clone().map(Value::from));
        set(&mut tls, "server_name", self.server_name.clone().map(Value::from));
        if !tls.is_empty() {
            p.insert("tls".into(), Value::Object(tls));
        }
        set(&mut p, "ip", self.ip.clone().map(Value::from));
        set(&mut p, "warning", self.warning.map(Value::from));
        set(&mut p, "critical", self.critical.map(Value::from));
        finish("http", p, &self.common)
    }
}

impl ToCheck for DnsArgs {
    fn to_check(&self) -> Result<Object, String> {
        let mut p = Object::new();
        p.insert("name".into(), self.name.clone().into());
        set(&mut p, "type", self.record_type.clone().map(Value::from));
        set(&mut p, "server", self.server.clone().map(Value::from));
        if self.tcp {
            p.insert("protocol".into(), "tcp".into());
        }
        if !self.expect.is_empty() {
            p.insert("expect".into(), json!(self.expect));
        }
        set(&mut p, "expect_match", self.expect_match.clone().map(Value::from));
        set(&mut p, "expect_not_match", self.expect_not_match.clone().map(Value::from));
        if !self.rcodes.is_empty() {
            p.insert("rcodes".into(), json!(self.rcodes));
        }
        set(&mut p, "warning", self.warning.map(Value::from));
        set(&mut p, "critical", self.critical.map(Value::from));
        finish("dns", p, &self.common)
    }
}

impl ToCheck for TlsArgs {
    fn to_check(&self) -> Result<Object, String> {
        let mut p = Object::new();
        if let Some(host) = &self.host {
            let (h, port) = host_port(host)?;
            p.insert("host".into(), h.into());
            set(&mut p, "port", port.map(Value::from));
        }
        set(&mut p, "file", self.file.clone().map(Value::from));
        set(&mut p, "server_name", self.server_name.clone().map(Value::from));
        set(&mut p, "warning", self.warning.map(Value::from));
        set(&mut p, "critical", self.critical.map(Value::from));
        set(&mut p, "scope", self.scope.clone().map(Value::from));
        if self.no_verify {
            p.insert("verify".into(), false.into());
        }
        set(&mut p, "ca_file", self.ca.clone().map(Value::from));
        finish("tls", p, &self.common)
    }
}

/// `HOST:PORT` (or `[IPv6]:PORT`) as the host and the port, if one is given.
fn host_port(host: &str) -> Result<(String, Option<u16>), String> {
    match host.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(':') && port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty() => {
            Ok((h.to_string(), Some(port.parse::<u16>().map_err(|_| format!("bad port in {host:?}"))?)))
        }
        _ => Ok((host.to_string(), None)),
    }
}

/// `concierge tcp HOST:PORT`.
#[derive(Debug, Clone, Args)]
pub struct TcpArgs {
    /// host:port ([IPv6]:port)
    pub target: String,
    /// TLS after connecting
    #[arg(long)]
    pub tls: bool,
    /// Do not verify the server's certificate (with --tls)
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// PEM file of CA certificates to trust (with --tls)
    #[arg(long)]
    pub ca: Option<String>,
    /// TLS server name (with --tls)
    #[arg(long)]
    pub server_name: Option<String>,
    /// Text to send once connected (escapes: \r \n \t)
    #[arg(short = 's', long)]
    pub send: Option<String>,
    /// The response must match this regex
    #[arg(short = 'e', long)]
    pub expect: Option<String>,
    /// Text to send before closing
    #[arg(short = 'q', long)]
    pub quit: Option<String>,
    /// Warning above this many seconds
    #[arg(long)]
    pub warning: Option<f64>,
    /// Critical above this many seconds
    #[arg(long)]
    pub critical: Option<f64>,
    #[command(flatten)]
    pub common: Common,
}

/// `\r`, `\n`, `\t` and `\\` in a command-line string, as characters.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('r')) => out.push('\r'),
            ('\\', Some('n')) => out.push('\n'),
            ('\\', Some('t')) => out.push('\t'),
            ('\\', Some('\\')) => out.push('\\'),
            _ => {
                out.push(c);
                continue;
            }
        }
        chars.next();
    }
    out
}

impl ToCheck for TcpArgs {
    fn to_check(&self) -> Result<Object, String> {
        let mut p = Object::new();
        let (host, port) = host_port(&self.target)?;
        let port = port.ok_or_else(|| format!("{:?}: give HOST:PORT", self.target))?;
        p.insert("host".into(), host.trim_matches(['[', ']']).into());
        p.insert("port".into(), port.into());
        let mut tls = Object::new();
        if self.insecure {
            tls.insert("insecure".into(), true.into());
        }
        set(&mut tls, "ca_file", self.ca.clone().map(Value::from));
        set(&mut tls, "server_name", self.server_name.clone().map(Value::from));
        if !tls.is_empty() {
            if !self.tls {
                return Err("--insecure, --ca and --server-name go with --tls".into());
            }
            p.insert("tls".into(), Value::Object(tls));
        } else if self.tls {
            p.insert("tls".into(), true.into());
        }
        set(&mut p, "send", self.send.as_deref().map(unescape).map(Value::from));
        set(&mut p, "expect", self.expect.clone().map(Value::from));
        set(&mut p, "quit", self.quit.as_deref().map(unescape).map(Value::from));
        set(&mut p, "warning", self.warning.map(Value::from));
        set(&mut p, "critical", self.critical.map(Value::from));
        finish("tcp", p, &self.common)
    }
}

impl AsRef<Common> for TcpArgs {
    fn as_ref(&self) -> &Common {
        &self.common
    }
}

impl AsRef<Common> for HttpArgs {
    fn as_ref(&self) -> &Common {
        &self.common
    }
}

impl AsRef<Common> for DnsArgs {
    fn as_ref(&self) -> &Common {
        &self.common
    }
}

impl AsRef<Common> for TlsArgs {
    fn as_ref(&self) -> &Common {
        &self.common
    }
}
