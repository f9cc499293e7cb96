//! The SQLite backend.
//!
//! Layout (one file, WAL mode):
//!
//! * `kv(key PRIMARY KEY, value, create_rev, mod_rev)`: the current state.
//! * `events(rev, seq, key, kind, value)`: the change feed; `seq` orders the events of one
//!   commit, so replaying the log reproduces the state even for multi-op commits.
//! * `meta(revision, compacted)`: one row; the revision counter lives in the same transaction
//!   as the data, so a crash can never leave them out of step.
//!
//! Durability: `journal_mode=WAL` + `synchronous=FULL` makes SQLite fsync the WAL on every
//! commit before `COMMIT` returns, which is what "durable when `commit` returns Ok" needs.
//!
//! Secrets at rest: `secure_delete` is on, so freed cells and pages are zeroed (an old value
//! does not linger in free space), and a commit that changed a key under
//! [`crate::SECRET_PREFIX`] checkpoints the WAL with `TRUNCATE`, so the old page images
//! holding the previous value leave the WAL too.  Files are created mode 0600 (SQLite gives
//! the `-wal` and `-shm` files the mode of the database file).
//!
//! Space: new files use `auto_vacuum=INCREMENTAL`, and [`Store::compact`] gives the pages of
//! the dropped history back to the file system.
//!
//! Concurrency: one writer connection behind a mutex (SQLite has a single writer anyway; the
//! mutex also orders the live notifications, see `watch.rs`) and, for file stores, a second
//! connection for reads, so reads see WAL snapshots and never wait for an fsync.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::broadcast;

use crate::watch::{Commit, EventLog};
use crate::{is_secret_key, Event, EventKind, Op, Revision, Store, StoreError, Watcher};

/// Marks the file as a vnet store (`PRAGMA application_id`, ASCII "vnet"), so that opening
/// some other program's SQLite database fails instead of silently adding tables to it.
const APPLICATION_ID: i32 = 0x766e_6574;
/// On-disk format version (`PRAGMA user_version`).
const SCHEMA_VERSION: i32 = 1;
/// Commits buffered per live subscriber before it lags and falls back to reading history.
pub(crate) const DEFAULT_WATCH_CAPACITY: usize = 1024;
/// How long a connection waits for a lock held by another connection (e.g. a checkpoint).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    key        TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    rev   INTEGER NOT NULL,
    seq   INTEGER NOT NULL,
    key   TEXT    NOT NULL,
    kind  INTEGER NOT NULL,   -- 0 = put, 1 = delete
    value TEXT,
    PRIMARY KEY (rev, seq)
);
CREATE TABLE IF NOT EXISTS meta (
    id        INTEGER PRIMARY KEY CHECK (id = 0),
    revision  INTEGER NOT NULL,
    compacted INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, revision, compacted) VALUES (0, 0, 0);
";

const KIND_PUT: i64 = 0;
const KIND_DELETE: i64 = 1;

/// A [`Store`] in one SQLite file (or in memory, for tests).
///
/// Cloning is cheap and shares the same connections and change feed.  Open a given file once
/// (one process, one `open`) and share it by cloning: live notifications only reach watchers
/// of the same `SqliteStore`, so a second opener's commits would reach them late (at the next
/// commit through their own store), or never if none follows.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    /// `None` for in-memory stores, whose database exists only inside `writer`.
    reader: Option<Mutex<Connection>>,
    live: broadcast::Sender<Commit>,
    /// For messages and `Debug`.
    name: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store file at `path`.
    ///
    /// Fails with [`StoreError::Open`] when the directory is missing, the file is not a SQLite
    /// database (or is damaged), belongs to another program, or has a newer format.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_capacity(path, DEFAULT_WATCH_CAPACITY)
    }

    /// A fresh store that lives in memory only (tests, tools).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::open_in_memory_with_capacity(DEFAULT_WATCH_CAPACITY)
    }

    pub(crate) fn open_with_capacity(path: &Path, capacity: usize) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        create_private(path, &name)?;
        let open_err = |reason: &str, e: rusqlite::Error| open_error(&name, reason, e);
        // No SQLITE_OPEN_URI: a path is a path, even if it contains '?'.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer = Connection::open_with_flags(path, flags)
            .map_err(|e| open_err("cannot open the file", e))?;
        initialise(&mut writer, &name, true)?;

        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_err("cannot open a read connection", e))?;
        reader
            .busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| reader.pragma_update(None, "query_only", true))
            .map_err(|e| open_err("cannot configure the read connection", e))?;
        Ok(Self::from_parts(writer, Some(reader), name, capacity))
    }

    pub(crate) fn open_in_memory_with_capacity(capacity: usize) -> Result<Self, StoreError> {
        let name = ":memory:".to_string();
        let mut conn = Connection::open_in_memory()
            .map_err(|e| open_error(&name, "cannot create an in-memory database", e))?;
        initialise(&mut conn, &name, false)?;
        Ok(Self::from_parts(conn, None, name, capacity))
    }

    fn from_parts(
        writer: Connection,
        reader: Option<Connection>,
        name: String,
        capacity: usize,
    ) -> Self {
        // broadcast::channel panics on a zero capacity.
        let (live, _) = broadcast::channel(capacity.max(1));
        SqliteStore {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                reader: reader.map(Mutex::new),
                live,
                name,
            }),
        }
    }

    /// Test hook: the writer connection, to check pragmas.
    #[cfg(test)]
    pub(crate) fn with_writer<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        f(&lock(&self.inner.writer))
    }
}

