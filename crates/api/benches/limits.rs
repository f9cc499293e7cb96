//! Large-request benchmark (a bench binary, not a timed test): what one big write costs and
//! whether it stalls the others.
//! - a 3,000-subnet VNet PUT through the pure model and end to end over HTTP;
//! - 3,000 subnets with 10 prefixes each, and a 1,000-prefix address space (the bound);
//! - a 40,000-prefix address space and a 3,001-subnet VNet, both refused;
//! - a small PUT sent while a 3,000-subnet PUT is being processed.
//!
//! Run: `cargo bench -p api --bench limits` (add `-- quick` for smaller sizes; `cargo test
//! --all-targets` runs it quick as a smoke test).

use api::routes::AppOptions;
use model::ops::{self, PutOptions};
use model::testkit::{self, World};
use model::{ResourceId, Tx};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const API: &str = "2025-07-01";
const SUB: &str = "00000000-0000-0000-0000-00000000beef";

/// A VNet body with `n` subnets of `per` /28 prefixes each, inside 10.0.0.0/8.
fn vnet_body(n: usize, per: usize) -> Value {
    let subnets: Vec<Value> = (0..n)
        .map(|i| {
            let prefixes: Vec<String> = (0..per)
                .map(|j| {
                    let a = ((i * per + j) as u32) << 4; // /28 blocks
                    let ip = std::net::Ipv4Addr::from(0x0a00_0000u32 | a);
                    format!("{ip}/28")
                })
                .collect();
            if per == 1 {
                json!({"name": format!("s{i}"), "properties": {"addressPrefix": prefixes[0]}})
            } else {
                json!({"name": format!("s{i}"), "properties": {"addressPrefixes": prefixes}})
            }
        })
        .collect();
    json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/8"]}, "subnets": subnets}})
}

/// An address space of `n` /24 prefixes (from 11.0.0.0 up).
fn space_body(n: usize) -> Value {
    let p: Vec<String> = (0..n)
        .map(|i| {
            let ip = std::net::Ipv4Addr::from(0x0b00_0000u32 | ((i as u32) << 8));
            format!("{ip}/24")
        })
        .collect();
    json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": p}}})
}

/// CPU time of the whole process so far, in milliseconds (the machine is shared: wall time
/// alone would count the time other processes held the cores).
fn cpu_ms() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the pointer it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 * 1000.0 + t.tv_nsec as f64 / 1e6
}

/// Median wall time of `reps` runs of `f`, and the mean process CPU time per run, in ms.
struct Timing {
    wall: f64,
    cpu: f64,
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} ms wall (median), {:.1} ms CPU",
            self.wall, self.cpu
        )
    }
}

fn median_ms(reps: usize, mut f: impl FnMut()) -> Timing {
    let c0 = cpu_ms();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let cpu = (cpu_ms() - c0) / reps as f64;
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Timing {
        wall: t[t.len() / 2],
        cpu,
    }
}

/// The model alone: stage the PUT over the world's state (cleaning, checks, documents).
fn model_put(w: &World, vnet: &str, body: &Value) -> Result<usize, String> {
    let rid = ResourceId::parse(&testkit::vnet_id(vnet)).unwrap();
    w.stage(|tx: &mut Tx, ctx| ops::put(tx, ctx, &rid, body, &PutOptions::default()).map(|_| ()))
        .map(|c| c.len())
        .map_err(|e| e.code)
}

struct Http {
    base: String,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start() -> Http {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = api::open_app(dir.path(), model::Config::default(), AppOptions::default()).unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let router = api::router(app);
    rt.spawn(async move { axum::serve(listener, router).await.unwrap() });
    Http {
        base: format!("http://{addr}"),
        rt,
        _dir: dir,
    }
}

fn vnet_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/{name}"
    )
}

