//! The `rabbitmq` setting: a URL string (what `RABBITMQ_URL` gives), a hash of amqp-gem
//! options, or an array of either (several brokers, tried in shuffled order).
//! sensu-settings does not validate it; we do, so a typo is an error at start-up.

use std::str::FromStr;
use std::time::Duration;

use amq_protocol_uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use serde_json::Value;

use serde::Deserialize;

use super::ConciergeSettings;

/// TLS options: the `concierge.tls` defaults, overridden per broker by its `ssl` hash.
/// Every `*_file` setting also has an inline form holding the PEM text (filled from the
/// `CONCIERGE_TLS_*_B64` variables), which wins over the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsOptions {
    /// Verify the broker's certificate chain and name. Default false, as sensu-client.
    pub verify: bool,
    /// PEM file of extra CA certificates to trust.
    pub ca_file: Option<String>,
    /// PEM text of extra CA certificates.
    pub ca: Option<String>,
    /// PEM file of the client certificate chain (Sensu's `cert_chain_file`).
    pub cert_chain_file: Option<String>,
    /// PEM text of the client certificate chain.
    pub cert_chain: Option<String>,
    /// PEM file of the client private key (Sensu's `private_key_file`).
    pub private_key_file: Option<String>,
    /// PEM text of the client private key (redacted in printed settings).
    pub private_key: Option<String>,
    /// Name to send as SNI and to verify (Sensu's `sni_hostname`); default the host.
    pub server_name: Option<String>,
}

/// One broker to connect to.
#[derive(Debug, Clone)]
pub struct Broker {
    /// Where and how (heartbeat, frame_max in the query).
    pub uri: AMQPUri,
    /// `prefetch` from a hash entry (Sensu's default is 1; Concierge sizes it to its
    /// execution slots unless set).
    pub prefetch: Option<u16>,
    /// TLS options when the scheme is `amqps` or `ssl` is set.
    pub tls: Option<TlsOptions>,
    /// Connect timeout (TCP, TLS and the AMQP handshake).
    pub connect_timeout: Duration,
}

impl Broker {
    /// `amqp://user@host:port/vhost`, without the password, for logs.
    pub fn label(&self) -> String {
        let a = &self.uri.authority;
        format!("{}://{}@{}:{}/{}", self.uri.scheme, a.userinfo.username, a.host, a.port, self.uri.vhost)
    }
}

/// Parse the `rabbitmq` setting. Errors name the problem without the password.
pub fn brokers(value: &Value, concierge: &ConciergeSettings) -> Result<Vec<Broker>, String> {
    match value {
        Value::Array(items) if items.is_empty() => Err("rabbitmq: the list of brokers is empty".into()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| broker(v, concierge).map_err(|e| format!("rabbitmq[{i}]: {e}")))
            .collect(),
        other => Ok(vec![broker(other, concierge).map_err(|e| format!("rabbitmq: {e}"))?]),
    }
}

fn broker(value: &Value, concierge: &ConciergeSettings) -> Result<Broker, String> {
    let connect_timeout = Duration::from_secs_f64(concierge.connect_timeout.max(0.1));
    match value {
        Value::String(url) => {
            let mut uri = AMQPUri::from_str(url).map_err(|e| format!("invalid URL ({})", scrub(&e, url)))?;
            if uri.query.heartbeat.is_none() {
                uri.query.heartbeat = concierge.heartbeat;
            }
            if uri.query.frame_max.is_none() {
                uri.query.frame_max = Some(concierge.frame_max);
            }
            let tls = (uri.scheme == AMQPScheme::AMQPS).then(|| concierge.tls.clone());
            Ok(Broker { uri, prefetch: concierge.prefetch, tls, connect_timeout })
        }
        Value::Object(h) => {
            let string = |key: &str| -> Result<Option<String>, String> {
                match h.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(_) => Err(format!("{key} must be a string")),
                }
            };
            let int = |key: &str| -> Result<Option<u64>, String> {
                match h.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v.as_u64().map(Some).ok_or_else(|| format!("{key} must be a non-negative integer")),
                }
            };
            let tls = match h.get("ssl") {
                None | Some(Value::Null) | Some(Value::Bool(false)) => None,
                Some(Value::Bool(true)) => Some(concierge.tls.clone()),
                Some(Value::Object(ssl)) => Some(merge_ssl(&concierge.tls, ssl)?),
                Some(_) => return Err("ssl must be a boolean or a hash".into()),
            };
            let scheme = if tls.is_some() { AMQPScheme::AMQPS } else { AMQPScheme::AMQP };
            let default_port = if tls.is_some() { 5671 } else { 5672 };
            let port = int("port")?.unwrap_or(default_port);
            let heartbeat = int("heartbeat")?.map(|h| h.min(u64::from(u16::MAX)) as u16).or(concierge.heartbeat);
            let timeout = match h.get("timeout") {
                Some(v) if v.is_number() => Duration::from_secs_f64(v.as_f64().unwrap_or(3.0).max(0.1)),
                None | Some(Value::Null) => connect_timeout,
                Some(_) => return Err("timeout must be a number".into()),
            };
            let uri = AMQPUri {
                scheme,
                authority: AMQPAuthority {
                    userinfo: AMQPUserInfo {
                        username: string("user")?.or(string("username")?).unwrap_or_else(|| "guest".into()),
                        password: string("password")?.unwrap_or_else(|| "guest".into()),
                    },
                    host: string("host")?.unwrap_or_else(|| "127.0.0.1".into()),
                    port: u16::try_from(port).map_err(|_| "port must be below 65536".to_string())?,
                },
                vhost: string("vhost")?.unwrap_or_else(|| "/".into()),
                query: AMQPQueryString {
                    heartbeat,
                    frame_max: Some(
                        int("frame_max")?.map_or(concierge.frame_max, |f| f.min(u64::from(u32::MAX)) as u32),
                    ),
                    ..AMQPQueryString::default()
                },
            };
            let prefetch = int("prefetch")?.map(|p| p.min(u64::from(u16::MAX)) as u16).or(concierge.prefetch);
            Ok(Broker { uri, prefetch, tls, connect_timeout: timeout })
        }
        _ => Err("must be a URL string, a hash or an array of them".into()),
    }
}

