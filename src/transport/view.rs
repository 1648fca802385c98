//! The broker as the rest of the process sees it: the fleet loop says when a session is
//! up (and how many subscription queues it consumes) or down; the local API reads it for
//! `/healthz` and `/info`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::RwLock;

use super::session::Session;

/// The fleet loop's view of the broker, shared with the API.
#[derive(Default)]
pub struct TransportView {
    session: RwLock<Option<Arc<Session>>>,
    subscribed: AtomicBool,
    consumers: AtomicUsize,
    expected: AtomicUsize,
}

impl TransportView {
    /// A session is up and bootstrapped with `consumers` of `expected` queues consumed.
    pub async fn up(&self, session: Arc<Session>, consumers: usize, expected: usize) {
        *self.session.write().await = Some(session);
        self.consumers.store(consumers, Ordering::Relaxed);
        self.expected.store(expected, Ordering::Relaxed);
        self.subscribed.store(consumers >= expected, Ordering::Relaxed);
    }

    /// The session is gone.
    pub async fn down(&self) {
        *self.session.write().await = None;
        self.subscribed.store(false, Ordering::Relaxed);
        self.consumers.store(0, Ordering::Relaxed);
    }

    /// The current session, if connected.
    pub async fn session(&self) -> Option<Arc<Session>> {
        self.session.read().await.clone().filter(|s| s.connected())
    }

    /// `(consumers, expected subscription queues)` of the current session.
    pub fn consumers(&self) -> (usize, usize) {
        (self.consumers.load(Ordering::Relaxed), self.expected.load(Ordering::Relaxed))
    }

    /// Whether every subscription queue has a consumer.
    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }
}
