//! The watcher: history first, then live notifications, with a fall-back to history when the
//! live channel overflows.
//!
//! # Why this never skips or duplicates
//!
//! The watcher subscribes to the live channel *before* it reads any history.  A writer
//! publishes a commit only after the commit is durable in the event log, and it publishes
//! while still holding the write lock, so the channel carries whole commits in revision order.
//! Therefore every commit is either
//!
//! * published after the subscription, so it is in the channel, or
//! * published before it, so it was already in the log when the first history read ran.
//!
//! Commits seen both ways are dropped by revision (`rev <= through`).  When the channel
//! overflows (`broadcast` reports `Lagged`), the missing commits are older than the oldest
//! one still queued, hence already in the log: the watcher goes back to reading history and
//! then drains the channel again with the same de-duplication.  This is etcd's
//! `start_revision` resume, done in-process.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use tokio::sync::broadcast::{self, error::RecvError};

use crate::{Event, Revision, StoreError};

/// How many events one history read fetches.  Bounded so a watcher that starts far behind
/// does not load the whole log into memory at once.
pub(crate) const HISTORY_BATCH: usize = 512;

/// A whole commit as published on the live channel: all its events, same revision.
pub(crate) type Commit = Arc<[Event]>;

/// The persistent event log a watcher reads its history from.
///
/// Implemented by each backend; `read_events` has the semantics of
/// [`crate::Store::events_since`] (whole revisions, `Compacted` below the compaction point).
pub(crate) trait EventLog: Send + Sync + 'static {
    fn read_events(&self, after: Revision, limit: usize) -> Result<Vec<Event>, StoreError>;
}

/// Follows a store from a given revision; see [`crate::Store::watch`].
///
/// `next` is cancel-safe: dropping its future (e.g. in `tokio::select!`) loses no event,
/// because the watcher's position only advances when an event is handed out or buffered.
/// A `Watcher` does not keep its store alive: once the store is dropped, `next` returns
/// [`StoreError::Closed`] after the buffered events.
pub struct Watcher {
    log: Weak<dyn EventLog>,
    rx: broadcast::Receiver<Commit>,
    /// Every event with `rev <= through` has been handed out or sits in `pending`.
    through: Revision,
    pending: VecDeque<Event>,
    /// `false`: catch up from the log; `true`: the log had nothing newer, read the channel.
    live: bool,
    /// How often the channel overflowed and history was re-read (diagnostics and tests).
    lag_fallbacks: u64,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("through", &self.through)
            .field("pending", &self.pending.len())
            .field("live", &self.live)
            .field("lag_fallbacks", &self.lag_fallbacks)
            .finish()
    }
}

impl Watcher {
    /// `rx` must have been subscribed before this call returns to the caller and before any
    /// history is read (see the module documentation).
    pub(crate) fn new(
        log: Weak<dyn EventLog>,
        rx: broadcast::Receiver<Commit>,
        after: Revision,
    ) -> Self {
        Watcher {
            log,
            rx,
            through: after,
            pending: VecDeque::new(),
            live: false,
            lag_fallbacks: 0,
        }
    }

    /// The next event (rev > the `after` given to `watch`, strictly in order).
    ///
    /// Waits for a commit when the watcher is caught up.  Fails with
    /// [`StoreError::Compacted`] when the history it needs was compacted away, and with
    /// [`StoreError::Closed`] when the store has been dropped; both are permanent.
    ///
    /// Works from any tokio runtime (multi-thread or current-thread) and even outside one:
    /// the channel is runtime-agnostic, and history reads go through `spawn_blocking` only
    /// when a runtime is present.
    pub async fn next(&mut self) -> Result<Event, StoreError> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Ok(ev);
            }
            if !self.live {
                let batch = self.read_history().await?;
                match batch.last() {
                    Some(last) => {
                        self.through = last.rev;
                        self.pending.extend(batch);
                    }
                    None => self.live = true,
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(commit) => {
                    let Some(rev) = commit.first().map(|e| e.rev) else {
                        continue;
                    };
                    if rev <= self.through {
                        // Already read from history.
                        continue;
                    }
                    if rev != self.through + 1 {
                        // Cannot happen while revisions are contiguous and the channel did not
                        // lag; if it ever does, the log is the source of truth.
                        self.live = false;
                        continue;
                    }
                    self.through = rev;
                    self.pending.extend(commit.iter().cloned());
                }
                Err(RecvError::Lagged(_)) => {
                    self.lag_fallbacks += 1;
                    self.live = false;
                }
                Err(RecvError::Closed) => return Err(StoreError::Closed),
            }
        }
    }

    /// Reads the next batch of whole revisions after `through` from the log.
    async fn read_history(&self) -> Result<Vec<Event>, StoreError> {
        let log = self.log.upgrade().ok_or(StoreError::Closed)?;
        let after = self.through;
        match tokio::runtime::Handle::try_current() {
            // SQLite reads block; keep them off the async worker threads.
            Ok(handle) => handle
                .spawn_blocking(move || log.read_events(after, HISTORY_BATCH))
                .await
                .map_err(|e| StoreError::Backend(Box::new(e)))?,
            // Polled by some other executor: a short blocking read is the only option.
            Err(_) => log.read_events(after, HISTORY_BATCH),
        }
    }

    /// How many times the live channel overflowed and the watcher re-read history.
    pub fn lag_fallbacks(&self) -> u64 {
        self.lag_fallbacks
    }
}
