//! monitoring-plugins' `check_tcp` (the classic output of the 2.x series Debian ships),
//! in-process: the same options, the same status line and perfdata, the same exit status.
//!
//! Read from `plugins/check_tcp.c` and `plugins/utils_tcp.c` (v2.3.3): `-e` strings are
//! found anywhere in the response (any one of them, or all with `-A`); while none matches,
//! more data is awaited for 2 s (`READ_TIMEOUT`); the elapsed time runs from before the
//! connect to the end of the exchange; the whole plugin has `-t` seconds.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::Parsed;

/// How long `check_tcp` waits for more data while the expected string is not there yet.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// `MAXBUF`: the size of one read.
const MAXBUF: usize = 1024;

/// A state, as `state_text` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// 0
    Ok,
    /// 1
    Warning,
    /// 2
    Critical,
}

impl State {
    fn text(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warning => "WARNING",
            Self::Critical => "CRITICAL",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(Self::Ok),
            "warn" => Some(Self::Warning),
            "crit" => Some(Self::Critical),
            _ => None,
        }
    }
}

/// The options `check_tcp` was given.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    host: String,
    /// Given with `-H` (the status line then names it).
    host_flag: bool,
    port: u16,
    warning: Option<f64>,
    critical: Option<f64>,
    timeout: u64,
    send: Option<String>,
    expect: Vec<String>,
    all: bool,
    quit: Option<String>,
    refuse: State,
    mismatch: State,
    maxbytes: usize,
    jail: bool,
    ipv4: Option<bool>,
}

/// Parse `check_tcp`'s arguments (after the program name). Options the native path does not
/// run are `Unsupported`, so the real plugin runs (or an UNKNOWN says it cannot).
pub fn parse(argv: &[String]) -> Parsed<Args> {
    let mut args = Args {
        host: String::new(),
        host_flag: false,
        port: 0,
        warning: None,
        critical: None,
        timeout: 10,
        send: None,
        expect: Vec::new(),
        all: false,
        quit: None,
        refuse: State::Critical,
        mismatch: State::Warning,
        maxbytes: 0,
        jail: false,
        ipv4: None,
    };
    let mut positional = Vec::new();
    let mut words = argv.iter().map(String::as_str).peekable();
    while let Some(word) = words.next() {
        // check_tcp's own aliases of the older option names.
        let word = match word {
            "-to" => "-t",
            "-wt" => "-w",
            "-ct" => "-c",
            w => w,
        };
        let (name, inline): (String, Option<String>) = if let Some(long) = word.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (long.to_string(), None),
            }
        } else if let Some(short) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = short.chars();
            let flag = chars.next().unwrap_or_default();
            let rest: String = chars.collect();
            (flag.to_string(), (!rest.is_empty()).then_some(rest))
        } else {
            positional.push(word.to_string());
            continue;
        };
        let canonical = match name.as_str() {
            "H" | "hostname" => "H",
            "p" | "port" => "p",
            "w" | "warning" => "w",
            "c" | "critical" => "c",
            "t" | "timeout" => "t",
            "s" | "send" => "s",
            "e" | "expect" => "e",
            "q" | "quit" => "q",
            "r" | "refuse" => "r",
            "M" | "mismatch" => "M",
            "m" | "maxbytes" => "m",
            "A" | "all" => "A",
            "j" | "jail" => "j",
            "4" | "use-ipv4" => "4",
            "6" | "use-ipv6" => "6",
            other => return Parsed::Unsupported(format!("option {word} is not supported natively{}", hint(other))),
        };
        let flag_only = matches!(canonical, "A" | "j" | "4" | "6");
        if flag_only {
            if inline.is_some() && word.starts_with("--") {
                return Parsed::Unsupported(format!("option {word} takes no value"));
            }
            match canonical {
                "A" => args.all = true,
                "j" => args.jail = true,
                "4" => args.ipv4 = Some(true),
                _ => args.ipv4 = Some(false),
            }
            // Bundled short flags (`-4A`) are getopt's; keep to the plain forms.
            if inline.is_some() {
                return Parsed::Unsupported(format!("bundled options {word} are not supported natively"));
            }
            continue;
        }
        let Some(value) = inline.or_else(|| words.next().map(str::to_string)) else {
            return Parsed::Unsupported(format!("option {word} needs a value"));
        };
        let number = |v: &str| v.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
        match canonical {
            "H" => {
                args.host = value;
                args.host_flag = true;
            }
            "p" => match value.parse::<u16>() {
                Ok(p) if p > 0 => args.port = p,
                _ => return Parsed::Unsupported(format!("port {value:?} is not one the native path runs")),
            },
            "w" | "c" => {
                let Some(seconds) = number(&value) else {
                    return Parsed::Unsupported(format!("{word} {value:?} is not a threshold the native path runs"));
                };
                if canonical == "w" { args.warning = Some(seconds) } else { args.critical = Some(seconds) }
            }
            "t" => match value.parse::<u64>() {
                Ok(t) if t > 0 => args.timeout = t,
                _ => return Parsed::Unsupported(format!("timeout {value:?} is not one the native path runs")),
            },
            "s" => args.send = Some(value),
            "e" => args.expect.push(value),
            "q" => args.quit = Some(value),
            "m" => match value.parse::<usize>() {
                Ok(m) => args.maxbytes = m,
                _ => return Parsed::Unsupported(format!("maxbytes {value:?} is not one the native path runs")),
            },
            "r" | "M" => {
                let Some(state) = State::parse(&value) else {
                    return Parsed::Unsupported(format!("{word} {value:?} is not one the native path runs"));
                };
                if canonical == "r" { args.refuse = state } else { args.mismatch = state }
            }
            _ => unreachable!("every option with a value is handled"),
        }
    }
    if !args.host_flag {
        match positional.first() {
            Some(host) => args.host = host.clone(),
            None => return Parsed::Unsupported("no host given".into()),
        }
    }
    if args.port == 0 {
        return Parsed::Unsupported("no port given".into());
    }
    if args.host.starts_with('/') {
        return Parsed::Unsupported("unix sockets are not supported natively".into());
    }
    Parsed::Run(args)
}

