//! A real, authoritative DNS server for integration tests, built on `hickory-server` 0.26.
//!
//! [`TestDns::start`] serves an in-memory zone on `127.0.0.1:<random free port>`, on **both
//! UDP and TCP at the same port** ([`TestDns::addr`]). Dropping the [`TestDns`] stops serving.
//! Only loopback is used; nothing is read from disk.
//!
//! # Zone `test.concierge.` ([`ZONE`]; every record has TTL 60)
//!
//! | name                          | type  | data                                                                                   |
//! |-------------------------------|-------|----------------------------------------------------------------------------------------|
//! | `test.concierge.`             | SOA   | `ns1.test.concierge. hostmaster.test.concierge. 2026112101 3600 600 86400 60`          |
//! | `test.concierge.`             | NS    | `ns1.test.concierge.`                                                                  |
//! | `test.concierge.`             | MX    | `10 mail.test.concierge.`                                                              |
//! | `ns1.test.concierge.`         | A     | `192.0.2.53`                                                                           |
//! | `mail.test.concierge.`        | A     | `192.0.2.25`                                                                           |
//! | `www.test.concierge.`         | A     | `192.0.2.10` and `192.0.2.11`                                                          |
//! | `www.test.concierge.`         | AAAA  | `2001:db8::10`                                                                         |
//! | `alias.test.concierge.`       | CNAME | `www.test.concierge.`                                                                  |
//! | `dangling.test.concierge.`    | CNAME | `gone.example.` (outside the zone: the answer is the CNAME alone)                      |
//! | `txt.test.concierge.`         | TXT   | `"v=spf1 -all"` and `"hello world"` (two records, one string each)                     |
//! | `_http._tcp.test.concierge.`  | SRV   | `10 5 8080 www.test.concierge.` (priority, weight, port, target)                       |
//!
//! # Reverse zone `2.0.192.in-addr.arpa.` ([`REVERSE_ZONE`]; TTL 60)
//!
//! | name                          | type  | data                                                                                   |
//! |-------------------------------|-------|----------------------------------------------------------------------------------------|
//! | `2.0.192.in-addr.arpa.`       | SOA   | `ns1.test.concierge. hostmaster.test.concierge. 2026112101 3600 600 86400 60`          |
//! | `2.0.192.in-addr.arpa.`       | NS    | `ns1.test.concierge.`                                                                  |
//! | `10.2.0.192.in-addr.arpa.`    | PTR   | `www.test.concierge.`                                                                  |
//!
//! # Expected response codes
//!
//! * Any record above: `NOERROR` with the answer(s), authoritative (AA set). Querying
//!   `alias.test.concierge.` for A/AAAA answers with the CNAME followed by `www`'s records.
//! * A name inside a served zone that does not exist (e.g. `missing.test.concierge.`,
//!   [`MISSING`]): `NXDOMAIN`, with the zone's SOA in the authority section.
//! * A name that exists but lacks the type asked for (e.g. `txt.test.concierge.` A):
//!   `NOERROR` with no answers (NODATA), with the SOA in the authority section.
//! * A name outside both zones (e.g. `example.org.`, [`NOT_AUTHORITATIVE`]): `REFUSED`
//!   (hickory-server's `Catalog` refuses names for which it has no zone; no recursion).
//!
//! # Example
//!
//! ```ignore
//! mod support; // tests/support/mod.rs declares `pub mod dns;`
//! use support::dns::TestDns;
//!
//! #[tokio::test]
//! async fn resolves() {
//!     let dns = TestDns::start().await;
//!     // point the resolver (or the check under test) at dns.addr, over UDP or TCP
//! } // dropping `dns` stops the server
//! ```
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// The forward zone served by [`TestDns`].
pub const ZONE: &str = "test.concierge.";
/// The reverse zone served by [`TestDns`] (192.0.2.0/24).
pub const REVERSE_ZONE: &str = "2.0.192.in-addr.arpa.";
/// A name inside [`ZONE`] that does not exist: answers `NXDOMAIN`.
pub const MISSING: &str = "missing.test.concierge.";
/// A name the server is not authoritative for: answers `REFUSED`.
pub const NOT_AUTHORITATIVE: &str = "example.org.";
/// TTL of every record in both zones.
pub const TTL: u32 = 60;
/// SOA serial of both zones.
pub const SERIAL: u32 = 2026112101;

/// A running test DNS server; stops serving when dropped.
pub struct TestDns {
    /// `127.0.0.1:<port>`, served on both UDP and TCP.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TestDns {
    /// Serve the test zone on 127.0.0.1:<random free port>, on BOTH UDP and TCP at the same port.
    ///
    /// Must be called inside a Tokio runtime: the server runs as tasks on *that* runtime, so it
    /// only answers while the runtime is being driven. On a `current_thread` runtime (the
    /// `#[tokio::test]` default) never block the thread (e.g. `std::thread::sleep`, blocking
    /// `wait()` on a child process) while something is expected to query the server; use
    /// `tokio::time::sleep` / async waits, or `#[tokio::test(flavor = "multi_thread")]`.
    pub async fn start() -> TestDns {
        let (udp, tcp) = bind_udp_and_tcp().await;
        Self::serve(udp, tcp)
    }

    /// Serve the test zone on `addr` (UDP and TCP), or the error binding it: port 53 needs
    /// root (`check_dns` runs `nslookup`, which cannot be given another port).
    pub async fn start_at(addr: SocketAddr) -> std::io::Result<TestDns> {
        let udp = UdpSocket::bind(addr).await?;
        let tcp = TcpListener::bind(addr).await?;
        Ok(Self::serve(udp, tcp))
    }

