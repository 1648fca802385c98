//! Shared test support: the private broker (`broker`, re-exported here), the binary
//! (`bin`), the private Docker engine (`docker`), executors (`executor`), loopback servers (`dns`, `web`, `fixtures`), and small
//! helpers for check results.
#![allow(dead_code)]

pub mod bin;
pub mod broker;
pub mod dns;
pub mod docker;
pub mod executor;
pub mod fixtures;
pub mod moto;
pub mod tcp;
pub mod web;

// Not every test crate talks to the broker.
#[allow(unused_imports)]
pub use broker::*;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), rand::random::<u16>())
}

/// A temporary directory path helper.
pub fn path(dir: &tempfile::TempDir, rel: &str) -> PathBuf {
    dir.path().join(rel)
}

/// A JSON object literal as a Sensu object.
pub fn obj(v: Value) -> concierge::proto::Object {
    v.as_object().cloned().unwrap()
}

/// The `output` of a check result.
pub fn output(r: &concierge::proto::Object) -> &str {
    r["output"].as_str().unwrap()
}

/// Assert that a result's output matches `pattern`.
pub fn assert_output(r: &concierge::proto::Object, pattern: &str) {
    let re = regex::Regex::new(pattern).unwrap();
    assert!(re.is_match(output(r)), "output {:?} does not match {pattern}", output(r));
}

/// A file whose creation lets gated check commands finish, so a test decides when running
/// checks end instead of guessing with sleeps.
pub struct Gate {
    dir: tempfile::TempDir,
}

impl Gate {
    pub fn closed() -> Self {
        Gate { dir: tempfile::tempdir().unwrap() }
    }

    /// A shell command that waits for the gate to open, then runs `then`.
    pub fn command(&self, then: &str) -> String {
        format!("until [ -e '{}' ]; do sleep 0.05; done; {then}", self.flag().display())
    }

    pub fn open(&self) {
        std::fs::write(self.flag(), b"").unwrap();
    }

    fn flag(&self) -> PathBuf {
        self.dir.path().join("open")
    }
}

/// Runs `f` when dropped, so a failing assertion still cleans up.
pub fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
