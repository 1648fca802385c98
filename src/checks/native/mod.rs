//! Existing plugin command lines run in-process: a check whose command is a simple command
//! (see [`words`]) naming a plugin Concierge knows is run natively, with the plugin's own
//! options, status line and exit status, instead of forking it.
//!
//! * [`words`]: a command line as `/bin/sh` splits a simple command, or nothing;
//! * [`options`]: plugin options as `OptionParser` and `getopt_long` read them;
//! * [`ruby_cli`]: what sensu-plugins' Ruby scripts share (`to_i`, their output);
//! * [`check_tcp`]: monitoring-plugins' `check_tcp`;
//! * [`check_dns`]: monitoring-plugins' `check_dns` (nslookup's lookups, read as the plugin reads them);
//! * [`check_http`]: monitoring-plugins' `check_http`;
//! * [`check_curl`]: monitoring-plugins' `check_curl` (`check_http`'s options, through libcurl);
//! * [`check_ports`]: sensu-plugins-network-checks' `check-ports.rb` (`check-port.rb`);
//! * [`check_http_rb`]: sensu-plugins-http's `check-http.rb`;
//! * [`check_https_cert`]: sensu-plugins-http's `check-https-cert.rb`;
//! * [`check_ssl_cert`]: sensu-plugins-ssl's `check-ssl-cert.rb`;
//! * [`check_ssl_host`]: sensu-plugins-ssl's `check-ssl-host.rb`;
//! * [`peer_cert`]: the certificates a TLS server presents, for the last three;
//! * [`metrics_curl`]: sensu-plugins-http's `metrics-curl.rb`;
//! * [`check_dns_rb`]: sensu-plugins-dns' `check-dns.rb`;
//! * [`metrics_dns`]: sensu-plugins-dns' `metrics-dns.rb`;
//! * [`dns_query`]: one query as the sensu-plugins-dns scripts make it.
//!
//! A plugin given an option the native path does not run is [`Recognized::Unsupported`]:
//! the executor forks the real plugin if it is installed, else answers UNKNOWN saying why.

pub mod check_curl;
pub mod check_dns;
pub mod check_dns_rb;
pub mod check_http;
pub mod check_http_rb;
pub mod check_https_cert;
pub mod check_ports;
pub mod check_ssl_cert;
pub mod check_ssl_host;
pub mod check_tcp;
pub mod dns_query;
pub mod metrics_curl;
pub mod metrics_dns;
pub mod options;
pub mod peer_cert;
pub mod ruby_cli;
pub mod words;

/// What a plugin's arguments make.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<T> {
    /// Run natively with these.
    Run(T),
    /// Not natively: why, in a few words.
    Unsupported(String),
}

impl<T> Parsed<T> {
    /// The arguments turned into something else.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Parsed<U> {
        match self {
            Self::Run(t) => Parsed::Run(f(t)),
            Self::Unsupported(why) => Parsed::Unsupported(why),
        }
    }
}

/// A recognized plugin command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Recognized {
    /// Run it natively.
    Run(Native),
    /// The plugin, but not runnable natively: the real one runs if installed.
    Unsupported {
        /// The plugin's name (`check_tcp`, `check-http.rb`).
        plugin: &'static str,
        /// The program as the command names it (a name on `PATH`, or a path).
        program: String,
        /// Why not natively.
        why: String,
    },
}

/// A plugin run natively.
#[derive(Debug, Clone, PartialEq)]
pub enum Native {
    /// `check_tcp`.
    CheckTcp(check_tcp::Args),
    /// `check_http`.
    CheckHttp(Box<check_http::Args>),
    /// `check_dns`.
    CheckDns(Box<check_dns::Args>),
    /// `check_curl` (the same arguments, [`check_http::Flavor::Curl`]).
    CheckCurl(Box<check_http::Args>),
    /// `check-ports.rb`, or `check-port.rb` (the name it was called by).
    CheckPorts(&'static str, check_ports::Args),
    /// `check-http.rb`.
    CheckHttpRb(Box<check_http_rb::Args>),
    /// `check-https-cert.rb`.
    CheckHttpsCert(check_https_cert::Args),
    /// `check-ssl-cert.rb`.
    CheckSslCert(check_ssl_cert::Args),
    /// `check-ssl-host.rb`.
    CheckSslHost(check_ssl_host::Args),
    /// `check-dns.rb`.
    CheckDnsRb(check_dns_rb::Args),
    /// `metrics-curl.rb`.
    MetricsCurl(metrics_curl::Args),
    /// `metrics-dns.rb`.
    MetricsDns(metrics_dns::Args),
}

impl Native {
    /// The plugin's name, for the result's `runner` attribute and the figures.
    pub fn plugin(&self) -> &'static str {
        match self {
            Self::CheckTcp(_) => "check_tcp",
            Self::CheckHttp(_) => "check_http",
            Self::CheckDns(_) => "check_dns",
            Self::CheckCurl(_) => "check_curl",
            Self::CheckPorts(name, _) => name,
            Self::CheckHttpRb(_) => "check-http.rb",
            Self::CheckHttpsCert(_) => "check-https-cert.rb",
            Self::CheckSslCert(_) => "check-ssl-cert.rb",
            Self::CheckSslHost(_) => "check-ssl-host.rb",
            Self::CheckDnsRb(_) => "check-dns.rb",
            Self::MetricsCurl(_) => "metrics-curl.rb",
            Self::MetricsDns(_) => "metrics-dns.rb",
        }
    }

