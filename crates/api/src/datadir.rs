//! The data directory: one server at a time, private files, clear disk errors.
//!
//! * **One server per directory.** [`DataDir::lock`] takes an exclusive `flock` on
//!   `<dir>/lock` (which then holds the server's pid) before any store is opened. Two servers
//!   on one directory would each keep their own copy of the state in memory and hand out the
//!   same private IP twice; the second one now refuses, naming the first one's pid. The kernel
//!   drops the lock when the process ends, even by `kill -9`, so a stale lock file never
//!   blocks a restart (the file stays; only the lock on it counts).
//! * **Private files.** The directory is mode 0700 and every file in it 0600, except the
//!   public certificates clients must read (`ca.pem`, `tls/server.pem`). [`DataDir::secure`]
//!   tightens what an older vnet (or a careless copy) left more open; the stores create their
//!   files 0600 themselves.
//! * **Disk errors named.** A read-only or full disk is reported as "data directory X is
//!   read-only" / "no space left on device", never as a damaged database.

use crate::BoxError;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Files of the data directory that are public on purpose (certificates clients trust).
const PUBLIC_FILES: [&str; 2] = ["ca.pem", "tls/server.pem"];
/// The name of the lock file.
pub const LOCK_FILE: &str = "lock";

/// A locked data directory; the lock is held for as long as this value lives.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Holds the `flock`; closing it (drop, exit, kill) releases it.
    _lock: File,
}

/// Why a data directory cannot be used, in words an operator acts on.
pub fn describe_io(dir: &Path, what: &str, e: &std::io::Error) -> String {
    let d = dir.display();
    match e.kind() {
        std::io::ErrorKind::ReadOnlyFilesystem => {
            format!("data directory {d} is read-only (read-only file system): cannot {what}")
        }
        std::io::ErrorKind::PermissionDenied => format!(
            "data directory {d} is read-only for this user (permission denied): cannot {what}"
        ),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            format!("no space left on device for data directory {d}: cannot {what}")
        }
        _ => format!("data directory {d}: cannot {what}: {e}"),
    }
}

impl DataDir {
    /// Creates the directory (0700) if needed, takes its lock, writes our pid into the lock
    /// file, and makes its files private. Fails, naming the holder's pid, if another process
    /// holds the lock.
    pub fn lock(dir: &Path) -> Result<DataDir, BoxError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| describe_io(dir, "create it", &e))?;
        let path = dir.join(LOCK_FILE);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| describe_io(dir, "create its lock file", &e))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut holder = String::new();
                let _ = f.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.chars().all(|c| c.is_ascii_digit()) && !holder.is_empty() {
                    format!("pid {holder}")
                } else {
                    "a process that has not written its pid yet".to_string()
                };
                return Err(format!(
                    "data directory {} is in use by another vnet server ({who}); \
                     stop it or choose another --data-dir",
                    dir.display()
                )
                .into());
            }
            return Err(describe_io(dir, "lock it", &e).into());
        }
        // Ours now: record who holds it, for the message above.
        f.set_len(0)
            .and_then(|()| f.rewind())
            .and_then(|()| f.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .and_then(|()| f.sync_all())
            .map_err(|e| describe_io(dir, "write its lock file", &e))?;
        let d = DataDir {
            path: dir.to_path_buf(),
            _lock: f,
        };
        d.secure()?;
        Ok(d)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the directory tree private: directories 0700, files 0600 except
    /// [`PUBLIC_FILES`]. Symbolic links are not followed (an attacker's link must not make
    /// us chmod a file elsewhere). Called at start and again once TLS and the identity are set
    /// up, so that files made by earlier versions are fixed too.
    pub fn secure(&self) -> Result<(), BoxError> {
        secure_tree(&self.path, &self.path)
            .map_err(|e| describe_io(&self.path, "secure it", &e))?;
        Ok(())
    }
}

fn secure_tree(root: &Path, dir: &Path) -> std::io::Result<()> {
    set_mode(dir, 0o700)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let p = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            secure_tree(root, &p)?;
        } else if ft.is_file() {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let public = PUBLIC_FILES.iter().any(|f| rel == Path::new(f));
            if !public {
                set_mode(&p, 0o600)?;
            }
        }
    }
    Ok(())
}

/// Sets `mode` if the current one grants more (never loosens an operator's stricter choice).
fn set_mode(p: &Path, mode: u32) -> std::io::Result<()> {
    let cur = std::fs::symlink_metadata(p)?.permissions().mode() & 0o7777;
    if cur & !mode != 0 {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(cur & mode))?;
    }
    Ok(())
}

/// Writes `contents` to `path` atomically with mode 0600: a temporary file, fsynced, renamed
/// over `path`, and the directory fsynced, so that after a crash `path` holds either the old
/// or the new contents, and a rename that was reported done survives a power cut.
pub fn write_private_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_one_process_names_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let first = DataDir::lock(d.path()).unwrap();
        // flock locks belong to the open file description: a second open in the same process
        // conflicts too, like a second server would.
        let err = DataDir::lock(d.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("in use by another vnet server"), "{err}");
        drop(first);
        DataDir::lock(d.path()).expect("released on drop");
    }

    #[test]
    fn modes_are_tightened_but_public_certificates_stay_readable() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("data");
        std::fs::create_dir_all(root.join("tls")).unwrap();
        std::fs::create_dir_all(root.join("auth")).unwrap();
        for (f, m) in [
            ("vnet.db", 0o644),
            ("credentials.json", 0o666),
            ("ca.pem", 0o644),
            ("tls/server.pem", 0o644),
            ("tls/server-key.pem", 0o640),
            ("auth/signing-key.p8", 0o604),
        ] {
            std::fs::write(root.join(f), "x").unwrap();
            std::fs::set_permissions(root.join(f), std::fs::Permissions::from_mode(m)).unwrap();
        }
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A symlink pointing outside must not be followed.
        let outside = d.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();

        let _l = DataDir::lock(&root).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("tls")), 0o700);
        for f in [
            "vnet.db",
            "credentials.json",
            "tls/server-key.pem",
            "auth/signing-key.p8",
            "lock",
        ] {
            assert_eq!(mode(&root.join(f)), 0o600, "{f}");
        }
        assert_eq!(mode(&root.join("ca.pem")), 0o644);
        assert_eq!(mode(&root.join("tls/server.pem")), 0o644);
        assert_eq!(mode(&outside), 0o644, "followed a symlink");
    }
}
