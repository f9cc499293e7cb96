//! Which named network namespaces this vnet server made, so that it never adopts or deletes
//! one it did not make (issue 9, item 12).
//!
//! A namespace `/run/netns/NAME` that vnet creates for `vnet vm` gets an owner record
//! `/run/vnet/netns-owners/NAME` (0600 in a 0700 directory): the server's instance id (a
//! random id kept in its store, so it survives restarts and differs between data
//! directories), the namespace's identity (nsfs device and inode, and its netns cookie, which
//! the kernel never reuses), the pid and the NIC it was made for. The record is written
//! *before* the namespace (with `O_EXCL`: of two servers racing for one name, one wins), and a
//! namespace counts as ours only while the record names our instance and the namespace at
//! that path is still the one recorded, so a namespace that someone deleted and re-made under
//! the same name is not ours any more.
//!
//! * [`claim`] — creating over an existing namespace that is not ours is refused, never
//!   adopted; our own (after a restart) is re-used.
//! * [`release`] — deletes only a namespace that is ours; anything else is left alone.
//! * [`check`] — the same decision as `claim` without creating anything (the binding API
//!   answers 409 with it before storing a binding).
//!
//! Both directories are on /run (tmpfs): records vanish at reboot with the namespaces.

use crate::sys;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Where the owner records live.
pub const OWNERS_DIR: &str = "/run/vnet/netns-owners";

/// How long a record whose namespace does not exist (yet) is taken as another server's
/// creation in progress rather than left over from a crash.
const IN_PROGRESS: Duration = Duration::from_secs(30);

/// A namespace's identity: what makes "the namespace at this path" the one we made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetnsId {
    pub dev: u64,
    pub ino: u64,
    /// `SO_NETNS_COOKIE` (Linux ≥ 5.14); `None` where the kernel has none.
    pub cookie: Option<u64>,
}

/// An owner record, as stored (`key=value` lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRecord {
    pub instance: String,
    pub pid: u32,
    pub nic: String,
    /// `None` between writing the record and creating the namespace.
    pub netns: Option<NetnsId>,
}

impl OwnerRecord {
    fn render(&self) -> String {
        let mut s = format!(
            "instance={}\npid={}\nnic={}\n",
            self.instance, self.pid, self.nic
        );
        if let Some(n) = self.netns {
            s.push_str(&format!("dev={}\nino={}\n", n.dev, n.ino));
            if let Some(c) = n.cookie {
                s.push_str(&format!("cookie={c}\n"));
            }
        }
        s
    }

    fn parse(text: &str) -> Option<OwnerRecord> {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        let num = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
        let netns = match (num("dev"), num("ino")) {
            (Some(dev), Some(ino)) => Some(NetnsId {
                dev,
                ino,
                cookie: num("cookie"),
            }),
            _ => None,
        };
        Some(OwnerRecord {
            instance: get("instance").filter(|s| !s.is_empty())?,
            pid: num("pid").and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
            nic: get("nic").unwrap_or_default(),
            netns,
        })
    }
}

/// Why a namespace is not ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotOurs {
    /// It exists and no vnet server recorded making it (`ip netns add`, a container, …).
    Foreign,
    /// Another vnet server made it (or is making it).
    OtherServer { instance: String, pid: u32 },
    /// We made a namespace of that name, but the one there now is another.
    Replaced,
}

impl NotOurs {
    pub fn describe(&self, name: &str) -> String {
        match self {
            NotOurs::Foreign => format!("network namespace {name} exists and was not created by vnet; vnet neither adopts nor deletes it"),
            NotOurs::OtherServer { instance, pid } => format!("network namespace {name} belongs to another vnet server (instance {instance}, pid {pid}); vnet neither adopts nor deletes it"),
            NotOurs::Replaced => format!("network namespace {name} was replaced by another one since this vnet server created it; vnet neither adopts nor deletes it"),
        }
    }
}

/// What [`claim`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    Created,
    /// Ours already (made by this instance earlier, e.g. before a restart).
    Ours,
}

/// What [`release`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    Deleted,
    /// Ours, but already gone; the stale record was removed.
    Gone,
    Kept(NotOurs),
}

/// A name that is one plain entry of /run/netns (and of the records' directory, whose dot
/// files are temporary records): anything else is refused before any path is built.
fn valid_name(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && !name.contains(['/', '\0']);
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a network namespace name vnet manages"),
        ))
    }
}

fn record_path(name: &str) -> PathBuf {
    Path::new(OWNERS_DIR).join(name)
}

