//! A follower of the change feed that falls behind the retained history gets a clear
//! "resync from snapshot" signal, and the planner's wait treats it as one (issue 9, item 10).
//!
//! What is tried: the planner planned revision 3, the feed then moved to 40 and was compacted
//! to 30 (a planner stalled longer than `--history-revisions`). Watching from 3 can no longer
//! be answered from history; the planner must not wait forever, nor keep retrying the same
//! watch with a pause, but re-plan from a snapshot at once.

use api::dataplane::{wait_for_change, Wake};
use std::sync::Arc;
use std::time::Duration;
use store::{Op, SqliteStore, Store};

fn commits(s: &dyn Store, n: usize) {
    for i in 0..n {
        s.commit(&[Op::Put {
            key: format!("res/{}", i % 3),
            value: i.to_string(),
        }])
        .unwrap();
    }
}

#[tokio::test]
async fn a_planner_behind_the_compacted_history_resyncs_at_once() {
    let s: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    commits(s.as_ref(), 40);
    api::compaction::compact_keeping(s.as_ref(), 10).unwrap();
    let t0 = std::time::Instant::now();
    let w = tokio::time::timeout(Duration::from_secs(2), wait_for_change(&s, 3))
        .await
        .expect("the wait hung on a compacted history");
    assert_eq!(w, Wake::Resync);
    assert!(
        t0.elapsed() < Duration::from_millis(150),
        "paused {:?}",
        t0.elapsed()
    );
    // The resync: a snapshot, then a wait from its revision that only a new commit ends.
    let (at, items) = s.range("res/").unwrap();
    assert_eq!((at, items.len()), (40, 3));
    let waiting = tokio::spawn({
        let s = s.clone();
        async move { wait_for_change(&s, at).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "woke without a change");
    commits(s.as_ref(), 1);
    assert_eq!(waiting.await.unwrap(), Wake::Changed);
}

#[tokio::test]
async fn a_planner_within_the_history_is_not_told_to_resync() {
    let s: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    commits(s.as_ref(), 40);
    api::compaction::compact_keeping(s.as_ref(), 10).unwrap();
    assert_eq!(wait_for_change(&s, 30).await, Wake::Changed);
    assert_eq!(wait_for_change(&s, 35).await, Wake::Changed);
}
