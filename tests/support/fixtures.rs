//! A loopback HTTP server serving fixed bodies (metric pages) with a content type, on
//! its own thread and runtime.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

/// Serves `path → (content type, body)`; anything else is 404.
pub struct FixtureServer {
    pub addr: SocketAddr,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl FixtureServer {
    pub fn start(routes: Vec<(&str, &str, Vec<u8>)>) -> Self {
        let routes: Arc<HashMap<String, (String, Bytes)>> =
            Arc::new(routes.into_iter().map(|(p, c, b)| (p.to_string(), (c.to_string(), Bytes::from(b)))).collect());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else { continue };
                        let routes = routes.clone();
                        tokio::spawn(async move {
                            let service =
                                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                                    let routes = routes.clone();
                                    async move {
                                        let response = match routes.get(req.uri().path()) {
                                            Some((ct, body)) => hyper::Response::builder()
                                                .header("content-type", ct.as_str())
                                                .body(http_body_util::Full::new(body.clone())),
                                            None => hyper::Response::builder()
                                                .status(404)
                                                .body(http_body_util::Full::new(Bytes::from_static(b"not found"))),
                                        };
                                        Ok::<_, std::convert::Infallible>(response.unwrap())
                                    }
                                });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = rx => {}
                }
            });
        });
        Self { addr, _shutdown: tx }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
