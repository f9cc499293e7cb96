//! A revisioned key-value store with a change feed, modelled on etcd v3.
//!
//! Every successful [`Store::commit`] that changes something creates exactly one new
//! [`Revision`]; all the [`Event`]s of that commit carry it.  Consumers (the planner, the
//! API's long-running operations) follow the store through [`Store::events_since`] or a
//! [`Watcher`] and resume from the last revision they processed, exactly like etcd's
//! `start_revision`.  Keeping the contract this close to etcd is deliberate: an etcd backend
//! can later implement the same [`Store`] trait without the callers noticing.
//!
//! The default backend is [`SqliteStore`] (one SQLite file, WAL, `synchronous=FULL`).
//!
//! ```
//! use store::{Op, SqliteStore, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), store::StoreError> {
//! let store = SqliteStore::open_in_memory()?; // SqliteStore::open(path) for a file
//! let rev = store.commit(&[
//!     Op::Put { key: "res/a".into(), value: "{}".into() },
//!     Op::Put { key: "res/b".into(), value: "{}".into() },
//! ])?;
//! assert_eq!(rev, 1); // one commit, one revision
//!
//! // Snapshot + follow: list at some revision, then watch from exactly there.
//! let (at, items) = store.range("res/")?;
//! assert_eq!(items.len(), 2);
//! let mut watcher = store.watch(at);
//! store.commit(&[Op::Delete { key: "res/a".into() }])?;
//! let event = watcher.next().await?;
//! assert_eq!((event.rev, event.key.as_str()), (2, "res/a"));
//! # Ok(())
//! # }
//! ```
//!
//! Keys and values are `String`s.  Keys look like `res/<lower-cased ARM id>`, values are
//! the JSON text of ARM resources; the store does not interpret either.
//!
//! # Contract details shared by all backends
//!
//! * Revisions start at 0 (empty store) and grow by exactly one per commit that produced at
//!   least one event.  A commit whose only ops delete missing keys changes nothing and does
//!   not create a revision (etcd behaves the same), so revisions have no holes.
//! * A key may appear at most once in one commit (etcd rejects such a transaction with
//!   "duplicate key given in txn request"); the empty key is rejected too.
//! * [`Store::events_since`] and the watcher never split a revision: a consumer that resumes
//!   from the `rev` of the last event it saw can never skip the rest of a half-read commit.
//! * Keys under [`SECRET_PREFIX`] are state without history: they are stored and read like
//!   any key, but a commit records no event for them (their values never enter the change
//!   feed), and a commit that writes only such keys creates no revision.  Secrets (shared
//!   keys) live there, so that a changed or deleted secret survives nowhere.

mod sqlite;
mod watch;

#[cfg(test)]
mod tests;

pub use sqlite::SqliteStore;
pub use watch::Watcher;

/// Keys with this prefix are never written to the change feed (see the crate documentation).
///
/// Why a fixed prefix rather than an option: every backend must agree on which keys have no
/// history, and the caller (the API's engine) decides what goes there by naming the key.
/// The SQLite backend also overwrites the freed space of their old values (`secure_delete`)
/// and truncates its WAL after every commit that changed one, so an old value is not left in
/// the files either.
pub const SECRET_PREFIX: &str = "secret/";

/// Whether a key is kept without history ([`SECRET_PREFIX`]).
pub fn is_secret_key(key: &str) -> bool {
    key.starts_with(SECRET_PREFIX)
}

/// A store revision.  `0` is the revision of an empty store that has never been written.
pub type Revision = u64;

/// One write inside a [`Store::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or overwrite `key`.
    Put { key: String, value: String },
    /// Remove `key`; removing a missing key is not an error and produces no event.
    Delete { key: String },
}

impl Op {
    /// The key this op writes.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }
}

/// What happened to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The revision of the commit that produced this event.
    pub rev: Revision,
    pub key: String,
    pub kind: EventKind,
    /// The new value for [`EventKind::Put`]; `None` for [`EventKind::Delete`].
    pub value: Option<String>,
}

