//! sensu-plugins-network-checks' `check-ports.rb` (also installed as `check-port.rb`),
//! in-process: every host × port connected in order, the first failure ends the check with
//! the plugin's message, else `CheckPort OK: All ports (…) are accessible for hosts …`.
//!
//! Read from `bin/check-ports.rb` (5.0): `-H` hosts (comma list, default `0.0.0.0`), `-p`
//! ports (comma list with `a-b` ranges, default `22`), `-P` protocol (`tcp`, anything else
//! is UDP, whose connect only resolves), `-t` seconds per connection (`to_i`, default 30;
//! 0 is no limit). Refused, timed out and unreachable have the plugin's texts; any other
//! error is the exception sensu-plugin reports (`Check failed to run: …`, exit 3).

use std::time::Duration;

use super::Parsed;
use super::options::{self, Opt, value};
use super::ruby_cli::{self, Status, say};

const OPTIONS: &[Opt] = &[
    value("hosts", Some('H'), Some("hostname")),
    value("ports", Some('p'), Some("ports")),
    value("proto", Some('P'), Some("protocol")),
    value("timeout", Some('t'), Some("timeout")),
];

/// Most host-port pairs run natively (a whole port range once).
const MAX_CONNECTIONS: usize = 65_536;

/// What the plugin was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    /// As given (the OK message repeats it).
    hosts_text: String,
    ports_text: String,
    hosts: Vec<String>,
    /// Each port as the plugin prints it, and its number.
    ports: Vec<(String, u16)>,
    tcp: bool,
    timeout: Option<Duration>,
}

/// Ruby's `String#split(',')`: empty fields kept, trailing empty ones dropped.
fn ruby_split(text: &str) -> Vec<&str> {
    let mut fields: Vec<&str> = text.split(',').collect();
    while fields.last() == Some(&"") {
        fields.pop();
    }
    fields
}

/// Parse `check-ports.rb`'s arguments.
pub fn parse(argv: &[String]) -> Parsed<Args> {
    let given = match options::parse(OPTIONS, argv) {
        Ok(given) => given,
        Err(why) => return Parsed::Unsupported(why),
    };
    let hosts_text = given.or("hosts", "0.0.0.0").to_string();
    let ports_text = given.or("ports", "22").to_string();
    let hosts: Vec<String> = ruby_split(&hosts_text).into_iter().map(str::to_string).collect();
    if hosts.iter().any(String::is_empty) {
        return Parsed::Unsupported(format!("an empty host in {hosts_text:?} is not run natively"));
    }
    let mut ports = Vec::new();
    for field in ruby_split(&ports_text) {
        let range = field
            .split_once('-')
            .filter(|(a, b)| [a, b].iter().all(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())));
        if let Some((first, last)) = range {
            let (Ok(first), Ok(last)) = (first.parse::<u32>(), last.parse::<u32>()) else {
                return Parsed::Unsupported(format!("port range {field:?} is not run natively"));
            };
            if last > 65535 || first == 0 {
                return Parsed::Unsupported(format!("port range {field:?} is not run natively"));
            }
            // A reversed range is empty, as in Ruby.
            if ports.len() + (last.saturating_sub(first) as usize) > MAX_CONNECTIONS {
                return Parsed::Unsupported(format!("more than {MAX_CONNECTIONS} ports are not run natively"));
            }
            ports.extend((first..=last).map(|p| (p.to_string(), p as u16)));
        } else {
            match ruby_cli::to_i(field) {
                n @ 1..=65535 => ports.push((field.to_string(), n as u16)),
                _ => return Parsed::Unsupported(format!("port {field:?} is not run natively")),
            }
        }
    }
    if hosts.len().saturating_mul(ports.len()) > MAX_CONNECTIONS {
        return Parsed::Unsupported(format!("more than {MAX_CONNECTIONS} host-port pairs are not run natively"));
    }
    let timeout = match given.int("timeout").unwrap_or(30) {
        0 => None,
        t if t > 0 => Some(Duration::from_secs(t as u64)),
        t => return Parsed::Unsupported(format!("timeout {t} is not run natively")),
    };
    let tcp = given.or("proto", "tcp").eq_ignore_ascii_case("tcp");
    Parsed::Run(Args { hosts_text, ports_text, hosts, ports, tcp, timeout })
}

