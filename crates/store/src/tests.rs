//! Unit tests of the SQLite backend and the watcher.

use std::sync::Arc;
use std::time::Duration;

use crate::{Event, EventKind, Op, Revision, SqliteStore, Store, StoreError};

fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: value.into(),
    }
}

fn del(key: &str) -> Op {
    Op::Delete { key: key.into() }
}

fn mem() -> SqliteStore {
    SqliteStore::open_in_memory().expect("open in-memory store")
}

fn keys(kvs: &[(String, String)]) -> Vec<&str> {
    kvs.iter().map(|(k, _)| k.as_str()).collect()
}

/// Commits `n` single-put revisions with keys `k/<rev>`.
fn fill(store: &dyn Store, n: usize) {
    for _ in 0..n {
        let rev = store.revision().unwrap() + 1;
        assert_eq!(
            store
                .commit(&[put(&format!("k/{rev:06}"), &rev.to_string())])
                .unwrap(),
            rev
        );
    }
}

/// Checks that `events` are exactly the single-put commits `from..=to` made by `fill`.
fn assert_fill_events(events: &[Event], from: Revision, to: Revision) {
    let revs: Vec<Revision> = events.iter().map(|e| e.rev).collect();
    let want: Vec<Revision> = (from..=to).collect();
    assert_eq!(
        revs, want,
        "revisions must be contiguous, without gaps or duplicates"
    );
    for e in events {
        assert_eq!(e.key, format!("k/{:06}", e.rev));
        assert_eq!(e.kind, EventKind::Put);
        assert_eq!(e.value.as_deref(), Some(e.rev.to_string().as_str()));
    }
}

// ---------------------------------------------------------------- commit / get / range

#[test]
fn empty_store_is_at_revision_zero() {
    let s = mem();
    assert_eq!(s.revision().unwrap(), 0);
    assert_eq!(s.get("a").unwrap(), None);
    assert_eq!(s.range("").unwrap(), (0, vec![]));
    assert_eq!(s.events_since(0, 10).unwrap(), vec![]);
    assert_eq!(s.commit(&[]).unwrap(), 0, "empty commit is a no-op");
}

#[test]
fn multi_op_commit_is_one_revision() {
    let s = mem();
    assert_eq!(s.commit(&[put("a", "1"), put("b", "2")]).unwrap(), 1);
    let rev = s
        .commit(&[put("c", "3"), del("a"), del("missing"), put("b", "22")])
        .unwrap();
    assert_eq!(rev, 2);
    assert_eq!(s.revision().unwrap(), 2);
    let evs = s.events_since(1, 100).unwrap();
    assert_eq!(
        evs,
        vec![
            Event {
                rev: 2,
                key: "c".into(),
                kind: EventKind::Put,
                value: Some("3".into())
            },
            Event {
                rev: 2,
                key: "a".into(),
                kind: EventKind::Delete,
                value: None
            },
            Event {
                rev: 2,
                key: "b".into(),
                kind: EventKind::Put,
                value: Some("22".into())
            },
        ],
        "events keep op order, all carry the commit's revision, none for the missing key"
    );
    let (rev, kvs) = s.range("").unwrap();
    assert_eq!(rev, 2);
    assert_eq!(
        kvs,
        vec![("b".into(), "22".into()), ("c".into(), "3".into())]
    );
}