/// Errors of every [`Store`] backend.
///
/// Backend-specific causes are boxed in [`StoreError::Backend`] / [`StoreError::Open`] so that
/// callers never depend on the backend crate (rusqlite today, an etcd client later).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The history needed to answer the request was dropped by [`Store::compact`].
    /// The caller must re-read the state with [`Store::range`] and resume from that revision
    /// (see [`StoreError::needs_resync`]).
    #[error(
        "revision {requested} has been compacted: history is only kept after revision \
         {compacted}; resync from a snapshot (range) and watch from its revision"
    )]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// A revision beyond the current one was given where only past revisions make sense.
    #[error("revision {requested} is in the future: the current revision is {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// The request itself is malformed (empty key, key repeated in one commit, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The file system holding the store refuses writes (read-only mount, or no write
    /// permission on the directory or the file).
    #[error("{path} is read-only: {reason}")]
    ReadOnly { path: String, reason: String },
    /// The disk (or quota) holding the store is full.
    #[error("no space left on device for {path}: {reason}")]
    NoSpace { path: String, reason: String },
    /// The store could not be opened: missing directory, unreadable file, not a SQLite
    /// database, a database of some other program, or a newer on-disk format.
    #[error("cannot open store {path}: {reason}")]
    Open {
        path: String,
        reason: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The stored data violates an invariant of the store (e.g. edited by hand).
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// The store was dropped while a [`Watcher`] was still waiting on it.
    #[error("store is closed")]
    Closed,
    /// An I/O or database failure of the backend.
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Whether a follower must drop what it derived from the change feed, re-read a snapshot
    /// ([`Store::range`]) and watch again from that snapshot's revision: the history it needed
    /// was compacted away.  Watchers that fall behind the retained history get this.
    pub fn needs_resync(&self) -> bool {
        matches!(self, StoreError::Compacted { .. })
    }
}

/// A revisioned key-value store with a change feed.
///
/// Implementations are shared between threads and tasks (`Send + Sync + 'static`); the
/// methods are blocking and short.  From async code call them directly when latency does not
/// matter (control plane), or through `tokio::task::spawn_blocking`.
pub trait Store: Send + Sync + 'static {
    /// Applies all ops atomically as ONE new revision (all events of the commit carry it);
    /// durable (fsynced) when it returns Ok.
    /// An empty ops slice is a no-op returning the current revision.  Deleting a missing key
    /// is not an error (no event for it).  A commit that produces no event at all does not
    /// create a revision and returns the current one.
    fn commit(&self, ops: &[Op]) -> Result<Revision, StoreError>;

    /// The current value of `key`.
    fn get(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// All keys with this prefix, sorted by key (byte order), with the revision they were
    /// read at (consistent: one snapshot).  The empty prefix lists everything.
    fn range(&self, prefix: &str) -> Result<(Revision, Vec<(String, String)>), StoreError>;

    /// The revision of the last commit.
    fn revision(&self) -> Result<Revision, StoreError>;

    /// Events with rev > after, in order, at most `limit`.  Err(Compacted) if `after` is
    /// below the compaction point.
    ///
    /// A revision is never split: the answer is cut at a revision boundary.  The one exception
    /// to "at most `limit`" is a single commit with more than `limit` events, which is returned
    /// whole, because a caller resuming from the last event's `rev` could otherwise never read
    /// its tail.  `limit == 0` returns nothing.
    fn events_since(&self, after: Revision, limit: usize) -> Result<Vec<Event>, StoreError>;

    /// A watcher that yields every event with rev > after, first from history then live,
    /// never skipping or duplicating.  Errors (e.g. `after` compacted) surface from
    /// [`Watcher::next`].
    fn watch(&self, after: Revision) -> Watcher;

    /// Drop history at or below rev (events_since below it then fails with Compacted).
    /// Compacting at or below the current compaction point is a no-op; a revision beyond the
    /// current one fails with [`StoreError::FutureRevision`].  Keys are not affected.
    fn compact(&self, rev: Revision) -> Result<(), StoreError>;
}
