//! Control-plane benchmark (a bench binary, not a timed test):
//! - PUT and GET requests per second over loopback (every PUT is a durable commit);
//! - effective routes of a NIC in a hub with 500 peered spokes;
//! - memory of the server holding 1,000 VNets with 10 subnets each and 10,000 NICs.
//!
//! Run: `cargo bench -p api --bench control_plane` (add `-- quick` for a smaller run).

use api::routes::AppOptions;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const API: &str = "2025-07-01";
const SUB: &str = "00000000-0000-0000-0000-00000000beef";

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Bench {
    base: String,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    app: Arc<api::routes::App>,
}

fn start() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = api::open_app(
        dir.path(),
        model::Config::default(),
        AppOptions {
            provision_delay: Duration::from_millis(10),
            ..Default::default()
        },
    )
    .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let router = api::router(app.clone());
    rt.spawn(async move { axum::serve(listener, router).await.unwrap() });
    Bench {
        base: format!("http://{addr}"),
        _rt: rt,
        _dir: dir,
        app,
    }
}

fn id(rg: &str, rest: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Network/{rest}")
}

/// Runs `n` requests from `threads` clients; `f(client, i)` sends request i. Returns req/s.
fn run(
    threads: usize,
    n: usize,
    base: &str,
    f: impl Fn(&reqwest::blocking::Client, &str, usize) + Send + Sync + 'static,
) -> f64 {
    let f = Arc::new(f);
    let t0 = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let f = f.clone();
            let base = base.to_string();
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                let mut i = t;
                while i < n {
                    f(&c, &base, i);
                    i += threads;
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

fn put(c: &reqwest::blocking::Client, base: &str, path: &str, body: &Value) {
    let r = c
        .put(format!("{base}{path}?api-version={API}"))
        .json(body)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.text().unwrap());
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it, as
    // a smoke test: then (or with `quick`) the sizes are ten times smaller.
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "quick") || !args.iter().any(|a| a == "--bench");
    let scale = if quick { 10 } else { 1 };
    println!(
        "control-plane benchmark ({} cores, {})",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        if quick { "quick" } else { "full" }
    );

    // 1. PUT / GET throughput.
    let b = start();
    let c = reqwest::blocking::Client::new();
    put(
        &c,
        &b.base,
        &format!("/subscriptions/{SUB}/resourcegroups/rg"),
        &json!({"location": "westeurope"}),
    );
    let n = 3000 / scale;
    for threads in [1usize, 4] {
        let rps = run(threads, n, &b.base, move |c, base, i| {
            put(
                c,
                base,
                &id("rg", &format!("virtualNetworks/t{threads}-v{i}")),
                &json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}),
            );
        });
        println!("PUT virtualNetwork (durable commit), {threads} client(s): {rps:.0} req/s");
    }
    for threads in [1usize, 4] {
        let rps = run(threads, 4 * n, &b.base, move |c, base, i| {
            let r = c
                .get(format!(
                    "{base}{}?api-version={API}",
                    id("rg", &format!("virtualNetworks/t4-v{}", i % n))
                ))
                .send()
                .unwrap();
            assert!(r.status().is_success());
            let _ = r.bytes().unwrap();
        });
        println!("GET virtualNetwork, {threads} client(s): {rps:.0} req/s");
    }
    drop(b);

    // 2. Effective routes in a hub with 500 peered spokes.
    let b = start();
    let spokes = 500 / scale;
    put(
        &c,
        &b.base,
        &format!("/subscriptions/{SUB}/resourcegroups/hs"),
        &json!({"location": "westeurope"}),
    );
    put(
        &c,
        &b.base,
        &id("hs", "virtualNetworks/hub"),
        &json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": [{"name": "s", "properties": {"addressPrefix": "10.0.0.0/24"}}]}}),
    );
    put(
        &c,
        &b.base,
        &id("hs", "networkInterfaces/hub-nic"),
        &json!({"location": "westeurope", "properties": {"ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": id("hs", "virtualNetworks/hub/subnets/s")}}}]}}),
    );
    let t0 = Instant::now();
    for i in 0..spokes {
        let p = format!("10.{}.{}.0/24", 1 + i / 256, i % 256);
        put(
            &c,
            &b.base,
            &id("hs", &format!("virtualNetworks/s{i}")),
            &json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": [p]}}}),
        );
        put(
            &c,
            &b.base,
            &id(
                "hs",
                &format!("virtualNetworks/hub/virtualNetworkPeerings/to-s{i}"),
            ),
            &json!({"properties": {"remoteVirtualNetwork": {"id": id("hs", &format!("virtualNetworks/s{i}"))}}}),
        );
        put(
            &c,
            &b.base,
            &id(
                "hs",
                &format!("virtualNetworks/s{i}/virtualNetworkPeerings/to-hub"),
            ),
            &json!({"properties": {"remoteVirtualNetwork": {"id": id("hs", "virtualNetworks/hub")}}}),
        );
    }
    println!(
        "built hub + {spokes} spokes with peerings both ways in {:.1} s ({:.0} writes/s)",
        t0.elapsed().as_secs_f64(),
        (3 * spokes) as f64 / t0.elapsed().as_secs_f64()
    );
    let reps = 20;
    let t0 = Instant::now();
    let mut count = 0;
    for _ in 0..reps {
        let v: Value = c
            .post(format!(
                "{}{}?api-version={API}",
                b.base,
                id("hs", "networkInterfaces/hub-nic/effectiveRouteTable")
            ))
            .json(&json!({}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        count = v["value"].as_array().unwrap().len();
    }
    println!(
        "effectiveRouteTable of the hub NIC ({count} routes) over HTTP: {:.2} ms per call",
        t0.elapsed().as_secs_f64() * 1000.0 / reps as f64
    );
    let key = model::ResourceId::top(SUB, "hs", model::Kind::NetworkInterface, "hub-nic").key();
    let t0 = Instant::now();
    for _ in 0..reps {
        let r = b
            .app
            .engine
            .read(|st| model::routes::effective_routes(st, &key).unwrap());
        assert_eq!(r.len(), count);
    }
    println!(
        "effective routes computation alone (pure model): {:.2} ms per NIC",
        t0.elapsed().as_secs_f64() * 1000.0 / reps as f64
    );
    drop(b);

    // 3. Memory with 1,000 VNets x 10 subnets and 10,000 NICs.
    let rss0 = rss_kib();
    let b = start();
    put(
        &c,
        &b.base,
        &format!("/subscriptions/{SUB}/resourcegroups/big"),
        &json!({"location": "westeurope"}),
    );
    let vnets = 1000 / scale;
    let t0 = Instant::now();
    run(4, vnets, &b.base, |c, base, i| {
        let subnets: Vec<Value> = (0..10).map(|s| json!({"name": format!("s{s}"), "properties": {"addressPrefix": format!("10.{}.{}.0/24", i % 250, s)}})).collect();
        put(
            c,
            base,
            &id("big", &format!("virtualNetworks/v{i}")),
            &json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": [format!("10.{}.0.0/16", i % 250)]}, "subnets": subnets}}),
        );
    });
    run(4, 10 * vnets, &b.base, |c, base, i| {
        let v = i / 10;
        put(
            c,
            base,
            &id("big", &format!("networkInterfaces/n{i}")),
            &json!({"location": "westeurope", "properties": {"ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": id("big", &format!("virtualNetworks/v{v}/subnets/s{}", i % 10))}}}]}}),
        );
    });
    let load = t0.elapsed().as_secs_f64();
    let docs = b.app.engine.read(|st| st.len());
    let rss1 = rss_kib();
    println!(
        "loaded {vnets} VNets x 10 subnets + {} NICs ({docs} documents) in {load:.1} s",
        10 * vnets
    );
    println!(
        "server memory (RSS growth of the process): {:.1} MiB",
        (rss1.saturating_sub(rss0)) as f64 / 1024.0
    );
    // Restart from disk: how long the state takes to load and what it costs.
    let dir = b._dir.path().to_path_buf();
    let rss2 = rss_kib();
    let t0 = Instant::now();
    let app2 = api::open_app(&dir, model::Config::default(), AppOptions::default()).unwrap();
    println!(
        "restart: state loaded from SQLite in {:.2} s, +{:.1} MiB RSS for a second copy",
        t0.elapsed().as_secs_f64(),
        (rss_kib().saturating_sub(rss2)) as f64 / 1024.0
    );
    drop(app2);
}