/// What the run printed and its exit status.
pub async fn run(args: &Args) -> (String, i32) {
    const CLASS: &str = "CheckPort";
    for host in &args.hosts {
        for (shown, port) in &args.ports {
            let attempt = probe(host, *port, args.tcp);
            let outcome = match args.timeout {
                Some(limit) => tokio::time::timeout(limit, attempt).await.unwrap_or(Err(Failure::TimedOut)),
                None => attempt.await,
            };
            let message = match outcome {
                Ok(()) => continue,
                Err(Failure::Refused) => format!("Connection refused by {host}:{shown}"),
                Err(Failure::TimedOut) => format!("Connection or read timed out ({host}:{shown})"),
                Err(Failure::Unreachable) => format!("Check failed to run: No route to host ({host}:{shown})"),
                Err(Failure::Other(message)) => return ruby_cli::failed_to_run(&message),
            };
            return say(CLASS, Status::Critical, &message);
        }
    }
    say(CLASS, Status::Ok, &format!("All ports ({}) are accessible for hosts {}", args.ports_text, args.hosts_text))
}

enum Failure {
    Refused,
    TimedOut,
    Unreachable,
    /// The message of the exception Ruby raised.
    Other(String),
}

/// `TCPSocket.new(host, port)`: every address in resolver order until one connects, failing
/// with the last one's error; `UDPSocket.open.connect(host, port)`: an IPv4 address.
async fn probe(host: &str, port: u16, tcp: bool) -> Result<(), Failure> {
    use super::ConnectError;
    if !tcp {
        return match tokio::net::lookup_host((host, port)).await.map(|mut addrs| addrs.any(|a| a.is_ipv4())) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Failure::Other("getaddrinfo: Address family for hostname not supported".into())),
            Err(error) => Err(Failure::Other(format!("getaddrinfo: {}", super::gai_strerror(&error)))),
        };
    }
    match super::connect_any(host, port, None).await {
        Ok(_) => Ok(()),
        Err(ConnectError::Resolve(why)) => Err(Failure::Other(format!("getaddrinfo: {why}"))),
        // A kernel timeout (`ETIMEDOUT`) is not Ruby's `Timeout::Error`: the plugin does not
        // rescue it.
        Err(ConnectError::Connect(error)) => Err(match error.kind() {
            std::io::ErrorKind::ConnectionRefused => Failure::Refused,
            std::io::ErrorKind::HostUnreachable => Failure::Unreachable,
            _ => Failure::Other(format!("{} - connect(2) for {host:?} port {port}", super::strerror(&error))),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Parsed<Args> {
        parse(&line.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn options_parse_as_the_plugin_reads_them() {
        let Parsed::Run(a) = args("") else { panic!() };
        assert_eq!(
            (a.hosts, a.ports, a.tcp, a.timeout),
            (vec!["0.0.0.0".to_string()], vec![("22".into(), 22)], true, Some(Duration::from_secs(30)))
        );
        let Parsed::Run(a) = args("-H a,b --ports 022,8100-8102,30-20 -P UDP -t 0") else { panic!() };
        assert_eq!(a.hosts, ["a", "b"]);
        let ports: Vec<u16> = a.ports.iter().map(|p| p.1).collect();
        assert_eq!(ports, [22, 8100, 8101, 8102]);
        assert_eq!((a.ports[0].0.as_str(), a.tcp, a.timeout), ("022", false, None));
        for (line, why) in [
            ("-p 0", "port \"0\""),
            ("-p http", "port \"http\""),
            ("-p 1-70000", "port range"),
            ("-H a,,b", "empty host"),
            ("-t -1", "timeout -1"),
            ("-p 1-65535,1-65535", "more than 65536 ports"),
            ("-H a,b -p 1-65535", "host-port pairs"),
            ("--frob", "invalid option: --frob"),
        ] {
            match args(line) {
                Parsed::Unsupported(got) => assert!(got.contains(why), "{line}: {got}"),
                Parsed::Run(a) => panic!("{line}: {a:?}"),
            }
        }
    }
}