/// Verifies that the file is ours (or empty), switches on WAL + FULL sync and creates the
/// schema.  Every failure here is reported as [`StoreError::Open`] with the reason.
fn initialise(conn: &mut Connection, name: &str, file: bool) -> Result<(), StoreError> {
    let err = |reason: &str, e: rusqlite::Error| open_error(name, reason, e);
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| err("cannot set the busy timeout", e))?;

    // The first real read of the file: a damaged or non-SQLite file fails here with
    // "file is not a database" (a read-only or full disk is reported as such, see open_error).
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| err("not a SQLite database, or the file is damaged", e))?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| err("not a SQLite database, or the file is damaged", e))?;
    // Zero freed space: old values (secrets above all) must not survive in free pages.
    conn.pragma_update(None, "secure_delete", true)
        .map_err(|e| err("cannot set secure_delete", e))?;
    if objects == 0 {
        // Only possible before the first table exists: lets compaction return space.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(|e| err("cannot set auto_vacuum", e))?;
    }
    if app_id != APPLICATION_ID && (app_id != 0 || objects != 0) {
        return Err(StoreError::Open {
            path: name.to_string(),
            reason: format!(
                "the file is a SQLite database of another program (application_id {app_id:#x}, \
                 {objects} schema objects), not a vnet store"
            ),
            source: None,
        });
    }
    let version: i32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| err("cannot read the format version", e))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Open {
            path: name.to_string(),
            reason: format!(
                "the store has format version {version}; this build understands up to \
                 {SCHEMA_VERSION}"
            ),
            source: None,
        });
    }

    if file {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| err("cannot switch to WAL mode", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: name.to_string(),
                reason: format!("the file system does not support WAL mode (got {mode:?})"),
                source: None,
            });
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| err("cannot set synchronous=FULL", e))?;

    // Schema and identity in one transaction: a crash mid-way leaves an empty file, which the
    // next open initialises again, never a half-marked one that it would reject.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| err("cannot start the schema transaction", e))?;
    tx.execute_batch(SCHEMA)
        .and_then(|()| tx.pragma_update(None, "application_id", APPLICATION_ID))
        .and_then(|()| tx.pragma_update(None, "user_version", SCHEMA_VERSION))
        .map_err(|e| err("cannot create the schema", e))?;
    tx.commit()
        .map_err(|e| err("cannot commit the schema", e))?;

    // Check the invariants that the rest of the code relies on.
    let (rev, compacted) = read_meta(conn).map_err(|e| match e {
        StoreError::Backend(source) => StoreError::Open {
            path: name.to_string(),
            reason: "cannot read the revision counter".into(),
            source: Some(source),
        },
        other => other,
    })?;
    if compacted > rev {
        return Err(StoreError::Corrupt(format!(
            "{name}: compaction point {compacted} is beyond the current revision {rev}"
        )));
    }
    Ok(())
}

fn open_error(name: &str, reason: &str, e: rusqlite::Error) -> StoreError {
    if let Some(clear) = disk_error(name, &e) {
        return clear;
    }
    StoreError::Open {
        path: name.to_string(),
        reason: format!("{reason}: {e}"),
        source: Some(Box::new(e)),
    }
}

