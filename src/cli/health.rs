//! `concierge health`: ask the running client's `/healthz` and exit 0 if it can do work,
//! 1 if not (a Docker `HEALTHCHECK` in an image without curl).

use std::net::SocketAddr;
use std::process::ExitCode;

use super::{Context, exit};
use crate::config::{ApiSettings, DEFAULT_HTTP_PORT, Loaded};

/// Ask `/healthz` at `url`, or where the settings put the HTTP socket.
pub async fn health(context: &Context, url: Option<String>) -> ExitCode {
    let url = url.unwrap_or_else(|| healthz_url(context));
    let params = serde_json::json!({"url": url, "timeout": 5, "status": ["200"]});
    let params = match serde::Deserialize::deserialize(params) {
        Ok(p) => p,
        Err(e) => {
            let e: serde_json::Error = e;
            eprintln!("unhealthy: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match crate::checks::http::fetch(params).await {
        Ok(fetched) => {
            println!("{}", String::from_utf8_lossy(&fetched.body));
            ExitCode::from(if fetched.status == 200 { exit::OK } else { exit::FAILURE })
        }
        Err(failure) => {
            eprintln!("unhealthy: {}", failure.message);
            ExitCode::from(exit::FAILURE)
        }
    }
}

/// `/healthz` on the configured HTTP socket (an unspecified bind address is asked on
/// 127.0.0.1); the default address when the settings cannot be read.
fn healthz_url(context: &Context) -> String {
    let api =
        Loaded::load(&context.sources(false)).map(|loaded| ApiSettings::from_raw(&loaded.raw)).unwrap_or_default();
    let addr = api
        .http_socket
        .address()
        .ok()
        .flatten()
        .map(|a| if a.ip().is_unspecified() { SocketAddr::new([127, 0, 0, 1].into(), a.port()) } else { a });
    format!("http://{}/healthz", addr.unwrap_or_else(|| ([127, 0, 0, 1], DEFAULT_HTTP_PORT).into()))
}
