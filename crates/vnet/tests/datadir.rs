//! The data directory under attack and under faults (issue 9, items 8, 9 and 10), with the
//! real binary:
//!
//! * a second `vnet serve` on a directory in use refuses, naming the holder's pid, and
//!   touches nothing; after `kill -9` of the holder a new server starts;
//! * files are 0600 in a 0700 directory (public certificates excepted), also when an older
//!   version left them open;
//! * 60 `kill -9` at random moments of a first start: every directory then starts normally
//!   and its operator signs in with `credentials.json`;
//! * a read-only or full data directory is reported as such (private mount namespaces, so
//!   this works as root, where chmod would not stop anything);
//! * the history is compacted at start to `--history-revisions`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vnet");
const CLIENT_ENV: [&str; 6] = [
    "VNET_SERVER",
    "VNET_CREDENTIALS",
    "VNET_TENANT_ID",
    "VNET_CLIENT_ID",
    "VNET_CLIENT_SECRET",
    "VNET_DATA_DIR",
];

/// A `vnet serve` child, killed (SIGKILL) and reaped when dropped, also on panic.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the banner; `Err(log)` if the process exited first.
    fn ready(&mut self, within: Duration) -> Result<(), String> {
        let t0 = Instant::now();
        loop {
            if self.log_text().contains("vnet API listening on") {
                return Ok(());
            }
            if let Some(st) = self.child.try_wait().unwrap() {
                return Err(format!("exited with {st}: {}", self.log_text()));
            }
            assert!(
                t0.elapsed() < within,
                "no banner within {within:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the exit; panics if it does not come.
    fn exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                t0.elapsed() < within,
                "still running after {within:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `prefix... vnet serve --listen 127.0.0.1:PORT --data-dir DIR extra...`.
fn spawn_with(prefix: &[&str], dir: &Path, port: u16, extra: &[&str], log: &Path) -> Proc {
    let log_file = std::fs::File::create(log).unwrap();
    let (prog, pre) = match prefix.split_first() {
        Some((p, rest)) => (p.to_string(), rest.to_vec()),
        None => (BIN.to_string(), vec![]),
    };
    let mut cmd = Command::new(prog);
    for v in CLIENT_ENV {
        cmd.env_remove(v);
    }
    cmd.args(pre);
    if !prefix.is_empty() {
        cmd.arg(BIN);
    }
    let child = cmd
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    Proc {
        child,
        log: log.to_path_buf(),
    }
}

fn spawn(dir: &Path, port: u16, extra: &[&str], log: &Path) -> Proc {
    spawn_with(&[], dir, port, extra, log)
}

/// `vnet group list` against the server, signed in with the data directory's
/// credentials.json and trusting its ca.pem: the token endpoint, then one ARM GET.
fn operator_lists_groups(dir: &Path, port: u16) -> Output {
    let mut cmd = Command::new(BIN);
    for v in CLIENT_ENV {
        cmd.env_remove(v);
    }
    cmd.args(["group", "list"])
        .env("VNET_SERVER", format!("https://127.0.0.1:{port}"))
        .env("VNET_DATA_DIR", dir)
        .output()
        .unwrap()
}

/// The bytes of every file of the directory except the lock file.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != "lock" {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_second_server_on_the_same_data_dir_refuses_and_names_the_holder() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("data");
    let mut a = spawn(
        &dir,
        free_port(),
        &["--insecure-http"],
        &t.path().join("a.log"),
    );
    a.ready(Duration::from_secs(30)).unwrap();
    let before = snapshot(&dir);

    // Attack: the same directory from a second process (another port, so only the data
    // directory is shared), with and without TLS.
    for extra in [&["--insecure-http"][..], &[][..]] {
        let mut b = spawn(&dir, free_port(), extra, &t.path().join("b.log"));
        let st = b.exit(Duration::from_secs(30));
        assert!(!st.success(), "the second server started: {}", b.log_text());
        let log = b.log_text();
        assert!(
            log.contains(&format!(
                "in use by another vnet server (pid {})",
                a.child.id()
            )),
            "{log}"
        );
        assert!(!log.contains("vnet API listening"), "{log}");
    }
    // It changed nothing, and the holder's pid is still the one in the lock file.
    assert_eq!(
        snapshot(&dir),
        before,
        "the refused server wrote to the data directory"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("lock")).unwrap().trim(),
        a.child.id().to_string()
    );
    assert!(
        a.child.try_wait().unwrap().is_none(),
        "the first server died"
    );

    // kill -9 releases the lock (the kernel drops it): a new server starts.
    drop(a);
    let mut c = spawn(
        &dir,
        free_port(),
        &["--insecure-http"],
        &t.path().join("c.log"),
    );
    c.ready(Duration::from_secs(30)).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("lock")).unwrap().trim(),
        c.child.id().to_string()
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file 0600 and every directory 0700, except the public certificates.
fn assert_private(dir: &Path) {
    let public = [dir.join("ca.pem"), dir.join("tls/server.pem")];
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if public.contains(&p) {
                assert_eq!(mode(&p) & 0o077, 0o044, "{} is readable", p.display());
            } else {
                files += 1;
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
    }
    assert!(files >= 8, "only {files} files checked");
}

#[test]
fn data_dir_files_are_private_and_old_open_modes_are_fixed() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("data");
    let port = free_port();
    let mut s = spawn(&dir, port, &[], &t.path().join("s.log"));
    s.ready(Duration::from_secs(30)).unwrap();
    let out = operator_lists_groups(&dir, port);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "vnet.db",
        "vnet.db-wal",
        "identity.db",
        "identity.db-wal",
        "secrets.key",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    assert_private(&dir);
    drop(s);

    // What an older vnet (or a careless copy) left: world-readable files and directory.
    for f in [
        "vnet.db",
        "identity.db-wal",
        "credentials.json",
        "tls/ca-key.pem",
        "auth/signing-key.p8",
    ] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("tls"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut s = spawn(&dir, port, &[], &t.path().join("s2.log"));
    s.ready(Duration::from_secs(30)).unwrap();
    assert_private(&dir);
}

/// A tiny deterministic generator, seeded from the clock and printed, so a failing run can be
/// repeated with `VNET_KILL_SEED`.
fn rng() -> (u64, impl FnMut() -> u64) {
    let seed = std::env::var("VNET_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut x = seed | 1;
    (seed, move || {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

#[test]
fn kill_9_during_first_start_never_locks_the_operator_out() {
    const KILLS: usize = 60;
    let t = tempfile::tempdir().unwrap();
    // How long a first start takes here: the kills are spread over 0..that.
    let probe = t.path().join("probe");
    let t0 = Instant::now();
    let mut p = spawn(&probe, free_port(), &[], &t.path().join("probe.log"));
    p.ready(Duration::from_secs(30)).unwrap();
    let span = t0.elapsed().as_micros() as u64;
    drop(p);
    let (seed, mut next) = rng();
    eprintln!("first start takes {} ms; seed {seed}", span / 1000);

    let mut killed_before_banner = 0;
    for i in 0..KILLS {
        let dir = t.path().join(format!("d{i}"));
        let port = free_port();
        let log = t.path().join(format!("k{i}.log"));
        let delay = Duration::from_micros(next() % (span + 1));
        let s = spawn(&dir, port, &[], &log);
        std::thread::sleep(delay);
        if !s.log_text().contains("vnet API listening on") {
            killed_before_banner += 1;
        }
        drop(s); // SIGKILL

        // A normal restart, then the operator signs in with credentials.json.
        let mut s = spawn(&dir, port, &[], &t.path().join(format!("r{i}.log")));
        if let Err(log) = s.ready(Duration::from_secs(30)) {
            panic!("kill {i} (after {delay:?}, seed {seed}): restart failed: {log}");
        }
        let out = operator_lists_groups(&dir, port);
        assert!(
            out.status.success(),
            "kill {i} (after {delay:?}, seed {seed}): the operator cannot sign in: {}\nserver: {}",
            String::from_utf8_lossy(&out.stderr),
            s.log_text()
        );
        assert!(dir.join("credentials.json").is_file());
    }
    // The kills must really have hit first starts, not finished servers.
    assert!(
        killed_before_banner >= KILLS / 2,
        "only {killed_before_banner} of {KILLS} kills came before the banner"
    );
}

/// Runs `script` in a private mount namespace (as root; CI runs the suite as root). The
/// mounts it makes vanish with the namespace, so nothing outside is affected.
fn in_mount_namespace() -> Vec<&'static str> {
    vec!["unshare", "--mount", "--propagation", "private", "sh", "-c"]
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn read_only_data_dir_is_reported_as_read_only() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("data");
    // An existing data directory (first start done), then made read-only.
    let mut s = spawn(
        &dir,
        free_port(),
        &["--insecure-http"],
        &t.path().join("s.log"),
    );
    s.ready(Duration::from_secs(30)).unwrap();
    drop(s);
    let before = snapshot(&dir);
    let log = t.path().join("ro.log");
    let mut p = if is_root() {
        // Root ignores file modes: a read-only bind mount of the directory over itself.
        let d = dir.display().to_string();
        let script = format!(
            "mount --bind '{d}' '{d}' && mount -o remount,bind,ro '{d}' && exec \"$0\" \"$@\""
        );
        let mut pre = in_mount_namespace();
        pre.push(&script);
        let pre: Vec<&str> = pre.into_iter().collect();
        spawn_with(&pre, &dir, free_port(), &["--insecure-http"], &log)
    } else {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        spawn(&dir, free_port(), &["--insecure-http"], &log)
    };
    let st = p.exit(Duration::from_secs(30));
    let text = p.log_text();
    assert!(!st.success(), "started on a read-only directory: {text}");
    assert!(
        text.contains(&format!("data directory {} is read-only", dir.display())),
        "{text}"
    );
    assert!(!text.contains("damaged"), "{text}");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(snapshot(&dir), before);
}

/// A tmpfs of `size` mounted on `mnt` in a private namespace, then `vnet serve` on `mnt/data`.
/// `fill` fills it completely before the server starts.
fn on_tiny_tmpfs(mnt: &Path, port: u16, fill: bool, log: &Path) -> Proc {
    let m = mnt.display().to_string();
    let fill = if fill {
        format!(
            " && mkdir -p '{m}/data' && (dd if=/dev/zero of='{m}/fill' bs=4k 2>/dev/null; true)"
        )
    } else {
        String::new()
    };
    let script = format!("mount -t tmpfs -o size=3m tmpfs '{m}'{fill} && exec \"$0\" \"$@\"");
    let mut pre = in_mount_namespace();
    pre.push(&script);
    spawn_with(&pre, &mnt.join("data"), port, &["--insecure-http"], log)
}

#[test]
fn full_disk_is_reported_as_no_space_left() {
    if !is_root() {
        // Mounting a small file system needs root; CI runs as root.
        eprintln!("skipped: needs root for a private tmpfs");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let mnt = t.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();

    // 1. Starting on a full disk.
    let mut p = on_tiny_tmpfs(&mnt, free_port(), true, &t.path().join("full.log"));
    let st = p.exit(Duration::from_secs(30));
    let text = p.log_text();
    assert!(!st.success(), "{text}");
    assert!(text.contains("no space left on device"), "{text}");
    assert!(!text.contains("damaged"), "{text}");

    // 2. The disk fills while the server runs: a write is refused with the reason, and
    //    nothing is half-written; once space is back, writes work again.
    let port = free_port();
    let mut p = on_tiny_tmpfs(&mnt, port, false, &t.path().join("run.log"));
    p.ready(Duration::from_secs(30)).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let sub = "00000000-0000-0000-0000-0000000000ee";
    let rg = |name: &str| {
        c.put(format!(
            "{base}/subscriptions/{sub}/resourcegroups/{name}?api-version=2021-04-01"
        ))
        .json(&serde_json::json!({"location": "westeurope", "tags": {"pad": "x".repeat(2000)}}))
        .send()
        .unwrap()
    };
    assert!(rg("before").status().is_success());
    // The server's view of the disk, from outside its namespace.
    let fill = PathBuf::from(format!("/proc/{}/root{}/fill", p.child.id(), mnt.display()));
    {
        let mut f = std::fs::File::create(&fill).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    }
    let mut refused = None;
    for i in 0..50 {
        let r = rg(&format!("full{i}"));
        if !r.status().is_success() {
            refused = Some((i, r.status().as_u16(), r.text().unwrap()));
            break;
        }
    }
    let (i, status, body) = refused.expect("writes kept succeeding on a full disk");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("no space left on device"), "{body}");
    assert!(!body.contains("damaged"), "{body}");
    assert!(
        !body.contains("vnet.db"),
        "the client is not told the server's paths: {body}"
    );
    // The refused write left nothing: the group does not exist.
    let r = c
        .get(format!(
            "{base}/subscriptions/{sub}/resourcegroups/full{i}?api-version=2021-04-01"
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    std::fs::remove_file(&fill).unwrap();
    assert!(
        rg("after").status().is_success(),
        "writes work again once space is back"
    );
    let mut log = String::new();
    let _ = std::fs::File::open(&p.log).and_then(|mut f| f.read_to_string(&mut log));
    assert!(!log.contains("damaged"), "{log}");
}

#[test]
fn history_is_compacted_at_start() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("data");
    let port = free_port();
    let start = |name: &str| {
        let mut s = spawn(
            &dir,
            port,
            &["--insecure-http", "--history-revisions", "5"],
            &t.path().join(name),
        );
        s.ready(Duration::from_secs(30)).unwrap();
        s
    };
    let s = start("a.log");
    let c = reqwest::blocking::Client::new();
    let sub = "00000000-0000-0000-0000-0000000000ef";
    for i in 0..20 {
        let r = c
            .put(format!(
                "http://127.0.0.1:{port}/subscriptions/{sub}/resourcegroups/g{i}?api-version=2021-04-01"
            ))
            .json(&serde_json::json!({"location": "westeurope"}))
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }
    drop(s);
    use store::Store;
    let rev = {
        let st = store::SqliteStore::open(&dir.join("vnet.db")).unwrap();
        // Not compacted yet (the schedule runs every minute): all history is there.
        assert!(st.events_since(0, 1).is_ok());
        st.revision().unwrap()
    };
    assert!(rev >= 20);
    let s = start("b.log");
    drop(s);
    let st = store::SqliteStore::open(&dir.join("vnet.db")).unwrap();
    assert_eq!(st.events_since(rev - 5, 100).unwrap().len(), 5);
    let e = st.events_since(rev - 6, 100).unwrap_err();
    assert!(e.needs_resync(), "{e}");
    // The groups themselves are all there.
    assert_eq!(st.range("res/").unwrap().1.len(), 20);
}