/// A read-only or full disk named as such: SQLite's own words ("attempt to write a readonly
/// database", "database or disk is full") are easy to mistake for a damaged store.
fn disk_error(name: &str, e: &rusqlite::Error) -> Option<StoreError> {
    let rusqlite::Error::SqliteFailure(f, msg) = e else {
        return None;
    };
    let detail = msg.clone().unwrap_or_else(|| f.to_string());
    match f.code {
        rusqlite::ErrorCode::ReadOnly => Some(StoreError::ReadOnly {
            path: name.to_string(),
            reason: detail,
        }),
        rusqlite::ErrorCode::DiskFull => Some(StoreError::NoSpace {
            path: name.to_string(),
            reason: detail,
        }),
        _ => None,
    }
}

/// Turns a backend failure of a write into [`StoreError::ReadOnly`] / [`StoreError::NoSpace`]
/// when that is what it is.
fn classify(name: &str, e: StoreError) -> StoreError {
    match e {
        StoreError::Backend(source) => match source.downcast_ref::<rusqlite::Error>() {
            Some(re) => disk_error(name, re).unwrap_or(StoreError::Backend(source)),
            None => StoreError::Backend(source),
        },
        other => other,
    }
}

/// Creates the database file mode 0600 before SQLite does (SQLite would use 0644 under the
/// usual umask, and gives the `-wal`/`-shm` files the database file's mode), and tightens the
/// mode of an existing one.  Opening it for writing here is also the clearest test of a
/// read-only or full disk.
fn create_private(path: &Path, name: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error, what: &str| -> StoreError {
        match e.kind() {
            std::io::ErrorKind::ReadOnlyFilesystem => StoreError::ReadOnly {
                path: name.to_string(),
                reason: format!("{what}: the file system is mounted read-only"),
            },
            std::io::ErrorKind::PermissionDenied => StoreError::ReadOnly {
                path: name.to_string(),
                reason: format!("{what}: permission denied"),
            },
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                StoreError::NoSpace {
                    path: name.to_string(),
                    reason: format!("{what}: {e}"),
                }
            }
            _ => StoreError::Open {
                path: name.to_string(),
                reason: format!("{what}: {e}"),
                source: Some(Box::new(e)),
            },
        }
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(e, "cannot open the file for writing"))?;
    let meta = f
        .metadata()
        .map_err(|e| io(e, "cannot read the file's mode"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io(e, "cannot make the file private (mode 0600)"))?;
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        if let Ok(m) = std::fs::symlink_metadata(&side) {
            if m.is_file() && m.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| io(e, "cannot make the WAL private (mode 0600)"))?;
            }
        }
    }
    Ok(())
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Locks a connection mutex.  A poisoned mutex is still usable: a panic while holding it
/// leaves at most an open transaction, which rusqlite rolls back when the guard's
/// `Transaction` is dropped during unwinding.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// SQLite integers are signed; revisions are stored as `i64` and must never be negative.
fn to_rev(v: i64) -> Result<Revision, StoreError> {
    Revision::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative revision {v}")))
}

/// Revisions beyond `i64::MAX` cannot exist; clamping keeps comparisons with them correct.
fn to_sql_rev(r: Revision) -> i64 {
    i64::try_from(r).unwrap_or(i64::MAX)
}

fn read_meta(conn: &Connection) -> Result<(Revision, Revision), StoreError> {
    let (rev, compacted): (i64, i64) = conn
        .prepare_cached("SELECT revision, compacted FROM meta WHERE id = 0")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .optional()
        .map_err(backend)?
        .ok_or_else(|| StoreError::Corrupt("the meta row is missing".into()))?;
    Ok((to_rev(rev)?, to_rev(compacted)?))
}

fn row_to_event(
    rev: i64,
    key: String,
    kind: i64,
    value: Option<String>,
) -> Result<Event, StoreError> {
    let rev = to_rev(rev)?;
    match (kind, value) {
        (KIND_PUT, Some(value)) => Ok(Event {
            rev,
            key,
            kind: EventKind::Put,
            value: Some(value),
        }),
        (KIND_DELETE, _) => Ok(Event {
            rev,
            key,
            kind: EventKind::Delete,
            value: None,
        }),
        (kind, _) => Err(StoreError::Corrupt(format!(
            "event at revision {rev} for key {key:?} has invalid kind {kind} or no value"
        ))),
    }
}

fn query_events(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (rev, key, kind, value) = row.map_err(backend)?;
        out.push(row_to_event(rev, key, kind, value)?);
    }
    Ok(out)
}

