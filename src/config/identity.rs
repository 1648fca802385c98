//! Fleet identity: placeholders in `client.name`, so every replica of a service gets a
//! distinct, readable name from one task definition.
//!
//! * `{hostname}`: the container's hostname;
//! * `{env:VAR}`: an environment variable (Swarm can also template env values itself,
//!   e.g. `SENSU_CLIENT_NAME=probe-{{.Task.Slot}}`);
//! * `{ecs_task_id}`: the ECS task id, read from the task metadata endpoint
//!   (`$ECS_CONTAINER_METADATA_URI_V4/task`, `TaskARN`'s last segment).
//!
//! Characters Sensu does not allow in a name (`\A[\w.-]+\z`) are replaced by `-`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long the ECS metadata endpoint may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// Expand the placeholders of a client name.
pub fn expand(name: &str, env: &HashMap<String, String>, hostname: &str) -> Result<String, String> {
    if !name.contains('{') {
        return Ok(name.to_string());
    }
    let mut out = String::new();
    let mut rest = name;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').ok_or_else(|| format!("client.name {name:?}: unclosed {{"))? + open;
        let key = &rest[open + 1..close];
        let value = match key {
            "hostname" => hostname.to_string(),
            "ecs_task_id" => ecs_task_id(env)?,
            _ => match key.strip_prefix("env:") {
                Some(var) => env.get(var).cloned().ok_or_else(|| format!("client.name {name:?}: {var} is not set"))?,
                None => return Err(format!("client.name {name:?}: unknown placeholder {{{key}}}")),
            },
        };
        out.push_str(&value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(crate::proto::name_from(&out, '-'))
}

/// The ECS task id from the v4 task metadata endpoint.
fn ecs_task_id(env: &HashMap<String, String>) -> Result<String, String> {
    let base = env
        .get("ECS_CONTAINER_METADATA_URI_V4")
        .ok_or("{ecs_task_id} needs ECS_CONTAINER_METADATA_URI_V4 (set by the ECS agent)")?;
    let body = http_get(&format!("{}/task", base.trim_end_matches('/')))?;
    let doc: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("ECS task metadata: {e}"))?;
    let arn = doc.get("TaskARN").and_then(|v| v.as_str()).ok_or("ECS task metadata has no TaskARN")?;
    Ok(arn.rsplit('/').next().unwrap_or(arn).to_string())
}

/// A minimal HTTP/1.0 GET for the link-local metadata endpoint (plain HTTP only).
fn http_get(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// is supported"))?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let addr = authority
        .to_socket_addrs()
        .or_else(|_| format!("{authority}:80").to_socket_addrs())
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, METADATA_TIMEOUT).map_err(|e| format!("{url}: {e}"))?;
    let _ = stream.set_read_timeout(Some(METADATA_TIMEOUT));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| format!("{url}: {e}"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| format!("{url}: {e}"))?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| format!("{url}: malformed response"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("{url}: {}", head.lines().next().unwrap_or_default()));
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        let env: HashMap<String, String> = [("SLOT".to_string(), "3".to_string())].into();
        assert_eq!(expand("probe-{env:SLOT}", &env, "h").unwrap(), "probe-3");
        assert_eq!(expand("{hostname}.eu", &env, "ip-10-0-0-1").unwrap(), "ip-10-0-0-1.eu");
        assert_eq!(expand("plain", &env, "h").unwrap(), "plain");
        assert!(expand("x-{env:NOPE}", &env, "h").unwrap_err().contains("NOPE is not set"));
        assert!(expand("x-{what}", &env, "h").unwrap_err().contains("unknown placeholder"));
        assert!(expand("x-{ecs_task_id}", &env, "h").unwrap_err().contains("ECS_CONTAINER_METADATA_URI_V4"));
    }

    #[test]
    fn ecs_task_id_from_a_metadata_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let (mut request, mut buf) = (Vec::new(), [0u8; 1024]);
            while !request.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "request ended early: {}", String::from_utf8_lossy(&request));
                request.extend_from_slice(&buf[..n]);
            }
            assert!(String::from_utf8_lossy(&request).starts_with("GET /v4/abc/task HTTP/1.0"));
            let body = r#"{"Cluster":"c","TaskARN":"arn:aws:ecs:eu-west-1:123456789012:task/probes/0f5e2c3a4b5d4e6f8a9b0c1d2e3f4a5b"}"#;
            write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        });
        let env: HashMap<String, String> =
            [("ECS_CONTAINER_METADATA_URI_V4".to_string(), format!("http://127.0.0.1:{port}/v4/abc"))].into();
        assert_eq!(expand("probe-{ecs_task_id}", &env, "h").unwrap(), "probe-0f5e2c3a4b5d4e6f8a9b0c1d2e3f4a5b");
    }
}