fn read_record(name: &str) -> io::Result<Option<(OwnerRecord, SystemTime)>> {
    let p = record_path(name);
    match std::fs::read_to_string(&p) {
        Ok(t) => {
            let m = std::fs::metadata(&p)?.modified()?;
            // An unreadable record names no owner: treated as another server's, never ours.
            Ok(Some((
                OwnerRecord::parse(&t).unwrap_or(OwnerRecord {
                    instance: "(unreadable record)".into(),
                    pid: 0,
                    nic: String::new(),
                    netns: None,
                }),
                m,
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn owners_dir() -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(OWNERS_DIR)
}

/// Writes a record atomically (temporary file and rename), 0600.
fn write_record(name: &str, r: &OwnerRecord) -> io::Result<()> {
    let tmp = Path::new(OWNERS_DIR).join(format!(".{name}.{}", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(r.render().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, record_path(name))
}

/// The identity of the namespace at `/run/netns/NAME`, `None` when there is none.
pub fn netns_id(name: &str) -> Option<NetnsId> {
    let path = sys::netns_path(name);
    let f = File::open(&path).ok()?;
    if !sys::is_netns(&f) {
        return None;
    }
    let m = f.metadata().ok()?;
    Some(NetnsId {
        dev: m.dev(),
        ino: m.ino(),
        cookie: sys::netns_cookie(&path),
    })
}

/// Whether the record matches the namespace there now. A cookie on only one side (an older
/// kernel wrote the record) falls back to device and inode.
fn same(rec: &NetnsId, now: &NetnsId) -> bool {
    rec.dev == now.dev
        && rec.ino == now.ino
        && match (rec.cookie, now.cookie) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
}

/// The decision shared by [`claim`] and [`check`]: `Ok(true)` ours, `Ok(false)` free (may be
/// created), `Err` not ours.
fn decide(name: &str, instance: &str) -> io::Result<Result<bool, NotOurs>> {
    valid_name(name)?;
    let exists = sys::netns_path(name).symlink_metadata().is_ok();
    let id = netns_id(name);
    Ok(match read_record(name)? {
        None if exists => Err(NotOurs::Foreign),
        None => Ok(false),
        Some((r, _)) if r.instance == instance => match (r.netns, id) {
            (Some(rec), Some(now)) if same(&rec, &now) => Ok(true),
            // Our record written, the namespace not yet recorded (a crash in between): the
            // window is that of one mount, and the name was reserved by our O_EXCL record.
            (None, Some(_)) => Ok(true),
            (_, Some(_)) => Err(NotOurs::Replaced),
            // Our reservation and an empty mount point, no namespace: our creation was
            // interrupted; the caller removes the leftover file.
            (None, None) if exists => Ok(false),
            (Some(_), None) if exists => Err(NotOurs::Replaced),
            (_, None) => Ok(false),
        },
        Some((r, modified)) => {
            let young = modified.elapsed().map_or(true, |age| age < IN_PROGRESS);
            if exists || young {
                Err(NotOurs::OtherServer {
                    instance: r.instance,
                    pid: r.pid,
                })
            } else {
                // Another server's record with no namespace, older than any creation takes:
                // left over from a crash or a deleted namespace.
                Ok(false)
            }
        }
    })
}

/// Whether `instance` could create or re-use the namespace `name` now (nothing is changed).
pub fn check(name: &str, instance: &str) -> io::Result<Result<(), NotOurs>> {
    Ok(decide(name, instance)?.map(|_| ()))
}

/// Creates the namespace `name` for `instance`, or re-uses it if it is already ours; refuses
/// any other. On a failed creation, only what this call made is removed.
pub fn claim(name: &str, instance: &str, nic: &str) -> io::Result<Result<Claimed, NotOurs>> {
    owners_dir()?;
    match decide(name, instance)? {
        Err(n) => return Ok(Err(n)),
        Ok(true) => {
            if let (Some((mut r, _)), Some(id)) = (read_record(name)?, netns_id(name)) {
                if r.netns.is_none() {
                    r.netns = Some(id);
                    write_record(name, &r)?;
                }
            }
            return Ok(Ok(Claimed::Ours));
        }
        Ok(false) => {}
    }
    // Free: a stale record (ours without a namespace, or another's left over) goes first, and
    // the empty mount point of our own interrupted creation (the only case where something
    // exists at the path when `decide` says free).
    remove_leftover_mount_point(name)?;
    match std::fs::remove_file(record_path(name)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut rec = OwnerRecord {
        instance: instance.to_string(),
        pid: std::process::id(),
        nic: nic.to_string(),
        netns: None,
    };
    // The reservation: O_EXCL, so of two servers racing for the name exactly one goes on.
    let reserved = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(record_path(name));
    match reserved {
        Ok(mut f) => {
            f.write_all(rec.render().as_bytes())?;
            f.sync_all()?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let other = read_record(name)?.map(|(r, _)| r);
            return Ok(Err(NotOurs::OtherServer {
                instance: other
                    .as_ref()
                    .map_or_else(String::new, |r| r.instance.clone()),
                pid: other.map_or(0, |r| r.pid),
            }));
        }
        Err(e) => return Err(e),
    }
    let undo = || {
        let _ = std::fs::remove_file(record_path(name));
    };
    match sys::create_netns_exclusive(name) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Someone (not vnet) made it between our check and our create: theirs.
            undo();
            return Ok(Err(NotOurs::Foreign));
        }
        Err(e) => {
            undo();
            return Err(e);
        }
    }
    match netns_id(name) {
        Some(id) => {
            rec.netns = Some(id);
            if let Err(e) = write_record(name, &rec) {
                let _ = sys::delete_named_netns(name);
                undo();
                return Err(e);
            }
        }
        None => {
            let _ = sys::delete_named_netns(name);
            undo();
            return Err(io::Error::other(format!(
                "network namespace {name} vanished right after it was created"
            )));
        }
    }
    Ok(Ok(Claimed::Created))
}

/// Deletes the namespace `name` if it is `instance`'s; leaves anything else alone.
pub fn release(name: &str, instance: &str) -> io::Result<Released> {
    Ok(match decide(name, instance)? {
        Ok(true) => {
            sys::delete_named_netns(name)?;
            std::fs::remove_file(record_path(name)).or_else(ignore_missing)?;
            Released::Deleted
        }
        Ok(false) => {
            // Free: ours without a namespace, or nothing at all. Remove a record only if ours.
            if read_record(name)?.is_some_and(|(r, _)| r.instance == instance) {
                remove_leftover_mount_point(name)?;
                std::fs::remove_file(record_path(name)).or_else(ignore_missing)?;
            }
            Released::Gone
        }
        Err(n) => {
            if n == NotOurs::Replaced {
                // Our record describes a namespace that no longer exists: drop it.
                std::fs::remove_file(record_path(name)).or_else(ignore_missing)?;
            }
            Released::Kept(n)
        }
    })
}

fn remove_leftover_mount_point(name: &str) -> io::Result<()> {
    let path = sys::netns_path(name);
    if path.symlink_metadata().is_ok() && netns_id(name).is_none() {
        std::fs::remove_file(&path).or_else(ignore_missing)?;
    }
    Ok(())
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// A random instance id for an agent started without one (tests).
pub fn random_instance() -> String {
    let mut b = [0u8; 16];
    if File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b = (t ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_names_no_owner() {
        let r = OwnerRecord {
            instance: "abc".into(),
            pid: 42,
            nic: "/subscriptions/s/nic".into(),
            netns: Some(NetnsId {
                dev: 4,
                ino: 4026532000,
                cookie: Some(7),
            }),
        };
        assert_eq!(OwnerRecord::parse(&r.render()), Some(r.clone()));
        let pending = OwnerRecord { netns: None, ..r };
        assert_eq!(OwnerRecord::parse(&pending.render()), Some(pending));
        assert_eq!(OwnerRecord::parse("garbage"), None);
        assert_eq!(OwnerRecord::parse("instance=\n"), None);
    }

    #[test]
    fn names_outside_run_netns_are_refused_before_any_path_is_built() {
        // Attack: "..", "." (/run/netns/.. is /run: deleting it would unmount /run), a path,
        // a NUL, a dot file (the temporary records' names).
        for bad in ["", ".", "..", "a/b", "a\0b", ".x.1"] {
            assert!(check(bad, "me").is_err(), "{bad:?}");
            assert!(claim(bad, "me", "nic").is_err(), "{bad:?}");
            assert!(release(bad, "me").is_err(), "{bad:?}");
        }
        assert!(valid_name("vm-web1").is_ok());
    }

    #[test]
    fn identity_needs_device_inode_and_cookie() {
        let a = NetnsId {
            dev: 4,
            ino: 10,
            cookie: Some(1),
        };
        assert!(same(&a, &a));
        // The inode number reused by a new namespace: the cookie tells them apart.
        assert!(!same(
            &a,
            &NetnsId {
                cookie: Some(2),
                ..a
            }
        ));
        assert!(!same(&a, &NetnsId { ino: 11, ..a }));
        assert!(same(&a, &NetnsId { cookie: None, ..a }));
    }
}
