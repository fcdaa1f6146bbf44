//! The journal writer waits for a free core rather than preempting request
//! work (`SCHED_BATCH` on Linux), and leaves a thread whose nice value the
//! operator changed alone. Read back from `/proc`, as `chrt -p` and `ps`
//! would show it.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use dtenge_store::{Journal, JournalConfig};
use tempfile::TempDir;
use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
};

const SCHED_OTHER: i64 = 0;
const SCHED_BATCH: i64 = 3;

/// (policy, nice) of each journal writer thread of this process.
fn writers() -> Vec<(i64, i64)> {
    let mut found = Vec::new();
    for task in fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let Ok(comm) = fs::read_to_string(dir.join("comm")) else { continue };
        // The kernel keeps 15 bytes of a thread's name.
        if !"dtenge-journal-writer".starts_with(comm.trim_end()) || comm.trim_end().len() < 15 {
            continue;
        }
        // Fields 19 (nice) and 41 (policy) of proc(5)'s stat; those after
        // the command name, which may hold spaces, start with the third.
        let stat = fs::read_to_string(dir.join("stat")).unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().collect();
        let nice = fields[19 - 3].parse().unwrap();
        let policy = fields[41 - 3].parse().unwrap();
        found.push((policy, nice));
    }
    found
}

/// Opens a journal and waits for one record, so its writer has started.
fn open_and_write(dir: &TempDir) -> Journal {
    let (journal, _) = Journal::open(JournalConfig::new(dir.path())).unwrap();
    journal.append(b"record".to_vec()).unwrap().wait().unwrap();
    journal
}

#[test]
fn the_writer_runs_as_a_batch_thread_at_the_same_nice_value() {
    let dir = TempDir::new().unwrap();
    // Opened from a thread of its own, so the other test's writer (made at
    // another nice value) is not the one found.
    std::thread::spawn(move || {
        let journal = open_and_write(&dir);
        let writers = writers();
        assert!(!writers.is_empty(), "no journal writer thread found");
        assert!(writers.contains(&(SCHED_BATCH, 0)), "writers (policy, nice): {writers:?}");
        journal.close().unwrap();
    })
    .join()
    .unwrap();
}

#[test]
fn a_writer_started_at_another_nice_value_keeps_the_default_policy() {
    let dir = TempDir::new().unwrap();
    std::thread::spawn(move || {
        // A lower priority needs no privilege; the writer inherits it.
        let normal = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
        set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, normal).unwrap();
        let journal = open_and_write(&dir);
        let writers = writers();
        assert!(writers.contains(&(SCHED_OTHER, 19)), "writers (policy, nice): {writers:?}");
        assert!(!writers.contains(&(SCHED_BATCH, 19)), "writers (policy, nice): {writers:?}");
        journal.close().unwrap();
    })
    .join()
    .unwrap();
}