/// Validates a commit before touching the database: etcd rejects empty keys and a key that
/// appears twice in one transaction, and so do we, so both backends accept the same input.
fn validate(ops: &[Op]) -> Result<(), StoreError> {
    let mut seen = HashSet::with_capacity(ops.len());
    for op in ops {
        let key = op.key();
        if key.is_empty() {
            return Err(StoreError::InvalidArgument("empty key".into()));
        }
        if !seen.insert(key) {
            return Err(StoreError::InvalidArgument(format!(
                "key {key:?} appears more than once in one commit"
            )));
        }
    }
    Ok(())
}

impl Inner {
    fn read_conn(&self) -> MutexGuard<'_, Connection> {
        match &self.reader {
            Some(r) => lock(r),
            None => lock(&self.writer),
        }
    }
}

impl EventLog for Inner {
    fn read_events(&self, after: Revision, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut conn = self.read_conn();
        // One read transaction: the compaction point and the events come from one snapshot,
        // so a concurrent compact() cannot make us return a history with a hole in it.
        let tx = conn.transaction().map_err(backend)?;
        let (_, compacted) = read_meta(&tx)?;
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let after_sql = to_sql_rev(after);
        // One row beyond the limit tells whether the last revision returned is complete.
        let fetch = i64::try_from(limit)
            .unwrap_or(i64::MAX - 1)
            .saturating_add(1);
        let mut events = query_events(
            &tx,
            "SELECT rev, key, kind, value FROM events WHERE rev > ?1 \
             ORDER BY rev, seq LIMIT ?2",
            params![after_sql, fetch],
        )?;
        if events.len() > limit {
            let boundary = events[limit].rev;
            events.truncate(limit);
            // Drop the partial revision at the end; the caller will get it next time.
            let keep = events.partition_point(|e| e.rev < boundary);
            events.truncate(keep);
            if events.is_empty() {
                // One commit larger than `limit`: return it whole rather than split it.
                events = query_events(
                    &tx,
                    "SELECT rev, key, kind, value FROM events WHERE rev = ?1 ORDER BY seq",
                    params![to_sql_rev(boundary)],
                )?;
            }
        }
        Ok(events)
    }
}

impl SqliteStore {
    fn commit_inner(&self, ops: &[Op]) -> Result<Revision, StoreError> {
        if ops.is_empty() {
            return self.revision();
        }
        validate(ops)?;

        let mut conn = lock(&self.inner.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let (current, _) = read_meta(&tx)?;
        let rev = current
            .checked_add(1)
            .filter(|r| i64::try_from(*r).is_ok())
            .ok_or_else(|| StoreError::Corrupt("revision counter overflow".into()))?;
        let rev_sql = to_sql_rev(rev);

        let mut events = Vec::with_capacity(ops.len());
        // Whether a key without history changed (no event, but the commit must still happen).
        let mut secret_changed = false;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?3) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                     mod_rev = excluded.mod_rev",
                )
                .map_err(backend)?;
            let mut del = tx
                .prepare_cached("DELETE FROM kv WHERE key = ?1")
                .map_err(backend)?;
            let mut log = tx
                .prepare_cached(
                    "INSERT INTO events (rev, seq, key, kind, value) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(backend)?;
            for op in ops {
                if is_secret_key(op.key()) {
                    // State only: no event, and its revisions stay those of the last event.
                    let changed = match op {
                        Op::Put { key, value } => {
                            put.execute(params![key, value, to_sql_rev(current)])
                        }
                        Op::Delete { key } => del.execute(params![key]),
                    }
                    .map_err(backend)?;
                    secret_changed |= changed > 0;
                    continue;
                }
                let (event, kind) = match op {
                    Op::Put { key, value } => {
                        put.execute(params![key, value, rev_sql]).map_err(backend)?;
                        let ev = Event {
                            rev,
                            key: key.clone(),
                            kind: EventKind::Put,
                            value: Some(value.clone()),
                        };
                        (ev, KIND_PUT)
                    }
                    Op::Delete { key } => {
                        if del.execute(params![key]).map_err(backend)? == 0 {
                            continue; // missing key: nothing happened, nothing to report
                        }
                        let ev = Event {
                            rev,
                            key: key.clone(),
                            kind: EventKind::Delete,
                            value: None,
                        };
                        (ev, KIND_DELETE)
                    }
                };
                let seq = i64::try_from(events.len()).unwrap_or(i64::MAX);
                log.execute(params![rev_sql, seq, event.key, kind, event.value])
                    .map_err(backend)?;
                events.push(event);
            }
        }
        if events.is_empty() {
            if secret_changed {
                // Only keys without history changed: durable, but no revision.
                tx.commit().map_err(backend)?;
                truncate_wal(&conn);
            }
            // Otherwise only deletes of missing keys: no change, so no revision (as in etcd).
            // Dropping the transaction rolls it back.
            return Ok(current);
        }
        tx.execute(
            "UPDATE meta SET revision = ?1 WHERE id = 0",
            params![rev_sql],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        if secret_changed {
            truncate_wal(&conn);
        }

        // Published while still holding the write lock, so the channel carries commits in
        // revision order.  An error only means nobody is watching.
        let _ = self.inner.live.send(events.into());
        drop(conn);
        Ok(rev)
    }
}

