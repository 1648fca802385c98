//! One DNS query as the sensu-plugins-dns scripts make it with `Dnsruby::Resolver#query`:
//! against a given server (and port) or the system's, over UDP or TCP; the answer's records,
//! or NXDOMAIN, or the failure as dnsruby names it.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr as _;
use std::time::Duration;

use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::RecordType;

use crate::checks::net::{self, DnsProtocol};

/// A query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    name: String,
    record_type: RecordType,
    /// The type as given (`A`, `aaaa`), for the plugin's messages.
    pub type_text: String,
    server: Option<SocketAddr>,
    tcp: bool,
}

impl Query {
    /// A query for `name`, or why it is not run natively.
    pub fn new(
        name: &str,
        record_type: &str,
        class: &str,
        server: Option<&str>,
        port: Option<i64>,
        tcp: bool,
    ) -> Result<Self, String> {
        if name.parse::<IpAddr>().is_ok() {
            return Err(format!("{name}: dnsruby asks an address as its reverse name; not run natively"));
        }
        if !class.eq_ignore_ascii_case("IN") {
            return Err(format!("class {class} is not run natively"));
        }
        let parsed = RecordType::from_str(&record_type.to_ascii_uppercase())
            .map_err(|_| format!("record type {record_type} is not run natively"))?;
        if matches!(parsed, RecordType::ANY | RecordType::AXFR | RecordType::IXFR) {
            return Err(format!("record type {record_type} is not run natively"));
        }
        let port = match port {
            None => 53,
            Some(p @ 1..=65535) => p as u16,
            Some(p) => return Err(format!("port {p} is not run natively")),
        };
        let server = match server {
            None => {
                if port != 53 {
                    return Err("a port without a server is not run natively".into());
                }
                None
            }
            Some(s) => Some(SocketAddr::new(
                s.parse::<IpAddr>().map_err(|_| format!("server {s:?} is not an IP address"))?,
                port,
            )),
        };
        if server.is_none() && tcp {
            return Err("TCP to the system's resolver is not run natively".into());
        }
        Ok(Self { name: name.to_string(), record_type: parsed, type_text: record_type.to_string(), server, tcp })
    }
}

/// What a query found.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The answer: the records of the asked type, and every record (a CNAME chain too), as
    /// dnsruby prints them (`www.example.\t60\tIN\tA\t192.0.2.10`); possibly none.
    Records {
        /// Of the type asked.
        typed: Vec<String>,
        /// The whole answer section.
        all: Vec<String>,
    },
    /// The name does not exist.
    NxDomain,
    /// Another failure, worded as dnsruby's exception message.
    Failed(String),
}

/// A record as dnsruby prints it.
fn text(record: &hickory_resolver::proto::rr::Record) -> String {
    format!("{}\t{}\tIN\t{}\t{}", record.name, record.ttl, record.record_type(), record.data)
}

fn records(answers: &[hickory_resolver::proto::rr::Record], record_type: RecordType) -> Answer {
    Answer::Records {
        typed: answers.iter().filter(|r| r.record_type() == record_type).map(text).collect(),
        all: answers.iter().map(text).collect(),
    }
}

/// Run the query, waiting at most `limit` for the answer.
pub async fn run(query: &Query, limit: Duration) -> Answer {
    if let (Some(server), false) = (query.server, query.tcp) {
        return udp(query, server, limit).await;
    }
    let protocol = if query.tcp { DnsProtocol::Tcp } else { DnsProtocol::Udp };
    let resolver = match net::resolver(query.server, protocol, limit) {
        Ok(r) => r,
        Err(failure) => return Answer::Failed(failure.message),
    };
    let overall = limit + Duration::from_millis(250);
    match tokio::time::timeout(overall, resolver.lookup(query.name.as_str(), query.record_type)).await {
        Err(_) | Ok(Err(NetError::Timeout)) => Answer::Failed("Query timed out".into()),
        Ok(Ok(lookup)) => records(lookup.answers(), query.record_type),
        Ok(Err(NetError::Dns(DnsError::NoRecordsFound(nr))))
            if nr.response_code == hickory_resolver::proto::op::ResponseCode::NXDomain =>
        {
            Answer::NxDomain
        }
        Ok(Err(NetError::Dns(DnsError::NoRecordsFound(nr))))
            if nr.response_code == hickory_resolver::proto::op::ResponseCode::NoError =>
        {
            Answer::Records { typed: Vec::new(), all: Vec::new() }
        }
        Ok(Err(NetError::Dns(DnsError::NoRecordsFound(nr)))) => Answer::Failed(rcode_error(nr.response_code)),
        Ok(Err(NetError::Dns(DnsError::ResponseCode(code)))) => Answer::Failed(rcode_error(code)),
        Ok(Err(other)) => Answer::Failed(other.to_string()),
    }
}