/// Sensu's (EventMachine's) `ssl` keys over Concierge's TLS defaults.
fn merge_ssl(defaults: &TlsOptions, ssl: &serde_json::Map<String, Value>) -> Result<TlsOptions, String> {
    let mut tls = defaults.clone();
    for (key, value) in ssl {
        let text = || value.as_str().map(str::to_string).ok_or_else(|| format!("ssl {key} must be a string"));
        match key.as_str() {
            "cert_chain_file" => tls.cert_chain_file = Some(text()?),
            "private_key_file" => tls.private_key_file = Some(text()?),
            "ca_file" => tls.ca_file = Some(text()?),
            "cert_chain" => tls.cert_chain = Some(text()?),
            "private_key" => tls.private_key = Some(text()?),
            "ca" => tls.ca = Some(text()?),
            "sni_hostname" | "server_name" => tls.server_name = Some(text()?),
            "verify_peer" | "verify" => {
                tls.verify = value.as_bool().ok_or_else(|| format!("ssl {key} must be a boolean"))?;
            }
            // EventMachine options that rustls decides for itself.
            "cipher_list" | "ssl_version" | "fail_if_no_peer_cert" | "dhparam" | "ecdh_curve" => {
                tracing::warn!(option = %key, "rabbitmq ssl option is ignored (rustls chooses safe defaults)");
            }
            other => return Err(format!("unknown ssl option {other:?}")),
        }
    }
    Ok(tls)
}

/// The `rabbitmq` setting as it may be shown: hashes redacted (Sensu's keys) and the
/// password of URL strings replaced by `REDACTED`.
pub fn redacted(value: &Value) -> Value {
    match value {
        Value::String(url) => Value::String(mask_url(url)),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        other => crate::proto::redact(other, crate::proto::DEFAULT_REDACT_KEYS),
    }
}

fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{}@{host}", crate::proto::redact::REDACTED),
        None => url.to_string(),
    }
}

/// Remove the URL's password from a parser message, in case it echoes input.
fn scrub(message: &str, url: &str) -> String {
    match url.split_once("://").and_then(|(_, rest)| rest.split_once('@')).and_then(|(ui, _)| ui.split_once(':')) {
        Some((_, password)) if !password.is_empty() => message.replace(password, "***"),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Vec<Broker>, String> {
        brokers(&v, &ConciergeSettings::default())
    }

    #[test]
    fn urls_percent_decode_and_follow_the_amqp_vhost_rules() {
        let b = &parse(json!("amqp://us%40er:p%3Ass@mq.example:5673/%2Fsensu")).unwrap()[0];
        assert_eq!(b.uri.authority.userinfo.username, "us@er");
        assert_eq!(b.uri.authority.userinfo.password, "p:ss");
        assert_eq!(b.uri.authority.port, 5673);
        assert_eq!(b.uri.vhost, "/sensu");
        assert!(b.tls.is_none());
        assert_eq!(parse(json!("amqp://h")).unwrap()[0].uri.vhost, "/");
        assert_eq!(parse(json!("amqp://h/")).unwrap()[0].uri.vhost, "");
        let tls = &parse(json!("amqps://h")).unwrap()[0];
        assert_eq!(tls.uri.authority.port, 5671);
        assert_eq!(tls.tls, Some(TlsOptions::default()));
        assert!(parse(json!("http://h")).is_err());
    }

    #[test]
    fn hashes_and_arrays() {
        let list = parse(json!([
            {"host": "a", "user": "u", "password": "p", "vhost": "/s", "heartbeat": 30, "prefetch": 5},
            {"port": 5671, "ssl": {"cert_chain_file": "/c.pem", "private_key_file": "/k.pem", "verify_peer": true}}
        ]))
        .unwrap();
        assert_eq!(list[0].label(), "amqp://u@a:5672//s");
        assert_eq!(list[0].uri.query.heartbeat, Some(30));
        assert_eq!(list[0].prefetch, Some(5));
        let tls = list[1].tls.as_ref().unwrap();
        assert!(tls.verify);
        assert_eq!(tls.cert_chain_file.as_deref(), Some("/c.pem"));
        assert_eq!(list[1].uri.authority.host, "127.0.0.1");
        assert_eq!(list[1].uri.authority.userinfo.username, "guest");
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(redacted(&json!("amqp://u:p@h:5672/v")), json!("amqp://u:REDACTED@h:5672/v"));
        assert_eq!(redacted(&json!([{"host": "h", "password": "p"}])), json!([{"host": "h", "password": "REDACTED"}]));
    }

    #[test]
    fn errors_name_the_entry() {
        assert_eq!(parse(json!([{"port": "x"}])).unwrap_err(), "rabbitmq[0]: port must be a non-negative integer");
        assert_eq!(parse(json!({"ssl": {"nope": 1}})).unwrap_err(), "rabbitmq: unknown ssl option \"nope\"");
        assert_eq!(parse(json!(5)).unwrap_err(), "rabbitmq: must be a URL string, a hash or an array of them");
        assert!(!parse(json!("amqp://u:hunter2@h:notaport")).unwrap_err().contains("hunter2"));
    }
}