/// Copies the WAL into the database and empties it, so that page images holding an old value
/// leave the WAL file.  Best effort: a reader holding an old snapshot makes it partial, and
/// the next such commit (or compaction) tries again; the commit itself is already durable.
fn truncate_wal(conn: &Connection) {
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

impl Store for SqliteStore {
    fn commit(&self, ops: &[Op]) -> Result<Revision, StoreError> {
        self.commit_inner(ops)
            .map_err(|e| classify(&self.inner.name, e))
    }

    fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.inner.read_conn();
        conn.prepare_cached("SELECT value FROM kv WHERE key = ?1")
            .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
            .map_err(backend)
    }

    fn range(&self, prefix: &str) -> Result<(Revision, Vec<(String, String)>), StoreError> {
        let mut conn = self.inner.read_conn();
        let tx = conn.transaction().map_err(backend)?;
        let (rev, _) = read_meta(&tx)?;
        let mut out = Vec::new();
        {
            // Keys compare bytewise (SQLite BINARY collation = Rust `str` order), so the keys
            // with the prefix are one contiguous run starting at the prefix itself.  Scanning
            // from there and stopping at the first non-match avoids computing an upper bound,
            // which is awkward for UTF-8.
            let mut stmt = tx
                .prepare_cached("SELECT key, value FROM kv WHERE key >= ?1 ORDER BY key")
                .map_err(backend)?;
            let mut rows = stmt.query(params![prefix]).map_err(backend)?;
            while let Some(row) = rows.next().map_err(backend)? {
                let key: String = row.get(0).map_err(backend)?;
                if !key.starts_with(prefix) {
                    break;
                }
                out.push((key, row.get(1).map_err(backend)?));
            }
        }
        Ok((rev, out))
    }

    fn revision(&self) -> Result<Revision, StoreError> {
        let conn = self.inner.read_conn();
        Ok(read_meta(&conn)?.0)
    }

    fn events_since(&self, after: Revision, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.inner.read_events(after, limit)
    }

    fn watch(&self, after: Revision) -> Watcher {
        // Subscribe first, read history later: see watch.rs for why this order matters.
        let rx = self.inner.live.subscribe();
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        Watcher::new(weak, rx, after)
    }

    fn compact(&self, rev: Revision) -> Result<(), StoreError> {
        let mut conn = lock(&self.inner.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let (current, compacted) = read_meta(&tx)?;
        if rev > current {
            return Err(StoreError::FutureRevision {
                requested: rev,
                current,
            });
        }
        if rev <= compacted {
            return Ok(());
        }
        let rev_sql = to_sql_rev(rev);
        tx.execute("DELETE FROM events WHERE rev <= ?1", params![rev_sql])
            .and_then(|_| {
                tx.execute(
                    "UPDATE meta SET compacted = ?1 WHERE id = 0",
                    params![rev_sql],
                )
            })
            .map_err(backend)?;
        tx.commit()
            .map_err(|e| classify(&self.inner.name, backend(e)))?;
        // Give the freed pages back (files made with auto_vacuum=INCREMENTAL; a no-op on older
        // files, whose free pages are reused by later writes instead), then empty the WAL that
        // the delete filled.  Both best effort: the compaction itself is committed.
        // (Each step of the pragma frees one page, so it must be stepped to the end.)
        let _ = conn
            .prepare("PRAGMA incremental_vacuum")
            .and_then(|mut st| {
                let mut rows = st.query([])?;
                while rows.next()?.is_some() {}
                Ok(())
            });
        truncate_wal(&conn);
        Ok(())
    }
}