fn hint(option: &str) -> &'static str {
    match option {
        "S" | "ssl" | "D" | "certificate" | "sni" => " (TLS: use the tcp built-in's `tls`)",
        _ => "",
    }
}

/// What the run printed and its exit status.
pub async fn run(args: &Args) -> (String, i32) {
    let started = Instant::now();
    let limit = Duration::from_secs(args.timeout);
    match tokio::time::timeout(limit, exchange(args, started)).await {
        Ok(done) => done,
        // The plugin's alarm: `CRITICAL - Socket timeout after N seconds`.
        Err(_) => (format!("CRITICAL - Socket timeout after {} seconds\n", args.timeout), 2),
    }
}

async fn exchange(args: &Args, started: Instant) -> (String, i32) {
    let mut stream = match super::connect_any(&args.host, args.port, args.ipv4).await {
        Ok(stream) => stream,
        Err(super::ConnectError::Resolve(_)) => {
            return (format!("TCP CRITICAL - Invalid hostname, address or socket: {}\n", args.host), 2);
        }
        Err(super::ConnectError::Connect(error)) => {
            let why = super::strerror(&error);
            return (format!("connect to address {} and port {}: {why}\n", args.host, args.port), args.refuse as i32);
        }
    };
    if let Some(send) = &args.send {
        let _ = stream.write_all(send.as_bytes()).await;
    }
    let mut response: Vec<u8> = Vec::new();
    let mut matched = None;
    if !args.expect.is_empty() {
        let mut buf = [0u8; MAXBUF];
        let mut first = true;
        loop {
            let read = stream.read(&mut buf);
            let n = if first {
                read.await.unwrap_or(0)
            } else {
                match tokio::time::timeout(READ_TIMEOUT, read).await {
                    Ok(n) => n.unwrap_or(0),
                    Err(_) => 0,
                }
            };
            first = false;
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
            if args.maxbytes > 0 && response.len() >= args.maxbytes {
                break;
            }
            let text = String::from_utf8_lossy(&response);
            let found = args.expect.iter().filter(|e| text.contains(e.as_str())).count();
            if (args.all && found == args.expect.len()) || (!args.all && found >= 1) {
                matched = Some(true);
                break;
            }
        }
        if response.is_empty() {
            return ("No data received from host\n".into(), 2);
        }
        matched.get_or_insert(false);
    }
    if let Some(quit) = &args.quit {
        let _ = stream.write_all(format!("{quit}\r\n").as_bytes()).await;
    }
    drop(stream);
    let elapsed = started.elapsed().as_secs_f64();
    let mut state = match super::time_state(elapsed, args.warning, args.critical) {
        2 => State::Critical,
        1 => State::Warning,
        _ => State::Ok,
    };
    let text = String::from_utf8_lossy(&response);
    let shown = text.trim_end_matches([' ', '\t', '\r', '\n']);
    let mismatch = matched == Some(false);
    // A mismatch sets the state unless the time already made it critical.
    if mismatch && state != State::Critical {
        state = args.mismatch;
    }
    let mut line = if mismatch {
        format!("TCP {} - Unexpected response from host/socket: {shown}", state.text())
    } else {
        let on = if args.host_flag { format!("{} ", args.host) } else { String::new() };
        let mut line = format!("TCP {} - {elapsed:.3} second response time on {on}port {}", state.text(), args.port);
        if !shown.is_empty() && !args.jail {
            line.push_str(&format!(" [{shown}]"));
        }
        line
    };
    // After a mismatch the plugin prints the thresholds it was given as zero.
    let threshold = |t: Option<f64>| t.map(|t| format!("{:.6}", if mismatch { 0.0 } else { t })).unwrap_or_default();
    line.push_str(&format!(
        "|time={elapsed:.6}s;{};{};0.000000;{:.6}\n",
        threshold(args.warning),
        threshold(args.critical),
        args.timeout as f64
    ));
    (line, state as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Parsed<Args> {
        parse(&line.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn options_parse_as_the_plugin_reads_them() {
        let Parsed::Run(a) = args("-H 127.0.0.1 -p 22 -w 1 -c 2.5 -t 5 -e SSH -e 220 -A -r warn -M crit") else {
            panic!()
        };
        assert_eq!(
            (a.host.as_str(), a.port, a.warning, a.critical, a.timeout),
            ("127.0.0.1", 22, Some(1.0), Some(2.5), 5)
        );
        assert_eq!((a.expect.len(), a.all, a.refuse, a.mismatch), (2, true, State::Warning, State::Critical));
        let Parsed::Run(a) = args("--hostname=localhost --port=25 -to 3 -e220") else { panic!() };
        assert_eq!((a.host.as_str(), a.port, a.timeout, a.expect[0].as_str()), ("localhost", 25, 3, "220"));
        let Parsed::Run(a) = args("127.0.0.1 -p 22") else { panic!() };
        assert!(!a.host_flag);
        for (line, why) in [
            ("-H h -p 22 -S", "option -S is not supported natively (TLS"),
            ("-H h -p 22 -E", "option -E is not supported natively"),
            ("-H h", "no port given"),
            ("-p 22", "no host given"),
            ("-H h -p x", "port \"x\""),
            ("-H /tmp/sock -p 1", "unix sockets"),
            ("-H h -p 22 -r maybe", "-r \"maybe\""),
        ] {
            match args(line) {
                Parsed::Unsupported(got) => assert!(got.contains(why), "{line}: {got}"),
                Parsed::Run(a) => panic!("{line}: {a:?}"),
            }
        }
    }
}