    /// Run it: what the plugin would print, and its exit status.
    pub async fn run(&self) -> (String, i32) {
        match self {
            Self::CheckTcp(args) => check_tcp::run(args).await,
            Self::CheckHttp(args) => check_http::run(args).await,
            Self::CheckDns(args) => check_dns::run(args).await,
            Self::CheckCurl(args) => check_http::run(args).await,
            Self::CheckPorts(_, args) => check_ports::run(args).await,
            Self::CheckHttpRb(args) => check_http_rb::run(args).await,
            Self::CheckHttpsCert(args) => check_https_cert::run(args).await,
            Self::CheckSslCert(args) => check_ssl_cert::run(args).await,
            Self::CheckSslHost(args) => check_ssl_host::run(args).await,
            Self::CheckDnsRb(args) => check_dns_rb::run(args).await,
            Self::MetricsCurl(args) => metrics_curl::run(args).await,
            Self::MetricsDns(args) => metrics_dns::run(args).await,
        }
    }
}

/// The state plain `-w`/`-c` seconds give a measured time, as monitoring-plugins'
/// `get_status` does: 2 above the critical, else 1 above the warning, else 0.
pub fn time_state(elapsed: f64, warning: Option<f64>, critical: Option<f64>) -> i32 {
    if critical.is_some_and(|c| elapsed > c) {
        2
    } else if warning.is_some_and(|w| elapsed > w) {
        1
    } else {
        0
    }
}

/// The plugin a command line runs, if Concierge knows it and the line is a simple command.
pub fn recognize(command: &str) -> Option<Recognized> {
    let words = words::split(command)?;
    let (program, args) = words.split_first()?;
    let name = program.rsplit('/').next().unwrap_or(program);
    let (plugin, parsed) = match name {
        "check_tcp" => ("check_tcp", check_tcp::parse(args).map(Native::CheckTcp)),
        "check_http" => ("check_http", check_http::parse(args).map(|a| Native::CheckHttp(Box::new(a)))),
        "check_dns" => ("check_dns", check_dns::parse(args).map(|a| Native::CheckDns(Box::new(a)))),
        "check_curl" => ("check_curl", check_curl::parse(args).map(|a| Native::CheckCurl(Box::new(a)))),
        "check-ports.rb" => {
            ("check-ports.rb", check_ports::parse(args).map(|a| Native::CheckPorts("check-ports.rb", a)))
        }
        "check-port.rb" => ("check-port.rb", check_ports::parse(args).map(|a| Native::CheckPorts("check-port.rb", a))),
        "check-http.rb" => ("check-http.rb", check_http_rb::parse(args).map(|a| Native::CheckHttpRb(Box::new(a)))),
        "check-https-cert.rb" => ("check-https-cert.rb", check_https_cert::parse(args).map(Native::CheckHttpsCert)),
        "check-ssl-cert.rb" => ("check-ssl-cert.rb", check_ssl_cert::parse(args).map(Native::CheckSslCert)),
        "check-ssl-host.rb" => ("check-ssl-host.rb", check_ssl_host::parse(args).map(Native::CheckSslHost)),
        "check-dns.rb" => ("check-dns.rb", check_dns_rb::parse(args).map(Native::CheckDnsRb)),
        "metrics-curl.rb" => ("metrics-curl.rb", metrics_curl::parse(args).map(Native::MetricsCurl)),
        "metrics-dns.rb" => ("metrics-dns.rb", metrics_dns::parse(args).map(Native::MetricsDns)),
        _ => return None,
    };
    Some(match parsed {
        Parsed::Run(native) => Recognized::Run(native),
        Parsed::Unsupported(why) => Recognized::Unsupported { plugin, program: program.clone(), why },
    })
}