    fn serve(udp: UdpSocket, tcp: TcpListener) -> TestDns {
        let addr = udp.local_addr().expect("udp local_addr");

        let mut catalog = Catalog::new();
        for (origin, handler) in [forward_zone(), reverse_zone()] {
            catalog.upsert(LowerName::from(origin), vec![Arc::new(handler)]);
        }

        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 64);
        let task = tokio::spawn(async move {
            // Only returns if every listener task ends (they don't, until aborted).
            let _ = server.block_until_done().await;
        });
        TestDns { addr, task }
    }
}

/// A recursive-looking server in front of a [`TestDns`] on `addr` (UDP): every answer relayed
/// with the authoritative flag cleared; a question for a name starting with `servfail` is
/// answered SERVFAIL, one for a name starting with `truncated` NOERROR with TC set and no
/// records. Stops serving when dropped.
pub struct Relay(JoinHandle<()>);

impl Relay {
    /// Relay to `upstream` from `addr`, or the error binding it.
    pub async fn start_at(addr: SocketAddr, upstream: SocketAddr) -> std::io::Result<Relay> {
        use hickory_server::proto::op::{Message, ResponseCode};
        let socket = UdpSocket::bind(addr).await?;
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
                let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
                let asked = query.queries.first().map(|q| q.name().to_string()).unwrap_or_default();
                let response = if asked.starts_with("servfail") {
                    let mut response = query.clone();
                    response.metadata.message_type = hickory_server::proto::op::MessageType::Response;
                    response.metadata.response_code = ResponseCode::ServFail;
                    response
                } else if asked.starts_with("truncated") {
                    let mut response = query.clone();
                    response.metadata.message_type = hickory_server::proto::op::MessageType::Response;
                    response.metadata.truncation = true;
                    response
                } else {
                    let Ok(up) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await else { continue };
                    if up.send_to(&buf[..n], upstream).await.is_err() {
                        continue;
                    }
                    let mut answer = vec![0u8; 65_535];
                    let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(2), up.recv(&mut answer)).await else {
                        continue;
                    };
                    let Ok(mut response) = Message::from_vec(&answer[..m]) else { continue };
                    response.metadata.authoritative = false;
                    response
                };
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, from).await;
                }
            }
        });
        Ok(Relay(task))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Drop for TestDns {
    /// Stop serving: aborting the task drops the `Server`, whose `JoinSet` aborts the UDP and
    /// TCP listener tasks, closing both sockets.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Bind a UDP socket on 127.0.0.1:0 and a TCP listener on the same port, retrying with a new
/// port if the TCP side of the chosen port is already taken.
async fn bind_udp_and_tcp() -> (UdpSocket, TcpListener) {
    let mut last_err = None;
    for _ in 0..50 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind udp 127.0.0.1:0");
        let port = udp.local_addr().expect("udp local_addr").port();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(tcp) => return (udp, tcp),
            Err(e) => last_err = Some(e),
        }
    }
    panic!("no port free on both UDP and TCP on 127.0.0.1: {last_err:?}");
}

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap_or_else(|e| panic!("bad name {s:?}: {e}"))
}

fn soa(origin: &Name) -> Record {
    let data = SOA::new(name("ns1.test.concierge."), name("hostmaster.test.concierge."), SERIAL, 3600, 600, 86400, 60);
    Record::from_rdata(origin.clone(), TTL, RData::SOA(data))
}

fn zone(origin: &str, records: Vec<(&str, RData)>) -> (Name, InMemoryZoneHandler) {
    let origin = name(origin);
    let mut handler: InMemoryZoneHandler =
        InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let soa = soa(&origin);
    assert!(handler.upsert_mut(soa, SERIAL), "insert SOA {origin}");
    for (owner, data) in records {
        let record = Record::from_rdata(name(owner), TTL, data);
        let desc = record.to_string();
        assert!(handler.upsert_mut(record, SERIAL), "insert {desc}");
    }
    (origin, handler)
}

fn forward_zone() -> (Name, InMemoryZoneHandler) {
    let a = |s: &str| RData::A(A(Ipv4Addr::from_str(s).unwrap()));
    let txt = |s: &str| RData::TXT(TXT::new(vec![s.to_string()]));
    zone(
        ZONE,
        vec![
            ("test.concierge.", RData::NS(NS(name("ns1.test.concierge.")))),
            ("test.concierge.", RData::MX(MX::new(10, name("mail.test.concierge.")))),
            ("ns1.test.concierge.", a("192.0.2.53")),
            ("mail.test.concierge.", a("192.0.2.25")),
            ("www.test.concierge.", a("192.0.2.10")),
            ("www.test.concierge.", a("192.0.2.11")),
            ("www.test.concierge.", RData::AAAA(AAAA(Ipv6Addr::from_str("2001:db8::10").unwrap()))),
            ("alias.test.concierge.", RData::CNAME(CNAME(name("www.test.concierge.")))),
            ("txt.test.concierge.", txt("v=spf1 -all")),
            ("txt.test.concierge.", txt("hello world")),
            ("dangling.test.concierge.", RData::CNAME(CNAME(name("gone.example.")))),
            ("_http._tcp.test.concierge.", RData::SRV(SRV::new(10, 5, 8080, name("www.test.concierge.")))),
        ],
    )
}

fn reverse_zone() -> (Name, InMemoryZoneHandler) {
    zone(
        REVERSE_ZONE,
        vec![
            (REVERSE_ZONE, RData::NS(NS(name("ns1.test.concierge.")))),
            ("10.2.0.192.in-addr.arpa.", RData::PTR(PTR(name("www.test.concierge.")))),
        ],
    )
}
