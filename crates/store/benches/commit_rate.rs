//! Durable single-op commit rate of `SqliteStore` on the local disk.
//!
//! `cargo bench -p store --bench commit_rate` (optionally `-- <commits> <value bytes>`).
//! Each `commit` of one 512-byte put returns only after SQLite fsynced the WAL
//! (`synchronous=FULL`), so the figure is bounded by the disk's fsync latency.  The file lives
//! in Cargo's target tmp dir (same disk as the target dir) unless `STORE_BENCH_DIR` is set;
//! never point it at tmpfs, where fsync is free.

use std::time::{Duration, Instant};

use store::{Op, SqliteStore, Store};

fn main() {
    // `cargo bench` passes `--bench`; ignore flags.
    let nums: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let commits = nums.first().copied().unwrap_or(2000).max(1);
    let value_len = nums.get(1).copied().unwrap_or(512);

    let base = std::env::var_os("STORE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_TARGET_TMPDIR").into());
    std::fs::create_dir_all(&base).expect("create bench dir");
    let dir = tempfile::tempdir_in(&base).expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("bench.db")).expect("open store");
    let value = "v".repeat(value_len);

    let put = |i: usize| Op::Put {
        key: format!("res/subscriptions/bench/vnet-{i:08}"),
        value: value.clone(),
    };
    for i in 0..100 {
        store.commit(&[put(i)]).expect("warm-up commit");
    }

    let mut lat = Vec::with_capacity(commits);
    let start = Instant::now();
    for i in 0..commits {
        let t = Instant::now();
        store.commit(&[put(100 + i)]).expect("commit");
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "store commit_rate: {commits} durable single-op commits ({value_len}-byte values) in \
         {:.3} s = {:.0} commits/s; latency p50 {:.0} us, p99 {:.0} us, max {:.0} us; dir {}",
        total.as_secs_f64(),
        commits as f64 / total.as_secs_f64(),
        us(pct(0.50)),
        us(pct(0.99)),
        us(pct(1.0)),
        base.display(),
    );
}