fn put(c: &reqwest::blocking::Client, base: &str, path: &str, body: &Value) -> (u16, String) {
    let r = c
        .put(format!("{base}{path}?api-version={API}"))
        .json(body)
        .send()
        .unwrap();
    let st = r.status().as_u16();
    let text = r.text().unwrap();
    let code = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(String::from))
        .unwrap_or_default();
    (st, code)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "quick") || !args.iter().any(|a| a == "--bench");
    // LIMITS_N / LIMITS_REPS override the sizes (to measure the old code at smaller sizes).
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let n = env("LIMITS_N").unwrap_or(if quick { 300 } else { 3000 });
    let reps = env("LIMITS_REPS").unwrap_or(if quick { 3 } else { 7 });
    println!(
        "large-request benchmark ({} cores, {})",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        if quick { "quick" } else { "full" }
    );

    // 1. The pure model.
    let mut w = World::new();
    let big = vnet_body(n, 1);
    let ms = median_ms(reps, || {
        assert_eq!(model_put(&w, "big", &big), Ok(n + 1));
    });
    println!("model: create a VNet with {n} subnets: {ms} (median of {reps})");
    w.put(&testkit::vnet_id("big"), big.clone()).unwrap();
    let ms = median_ms(reps, || {
        assert_eq!(model_put(&w, "big", &big), Ok(n + 1));
    });
    println!("model: replace the same {n}-subnet VNet (all subnets kept): {ms}");
    let b10 = vnet_body(n, 10);
    let ms = median_ms(reps, || {
        let _ = model_put(&w, "b10", &b10).unwrap();
    });
    println!("model: {n} subnets x 10 prefixes: {ms}");
    for (k, expect_ok) in [(1000usize, true), (40_000, false)] {
        let body = space_body(k);
        let mut got = Ok(0);
        let ms = median_ms(reps, || got = model_put(&w, "sp", &body));
        println!(
            "model: address space of {k} prefixes (expected {}, got {got:?}): {ms}",
            if expect_ok { "accepted" } else { "refused" }
        );
    }
    let over = vnet_body(3001, 1);
    let mut got = Ok(0);
    let ms = median_ms(reps, || got = model_put(&w, "over", &over));
    println!("model: 3,001 subnets (expected refused, got {got:?}): {ms}");

    // 2. End to end over HTTP (durable commit, response rendered with every subnet).
    let h = start();
    let c = reqwest::blocking::Client::new();
    let (st, _) = put(
        &c,
        &h.base,
        &format!("/subscriptions/{SUB}/resourcegroups/rg"),
        &json!({"location": "westeurope"}),
    );
    assert!(st < 300);
    let mut i = 0;
    let ms = median_ms(reps, || {
        i += 1;
        let (st, code) = put(&c, &h.base, &vnet_path(&format!("v{i}")), &big);
        assert_eq!(st, 201, "{code}");
    });
    println!("HTTP: create a VNet with {n} subnets: {ms} (median of {reps})");
    let ms = median_ms(reps, || {
        let (st, code) = put(&c, &h.base, &vnet_path("v1"), &big);
        assert_eq!(st, 200, "{code}");
    });
    println!("HTTP: replace a {n}-subnet VNet: {ms}");
    let ms = median_ms(reps, || {
        let (st, code) = put(&c, &h.base, &vnet_path("b10"), &b10);
        assert!(st < 300, "{code}");
    });
    println!("HTTP: {n} subnets x 10 prefixes: {ms}");
    let body = space_body(40_000);
    let mut got = (0, String::new());
    let ms = median_ms(reps, || got = put(&c, &h.base, &vnet_path("sp"), &body));
    println!("HTTP: 40,000-prefix address space (expected refused, got {got:?}): {ms}");

    // 3. A small write while a big one is in flight.
    let small = json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}});
    let alone = median_ms(reps, || {
        let (st, _) = put(&c, &h.base, &vnet_path("small"), &small);
        assert!(st < 300);
    });
    let base = h.base.clone();
    let big2 = Arc::new(big.clone());
    let mut worst: f64 = 0.0;
    for r in 0..reps {
        let (b, body) = (base.clone(), big2.clone());
        let t = std::thread::spawn(move || {
            let c = reqwest::blocking::Client::new();
            put(&c, &b, &vnet_path(&format!("c{r}")), &body)
        });
        std::thread::sleep(Duration::from_millis(2));
        let t0 = Instant::now();
        let (st, _) = put(&c, &h.base, &vnet_path("small"), &small);
        assert!(st < 300);
        worst = worst.max(t0.elapsed().as_secs_f64() * 1000.0);
        t.join().unwrap();
    }
    println!(
        "HTTP: small PUT alone {alone}; while a {n}-subnet PUT is in flight: worst {worst:.1} ms of {reps}"
    );
    drop(h.rt);
}
