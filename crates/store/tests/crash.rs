//! Durability: every write that `commit` acknowledged survives `kill -9` of the writer.
//!
//! The writer is a separate process (`store-crash-writer`) so that SIGKILL hits it in the
//! middle of a commit, with SQLite's file handles, WAL and shared memory in whatever state
//! they happen to be in.  (SIGKILL does not drop the kernel's page cache, so this checks the
//! commit/ack ordering and crash recovery; power-loss safety rests on `synchronous=FULL`,
//! which a unit test verifies is set.)

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use store::{EventKind, Op, SqliteStore, Store};

const WRITER: &str = env!("CARGO_BIN_EXE_store-crash-writer");

/// Runs the writer on `path`, reads `acks` acknowledgements, SIGKILLs it, and returns the
/// acknowledged `(revision, n)` pairs.
fn run_and_kill(path: &Path, acks: usize) -> Vec<(u64, u64)> {
    let mut child = Command::new(WRITER)
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn store-crash-writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut got = Vec::with_capacity(acks);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read ack");
        let mut it = line
            .split(' ')
            .map(|f| f.parse::<u64>().expect("numeric ack"));
        got.push((it.next().expect("rev"), it.next().expect("n")));
        if got.len() == acks {
            break;
        }
    }
    // std's Child::kill sends SIGKILL on Unix: no destructors, no SQLite close/checkpoint.
    child.kill().expect("SIGKILL the writer");
    let status = child.wait().expect("reap the writer");
    assert!(
        !status.success(),
        "the writer must have been killed, not exit on its own: {status:?}"
    );
    assert_eq!(got.len(), acks, "the writer stopped early");
    got
}

fn check_acknowledged(store: &SqliteStore, acks: &[(u64, u64)]) {
    let rev = store.revision().unwrap();
    let last = acks.last().unwrap().0;
    assert!(rev >= last, "revision {rev} is behind the last ack {last}");
    for &(ack_rev, n) in acks {
        let value = store
            .get(&format!("crash/{n:010}"))
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged key {n} (revision {ack_rev}) was lost"));
        assert!(value.starts_with(&format!("{{\"n\":{n},")), "{value}");
    }
    // Atomicity across the crash: every revision is one complete commit of one key.
    let (range_rev, kvs) = store.range("crash/").unwrap();
    assert_eq!(range_rev, rev);
    assert_eq!(
        kvs.len() as u64,
        rev,
        "one key per revision, no partial commits"
    );
    let events = store.events_since(0, usize::MAX).unwrap();
    assert_eq!(events.len() as u64, rev);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.rev, i as u64 + 1);
        assert_eq!(e.kind, EventKind::Put);
        assert_eq!(e.key, format!("crash/{i:010}"));
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");

    // Several crash/recover rounds on the same file, with different kill points.
    let mut all_acks = Vec::new();
    for (round, acks) in [300usize, 457, 611].into_iter().enumerate() {
        let acks = run_and_kill(&path, acks);
        all_acks.extend_from_slice(&acks);
        let store = SqliteStore::open(&path)
            .unwrap_or_else(|e| panic!("round {round}: reopen after SIGKILL: {e}"));
        check_acknowledged(&store, &all_acks);
    }

    // The recovered store still accepts writes and continues the revision sequence.
    let store = SqliteStore::open(&path).unwrap();
    let before = store.revision().unwrap();
    let rev = store
        .commit(&[Op::Put {
            key: "after-crash".into(),
            value: "ok".into(),
        }])
        .unwrap();
    assert_eq!(rev, before + 1);
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get("after-crash").unwrap().as_deref(), Some("ok"));
    assert_eq!(store.revision().unwrap(), rev);
}
