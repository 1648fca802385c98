//! Giving a burst's memory back to the system. glibc keeps the small blocks a burst freed in
//! its arenas, so a client's RSS stays at the burst's peak for good (10,000 built-in checks
//! in flight at once left one at 110 MB); `malloc_trim` returns the free pages (the same
//! client went back to 22 MB). The client asks for it every [`INTERVAL`], on a blocking
//! thread; with nothing freed since the last time it has next to nothing to do.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often free memory is given back.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Give free memory back every [`INTERVAL`] until `stop`.
pub async fn give_back_periodically(stop: CancellationToken) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let started = std::time::Instant::now();
        if let Ok(released) = tokio::task::spawn_blocking(give_back).await {
            tracing::debug!(released, took_us = started.elapsed().as_micros() as u64, "free memory given back");
        }
    }
}

/// Return the allocator's free pages to the system; whether any were returned. Only glibc's
/// allocator keeps them (elsewhere this does nothing).
#[allow(unsafe_code)]
pub fn give_back() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own free lists under its locks.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// Resident pages of this process, in bytes.
    fn resident() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        statm.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
    }

    #[test]
    fn a_burst_of_small_blocks_is_given_back() {
        // 100 MB in 1 KB blocks, freed but for every 64th (which keeps glibc from trimming
        // the heap's top by itself): the pages between them stay resident until given back.
        std::thread::spawn(|| {
            let blocks: Vec<Vec<u8>> = (0..100_000).map(|i| vec![(i % 251) as u8; 1000]).collect();
            let kept: Vec<Vec<u8>> =
                blocks.into_iter().enumerate().filter(|(i, _)| i % 64 == 0).map(|(_, b)| b).collect();
            let before = resident();
            assert!(super::give_back(), "nothing given back");
            let after = resident();
            assert!(before - after > 50 << 20, "resident {before} -> {after}");
            assert_eq!(kept.len(), 1563);
        })
        .join()
        .unwrap();
    }
}
