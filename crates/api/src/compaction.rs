//! Bounded history: the change feed of each store keeps the last N revisions.
//!
//! Without this every write cost ~1.35 KB of disk forever (the event row of every revision
//! was kept). The change feed exists for followers that resume (the planner, watchers); they
//! need recent history, not all of it. A follower that falls further behind than N gets
//! [`store::StoreError::Compacted`] ([`store::StoreError::needs_resync`]) and re-reads a
//! snapshot, which the planner does (see `dataplane::wait_for_change`).
//!
//! Compaction runs once at start (before anything follows the feed) and then on a schedule.

use std::sync::Arc;
use std::time::Duration;
use store::{Revision, Store, StoreError};

/// Revisions of history kept by default (`vnet serve --history-revisions`).
pub const DEFAULT_HISTORY_REVISIONS: u64 = 10_000;
/// How often the schedule compacts.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Drops history older than the last `keep` revisions. Returns the new compaction point, or
/// `None` when there was nothing to drop. `keep == 0` keeps no history at all.
pub fn compact_keeping(store: &dyn Store, keep: u64) -> Result<Option<Revision>, StoreError> {
    let rev = store.revision()?;
    let Some(point) = rev.checked_sub(keep).filter(|p| *p > 0) else {
        return Ok(None);
    };
    store.compact(point)?;
    Ok(Some(point))
}

/// Compacts every store now; errors are logged, not fatal (history only costs disk).
pub fn compact_all(stores: &[(&'static str, Arc<dyn Store>)], keep: u64) {
    for (name, s) in stores {
        match compact_keeping(s.as_ref(), keep) {
            Ok(Some(point)) => {
                tracing::debug!(store = name, compacted = point, "change feed compacted")
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(store = name, error = %e, "compaction failed"),
        }
    }
}

/// Compacts every store every `every`, keeping `keep` revisions, until the runtime stops.
pub fn spawn(
    stores: Vec<(&'static str, Arc<dyn Store>)>,
    keep: u64,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; start-up already compacted
        loop {
            tick.tick().await;
            let s = stores.clone();
            // SQLite work blocks: keep it off the async workers.
            let _ = tokio::task::spawn_blocking(move || compact_all(&s, keep)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{Op, SqliteStore};

    fn put(s: &dyn Store, n: usize) {
        for i in 0..n {
            s.commit(&[Op::Put {
                key: format!("res/{}", i % 7),
                value: i.to_string(),
            }])
            .unwrap();
        }
    }

    #[test]
    fn keeps_exactly_the_last_n_revisions() {
        let s = SqliteStore::open_in_memory().unwrap();
        assert_eq!(compact_keeping(&s, 10).unwrap(), None, "empty store");
        put(&s, 8);
        assert_eq!(compact_keeping(&s, 10).unwrap(), None, "fewer than N");
        put(&s, 17);
        assert_eq!(compact_keeping(&s, 10).unwrap(), Some(15));
        // The last 10 revisions are readable, the 11th is not.
        assert_eq!(s.events_since(15, 100).unwrap().len(), 10);
        let e = s.events_since(14, 100).unwrap_err();
        assert!(e.needs_resync(), "{e}");
        // Keys are untouched.
        assert_eq!(s.range("res/").unwrap().1.len(), 7);
    }

    #[tokio::test]
    async fn the_schedule_compacts() {
        let s: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        put(s.as_ref(), 50);
        let h = spawn(vec![("t", s.clone())], 5, Duration::from_millis(20));
        let t0 = std::time::Instant::now();
        while s.events_since(0, 1).is_ok() {
            assert!(t0.elapsed() < Duration::from_secs(5), "never compacted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(s.events_since(45, 100).unwrap().len(), 5);
        h.abort();
    }
}