#[test]
fn failed_commit_changes_nothing() {
    let s = mem();
    s.commit(&[put("a", "1")]).unwrap();
    // Make the second op of the next commit fail inside SQLite, after the first op ran.
    s.with_writer(|c| {
        c.execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON kv WHEN NEW.key = 'boom' \
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap()
    });
    let mut w = s.watch(1);
    let err = s
        .commit(&[put("a", "changed"), put("x", "1"), put("boom", "1")])
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert_eq!(s.revision().unwrap(), 1);
    assert_eq!(s.get("a").unwrap().as_deref(), Some("1"));
    assert_eq!(s.get("x").unwrap(), None);
    assert_eq!(s.events_since(0, 100).unwrap().len(), 1);

    // The next commit reuses revision 2 and watchers see only it.
    assert_eq!(s.commit(&[put("y", "1")]).unwrap(), 2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ev = rt.block_on(w.next()).unwrap();
    assert_eq!((ev.rev, ev.key.as_str()), (2, "y"));
}

#[test]
fn invalid_commits_are_rejected_without_effect() {
    let s = mem();
    for ops in [
        vec![put("", "x")],
        vec![del("")],
        vec![put("a", "1"), put("a", "2")],
        vec![put("a", "1"), del("a")],
    ] {
        let err = s.commit(&ops).unwrap_err();
        assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
    }
    assert_eq!(s.revision().unwrap(), 0);
    assert_eq!(s.range("").unwrap().1, vec![]);
}

#[test]
fn get_and_range_prefix_edges() {
    let s = mem();
    let all = [
        "a",
        "a/",
        "a/b",
        "a/b/c",
        "a0",
        "ab",
        "b",
        "res/x",
        "é",
        "é/1",
        "z\u{10FFFF}",
        "\u{10FFFF}",
    ];
    let ops: Vec<Op> = all.iter().map(|k| put(k, &format!("v-{k}"))).collect();
    s.commit(&ops).unwrap();

    let mut sorted = all.to_vec();
    sorted.sort();
    let (rev, kvs) = s.range("").unwrap();
    assert_eq!(rev, 1);
    assert_eq!(keys(&kvs), sorted, "sorted bytewise like Rust strings");
    for (k, v) in &kvs {
        assert_eq!(v, &format!("v-{k}"));
        assert_eq!(s.get(k).unwrap().as_ref(), Some(v));
    }

    let r = |p: &str| s.range(p).unwrap().1;
    assert_eq!(keys(&r("a")), ["a", "a/", "a/b", "a/b/c", "a0", "ab"]);
    assert_eq!(keys(&r("a/")), ["a/", "a/b", "a/b/c"]);
    assert_eq!(keys(&r("a/b")), ["a/b", "a/b/c"]);
    assert_eq!(keys(&r("a/b/c")), ["a/b/c"]);
    assert_eq!(
        keys(&r("a/b/c/")),
        Vec::<&str>::new(),
        "longer than any key"
    );
    assert_eq!(keys(&r("aa")), Vec::<&str>::new(), "between keys");
    assert_eq!(keys(&r("0")), Vec::<&str>::new(), "before all keys");
    assert_eq!(
        keys(&r("\u{10FFFF}\u{10FFFF}")),
        Vec::<&str>::new(),
        "after all keys"
    );
    assert_eq!(keys(&r("é")), ["é", "é/1"]);
    assert_eq!(keys(&r("z")), ["z\u{10FFFF}"]);
    assert_eq!(keys(&r("\u{10FFFF}")), ["\u{10FFFF}"]);
    assert_eq!(keys(&r("A")), Vec::<&str>::new(), "case-sensitive");

    assert_eq!(s.get("a/b/").unwrap(), None);
    assert_eq!(s.get("A").unwrap(), None);
    // SQL wildcards are plain characters.
    assert_eq!(keys(&r("%")), Vec::<&str>::new());
    assert_eq!(keys(&r("_")), Vec::<&str>::new());
}

#[test]
fn values_and_keys_round_trip_verbatim() {
    let s = mem();
    let json = r#"{"name":"vnet1","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]}},"tag":"'; DROP TABLE kv; --"}"#;
    let big = "x".repeat(1 << 20);
    s.commit(&[
        put("res/k1", json),
        put("res/empty", ""),
        put("res/big", &big),
        put("res/nul\0key", "nul\0value"),
    ])
    .unwrap();
    assert_eq!(s.get("res/k1").unwrap().as_deref(), Some(json));
    assert_eq!(s.get("res/empty").unwrap().as_deref(), Some(""));
    assert_eq!(s.get("res/big").unwrap().as_deref(), Some(big.as_str()));
    assert_eq!(
        s.get("res/nul\0key").unwrap().as_deref(),
        Some("nul\0value")
    );
    assert_eq!(s.get("res/nul").unwrap(), None);
}

#[test]
fn delete_semantics() {
    let s = mem();
    s.commit(&[put("a", "1"), put("b", "2")]).unwrap();
    // Deleting only missing keys: no event, no new revision.
    assert_eq!(s.commit(&[del("nope"), del("zzz")]).unwrap(), 1);
    assert_eq!(s.revision().unwrap(), 1);
    assert_eq!(s.events_since(1, 10).unwrap(), vec![]);

    assert_eq!(s.commit(&[del("a")]).unwrap(), 2);
    assert_eq!(s.get("a").unwrap(), None);
    assert_eq!(
        s.events_since(1, 10).unwrap(),
        vec![Event {
            rev: 2,
            key: "a".into(),
            kind: EventKind::Delete,
            value: None
        }]
    );
    // Deleting it again is a no-op.
    assert_eq!(s.commit(&[del("a")]).unwrap(), 2);
    // Re-creating a deleted key starts a new life: create_rev is the new revision.
    assert_eq!(s.commit(&[put("a", "again")]).unwrap(), 3);
    assert_eq!(s.commit(&[put("a", "again2")]).unwrap(), 4);
    let (create, modified): (i64, i64) = s.with_writer(|c| {
        c.query_row(
            "SELECT create_rev, mod_rev FROM kv WHERE key = 'a'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    });
    assert_eq!((create, modified), (3, 4));
    assert_eq!(keys(&s.range("").unwrap().1), ["a", "b"]);
}

// ---------------------------------------------------------------- events_since

#[test]
fn events_since_orders_and_limits_by_whole_revisions() {
    let s = mem();
    // rev 1: 1 event, rev 2: 3 events, rev 3: 1 event, rev 4: 5 events.
    s.commit(&[put("r1", "x")]).unwrap();
    s.commit(&[put("r2a", "x"), put("r2b", "x"), put("r2c", "x")])
        .unwrap();
    s.commit(&[del("r1")]).unwrap();
    let r4: Vec<Op> = (0..5).map(|i| put(&format!("r4/{i}"), "x")).collect();
    s.commit(&r4).unwrap();

    let revs = |after, limit| -> Vec<Revision> {
        s.events_since(after, limit)
            .unwrap()
            .iter()
            .map(|e| e.rev)
            .collect()
    };
    assert_eq!(revs(0, 100), [1, 2, 2, 2, 3, 4, 4, 4, 4, 4]);
    assert_eq!(revs(0, 10), [1, 2, 2, 2, 3, 4, 4, 4, 4, 4]);
    assert_eq!(revs(0, 1), [1]);
    assert_eq!(revs(0, 2), [1], "never split revision 2");
    assert_eq!(revs(0, 3), [1], "never split revision 2");
    assert_eq!(revs(0, 4), [1, 2, 2, 2]);
    assert_eq!(revs(0, 5), [1, 2, 2, 2, 3]);
    assert_eq!(revs(0, 9), [1, 2, 2, 2, 3], "never split revision 4");
    assert_eq!(
        revs(1, 1),
        [2, 2, 2],
        "one revision bigger than the limit comes whole"
    );
    assert_eq!(revs(3, 2), [4, 4, 4, 4, 4]);
    assert_eq!(revs(2, 100), [3, 4, 4, 4, 4, 4]);
    assert_eq!(revs(0, 0), Vec::<Revision>::new());
    assert_eq!(revs(4, 100), Vec::<Revision>::new());
    assert_eq!(
        revs(1000, 100),
        Vec::<Revision>::new(),
        "future: nothing yet"
    );
    assert_eq!(revs(u64::MAX, usize::MAX), Vec::<Revision>::new());
    assert_eq!(revs(0, usize::MAX).len(), 10);

    // Paging with any limit by resuming from the last revision reads everything once.
    for limit in 1..12 {
        let mut after = 0;
        let mut all = Vec::new();
        loop {
            let page = s.events_since(after, limit).unwrap();
            let Some(last) = page.last() else { break };
            after = last.rev;
            all.extend(page);
        }
        assert_eq!(all, s.events_since(0, 100).unwrap(), "limit {limit}");
    }

    let evs = s.events_since(1, 3).unwrap();
    assert_eq!(
        evs.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        ["r2a", "r2b", "r2c"],
        "events of one commit keep op order"
    );
}

// ---------------------------------------------------------------- compaction

#[test]
fn compaction() {
    let s = mem();
    fill(&s, 5);
    s.compact(3).unwrap();
    for after in 0..3 {
        match s.events_since(after, 10) {
            Err(StoreError::Compacted {
                requested,
                compacted,
            }) => assert_eq!((requested, compacted), (after, 3)),
            other => panic!("after {after}: expected Compacted, got {other:?}"),
        }
    }
    assert_fill_events(&s.events_since(3, 10).unwrap(), 4, 5);
    assert_fill_events(&s.events_since(4, 10).unwrap(), 5, 5);

    // Compacting lower or equal again is a no-op; the future is an error.
    s.compact(2).unwrap();
    s.compact(3).unwrap();
    assert!(s.events_since(3, 10).is_ok());
    match s.compact(6) {
        Err(StoreError::FutureRevision { requested, current }) => {
            assert_eq!((requested, current), (6, 5))
        }
        other => panic!("expected FutureRevision, got {other:?}"),
    }
    match s.compact(u64::MAX) {
        Err(StoreError::FutureRevision { .. }) => {}
        other => panic!("expected FutureRevision, got {other:?}"),
    }

    // Keys are untouched; compacting to the current revision empties the log.
    assert_eq!(s.range("k/").unwrap().1.len(), 5);
    s.compact(5).unwrap();
    assert_eq!(s.events_since(5, 10).unwrap(), vec![]);
    assert!(matches!(
        s.events_since(4, 10),
        Err(StoreError::Compacted { .. })
    ));
    // New commits continue the revision sequence.
    fill(&s, 1);
    assert_fill_events(&s.events_since(5, 10).unwrap(), 6, 6);
    let msg = s.events_since(0, 1).unwrap_err().to_string();
    assert!(msg.contains("compacted"), "{msg}");
}

#[tokio::test]
async fn watcher_from_compacted_revision_fails_and_stays_failed() {
    let s = mem();
    fill(&s, 5);
    s.compact(3).unwrap();
    let mut w = s.watch(2);
    assert!(matches!(w.next().await, Err(StoreError::Compacted { .. })));
    fill(&s, 1);
    assert!(matches!(w.next().await, Err(StoreError::Compacted { .. })));
    let mut ok = s.watch(3);
    assert_fill_events(&[ok.next().await.unwrap(), ok.next().await.unwrap()], 4, 5);
}

// ---------------------------------------------------------------- watch

async fn collect(w: &mut crate::Watcher, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let ev = tokio::time::timeout(Duration::from_secs(30), w.next())
            .await
            .expect("watcher stalled")
            .expect("watcher failed");
        out.push(ev);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_resumes_from_past_revision_during_concurrent_commits() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    fill(&s, 300);
    let mut w = s.watch(100);

    const MORE: usize = 700;
    let writer = {
        let s = s.clone();
        std::thread::spawn(move || {
            // Small batches of commits with pauses, so some land while the watcher reads
            // history and some while it is live.
            for i in 0..MORE {
                fill(&s, 1);
                if i % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    let events = collect(&mut w, 300 - 100 + MORE).await;
    writer.join().unwrap();
    assert_fill_events(&events, 101, 1000);
    // Nothing more is pending.
    assert!(tokio::time::timeout(Duration::from_millis(50), w.next())
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_watchers_with_multi_event_commits() {
    let s = mem();
    let mut watchers: Vec<_> = (0..4).map(|i| s.watch(i * 10)).collect();
    let writer = {
        let s = s.clone();
        std::thread::spawn(move || {
            for r in 1..=200u64 {
                let n = (r % 3 + 1) as usize;
                let ops: Vec<Op> = (0..n).map(|i| put(&format!("m/{r}/{i}"), "v")).collect();
                assert_eq!(s.commit(&ops).unwrap(), r);
            }
        })
    };
    let expected = |after: u64| -> Vec<(Revision, String)> {
        (after + 1..=200)
            .flat_map(|r| (0..(r % 3 + 1)).map(move |i| (r, format!("m/{r}/{i}"))))
            .collect()
    };
    for (i, w) in watchers.iter_mut().enumerate() {
        let want = expected(i as u64 * 10);
        let got: Vec<(Revision, String)> = collect(w, want.len())
            .await
            .into_iter()
            .map(|e| (e.rev, e.key))
            .collect();
        assert_eq!(got, want, "watcher {i}");
    }
    writer.join().unwrap();
}

#[tokio::test]
async fn lagging_watcher_falls_back_to_history() {
    let s = SqliteStore::open_in_memory_with_capacity(8).unwrap();
    let mut w = s.watch(0);
    // Let the watcher find the log empty and go live (waiting on the channel).
    assert!(tokio::time::timeout(Duration::from_millis(20), w.next())
        .await
        .is_err());
    fill(&s, 100); // far more than the channel holds
    let events = collect(&mut w, 100).await;
    assert_fill_events(&events, 1, 100);
    assert!(w.lag_fallbacks() >= 1, "the channel must have lagged");

    // Lag again while live, with multi-event commits this time.
    assert!(tokio::time::timeout(Duration::from_millis(20), w.next())
        .await
        .is_err());
    for r in 101..=130u64 {
        s.commit(&[put(&format!("x/{r}/a"), "1"), put(&format!("x/{r}/b"), "2")])
            .unwrap();
    }
    let events = collect(&mut w, 60).await;
    let got: Vec<(Revision, String)> = events.into_iter().map(|e| (e.rev, e.key)).collect();
    let want: Vec<(Revision, String)> = (101..=130u64)
        .flat_map(|r| [(r, format!("x/{r}/a")), (r, format!("x/{r}/b"))])
        .collect();
    assert_eq!(got, want);
    assert!(w.lag_fallbacks() >= 2);
}

#[tokio::test]
async fn lag_with_default_capacity() {
    let s = mem();
    let mut w = s.watch(0);
    assert!(tokio::time::timeout(Duration::from_millis(20), w.next())
        .await
        .is_err());
    let n = crate::sqlite::DEFAULT_WATCH_CAPACITY + 200;
    fill(&s, n);
    assert_fill_events(&collect(&mut w, n).await, 1, n as Revision);
    assert!(w.lag_fallbacks() >= 1);
}

#[tokio::test]
async fn next_is_cancel_safe() {
    let s = mem();
    let mut w = s.watch(0);
    let mut got = Vec::new();
    for round in 0..50 {
        if round % 3 != 0 {
            fill(&s, 2);
        }
        // Very short timeouts cancel next() at arbitrary points.
        while let Ok(r) = tokio::time::timeout(Duration::from_micros(50), w.next()).await {
            got.push(r.unwrap());
        }
    }
    let total = s.revision().unwrap();
    got.extend(collect(&mut w, total as usize - got.len()).await);
    assert_fill_events(&got, 1, total);
}

#[tokio::test]
async fn watch_from_the_future_and_from_now() {
    let s = mem();
    fill(&s, 3);
    let mut now = s.watch(3);
    let mut future = s.watch(5);
    fill(&s, 4);
    assert_fill_events(&collect(&mut now, 4).await, 4, 7);
    assert_fill_events(&collect(&mut future, 2).await, 6, 7);
}

#[tokio::test]
async fn watcher_reports_closed_when_store_is_dropped() {
    let s = mem();
    fill(&s, 2);
    let mut w = s.watch(0);
    assert_eq!(w.next().await.unwrap().rev, 1);
    drop(s);
    // Already buffered or not, history is gone with the store: the stream ends cleanly.
    let mut results = Vec::new();
    for _ in 0..3 {
        results.push(w.next().await);
    }
    assert!(
        results.iter().any(|r| matches!(r, Err(StoreError::Closed))),
        "{results:?}"
    );
    assert!(matches!(results.last(), Some(Err(StoreError::Closed))));
}

#[test]
fn watcher_works_from_another_runtime_and_without_one() {
    let s = mem();
    fill(&s, 3);
    let mut w = s.watch(1);
    // A runtime created after the store and the watcher.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(w.next()).unwrap().rev, 2);
    drop(rt);
    // No runtime at all: a minimal thread-parking executor.
    assert_eq!(block_on(w.next()).unwrap().rev, 3);
    let s2 = s.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        fill(&s2, 1);
    });
    assert_eq!(block_on(w.next()).unwrap().rev, 4);
    t.join().unwrap();
}

#[test]
fn watcher_and_its_future_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let s = mem();
    let mut w = s.watch(0);
    assert_send(&w);
    let fut = w.next();
    assert_send(&fut);
    let store: Arc<dyn Store> = Arc::new(s);
    assert_send(&store);
}

/// Runs a future to completion on the current thread without any tokio runtime.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_secs(5));
    }
}

// ---------------------------------------------------------------- files

#[test]
fn file_store_uses_wal_and_full_sync_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vnet.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        let (mode, sync): (String, i64) = s.with_writer(|c| {
            (
                c.pragma_query_value(None, "journal_mode", |r| r.get(0))
                    .unwrap(),
                c.pragma_query_value(None, "synchronous", |r| r.get(0))
                    .unwrap(),
            )
        });
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous must be FULL");
        fill(&s, 10);
        s.compact(4).unwrap();
        s.commit(&[del("k/000001")]).unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.revision().unwrap(), 11);
    assert_eq!(s.range("k/").unwrap().1.len(), 9);
    assert!(matches!(
        s.events_since(3, 10),
        Err(StoreError::Compacted { compacted: 4, .. })
    ));
    assert_eq!(s.events_since(4, 100).unwrap().len(), 7);
    assert_eq!(s.commit(&[put("new", "1")]).unwrap(), 12);
}

#[test]
fn unusable_files_give_clear_open_errors() {
    let dir = tempfile::tempdir().unwrap();

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a_u8; 8192]).unwrap();
    let err = SqliteStore::open(&garbage).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(msg.contains("garbage.db") && msg.contains("not a"), "{msg}");

    // A real store whose header has been overwritten.
    let damaged = dir.path().join("damaged.db");
    {
        let s = SqliteStore::open(&damaged).unwrap();
        fill(&s, 3);
    }
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[..16].copy_from_slice(b"definitely-not!!");
    std::fs::write(&damaged, bytes).unwrap();
    assert!(matches!(
        SqliteStore::open(&damaged),
        Err(StoreError::Open { .. })
    ));

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE customers(id INTEGER PRIMARY KEY);")
        .unwrap();
    let msg = SqliteStore::open(&foreign).unwrap_err().to_string();
    assert!(msg.contains("another program"), "{msg}");
    // ... and the foreign database was not modified.
    let tables: i64 = rusqlite::Connection::open(&foreign)
        .unwrap()
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1);

    let newer = dir.path().join("newer.db");
    drop(SqliteStore::open(&newer).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let msg = SqliteStore::open(&newer).unwrap_err().to_string();
    assert!(msg.contains("format version 99"), "{msg}");

    let missing = dir.path().join("no/such/dir/store.db");
    assert!(matches!(
        SqliteStore::open(&missing),
        Err(StoreError::Open { .. })
    ));
    assert!(matches!(
        SqliteStore::open(dir.path()),
        Err(StoreError::Open { .. })
    ));
}
