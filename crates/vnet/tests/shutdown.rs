//! Issue 9 item 13: `vnet serve` stops cleanly on SIGTERM. The real binary on a free loopback
//! port (`--insecure-http`, so the in-flight request can be written by hand): a request whose
//! body is still arriving when SIGTERM comes is finished and answered, new connections are
//! refused from the signal on, and the process exits 0 saying it stopped; a request that does
//! not finish within `--shutdown-grace` is cut and the process still exits 0.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vnet");
const SUB: &str = "00000000-0000-0000-0000-0000000000aa";

struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("server.log");
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .env_remove("RUST_LOG")
            .env_remove("VNET_DATA_DIR")
            .args(["serve", "--insecure-http", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap();
        let mut s = Server {
            child,
            port,
            log,
            _dir: dir,
        };
        let t = Instant::now();
        while !s.log_text().contains("vnet API listening on") {
            if let Some(st) = s.child.try_wait().unwrap() {
                panic!("vnet serve exited early with {st}:\n{}", s.log_text());
            }
            assert!(t.elapsed() < Duration::from_secs(30), "{}", s.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid.
        let r = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(r, 0);
    }

    /// The exit status, waiting at most `wait`.
    fn exit_within(&mut self, wait: Duration) -> std::process::ExitStatus {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                t.elapsed() < wait,
                "vnet serve still running {wait:?} after SIGTERM:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A PUT of resource group `rg` whose head and first `sent` body bytes are written now.
    fn begin_put(&self, rg: &str, sent: usize) -> (TcpStream, Vec<u8>) {
        let body =
            br#"{"location": "westeurope", "tags": {"why": "in flight at SIGTERM"}}"#.to_vec();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "PUT /subscriptions/{SUB}/resourcegroups/{rg}?api-version=2025-07-01 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body[..sent]).unwrap();
        let rest = body[sent..].to_vec();
        (s, rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- vnet serve log ---\n{}", self.log_text());
        }
    }
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let mut srv = Server::start(&[]);
    let (mut s, rest) = srv.begin_put("inflight", 10);
    // Let the server read the head, so the request is in progress when the signal comes.
    std::thread::sleep(Duration::from_millis(300));
    srv.sigterm();
    let t = Instant::now();
    while !srv.log_text().contains("vnet API stopping (SIGTERM)") {
        assert!(t.elapsed() < Duration::from_secs(5), "{}", srv.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    // From the signal on, the port refuses new clients...
    assert!(
        TcpStream::connect(("127.0.0.1", srv.port)).is_err(),
        "still accepting after SIGTERM"
    );
    // ...and the process waits for the request in flight, which then completes.
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    s.write_all(&rest).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("\"name\":\"inflight\""), "{answer}");
    let status = srv.exit_within(Duration::from_secs(10));
    assert!(status.success(), "exit {status}:\n{}", srv.log_text());
    let log = srv.log_text();
    assert!(
        log.contains("vnet API stopped (SIGTERM; 1 connection(s) open at shutdown, 0 cut"),
        "{log}"
    );
}

#[test]
fn a_request_longer_than_the_grace_period_is_cut_and_the_exit_is_still_clean() {
    let mut srv = Server::start(&["--shutdown-grace", "1"]);
    // This body never completes.
    let (mut s, _) = srv.begin_put("never", 10);
    std::thread::sleep(Duration::from_millis(300));
    srv.sigterm();
    let t = Instant::now();
    let status = srv.exit_within(Duration::from_secs(10));
    assert!(status.success(), "exit {status}:\n{}", srv.log_text());
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "exited before the grace period: {:?}",
        t.elapsed()
    );
    assert!(
        srv.log_text().contains("1 cut after the 1s grace period"),
        "{}",
        srv.log_text()
    );
    let mut buf = [0u8; 64];
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert!(
        matches!(s.read(&mut buf), Ok(0) | Err(_)),
        "the cut connection is closed"
    );
}