/// One query over UDP to `server`, as dnsruby sends it (recursion desired): a refused port
/// (ICMP) fails at once, as dnsruby reports it; no answer within `limit` is a timeout.
async fn udp(query: &Query, server: SocketAddr, limit: Duration) -> Answer {
    use hickory_resolver::proto::op::ResponseCode;
    use hickory_resolver::proto::rr::Name;
    let Ok(name) = Name::from_str(&query.name) else {
        return Answer::Failed(format!("invalid name {}", query.name));
    };
    match exchange(server, &name, query.record_type, limit).await {
        Ok(response) => match response.metadata.response_code {
            ResponseCode::NoError => records(&response.answers, query.record_type),
            ResponseCode::NXDomain => Answer::NxDomain,
            code => Answer::Failed(rcode_error(code)),
        },
        Err(Exchange::Refused) => {
            Answer::Failed(format!("recvfrom failed from {}; Connection refused - recvfrom(2)", server.ip()))
        }
        Err(Exchange::TimedOut) => Answer::Failed("Query timed out".into()),
        Err(Exchange::Failed(why)) => Answer::Failed(why),
    }
}

/// Why a query over UDP got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// The server's port is closed (ICMP port unreachable).
    Refused,
    /// Nothing came back in time.
    TimedOut,
    /// Anything else, in a few words.
    Failed(String),
}

/// A query for `name` as resolvers send it (a random id, recursion desired): its id and bytes.
pub fn question(name: &hickory_resolver::proto::rr::Name, record_type: RecordType) -> Option<(u16, Vec<u8>)> {
    use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query as Question};
    let id: u16 = rand::random();
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Question::query(name.clone(), record_type));
    Some((id, message.to_vec().ok()?))
}

/// One question over UDP to `server`, recursion desired, as resolvers send it: the response
/// with the same id, or why none came within `limit`.
pub async fn exchange(
    server: SocketAddr,
    name: &hickory_resolver::proto::rr::Name,
    record_type: RecordType,
    limit: Duration,
) -> Result<hickory_resolver::proto::op::Message, Exchange> {
    use hickory_resolver::proto::op::Message;
    let (id, bytes) = question(name, record_type).ok_or(Exchange::Failed("cannot encode the query".into()))?;
    let local = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = tokio::net::UdpSocket::bind(local).await.map_err(|e| Exchange::Failed(e.to_string()))?;
    if socket.connect(server).await.is_err() || socket.send(&bytes).await.is_err() {
        return Err(Exchange::Refused);
    }
    let mut buf = vec![0u8; 65_535];
    let wait = async {
        loop {
            let n = match socket.recv(&mut buf).await {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(Exchange::Refused),
                Err(e) => return Err(Exchange::Failed(e.to_string())),
            };
            let Ok(response) = Message::from_vec(&buf[..n]) else { continue };
            if response.metadata.id == id {
                return Ok(response);
            }
        }
    };
    tokio::time::timeout(limit, wait).await.unwrap_or(Err(Exchange::TimedOut))
}

/// dnsruby's exception for a response code: raised without a message, its message is its
/// class name (`Dnsruby::Refused`).
fn rcode_error(code: hickory_resolver::proto::op::ResponseCode) -> String {
    use hickory_resolver::proto::op::ResponseCode as C;
    match code {
        C::Refused => "Dnsruby::Refused",
        C::ServFail => "Dnsruby::ServFail",
        C::FormErr => "Dnsruby::FormErr",
        C::NotImp => "Dnsruby::NotImp",
        C::NXDomain => "Dnsruby::NXDomain",
        _ => "Dnsruby::ResolvError",
    }
    .to_string()
}
