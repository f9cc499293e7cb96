//! Test helper for `tests/crash.rs`: opens the store at `argv[1]`, then commits `crash/<n>`
//! keys (n = 0, 1, ...) one commit at a time, printing `<revision> <n>` to stdout and
//! flushing after each commit returned Ok.  A line on stdout is therefore a promise that the
//! write is durable; the test kills this process with SIGKILL and checks the promises.
//!
//! Exits on its own after `argv[2]` commits (default 1,000,000) or when stdout is closed,
//! so an aborted test run does not leave it writing forever.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use store::{Op, SqliteStore, Store};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: store-crash-writer <store file> [max commits]");
        return ExitCode::from(2);
    };
    let max: u64 = match args.next().map(|a| a.to_string_lossy().parse()) {
        None => 1_000_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("bad max commits: {e}");
            return ExitCode::from(2);
        }
    };
    let store = match SqliteStore::open(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // Resume numbering after keys written by an earlier run on the same file.
    let first = match store.range("crash/") {
        Ok((_, kvs)) => kvs.len() as u64,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for n in first..first.saturating_add(max) {
        let op = Op::Put {
            key: format!("crash/{n:010}"),
            // Some bulk so that commits span pages and WAL frames like real resources do.
            value: format!("{{\"n\":{n},\"pad\":\"{}\"}}", "p".repeat(300)),
        };
        let rev = match store.commit(&[op]) {
            Ok(rev) => rev,
            Err(e) => {
                eprintln!("commit {n}: {e}");
                return ExitCode::FAILURE;
            }
        };
        if writeln!(out, "{rev} {n}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::SUCCESS; // reader went away
        }
    }
    ExitCode::SUCCESS
}
