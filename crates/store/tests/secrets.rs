//! Keys without history (`store::SECRET_PREFIX`) and the at-rest properties of the files.
//!
//! The attacker here has a copy of the data directory (a backup, a stolen disk) and looks for
//! a secret that was changed or deleted long ago: in the change feed, in the WAL, in free
//! pages. The values below are plain (the API encrypts them before they get here), so finding
//! them with a byte search is exactly what the attacker would do.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use store::{Op, SqliteStore, Store, StoreError, SECRET_PREFIX};

fn put(k: &str, v: &str) -> Op {
    Op::Put {
        key: k.into(),
        value: v.into(),
    }
}

/// Every file of the directory, concatenated.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn secret_keys_have_no_history_and_make_no_revision_alone() {
    let s = SqliteStore::open_in_memory().unwrap();
    let sk = format!("{SECRET_PREFIX}res/a");
    let r1 = s.commit(&[put("res/a", "{}"), put(&sk, "k1")]).unwrap();
    assert_eq!(r1, 1);
    // Only the ordinary key is in the feed.
    let ev = s.events_since(0, 100).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].key, "res/a");
    // A commit that writes only a secret: stored, no revision, no event.
    assert_eq!(s.commit(&[put(&sk, "k2")]).unwrap(), 1);
    assert_eq!(s.revision().unwrap(), 1);
    assert_eq!(s.get(&sk).unwrap().as_deref(), Some("k2"));
    assert_eq!(s.events_since(0, 100).unwrap().len(), 1);
    // Deleting it: gone, still no event; range sees only what is there.
    assert_eq!(s.commit(&[Op::Delete { key: sk.clone() }]).unwrap(), 1);
    assert_eq!(s.get(&sk).unwrap(), None);
    assert!(s.range(SECRET_PREFIX).unwrap().1.is_empty());
    // Deleting a missing secret is nothing at all.
    assert_eq!(s.commit(&[Op::Delete { key: sk }]).unwrap(), 1);
}

#[tokio::test]
async fn watchers_never_see_secret_values() {
    let s = SqliteStore::open_in_memory().unwrap();
    let mut w = s.watch(0);
    s.commit(&[put("secret/x", "hidden")]).unwrap();
    s.commit(&[put("res/a", "1"), put("secret/y", "hidden2")])
        .unwrap();
    let e = w.next().await.unwrap();
    assert_eq!((e.rev, e.key.as_str()), (1, "res/a"));
    // Nothing else is pending: the secret-only commit made no revision.
    let more = tokio::time::timeout(std::time::Duration::from_millis(100), w.next()).await;
    assert!(more.is_err(), "unexpected event {more:?}");
}

#[test]
fn old_secret_values_leave_no_trace_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = SqliteStore::open(&path).unwrap();
    // Some bulk around it, so the secret shares pages with other data.
    for i in 0..50 {
        s.commit(&[put(&format!("res/{i}"), &"x".repeat(300))])
            .unwrap();
    }
    let old = "OLD-shared-key-4f1c2a9d";
    let new = "NEW-shared-key-77b0e3aa-longer-than-the-old-one";
    s.commit(&[put("res/conn", "{}"), put("secret/res/conn", old)])
        .unwrap();
    // While it exists it is stored (plain at this level: the API seals it).
    assert!(contains(&all_bytes(dir.path()), old) || s.get("secret/res/conn").is_ok());
    s.commit(&[put("res/conn", "{\"v\":2}"), put("secret/res/conn", new)])
        .unwrap();
    let bytes = all_bytes(dir.path());
    assert!(
        !contains(&bytes, old),
        "the changed secret survives in a file"
    );
    s.commit(&[
        Op::Delete {
            key: "res/conn".into(),
        },
        Op::Delete {
            key: "secret/res/conn".into(),
        },
    ])
    .unwrap();
    let bytes = all_bytes(dir.path());
    assert!(!contains(&bytes, old), "the old secret survives");
    assert!(!contains(&bytes, new), "the deleted secret survives");
    // And after a restart nothing comes back.
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.get("secret/res/conn").unwrap(), None);
    assert!(!contains(&all_bytes(dir.path()), new));
}

#[test]
fn store_files_are_private_even_if_they_were_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let s = SqliteStore::open(&path).unwrap();
    s.commit(&[put("a", "1")]).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for f in ["p.db", "p.db-wal", "p.db-shm"] {
        assert_eq!(mode(&dir.path().join(f)), 0o600, "{f}");
    }
    drop(s);
    // An older vnet left them world-readable: the next open tightens them.
    for f in ["p.db", "p.db-wal"] {
        let p = dir.path().join(f);
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let _s = SqliteStore::open(&path).unwrap();
    for f in ["p.db", "p.db-wal"] {
        let p = dir.path().join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f} after reopen");
        }
    }
}

#[test]
fn compaction_gives_the_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let s = SqliteStore::open(&path).unwrap();
    let value = "v".repeat(1300);
    for i in 0..2000 {
        s.commit(&[put(&format!("res/{}", i % 10), &value)])
            .unwrap();
    }
    let size = |s: &SqliteStore| {
        s.commit(&[]).unwrap();
        std::fs::metadata(&path).unwrap().len()
    };
    let before = size(&s);
    let rev = s.revision().unwrap();
    s.compact(rev - 10).unwrap();
    let after = size(&s);
    assert!(
        after * 4 < before,
        "compaction kept the file at {after} bytes (was {before})"
    );
    // The WAL was emptied too.
    let wal = std::fs::metadata(dir.path().join("c.db-wal")).map(|m| m.len());
    assert_eq!(wal.unwrap_or(0), 0);
    assert!(matches!(
        s.events_since(0, 1),
        Err(e @ StoreError::Compacted { .. }) if e.needs_resync() && e.to_string().contains("resync from a snapshot")
    ));
}
