//! A plain TCP server on loopback for the TCP checks: a banner, an answer to a question.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;

/// Start one: each connection gets `banner`, then (with `reply`) the answer once the client
/// sent something containing the question; the connection is held until the client closes it.
/// Its port.
pub fn server(banner: &'static str, reply: Option<(&'static str, &'static str)>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let _ = stream.write_all(banner.as_bytes());
                if let Some((question, answer)) = reply {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 256];
                    while !String::from_utf8_lossy(&got).contains(question) {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(answer.as_bytes());
                }
                let mut sink = [0u8; 64];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

/// A loopback port nobody listens on.
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A loopback port where a connection attempt hangs: its listener never accepts and its
/// backlog (0) is already full, so the kernel drops new SYNs.
pub async fn stalled_port() -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap().into_std().unwrap();
    let port = listener.local_addr().unwrap().port();
    let filler = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Both live as long as the test process.
    std::mem::forget((listener, filler));
    port
}