/// Whether `program` can be run: a path to an executable file, or a name found on `PATH`.
pub fn installed(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let executable =
        |p: &std::path::Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        return executable(std::path::Path::new(program));
    }
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(program))))
}

/// Why no connection was made: the name did not resolve (the resolver's words), or every
/// address refused (the last address's error), as the C library and Ruby's `TCPSocket` see it.
#[derive(Debug)]
pub enum ConnectError {
    /// `getaddrinfo` failed: `Name or service not known`.
    Resolve(String),
    /// No address accepted; the last one's error.
    Connect(std::io::Error),
}

/// Connect to `host`:`port` as `getaddrinfo` plus a loop over its answers does (the C
/// plugins' `np_net_connect`, Ruby's `TCPSocket.new`): every address in the resolver's order
/// (only the family asked, if one is), the first that accepts.
pub async fn connect_any(host: &str, port: u16, ipv4: Option<bool>) -> Result<tokio::net::TcpStream, ConnectError> {
    connect_to(&resolve(host, port, ipv4).await?).await
}

/// The addresses of `host`:`port` in the resolver's order (only the family asked, if one is).
pub async fn resolve(host: &str, port: u16, ipv4: Option<bool>) -> Result<Vec<std::net::SocketAddr>, ConnectError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<std::net::SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => addrs
            .filter(|a| match ipv4 {
                Some(true) => a.is_ipv4(),
                Some(false) => a.is_ipv6(),
                None => true,
            })
            .collect(),
        Err(error) => return Err(ConnectError::Resolve(gai_strerror(&error))),
    };
    if addrs.is_empty() {
        return Err(ConnectError::Resolve("Address family for hostname not supported".into()));
    }
    Ok(addrs)
}

/// The first of `addrs` that accepts, else the last one's error.
pub async fn connect_to(addrs: &[std::net::SocketAddr]) -> Result<tokio::net::TcpStream, ConnectError> {
    crate::checks::net::connect_first(addrs).await.map(|(stream, _)| stream).map_err(|last| {
        ConnectError::Connect(last.map_or_else(|| std::io::Error::other("no address"), |(_, error)| error))
    })
}

/// The resolver's words for a failed lookup (`Name or service not known`), without the
/// standard library's `failed to lookup address information: `.
pub fn gai_strerror(error: &std::io::Error) -> String {
    let text = error.to_string();
    text.rsplit_once(": ").map_or(text.as_str(), |(_, reason)| reason).to_string()
}

/// This machine's name, as `gethostname` (and Ruby's `Socket.gethostname`) gives it.
pub fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A file a plugin option names, read as the plugin would but bounded: a regular file of at
/// most 1 MiB (not a device or a pipe that never ends), read off the runtime's threads.
pub async fn read_small_file(path: &str) -> Result<Vec<u8>, String> {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let file = std::fs::File::open(&path).map_err(|e| strerror(&e))?;
        let meta = file.metadata().map_err(|e| strerror(&e))?;
        if !meta.is_file() || meta.len() > 1024 * 1024 {
            return Err(format!("{path} is not a regular file of at most 1 MiB"));
        }
        let mut bytes = Vec::new();
        file.take(1024 * 1024).read_to_end(&mut bytes).map_err(|e| strerror(&e))?;
        Ok(bytes)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Whether `path` is a regular file of at most 1 MiB (what [`read_small_file`] reads).
pub fn small_file(path: &str) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= 1024 * 1024)
}

/// The C library's text for an error (`Connection refused`), without Rust's `(os error N)`.
pub(crate) fn strerror(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_plugins_in_simple_commands_are_recognized() {
        assert!(matches!(recognize("check_tcp -H 127.0.0.1 -p 22"), Some(Recognized::Run(Native::CheckTcp(_)))));
        assert!(matches!(
            recognize("/usr/lib/nagios/plugins/check_tcp -H 127.0.0.1 -p 22"),
            Some(Recognized::Run(Native::CheckTcp(_)))
        ));
        assert_eq!(recognize("check_tcp -H h -p 22 | grep OK"), None, "shell syntax: the shell runs it");
        assert_eq!(recognize("check_ping -H h"), None);
        assert_eq!(recognize("echo check_tcp"), None);
        let Some(Recognized::Unsupported { plugin, program, why }) = recognize("/opt/x/check_tcp -H h -p 1 -E") else {
            panic!()
        };
        assert_eq!(
            (plugin, program.as_str(), why.as_str()),
            ("check_tcp", "/opt/x/check_tcp", "option -E is not supported natively")
        );
        assert!(installed("sh") && !installed("/nonexistent/check_tcp") && !installed("no-such-program-here"));
    }
}
