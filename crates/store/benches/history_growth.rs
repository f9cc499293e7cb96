//! Disk growth per 10,000 writes, without and with compaction (issue 9, item 10).
//!
//! `cargo bench -p store --bench history_growth`
//!
//! Each write is one commit of one VNet-sized JSON document (~1 KB, what `vnet.db` stores for
//! a VNet with a few subnets) over 200 resources, as a busy control plane does. "No
//! compaction" is what vnet did before: every revision's event row kept forever. "Compacted"
//! keeps the last 1,000 revisions and compacts every 1,000 writes (vnet serve compacts at
//! start and every minute, keeping `--history-revisions`, default 10,000). Sizes are of the
//! database file after the store is closed (SQLite then checkpoints and removes the WAL).

use std::path::Path;
use store::{Op, SqliteStore, Store};

/// Writes per block under `cargo bench`; `cargo test --all-targets` (the suite) also runs this
/// file, without `--bench`, and then only checks it works with a small block.
const WRITES: usize = 10_000;
const SMOKE_WRITES: usize = 3_000;
const RESOURCES: usize = 200;
const KEEP: u64 = 1_000;

fn doc(i: usize, w: usize) -> String {
    let subnets: Vec<String> = (0..6)
        .map(|s| format!(r#"{{"name":"subnet{s}","id":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v{i}/subnets/subnet{s}","properties":{{"addressPrefix":"10.{}.{s}.0/24","provisioningState":"Succeeded"}}}}"#, i % 250))
        .collect();
    format!(
        r#"{{"name":"v{i}","location":"westeurope","etag":"W/\"{w:08x}\"","properties":{{"addressSpace":{{"addressPrefixes":["10.{}.0.0/16"]}},"subnets":[{}]}}}}"#,
        i % 250,
        subnets.join(",")
    )
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Returns the file size after each block of 10,000 writes.
fn run(compact: bool, blocks: usize, writes: usize) -> Vec<u64> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let mut sizes = vec![];
    let mut w = 0;
    for _ in 0..blocks {
        let s = SqliteStore::open(&path).unwrap();
        for _ in 0..writes {
            let i = w % RESOURCES;
            s.commit(&[Op::Put {
                key: format!("res/v{i}"),
                value: doc(i, w),
            }])
            .unwrap();
            w += 1;
            if compact && w % 1_000 == 0 {
                let rev = s.revision().unwrap();
                s.compact(rev.saturating_sub(KEEP)).unwrap();
            }
        }
        drop(s);
        sizes.push(size(&path));
    }
    sizes
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (writes, blocks) = if bench {
        (WRITES, 3)
    } else {
        (SMOKE_WRITES, 1)
    };
    println!(
        "document size {} bytes, {RESOURCES} resources, {writes} writes per block{}",
        doc(1, 1).len(),
        if bench {
            ""
        } else {
            " (smoke run: use cargo bench for the figures)"
        }
    );
    for (name, compact) in [("no compaction", false), ("compacted (keep 1,000)", true)] {
        let t0 = std::time::Instant::now();
        let sizes = run(compact, blocks, writes);
        let per: Vec<String> = std::iter::once(0)
            .chain(sizes.iter().copied())
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| {
                format!(
                    "{:+.0} B/write",
                    (w[1] as f64 - w[0] as f64) / writes as f64
                )
            })
            .collect();
        println!(
            "{name:24} file after each block: {:?} bytes; growth per block: {} ({:.1?})",
            sizes,
            per.join(", "),
            t0.elapsed()
        );
    }
}
