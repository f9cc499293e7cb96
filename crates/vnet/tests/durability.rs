//! Acknowledged writes survive `kill -9` of the server: a client writes VNets as fast as it
//! can, the server is killed with SIGKILL mid-stream, restarted on the same data directory,
//! and every write that was acknowledged (201) must be there.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const API: &str = "2025-07-01";
const SUB: &str = "00000000-0000-0000-0000-0000000000dd";

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &std::path::Path, port: u16) -> Guard {
    let bin = env!("CARGO_BIN_EXE_vnet");
    let help = Command::new(bin)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let mut args = vec![
        "serve".to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--data-dir".into(),
        dir.display().to_string(),
    ];
    if String::from_utf8_lossy(&help.stdout).contains("--insecure-http") {
        args.push("--insecure-http".into());
    }
    let mut child = Command::new(bin)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain output so the server never blocks on a full pipe.
    for out in [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        std::thread::spawn(move || for _ in BufReader::new(out).lines() {});
    }
    let g = Guard(child);
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    g
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(dir.path(), port);
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = c
        .put(format!(
            "{base}/subscriptions/{SUB}/resourcegroups/rg?api-version=2021-04-01"
        ))
        .json(&serde_json::json!({"location": "westeurope"}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());

    let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let (acked, stop, base) = (acked.clone(), stop.clone(), base.clone());
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let url = format!("{base}/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v{i}?api-version={API}");
                    let body = serde_json::json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}});
                    match c.put(url).json(&body).send() {
                        Ok(r) if r.status().as_u16() == 201 => acked.lock().unwrap().push(i),
                        _ => break,
                    }
                    i += 3;
                }
            })
        })
        .collect();
    // Let a few hundred writes be acknowledged, then kill -9 while writes are in flight.
    let t0 = Instant::now();
    while acked.lock().unwrap().len() < 300 && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.0.kill().unwrap(); // SIGKILL
    server.0.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} writes acknowledged",
        acked.len()
    );

    let port2 = free_port();
    let base2 = format!("http://127.0.0.1:{port2}");
    let _server = start(dir.path(), port2);
    let mut present = std::collections::BTreeSet::new();
    let mut url = format!("{base2}/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks?api-version={API}");
    loop {
        let page: serde_json::Value = c.get(&url).send().unwrap().json().unwrap();
        for v in page["value"].as_array().unwrap() {
            present.insert(v["name"].as_str().unwrap().to_string());
        }
        match page["nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    for i in &acked {
        assert!(
            present.contains(&format!("v{i}")),
            "acknowledged v{i} lost after kill -9 ({} acked, {} present)",
            acked.len(),
            present.len()
        );
    }
    // The restarted server still takes writes.
    let r = c.put(format!("{base2}/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/after?api-version={API}"))
        .json(&serde_json::json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
}
