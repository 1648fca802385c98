//! Command checks leave nothing behind: no file descriptor, no zombie, no process.
//! (Its own test binary, so no other test's processes or descriptors blur the count.)

use std::time::Duration;

use concierge::checks::command::{Spawn, run};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Processes whose parent is this test process.
fn children() -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)) == Some(me.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_leaked_descriptors_zombies_or_grandchildren() {
    // Warm up the runtime's own descriptors (signal pipes, epoll) first.
    run(Spawn { command: "true".into(), ..Spawn::default() }).await;
    let before = open_fds();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let command = match i % 4 {
            0 => "echo out; echo err >&2".to_string(),
            1 => "sleep 5".to_string(),
            2 => "trap '' TERM; (trap '' TERM; sleep 31.4159) & sleep 31.4159".to_string(),
            _ => "cat".to_string(),
        };
        let timeout = (i % 4 != 0 && i % 4 != 3).then_some(Duration::from_millis(300));
        let stdin = (i % 4 == 3).then(|| b"data".to_vec());
        tasks.push(tokio::spawn(run(Spawn { command, timeout, stdin, env: vec![], ..Spawn::default() })));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let outcome = task.await.unwrap();
        match i % 4 {
            0 => assert_eq!(outcome.output, "out\nerr\n"),
            3 => assert_eq!(outcome.output, "data"),
            _ => assert_eq!(outcome.output, "Execution timed out"),
        }
    }
    // Give the kernel a moment to reparent/reap anything that escaped.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(open_fds(), before, "file descriptors leaked");
    assert_eq!(children(), Vec::<String>::new(), "child processes (zombies included) left behind");
    let survivors = std::process::Command::new("pgrep").args(["-f", "sleep 31.4159"]).output().unwrap();
    assert!(survivors.stdout.is_empty(), "grandchildren survived: {}", String::from_utf8_lossy(&survivors.stdout));
}
