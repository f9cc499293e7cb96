//! Benchmark (issue 9 item 5): a `vnet serve` (HTTPS, in-process on 127.0.0.1:0) flooded with
//! idle TCP connections, idle TLS sessions and slow-loris clients — each attacker reconnecting
//! as soon as the server closes it — while well-behaved clients (a new TLS connection per
//! request) measure their latency. Prints p50/p99 without and with the flood.
//!
//! ```text
//! cargo run -p api --example connection_flood -- \
//!     [--idle 4000] [--tls-idle 500] [--loris 500] [--cap 1000] [--clients 4] [--requests 200] \
//!     [--header-timeout 2] [--idle-timeout 5] [--reconnect-ms 10] [--port P --ca FILE]
//! ```
//!
//! With `--port`/`--ca` it attacks a `vnet serve` already running on 127.0.0.1:P (what
//! `scripts/bench-connection-flood.sh` does, so server and attackers are separate processes and
//! the cap and timeouts are that server's); otherwise it runs the server in this process.
//! Each attacker waits `--reconnect-ms` after being closed before it connects again.
//! Well-behaved clients are measured twice: a new TLS connection per request, and one kept-alive
//! connection per client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn args() -> HashMap<String, f64> {
    let mut m: HashMap<String, f64> = [
        ("idle", 4000.0),
        ("tls-idle", 500.0),
        ("loris", 500.0),
        ("cap", 1000.0),
        ("clients", 4.0),
        ("requests", 200.0),
        ("header-timeout", 2.0),
        ("idle-timeout", 5.0),
        ("reconnect-ms", 10.0),
        ("port", 0.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let a: Vec<String> = std::env::args().skip(1).collect();
    for pair in a.chunks(2) {
        let k = pair[0].trim_start_matches("--").to_string();
        if k == "ca" {
            continue;
        }
        assert!(m.contains_key(&k), "unknown option --{k}");
        m.insert(
            k,
            pair.get(1).and_then(|v| v.parse().ok()).expect("a number"),
        );
    }
    m
}

#[derive(Default)]
struct Counters {
    open: AtomicUsize,
    closed_by_server: AtomicU64,
    connect_failures: AtomicU64,
}

fn tls_connector(ca: &std::path::Path) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn server_name(addr: SocketAddr) -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::IpAddress(addr.ip().into())
}

/// One attacker: connects, (handshakes,) then idles or trickles a head until the server
/// closes it, and reconnects.
async fn attacker(
    kind: &'static str,
    addr: SocketAddr,
    tls: tokio_rustls::TlsConnector,
    c: Arc<Counters>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    reconnect: Duration,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(tcp) = TcpStream::connect(addr).await else {
            c.connect_failures.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        c.open.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 512];
        match kind {
            "tls-idle" => {
                if let Ok(Ok(mut s)) = tokio::time::timeout(
                    Duration::from_secs(10),
                    tls.connect(server_name(addr), tcp),
                )
                .await
                {
                    while !matches!(s.read(&mut buf).await, Ok(0) | Err(_)) {}
                }
            }
            "loris" => {
                let mut s = tcp;
                let head = b"GET /metadata/endpoints HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
                for b in head.iter().cycle() {
                    if s.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    if let Ok(r) =
                        tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await
                    {
                        if matches!(r, Ok(0) | Err(_)) {
                            break;
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
            }
            _ => {
                let mut s = tcp;
                while !matches!(s.read(&mut buf).await, Ok(0) | Err(_)) {}
            }
        }
        c.open.fetch_sub(1, Ordering::Relaxed);
        c.closed_by_server.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(reconnect).await;
    }
}

/// `n` requests on fresh TLS connections; latencies in ms, and how many failed.
async fn client(addr: SocketAddr, tls: tokio_rustls::TlsConnector, n: usize) -> (Vec<f64>, usize) {
    let mut lat = vec![];
    let mut failed = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(10), async {
            let tcp = TcpStream::connect(addr).await?;
            let mut s = tls.connect(server_name(addr), tcp).await?;
            s.write_all(b"GET /metadata/endpoints?api-version=2022-09-01 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await?;
            let mut out = vec![];
            s.read_to_end(&mut out).await?;
            Ok::<bool, std::io::Error>(out.starts_with(b"HTTP/1.1 200"))
        })
        .await;
        match r {
            Ok(Ok(true)) => lat.push(t.elapsed().as_secs_f64() * 1000.0),
            _ => failed += 1,
        }
    }
    (lat, failed)
}

/// `n` requests on one kept-alive TLS connection (reconnecting if the server closes it).
async fn keepalive_client(
    addr: SocketAddr,
    tls: tokio_rustls::TlsConnector,
    n: usize,
) -> (Vec<f64>, usize) {
    let mut lat = vec![];
    let mut failed = 0;
    let mut conn: Option<tokio_rustls::client::TlsStream<TcpStream>> = None;
    for _ in 0..n {
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(10), async {
            if conn.is_none() {
                let tcp = TcpStream::connect(addr).await?;
                conn = Some(tls.connect(server_name(addr), tcp).await?);
            }
            let s = conn.as_mut().unwrap();
            s.write_all(
                b"GET /metadata/endpoints?api-version=2022-09-01 HTTP/1.1\r\nHost: t\r\n\r\n",
            )
            .await?;
            // Head, then Content-Length bytes.
            let mut head = vec![];
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if s.read(&mut b).await? == 0 {
                    return Err(std::io::Error::other("closed"));
                }
                head.push(b[0]);
            }
            let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let len: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).await?;
            Ok::<bool, std::io::Error>(head.starts_with(b"HTTP/1.1 200"))
        })
        .await;
        match r {
            Ok(Ok(true)) => lat.push(t.elapsed().as_secs_f64() * 1000.0),
            _ => {
                conn = None;
                failed += 1
            }
        }
    }
    (lat, failed)
}

