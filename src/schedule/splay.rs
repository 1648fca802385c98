//! The interval splay (`calculate_check_execution_splay`, sensu 1.9.0
//! `lib/sensu/client/process.rb`). It must be exact: it decides at which second of each
//! interval a client runs a standalone check, so schedules stay put across restarts.

use md5::{Digest, Md5};

/// Seconds to wait before the first run: `((h − now_ms) mod (interval × 1000)) / 1000`
/// where `h` is the first 8 bytes of `MD5("<client>:<check>")` read as a little-endian
/// u64 and the modulo is floored (Ruby's).
pub fn splay_seconds(client: &str, check: &str, now_seconds: f64, interval: u64) -> f64 {
    let digest = Md5::digest(format!("{client}:{check}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let h = i128::from(u64::from_le_bytes(first));
    let now_ms = (now_seconds * 1000.0).floor() as i128;
    let period = i128::from(interval.max(1)) * 1000;
    (h - now_ms).rem_euclid(period) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    // Spec §4.2 and §7 item 29.
    #[test]
    fn spec_vectors() {
        assert_eq!(splay_seconds("i-424242", "test", 1414213569.032, 60), 3.321);
        assert_eq!(splay_seconds("i-424242", "test", 1414213569.032, 3600), 783.321);
    }

    #[test]
    fn always_within_the_interval() {
        for i in 0..200 {
            let s = splay_seconds("c", &format!("check{i}"), 1_700_000_000.5 + f64::from(i), 10);
            assert!((0.0..10.0).contains(&s), "{s}");
        }
    }
}