async fn measure(
    addr: SocketAddr,
    tls: &tokio_rustls::TlsConnector,
    clients: usize,
    requests: usize,
    keepalive: bool,
) -> String {
    let t = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            if keepalive {
                tokio::spawn(keepalive_client(addr, tls.clone(), requests))
            } else {
                tokio::spawn(client(addr, tls.clone(), requests))
            }
        })
        .collect();
    let mut all = vec![];
    let mut failed = 0;
    for h in tasks {
        let (l, f) = h.await.unwrap();
        all.extend(l);
        failed += f;
    }
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| {
        all.get(((all.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    format!(
        "{} ok, {failed} failed in {:.1}s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        t.elapsed().as_secs_f64(),
        q(0.50),
        q(0.99),
        all.last().copied().unwrap_or(f64::NAN)
    )
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut stop_server = None;
    let mut server = None;
    let (addr, ca) = if a["port"] > 0.0 {
        let argv: Vec<String> = std::env::args().collect();
        let ca = argv
            .iter()
            .position(|x| x == "--ca")
            .and_then(|i| argv.get(i + 1))
            .expect("--ca FILE with --port")
            .into();
        (SocketAddr::from(([127, 0, 0, 1], a["port"] as u16)), ca)
    } else {
        let cfg = api::ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("data"),
            limits: api::conn::ConnLimits {
                max_connections: Some(a["cap"] as usize),
                header_timeout: Duration::from_secs_f64(a["header-timeout"]),
                idle_timeout: Duration::from_secs_f64(a["idle-timeout"]),
                tls_handshake_timeout: Duration::from_secs_f64(a["header-timeout"]),
                ..Default::default()
            },
            ..Default::default()
        };
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        server = Some(rt.spawn(api::serve_until(
            cfg,
            move |a| {
                let _ = addr_tx.send(a);
            },
            async move {
                let _ = stop_rx.await;
                "benchmark done"
            },
        )));
        stop_server = Some(stop_tx);
        let addr = addr_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        (addr, dir.path().join("data/ca.pem"))
    };
    let tls = tls_connector(&ca);
    let reconnect = Duration::from_millis(a["reconnect-ms"] as u64);
    let clients = a["clients"] as usize;
    let requests = a["requests"] as usize;
    rt.block_on(async {
        println!("baseline, new connection per request: {}", measure(addr, &tls, clients, requests, false).await);
        println!("baseline, kept-alive connection:      {}", measure(addr, &tls, clients, requests, true).await);
        let c = Arc::new(Counters::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut attackers = vec![];
        for (kind, n) in [("idle", a["idle"]), ("tls-idle", a["tls-idle"]), ("loris", a["loris"])] {
            for _ in 0..n as usize {
                attackers.push(tokio::spawn(attacker(kind, addr, tls.clone(), c.clone(), stop.clone(), reconnect)));
            }
        }
        // Let the flood build up to (and past) the cap.
        tokio::time::sleep(Duration::from_secs(3)).await;
        println!(
            "flood: {} idle TCP + {} idle TLS + {} slow-loris attackers (reconnecting after {} ms); attacker sockets open now {}",
            a["idle"], a["tls-idle"], a["loris"], a["reconnect-ms"], c.open.load(Ordering::Relaxed)
        );
        println!("under flood, new connection per request: {}", measure(addr, &tls, clients, requests, false).await);
        println!("under flood, kept-alive connection:      {}", measure(addr, &tls, clients, requests, true).await);
        println!(
            "attacker connections closed by the server so far: {}, connect failures: {}",
            c.closed_by_server.load(Ordering::Relaxed),
            c.connect_failures.load(Ordering::Relaxed)
        );
        stop.store(true, Ordering::Relaxed);
        for h in attackers {
            h.abort();
        }
    });
    if let (Some(stop), Some(server)) = (stop_server, server) {
        let _ = stop.send(());
        rt.block_on(server).unwrap().unwrap();
    }
}
